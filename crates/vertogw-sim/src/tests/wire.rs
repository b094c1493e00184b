//! WebSocket-layer behaviour: captures 07a, 07b and 07c, close, vanish, TLS, limits.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use futures_util::{SinkExt, StreamExt};

use super::{
    config, start, Client, Got, INVALID_REQUEST, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WAIT,
};
use crate::MAX_MESSAGE_BYTES;

#[tokio::test]
async fn the_101_is_byte_exact_and_echoes_the_subprotocol_list_verbatim() {
    let node = start(config("sim")).await;
    let request = "GET /some/path?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: 6Mlt3iOrqJ8+foANBkgqQA==\r\n\
                   Sec-WebSocket-Version: 8\r\nSec-WebSocket-Protocol: verto, foo\r\n\
                   Origin: http://example.com\r\n\r\n";
    let (mut client, head) = Client::handshake(&node, request).await;
    let expected =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: j7aeZwzPyiujvCOd/ccc/qLEGso=\r\n\
                    Sec-WebSocket-Protocol: verto, foo\r\n\r\n";
    assert_eq!(head, expected);
    client.close(1000).await;
}

#[tokio::test]
async fn a_plain_get_gets_400_and_the_socket_closes() {
    let node = start(config("sim")).await;
    for request in [
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\r\n",
        "PUT / HTTP/1.1\r\nSec-WebSocket-Key: a\r\n\r\n",
    ] {
        let mut tcp = TcpStream::connect(node.local_addr()).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(WAIT, tcp.read_to_end(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            reply,
            b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
    }
    assert!(
        node.wait_for(|s| s.handshakes_rejected == 2 && s.upgrades == 0, WAIT)
            .await
    );
}

#[tokio::test]
async fn ping_payloads_are_parsed_as_json_rpc_and_no_pong_is_ever_sent() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.frame(true, OP_PING, b"ping-1").await;
    assert_eq!(a.text().await, INVALID_REQUEST);
    a.ready("1000", "s").await;
    a.frame(true, OP_PING, b"").await;
    a.frame(true, OP_PONG, b"unsolicited-pong").await;
    assert_eq!(
        a.text().await,
        INVALID_REQUEST,
        "the empty ping got no reply at all"
    );
    let echo = br#"{"jsonrpc":"2.0","method":"echo","params":{"via":"ping"},"id":77}"#;
    a.frame(true, OP_PING, echo).await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":77,"result":{"via":"ping","sessid":"s"}}"#
    );
    let stats = node.stats();
    assert_eq!((stats.pings_received, stats.pongs_received), (3, 1));
    assert_eq!(
        stats.messages_received, 1,
        "only the login was a data message"
    );
}

#[tokio::test]
async fn fragments_are_reassembled_and_a_ping_between_them_corrupts_the_message() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.ready("1000", "s").await;
    a.frame(false, OP_TEXT, br#"{"jsonrpc": "2.0", ""#).await;
    a.frame(
        true,
        OP_CONT,
        br#"method": "echo", "params": {"frag": "two-frames"}, "id": 500}"#,
    )
    .await;
    assert_eq!(
        a.text().await,
        r#"{"jsonrpc":"2.0","id":500,"result":{"frag":"two-frames","sessid":"s"}}"#
    );
    a.frame(false, OP_TEXT, br#"{"jsonrpc""#).await;
    a.frame(true, OP_PING, b"interleaved-ping").await;
    a.frame(false, OP_CONT, br#": "2.0", "method": ""#).await;
    a.frame(
        true,
        OP_CONT,
        br#"echo", "params": {"frag": "three-frames"}, "id": 501}"#,
    )
    .await;
    assert_eq!(a.text().await, INVALID_REQUEST);
}

/// An `echo` request of exactly `size` bytes.
fn echo_of_size(size: usize) -> String {
    let shell = r#"{"jsonrpc":"2.0","method":"echo","params":{"pad":""},"id":999999}"#;
    let pad = "x".repeat(size - shell.len());
    format!(r#"{{"jsonrpc":"2.0","method":"echo","params":{{"pad":"{pad}"}},"id":999999}}"#)
}

#[tokio::test]
async fn the_largest_message_is_accepted_and_one_byte_more_closes_with_1000() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.ready("1000", "d43bde70-bbbe-4a0e-8111-0eb9f54c700a")
        .await;
    let largest = echo_of_size(MAX_MESSAGE_BYTES);
    a.send(&largest).await;
    let reply = a.text().await;
    // Like the real node's 1,000,023-byte reply: the node does not limit what it sends.
    assert_eq!(reply.len(), 1_000_031);
    assert!(reply.starts_with(r#"{"jsonrpc":"2.0","id":999999,"result":{"pad":"xxx"#));
    assert_eq!(node.received().last(), Some(&largest), "arrived intact");

    a.send(&echo_of_size(MAX_MESSAGE_BYTES + 1)).await;
    a.closed_with_1000().await;
    assert!(
        node.wait_for(|s| s.oversize_closes == 1 && s.open_sockets == 0, WAIT)
            .await
    );
}

#[tokio::test]
async fn a_client_close_with_any_code_is_answered_with_1000() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.close(4321).await;
    assert!(node.wait_for(|s| s.open_sockets == 0, WAIT).await);
}

#[tokio::test]
async fn vanish_resets_every_socket_without_a_close_frame_and_stops_listening() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008", "s").await;
    node.vanish();
    assert_eq!(a.recv().await, Got::Eof);
    node.closed().await;
    assert!(TcpStream::connect(node.local_addr()).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1000() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    let mut b = Client::connect(&node).await;
    a.ready("1008", "s").await;
    let addr = node.local_addr();
    let closing = tokio::spawn(node.shutdown());
    a.closed_with_1000().await;
    b.closed_with_1000().await;
    closing.await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_reader_that_never_reads_is_dropped_instead_of_queueing_forever() {
    let node = start(config("sim")).await;
    let mut a = Client::connect(&node).await;
    a.ready("1008", "s").await;
    let chunk = "y".repeat(4 * 1024);
    let mut refused = 0;
    while refused < crate::MAX_MISSED && node.stats().open_sockets > 0 {
        if node.broadcast(chunk.clone()) == 0 {
            refused += 1;
        }
        tokio::task::yield_now().await;
    }
    assert!(node.wait_for(|s| s.open_sockets == 0, WAIT).await);
}

#[tokio::test]
async fn wss_serves_the_same_protocol() {
    let cert = vertogw_net::tls::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let server = vertogw_net::tls::server_config_from_pem(
        cert.cert_pem.as_bytes(),
        cert.key_pem.as_bytes(),
        "sim",
    )
    .unwrap();
    let node = start(config("sim-tls").with_tls(server)).await;
    assert_eq!(
        node.url(),
        format!("wss://localhost:{}/", node.local_addr().port())
    );
    let client = vertogw_net::tls::client_config_trusting(cert.cert_pem.as_bytes()).unwrap();
    let tcp = TcpStream::connect(node.local_addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&client))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(node.url(), tls)
        .await
        .unwrap();
    let login =
        r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1008","passwd":"1234"},"id":3}"#;
    ws.send(login.into()).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert!(reply.contains("logged in"), "{reply}");
}
