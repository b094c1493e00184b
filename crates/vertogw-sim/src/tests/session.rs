//! JSON-RPC behaviour: captures 01, 02, 03, 04, 05, 06, 08 and 09.

use std::time::Duration;

use super::{config, error, start, Client, Got, INVALID_REQUEST, OP_BINARY, WAIT};
use crate::session::INVALID_METHOD;

const SESSID: &str = "1e6747ba-a5f9-49f4-a1ae-4ca6924e76c2";

#[tokio::test]
async fn login_result_then_client_ready_with_node_global_ids() {
    let node = start(config("sim-a")).await;
    let mut a = Client::connect(&node).await;
    let login = format!(
        r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"1008@example.com","passwd":"1234","sessid":"{SESSID}"}},"id":1}}"#
    );
    a.send(&login).await;
    let expected = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"message":"logged in","sessid":"{SESSID}"}}}}"#
    );
    assert_eq!(a.text().await, expected);
    let ready = r#"{"jsonrpc":"2.0","id":1,"method":"verto.clientReady","params":{"reattached_sessions":[],"sim_node":"sim-a"}}"#;
    assert_eq!(a.text().await, ready);
    assert_eq!(node.received(), vec![login]);

    // The counter is shared by every socket of the node.
    let mut b = Client::connect(&node).await;
    assert_eq!(b.ready("1008", "other-sessid").await, 2);
    let stats = node.stats();
    assert_eq!(stats.logins_ok, 2);
    assert_eq!(stats.logged_in_users, vec!["1008@example.com"; 2]);
    a.close(1000).await;
    b.close(1001).await;
    assert!(node.wait_for(|s| s.open_sockets == 0, WAIT).await);
    assert!(node.stats().logged_in_users.is_empty());
}

