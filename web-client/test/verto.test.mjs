import { test } from 'node:test';
import assert from 'node:assert/strict';

import { VertoSession, VertoError, DEFAULTS, backoffDelay, pickURL } from '../verto.js';
import { describeLoginError, describeClose, statusLine } from '../words.js';
import { FakeClock, MemoryStorage, LOGIN, flush, logIn, refuseLogin, setup } from './fakes.mjs';

test('logs in as jquery.verto does: an empty login, then the credentials after -32000', async () => {
  const { session, sockets, storage } = setup();
  const states = [];
  session.on('change', (info) => states.push(info.state));
  session.connect();
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, 'wss://gw.test/');
  assert.equal(session.state, 'connecting');

  const ws = sockets[0];
  ws.open();
  await flush();
  assert.equal(session.state, 'logging-in');
  const first = ws.last();
  assert.deepEqual(first, { jsonrpc: '2.0', method: 'login', params: { sessid: 'uuid-1' }, id: first.id });

  ws.receive({ jsonrpc: '2.0', id: first.id, error: { code: -32000, message: 'Authentication Required' } });
  await flush();
  const second = ws.last();
  assert.equal(second.method, 'login');
  assert.notEqual(second.id, first.id);
  assert.deepEqual(second.params, {
    login: LOGIN,
    passwd: '1234',
    loginParams: {},
    userVariables: {},
    sessid: 'uuid-1',
  });

  ws.receive({ jsonrpc: '2.0', id: second.id, result: { message: 'logged in', sessid: 'uuid-1' } });
  await flush();
  assert.equal(session.state, 'ready');
  assert.equal(session.error, null);
  assert.deepEqual(states, ['connecting', 'logging-in', 'ready']);
  assert.equal(storage.getItem(`vertogw.sessid.${LOGIN}`), 'uuid-1');
});

test('the sessid is kept in storage, so a reload presents the same one; each login has its own', () => {
  const storage = new MemoryStorage();
  const a = setup({ storage }).session;
  const again = setup({ storage }).session;
  assert.equal(again.sessid, a.sessid);
  const other = setup({ storage, login: '1001@acme.test', uuid: () => 'other-uuid' }).session;
  assert.equal(other.sessid, 'other-uuid');
  assert.equal(storage.getItem('vertogw.sessid.1001@acme.test'), 'other-uuid');
});

test('the sessid the server answers with wins and is stored', async () => {
  const { session, sockets, storage } = setup();
  session.connect();
  await logIn(sockets[0], { sessid: 'server-chosen' });
  assert.equal(session.sessid, 'server-chosen');
  assert.equal(storage.getItem(`vertogw.sessid.${LOGIN}`), 'server-chosen');
});

test('a profile without auth accepts the empty login: no second login is sent', async () => {
  const { session, sockets } = setup();
  session.connect();
  const ws = sockets[0];
  ws.open();
  await flush();
  ws.receive({ jsonrpc: '2.0', id: ws.last().id, result: { message: 'logged in', sessid: 'uuid-1' } });
  await flush();
  assert.equal(session.state, 'ready');
  assert.equal(ws.requests('login').length, 1);
});

