//! Calls: SDP answers to browser offers, calls the node places (capture 11), the
//! callback rule, detach and reattach (captures 06b, 10 and 13), DTMF.

use std::time::Duration;

use serde_json::{json, Value};

use super::{config, start, Client, Got, WAIT};
use crate::{CallerId, SimCallState, SimConfig, CALLBACK_DESTINATION};

/// An audio-only Chromium offer with BUNDLE and a mid (what the web client sends).
const BROWSER_OFFER: &str = "v=0\r\no=- 6274865505781479253 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=msid-semantic: WMS s1\r\n\
m=audio 50000 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 127.0.0.1\r\n\
a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\r\n\
a=ice-ufrag:Ab1x\r\na=ice-pwd:XFzA+QM1mKeLW5PoBLjB98ZP\r\n\
a=fingerprint:sha-256 EA:B6:4C:9B:DB:8F:32:99:F4:E5:4E:AF:D2:C5:D1:35:15:C8:90:BC:25:BE:E6:DD:BF:6D:65:9F:6D:7E:EA:DD\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=msid:s1 t1\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:126 telephone-event/8000\r\n";

/// The browser's answer to one of the node's offers.
const BROWSER_ANSWER: &str = "v=0\r\no=- 4004673010 4004673010 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=audio 51835 UDP/TLS/RTP/SAVPF 111 101\r\nc=IN IP4 127.0.0.1\r\n\
a=mid:0\r\na=sendrecv\r\na=setup:active\r\n";

const SESSID: &str = "0d4b9a2c-6603-4eb1-bd09-2d51817ff428";

/// A config whose timers fit a test: short callback delay and detach timeout.
fn calls_config() -> SimConfig {
    let mut config = config("sim");
    config.callback_delay = Duration::from_millis(50);
    config.detach_timeout = Duration::from_secs(30);
    config
}

/// Sends a browser `verto.invite` to `destination` and expects CALL CREATED.
async fn invite(client: &mut Client, call_id: &str, destination: &str, id: u64) {
    let invite = json!({"jsonrpc": "2.0", "method": "verto.invite", "id": id, "params": {
        "sdp": BROWSER_OFFER,
        "dialogParams": {"callID": call_id, "destination_number": destination,
            "caller_id_name": "Verto Tester", "caller_id_number": "1008",
            "remote_caller_id_name": "Outbound Call", "remote_caller_id_number": destination}}});
    client.send(&invite.to_string()).await;
    let created = client.json().await;
    assert_eq!(created["result"]["message"], "CALL CREATED", "{created}");
}

/// Sends a call request (`verto.answer`, `verto.attach`, `verto.info`, `verto.bye`)
/// for `call_id` and returns the reply.
async fn call_request(client: &mut Client, method: &str, call_id: &str, extra: Value) -> Value {
    let mut params = json!({"dialogParams": {"callID": call_id}});
    if let (Some(params), Value::Object(extra)) = (params.as_object_mut(), extra) {
        params.extend(extra);
    }
    let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 90});
    client.send(&request.to_string()).await;
    client.json().await
}

/// The next message, which must be a node request for `method`; returns its params.
async fn request(client: &mut Client, method: &str) -> Value {
    let message = client.json().await;
    assert_eq!(message["method"], method, "{message}");
    message["params"].clone()
}

fn sdp_lines(sdp: &Value) -> Vec<String> {
    let text = sdp.as_str().unwrap_or_default();
    text.split("\r\n").map(str::to_owned).collect()
}