#[tokio::test]
async fn failed_logins_keep_the_socket_open_and_unauthenticated() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    let attempts = [
        (
            r#""login":"1008@example.com","passwd":"wrong""#,
            -32001,
            "Authentication Failure",
        ),
        (
            r#""login":"9999@example.com","passwd":"1234""#,
            -32001,
            "Login Incorrect",
        ),
        (r#""login":"1008@example.com""#, -32001, "Missing passwd"),
        (r#""passwd":"1234""#, -32000, "Authentication Required"),
    ];
    for (id, (params, code, message)) in attempts.into_iter().enumerate() {
        a.send(&format!(
            r#"{{"jsonrpc":"2.0","method":"login","params":{{{params},"sessid":"s"}},"id":{id}}}"#
        ))
        .await;
        assert_eq!(a.text().await, error(&id.to_string(), code, message));
    }
    a.send(r#"{"jsonrpc":"2.0","method":"login","id":6}"#).await;
    assert_eq!(a.text().await, error("6", -32001, "Missing params"));
    a.send(r#"{"jsonrpc":"2.0","method":"echo","params":{"x":1},"id":3}"#)
        .await;
    assert_eq!(
        a.text().await,
        error("3", -32000, "Authentication Required")
    );
    assert_eq!(a.ready("1008@example.com", "good").await, 1);
    assert_eq!(node.stats().logins_failed, 3);
    assert_eq!(node.stats().logins_ok, 1);
}

#[tokio::test]
async fn every_method_before_login_gets_authentication_required_with_its_id() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    let requests = [
        (
            r#""verto.invite","params":{"sdp":"v=0","dialogParams":{"callID":"c"}}"#,
            "8",
        ),
        (r#""echo","params":{"hello":"world","sessid":"s"}"#, "9"),
        (r#""no.such.method","params":{}"#, "10"),
        (r#""verto.ping","params":{}"#, r#""string-id-7""#),
    ];
    for (body, id) in requests {
        a.send(&format!(r#"{{"jsonrpc":"2.0","method":{body},"id":{id}}}"#))
            .await;
        assert_eq!(a.text().await, error(id, -32000, "Authentication Required"));
    }
    a.close(1000).await;
}

#[tokio::test]
async fn malformed_input_is_answered_like_the_capture_and_never_closes() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    let invalid = |id: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","error":{{"code":-32600,"message":"Invalid message"}},"id":{id}}}"#
        )
    };
    let cases = [
        (
            r#"{"jsonrpc":"2.0","method":"login","params":{"#.to_owned(),
            INVALID_REQUEST.to_owned(),
        ),
        ("hello, not json".into(), INVALID_REQUEST.into()),
        (
            r#"{"method":"echo","params":{"a":1},"id":5}"#.into(),
            invalid("5"),
        ),
        (
            r#"{"jsonrpc":"1.0","method":"echo","params":{"a":1},"id":6}"#.into(),
            invalid("6"),
        ),
        (
            "[1,2]".into(),
            format!("[{},{}]", invalid("null"), invalid("null")),
        ),
        (r#""just a string""#.into(), invalid("null")),
    ];
    for (sent, expected) in cases {
        a.send(&sent).await;
        assert_eq!(a.text().await, expected, "for {sent}");
    }
    let binary = br#"{"jsonrpc":"2.0","method":"echo","params":{"bin":1},"id":8}"#;
    a.frame(true, OP_BINARY, binary).await;
    assert_eq!(
        a.text().await,
        error("8", -32000, "Authentication Required")
    );

    a.ready("1000@example.com", "s4").await;
    a.send(r#"[{"jsonrpc":"2.0","method":"echo","params":{"n":1},"id":101},{"jsonrpc":"2.0","method":"echo","params":{"n":2},"id":102}]"#).await;
    let batch = r#"[{"jsonrpc":"2.0","id":101,"result":{"n":1}},{"jsonrpc":"2.0","id":102,"result":{"n":2}}]"#;
    assert_eq!(a.text().await, batch);
    // A response is swallowed; a message with neither method nor result is not.
    a.send(r#"{"jsonrpc":"2.0","id":4242,"result":{"foo":1}}"#)
        .await;
    a.send(r#"{"jsonrpc":"2.0","id":7,"error":{"code":1}}"#)
        .await;
    assert_eq!(a.text().await, error("7", -32601, INVALID_METHOD));
}

#[tokio::test]
async fn same_user_same_sessid_punts_the_old_socket_and_another_user_is_refused() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    let ready_a = a.ready("1008@example.com", SESSID).await;
    let mut b = Client::connect(&node).await;
    let reply = b.login("1008@example.com", 13, SESSID).await;
    assert!(reply.contains(SESSID), "{reply}");
    let punt = format!(
        r#"{{"jsonrpc":"2.0","id":{},"method":"verto.punt","params":{{}}}}"#,
        ready_a + 1
    );
    assert_eq!(a.text().await, punt);
    a.closed_with_1000().await;
    assert_eq!(
        b.json().await["id"],
        ready_a + 2,
        "clientReady follows the punt"
    );

    let mut c = Client::connect(&node).await;
    let refused = c.login("1000@example.com", 15, SESSID).await;
    assert_eq!(refused, error("15", -32001, "Session in use"));
    c.closed_with_1000().await;

    let mut d = Client::connect(&node).await;
    d.send(&format!(r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"1008","passwd":"bad","sessid":"{SESSID}"}},"id":16}}"#)).await;
    assert_eq!(
        d.text().await,
        error("16", -32001, "Authentication Failure")
    );
    b.send(r#"{"jsonrpc":"2.0","method":"verto.ping","params":{},"id":14}"#)
        .await;
    let pong =
        format!(r#"{{"jsonrpc":"2.0","id":14,"result":{{"message":"PONG","sessid":"{SESSID}"}}}}"#);
    assert_eq!(b.text().await, pong);
    assert_eq!(node.stats().punts, 1);
}

#[tokio::test]
async fn echo_needs_permission_and_echoes_params_in_client_order() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008@example.com", "s1008").await;
    a.send(r#"{"jsonrpc":"2.0","method":"echo","params":{"hello":"x"},"id":2}"#)
        .await;
    assert_eq!(a.text().await, error("2", -32601, INVALID_METHOD));
    a.send(r#"{"jsonrpc":"2.0","method":"fsapi","params":{"cmd":"status"},"id":4}"#)
        .await;
    assert_eq!(a.text().await, error("4", -32601, INVALID_METHOD));
    a.send(
        r#"{"jsonrpc":"2.0","method":"verto.broadcast","params":{"eventChannel":"demo"},"id":7}"#,
    )
    .await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":7,"result":{"sessid":"s1008"}}"#
    );
    // A failed re-login leaves the socket authenticated with its first sessid.
    a.send(r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1008","passwd":"bad"},"id":9}"#)
        .await;
    assert_eq!(a.text().await, error("9", -32001, "Authentication Failure"));
    assert_eq!(
        a.login("1008", 8, "new-sessid").await,
        r#"{"jsonrpc":"2.0","id":8,"result":{"message":"logged in","sessid":"s1008"}}"#
    );

    let mut b = Client::connect(&node).await;
    b.ready("1000@example.com", "s1000").await;
    let exchanges = [
        (
            r#"{"jsonrpc":"2.0","method":"echo","params":{"x":1,"echoParams":true},"id":4}"#,
            r#"{"jsonrpc":"2.0","id":4,"result":{"x":1,"echoParams":true,"requestParams":{"x":1,"echoParams":true},"sessid":"s1000"}}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"echo","id":3}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"message":"Params data missing","code":-32002}}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"echo","params":{"noid":true}}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":{"noid":true,"sessid":"s1000"}}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"echo","params":{"strid":true,"sessid":"forged"},"id":"abc"}"#,
            r#"{"jsonrpc":"2.0","id":"abc","result":{"strid":true,"sessid":"s1000"}}"#,
        ),
    ];
    for (sent, expected) in exchanges {
        b.send(sent).await;
        assert_eq!(b.text().await, expected);
    }
    let mut c = Client::connect(&node).await;
    c.ready("1001@example.com", "s1001").await;
    c.send(r#"{"jsonrpc":"2.0","method":"verto.ping","params":{},"id":2}"#)
        .await;
    assert_eq!(c.text().await, error("2", -32601, INVALID_METHOD));
}

#[tokio::test]
async fn login_without_sessid_gets_a_uuid_that_a_relogin_keeps() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.send(r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1008@other.domain","passwd":"1234"},"id":1}"#).await;
    let sessid = a.json().await["result"]["sessid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sessid.len(), 36);
    assert_eq!(&sessid[14..15], "4", "a version 4 UUID: {sessid}");
    assert_eq!(node.stats().logged_in_users, vec!["1008@example.com"]);
    a.json().await;
    let again = a
        .login("1008", 2, "579e8e1a-e67c-470e-bad5-de0a358d3dd2")
        .await;
    assert!(again.contains(&sessid), "{again}");
}

#[tokio::test]
async fn invite_is_answered_and_bye_ends_the_call() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    let ready = a.ready("1008@example.com", "s").await;
    a.send(r#"{"jsonrpc":"2.0","method":"verto.invite","params":{"sdp":"v=0","dialogParams":{"callID":"c1","destination_number":"9196"}},"id":18}"#).await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":18,"result":{"message":"CALL CREATED","callID":"c1","sessid":"s"}}"#
    );
    let answer = a.json().await;
    assert_eq!(
        (answer["method"].as_str(), answer["id"].as_u64()),
        (Some("verto.answer"), Some(ready + 1))
    );
    assert_eq!(answer["params"]["callID"], "c1");
    assert!(answer["params"]["sdp"]
        .as_str()
        .unwrap()
        .contains("UDP/TLS/RTP/SAVPF"));
    a.send(r#"{"jsonrpc":"2.0","method":"verto.info","params":{"dtmf":"1","dialogParams":{"callID":"c1"}},"id":19}"#).await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":19,"result":{"message":"SENT","sessid":"s"}}"#
    );
    let bye = r#"{"jsonrpc":"2.0","method":"verto.bye","params":{"dialogParams":{"callID":"c1"}},"id":20}"#;
    a.send(bye).await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":20,"result":{"callID":"c1","message":"CALL ENDED","causeCode":16,"cause":"NORMAL_CLEARING","sessid":"s"}}"#
    );
    a.send(bye).await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":20,"error":{"callID":"c1","message":"CALL DOES NOT EXIST","code":-32002}}"#
    );
    a.send(r#"{"jsonrpc":"2.0","method":"verto.invite","params":{"dialogParams":{"callID":"c2"}},"id":24}"#).await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":24,"error":{"message":"CALL ERROR","causeCode":95,"cause":"INVALID_MSG_UNSPECIFIED","code":-32002}}"#
    );
}

#[tokio::test]
async fn an_idle_socket_gets_json_rpc_pings_never_websocket_pings() {
    let mut config = config("sim");
    config.idle_ping = Duration::from_millis(300);
    let node = start(config).await;
    let mut a = Client::connect(&node).await;
    let ready = a.ready("1008", "s").await;
    let ping = a.json().await;
    assert_eq!(ping["method"], "verto.ping");
    assert_eq!(ping["id"].as_u64(), Some(ready + 1));
    assert!(ping["params"]["serno"]
        .as_u64()
        .is_some_and(|s| s > 1_700_000_000));
    // The verto.js-style ack is swallowed, and no WebSocket ping ever comes.
    a.send(&format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{{"method":"verto.ping"}}}}"#,
        ready + 1
    ))
    .await;
    assert!(matches!(a.recv().await, Got::Text(t) if t.contains("verto.ping")));
}

#[tokio::test]
async fn node_pushes_reach_only_authenticated_sockets() {
    let node = start(config("sim")).await;
    let mut authed = Client::connect(&node).await;
    let ready = authed.ready("1008", "s").await;
    let mut anonymous = Client::connect(&node).await;
    assert_eq!(node.broadcast("hello from the node".into()), 1);
    assert_eq!(authed.text().await, "hello from the node");
    let params = serde_json::json!({"callID": "in-1", "sdp": "v=0"});
    assert_eq!(node.request("verto.invite", &params), 1);
    let invite = authed.json().await;
    assert_eq!(
        (invite["method"].as_str(), invite["id"].as_u64()),
        (Some("verto.invite"), Some(ready + 1))
    );
    anonymous
        .send(r#"{"jsonrpc":"2.0","method":"verto.ping","id":1}"#)
        .await;
    assert_eq!(anonymous.text().await, error("1", -32001, "Missing params"));
}

#[tokio::test]
async fn the_speed_test_needs_a_login_and_echoes_the_volume() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008", "s").await;
    for frame in ["#SPU 3000", "#SPB abc", "#SPB def", "#SPE"] {
        a.send(frame).await;
    }
    assert!(a.text().await.starts_with("#SPU "));
    let mut volume = 0;
    loop {
        let frame = a.text().await;
        if frame.starts_with("#SPD ") {
            break;
        }
        volume += frame.len();
    }
    assert_eq!(volume, 3000 * crate::ECHO_REPEATS);
    let mut anonymous = Client::connect(&node).await;
    anonymous.send("#SPU 10").await;
    anonymous.closed_with_1000().await;
}