test('every node request is answered with its id and method, as FreeSWITCH clients do', async () => {
  const { session, sockets } = setup();
  const seen = [];
  session.on('request', (r) => seen.push(r.method));
  session.connect();
  const ws = sockets[0];
  await logIn(ws);

  assert.deepEqual(ws.last(), { jsonrpc: '2.0', id: 16, result: { method: 'verto.clientReady' } });
  assert.equal(session.node, 'fs1');
  assert.equal(session.info.node, 'fs1');

  for (const [id, method, params] of [
    [40, 'verto.ping', { serno: 1795684199 }],
    [41, 'verto.invite', { callID: 'c1', sdp: 'v=0' }],
    [42, 'verto.answer', { callID: 'c1', sdp: 'v=0' }],
    [43, 'verto.media', { callID: 'c1', sdp: 'v=0' }],
    [44, 'verto.bye', { callID: 'c1', causeCode: 16, cause: 'NORMAL_CLEARING' }],
    [45, 'verto.attach', { callID: 'c1', sdp: 'v=0' }],
    [46, 'verto.info', { msg: { body: 'hi' } }],
    [47, 'verto.event', { eventChannel: 'x' }],
    [48, 'verto.display', { callID: 'c1' }],
    [49, 'verto.somethingNew', {}],
  ]) {
    ws.receive({ jsonrpc: '2.0', id, method, params });
    assert.deepEqual(ws.last(), { jsonrpc: '2.0', id, result: { method } }, method);
  }
  // A real FreeSWITCH names itself only in a call's channel variables.
  const { session: real, sockets: realSockets } = setup();
  real.connect();
  await logIn(realSockets[0], { node: null });
  assert.equal(real.node, null);
  realSockets[0].receive({
    jsonrpc: '2.0',
    id: 57,
    method: 'verto.answer',
    params: { callID: 'c1', sdp: 'v=0', variables: { 'FreeSWITCH-Hostname': 'vm' } },
  });
  assert.equal(real.node, 'vm');

  const before = ws.sent.length;
  ws.receive({ jsonrpc: '2.0', method: 'verto.event', params: {} }); // a notification: no id
  assert.equal(ws.sent.length, before);
  assert.deepEqual(seen.slice(0, 3), ['verto.clientReady', 'verto.ping', 'verto.invite']);
});

test('answers are matched to requests by id, never to node requests that reuse the id', async () => {
  const { session, sockets } = setup();
  session.connect();
  const ws = sockets[0];
  await logIn(ws);

  const a = session.request('echo', { n: 1 });
  const b = session.request('verto.info', { dtmf: '1', dialogParams: { callID: 'c' } });
  const [reqA, reqB] = ws.requests().slice(-2);
  assert.deepEqual(reqA.params, { n: 1, sessid: 'uuid-1' });
  assert.deepEqual(reqB.params, { dtmf: '1', dialogParams: { callID: 'c' }, sessid: 'uuid-1' });

  // FreeSWITCH's request ids come from one node-wide counter and can equal ours.
  ws.receive({ jsonrpc: '2.0', id: reqA.id, method: 'verto.ping', params: {} });
  ws.receive({ jsonrpc: '2.0', id: reqB.id, result: { message: 'SENT', sessid: 'uuid-1' } });
  ws.receive({ jsonrpc: '2.0', id: reqA.id, result: { n: 1, sessid: 'uuid-1' } });
  assert.deepEqual(await b, { message: 'SENT', sessid: 'uuid-1' });
  assert.deepEqual(await a, { n: 1, sessid: 'uuid-1' });

  const c = session.request('verto.bye', { dialogParams: { callID: 'gone' } });
  const reqC = ws.last();
  ws.receive({
    jsonrpc: '2.0',
    id: reqC.id,
    error: { callID: 'gone', message: 'CALL DOES NOT EXIST', code: -32002 },
  });
  await assert.rejects(c, (err) => {
    assert.ok(err instanceof VertoError);
    assert.equal(err.kind, 'rpc');
    assert.equal(err.code, -32002);
    assert.equal(err.message, 'CALL DOES NOT EXIST');
    assert.equal(err.data.callID, 'gone');
    return true;
  });
});

test('a request without an answer fails after its timeout; in-flight requests fail on close', async () => {
  const { session, sockets, clock } = setup({ requestTimeoutMs: 5000 });
  session.connect();
  const ws = sockets[0];
  await logIn(ws);
  const slow = assert.rejects(session.request('echo', {}), {
    kind: 'timeout',
    message: 'The server did not answer in time.',
  });
  await clock.advance(5000);
  await slow;

  const cut = session.request('echo', {});
  ws.drop(1006);
  await assert.rejects(cut, { kind: 'disconnected' });
  await assert.rejects(session.request('echo', {}), { kind: 'not-connected' });
});

