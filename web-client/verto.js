// A Verto session: one WebSocket to the gateway, the login sequence real Verto clients
// use, JSON-RPC request/response matching, answers to every node request, and
// reconnecting with backoff. No DOM access: the browser's WebSocket, localStorage and
// timers are injected, so tests drive it with fakes.

import { AUTH_REQUIRED, describeClose, describeLoginError, hostOf } from './words.js';

/** Tunables; every one can be overridden per session. */
export const DEFAULTS = Object.freeze({
  /** How long a request waits for its answer. */
  requestTimeoutMs: 10_000,
  /** From opening the socket to an accepted login. */
  loginTimeoutMs: 15_000,
  /** First reconnect delay; doubled per attempt up to `backoffMaxMs`. */
  backoffBaseMs: 1_000,
  backoffMaxMs: 8_000,
  /** Each delay is spread by ±this fraction, so tabs that lost the same gateway do
   * not all come back in the same instant. */
  backoffJitter: 0.2,
  /** Reconnect attempts before giving up. 10 attempts take about a minute, well within
   * the 120 s FreeSWITCH keeps a dropped call for re-attaching. */
  maxAttempts: 10,
  /** Consecutive failed connects after which the other address (wsFallbackURL) is tried. */
  fallbackAfter: 3,
});

/** The states a session goes through; `punted`, `failed` and `closed` end it. */
export const STATES = Object.freeze([
  'idle', 'connecting', 'logging-in', 'ready', 'reconnecting', 'punted', 'failed', 'closed',
]);

/** A failed request: a JSON-RPC error from the server or a local failure, in words. */
export class VertoError extends Error {
  /**
   * @param {string} kind fixed category (`rpc`, `timeout`, `disconnected`, ...)
   * @param {string} text plain words for the user
   * @param {object} [extra] `code` and `rpcMessage` of a JSON-RPC error, `data` its object
   */
  constructor(kind, text, extra = {}) {
    super(text);
    this.name = 'VertoError';
    this.kind = kind;
    this.code = extra.code;
    this.rpcMessage = extra.rpcMessage;
    this.data = extra.data;
  }

  /** Wraps the `error` object of a JSON-RPC answer. */
  static fromRpc(error) {
    const err = error && typeof error === 'object' ? error : {};
    const message = typeof err.message === 'string' ? err.message : 'unknown error';
    return new VertoError('rpc', message, { code: err.code, rpcMessage: message, data: err });
  }
}

/**
 * The delay before reconnect attempt `attempt` (1-based): 1, 2, 4, 8, 8, ... seconds with
 * the defaults, each spread by the jitter; `random` is in [0, 1).
 */
export function backoffDelay(attempt, opts = DEFAULTS, random = 0.5) {
  const exp = Math.min(opts.backoffBaseMs * 2 ** Math.max(0, attempt - 1), opts.backoffMaxMs);
  const spread = 1 - opts.backoffJitter + 2 * opts.backoffJitter * random;
  return Math.round(exp * spread);
}

/**
 * The address to try after `failures` consecutive failed connects: the primary one, then
 * after every `fallbackAfter` failures the other one (when there is a fallback).
 */
export function pickURL(failures, primary, fallback, fallbackAfter = DEFAULTS.fallbackAfter) {
  if (!fallback) return primary;
  return Math.floor(failures / fallbackAfter) % 2 === 0 ? primary : fallback;
}

/** The few events a session or a phone sends: `on(type, fn)` returns the unsubscriber. */
export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this._listeners.get(type)?.delete(fn);
  }

  _emit(type, detail) {
    for (const fn of [...(this._listeners.get(type) ?? [])]) {
      try {
        fn(detail);
      } catch (err) {
        // A broken listener must not break the session or the call.
        globalThis.console?.error?.(err);
      }
    }
  }
}

/** A random UUID, also where `crypto.randomUUID` is missing (non-secure contexts). */
export function randomUUID() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** localStorage when usable (it throws in some private modes), else memory. */
export function defaultStorage() {
  try {
    const s = globalThis.localStorage;
    const probe = '__vertogw_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    const map = new Map();
    return {
      getItem: (k) => (map.has(k) ? map.get(k) : null),
      setItem: (k, v) => map.set(k, String(v)),
      removeItem: (k) => map.delete(k),
    };
  }
}