fn has(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

/// An SDP offer a browser can answer: BUNDLE, mid, ICE, fingerprint, actpass, opus and
/// telephone-event, a host candidate.
fn assert_browser_offer(sdp: &Value) {
    let lines = sdp_lines(sdp);
    for prefix in [
        "a=group:BUNDLE 0",
        "a=mid:0",
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=fingerprint:sha-256 ",
        "a=setup:actpass",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:101 telephone-event/8000",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 ",
    ] {
        assert!(has(&lines, prefix), "{prefix} missing from {sdp}");
    }
}

#[tokio::test]
async fn a_browser_offer_is_answered_with_sdp_built_from_it() {
    let node = start(calls_config()).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008", SESSID).await;
    invite(&mut a, "c1", "9196", 2).await;
    let first = sdp_lines(&request(&mut a, "verto.answer").await["sdp"]);
    invite(&mut a, "c2", "9196", 3).await;
    let second = sdp_lines(&request(&mut a, "verto.answer").await["sdp"]);
    for expected in [
        "a=group:BUNDLE 0",
        "a=mid:0",
        "a=setup:active",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:126 telephone-event/8000",
        "a=end-of-candidates",
    ] {
        assert!(first.iter().any(|l| l == expected), "{expected}: {first:?}");
    }
    let line =
        |lines: &[String], prefix: &str| lines.iter().find(|l| l.starts_with(prefix)).cloned();
    assert!(line(&first, "m=audio 1").is_some_and(|m| m.ends_with(" UDP/TLS/RTP/SAVPF 111 126")));
    assert_eq!(
        line(&first, "a=fingerprint:"),
        line(&second, "a=fingerprint:"),
        "one certificate per node"
    );
    assert_ne!(
        line(&first, "a=ice-ufrag:"),
        line(&second, "a=ice-ufrag:"),
        "ICE per call"
    );
    let calls = node.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.state == SimCallState::Active && !c.placed_by_node));
    assert_eq!(calls[0].remote_sdp, BROWSER_OFFER);
}

#[tokio::test]
async fn a_call_to_callback_is_answered_hung_up_and_called_back() {
    let node = start(calls_config()).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008@example.com", SESSID).await;
    invite(&mut a, "cb-1", CALLBACK_DESTINATION, 2).await;
    request(&mut a, "verto.answer").await;
    let bye = request(&mut a, "verto.bye").await;
    assert_eq!(
        bye,
        json!({"callID": "cb-1", "causeCode": 16, "cause": "NORMAL_CLEARING"})
    );
    let invite = request(&mut a, "verto.invite").await;
    let call_id = invite["callID"].as_str().unwrap().to_owned();
    assert_ne!(call_id, "cb-1");
    assert_browser_offer(&invite["sdp"]);
    assert_eq!(invite["caller_id_number"], CALLBACK_DESTINATION);
    assert_eq!(invite["callee_id_number"], "1008");
    assert_eq!(invite["display_direction"], "outbound");
    assert_eq!(node.stats().calls_placed, 1);

    let answered = call_request(
        &mut a,
        "verto.answer",
        &call_id,
        json!({"sdp": BROWSER_ANSWER}),
    );
    assert_eq!(
        answered.await,
        json!({"jsonrpc": "2.0", "id": 90, "result": {"sessid": SESSID}})
    );
    assert!(node.wait_for(|s| s.calls_answered == 1, WAIT).await);
    let calls = node.calls();
    assert_eq!(calls.len(), 1, "the first call ended");
    assert!(calls[0].placed_by_node && calls[0].state == SimCallState::Active);
    assert_eq!(calls[0].remote_sdp, BROWSER_ANSWER);
    let ended = call_request(&mut a, "verto.bye", &call_id, json!({})).await;
    assert_eq!(ended["result"]["message"], "CALL ENDED");
    assert_eq!(node.stats().calls, 0);
}

