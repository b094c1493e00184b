import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Phone } from '../call.js';
import { causeText, callStateText } from '../words.js';
import { LOGIN, fakeRTC, flush, logIn, setup } from './fakes.mjs';

/** A logged-in session with a Phone on fake WebRTC. */
async function phoneReady(rtcOptions = {}) {
  const s = setup();
  s.session.connect();
  await logIn(s.sockets[0]);
  const rtc = fakeRTC(rtcOptions);
  let n = 0;
  const phone = new Phone({
    session: s.session,
    rtc: rtc.rtc,
    clock: s.clock,
    uuid: () => `call-${++n}`,
  });
  const streams = [];
  phone.on('remote-stream', (stream) => streams.push(stream));
  return { ...s, ws: s.sockets[0], phone, ...rtc, streams };
}

/** Lets the phone's async WebRTC steps run. */
async function settle() {
  for (let i = 0; i < 5; i++) await flush();
}

/** Answers the client's last request of `method` with `result`. */
function reply(ws, method, result) {
  const req = ws.requests(method).at(-1);
  assert.ok(req, `no ${method} was sent`);
  ws.receive({ jsonrpc: '2.0', id: req.id, result: { ...result, sessid: 'uuid-1' } });
  return req;
}

/** Places a call to 9196 and plays the node up to the answer. */
async function activeCall(t) {
  const dialed = t.phone.dial('9196');
  await settle();
  reply(t.ws, 'verto.invite', { message: 'CALL CREATED', callID: 'call-1' });
  await dialed;
  t.ws.receive({
    jsonrpc: '2.0',
    id: 57,
    method: 'verto.answer',
    params: { callID: 'call-1', sdp: 'fs-answer', variables: {} },
  });
  await settle();
  assert.equal(t.phone.callState, 'active');
}

test('placing a call: microphone, an offer with its candidates, verto.invite as jquery.verto sends it', async () => {
  const t = await phoneReady();
  const states = [];
  t.phone.on('change', (call) => states.push(call?.state));
  const dialed = t.phone.dial(' 9196 ');
  await settle();

  assert.deepEqual(t.media.map((m) => m.constraints), [{ audio: true, video: false }]);
  assert.deepEqual(t.pcs[0].steps, ['addTrack', 'createOffer', 'setLocal:offer']);
  const invite = t.ws.requests('verto.invite')[0];
  assert.equal(invite.params.sdp, 'offer-from-pc1+candidates');
  assert.equal(invite.params.sessid, 'uuid-1');
  assert.deepEqual(invite.params.dialogParams, {
    useVideo: false,
    useStereo: false,
    screenShare: false,
    useCamera: false,
    useMic: 'any',
    useSpeak: 'any',
    tag: 'remote-audio',
    localTag: null,
    login: LOGIN,
    videoParams: {},
    outgoingBandwidth: 'default',
    incomingBandwidth: 'default',
    dedEnc: false,
    audioParams: {},
    callID: 'call-1',
    destination_number: '9196',
    caller_id_name: '1000',
    caller_id_number: '1000',
    remote_caller_id_name: 'Outbound Call',
    remote_caller_id_number: '9196',
  });
  assert.equal(t.phone.callState, 'trying');
  assert.equal(callStateText(t.phone.call), 'Calling 9196…');

  reply(t.ws, 'verto.invite', { message: 'CALL CREATED', callID: 'call-1' });
  await dialed;
  assert.equal(t.phone.callState, 'ringing');
  assert.equal(callStateText(t.phone.call), 'Ringing 9196…');

  t.ws.receive({
    jsonrpc: '2.0',
    id: 57,
    method: 'verto.answer',
    params: { callID: 'call-1', sdp: 'fs-answer', variables: {} },
  });
  await settle();
  assert.deepEqual(t.pcs[0].remoteDescription, { type: 'answer', sdp: 'fs-answer' });
  assert.equal(t.phone.callState, 'active');
  assert.equal(callStateText(t.phone.call), 'In call with 9196');
  assert.deepEqual(states, ['dialing', 'trying', 'ringing', 'active']);

  const stream = t.pcs[0].remoteTrack();
  assert.deepEqual(t.streams, [stream]);
});