const realClock = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
  now: () => Date.now(),
};

const OPEN = 1;

/**
 * One user's Verto session. Events (`on(type, fn)`):
 * - `change`: state, node, error or retry information changed (read `info`);
 * - `logged-in`: a login was accepted (`{sessid}`), after every (re)connect;
 * - `request`: the node sent a request, already answered (`{method, params, id}`);
 * - `socket-closed`: the socket is gone (`{retrying, wasReady, code, reason}`).
 */
export class VertoSession extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.wsURL where to connect
   * @param {string} [o.wsFallbackURL] where to connect after repeated failures
   * @param {string} o.login `user@domain`
   * @param {string} o.passwd never stored, never logged
   * @param {Function} [o.WebSocket] the WebSocket constructor
   * @param {Storage} [o.storage] keeps the sessid across reloads
   * @param {object} [o.clock] `{setTimeout, clearTimeout, now}`
   * @param {Function} [o.random] `Math.random`-like, for the jitter
   * @param {Function} [o.uuid] makes the sessid
   */
  constructor(o) {
    super();
    if (!o?.wsURL || !o.login) throw new TypeError('VertoSession needs wsURL and login');
    this.opts = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS)) if (o[key] !== undefined) this.opts[key] = o[key];
    this.wsURL = o.wsURL;
    this.wsFallbackURL = o.wsFallbackURL || null;
    this.login = o.login;
    this._passwd = o.passwd ?? '';
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this._storage = o.storage ?? defaultStorage();
    this._clock = o.clock ?? realClock;
    this._random = o.random ?? Math.random;
    this._uuid = o.uuid ?? randomUUID;
    this._pending = new Map();
    this._nextId = 1;
    this._ws = null;
    this._stopped = false;
    this._loginTimer = null;
    this._retryTimer = null;
    this._attemptError = null;

    this.state = 'idle';
    this.node = null;
    this.error = null;
    this.url = null;
    this.attempt = 0;
    this.failures = 0;
    this.retryAt = null;
    this.sessid = this._loadSessid();
  }

  /** A read-only snapshot for the UI and tests. */
  get info() {
    return {
      state: this.state,
      login: this.login,
      node: this.node,
      sessid: this.sessid,
      url: this.url,
      usingFallback: !!this.wsFallbackURL && this.url === this.wsFallbackURL,
      attempt: this.attempt,
      maxAttempts: this.opts.maxAttempts,
      retryInMs: this.retryAt === null ? null : Math.max(0, this.retryAt - this._clock.now()),
      error: this.error ? { ...this.error } : null,
    };
  }

  /** Starts (or, after it ended, restarts) the session. */
  connect() {
    if (!['idle', 'punted', 'failed', 'closed'].includes(this.state)) return;
    this._stopped = false;
    this.attempt = 0;
    this.failures = 0;
    this.error = null;
    this._open();
  }

  /** Ends the session on purpose: closes the socket and never reconnects. */
  close() {
    this._stopped = true;
    this._clearRetry();
    this.error = null;
    this._set('closed');
    this._dropSocket(1000, 'logout');
  }

  /**
   * Sends a request once logged in; resolves with its `result`, rejects with a
   * VertoError (`rpc` with the server's error, `timeout`, `not-connected`, `disconnected`).
   * `sessid` is added to the params, as jquery.verto does on every call.
   */
  request(method, params = {}, { timeoutMs } = {}) {
    if (this.state !== 'ready') {
      return Promise.reject(new VertoError('not-connected', 'Not connected to the phone server.'));
    }
    return this._call(method, params, timeoutMs);
  }

  // ---- socket lifecycle ------------------------------------------------------------

  _open() {
    this._retryTimer = null;
    this.retryAt = null;
    this._attemptError = null;
    this.url = pickURL(this.failures, this.wsURL, this.wsFallbackURL, this.opts.fallbackAfter);
    this.node = null; // a reconnect may land elsewhere (another node, the fallback)
    let ws;
    try {
      ws = new this._WebSocket(this.url);
    } catch {
      this._fail({ kind: 'bad-url', text: `The server address ${this.url} is not valid.` });
      return;
    }
    this._ws = ws;
    ws.onopen = () => ws === this._ws && this._onOpen();
    ws.onmessage = (ev) => ws === this._ws && this._onText(ev.data);
    ws.onclose = (ev) => ws === this._ws && this._onSocketClose(ev?.code, ev?.reason);
    // An error event is always followed by a close event, which does the work.
    ws.onerror = () => {};
    this._loginTimer = this._clock.setTimeout(() => {
      this._loginTimer = null;
      this._retryLater({ kind: 'timeout', text: 'The server did not answer the login in time.' });
    }, this.opts.loginTimeoutMs);
    this._set('connecting');
  }

  _onOpen() {
    this._set('logging-in');
    this._logIn(this._ws);
  }

  // jquery.verto's sequence: an empty `login` first (an auth-enabled node, and the
  // gateway, answer -32000), then the credentialed one. Both carry the sessid, so a
  // reconnect lands on the same FreeSWITCH session and gets its calls back.
  async _logIn(ws) {
    let result;
    try {
      try {
        result = await this._call('login', {});
      } catch (err) {
        if (!(err instanceof VertoError) || err.code !== AUTH_REQUIRED) throw err;
        if (ws !== this._ws) return;
        result = await this._call('login', {
          login: this.login,
          passwd: this._passwd,
          loginParams: {},
          userVariables: {},
        });
      }
    } catch (err) {
      if (ws !== this._ws) return;
      const why = describeLoginError(err);
      if (why.kind === 'session-in-use') this._forgetSessid();
      if (why.retry) this._retryLater(why);
      else this._fail(why);
      return;
    }
    if (ws !== this._ws) return;
    this._loggedIn(result);
  }

  _loggedIn(result) {
    this._clock.clearTimeout(this._loginTimer);
    this._loginTimer = null;
    // The server's sessid wins (a re-login on a socket keeps the first one).
    if (typeof result?.sessid === 'string' && result.sessid && result.sessid !== this.sessid) {
      this.sessid = result.sessid;
      this._storeSessid();
    }
    this.attempt = 0;
    this.failures = 0;
    this.error = null;
    this._set('ready');
    this._emit('logged-in', { sessid: this.sessid });
  }

  _onSocketClose(code, reason) {
    this._ws = null;
    this._afterClose(code ?? 1006, reason ?? '');
  }

  /** Drops the socket of a failed attempt (the gateway keeps it open) and retries. */
  _retryLater(why) {
    this._attemptError = why;
    const ws = this._ws;
    this._ws = null;
    try {
      ws?.close(1000);
    } catch {
      // Already closing.
    }
    this._afterClose(1000, '');
  }

  /** Ends the session for a reason retrying cannot fix. */
  _fail(why) {
    this._stopped = true;
    this._clearRetry();
    this.error = { kind: why.kind, text: why.text };
    this._set('failed');
    this._dropSocket(1000, '');
  }

  _dropSocket(code, reason) {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
    this._afterClose(code, reason, !!ws);
  }

  _afterClose(code, reason, hadSocket = true) {
    this._clock.clearTimeout(this._loginTimer);
    this._loginTimer = null;
    this._rejectPending();
    const wasReady = this.state === 'ready';
    if (this._stopped) {
      if (hadSocket) this._emit('socket-closed', { retrying: false, wasReady, code, reason });
      return;
    }
    if (wasReady) {
      this.error = { kind: 'disconnected', text: describeClose(code, reason) };
    } else {
      this.failures += 1;
      this.error = this._attemptError
        ? { kind: this._attemptError.kind, text: this._attemptError.text }
        : { kind: 'unreachable', text: `Cannot reach the server at ${hostOf(this.url)}.` };
    }
    this.attempt += 1;
    if (this.attempt > this.opts.maxAttempts) {
      this._stopped = true;
      this.error = {
        kind: 'gave-up',
        text: `Could not connect after ${this.opts.maxAttempts} attempts. ${this.error.text} Press Connect to try again.`,
      };
      this._set('failed');
      this._emit('socket-closed', { retrying: false, wasReady, code, reason });
      return;
    }
    const delay = backoffDelay(this.attempt, this.opts, this._random());
    this.retryAt = this._clock.now() + delay;
    this._retryTimer = this._clock.setTimeout(() => this._open(), delay);
    this._set('reconnecting');
    this._emit('socket-closed', { retrying: true, wasReady, code, reason });
  }

  _clearRetry() {
    if (this._retryTimer !== null) this._clock.clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this.retryAt = null;
  }

  // ---- messages --------------------------------------------------------------------

  _onText(data) {
    // `#SP…` frames are FreeSWITCH's speed test, not JSON-RPC.
    if (typeof data !== 'string' || data.startsWith('#')) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (m && typeof m === 'object') this._onMessage(m);
    }
  }

  _onMessage(m) {
    // FreeSWITCH numbers its own requests from one node-wide counter, so their ids can
    // equal ours: anything with a `method` is a request, never an answer.
    if (typeof m.method === 'string') {
      this._onRequest(m);
      return;
    }
    const pending = this._pending.get(m.id);
    if (!pending || !('result' in m || 'error' in m)) return;
    this._pending.delete(m.id);
    this._clock.clearTimeout(pending.timer);
    if (m.error !== undefined && m.error !== null) pending.reject(VertoError.fromRpc(m.error));
    else pending.resolve(m.result ?? {});
  }

  _onRequest(m) {
    // Every request gets the answer jquery.verto gives; FreeSWITCH ignores its content.
    if (m.id !== undefined && m.id !== null) {
      this._send({ jsonrpc: '2.0', id: m.id, result: { method: m.method } });
    }
    const params = m.params && typeof m.params === 'object' ? m.params : {};
    // Which node serves us, where it says so: the simulated node names itself in
    // clientReady; a real FreeSWITCH only in the channel variables of a call.
    const host = params.variables?.['FreeSWITCH-Hostname'];
    if (m.method === 'verto.clientReady' && typeof params.sim_node === 'string') {
      this.node = params.sim_node;
      this._changed();
    } else if (this.node === null && typeof host === 'string' && host) {
      this.node = host;
      this._changed();
    }
    if (m.method === 'verto.punt') {
      this._stopped = true;
      this._clearRetry();
      this.error = {
        kind: 'punted',
        text: 'This session was taken over by another tab or window, so it will not reconnect here.',
      };
      this._set('punted');
      this._dropSocket(1000, '');
    }
    this._emit('request', { method: m.method, params, id: m.id });
  }

  _call(method, params, timeoutMs = this.opts.requestTimeoutMs) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = this._clock.setTimeout(() => {
        this._pending.delete(id);
        reject(new VertoError('timeout', 'The server did not answer in time.'));
      }, timeoutMs);
      this._pending.set(id, { resolve, reject, timer });
      const sent = this._send({
        jsonrpc: '2.0',
        method,
        params: { ...params, sessid: this.sessid },
        id,
      });
      if (!sent) {
        this._pending.delete(id);
        this._clock.clearTimeout(timer);
        reject(new VertoError('not-connected', 'Not connected to the phone server.'));
      }
    });
  }

  _send(obj) {
    const ws = this._ws;
    if (!ws || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  _rejectPending() {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      this._clock.clearTimeout(p.timer);
      p.reject(new VertoError('disconnected', 'The connection closed before the server answered.'));
    }
  }

  // ---- sessid ----------------------------------------------------------------------

  // One sessid per login and browser profile: a reload or a reconnect presents the same
  // one (so FreeSWITCH re-attaches its calls), and a second tab of the same login takes
  // the session over (the first one gets verto.punt), as with jquery.verto.
  get _sessidKey() {
    return `vertogw.sessid.${this.login}`;
  }

  _loadSessid() {
    let id = null;
    try {
      id = this._storage.getItem(this._sessidKey);
    } catch {
      // Storage refused: a fresh sessid per page.
    }
    if (!id) {
      id = this._uuid();
      this.sessid = id;
      this._storeSessid();
    }
    return id;
  }

  _storeSessid() {
    try {
      this._storage.setItem(this._sessidKey, this.sessid);
    } catch {
      // Storage refused: the sessid lives as long as the page.
    }
  }

  _forgetSessid() {
    try {
      this._storage.removeItem(this._sessidKey);
    } catch {
      // Nothing stored.
    }
    this.sessid = this._uuid();
  }

  // ---- events ----------------------------------------------------------------------

  _set(state) {
    this.state = state;
    this._changed();
  }

  _changed() {
    this._emit('change', this.info);
  }

}
