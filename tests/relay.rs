//! After login the gateway relays both ways: node requests reach the browser, closes
//! propagate, a vanished node is reported, pings stay at the gateway, and logins for
//! other partitions are handled without disturbing the session.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn client_ready_from_the_node_reaches_the_browser_after_login() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    login(&mut ws, "1000@acme.test", PASSWORD, 1).await;
    let ready = recv_json(&mut ws).await;
    assert_eq!(ready["method"], "verto.clientReady", "{ready}");
    assert_eq!(ready["params"]["reattached_sessions"], json!([]), "{ready}");
    assert_eq!(ready["params"]["sim_node"], "fs1", "{ready}");
    assert!(
        ready["id"].is_u64(),
        "server requests carry a numeric id: {ready}"
    );
}

#[tokio::test]
async fn same_sessid_on_a_second_socket_punts_the_first_which_then_closes_with_1000() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let sid = sessid();
    let mut first = gw.client().await;
    let reply = login_with_sessid(&mut first, "1000@acme.test", PASSWORD, &sid, 1).await;
    assert_eq!(reply["result"]["sessid"], sid.as_str(), "{reply}");
    assert_eq!(client_ready_node(&mut first).await, "fs1");

    let mut second = gw.client().await;
    let reply = login_with_sessid(&mut second, "1000@acme.test", PASSWORD, &sid, 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");

    let punt = recv_json(&mut first).await;
    assert_eq!(punt["method"], "verto.punt", "{punt}");
    assert_eq!(recv_close(&mut first).await, Some(1000));
    // The new socket carries on.
    assert_eq!(client_ready_node(&mut second).await, "fs1");
    send_json(&mut second, &request("verto.ping", json!({}), 5)).await;
    assert_eq!(recv_json(&mut second).await["result"]["message"], "PONG");
}

#[tokio::test]
async fn browser_close_4000_reaches_the_node() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    let node = gw.node("fs1");
    assert_eq!(node.stats().open_sockets, 1);
    close_with(&mut ws, 4000).await;
    // The gateway echoes the browser's close.
    assert_eq!(recv_close(&mut ws).await, Some(4000));
    wait_stats(node, "the node socket to close", |s| s.open_sockets == 0).await;
}

#[tokio::test]
async fn node_shutdown_closes_the_browser_with_the_nodes_code() {
    let mut gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    let node = gw.take_node("fs1");
    let shutdown = tokio::spawn(node.shutdown());
    assert_eq!(recv_close(&mut ws).await, Some(1000));
    within("the node to shut down", shutdown)
        .await
        .expect("node shutdown task");
}

#[tokio::test]
async fn node_vanishing_mid_session_closes_the_browser_with_1014() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    gw.node("fs1").vanish();
    assert_eq!(recv_close_raw(&mut ws).await, Some(1014));
}

/// Sends a WebSocket ping and waits for the pong carrying the same payload.
async fn ping_pong(ws: &mut Client, payload: &str) {
    within(
        "send ping",
        ws.send(Message::Ping(payload.as_bytes().to_vec().into())),
    )
    .await
    .expect("send ping");
    within("the pong", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(p))) => {
                    assert_eq!(&p[..], payload.as_bytes(), "pong payload");
                    return;
                }
                Some(Ok(Message::Ping(_))) => continue,
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn browser_ping_is_answered_by_the_gateway_and_never_reaches_the_node() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    ping_pong(&mut ws, "before-login").await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    // A JSON-RPC payload: mod_verto would execute it, so it must not get there.
    ping_pong(
        &mut ws,
        r#"{"jsonrpc":"2.0","method":"verto.ping","params":{},"id":99}"#,
    )
    .await;
    // A request after the ping: its answer proves the node has read past where the
    // ping would have been.
    send_json(&mut ws, &request("verto.ping", json!({}), 5)).await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(
        reply["id"], 5,
        "no answer to the ping's payload may come first: {reply}"
    );
    let stats = gw.node("fs1").stats();
    assert_eq!(
        (stats.pings_received, stats.pongs_received),
        (0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn failed_login_at_the_node_is_relayed_and_another_partition_then_logs_in() {
    let gw = two_partitions().await;
    let mut ws = gw.client().await;
    send_json(
        &mut ws,
        &login_request("1000@acme.test", "wrong", &sessid(), 1),
    )
    .await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(
        reply,
        json!({"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Authentication Failure"}})
    );
    assert_eq!(gw.node("fsa").stats().logins_failed, 1);

    let reply = login_with_sessid(&mut ws, "1000@beta.test", PASSWORD, &sessid(), 2).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    assert_eq!(client_ready_node(&mut ws).await, "fsb");
    wait_stats(gw.node("fsa"), "the abandoned node leg to close", |s| {
        s.open_sockets == 0
    })
    .await;
}

#[tokio::test]
async fn after_login_a_login_for_another_partition_is_refused_and_the_session_keeps_working() {
    let gw = two_partitions().await;
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fsa");

    send_json(
        &mut ws,
        &login_request("1001@beta.test", PASSWORD, &sessid(), 10),
    )
    .await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["id"], 10, "{reply}");
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    assert_eq!(gw.node("fsb").stats().tcp_accepted, 0);

    send_json(&mut ws, &request("verto.ping", json!({}), 11)).await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["id"], 11, "{reply}");
    assert_eq!(reply["result"]["message"], "PONG", "{reply}");
    let at_fsa = gw.node("fsa").received();
    assert!(
        at_fsa.iter().any(|m| m.contains(r#""id":11"#)),
        "fsa answered: {at_fsa:?}"
    );
}

#[tokio::test]
async fn a_relogin_for_the_same_partition_is_forwarded_to_the_node() {
    let gw = two_partitions().await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    send_json(
        &mut ws,
        &login_request("1000@acme.test", "wrong", &sessid(), 20),
    )
    .await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(
        reply["error"]["message"], "Authentication Failure",
        "{reply}"
    );
    // mod_verto keeps an authenticated socket authenticated after a bad re-login.
    send_json(&mut ws, &request("verto.ping", json!({}), 21)).await;
    assert_eq!(recv_json(&mut ws).await["result"]["message"], "PONG");
}

#[tokio::test]
async fn gateway_shutdown_closes_every_session_with_1001_and_serve_returns() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut routed = gw.client().await;
    login_ready(&mut routed, "1000@acme.test", 1).await;
    let mut waiting = gw.client().await;
    send_json(&mut waiting, &request("login", json!({"sessid": "s"}), 1)).await;
    assert_eq!(recv_json(&mut waiting).await["error"]["code"], -32000);

    gw.shutdown.cancel();
    assert_eq!(recv_close(&mut routed).await, Some(1001));
    assert_eq!(recv_close(&mut waiting).await, Some(1001));
    wait_stats(gw.node("fs1"), "the node leg to close", |s| {
        s.open_sockets == 0
    })
    .await;
    within("serve to return", gw.serve)
        .await
        .expect("serve task")
        .expect("serve result");
}