test('early media (verto.media) comes first; its SDP is applied once, verto.answer completes the call', async () => {
  const t = await phoneReady();
  const dialed = t.phone.dial('5000');
  await settle();
  reply(t.ws, 'verto.invite', { message: 'CALL CREATED', callID: 'call-1' });
  await dialed;
  t.ws.receive({ jsonrpc: '2.0', id: 60, method: 'verto.media', params: { callID: 'call-1', sdp: 'fs-early' } });
  await settle();
  assert.equal(t.phone.callState, 'early');
  t.ws.receive({ jsonrpc: '2.0', id: 61, method: 'verto.answer', params: { callID: 'call-1' } });
  await settle();
  assert.equal(t.phone.callState, 'active');
  assert.deepEqual(t.pcs[0].steps.filter((s) => s.startsWith('setRemote')), ['setRemote:answer']);
  assert.equal(t.pcs[0].remoteDescription.sdp, 'fs-early');
});

test('the offer waits for ICE gathering, at most the timeout', async () => {
  const t = await phoneReady({ gatherInstantly: false });
  t.phone.dial('9196');
  await settle();
  assert.equal(t.ws.requests('verto.invite').length, 0);
  assert.equal(t.phone.callState, 'dialing');
  await t.clock.advance(3000);
  await settle();
  assert.equal(t.ws.requests('verto.invite')[0].params.sdp, 'offer-from-pc1');
});

test('DTMF goes as verto.info with the callID; only digits, only in a call', async () => {
  const t = await phoneReady();
  await assert.rejects(t.phone.dtmf('1'), /No call/);
  await activeCall(t);
  const sent = t.phone.dtmf('5');
  const info = t.ws.requests('verto.info')[0];
  assert.deepEqual(info.params, { dtmf: '5', dialogParams: { callID: 'call-1' }, sessid: 'uuid-1' });
  reply(t.ws, 'verto.info', { message: 'SENT' });
  await sent;
  t.phone.dtmf('#');
  assert.equal(t.phone.call.dtmfSent, '5#');
  await assert.rejects(t.phone.dtmf('x'), /Not a DTMF digit/);
});

test('hanging up sends verto.bye NORMAL_CLEARING and lets go of the microphone and the connection', async () => {
  const t = await phoneReady();
  await activeCall(t);
  t.phone.hangup();
  const bye = t.ws.requests('verto.bye')[0];
  assert.deepEqual(bye.params, {
    dialogParams: { callID: 'call-1' },
    cause: 'NORMAL_CLEARING',
    causeCode: 16,
    sessid: 'uuid-1',
  });
  assert.equal(t.phone.callState, 'ended');
  assert.equal(callStateText(t.phone.call), 'You hung up.');
  assert.equal(t.pcs[0].closed, true);
  assert.equal(t.media[0].stream.tracks[0].readyState, 'ended');
  assert.equal(t.phone.busy, false);
});

test("the node's verto.bye ends the call with the cause in words", async () => {
  const t = await phoneReady();
  const dialed = t.phone.dial('5555');
  await settle();
  reply(t.ws, 'verto.invite', { message: 'CALL CREATED', callID: 'call-1' });
  await dialed;
  t.ws.receive({
    jsonrpc: '2.0',
    id: 24,
    method: 'verto.bye',
    params: { callID: 'call-1', causeCode: 3, cause: 'NO_ROUTE_DESTINATION' },
  });
  assert.equal(t.phone.callState, 'ended');
  assert.equal(t.phone.call.cause, 'NO_ROUTE_DESTINATION');
  assert.equal(callStateText(t.phone.call), 'That number cannot be reached from here (no route).');
  assert.equal(t.ws.requests('verto.bye').length, 0);
});

test('an invite the node refuses ends the call with its cause, and no bye is sent', async () => {
  const t = await phoneReady();
  const dialed = t.phone.dial('9196');
  await settle();
  const invite = t.ws.requests('verto.invite')[0];
  t.ws.receive({
    jsonrpc: '2.0',
    id: invite.id,
    error: { message: 'CALL ERROR', causeCode: 95, cause: 'INVALID_MSG_UNSPECIFIED', code: -32002 },
  });
  await dialed;
  assert.equal(t.phone.callState, 'ended');
  assert.equal(t.phone.call.endedText, 'The call ended (invalid msg unspecified).');
  assert.equal(t.ws.requests('verto.bye').length, 0);
});

