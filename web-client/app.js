// The page: reads the form, looks up where the login connects, runs one VertoSession
// and its Phone, and draws their state. All protocol work is in verto.js and call.js;
// this file only touches the DOM.

import { VertoSession, defaultStorage } from './verto.js';
import { Phone } from './call.js';
import { parseSettings, resolveConfig } from './config.js';
import { callStateText, partyName, statusLine } from './words.js';

const $ = (id) => document.getElementById(id);
const el = {
  status: $('status'),
  node: $('node'),
  error: $('error'),
  loginForm: $('login-form'),
  login: $('login'),
  password: $('password'),
  connect: $('connect'),
  disconnect: $('disconnect'),
  incoming: $('incoming'),
  incomingFrom: $('incoming-from'),
  answer: $('answer'),
  decline: $('decline'),
  callState: $('call-state'),
  dialForm: $('dial-form'),
  dialNumber: $('dial-number'),
  call: $('call'),
  hangup: $('hangup'),
  dialpad: $('dialpad'),
  dtmfSent: $('dtmf-sent'),
  audio: $('remote-audio'),
};

const LAST_LOGIN_KEY = 'vertogw.lastLogin';
const LIVE_STATES = new Set(['looking-up', 'connecting', 'logging-in', 'ready', 'reconnecting']);
const storage = defaultStorage();

// The page's own state while no session exists (before, during and after the lookup).
const app = {
  state: 'idle',
  login: '',
  error: null,
  callError: null,
  session: null,
  phone: null,
  lookup: 0, // bumped to forget a lookup still in flight
  ticker: null,
};

let settings;
let settingsError = null;
try {
  settings = parseSettings($('vertogw-settings')?.textContent);
} catch (err) {
  settings = {};
  settingsError = err;
}

/** Everything the page shows, in one object (also what window.vertoClient reads). */
function snapshot() {
  const s = app.session?.info;
  const call = app.phone?.call ?? null;
  return {
    state: s ? s.state : app.state,
    login: s ? s.login : app.login,
    node: s?.node ?? null,
    sessid: s?.sessid ?? null,
    url: s?.url ?? null,
    usingFallback: s?.usingFallback ?? false,
    attempt: s?.attempt ?? 0,
    maxAttempts: s?.maxAttempts ?? 0,
    retryInMs: s?.retryInMs ?? null,
    // The session's error while it has one (it has none when connected), else the page's.
    error: s?.error ?? app.callError ?? app.error ?? null,
    callState: call ? call.state : 'idle',
    call: call ? call.info : null,
  };
}

function render() {
  const info = snapshot();
  const live = LIVE_STATES.has(info.state);
  const ready = info.state === 'ready';
  const call = app.phone?.call ?? null;
  const busy = !!call?.live;
  const inCall = busy && ['active', 'early'].includes(call.state);

  el.status.textContent =
    info.state === 'looking-up' ? `Looking up the server for ${info.login}…` : statusLine(info);
  el.status.dataset.state = info.state;
  el.node.textContent = info.node ?? '—';
  el.error.hidden = !info.error;
  el.error.textContent = info.error?.text ?? '';
  el.error.dataset.kind = info.error?.kind ?? '';

  el.login.disabled = live;
  el.password.disabled = live;
  el.connect.disabled = live;
  el.disconnect.disabled = !live;

  el.callState.textContent = callStateText(call);
  el.callState.dataset.state = info.callState;
  el.incoming.hidden = info.callState !== 'incoming';
  el.incomingFrom.textContent = call && info.callState === 'incoming' ? partyName(call) : '';
  el.dialNumber.disabled = !ready || busy;
  el.call.disabled = !ready || busy;
  el.hangup.disabled = !busy || call.state === 'incoming';
  for (const b of el.dialpad.querySelectorAll('button')) b.disabled = !ready || (busy && !inCall);
  el.dtmfSent.textContent = call?.dtmfSent ?? '';
  document.title = info.callState === 'incoming' ? 'Incoming call · Phone' : 'Phone';

  // The "trying again in N s" countdown needs a redraw while it runs.
  if (info.state === 'reconnecting' && !app.ticker) app.ticker = setInterval(render, 500);
  if (info.state !== 'reconnecting' && app.ticker) {
    clearInterval(app.ticker);
    app.ticker = null;
  }
}

/** Closes the current session (hanging up its call first) and forgets it. */
function teardown() {
  app.lookup += 1;
  const { session, phone } = app;
  app.session = null;
  app.phone = null;
  if (phone) {
    phone.hangup(); // sends verto.bye while the socket is still open
    phone.detach();
  }
  session?.close();
  el.audio.srcObject = null;
}

