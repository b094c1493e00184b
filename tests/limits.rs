//! The gateway's bounds, each with a hostile input: the login deadline, the message
//! size, and many concurrent logins.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

const LOGIN_TIMEOUT: Duration = Duration::from_millis(300);

/// How much later than its deadline a close may arrive on a busy test machine.
const SLACK: Duration = Duration::from_secs(2);

/// The gateway's default `max_message_bytes`, which is also mod_verto's limit.
const MAX_MESSAGE: usize = 999_999;

async fn short_login_timeout() -> TestGateway {
    Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c| c.gateway.login_timeout = LOGIN_TIMEOUT)
        .start()
        .await
}

#[tokio::test]
async fn an_idle_socket_is_closed_with_1008_at_the_login_timeout() {
    let gw = short_login_timeout().await;
    let started = Instant::now();
    let mut ws = gw.client().await;
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    let elapsed = started.elapsed();
    assert!(elapsed >= LOGIN_TIMEOUT, "closed early, after {elapsed:?}");
    assert!(
        elapsed < LOGIN_TIMEOUT + SLACK,
        "closed late, after {elapsed:?}"
    );
    gw.assert_no_node_contacted();
}

#[tokio::test]
async fn a_tcp_connection_that_never_starts_tls_is_dropped_at_the_login_timeout() {
    let gw = short_login_timeout().await;
    let started = Instant::now();
    let mut tcp = within("TCP connect", tokio::net::TcpStream::connect(gw.addr))
        .await
        .expect("TCP connect");
    let mut buf = [0u8; 64];
    let n = within("the gateway to drop the connection", tcp.read(&mut buf)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "expected EOF, got {n:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= LOGIN_TIMEOUT, "dropped early, after {elapsed:?}");
    assert!(
        elapsed < LOGIN_TIMEOUT + SLACK,
        "dropped late, after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_tls_connection_that_never_sends_its_upgrade_is_dropped_at_the_login_timeout() {
    let gw = short_login_timeout().await;
    let started = Instant::now();
    let mut tls = tls_connect(gw.addr).await;
    // Half a request head, then silence.
    within(
        "write",
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n"),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    let _ = within(
        "the gateway to drop the connection",
        tls.read_to_end(&mut buf),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(elapsed >= LOGIN_TIMEOUT, "dropped early, after {elapsed:?}");
    assert!(
        elapsed < LOGIN_TIMEOUT + SLACK,
        "dropped late, after {elapsed:?}"
    );
    let head = String::from_utf8_lossy(&buf);
    assert!(
        !head.starts_with("HTTP/1.1 101"),
        "no upgrade without a request: {head}"
    );
}

#[tokio::test]
async fn failed_attempts_do_not_restart_the_login_clock() {
    let gw = short_login_timeout().await;
    let started = Instant::now();
    let mut ws = gw.client().await;
    let mut answered = 0u32;
    let code = within("the login deadline", async {
        loop {
            // Alternate the failures the gateway answers itself with ones the node
            // answers; neither kind may push the deadline back.
            let attempt = match answered % 2 {
                0 => request("login", json!({"sessid": "s"}), 1),
                _ => login_request("1000@acme.test", "wrong", &sessid(), 2),
            };
            // After the gateway's close a send may fail; the close is read below.
            let _ = ws.send(Message::text(attempt.to_string())).await;
            match ws.next().await {
                Some(Ok(Message::Text(reply))) => {
                    assert!(
                        reply.contains("\"error\""),
                        "attempt {answered} succeeded: {reply}"
                    );
                    answered += 1;
                }
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                other => panic!("unexpected {other:?} after {answered} attempts"),
            }
            // Pacing, not waiting for an event: a realistic retry rate.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(code, Some(1008));
    assert!(
        answered >= 4,
        "only {answered} attempts were answered before the close"
    );
    assert!(elapsed < LOGIN_TIMEOUT + SLACK, "closed after {elapsed:?}");
    assert!(
        gw.node("fs1").stats().logins_failed >= 1,
        "the node saw failed logins"
    );
}

#[tokio::test]
async fn an_oversize_message_before_login_closes_with_1009() {
    let gw = start(&one_node_map_and_calm(), &["fs1", "calm"]).await;
    let bystander = Bystander::start(&gw, CALM_USER).await;
    bystander.attack_begins();
    let mut ws = gw.client().await;
    send_text(&mut ws, &"x".repeat(MAX_MESSAGE + 1)).await;
    assert_eq!(recv_close(&mut ws).await, Some(1009));
    assert_eq!(gw.node("fs1").stats().tcp_accepted, 0, "no node contacted");
    bystander
        .finish("an_oversize_message_before_login_closes_with_1009")
        .await;
}

#[tokio::test]
async fn an_oversize_message_after_login_closes_with_1009_and_never_reaches_the_node() {
    let gw = start(&one_node_map_and_calm(), &["fs1", "calm"]).await;
    let bystander = Bystander::start(&gw, CALM_USER).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    bystander.attack_begins();
    send_text(&mut ws, &echo_of_size(MAX_MESSAGE + 1, 9)).await;
    assert_eq!(recv_close(&mut ws).await, Some(1009));
    let stats = gw.node("fs1").stats();
    assert_eq!(stats.oversize_closes, 0, "{stats:?}");
    assert!(
        gw.node("fs1")
            .received()
            .iter()
            .all(|m| m.len() < MAX_MESSAGE),
        "oversize relayed"
    );
    bystander
        .finish("an_oversize_message_after_login_closes_with_1009_and_never_reaches_the_node")
        .await;
}

/// An `echo` request of exactly `size` bytes.
fn echo_of_size(size: usize, id: u64) -> String {
    let head = r#"{"jsonrpc":"2.0","method":"echo","params":{"pad":""#;
    let tail = format!(r#""}},"id":{id}}}"#);
    let pad = size - head.len() - tail.len();
    let text = format!("{head}{}{tail}", "p".repeat(pad));
    assert_eq!(text.len(), size);
    text
}

#[tokio::test]
async fn a_999_999_byte_message_reaches_the_node_intact_and_its_1mb_echo_comes_back() {
    let gw = start(&one_node_map_and_calm(), &["fs1", "calm"]).await;
    let bystander = Bystander::start(&gw, CALM_USER).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    bystander.attack_begins();
    let text = echo_of_size(MAX_MESSAGE, 9);
    send_text(&mut ws, &text).await;
    let reply = recv_text(&mut ws).await;
    assert!(
        reply.len() > 1_000_000,
        "the echo is over a megabyte: {} bytes",
        reply.len()
    );
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("echo is JSON");
    assert_eq!(reply["id"], 9);
    let sent: serde_json::Value = serde_json::from_str(&text).expect("request is JSON");
    assert!(
        reply["result"]["pad"] == sent["params"]["pad"],
        "the echoed pad differs"
    );
    assert!(
        gw.node("fs1").received().contains(&text),
        "the node got the exact message"
    );
    bystander
        .finish("a_999_999_byte_message_reaches_the_node_intact_and_its_1mb_echo_comes_back")
        .await;
}

#[tokio::test]
async fn a_node_message_over_a_megabyte_reaches_the_browser_intact() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    let data = "d".repeat(1_500_000);
    let event =
        json!({"jsonrpc":"2.0","id":77,"method":"verto.event","params":{"data":data}}).to_string();
    assert_eq!(
        gw.node("fs1").broadcast(event.clone()),
        1,
        "one socket to broadcast to"
    );
    assert_eq!(recv_text(&mut ws).await, event);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_logins_over_three_partitions_each_land_on_their_node() {
    const CLIENTS: u64 = 500;
    const DOMAINS: [(&str, &str); 3] = [("a.test", "na"), ("b.test", "nb"), ("c.test", "nc")];
    let map = format!(
        "{}{}{}{}",
        node_tables(&["na", "nb", "nc"]),
        partition("pa", &["na"], r#"["a.test"]"#, None),
        partition("pb", &["nb"], r#"["b.test"]"#, None),
        partition("pc", &["nc"], r#"["c.test"]"#, None),
    );
    let gw = start(&map, &["na", "nb", "nc"]).await;
    // Two cores: keep a bounded number of handshakes in flight; the sockets that are
    // done stay open, so all 500 sessions are live together at the end.
    let in_flight = Arc::new(Semaphore::new(32));
    let mut tasks = JoinSet::new();
    for i in 0..CLIENTS {
        let (domain, node) = DOMAINS[(i % 3) as usize];
        let in_flight = Arc::clone(&in_flight);
        let addr = gw.addr;
        tasks.spawn(async move {
            let _permit = in_flight.acquire_owned().await.expect("semaphore");
            let mut ws = connect(addr).await;
            let landed = login_ready(&mut ws, &format!("{}@{domain}", 1000 + i), 1).await;
            assert_eq!(landed, node, "user {} of {domain}", 1000 + i);
            ws
        });
    }
    let sockets = tokio::time::timeout(Duration::from_secs(120), async {
        let mut sockets = Vec::new();
        while let Some(r) = tasks.join_next().await {
            sockets.push(r.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
        }
        sockets
    })
    .await
    .expect("500 logins within 120 s");
    assert_eq!(sockets.len() as u64, CLIENTS);
    for (i, (domain, node)) in DOMAINS.iter().enumerate() {
        let want = (0..CLIENTS).filter(|n| n % 3 == i as u64).count();
        let stats = gw.node(node).stats();
        assert_eq!(stats.logged_in_users.len(), want, "node {node}: {stats:?}");
        assert!(
            stats.logged_in_users.iter().all(|u| u.ends_with(domain)),
            "node {node}"
        );
    }
}
