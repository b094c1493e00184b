// Calls over a VertoSession: placing one, answering or declining the node's, DTMF,
// hanging up, and taking a call back with verto.attach after a reconnect. One call at a
// time, as a desk phone. The browser's RTCPeerConnection and getUserMedia are injected,
// so tests drive it with fakes; no DOM access.

import { Emitter, randomUUID } from './verto.js';
import { callStateText, causeText, mediaErrorText } from './words.js';

/** How long to wait for ICE gathering before sending what was gathered so far. Verto
 * sends all candidates inside the SDP (no trickle), so the offer waits for them. */
export const ICE_GATHER_TIMEOUT_MS = 3_000;

/** States of a call; `ended` keeps the last call around to show how it ended. */
export const CALL_STATES = Object.freeze([
  'dialing', 'trying', 'ringing', 'early', 'incoming', 'answering', 'active', 'recovering', 'ended',
]);

// Q.850 codes of the causes this client sends in verto.bye.
const CAUSE_CODES = { NORMAL_CLEARING: 16, USER_BUSY: 17, CALL_REJECTED: 21, INCOMPATIBLE_DESTINATION: 88 };

/** Waits until `pc` has gathered its ICE candidates, or `timeoutMs`. */
export function iceGathered(pc, timeoutMs, clock) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clock.clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', onState);
      pc.removeEventListener('icecandidate', onCandidate);
      resolve();
    };
    const onState = () => pc.iceGatheringState === 'complete' && done();
    const onCandidate = (ev) => !ev.candidate && done();
    const timer = clock.setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', onState);
    pc.addEventListener('icecandidate', onCandidate);
  });
}

const LIVE = new Set(CALL_STATES.filter((s) => s !== 'ended'));
// States in which the node has the call and must be told when we hang up.
const NODE_KNOWS = new Set(['trying', 'ringing', 'early', 'incoming', 'answering', 'active', 'recovering']);

/** One call; the Phone changes it, the UI reads it. */
export class Call {
  constructor({ id, direction, remoteName = '', remoteNumber = '', dialogParams, offer = null }) {
    this.id = id;
    this.direction = direction; // 'outbound' (we called) or 'inbound'
    this.state = direction === 'outbound' ? 'dialing' : 'incoming';
    this.remoteName = remoteName;
    this.remoteNumber = remoteNumber;
    this.dialogParams = dialogParams;
    this.offer = offer; // the node's SDP offer (incoming calls, re-attach)
    this.pc = null;
    this.stream = null; // our microphone
    this.remoteStream = null;
    this.remoteSet = false;
    this.cause = null;
    this.endedText = '';
    this.dtmfSent = '';
    this.media = 'new'; // the peer connection's connectionState
    this._chain = Promise.resolve();
  }

  get live() {
    return LIVE.has(this.state);
  }

  /** A read-only snapshot for the UI and tests. */
  get info() {
    return {
      id: this.id,
      direction: this.direction,
      state: this.state,
      remoteName: this.remoteName,
      remoteNumber: this.remoteNumber,
      cause: this.cause,
      endedText: this.endedText,
      dtmfSent: this.dtmfSent,
      media: this.media,
      text: callStateText(this),
    };
  }

  /** Runs `fn` after this call's earlier SDP steps (verto.media then verto.answer). */
  serial(fn) {
    const next = this._chain.then(fn);
    this._chain = next.catch(() => {});
    return next;
  }
}

/**
 * The calls of one session. Events (`on(type, fn)`): `change` (the call changed; read
 * `call`), `remote-stream` (a MediaStream to play).
 */