async function connect() {
  const login = el.login.value.trim();
  const passwd = el.password.value;
  app.callError = null;
  if (!login || !passwd) {
    app.error = {
      kind: 'form',
      text: login ? 'Enter your password.' : 'Enter your login (user@domain).',
    };
    render();
    (login ? el.password : el.login).focus();
    return;
  }
  teardown();
  try {
    storage.setItem(LAST_LOGIN_KEY, login);
  } catch {
    // Only a convenience.
  }
  const ticket = app.lookup;
  Object.assign(app, { state: 'looking-up', login, error: null });
  render();
  let cfg;
  try {
    if (settingsError) throw settingsError;
    cfg = await resolveConfig(login, settings, {
      fetch: (...args) => fetch(...args),
      pageURL: location.href,
    });
  } catch (err) {
    if (ticket !== app.lookup) return;
    Object.assign(app, { state: 'failed', error: { kind: err.kind ?? 'config-failed', text: err.message } });
    render();
    return;
  }
  if (ticket !== app.lookup) return; // Disconnect was pressed during the lookup
  const session = new VertoSession({
    wsURL: cfg.wsURL,
    wsFallbackURL: cfg.wsFallbackURL,
    login,
    passwd,
    storage,
  });
  const phone = new Phone({ session, iceServers: cfg.iceServers, callerIdName: cfg.callerIdName });
  Object.assign(app, { session, phone, state: 'idle', error: null });
  session.on('change', render);
  phone.on('change', render);
  phone.on('remote-stream', (stream) => {
    el.audio.srcObject = stream;
    // The Call or Answer click lets the audio play; a call taken back after a reload
    // has had no click yet, and the browser may hold the sound until there is one.
    if (stream) el.audio.play?.().catch(() => waitForGesture());
  });
  session.connect();
}

function disconnect() {
  teardown();
  Object.assign(app, { state: 'closed', error: null, callError: null });
  render();
}

function waitForGesture() {
  app.callError = { kind: 'autoplay', text: 'Click anywhere on the page to hear the call.' };
  render();
  document.addEventListener(
    'pointerdown',
    () => {
      if (app.callError?.kind === 'autoplay') app.callError = null;
      el.audio.play?.().catch(() => {});
      render();
    },
    { once: true },
  );
}

/** Runs a call action, showing what went wrong in the error line. */
function callAction(fn) {
  app.callError = null;
  Promise.resolve()
    .then(fn)
    .catch((err) => {
      app.callError = { kind: 'call', text: err?.message ?? String(err) };
    })
    .finally(render);
  render();
}

function pressDigit(digit) {
  const phone = app.phone;
  if (phone?.call?.live && ['active', 'early'].includes(phone.call.state)) {
    callAction(() => phone.dtmf(digit));
  } else if (!phone?.busy) {
    el.dialNumber.value += digit;
    el.dialNumber.focus();
  }
}

el.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  connect();
});
el.disconnect.addEventListener('click', disconnect);
el.dialForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  callAction(() => app.phone?.dial(el.dialNumber.value));
});
el.hangup.addEventListener('click', () => callAction(() => app.phone?.hangup()));
el.answer.addEventListener('click', () => callAction(() => app.phone?.answer()));
el.decline.addEventListener('click', () => callAction(() => app.phone?.decline()));
el.dialpad.addEventListener('click', (ev) => {
  const button = ev.target.closest('button[data-digit]');
  if (button && !button.disabled) pressDigit(button.dataset.digit);
});
// Keys 0-9, * and # send DTMF during a call, unless typing into a field.
document.addEventListener('keydown', (ev) => {
  if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const call = app.phone?.call;
  if (/^[0-9*#]$/.test(ev.key) && call?.live && ['active', 'early'].includes(call.state)) {
    pressDigit(ev.key);
  }
});

// Read-only state for tests and embedding pages.
Object.defineProperty(window, 'vertoClient', {
  value: Object.freeze({
    get state() { return snapshot().state; },
    get node() { return snapshot().node; },
    get callState() { return snapshot().callState; },
    get callID() { return snapshot().call?.id ?? null; },
    get error() { return snapshot().error?.text ?? null; },
    get errorKind() { return snapshot().error?.kind ?? null; },
    get sessid() { return snapshot().sessid; },
    get url() { return snapshot().url; },
    get attempt() { return snapshot().attempt; },
    get dtmfSent() { return snapshot().call?.dtmfSent ?? ''; },
    snapshot: () => structuredClone(snapshot()),
  }),
  enumerable: true,
});

// The login comes from ?login=, else the last one used in this browser.
let lastLogin = null;
try {
  lastLogin = storage.getItem(LAST_LOGIN_KEY);
} catch {
  // Nothing stored.
}
el.login.value = new URLSearchParams(location.search).get('login') ?? lastLogin ?? '';
(el.login.value ? el.password : el.login).focus();
if (settingsError) app.error = { kind: settingsError.kind, text: settingsError.message };
render();
