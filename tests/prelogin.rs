//! Before a credentialed login the gateway answers the browser itself, exactly as an
//! auth-enabled mod_verto answers an unauthenticated socket, and contacts no node.

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn gateway() -> TestGateway {
    start(&one_node_map(), &["fs1"]).await
}

/// Sends `text` and asserts the exact reply text.
async fn exchange(ws: &mut Client, text: &str, want: &str) {
    send_text(ws, text).await;
    assert_eq!(recv_text(ws).await, want, "reply to {text}");
}

#[tokio::test]
async fn empty_login_gets_authentication_required_with_the_same_id() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"login","params":{"sessid":"abc"},"id":3}"#,
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32000,"message":"Authentication Required"}}"#,
    )
    .await;
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn any_other_method_gets_authentication_required_and_string_ids_come_back() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"verto.invite","params":{"sdp":"x"},"id":"str-id-7"}"#,
        r#"{"jsonrpc":"2.0","id":"str-id-7","error":{"code":-32000,"message":"Authentication Required"}}"#,
    )
    .await;
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"no.such.method","params":{},"id":8}"#,
        r#"{"jsonrpc":"2.0","id":8,"error":{"code":-32000,"message":"Authentication Required"}}"#,
    )
    .await;
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn request_without_params_gets_missing_params() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"login","id":6}"#,
        r#"{"jsonrpc":"2.0","id":6,"error":{"code":-32001,"message":"Missing params"}}"#,
    )
    .await;
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn batch_gets_an_array_with_one_answer_per_element() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    send_text(
        &mut ws,
        r#"[{"jsonrpc":"2.0","method":"echo","params":{"a":1},"id":101},{"jsonrpc":"2.0","method":"verto.ping","params":{},"id":102}]"#,
    )
    .await;
    let reply = recv_json(&mut ws).await;
    let auth_required = |id: u64| json!({"jsonrpc":"2.0","id":id,"error":{"code":-32000,"message":"Authentication Required"}});
    assert_eq!(reply, json!([auth_required(101), auth_required(102)]));
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn a_result_message_gets_no_answer() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    send_text(
        &mut ws,
        r#"{"jsonrpc":"2.0","id":4242,"result":{"method":"verto.answer"}}"#,
    )
    .await;
    // Had the result been answered, that answer would arrive before this one.
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":5}"#,
        r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32000,"message":"Authentication Required"}}"#,
    )
    .await;
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn non_json_text_gets_invalid_request_with_a_null_id() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    let want = r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#;
    exchange(&mut ws, "hello, not json", want).await;
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"login","params":{"#,
        want,
    )
    .await;
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn missing_or_wrong_jsonrpc_gets_invalid_message_with_the_id() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    let want = r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid message"},"id":5}"#;
    exchange(
        &mut ws,
        r#"{"method":"echo","params":{"a":1},"id":5}"#,
        want,
    )
    .await;
    exchange(
        &mut ws,
        r#"{"jsonrpc":"1.0","method":"echo","params":{"a":1},"id":5}"#,
        want,
    )
    .await;
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn unknown_domain_is_refused_and_the_third_attempt_closes_with_1008() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    for id in 1..=3u64 {
        send_json(
            &mut ws,
            &login_request("1000@nowhere.test", PASSWORD, &sessid(), id),
        )
        .await;
        let reply = recv_json(&mut ws).await;
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["error"]["code"], -32001, "{reply}");
        // mod_verto's own words: the answer says nothing about the partition map.
        assert_eq!(reply["error"]["message"], "Login Incorrect", "{reply}");
    }
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn after_an_unknown_domain_the_socket_stays_open_for_a_good_login() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    send_json(
        &mut ws,
        &login_request("1000@nowhere.test", PASSWORD, &sessid(), 1),
    )
    .await;
    assert_eq!(recv_json(&mut ws).await["error"]["code"], -32001);
    assert_eq!(gw.node("fs1").stats().tcp_accepted, 0);
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 2).await, "fs1");
}

