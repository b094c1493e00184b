//! A partition's nodes are tried in priority order: a refusing or silent node is
//! skipped, and when none answers the browser gets an error it can retry after.

mod common;

use std::time::{Duration, Instant};

use common::*;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// Partition `acme` on `dead` (not simulated) then `fs2`.
fn dead_then_fs2() -> String {
    let nodes = "[[node]]\nname = \"dead\"\nverto_url = \"{dead}\"\n";
    format!(
        "{nodes}{}{}",
        node_tables(&["fs2"]),
        partition("acme", &["dead", "fs2"], r#"["acme.test"]"#, None),
    )
}

#[tokio::test]
async fn a_refusing_first_node_is_skipped_for_the_second() {
    let gw = Setup::new(&dead_then_fs2())
        .url("dead", refusing_url().await)
        .node(sim("fs2"))
        .start()
        .await;
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs2");
}

#[tokio::test]
async fn a_silent_first_node_is_skipped_after_the_connect_timeout() {
    let (silent, _hold) = silent_node().await;
    let gw = Setup::new(&dead_then_fs2())
        .url("dead", silent)
        .node(sim("fs2"))
        .tweak(|c| c.gateway.connect_timeout = CONNECT_TIMEOUT)
        .start()
        .await;
    let mut ws = gw.client().await;
    let started = Instant::now();
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs2");
    assert!(
        started.elapsed() >= CONNECT_TIMEOUT,
        "the silent node should have been given the connect timeout"
    );
}

/// A listener that answers every request with mod_verto's 400 and closes.
async fn rejecting_node() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let reply = b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\n\r\n";
            let _ = tcp.write_all(reply).await;
        }
    });
    (format!("ws://{addr}/"), task)
}

#[tokio::test]
async fn a_first_node_refusing_the_upgrade_is_skipped_for_the_second() {
    let (rejecting, _task) = rejecting_node().await;
    let gw = Setup::new(&dead_then_fs2())
        .url("dead", rejecting)
        .node(sim("fs2"))
        .start()
        .await;
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs2");
}

#[tokio::test]
async fn all_nodes_down_gets_a_no_node_available_error_and_the_socket_stays_open() {
    let map = format!(
        "[[node]]\nname = \"a\"\nverto_url = \"{{a}}\"\n[[node]]\nname = \"b\"\nverto_url = \"{{b}}\"\n{}{}",
        node_tables(&["fs9"]),
        partition("acme", &["a", "b"], r#"["acme.test"]"#, None)
            + &partition("other", &["fs9"], r#"["other.test"]"#, None),
    );
    let gw = Setup::new(&map)
        .url("a", refusing_url().await)
        .url("b", refusing_url().await)
        .node(sim("fs9"))
        .start()
        .await;
    let mut ws = gw.client().await;
    send_json(
        &mut ws,
        &login_request("1000@acme.test", PASSWORD, &sessid(), 4),
    )
    .await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["id"], 4, "{reply}");
    assert_eq!(reply["error"]["code"], -32002, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.to_ascii_lowercase().contains("no node available"),
        "message should say no node available: {message}"
    );
    // Still open: a login for a partition whose node is up succeeds on this socket.
    assert_eq!(login_ready(&mut ws, "1000@other.test", 5).await, "fs9");
}

#[tokio::test]
async fn repeated_no_node_errors_do_not_close_the_socket() {
    let map = format!(
        "[[node]]\nname = \"a\"\nverto_url = \"{{a}}\"\n{}",
        partition("acme", &["a"], r#"["acme.test"]"#, None)
    );
    let gw = Setup::new(&map)
        .url("a", refusing_url().await)
        .start()
        .await;
    let mut ws = gw.client().await;
    // More attempts than the gateway's limit on unroutable logins: node outages are not
    // the browser's fault and must not get it disconnected.
    for id in 1..=5u64 {
        send_json(
            &mut ws,
            &login_request("1000@acme.test", PASSWORD, &sessid(), id),
        )
        .await;
        let reply = recv_json(&mut ws).await;
        assert_eq!(reply["error"]["code"], -32002, "attempt {id}: {reply}");
    }
}