test('speed-test frames, garbage and unknown answers are ignored; batches are read', async () => {
  const { session, sockets } = setup();
  session.connect();
  const ws = sockets[0];
  await logIn(ws);
  const sent = ws.sent.length;
  ws.receive('#SPU 1200');
  ws.receive('not json');
  ws.receive('42');
  ws.receive({ jsonrpc: '2.0', id: 999, result: {} });
  assert.equal(ws.sent.length, sent);
  assert.equal(session.state, 'ready');

  ws.receive([
    { jsonrpc: '2.0', id: 70, method: 'verto.ping', params: {} },
    { jsonrpc: '2.0', id: 71, method: 'verto.ping', params: {} },
  ]);
  assert.deepEqual(ws.messages().slice(-2).map((m) => m.id), [70, 71]);
});

test('verto.punt is answered, told in words, and the session never reconnects', async () => {
  const { session, sockets, clock } = setup();
  const closed = [];
  session.on('socket-closed', (e) => closed.push(e));
  session.connect();
  const ws = sockets[0];
  await logIn(ws);
  ws.receive({ jsonrpc: '2.0', id: 71, method: 'verto.punt', params: {} });
  assert.deepEqual(ws.last(), { jsonrpc: '2.0', id: 71, result: { method: 'verto.punt' } });
  assert.equal(session.state, 'punted');
  assert.equal(session.error.kind, 'punted');
  assert.match(session.error.text, /another tab or window/);
  assert.deepEqual(ws.closedWith, { code: 1000, reason: '' });
  assert.equal(closed.length, 1);
  assert.equal(closed[0].retrying, false);

  ws.drop(1000); // the node's close arrives afterwards
  await clock.advance(10 * 60_000);
  assert.equal(sockets.length, 1);
  assert.equal(session.state, 'punted');
  assert.match(statusLine(session.info), /another tab or window/);
});

test('after a drop it reconnects to the same address with the same sessid and logs in again', async () => {
  const { session, sockets, clock } = setup();
  session.connect();
  await logIn(sockets[0]);
  const closed = [];
  session.on('socket-closed', (e) => closed.push(e));

  sockets[0].drop(1014, 'node connection lost');
  assert.equal(session.state, 'reconnecting');
  assert.equal(session.error.text, 'The connection to the phone server was lost.');
  assert.deepEqual(closed, [{ retrying: true, wasReady: true, code: 1014, reason: 'node connection lost' }]);
  assert.equal(statusLine(session.info), 'Not connected. Trying again in 1 s (attempt 1 of 10)…');

  await clock.advance(999);
  assert.equal(sockets.length, 1);
  await clock.advance(1);
  assert.equal(sockets.length, 2);
  assert.equal(sockets[1].url, 'wss://gw.test/');
  assert.match(statusLine(session.info), /^Connecting to gw\.test \(attempt 1 of 10\)…$/);

  await logIn(sockets[1]);
  assert.equal(session.state, 'ready');
  assert.equal(session.attempt, 0);
  for (const login of sockets[1].requests('login')) assert.equal(login.params.sessid, 'uuid-1');
});

test('reconnects back off 1, 2, 4, 8, 8… s, try the fallback after 3 failed connects, and give up', async () => {
  const { session, sockets, clock } = setup({ wsFallbackURL: 'wss://backup.test/' });
  session.connect();
  const delays = [];
  for (let i = 0; i < DEFAULTS.maxAttempts; i++) {
    sockets[i].drop(1006); // the connection fails before it opens
    assert.equal(session.state, 'reconnecting');
    assert.equal(session.error.kind, 'unreachable');
    const [delay] = clock.pendingDelays();
    delays.push(delay);
    await clock.advance(delay);
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000, 8000]);
  assert.deepEqual(
    sockets.map((s) => s.url),
    [
      'wss://gw.test/', 'wss://gw.test/', 'wss://gw.test/',
      'wss://backup.test/', 'wss://backup.test/', 'wss://backup.test/',
      'wss://gw.test/', 'wss://gw.test/', 'wss://gw.test/',
      'wss://backup.test/', 'wss://backup.test/',
    ],
  );
  assert.equal(sockets[3].url, session.wsFallbackURL);

  sockets[10].drop(1006);
  assert.equal(session.state, 'failed');
  assert.equal(session.error.kind, 'gave-up');
  assert.match(session.error.text, /^Could not connect after 10 attempts\. Cannot reach the server at backup\.test\. Press Connect/);
  assert.deepEqual(clock.pendingDelays(), []);
  await clock.advance(60_000);
  assert.equal(sockets.length, 11);

  // Connect starts over from the primary address.
  session.connect();
  assert.equal(sockets.length, 12);
  assert.equal(sockets[11].url, 'wss://gw.test/');
});

