//! The gateway with health monitoring on (issue 10, Health): logins go only to nodes
//! that are up, a node found down is never waited on, and failed connects count as
//! passive failures. Waits are on health changes, never on a clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use vertogw::config::Config;
use vertogw::health::state::NodeState;
use vertogw_sim::SimNode;

/// `acme` served by `first` then `second`, with short probes: `timeout` each, every
/// `interval`, down after 2 failures.
async fn gateway(interval: Duration, timeout: Duration, first: &str, second: &str) -> Setup {
    let map = format!(
        "{}{}",
        node_tables(&[first, second]),
        partition("acme", &[first, second], r#"["acme.test"]"#, None),
    );
    Setup::new(&map).tweak(move |c| {
        c.health.interval = interval;
        c.health.timeout = timeout;
        c.health.fall = 2;
        c.health.rise = 1;
        // A recovered node is active again at once (the failback tests set a delay).
        c.health.failback_delay = Duration::ZERO;
    })
}

/// Simulated fs1 then fs2, health monitored with `interval` and `timeout`.
async fn two_sims(interval: Duration, timeout: Duration) -> TestGateway {
    gateway(interval, timeout, "fs1", "fs2")
        .await
        .node(sim("fs1"))
        .node(sim("fs2"))
        .start_monitored()
        .await
}

/// A node that accepts TCP and never answers; counts the connections it got.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        // Bounded: a test makes a handful of connections.
        for _ in 0..64 {
            let Ok((tcp, _)) = listener.accept().await else {
                break;
            };
            count.fetch_add(1, Ordering::SeqCst);
            held.push(tcp);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_node_found_down_at_start_up_is_never_waited_on() {
    let (hole, accepted) = black_hole().await;
    let gw = gateway(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "hole",
        "fs2",
    )
    .await
    .url("hole", hole)
    .node(sim("fs2"))
    .start_monitored()
    .await;
    let health = gw.gateway.health().expect("health");
    assert_eq!(health.state("hole"), NodeState::Down, "its probe timed out");
    assert_eq!(health.state("fs2"), NodeState::Up);
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs2");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "only the start-up probe reached the black hole, not the login"
    );
}

#[tokio::test]
async fn a_node_that_dies_is_marked_down_by_probes_and_logins_go_to_the_standby() {
    let gw = two_sims(Duration::from_millis(100), Duration::from_millis(100)).await;
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs1");
    gw.node("fs1").vanish();
    wait_state(&gw, "fs1", NodeState::Down).await;
    let mut again = gw.client().await;
    assert_eq!(login_ready(&mut again, "1001@acme.test", 1).await, "fs2");
}

#[tokio::test]
async fn a_failed_connect_counts_against_the_node_and_the_login_tries_the_next() {
    // Probes every minute: only the login can notice that fs1 died.
    let gw = two_sims(Duration::from_secs(60), Duration::from_millis(500)).await;
    let health = gw.gateway.health().expect("health");
    gw.node("fs1").vanish();
    within("fs1 to be gone", gw.node("fs1").closed()).await;
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs2");
    let fs1 = health
        .snapshot()
        .into_iter()
        .find(|n| n.name == "fs1")
        .expect("fs1");
    assert_eq!(fs1.failures, 1, "one passive failure: {fs1:?}");
    // A second failed login attempt reaches `fall` (2): fs1 is down.
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1001@acme.test", 1).await, "fs2");
    assert_eq!(health.state("fs1"), NodeState::Down);
}

#[tokio::test]
async fn a_sessid_returns_to_its_node_for_the_same_login_only() {
    // fs1 is not there yet: its port is reserved, then freed for the node to come.
    let reserved = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let fs1_addr = reserved.local_addr().expect("address");
    drop(reserved);
    let gw = gateway(
        Duration::from_millis(100),
        Duration::from_millis(100),
        "fs1",
        "fs2",
    )
    .await
    .url("fs1", format!("ws://{fs1_addr}/"))
    .node(sim("fs2"))
    .start_monitored()
    .await;
    let (first, node) = lands_on(&gw, "1000@acme.test", "sess-A").await;
    assert_eq!(node, "fs2", "fs1 is down");
    drop(first);
    // fs1 comes up and becomes the partition's first usable node.
    let listener = TcpListener::bind(fs1_addr).await.expect("bind fs1's port");
    let fs1 = vertogw_sim::SimNode::spawn(listener, sim("fs1")).await;
    wait_state(&gw, "fs1", NodeState::Up).await;
    // The same login with its sessid goes back to fs2, where its calls would be.
    assert_eq!(lands_on(&gw, "1000@acme.test", "sess-A").await.1, "fs2");
    // Another login presenting that sessid, or a fresh sessid, goes to fs1.
    assert_eq!(lands_on(&gw, "1001@acme.test", "sess-A").await.1, "fs1");
    assert_eq!(lands_on(&gw, "1000@acme.test", "sess-B").await.1, "fs1");
    // Never to a node that is down: fs2 dies, sess-A's login goes to fs1.
    gw.node("fs2").vanish();
    wait_state(&gw, "fs2", NodeState::Down).await;
    assert_eq!(lands_on(&gw, "1000@acme.test", "sess-A").await.1, "fs1");
    fs1.shutdown().await;
}

#[tokio::test]
async fn sessions_on_a_node_that_stops_answering_are_closed_with_1001_at_once() {
    let fs1 = vertogw_sim::SimNode::spawn(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        sim("fs1"),
    )
    .await;
    // The browser's node connection goes through the switch and stays open; only
    // the probes see the node stop answering.
    let switch = Switch::new(fs1.local_addr()).await;
    let gw = gateway(
        Duration::from_millis(100),
        Duration::from_millis(100),
        "fs1",
        "fs2",
    )
    .await
    .url("fs1", switch.url.clone())
    .node(sim("fs2"))
    .start_monitored()
    .await;
    let (mut ws, node) = lands_on(&gw, "1000@acme.test", "sess-A").await;
    assert_eq!(node, "fs1");
    switch.set(Mode::Hold);
    wait_state(&gw, "fs1", NodeState::Down).await;
    assert_eq!(
        recv_close(&mut ws).await,
        Some(1001),
        "closed at once, not at a timeout"
    );
    // It reconnects, with its sessid, to the standby (fs1 is down: not sticky).
    assert_eq!(lands_on(&gw, "1000@acme.test", "sess-A").await.1, "fs2");
    fs1.shutdown().await;
}

/// fs1 (behind a switch, down at start) and fs2; failback `failback` after `delay`.
async fn failback_gateway(failback: &str, delay: Duration) -> (TestGateway, Switch, SimNode) {
    failback_gateway_moving(failback, delay, 50).await
}

/// [`failback_gateway`] moving at most `per_second` sessions a second.
async fn failback_gateway_moving(
    failback: &str,
    delay: Duration,
    per_second: u32,
) -> (TestGateway, Switch, SimNode) {
    failback_gateway_with(failback, delay, per_second, sim("fs2")).await
}

/// [`failback_gateway_moving`] with `fs2` as given.
async fn failback_gateway_with(
    failback: &str,
    delay: Duration,
    per_second: u32,
    fs2: vertogw_sim::SimConfig,
) -> (TestGateway, Switch, SimNode) {
    let fs1 = SimNode::spawn(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        sim("fs1"),
    )
    .await;
    let switch = Switch::new(fs1.local_addr()).await;
    switch.set(Mode::Drop);
    let map = format!(
        "{}{}failback = \"{failback}\"\n",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1", "fs2"], r#"["acme.test"]"#, None),
    );
    let gw = Setup::new(&map)
        .url("fs1", switch.url.clone())
        .node(fs2)
        .tweak(move |c| {
            fast_probes(c);
            c.health.failback_delay = delay;
            c.health.migrate_per_second = per_second;
        })
        .start_monitored()
        .await;
    (gw, switch, fs1)
}

#[tokio::test]
async fn a_recovered_node_becomes_active_again_only_after_the_failback_delay() {
    let delay = Duration::from_millis(800);
    let (gw, switch, fs1) = failback_gateway("auto", delay).await;
    assert_eq!(
        lands_on(&gw, "1000@acme.test", "s1").await.1,
        "fs2",
        "fs1 is down"
    );
    switch.set(Mode::Forward);
    wait_state(&gw, "fs1", NodeState::Up).await;
    let health = gw.gateway.health().expect("health");
    let back = health.recovered_at("fs1").expect("fs1 came back from down");
    // Up, but inside its delay: the partition stays on fs2.
    if tokio::time::Instant::now() < back + delay / 2 {
        assert_eq!(
            lands_on(&gw, "1001@acme.test", "s2").await.1,
            "fs2",
            "not before the delay"
        );
    }
    tokio::time::sleep_until(back + delay).await;
    assert_eq!(
        lands_on(&gw, "1002@acme.test", "s3").await.1,
        "fs1",
        "after the delay"
    );
    fs1.shutdown().await;
}

#[tokio::test]
async fn with_manual_failback_the_partition_stays_on_the_standby() {
    let delay = Duration::from_millis(200);
    let (gw, switch, fs1) = failback_gateway("manual", delay).await;
    assert_eq!(lands_on(&gw, "1000@acme.test", "s1").await.1, "fs2");
    switch.set(Mode::Forward);
    wait_state(&gw, "fs1", NodeState::Up).await;
    let back = gw
        .gateway
        .health()
        .and_then(|h| h.recovered_at("fs1"))
        .expect("recovered");
    tokio::time::sleep_until(back + delay * 2).await;
    assert_eq!(
        lands_on(&gw, "1001@acme.test", "s2").await.1,
        "fs2",
        "manual: no return"
    );
    fs1.shutdown().await;
}

#[tokio::test]
async fn a_node_a_reload_adds_is_probed_at_once_not_at_the_next_interval() {
    // Probes every minute, and a map that names only fs1 at first.
    let map = format!(
        "{}{}",
        node_tables(&["fs1"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
    );
    let gw = Setup::new(&map)
        .node(sim("fs1"))
        .node(sim("fs2"))
        .tweak(|c| c.health.interval = Duration::from_secs(60))
        .start_monitored()
        .await;
    let health = gw.gateway.health().expect("health");
    assert_eq!(health.state("fs1"), NodeState::Up);
    let reloaded = format!(
        "{MAP_HEAD}{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs2", "fs1"], r#"["acme.test"]"#, None),
    )
    .replace("{fs1}", &gw.node("fs1").url())
    .replace("{fs2}", &gw.node("fs2").url());
    let mut config = Config::parse(&reloaded, std::path::Path::new("test.toml"))
        .expect("the reloaded map parses")
        .config;
    config.health.interval = Duration::from_secs(60);
    config.health.failback_delay = Duration::ZERO;
    gw.gateway.replace_config(Arc::new(config)).await;
    // Within the harness's bound, far inside the 60 s interval.
    wait_state(&gw, "fs2", NodeState::Up).await;
    assert_eq!(lands_on(&gw, "1000@acme.test", "s1").await.1, "fs2");
}

#[tokio::test]
async fn idle_sessions_move_to_the_recovered_node_with_1012_and_calls_stay_until_bye() {
    let (gw, switch, fs1) = failback_gateway("auto", Duration::ZERO).await;
    let (mut idle, node) = lands_on(&gw, "1000@acme.test", "idle-1").await;
    assert_eq!(node, "fs2");
    let (mut busy, _) = lands_on(&gw, "1001@acme.test", "busy-1").await;
    let invite = serde_json::json!({"jsonrpc": "2.0", "method": "verto.invite", "id": 5,
        "params": {"sdp": "v=0\r\n", "dialogParams": {"callID": "call-1"}}});
    send_json(&mut busy, &invite).await;
    assert_eq!(
        recv_json(&mut busy).await["result"]["message"],
        "CALL CREATED"
    );
    switch.set(Mode::Forward);
    // The idle session is moved; the one in a call is not.
    assert_eq!(closed_with(&mut idle).await, Some(1012));
    send_json(
        &mut busy,
        &request("echo", serde_json::json!({"still": "here"}), 6),
    )
    .await;
    let reply = within("the busy session's echo", async {
        loop {
            let msg = recv_json(&mut busy).await;
            if msg["id"] == 6 {
                return msg;
            }
        }
    })
    .await;
    assert_eq!(reply["result"]["still"], "here", "{reply}");
    // Its call ends: now it moves too.
    let bye = serde_json::json!({"jsonrpc": "2.0", "method": "verto.bye", "id": 7,
        "params": {"dialogParams": {"callID": "call-1"}}});
    send_json(&mut busy, &bye).await;
    assert_eq!(closed_with(&mut busy).await, Some(1012));
    // The moved browser comes back with its sessid: to the active node, not sticky.
    assert_eq!(lands_on(&gw, "1000@acme.test", "idle-1").await.1, "fs1");
    fs1.shutdown().await;
}

#[tokio::test]
async fn sessions_move_oldest_login_first_within_the_budget() {
    let (gw, switch, fs1) = failback_gateway_moving("auto", Duration::ZERO, 1).await;
    let mut sessions = Vec::new();
    for (i, user) in ["1000", "1001", "1002"].iter().enumerate() {
        let (ws, node) = lands_on(&gw, &format!("{user}@acme.test"), &format!("s{i}")).await;
        assert_eq!(node, "fs2");
        sessions.push(ws);
    }
    switch.set(Mode::Forward);
    // One a second: they close in login order.
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut ws) in sessions.into_iter().enumerate() {
        let order = std::sync::Arc::clone(&order);
        tasks.spawn(async move {
            let code = closed_with(&mut ws).await;
            order.lock().expect("order").push(i);
            code
        });
    }
    while let Some(code) = tasks.join_next().await {
        assert_eq!(code.expect("task"), Some(1012));
    }
    assert_eq!(*order.lock().expect("order"), [0, 1, 2]);
    fs1.shutdown().await;
}

#[tokio::test]
async fn an_idle_session_is_not_moved_before_its_nodes_client_ready() {
    // fs2 sends verto.clientReady 3 s after each login (FreeSWITCH offers detached calls
    // with verto.attach in that window).
    let mut slow = sim("fs2");
    slow.client_ready_delay = Duration::from_secs(3);
    let (gw, switch, fs1) = failback_gateway_with("auto", Duration::ZERO, 50, slow).await;
    let mut ready = gw.client().await;
    let reply = login_with_sessid(&mut ready, "1000@acme.test", PASSWORD, "ready", 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    assert_eq!(client_ready_node(&mut ready).await, "fs2");
    let mut waiting = gw.client().await;
    let reply = login_with_sessid(&mut waiting, "1001@acme.test", PASSWORD, "waiting", 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    // fs1 comes back: the session past its clientReady moves at once...
    switch.set(Mode::Forward);
    assert_eq!(closed_with(&mut ready).await, Some(1012));
    // ...the other only once its clientReady has been relayed to it.
    assert_eq!(client_ready_node(&mut waiting).await, "fs2");
    assert_eq!(closed_with(&mut waiting).await, Some(1012));
    fs1.shutdown().await;
}