#[tokio::test]
async fn a_node_call_rings_every_socket_of_the_user_and_the_first_answer_wins() {
    let node = start(calls_config()).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008", "s-a").await;
    let mut b = Client::connect(&node).await;
    b.ready("1008", "s-b").await;
    let mut other = Client::connect(&node).await;
    other.ready("1000", "s-other").await;
    assert_eq!(node.call("1008@example.com", &CallerId::default()), 2);
    let (to_a, to_b) = (
        request(&mut a, "verto.invite").await,
        request(&mut b, "verto.invite").await,
    );
    let keys: Vec<&String> = to_a.as_object().unwrap().keys().collect();
    let mut expected = [
        "callID",
        "variables",
        "sdp",
        "caller_id_name",
        "caller_id_number",
        "callee_id_name",
        "callee_id_number",
        "display_direction",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "the params of capture 11");
    assert_eq!(
        (&to_a["caller_id_name"], &to_a["caller_id_number"]),
        (&json!("FS-Originate"), &json!("9999"))
    );
    let (call_a, call_b) = (
        to_a["callID"].as_str().unwrap(),
        to_b["callID"].as_str().unwrap(),
    );
    assert_ne!(call_a, call_b);

    call_request(
        &mut a,
        "verto.answer",
        call_a,
        json!({"sdp": BROWSER_ANSWER}),
    )
    .await;
    let lost = request(&mut b, "verto.bye").await;
    assert_eq!(
        lost,
        json!({"callID": call_b, "causeCode": 502, "cause": "LOSE_RACE"})
    );
    let digits = json!({"dtmf": "12#"});
    let sent = call_request(&mut a, "verto.info", call_a, digits).await;
    assert_eq!(sent["result"]["message"], "SENT");
    assert!(node.wait_for(|s| s.dtmf_digits == "12#", WAIT).await);
    let unknown = call_request(&mut a, "verto.info", "no-such-call", json!({"dtmf": "9"}));
    assert_eq!(
        unknown.await["result"],
        json!({"sessid": "s-a"}),
        "no SENT, nothing recorded"
    );

    assert!(node.hangup(call_a));
    let bye = request(&mut a, "verto.bye").await;
    assert_eq!(
        bye,
        json!({"callID": call_a, "causeCode": 16, "cause": "NORMAL_CLEARING"})
    );
    assert!(!node.hangup(call_a), "already gone");

    // Declined: the browser's bye before answering.
    assert_eq!(node.call("1008", &CallerId::default()), 2);
    for client in [&mut a, &mut b] {
        let call_id = request(client, "verto.invite").await["callID"].clone();
        let cause = json!({"cause": "CALL_REJECTED"});
        let declined = call_request(client, "verto.bye", call_id.as_str().unwrap(), cause);
        assert_eq!(declined.await["result"]["causeCode"], 21);
    }
    let stats = node.stats();
    assert_eq!(
        (
            stats.calls_placed,
            stats.calls_answered,
            stats.calls_declined,
            stats.calls
        ),
        (4, 1, 2, 0)
    );
    assert_eq!(node.call("nobody", &CallerId::default()), 0);
}

/// Logs `client` in as 1008 with `sessid`, places a call to 9196 and waits for its
/// answer: the call is active.
async fn active_call(client: &mut Client, sessid: &str, call_id: &str) {
    client.ready("1008", sessid).await;
    invite(client, call_id, "9196", 2).await;
    request(client, "verto.answer").await;
}

#[tokio::test]
async fn a_dropped_socket_s_call_is_offered_again_to_the_same_sessid() {
    let node = start(calls_config()).await;
    let mut a = Client::connect(&node).await;
    active_call(&mut a, SESSID, "c10").await;
    drop(a);
    assert!(
        node.wait_for(|s| s.calls_detached == 1 && s.open_sockets == 0, WAIT)
            .await
    );
    assert_eq!(node.calls()[0].state, SimCallState::Detached);

    let mut a2 = Client::connect(&node).await;
    let logged_in = a2.login("1008@example.com", 1, SESSID).await;
    assert!(logged_in.contains("logged in"), "{logged_in}");
    let attach = a2.json().await;
    assert_eq!(attach["method"], "verto.attach");
    let params = &attach["params"];
    assert_eq!(params["callID"], "c10");
    assert_browser_offer(&params["sdp"]);
    let parties = [
        "caller_id_name",
        "caller_id_number",
        "callee_id_name",
        "callee_id_number",
    ];
    let got: Vec<&Value> = parties.iter().map(|k| &params[*k]).collect();
    assert_eq!(
        got,
        [
            &json!("Verto Tester"),
            &json!("1008"),
            &json!("Outbound Call"),
            &json!("9196")
        ]
    );
    assert_eq!(params["display_direction"], "inbound");
    let ready = a2.json().await;
    assert_eq!(ready["method"], "verto.clientReady");
    assert_eq!(ready["id"].as_u64(), attach["id"].as_u64().map(|id| id + 1));
    assert_eq!(ready["params"]["reattached_sessions"], json!(["c10"]));
    assert_eq!(node.calls()[0].state, SimCallState::Reattaching);

    let reply = call_request(
        &mut a2,
        "verto.attach",
        "c10",
        json!({"sdp": BROWSER_ANSWER}),
    );
    assert_eq!(
        reply.await,
        json!({"jsonrpc": "2.0", "id": 90, "result": {"sessid": SESSID}})
    );
    assert!(node.wait_for(|s| s.calls_reattached == 1, WAIT).await);
    assert_eq!(node.calls()[0].state, SimCallState::Active);
    let ended = call_request(&mut a2, "verto.bye", "c10", json!({})).await;
    assert_eq!(ended["result"]["message"], "CALL ENDED");
}