test('a successful login resets the count, so the next drop starts at 1 s on the primary address', async () => {
  const { session, sockets, clock } = setup({ wsFallbackURL: 'wss://backup.test/' });
  session.connect();
  for (let i = 0; i < 3; i++) {
    sockets[i].drop(1006);
    await clock.advance(clock.pendingDelays()[0]);
  }
  assert.equal(sockets[3].url, 'wss://backup.test/');
  assert.match(statusLine(session.info), /\(fallback address\)/);
  await logIn(sockets[3]);
  assert.equal(session.state, 'ready');
  sockets[3].drop(1001);
  assert.equal(session.error.text, 'The server is restarting.');
  assert.deepEqual(clock.pendingDelays(), [1000]);
  await clock.advance(1000);
  assert.equal(sockets[4].url, 'wss://gw.test/');
});

test('backoff jitter spreads each delay by at most 20%', () => {
  assert.equal(backoffDelay(1, DEFAULTS, 0), 800);
  assert.equal(backoffDelay(1, DEFAULTS, 0.5), 1000);
  assert.equal(backoffDelay(1, DEFAULTS, 0.999999), 1200);
  assert.equal(backoffDelay(3, DEFAULTS, 0.5), 4000);
  assert.equal(backoffDelay(4, DEFAULTS, 0), 6400);
  assert.equal(backoffDelay(30, DEFAULTS, 0.5), 8000);
  assert.equal(pickURL(0, 'a', null), 'a');
  assert.equal(pickURL(7, 'a', null), 'a');
  assert.deepEqual([0, 1, 2, 3, 5, 6].map((f) => pickURL(f, 'a', 'b', 3)), ['a', 'a', 'a', 'b', 'b', 'a']);
});

test('a wrong password ends the session with words and no retry', async () => {
  const { session, sockets, clock } = setup();
  session.connect();
  await refuseLogin(sockets[0], { code: -32001, message: 'Authentication Failure' });
  assert.equal(session.state, 'failed');
  assert.deepEqual(session.error, { kind: 'wrong-password', text: 'Wrong password for this login.' });
  assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: '' });
  await clock.advance(120_000);
  assert.equal(sockets.length, 1);
  assert.equal(statusLine(session.info), 'Not connected');
});

test('the cool-down and an unknown login end the session with their own words', async () => {
  for (const [message, kind, text] of [
    ['Too many failed logins, retry later', 'cooldown', 'Too many failed logins. Wait a minute, then try again.'],
    ['Login Incorrect', 'unknown-login', /not known here.*user@domain/],
  ]) {
    const { session, sockets, clock } = setup();
    session.connect();
    await refuseLogin(sockets[0], { code: -32001, message });
    assert.equal(session.state, 'failed', message);
    assert.equal(session.error.kind, kind);
    if (typeof text === 'string') assert.equal(session.error.text, text);
    else assert.match(session.error.text, text);
    await clock.advance(60_000);
    assert.equal(sockets.length, 1, message);
  }
});