export class Phone extends Emitter {
  /**
   * @param {object} o
   * @param {import('./verto.js').VertoSession} o.session
   * @param {{RTCPeerConnection: Function, getUserMedia: Function}} [o.rtc]
   * @param {RTCIceServer[]} [o.iceServers]
   * @param {string} [o.callerIdName] shown to the called party (default: the login's user)
   * @param {string} [o.callerIdNumber] (default: the login's user)
   */
  constructor(o) {
    super();
    this.session = o.session;
    this.rtc = o.rtc ?? browserRTC();
    this.iceServers = o.iceServers ?? [];
    this.clock = o.clock ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (id) => globalThis.clearTimeout(id),
    };
    this.uuid = o.uuid ?? randomUUID;
    this.iceGatherTimeoutMs = o.iceGatherTimeoutMs ?? ICE_GATHER_TIMEOUT_MS;
    const user = String(this.session.login).split('@')[0];
    this.callerIdName = o.callerIdName || user;
    this.callerIdNumber = o.callerIdNumber || user;
    this.call = null;
    this._off = [
      this.session.on('request', (r) => this._onRequest(r)),
      this.session.on('socket-closed', (e) => this._onSocketClosed(e)),
      this.session.on('change', (info) => this._onSessionChange(info)),
    ];
  }

  /** `idle` when there never was a call, else the current or last call's state. */
  get callState() {
    return this.call ? this.call.state : 'idle';
  }

  /** Whether a call is in progress (a new one cannot start). */
  get busy() {
    return !!this.call && this.call.live;
  }

  /** Stops listening to the session (the page made a new one). */
  detach() {
    for (const off of this._off) off();
  }

  // ---- what the user does ------------------------------------------------------------

  /** Places a call to `number`. Resolves when the node has it (or it failed: see `call`). */
  async dial(number) {
    const dest = String(number ?? '').trim();
    if (!dest) throw new Error('Enter a number to call.');
    if (this.busy) throw new Error('A call is already in progress.');
    if (this.session.state !== 'ready') throw new Error('Not connected to the phone server.');
    const id = this.uuid();
    const call = new Call({
      id,
      direction: 'outbound',
      remoteNumber: dest,
      dialogParams: this._dialogParams({
        callID: id,
        destination_number: dest,
        caller_id_name: this.callerIdName,
        caller_id_number: this.callerIdNumber,
        remote_caller_id_name: 'Outbound Call',
        remote_caller_id_number: dest,
      }),
    });
    this._setCall(call);
    try {
      if (!(await this._startPeer(call))) return;
      await this._addMicrophone(call);
      await call.pc.setLocalDescription(await call.pc.createOffer());
      await iceGathered(call.pc, this.iceGatherTimeoutMs, this.clock);
      if (call.state !== 'dialing') return;
      this._update(call, 'trying');
      await this.session.request('verto.invite', {
        sdp: call.pc.localDescription.sdp,
        dialogParams: call.dialogParams,
      });
      if (call.state === 'trying') this._update(call, 'ringing');
    } catch (err) {
      this._failed(call, err);
    }
  }

  /** Answers the incoming call. */
  async answer() {
    const call = this.call;
    if (!call || call.state !== 'incoming') return;
    this._update(call, 'answering');
    try {
      if (!(await this._startPeer(call))) return;
      await this._answerOffer(call);
      if (call.state !== 'answering') return;
      await this.session.request('verto.answer', {
        sdp: call.pc.localDescription.sdp,
        dialogParams: call.dialogParams,
      });
      if (call.state === 'answering') this._update(call, 'active');
    } catch (err) {
      this._failed(call, err);
    }
  }

  /** Declines the incoming call (CALL_REJECTED). */
  decline() {
    if (this.call?.state === 'incoming') this.hangup();
  }

  /** Ends the call: declines an incoming one, hangs up any other. */
  hangup() {
    const call = this.call;
    if (!call || !call.live) return;
    const declined = call.state === 'incoming';
    const cause = declined ? 'CALL_REJECTED' : 'NORMAL_CLEARING';
    const tell = NODE_KNOWS.has(call.state);
    this._end(call, cause, declined ? 'You declined the call.' : 'You hung up.');
    if (tell) this._bye(call.id, cause);
  }

  /** Sends one DTMF digit (0-9, *, #, A-D) in the call, as verto.info. */
  async dtmf(digit) {
    const d = String(digit);
    if (!/^[0-9*#A-D]$/.test(d)) throw new Error(`Not a DTMF digit: ${d}`);
    const call = this.call;
    if (!call || !['active', 'early'].includes(call.state)) throw new Error('No call to send digits to.');
    call.dtmfSent += d;
    this._changed();
    await this.session.request('verto.info', { dtmf: d, dialogParams: { callID: call.id } });
  }

  // ---- what the node does --------------------------------------------------------------

  _onRequest({ method, params }) {
    const callID = params.callID;
    const call = this.call && this.call.id === callID ? this.call : null;
    switch (method) {
      case 'verto.invite':
        return this._onInvite(params);
      case 'verto.attach':
        return this._onAttach(params);
      // The node's answer to our offer: early media first (183), then the answer.
      case 'verto.media':
        if (call?.live && call.direction === 'outbound') this._onRemoteAnswer(call, params.sdp, 'early');
        return;
      case 'verto.answer':
        if (call?.live && call.direction === 'outbound') this._onRemoteAnswer(call, params.sdp, 'active');
        return;
      case 'verto.bye':
        if (call?.live) this._end(call, params.cause ?? null, causeText(params.cause, params.causeCode));
        return;
      case 'verto.display':
        if (call) {
          call.remoteName = params.display_name ?? call.remoteName;
          call.remoteNumber = params.display_number ?? call.remoteNumber;
          this._changed();
        }
        return;
      case 'verto.clientReady':
        return this._onClientReady(params);
      default:
        // verto.ping, verto.info (chat), verto.event, ...: answered by the session.
        return;
    }
  }

  _onInvite(params) {
    const { callID, sdp } = params;
    if (typeof callID !== 'string' || typeof sdp !== 'string') return;
    if (this.busy) {
      this._bye(callID, 'USER_BUSY');
      return;
    }
    const call = new Call({
      id: callID,
      direction: 'inbound',
      remoteName: params.caller_id_name ?? '',
      remoteNumber: params.caller_id_number ?? '',
      offer: sdp,
      dialogParams: this._inboundDialogParams(params),
    });
    this._setCall(call);
  }

  // The node re-offers a call this sessid had (after a reconnect, a page reload or a
  // takeover). Like Verto Communicator, answer it at once with a new peer connection:
  // the user already accepted this call.
  async _onAttach(params) {
    const { callID, sdp } = params;
    if (typeof callID !== 'string' || typeof sdp !== 'string') return;
    let call = this.call;
    if (call?.live && call.id !== callID) {
      this._bye(callID, 'USER_BUSY');
      return;
    }
    if (!call || call.id !== callID || !call.live) {
      // display_direction is the node's view: "inbound" means we placed the call.
      const weCalled = params.display_direction !== 'outbound';
      call = new Call({
        id: callID,
        direction: weCalled ? 'outbound' : 'inbound',
        remoteName: (weCalled ? params.callee_id_name : params.caller_id_name) ?? '',
        remoteNumber: (weCalled ? params.callee_id_number : params.caller_id_number) ?? '',
        dialogParams: weCalled
          ? this._dialogParams({
              callID,
              destination_number: params.callee_id_number ?? '',
              caller_id_name: this.callerIdName,
              caller_id_number: this.callerIdNumber,
              remote_caller_id_name: params.callee_id_name ?? '',
              remote_caller_id_number: params.callee_id_number ?? '',
            })
          : this._inboundDialogParams(params),
      });
      this._setCall(call);
    }
    call.offer = sdp;
    call.remoteSet = false;
    this._update(call, 'recovering');
    try {
      if (!(await this._startPeer(call))) return;
      await this._answerOffer(call);
      if (call.state !== 'recovering') return;
      await this.session.request('verto.attach', {
        sdp: call.pc.localDescription.sdp,
        dialogParams: call.dialogParams,
      });
      if (call.state === 'recovering') this._update(call, 'active');
    } catch (err) {
      this._failed(call, err);
    }
  }

  _onRemoteAnswer(call, sdp, state) {
    call.serial(async () => {
      if (typeof sdp === 'string' && sdp && !call.remoteSet && call.pc) {
        call.remoteSet = true;
        await call.pc.setRemoteDescription({ type: 'answer', sdp });
      }
      if (!call.live || call.state === 'active') return;
      if (state === 'active' || call.state !== 'early') this._update(call, state);
    }).catch((err) =>
      this._failed(call, err, {
        cause: 'INCOMPATIBLE_DESTINATION',
        text: `This browser could not use the other side's audio settings (${err?.message || err}).`,
      }),
    );
  }

  // verto.attach comes before verto.clientReady; a call waiting to be taken back that
  // the node did not list is gone (not answered before the drop, or timed out).
  _onClientReady(params) {
    const call = this.call;
    const listed = Array.isArray(params.reattached_sessions) ? params.reattached_sessions : [];
    if (call?.state === 'recovering' && !listed.includes(call.id)) {
      this._end(call, 'RECOVERY_ON_TIMER_EXPIRE', 'The call was lost while the connection was down.');
    }
  }

  _onSocketClosed({ retrying }) {
    const call = this.call;
    if (!call?.live || !retrying) return; // a session that stops is handled on `change`
    if (call.state === 'active' || call.state === 'recovering') {
      // FreeSWITCH keeps an answered call for a while and offers it back (verto.attach)
      // when this sessid logs in again; until then there is no audio.
      this._update(call, 'recovering');
    } else {
      // Calls not answered yet are hung up by the node when the socket drops.
      this._end(call, 'DESTINATION_OUT_OF_ORDER', 'The connection dropped before the call was answered.');
    }
  }

  _onSessionChange(info) {
    const call = this.call;
    if (!call?.live) return;
    if (info.state === 'punted') {
      this._end(call, null, 'The call moved to another tab or window.');
    } else if (info.state === 'failed' || info.state === 'closed') {
      this._end(call, null, 'The call ended: not connected to the phone server.');
    }
  }

  // ---- WebRTC ------------------------------------------------------------------------

  /** Opens the microphone (kept across re-attaches) and a new peer connection;
   * `false` when the call ended meanwhile. */
  async _startPeer(call) {
    if (!call.stream || !call.stream.getAudioTracks().some((t) => t.readyState !== 'ended')) {
      call.stream = await this.rtc.getUserMedia({ audio: true, video: false });
    }
    if (!call.live) {
      this._release(call);
      return false;
    }
    if (call.pc) closeQuietly(call.pc);
    const pc = new this.rtc.RTCPeerConnection({ iceServers: this.iceServers });
    call.pc = pc;
    pc.addEventListener('track', (ev) => {
      if (call.pc !== pc) return;
      const stream = ev.streams?.[0] ?? (globalThis.MediaStream ? new MediaStream([ev.track]) : null);
      call.remoteStream = stream;
      this._emit('remote-stream', stream);
    });
    pc.addEventListener('connectionstatechange', () => {
      if (call.pc !== pc) return;
      call.media = pc.connectionState;
      this._changed();
    });
    return true;
  }

  async _addMicrophone(call) {
    for (const track of call.stream.getAudioTracks()) call.pc.addTrack(track, call.stream);
  }

  // The remote offer goes in before our track, so the track reuses the transceiver the
  // offer created instead of adding an m-line the answer cannot carry.
  async _answerOffer(call) {
    await call.pc.setRemoteDescription({ type: 'offer', sdp: call.offer });
    call.remoteSet = true;
    await this._addMicrophone(call);
    await call.pc.setLocalDescription(await call.pc.createAnswer());
    await iceGathered(call.pc, this.iceGatherTimeoutMs, this.clock);
  }

  // ---- bookkeeping ---------------------------------------------------------------------

  _dialogParams(fields) {
    // What jquery.verto sends (captures 06, 10); FreeSWITCH reads callID, the numbers
    // and names, and ignores the rest.
    return {
      useVideo: false,
      useStereo: false,
      screenShare: false,
      useCamera: false,
      useMic: 'any',
      useSpeak: 'any',
      tag: 'remote-audio',
      localTag: null,
      login: this.session.login,
      videoParams: {},
      outgoingBandwidth: 'default',
      incomingBandwidth: 'default',
      dedEnc: false,
      audioParams: {},
      ...fields,
    };
  }

  _inboundDialogParams(params) {
    return this._dialogParams({
      callID: params.callID,
      destination_number: params.callee_id_number ?? this.callerIdNumber,
      caller_id_name: params.caller_id_name ?? '',
      caller_id_number: params.caller_id_number ?? '',
      callee_id_name: this.callerIdName,
      callee_id_number: this.callerIdNumber,
      remote_caller_id_name: params.caller_id_name ?? '',
      remote_caller_id_number: params.caller_id_number ?? '',
    });
  }

  _bye(callID, cause) {
    this.session
      .request('verto.bye', { dialogParams: { callID }, cause, causeCode: CAUSE_CODES[cause] })
      .catch(() => {}); // the call is over here either way
  }

  /** Ends `call` after `err`; tells the node unless the node refused it itself. */
  _failed(call, err, { cause = null, text = null } = {}) {
    if (!call.live) return;
    const refused = err?.kind === 'rpc';
    const words =
      text ??
      (refused
        ? err.data?.cause
          ? causeText(err.data.cause, err.data.causeCode)
          : `The server refused the call (${err.message}).`
        : err?.kind
          ? err.message
          : mediaErrorText(err));
    const tell = !refused && NODE_KNOWS.has(call.state) && this.session.state === 'ready';
    this._end(call, (refused && err.data?.cause) || cause, words);
    if (tell) this._bye(call.id, cause ?? 'NORMAL_CLEARING');
  }

  _end(call, cause, text) {
    if (!call.live) return;
    call.cause = cause;
    call.endedText = text;
    this._release(call);
    this._update(call, 'ended');
  }

  _release(call) {
    if (call.pc) closeQuietly(call.pc);
    call.pc = null;
    for (const t of call.stream?.getTracks() ?? []) t.stop();
    call.stream = null;
    if (call.remoteStream) {
      call.remoteStream = null;
      if (this.call === call) this._emit('remote-stream', null);
    }
  }

  _setCall(call) {
    if (this.call?.live) this._release(this.call);
    this.call = call;
    this._changed();
  }

  _update(call, state) {
    call.state = state;
    if (this.call === call) this._changed();
  }

  _changed() {
    this._emit('change', this.call);
  }
}

function closeQuietly(pc) {
  try {
    pc.close();
  } catch {
    // Already closed.
  }
}

function browserRTC() {
  return {
    RTCPeerConnection: globalThis.RTCPeerConnection,
    getUserMedia: async (constraints) => {
      // Browsers hide mediaDevices from pages not served over https:// (or localhost).
      const devices = globalThis.navigator?.mediaDevices;
      if (!devices?.getUserMedia) {
        const err = new Error('no microphone access outside https://');
        err.name = 'InsecureContextError';
        throw err;
      }
      return devices.getUserMedia(constraints);
    },
  };
}
