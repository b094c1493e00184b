//! Slow and dead peers after login (issue 8 §4): a browser that stops reading, or stops
//! answering, cannot hold its session (and its FreeSWITCH thread): the browser gets
//! 1011, the node 1001. Every wait is on an event (the node seeing its socket close),
//! never on a clock.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `acme` on `fs1` (the tests' browsers) and `calm` on its own node (a bystander), with
/// the given tweak to `[limits]`.
async fn gateway(tweak: impl FnOnce(&mut vertogw::config::Limits) + 'static) -> TestGateway {
    Setup::new(&one_node_map_and_calm())
        .node(sim("fs1"))
        .node(sim("calm"))
        .tweak(|c| tweak(&mut c.limits))
        .start()
        .await
}

/// Waits until the node has no open socket left, then returns the close codes it got.
async fn node_sockets_closed(gw: &TestGateway, open_before: u64) -> Vec<u16> {
    let stats = wait_stats(gw.node("fs1"), "the session's node socket to close", |s| {
        s.open_sockets < open_before
    })
    .await;
    stats.close_codes
}

/// Reads frames (pings included) until a close frame; returns its code.
async fn close_code_after_any_frames(ws: &mut Client) -> Option<u16> {
    within("a close frame", async {
        for _ in 0..100_000 {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
        None
    })
    .await
}

#[tokio::test]
async fn an_idle_browser_that_answers_pings_keeps_its_session() {
    let gw = gateway(|l| l.browser_ping = Duration::from_millis(100)).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    // Wait for the gateway's ping (tungstenite answers it on our next read).
    let ping = within("the gateway's ping", async {
        loop {
            if let Some(Ok(Message::Ping(payload))) = ws.next().await {
                return payload;
            }
        }
    })
    .await;
    assert_eq!(&ping[..], b"vertogw");
    send_json(&mut ws, &request("echo", json!({"after": "ping"}), 2)).await;
    assert_eq!(recv_json(&mut ws).await["result"]["after"], "ping");
    assert_eq!(
        gw.node("fs1").stats().pings_received,
        0,
        "nodes are never pinged"
    );
}

#[tokio::test]
async fn a_browser_that_never_answers_is_closed_1011_and_the_node_gets_1001() {
    let gw = gateway(|l| l.browser_ping = Duration::from_millis(100)).await;
    let bystander = Bystander::start(&gw, CALM_USER).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    bystander.attack_begins();
    let open = gw.node("fs1").stats().open_sockets;
    // Not reading means not answering: tungstenite sends its pong only when we read.
    let codes = node_sockets_closed(&gw, open).await;
    assert_eq!(codes.last(), Some(&1001), "{codes:?}");
    assert_eq!(close_code_after_any_frames(&mut ws).await, Some(1011));
    bystander
        .finish("a_browser_that_never_answers_is_closed_1011_and_the_node_gets_1001")
        .await;
}

#[tokio::test]
async fn a_browser_that_stops_reading_is_closed_after_the_stall_timeout() {
    let gw = gateway(|l| {
        l.stall_timeout = Duration::from_millis(300);
        l.browser_ping = Duration::from_secs(3600);
    })
    .await;
    let bystander = Bystander::start(&gw, CALM_USER).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    bystander.attack_begins();
    let open = gw.node("fs1").stats().open_sockets;
    // The node talks, the browser never reads: once the socket buffers are full the
    // gateway cannot write, and after the stall timeout it gives up on the browser.
    let chunk = format!(
        r#"{{"jsonrpc":"2.0","method":"verto.info","params":{{"pad":"{}"}}}}"#,
        "x".repeat(64 * 1024)
    );
    let node = gw.node("fs1");
    let sent = within("the node's socket to close", async {
        for sent in 0..2_000 {
            if node.stats().open_sockets < open {
                return sent;
            }
            if node.broadcast(chunk.clone()) == 0 {
                // The node's own queue is full: wait for it to drain or for the close.
                let _ = node
                    .wait_for(|s| s.open_sockets < open, Duration::from_millis(50))
                    .await;
            }
            tokio::task::yield_now().await;
        }
        panic!("the session survived 2,000 unread 64 KiB messages");
    })
    .await;
    assert!(sent > 0);
    let codes = node_sockets_closed(&gw, open).await;
    assert_eq!(codes.last(), Some(&1001), "{codes:?}");
    assert_eq!(close_code_after_any_frames(&mut ws).await, Some(1011));
    bystander
        .finish("a_browser_that_stops_reading_is_closed_after_the_stall_timeout")
        .await;
}
