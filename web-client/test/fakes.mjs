// Stand-ins for the browser objects verto.js and call.js use: a WebSocket the test
// plays the server on, a clock that only moves when told, storage, and WebRTC; and a
// session set up with them.

import { VertoSession } from '../verto.js';

/** Lets pending promise callbacks (and the session's async login steps) run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A clock whose timers fire only in `advance`. */
export class FakeClock {
  constructor() {
    this.t = 0;
    this.timers = new Map();
    this.nextId = 1;
    /** Every delay ever asked for, in order. */
    this.requested = [];
  }

  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    this.requested.push(ms);
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  now = () => this.t;

  /** Moves time forward, firing due timers in order (including ones they schedule). */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (!next || timer.at < next[1].at)) next = [id, timer];
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }

  /** The delays of the timers still pending. */
  pendingDelays() {
    return [...this.timers.values()].map((t) => t.at - this.t);
  }
}

/** A Storage with the three methods the client uses. */
export class MemoryStorage {
  constructor(entries = {}) {
    this.map = new Map(Object.entries(entries));
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}

/** A WebSocket class plus the list of sockets made with it; the test is the server. */
export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
      this.sent.push(text);
    }

    close(code = 1000, reason = '') {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      this.closedWith = { code, reason };
      queueMicrotask(() => this.onclose?.({ code, reason, wasClean: true }));
    }

    // ---- the server's side ----

    open() {
      this.readyState = 1;
      this.onopen?.({});
    }

    /** Delivers a message (an object is sent as JSON). */
    receive(msg) {
      this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
    }

    /** The server closes, or the connection fails (1006). */
    drop(code = 1006, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }

    /** What the client sent, parsed. */
    messages() {
      return this.sent.map((t) => JSON.parse(t));
    }

    last() {
      const all = this.messages();
      return all[all.length - 1];
    }

    /** The client's requests (not its answers), optionally of one method. */
    requests(method) {
      return this.messages().filter((m) => m.method && (!method || m.method === method));
    }
  }
  return { WebSocket: FakeWebSocket, sockets };
}

/** A media track and stream like getUserMedia's. */
export class FakeTrack {
  constructor(kind = 'audio') {
    this.kind = kind;
    this.readyState = 'live';
  }
  stop() {
    this.readyState = 'ended';
  }
}

export class FakeStream {
  constructor(tracks = [new FakeTrack()]) {
    this.tracks = tracks;
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === 'audio');
  }
  getTracks() {
    return [...this.tracks];
  }
}

/** WebRTC fakes: every peer connection made, and every getUserMedia call. */
export function fakeRTC({ gatherInstantly = true, denyMicrophone = false } = {}) {
  const pcs = [];
  const media = [];
  let n = 0;
  class FakePeerConnection {
    constructor(config) {
      this.config = config;
      this.id = ++n;
      this.steps = [];
      this.listeners = new Map();
      this.localDescription = null;
      this.remoteDescription = null;
      this.iceGatheringState = 'new';
      this.connectionState = 'new';
      this.closed = false;
      this.tracks = [];
      pcs.push(this);
    }
    addEventListener(type, fn) {
      if (!this.listeners.has(type)) this.listeners.set(type, new Set());
      this.listeners.get(type).add(fn);
    }
    removeEventListener(type, fn) {
      this.listeners.get(type)?.delete(fn);
    }
    dispatch(type, ev = {}) {
      for (const fn of [...(this.listeners.get(type) ?? [])]) fn(ev);
    }
    addTrack(track, stream) {
      this.steps.push('addTrack');
      this.tracks.push({ track, stream });
    }
    async createOffer() {
      this.steps.push('createOffer');
      return { type: 'offer', sdp: `offer-from-pc${this.id}` };
    }
    async createAnswer() {
      this.steps.push('createAnswer');
      return { type: 'answer', sdp: `answer-from-pc${this.id}` };
    }
    async setLocalDescription(desc) {
      this.steps.push(`setLocal:${desc.type}`);
      // Candidates are gathered after this; the SDP sent must be the later one.
      this.localDescription = { type: desc.type, sdp: desc.sdp };
      this.iceGatheringState = 'gathering';
      const finish = () => {
        this.localDescription = { type: desc.type, sdp: `${desc.sdp}+candidates` };
        this.iceGatheringState = 'complete';
        this.dispatch('icegatheringstatechange');
        this.dispatch('icecandidate', { candidate: null });
      };
      if (gatherInstantly) queueMicrotask(finish);
      else this.finishGathering = finish;
    }
    async setRemoteDescription(desc) {
      this.steps.push(`setRemote:${desc.type}`);
      if (desc.sdp === 'bad-sdp') throw new Error('Failed to parse SessionDescription');
      this.remoteDescription = desc;
    }
    close() {
      this.closed = true;
      this.connectionState = 'closed';
    }
    /** The remote side's audio arrives. */
    remoteTrack() {
      const stream = new FakeStream([new FakeTrack()]);
      this.dispatch('track', { track: stream.tracks[0], streams: [stream] });
      return stream;
    }
  }
  return {
    pcs,
    media,
    rtc: {
      RTCPeerConnection: FakePeerConnection,
      getUserMedia: async (constraints) => {
        if (denyMicrophone) {
          const err = new Error('Permission denied');
          err.name = 'NotAllowedError';
          throw err;
        }
        const stream = new FakeStream();
        media.push({ constraints, stream });
        return stream;
      },
    },
  };
}

// ---- a session on the fakes ----

export const LOGIN = '1000@acme.test';

export function setup(opts = {}) {
  const { WebSocket, sockets } = fakeWebSocket();
  const clock = new FakeClock();
  const storage = opts.storage ?? new MemoryStorage();
  let n = 0;
  const session = new VertoSession({
    wsURL: 'wss://gw.test/',
    login: LOGIN,
    passwd: '1234',
    WebSocket,
    storage,
    clock,
    random: () => 0.5, // no jitter
    uuid: () => `uuid-${++n}`,
    ...opts,
  });
  return { session, sockets, clock, storage };
}

/** Plays an auth-enabled gateway + node: -32000, then the login result, then clientReady. */
export async function logIn(ws, { node = 'fs1', sessid } = {}) {
  ws.open();
  await flush();
  const [empty] = ws.requests('login');
  ws.receive({ jsonrpc: '2.0', id: empty.id, error: { code: -32000, message: 'Authentication Required' } });
  await flush();
  const cred = ws.requests('login')[1];
  ws.receive({
    jsonrpc: '2.0',
    id: cred.id,
    result: { message: 'logged in', sessid: sessid ?? cred.params.sessid },
  });
  await flush();
  if (node) {
    ws.receive({
      jsonrpc: '2.0',
      id: 16,
      method: 'verto.clientReady',
      params: { reattached_sessions: [], sim_node: node },
    });
  }
}

/** Answers the client's first login with `error`. */
export async function refuseLogin(ws, error) {
  ws.open();
  await flush();
  const [empty] = ws.requests('login');
  ws.receive({ jsonrpc: '2.0', id: empty.id, error: { code: -32000, message: 'Authentication Required' } });
  await flush();
  const cred = ws.requests('login')[1];
  ws.receive({ jsonrpc: '2.0', id: cred.id, error });
  await flush();
}