test('"No node available" is retried with backoff and said in words', async () => {
  const { session, sockets, clock } = setup();
  session.connect();
  await refuseLogin(sockets[0], { code: -32002, message: 'No node available' });
  assert.equal(session.state, 'reconnecting');
  assert.deepEqual(session.error, {
    kind: 'node-unavailable',
    text: 'No server is available for this login right now.',
  });
  assert.equal(sockets[0].closedWith.code, 1000);
  await clock.advance(1000);
  assert.equal(sockets.length, 2);
  await logIn(sockets[1]);
  assert.equal(session.state, 'ready');
  assert.equal(session.error, null);
});

test('"Session in use" forgets the stored sessid, so the next connect uses a new one', async () => {
  const { session, sockets, storage } = setup();
  session.connect();
  await refuseLogin(sockets[0], { code: -32001, message: 'Session in use' });
  assert.equal(session.state, 'failed');
  assert.equal(session.error.kind, 'session-in-use');
  assert.equal(storage.getItem(`vertogw.sessid.${LOGIN}`), null);
  session.connect();
  sockets[1].open();
  await flush();
  assert.equal(sockets[1].last().params.sessid, 'uuid-2');
});

test('a login nobody answers, or a socket that never opens, is a failed connect', async () => {
  const { session, sockets, clock } = setup();
  session.connect();
  sockets[0].open();
  await flush();
  await clock.advance(DEFAULTS.requestTimeoutMs);
  assert.equal(session.state, 'reconnecting');
  assert.equal(session.error.kind, 'timeout');
  assert.equal(session.failures, 1);

  await clock.advance(1000);
  assert.equal(sockets.length, 2);
  await clock.advance(DEFAULTS.loginTimeoutMs); // never opens
  assert.equal(session.state, 'reconnecting');
  assert.equal(session.failures, 2);
  assert.equal(sockets[1].closedWith.code, 1000);
});

test('close() ends the session without reconnecting; connect() starts it again', async () => {
  const { session, sockets, clock } = setup();
  session.connect();
  await logIn(sockets[0]);
  session.close();
  assert.equal(session.state, 'closed');
  assert.equal(sockets[0].closedWith.code, 1000);
  await flush();
  await clock.advance(60_000);
  assert.equal(sockets.length, 1);
  assert.equal(statusLine(session.info), 'Disconnected');
  session.connect();
  assert.equal(sockets.length, 2);
});

test('an address the browser refuses fails at once', () => {
  const session = new VertoSession({
    wsURL: 'https://not-a-websocket/',
    login: LOGIN,
    passwd: 'x',
    storage: new MemoryStorage(),
    clock: new FakeClock(),
    WebSocket: class {
      constructor() {
        throw new SyntaxError('bad scheme');
      }
    },
  });
  session.connect();
  assert.equal(session.state, 'failed');
  assert.equal(session.error.kind, 'bad-url');
});

test('every login failure and close has plain words', () => {
  const rpc = (code, message) => VertoError.fromRpc({ code, message });
  assert.deepEqual(describeLoginError(rpc(-32001, 'Missing passwd')), {
    kind: 'missing-password',
    text: 'Enter your password.',
    retry: false,
  });
  assert.equal(describeLoginError(rpc(-32001, 'Missing or improper credentials')).kind, 'login-refused');
  assert.equal(describeLoginError(rpc(-32001, 'Missing or improper credentials')).retry, false);
  assert.equal(describeLoginError(rpc(-32000, 'Authentication Required')).retry, false);
  assert.equal(describeLoginError(rpc(-32600, 'Invalid Request')).retry, true);
  assert.equal(describeLoginError(new VertoError('timeout', 'late')).kind, 'timeout');
  assert.equal(describeClose(1014, ''), 'The connection to the phone server was lost.');
  assert.equal(describeClose(1006, ''), 'The connection was lost.');
  assert.equal(describeClose(1008, 'login timeout'), 'The server closed the connection (login timeout).');
  assert.equal(statusLine({ state: 'idle' }), 'Not connected');
  assert.equal(statusLine({ state: 'logging-in', login: LOGIN }), `Logging in as ${LOGIN}…`);
  assert.equal(statusLine({ state: 'ready', login: LOGIN }), `Connected as ${LOGIN}`);
});