#[tokio::test]
async fn login_without_passwd_gets_missing_passwd_and_counts_as_a_failed_attempt() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    let no_passwd =
        r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1000@acme.test"},"id":5}"#;
    let want = r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32001,"message":"Missing passwd"}}"#;
    exchange(&mut ws, no_passwd, want).await;
    exchange(&mut ws, no_passwd, want).await;
    send_text(&mut ws, no_passwd).await;
    assert_eq!(recv_text(&mut ws).await, want);
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn binary_frame_before_login_closes_with_1008() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    let login = r#"{"jsonrpc":"2.0","method":"login","params":{"sessid":"abc"},"id":3}"#;
    send_binary(&mut ws, login.as_bytes().to_vec()).await;
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn speed_test_frame_before_login_closes_with_1008() {
    let gw = gateway().await;
    let mut ws = gw.client().await;
    send_text(&mut ws, "#SPU 1000").await;
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn offering_two_subprotocols_gets_exactly_one_back() {
    let gw = gateway().await;
    let (mut ws, response) = connect_offering(gw.addr, Some("verto, foo")).await;
    let answered: Vec<_> = response
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .collect();
    assert_eq!(answered, ["verto"], "exactly one subprotocol value");
    // The socket works.
    exchange(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Authentication Required"}}"#,
    )
    .await;
}

#[tokio::test]
async fn plain_https_get_without_upgrade_gets_426_not_a_hang() {
    let gw = gateway().await;
    let mut tls = tls_connect(gw.addr).await;
    let request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    within("write", tls.write_all(request.as_bytes()))
        .await
        .expect("write request");
    let mut response = Vec::new();
    // Connection: close, so the gateway ends the stream after its answer.
    let _ = within("the HTTP response", tls.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.1 426"),
        "status line: {status:?}\n{text}"
    );
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn plain_http_and_ws_on_the_tls_port_get_400_with_a_hint() {
    let gw = gateway().await;
    for request in [
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "GET /verto HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ] {
        let mut tcp = within("connect", tokio::net::TcpStream::connect(gw.addr))
            .await
            .expect("connect");
        within("write", tcp.write_all(request.as_bytes()))
            .await
            .expect("write request");
        let mut response = Vec::new();
        within("the HTTP response", tcp.read_to_end(&mut response))
            .await
            .expect("read the response");
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("https:// or wss://"), "{text}");
    }
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn after_the_close_handshake_the_gateway_ends_tcp_promptly() {
    use futures_util::StreamExt;
    let gw = gateway().await;
    let mut ws = gw.client().await;
    send_text(&mut ws, "#SPU 1000").await;
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    // A browser answers the close and then waits for the server to end TCP (RFC 6455
    // 7.1.1: the server closes first); its `close` event fires only then.
    let replied = std::time::Instant::now();
    let rest = within("the TCP connection to end", async {
        let mut rest = Vec::new();
        while let Some(m) = ws.next().await {
            rest.push(format!("{m:?}"));
        }
        rest
    })
    .await;
    let lingered = replied.elapsed();
    assert!(
        lingered < std::time::Duration::from_millis(500),
        "the gateway kept TCP open {lingered:?} after the close handshake ({rest:?})"
    );
}

#[tokio::test]
async fn only_listed_web_origins_may_upgrade_and_clients_without_origin_may() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error as WsError;
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c| {
            c.gateway.allowed_origins = Some(vec![vertogw::config::OriginPattern::parse(
                "https://app.acme.test",
            )
            .unwrap_or_else(|e| panic!("{e}"))])
        })
        .start()
        .await;
    for (origin, allowed) in [
        (Some("https://app.acme.test"), true),
        (Some("https://evil.test"), false),
        (Some("null"), false),
        (None, true),
    ] {
        let tls = tls_connect(gw.addr).await;
        let mut request = format!("wss://localhost:{}/", gw.addr.port())
            .into_client_request()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(origin) = origin {
            let value = origin.parse().unwrap_or_else(|e| panic!("{e}"));
            request.headers_mut().insert("Origin", value);
        }
        let result = within("the upgrade", tokio_tungstenite::client_async(request, tls)).await;
        match (result, allowed) {
            (Ok(_), true) => {}
            (Err(WsError::Http(response)), false) => {
                assert_eq!(response.status(), 403, "{origin:?}");
            }
            (other, _) => panic!("{origin:?}: {:?}", other.map(|_| "upgraded")),
        }
    }
    gw.assert_no_node_contacted();
}