#[tokio::test]
async fn a_sessid_owned_by_another_user_gets_session_in_use_and_that_socket_is_closed() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let sid = sessid();
    let mut owner = gw.client().await;
    login_with_sessid(&mut owner, "1000@acme.test", PASSWORD, &sid, 1).await;
    assert_eq!(client_ready_node(&mut owner).await, "fs1");

    let mut intruder = gw.client().await;
    let reply = login_with_sessid(&mut intruder, "1001@acme.test", PASSWORD, &sid, 1).await;
    assert_eq!(reply["error"]["message"], "Session in use", "{reply}");
    assert_eq!(recv_close(&mut intruder).await, Some(1000));
    // The owner is not affected.
    send_json(&mut owner, &request("verto.ping", json!({}), 3)).await;
    assert_eq!(recv_json(&mut owner).await["result"]["message"], "PONG");
}

/// Writes of back-to-back empty pong frames the flooding browser makes at most.
const FLOOD_WRITES: usize = 20_000;

/// Empty masked pongs per write (6 bytes each): a few TLS records' worth.
const PONGS_PER_WRITE: usize = 10_000;

/// A browser that sends nothing but control frames, as fast as it can, does not take
/// the gateway's thread from the sessions beside it: the gateway serves both on one
/// thread of its own (as `vertogw serve` does per core), and the bystander keeps getting
/// every echo answered (its round trips are printed, never asserted). The bound behind
/// it, a yield after every batch of frames without a message, is proved exactly by the
/// frame relay's own test; without it this one still passed, with the bystander's p50
/// at ~180 ms instead of ~1.6 ms (debug build), held only by Tokio's task budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_control_frames_cannot_hold_the_gateways_thread() {
    let mut gw = Setup::new(&one_node_map_and_calm())
        .node(sim("fs1"))
        .node(sim("calm"))
        .start()
        .await;
    let listeners = vertogw::proxy::bind("127.0.0.1:0".parse().expect("address"), 1).expect("bind");
    gw.addr = listeners[0].local_addr().expect("the shard's address");
    let shard = {
        let (gateway, shutdown) = (std::sync::Arc::clone(&gw.gateway), gw.shutdown.clone());
        std::thread::spawn(move || vertogw::proxy::serve_sharded(listeners, gateway, shutdown))
    };
    let bystander = Bystander::start(&gw, CALM_USER).await;
    let mut ws = gw.client().await;
    login_ready(&mut ws, "1000@acme.test", 1).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let pong = [0x8A, 0x80, 0x37, 0xfa, 0x21, 0x3d];
            let flood = pong.repeat(PONGS_PER_WRITE);
            let raw = ws.get_mut();
            let mut writes = 0;
            while writes < FLOOD_WRITES && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if tokio::io::AsyncWriteExt::write_all(raw, &flood)
                    .await
                    .is_err()
                {
                    break;
                }
                writes += 1;
            }
            writes
        })
    };
    bystander.attack_begins();
    // The attack lasts a second: long enough to fill every buffer on its way many
    // times over, and for the bystander to need ~100 answers during it.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    bystander
        .finish("a_flood_of_control_frames_cannot_hold_the_gateways_thread")
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = within("the flood to stop", flooder)
        .await
        .expect("the flooder");
    assert!(writes > 0, "the flood never started");
    gw.shutdown.cancel();
    within(
        "the gateway's thread to stop",
        tokio::task::spawn_blocking(move || shard.join()),
    )
    .await
    .expect("joined")
    .expect("the gateway's thread")
    .expect("serve_sharded");
}