test('a denied microphone ends the call before anything is sent', async () => {
  const t = await phoneReady({ denyMicrophone: true });
  await t.phone.dial('9196');
  assert.equal(t.phone.callState, 'ended');
  assert.match(t.phone.call.endedText, /^Microphone access was denied/);
  assert.equal(t.pcs.length, 0);
  assert.equal(t.ws.requests('verto.invite').length, 0);
  await assert.rejects(t.phone.dial(''), /Enter a number/);
});

test('an incoming call rings until answered: the offer first, then the microphone, then verto.answer', async () => {
  const t = await phoneReady();
  t.ws.receive({
    jsonrpc: '2.0',
    id: 61,
    method: 'verto.invite',
    params: {
      callID: 'in-1',
      sdp: 'fs-offer',
      caller_id_name: 'FS-Originate',
      caller_id_number: '9999',
      callee_id_name: 'Outbound Call',
      callee_id_number: '1000',
      display_direction: 'outbound',
      variables: {},
    },
  });
  assert.deepEqual(t.ws.last(), { jsonrpc: '2.0', id: 61, result: { method: 'verto.invite' } });
  assert.equal(t.phone.callState, 'incoming');
  assert.equal(callStateText(t.phone.call), 'Incoming call from FS-Originate (9999)');

  const answered = t.phone.answer();
  await settle();
  assert.deepEqual(t.pcs[0].steps, ['setRemote:offer', 'addTrack', 'createAnswer', 'setLocal:answer']);
  assert.deepEqual(t.pcs[0].remoteDescription, { type: 'offer', sdp: 'fs-offer' });
  const answer = t.ws.requests('verto.answer')[0];
  assert.equal(answer.params.sdp, 'answer-from-pc1+candidates');
  assert.equal(answer.params.dialogParams.callID, 'in-1');
  assert.equal(answer.params.dialogParams.callee_id_number, '1000');
  assert.equal(answer.params.dialogParams.remote_caller_id_number, '9999');
  assert.equal(t.phone.callState, 'answering');
  reply(t.ws, 'verto.answer', {});
  await answered;
  assert.equal(t.phone.callState, 'active');

  t.ws.receive({
    jsonrpc: '2.0',
    id: 62,
    method: 'verto.bye',
    params: { callID: 'in-1', causeCode: 16, cause: 'NORMAL_CLEARING' },
  });
  assert.equal(t.phone.callState, 'ended');
  assert.equal(callStateText(t.phone.call), 'The call ended.');
});

test('declining sends verto.bye CALL_REJECTED; a second call while busy gets USER_BUSY', async () => {
  const t = await phoneReady();
  const invite = (id, callID) => ({
    jsonrpc: '2.0',
    id,
    method: 'verto.invite',
    params: { callID, sdp: 'fs-offer', caller_id_name: 'A', caller_id_number: '1' },
  });
  t.ws.receive(invite(61, 'in-1'));
  t.ws.receive(invite(62, 'in-2'));
  assert.equal(t.phone.call.id, 'in-1');
  assert.deepEqual(t.ws.requests('verto.bye')[0].params, {
    dialogParams: { callID: 'in-2' },
    cause: 'USER_BUSY',
    causeCode: 17,
    sessid: 'uuid-1',
  });
  t.phone.decline();
  assert.deepEqual(t.ws.requests('verto.bye')[1].params.cause, 'CALL_REJECTED');
  assert.deepEqual(t.ws.requests('verto.bye')[1].params.causeCode, 21);
  assert.equal(callStateText(t.phone.call), 'You declined the call.');
  assert.equal(t.pcs.length, 0);
});

