//! The operator's runtime actions on a monitored gateway (issue 10's draining, and the
//! pins of `partition.switch`), and what a reload does to sessions and pins: idle
//! sessions move with 1012 for the right reason, calls stay, deadlines close the rest
//! with 1001. Waits are on events (closes, node states), never on a clock.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use vertogw::health::state::NodeState;
use vertogw::proxy::{OperatorError, SwitchError};
use vertogw_sim::SimNode;

/// `acme` served by fs1 then fs2 (both simulated and up), probed every 100 ms, moving
/// up to 50 sessions a second, with a failback delay far longer than any test: a node
/// becoming active again before it is the operator's doing, not the delay's.
async fn farm() -> TestGateway {
    farm_setup().node(sim("fs1")).start_monitored().await
}

fn farm_setup() -> Setup {
    let map = format!(
        "{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1", "fs2"], r#"["acme.test"]"#, None),
    );
    Setup::new(&map).node(sim("fs2")).tweak(|c| {
        fast_probes(c);
        c.health.failback_delay = Duration::from_secs(600);
    })
}

/// [`farm`] with fs1 reached through a switch, to take it down and up.
async fn farm_switched() -> (TestGateway, Switch, SimNode) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let fs1 = SimNode::spawn(listener, sim("fs1")).await;
    let switch = Switch::new(fs1.local_addr()).await;
    let gw = farm_setup()
        .url("fs1", switch.url.clone())
        .start_monitored()
        .await;
    (gw, switch, fs1)
}

/// Places a call on `ws` and waits until the node answered it (`CALL CREATED`, then
/// `verto.answer`): only an answered call outlives its socket on the node.
async fn start_call(ws: &mut Client, call_id: &str) {
    let invite = json!({"jsonrpc": "2.0", "method": "verto.invite", "id": 5,
        "params": {"sdp": "v=0\r\n", "dialogParams": {"callID": call_id}}});
    send_json(ws, &invite).await;
    assert_eq!(recv_json(ws).await["result"]["message"], "CALL CREATED");
    let answer = recv_json(ws).await;
    assert_eq!(answer["method"], "verto.answer", "{answer}");
}