#[tokio::test]
async fn a_punted_socket_s_call_moves_to_the_socket_that_took_the_sessid() {
    let node = start(calls_config()).await;
    let mut a = Client::connect(&node).await;
    active_call(&mut a, SESSID, "c13").await;
    let mut b = Client::connect(&node).await;
    b.login("1008", 1, SESSID).await;
    assert_eq!(request(&mut a, "verto.punt").await, json!({}));
    assert_eq!(request(&mut b, "verto.attach").await["callID"], "c13");
    let ready = request(&mut b, "verto.clientReady").await;
    assert_eq!(ready["reattached_sessions"], json!(["c13"]));
}

#[tokio::test]
async fn another_sessid_or_another_user_gets_no_attach() {
    let node = start(calls_config()).await;
    let mut a = Client::connect(&node).await;
    active_call(&mut a, SESSID, "c1").await;
    drop(a);
    assert!(
        node.wait_for(|s| s.calls_detached == 1 && s.open_sockets == 0, WAIT)
            .await
    );
    let mut other_sessid = Client::connect(&node).await;
    other_sessid.login("1008", 1, "another-sessid").await;
    let ready = request(&mut other_sessid, "verto.clientReady").await;
    assert_eq!(
        ready["reattached_sessions"],
        json!([]),
        "clientReady came first"
    );
    let mut other_user = Client::connect(&node).await;
    other_user.login("1000", 1, SESSID).await;
    let ready = request(&mut other_user, "verto.clientReady").await;
    assert_eq!(ready["reattached_sessions"], json!([]));
    let bye = call_request(&mut other_sessid, "verto.bye", "c1", json!({})).await;
    assert_eq!(bye["error"]["message"], "CALL DOES NOT EXIST");
    assert_eq!(node.calls()[0].state, SimCallState::Detached);
}

#[tokio::test]
async fn detached_calls_end_after_the_detach_timeout() {
    let mut config = calls_config();
    config.detach_timeout = Duration::from_millis(100);
    let node = start(config).await;
    let mut a = Client::connect(&node).await;
    active_call(&mut a, SESSID, "c1").await;
    drop(a);
    assert!(
        node.wait_for(|s| s.calls_expired == 1 && s.calls == 0, WAIT)
            .await
    );
    let mut a2 = Client::connect(&node).await;
    a2.login("1008", 1, SESSID).await;
    let ready = request(&mut a2, "verto.clientReady").await;
    assert_eq!(ready["reattached_sessions"], json!([]));
    let bye = call_request(&mut a2, "verto.bye", "c1", json!({})).await;
    assert_eq!(bye["error"]["message"], "CALL DOES NOT EXIST");
}

#[tokio::test]
async fn unanswered_calls_end_with_their_socket_and_the_node_can_end_detached_ones() {
    let mut config = calls_config();
    config.answer_delay = Duration::from_secs(60);
    let node = start(config).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008", "s-ringing").await;
    invite(&mut a, "ringing", "9196", 2).await;
    assert_eq!(node.call("1008", &CallerId::default()), 1);
    request(&mut a, "verto.invite").await;
    assert_eq!(node.stats().calls, 2);
    drop(a);
    assert!(
        node.wait_for(|s| s.calls == 0 && s.open_sockets == 0, WAIT)
            .await
    );
    assert_eq!(node.stats().calls_detached, 0);

    let node = start(calls_config()).await;
    let mut b = Client::connect(&node).await;
    active_call(&mut b, "s-detached", "c1").await;
    b.frame(true, super::OP_CLOSE, &1001u16.to_be_bytes()).await;
    assert_eq!(b.recv().await, Got::Close(Some(1000)));
    assert!(
        node.wait_for(|s| s.calls_detached == 1, WAIT).await,
        "a clean close detaches too"
    );
    assert!(node.hangup("c1"));
    assert_eq!(node.stats().calls, 0);
}