test('a dropped connection keeps an answered call and takes it back with verto.attach', async () => {
  const t = await phoneReady();
  await activeCall(t);
  t.sockets[0].drop(1014);
  assert.equal(t.phone.callState, 'recovering');
  assert.match(callStateText(t.phone.call), /^Connection lost/);

  await t.clock.advance(1000);
  const ws2 = t.sockets[1];
  await logIn(ws2, { node: null });
  ws2.receive({
    jsonrpc: '2.0',
    id: 58,
    method: 'verto.attach',
    params: {
      callID: 'call-1',
      sdp: 'fs-reoffer',
      caller_id_name: 'Verto Tester',
      caller_id_number: '1000',
      callee_id_name: 'Outbound Call',
      callee_id_number: '9196',
      display_direction: 'inbound',
    },
  });
  ws2.receive({
    jsonrpc: '2.0',
    id: 59,
    method: 'verto.clientReady',
    params: { reattached_sessions: ['call-1'] },
  });
  await settle();
  assert.equal(t.pcs[0].closed, true);
  assert.deepEqual(t.pcs[1].steps, ['setRemote:offer', 'addTrack', 'createAnswer', 'setLocal:answer']);
  assert.equal(t.media.length, 1, 'the microphone is kept across the re-attach');
  const attach = ws2.requests('verto.attach')[0];
  assert.equal(attach.params.sdp, 'answer-from-pc2+candidates');
  assert.equal(attach.params.dialogParams.callID, 'call-1');
  assert.equal(attach.params.dialogParams.destination_number, '9196');
  assert.equal(attach.params.sessid, 'uuid-1');
  reply(ws2, 'verto.attach', {});
  await settle();
  assert.equal(t.phone.callState, 'active');
});

test('a call the node does not offer back ends at clientReady; an unanswered one ends at the drop', async () => {
  const t = await phoneReady();
  await activeCall(t);
  t.sockets[0].drop(1006);
  await t.clock.advance(1000);
  await logIn(t.sockets[1], { node: null });
  t.sockets[1].receive({
    jsonrpc: '2.0',
    id: 59,
    method: 'verto.clientReady',
    params: { reattached_sessions: [] },
  });
  assert.equal(t.phone.callState, 'ended');
  assert.equal(callStateText(t.phone.call), 'The call was lost while the connection was down.');

  const dialed = t.phone.dial('9196');
  await settle();
  reply(t.sockets[1], 'verto.invite', { message: 'CALL CREATED', callID: 'call-2' });
  await dialed;
  t.sockets[1].drop(1006);
  assert.equal(t.phone.callState, 'ended');
  assert.equal(callStateText(t.phone.call), 'The connection dropped before the call was answered.');
});

test('after a page reload, the verto.attach of a call this sessid had brings it back', async () => {
  const t = await phoneReady();
  t.ws.receive({
    jsonrpc: '2.0',
    id: 72,
    method: 'verto.attach',
    params: {
      callID: 'old-call',
      sdp: 'fs-reoffer',
      caller_id_name: 'Verto Tester',
      caller_id_number: '1000',
      callee_id_name: 'Outbound Call',
      callee_id_number: '9196',
      display_direction: 'inbound',
    },
  });
  assert.equal(t.phone.call.direction, 'outbound');
  assert.equal(t.phone.call.remoteNumber, '9196');
  await settle();
  reply(t.ws, 'verto.attach', {});
  await settle();
  assert.equal(t.phone.callState, 'active');
  assert.equal(t.phone.call.id, 'old-call');
});

test('a punt ends the call here: it moved to the other tab', async () => {
  const t = await phoneReady();
  await activeCall(t);
  t.ws.receive({ jsonrpc: '2.0', id: 71, method: 'verto.punt', params: {} });
  assert.equal(t.phone.callState, 'ended');
  assert.equal(callStateText(t.phone.call), 'The call moved to another tab or window.');
  assert.equal(t.ws.requests('verto.bye').length, 0);
});

test('hang-up causes are said in words', () => {
  assert.equal(causeText('USER_BUSY', 17), 'The line is busy.');
  assert.equal(causeText('NORMAL_CLEARING', 16), 'The call ended.');
  assert.equal(causeText('SOME_NEW_CAUSE'), 'The call ended (some new cause).');
  assert.equal(causeText(undefined, 41), 'The call ended (cause 41).');
  assert.equal(causeText(), 'The call ended.');
});