/// Logs `login` in with `sessid` where its detached call is: the node re-attaches the
/// call (`verto.attach`) before `verto.clientReady`. Returns the node.
async fn returns_to_call(gw: &TestGateway, login: &str, sessid: &str) -> String {
    let mut ws = gw.client().await;
    let reply = login_with_sessid(&mut ws, login, PASSWORD, sessid, 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{login}: {reply}");
    let attach = recv_json(&mut ws).await;
    assert_eq!(attach["method"], "verto.attach", "{attach}");
    client_ready_node(&mut ws).await
}

/// An echo through `ws` still comes back (the session relays).
async fn still_relays(ws: &mut Client, id: u64) {
    send_json(ws, &request("echo", json!({"still": "here"}), id)).await;
    let reply = within("the echo", async {
        loop {
            let msg = recv_json(ws).await;
            if msg["id"] == id {
                return msg;
            }
        }
    })
    .await;
    assert_eq!(reply["result"]["still"], "here", "{reply}");
}

#[tokio::test]
async fn draining_moves_idle_sessions_keeps_calls_and_undrain_needs_no_failback_delay() {
    let (gw, switch, fs1) = farm_switched().await;
    let fs1_stats = &fs1;
    let (mut idle, node) = lands_on(&gw, "1000@acme.test", "idle").await;
    assert_eq!(node, "fs1");
    let (mut busy, _) = lands_on(&gw, "1001@acme.test", "busy").await;
    start_call(&mut busy, "call-1").await;

    let status = gw.gateway.drain("fs1", None).expect("fs1 drains");
    assert_eq!(status.state, NodeState::Drain);
    assert_eq!((status.sessions, status.calls), (2, 1), "{status:?}");
    assert_eq!(status.deadline_s_left, None);
    assert_eq!(closed_with(&mut idle).await, Some(1012));
    assert_eq!(migrations(&gw, "drain"), 1);
    still_relays(&mut busy, 6).await;
    // New logins, and the moved session coming back with its sessid, go to fs2.
    assert_eq!(lands_on(&gw, "1002@acme.test", "new").await.1, "fs2");
    assert_eq!(lands_on(&gw, "1000@acme.test", "idle").await.1, "fs2");
    // The busy session's sessid may return to the draining node: its calls are there.
    drop(busy);
    wait_stats(fs1_stats, "the call detached", |s| s.calls_detached == 1).await;
    assert_eq!(returns_to_call(&gw, "1001@acme.test", "busy").await, "fs1");

    // fs1 flaps while drained: it comes back drained, inside its failback delay.
    switch.set(Mode::Drop);
    wait_state(&gw, "fs1", NodeState::Down).await;
    switch.set(Mode::Forward);
    wait_state(&gw, "fs1", NodeState::Drain).await;
    // Undrain: fs1 is active again at once, although the failback delay is 600 s.
    let status = gw.gateway.undrain("fs1").expect("fs1 undrains");
    assert_eq!(status.state, NodeState::Up);
    assert_eq!(lands_on(&gw, "1003@acme.test", "later").await.1, "fs1");
    fs1.shutdown().await;
    let unknown = gw.gateway.drain("fs9", None).expect_err("no fs9");
    assert_eq!(unknown.to_string(), "no node named \"fs9\" in the map");
}

#[tokio::test]
async fn a_drain_deadline_closes_the_remaining_sessions_with_1001_calls_included() {
    let gw = farm().await;
    let (mut busy, node) = lands_on(&gw, "1001@acme.test", "busy").await;
    assert_eq!(node, "fs1");
    start_call(&mut busy, "call-1").await;
    let status = gw
        .gateway
        .drain("fs1", Some(Duration::from_millis(300)))
        .expect("fs1 drains");
    assert_eq!(
        status.deadline_s_left,
        Some(1),
        "300 ms, rounded up: {status:?}"
    );
    assert_eq!(closed_with(&mut busy).await, Some(1001));
    assert_eq!(migrations(&gw, "drain_deadline"), 1);
    assert_eq!(migrations(&gw, "drain"), 0, "a deadline close is no move");
    // Past the deadline its sessid no longer returns there.
    assert_eq!(lands_on(&gw, "1001@acme.test", "busy").await.1, "fs2");
}

#[tokio::test]
async fn a_partition_whose_nodes_all_drain_answers_logins_with_32002() {
    let map = format!(
        "{}{}",
        node_tables(&["fs1"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
    );
    let gw = Setup::new(&map).node(sim("fs1")).start_monitored().await;
    let (mut busy, _) = lands_on(&gw, "1001@acme.test", "busy").await;
    start_call(&mut busy, "call-1").await;
    gw.gateway.drain("fs1", None).expect("fs1 drains");
    let mut ws = gw.client().await;
    let reply = login_with_sessid(&mut ws, "1000@acme.test", PASSWORD, "fresh", 7).await;
    assert_eq!(reply["error"]["code"], -32002, "{reply}");
    assert_eq!(reply["error"]["message"], "partition draining", "{reply}");
    // The session in a call keeps its node, and its sessid may come back to it.
    still_relays(&mut busy, 8).await;
    drop(busy);
    wait_stats(gw.node("fs1"), "the call detached", |s| {
        s.calls_detached == 1
    })
    .await;
    assert_eq!(returns_to_call(&gw, "1001@acme.test", "busy").await, "fs1");
}

#[tokio::test]
async fn a_switch_pins_the_partition_until_the_pinned_node_goes_down() {
    let gw = farm().await;
    let (mut idle, node) = lands_on(&gw, "1000@acme.test", "idle").await;
    assert_eq!(node, "fs1");
    let not_listed = gw.gateway.switch("acme", Some("fs9")).expect_err("fs9");
    assert!(
        matches!(
            not_listed,
            OperatorError::Switch(SwitchError::NotInPartition { .. })
        ),
        "{not_listed:?}"
    );
    let unknown = gw.gateway.switch("nope", None).expect_err("no partition");
    assert!(
        matches!(
            unknown,
            OperatorError::Switch(SwitchError::UnknownPartition(_))
        ),
        "{unknown:?}"
    );

    let switched = gw.gateway.switch("acme", Some("fs2")).expect("switch");
    assert_eq!(
        (switched.active.as_deref(), switched.pinned),
        (Some("fs2"), true)
    );
    assert_eq!(closed_with(&mut idle).await, Some(1012));
    assert_eq!(migrations(&gw, "switch"), 1);
    assert_eq!(lands_on(&gw, "1000@acme.test", "idle").await.1, "fs2");

    // Ending the pin hands the choice back to the failback rules: fs1 has been up
    // since start-up, so no failback delay holds it back.
    let unpinned = gw.gateway.switch("acme", None).expect("unpin");
    assert_eq!(
        (unpinned.active.as_deref(), unpinned.pinned),
        (Some("fs1"), false)
    );
    // Pinned again, to fs1; fs1 dies: the pin ends and the partition fails over.
    gw.gateway.switch("acme", Some("fs1")).expect("switch");
    gw.node("fs1").vanish();
    wait_state(&gw, "fs1", NodeState::Down).await;
    let down = gw
        .gateway
        .switch("acme", Some("fs1"))
        .expect_err("fs1 down");
    assert_eq!(
        down,
        OperatorError::Switch(SwitchError::NotUp("fs1".into()))
    );
    assert_eq!(lands_on(&gw, "1001@acme.test", "other").await.1, "fs2");
    assert!(!gw.gateway.switch("acme", None).expect("status").pinned);
}

/// The farm's map after a reload: `acme` served by `acme_nodes`, `beta` (fs2) only
/// when `with_beta`.
fn reloaded_map(acme_nodes: &[&str], with_beta: bool) -> String {
    let beta = match with_beta {
        true => partition("beta", &["fs2"], r#"["beta.test"]"#, None),
        false => String::new(),
    };
    format!(
        "{MAP_HEAD}{}{}{beta}",
        node_tables(acme_nodes),
        partition("acme", acme_nodes, r#"["acme.test"]"#, None),
    )
}

fn urls(gw: &TestGateway) -> Vec<(&'static str, String)> {
    vec![("fs1", gw.node("fs1").url()), ("fs2", gw.node("fs2").url())]
}

fn quick_probes(c: &mut vertogw::config::Config) {
    c.health.interval = Duration::from_millis(100);
    c.health.timeout = Duration::from_millis(100);
    c.health.failback_delay = Duration::from_secs(600);
}

#[tokio::test]
async fn a_reload_that_reorders_a_partition_ends_its_pin_and_applies_at_once() {
    let gw = farm().await;
    let (mut idle, node) = lands_on(&gw, "1000@acme.test", "idle").await;
    assert_eq!(node, "fs1");
    gw.gateway
        .switch("acme", Some("fs1"))
        .expect("pinned to fs1");
    // fs2 first now: active at once, although the failback delay is 600 s.
    reload(
        &gw,
        &reloaded_map(&["fs2", "fs1"], false),
        &urls(&gw),
        quick_probes,
    )
    .await;
    assert_eq!(closed_with(&mut idle).await, Some(1012));
    assert_eq!(migrations(&gw, "reload"), 1);
    assert_eq!(lands_on(&gw, "1000@acme.test", "idle").await.1, "fs2");
    let status = gw.gateway.switch("acme", None).expect("status");
    assert!(!status.pinned, "the reload ended the pin");
}

#[tokio::test]
async fn sessions_of_a_removed_node_keep_relaying_until_they_move() {
    let gw = farm().await;
    let (mut idle, _) = lands_on(&gw, "1000@acme.test", "idle").await;
    let (mut busy, node) = lands_on(&gw, "1001@acme.test", "busy").await;
    assert_eq!(node, "fs1");
    start_call(&mut busy, "call-1").await;
    // fs1 leaves the map: it is not down, so its call is not cut.
    reload(
        &gw,
        &reloaded_map(&["fs2"], false),
        &urls(&gw),
        quick_probes,
    )
    .await;
    assert_eq!(closed_with(&mut idle).await, Some(1012));
    still_relays(&mut busy, 6).await;
    let bye = json!({"jsonrpc": "2.0", "method": "verto.bye", "id": 7,
        "params": {"dialogParams": {"callID": "call-1"}}});
    send_json(&mut busy, &bye).await;
    assert_eq!(closed_with(&mut busy).await, Some(1012));
    assert_eq!(migrations(&gw, "reload"), 2);
    assert_eq!(lands_on(&gw, "1001@acme.test", "busy").await.1, "fs2");
}

#[tokio::test]
async fn idle_sessions_of_a_removed_partition_move_and_are_routed_by_the_new_map() {
    let map = format!(
        "{}{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
        partition("beta", &["fs2"], r#"["beta.test"]"#, None),
    );
    let gw = Setup::new(&map)
        .node(sim("fs1"))
        .node(sim("fs2"))
        .tweak(quick_probes)
        .start_monitored()
        .await;
    let (mut acme, _) = lands_on(&gw, "1000@acme.test", "a").await;
    let (mut beta, node) = lands_on(&gw, "1000@beta.test", "b").await;
    assert_eq!(node, "fs2");
    let without_beta = format!(
        "{MAP_HEAD}{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
    );
    reload(&gw, &without_beta, &urls(&gw), quick_probes).await;
    assert_eq!(closed_with(&mut beta).await, Some(1012));
    assert_eq!(migrations(&gw, "reload"), 1);
    // The acme session never noticed.
    still_relays(&mut acme, 9).await;
    // beta.test has no partition now: its login is refused.
    let mut ws = gw.client().await;
    let reply = login_with_sessid(&mut ws, "1000@beta.test", PASSWORD, "b", 3).await;
    assert!(reply["error"].is_object(), "{reply}");
}

#[tokio::test]
async fn a_sticky_return_moves_once_its_call_ends_and_never_loops() {
    let gw = farm().await;
    // The call is set up on fs2 while the partition is pinned there.
    gw.gateway
        .switch("acme", Some("fs2"))
        .expect("pinned to fs2");
    let (mut busy, node) = lands_on(&gw, "1001@acme.test", "busy").await;
    assert_eq!(node, "fs2");
    start_call(&mut busy, "call-1").await;
    let unpinned = gw.gateway.switch("acme", None).expect("unpin");
    assert_eq!(unpinned.active.as_deref(), Some("fs1"));
    // The browser reconnects (say, a network change): its sessid takes it back to fs2,
    // where FreeSWITCH re-attaches the call.
    drop(busy);
    wait_stats(gw.node("fs2"), "the call detached", |s| {
        s.calls_detached == 1
    })
    .await;
    let mut back = gw.client().await;
    let reply = login_with_sessid(&mut back, "1001@acme.test", PASSWORD, "busy", 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    let attach = recv_json(&mut back).await;
    assert_eq!(attach["method"], "verto.attach", "{attach}");
    assert_eq!(client_ready_node(&mut back).await, "fs2");
    still_relays(&mut back, 6).await;
    // The call ends: the session moves, its sticky entry forgotten.
    let bye = json!({"jsonrpc": "2.0", "method": "verto.bye", "id": 7,
        "params": {"dialogParams": {"callID": "call-1"}}});
    send_json(&mut back, &bye).await;
    assert_eq!(closed_with(&mut back).await, Some(1012));
    assert_eq!(migrations(&gw, "sticky"), 1);
    assert_eq!(lands_on(&gw, "1001@acme.test", "busy").await.1, "fs1");
}
