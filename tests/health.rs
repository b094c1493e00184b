//! Node health over real sockets: start-up probes, the probe loops detecting a stopped
//! or black-holed node within `fall × interval + timeout`, recovery after `rise`
//! successes, passive failures, the drain flag, `wss://` verification against
//! `ca_file`, the probe's exact wire behaviour, and reloads.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use vertogw::config::{Config, NodeUrl};
use vertogw::health::probe::PROBE_LOGIN;
use vertogw::health::{client_tls, probe, Health, NodeState, Reason, Transition};
use vertogw_sim::SimNode;

use common::{certs, refusing_url, sim, sim_tls, within, Mode, Switch};

/// Probe settings fast enough for tests, slow enough for a loaded machine.
const FAST: &str = "interval_ms = 250\ntimeout_ms = 250\nrise = 2\nfall = 3\n";
const INTERVAL: Duration = Duration::from_millis(250);
const TIMEOUT: Duration = Duration::from_millis(250);
/// What scheduling on a busy test machine may add to a detection time.
const SLACK: Duration = Duration::from_millis(500);

/// A map of `nodes` (name, URL) in one partition, with `health` as its `[health]` keys.
fn map(nodes: &[(&str, &str)], health: &str) -> Config {
    let mut text = common::MAP_HEAD.to_owned();
    for (name, url) in nodes {
        text += &format!("\n[[node]]\nname = \"{name}\"\nverto_url = \"{url}\"\n");
    }
    let names: Vec<String> = nodes.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    text += &format!(
        "\n[[partition]]\nname = \"p\"\nnodes = [{}]\ndomains = [\"*\"]\n\n[health]\n{health}",
        names.join(", ")
    );
    match Config::parse(&text, Path::new("health.toml")) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("test map does not parse:\n{e}\n---\n{text}"),
    }
}

async fn spawn_sim(config: vertogw_sim::SimConfig) -> SimNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    SimNode::spawn(listener, config).await
}

/// The TLS config of probes to `ws://` nodes (never used for them).
fn any_tls() -> Arc<ClientConfig> {
    Arc::clone(&certs().client)
}

/// Waits (bounded) until `node` is in `state`; returns when that was seen.
async fn wait_state(health: &Health, node: &str, state: NodeState) -> Instant {
    let mut changes = health.changes();
    let what = format!("node {node} to be {state}");
    within(&what, async {
        loop {
            if health.state(node) == state {
                return Instant::now();
            }
            changes.changed().await.expect("health dropped");
        }
    })
    .await
}

fn status(health: &Health, node: &str) -> vertogw::health::NodeStatus {
    match health.snapshot().into_iter().find(|s| s.name == node) {
        Some(s) => s,
        None => panic!("no node {node} in the snapshot"),
    }
}

fn last_change(health: &Health, node: &str) -> Transition {
    status(health, node)
        .last_change
        .unwrap_or_else(|| panic!("node {node} never changed state"))
}

#[tokio::test]
async fn start_up_marks_an_answering_node_up_and_a_refusing_one_down() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let refusing = refusing_url().await;
    let config = map(&[("fs1", &fs1.url()), ("fs2", &refusing)], FAST);
    let health = Health::new(&config);
    assert_eq!(health.state("fs1"), NodeState::Down, "not probed yet");
    within("start-up probes", health.start_up(&any_tls())).await;
    assert!(health.is_up("fs1") && !health.is_draining("fs1") && health.is_usable("fs1"));
    assert_eq!(health.state("fs2"), NodeState::Down);
    assert!(!health.is_usable("fs2") && health.up_since("fs2").is_none());
    assert!(health.up_since("fs1").is_some());
    let (s1, s2) = (status(&health, "fs1"), status(&health, "fs2"));
    assert!(s1.probed && s2.probed);
    assert!(
        matches!(s1.last_probe, Some(Ok(_))) && s1.last_change.is_none(),
        "{s1:?}"
    );
    assert_eq!(s2.last_probe, Some(Err("refused")));
    // A second start-up probes only nodes never probed: none here.
    within("start-up probes", health.start_up(&any_tls())).await;
    assert_eq!(fs1.stats().upgrades, 1);
    assert_eq!(health.state("fs9"), NodeState::Down, "a node the map lacks");
}

#[tokio::test]
async fn a_stopped_node_goes_down_within_fall_intervals_plus_timeout() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let health = Arc::new(Health::new(&map(&[("fs1", &fs1.url())], FAST)));
    health.start_up(&any_tls()).await;
    assert!(health.is_up("fs1"));
    let shutdown = CancellationToken::new();
    let loops = Arc::clone(&health).spawn(any_tls(), shutdown.clone());
    fs1.vanish();
    within("the node to close", fs1.closed()).await;
    let stopped = Instant::now();
    wait_state(&health, "fs1", NodeState::Down).await;
    let t = last_change(&health, "fs1");
    assert_eq!(
        (t.from, t.to, t.reason),
        (NodeState::Up, NodeState::Down, Reason::Probe)
    );
    let took = t.at - stopped;
    assert!(
        took <= INTERVAL * 3 + TIMEOUT + SLACK,
        "down after {took:?}"
    );
    assert_eq!(status(&health, "fs1").last_probe, Some(Err("refused")));
    shutdown.cancel();
    within("the probe loops to stop", loops)
        .await
        .expect("loops");
}

#[tokio::test]
async fn a_black_holed_node_goes_down_by_timeout_and_comes_back() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let switch = Switch::new(fs1.local_addr()).await;
    let health = Arc::new(Health::new(&map(&[("fs1", &switch.url)], FAST)));
    health.start_up(&any_tls()).await;
    assert!(health.is_up("fs1"));
    let shutdown = CancellationToken::new();
    let loops = Arc::clone(&health).spawn(any_tls(), shutdown.clone());
    switch.set(Mode::Hold);
    let silent = Instant::now();
    wait_state(&health, "fs1", NodeState::Down).await;
    let t = last_change(&health, "fs1");
    let took = t.at - silent;
    assert!(
        took <= INTERVAL * 3 + TIMEOUT + SLACK,
        "down after {took:?}"
    );
    assert!(
        took >= INTERVAL * 2 + TIMEOUT,
        "the third probe to wait out the timeout started two intervals after the first: {took:?}"
    );
    assert_eq!(status(&health, "fs1").last_probe, Some(Err("timeout")));
    switch.set(Mode::Forward);
    let back = Instant::now();
    wait_state(&health, "fs1", NodeState::Up).await;
    let t = last_change(&health, "fs1");
    assert_eq!((t.from, t.reason), (NodeState::Down, Reason::Probe));
    // A probe that was waiting on the hold when the node came back still times out.
    let took = t.at - back;
    assert!(took <= INTERVAL * 3 + SLACK, "up after {took:?}");
    assert_eq!(health.up_since("fs1"), Some(t.at));
    shutdown.cancel();
    within("the probe loops to stop", loops)
        .await
        .expect("loops");
}

#[tokio::test]
async fn a_node_that_comes_back_goes_up_after_rise_successes() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let switch = Switch::new(fs1.local_addr()).await;
    let config = map(&[("fs1", &switch.url)], "rise = 3\nfall = 1\n");
    let health = Health::new(&config);
    let tls = any_tls();
    health.start_up(&tls).await;
    switch.set(Mode::Drop);
    let failed = health.probe_once("fs1", &tls).await.expect("known node");
    assert_eq!(failed.map_err(|e| e.category()).err(), Some("handshake"));
    assert_eq!(health.state("fs1"), NodeState::Down, "fall = 1");
    switch.set(Mode::Forward);
    for n in 1..=2 {
        assert!(matches!(health.probe_once("fs1", &tls).await, Some(Ok(_))));
        assert_eq!(health.state("fs1"), NodeState::Down, "{n} success(es) of 3");
        assert_eq!(status(&health, "fs1").successes, n);
    }
    assert!(matches!(health.probe_once("fs1", &tls).await, Some(Ok(_))));
    assert_eq!(health.state("fs1"), NodeState::Up);
    let t = last_change(&health, "fs1");
    assert_eq!(
        (t.from, t.to, t.reason),
        (NodeState::Down, NodeState::Up, Reason::Probe)
    );
    assert!(health.probe_once("fs9", &tls).await.is_none());
}

#[tokio::test]
async fn passive_failures_add_to_the_probe_failure_count() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let health = Health::new(&map(&[("fs1", &fs1.url())], FAST));
    let tls = any_tls();
    health.start_up(&tls).await;
    fs1.vanish();
    within("the node to close", fs1.closed()).await;
    for _ in 0..2 {
        let result = health.probe_once("fs1", &tls).await.expect("known node");
        assert_eq!(result.map_err(|e| e.category()).err(), Some("refused"));
    }
    assert_eq!(health.state("fs1"), NodeState::Up, "fall - 1 = 2 failures");
    assert_eq!(status(&health, "fs1").failures, 2);
    let t = health
        .passive_failure("fs1", "refused")
        .expect("a transition");
    assert_eq!(
        (t.from, t.to, t.reason),
        (NodeState::Up, NodeState::Down, Reason::Passive)
    );
    assert_eq!(health.state("fs1"), NodeState::Down);
    assert_eq!(
        health.passive_failure("fs1", "refused"),
        None,
        "already down"
    );
    assert_eq!(
        health.passive_failure("fs9", "refused"),
        None,
        "unknown node"
    );
}

#[tokio::test]
async fn the_drain_flag_survives_down_and_up() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let switch = Switch::new(fs1.local_addr()).await;
    let health = Health::new(&map(&[("fs1", &switch.url)], FAST));
    let tls = any_tls();
    health.start_up(&tls).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let t = health
        .set_drain("fs1", true, Some(deadline))
        .expect("known")
        .expect("a transition");
    assert_eq!(
        (t.from, t.to, t.reason),
        (NodeState::Up, NodeState::Drain, Reason::Operator)
    );
    assert!(health.is_draining("fs1") && health.is_usable("fs1") && !health.is_up("fs1"));
    switch.set(Mode::Drop);
    for _ in 0..3 {
        health.probe_once("fs1", &tls).await;
    }
    assert_eq!(health.state("fs1"), NodeState::Down);
    let s = status(&health, "fs1");
    assert!(s.drain && !health.is_draining("fs1"), "{s:?}");
    assert_eq!(
        s.drain_deadline,
        Some(deadline),
        "the deadline stays with the flag"
    );
    assert_eq!(last_change(&health, "fs1").from, NodeState::Drain);
    switch.set(Mode::Forward);
    for _ in 0..2 {
        health.probe_once("fs1", &tls).await;
    }
    assert_eq!(health.state("fs1"), NodeState::Drain, "back, still drained");
    let t = health
        .set_drain("fs1", false, Some(deadline))
        .expect("known")
        .expect("a transition");
    assert_eq!((t.from, t.to), (NodeState::Drain, NodeState::Up));
    assert_eq!(
        health.drain_deadline("fs1"),
        None,
        "undrain clears the deadline"
    );
    let unknown = health
        .set_drain("fs9", true, None)
        .expect_err("unknown node");
    assert_eq!(unknown.to_string(), "no node named \"fs9\" in the map");
}

#[tokio::test]
async fn a_wss_node_is_verified_against_ca_file_and_a_wrong_ca_fails_as_tls() {
    let fs1 = spawn_sim(sim_tls("fs1")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let right = dir.path().join("nodes-ca.pem");
    std::fs::write(&right, &certs().cert_pem).expect("write CA");
    let other = vertogw_net::tls::self_signed(&["localhost"]).expect("certificate");
    let wrong = dir.path().join("other-ca.pem");
    std::fs::write(&wrong, &other.cert_pem).expect("write CA");
    let url = fs1.url();
    assert!(url.starts_with("wss://localhost:"), "{url}");
    let with_ca = |ca: &Path| {
        map(
            &[("fs1", &url)],
            &format!("ca_file = {:?}\n", ca.display().to_string()),
        )
    };

    let config = with_ca(&right);
    let tls = client_tls(&config).expect("client config");
    let health = Health::new(&config);
    health.start_up(&tls).await;
    assert!(health.is_up("fs1"), "{:?}", health.snapshot());

    let config = with_ca(&wrong);
    let tls = client_tls(&config).expect("client config");
    let node: NodeUrl = url.parse().expect("url");
    let e = probe(&node, &tls, Duration::from_secs(2))
        .await
        .expect_err("untrusted");
    assert_eq!(e.category(), "tls", "{e}");
    let health = Health::new(&config);
    health.start_up(&tls).await;
    assert_eq!(status(&health, "fs1").last_probe, Some(Err("tls")));
}

#[tokio::test]
async fn without_ca_file_probes_trust_the_gateways_upstream_ca() {
    let fs1 = spawn_sim(sim_tls("fs1")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("fs-ca.pem");
    std::fs::write(&ca, &certs().cert_pem).expect("write CA");
    let mut config = map(&[("fs1", &fs1.url())], FAST);
    assert!(config.health.ca_file.is_none());
    let node = config.nodes[0].verto_url.clone();
    let public_only = client_tls(&config).expect("client config");
    let e = probe(&node, &public_only, Duration::from_secs(2))
        .await
        .expect_err("untrusted");
    assert_eq!(e.category(), "tls");
    config.gateway.upstream_ca = Some(ca);
    let tls = client_tls(&config).expect("client config");
    probe(&node, &tls, Duration::from_secs(2))
        .await
        .expect("trusted via upstream_ca");
}

#[tokio::test]
async fn the_probe_sends_exactly_the_documented_login_and_closes_with_1000() {
    let fs1 = spawn_sim(sim("fs1")).await;
    let url: NodeUrl = fs1.url().parse().expect("url");
    let rtt = probe(&url, &any_tls(), Duration::from_secs(2))
        .await
        .expect("probe");
    assert!(rtt < Duration::from_secs(2));
    let closed = fs1
        .wait_for(
            |s| s.close_codes == [1000] && s.open_sockets == 0,
            common::TIMEOUT,
        )
        .await;
    assert!(closed, "{:?}", fs1.stats());
    assert_eq!(fs1.received(), [PROBE_LOGIN]);
    assert_eq!(
        PROBE_LOGIN,
        r#"{"jsonrpc":"2.0","method":"login","params":{},"id":1}"#
    );
    let stats = fs1.stats();
    assert_eq!((stats.tcp_accepted, stats.upgrades), (1, 1));
    assert_eq!(
        (stats.logins_ok, stats.logins_failed),
        (0, 0),
        "no login attempt counted"
    );
}

/// A WebSocket server that answers every first message with `reply` (or closes without
/// a word when `None`); its URL and the messages it received.
async fn answering(
    reply: Option<&'static str>,
) -> (NodeUrl, Arc<Mutex<Vec<String>>>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            if let Some(Ok(Message::Text(text))) = ws.next().await {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text.to_string());
                if let Some(reply) = reply {
                    let _ = ws.send(Message::text(reply)).await;
                }
            }
            let _ = ws.close(None).await;
        }
    });
    (url.parse().expect("url"), seen, task)
}

#[tokio::test]
async fn any_result_is_healthy_and_other_replies_are_bad_replies() {
    let cases = [
        (
            Some(r#"{"jsonrpc":"2.0","id":1,"result":{"message":"logged in"}}"#),
            None,
        ),
        (
            Some(
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Authentication Failure"}}"#,
            ),
            Some("bad_reply"),
        ),
        (Some("not json"), Some("bad_reply")),
        (None, Some("bad_reply")),
    ];
    for (reply, want) in cases {
        let (url, seen, _task) = answering(reply).await;
        let result = probe(&url, &any_tls(), Duration::from_secs(2)).await;
        assert_eq!(result.map_err(|e| e.category()).err(), want, "{reply:?}");
        assert_eq!(
            *seen.lock().unwrap_or_else(|e| e.into_inner()),
            [PROBE_LOGIN]
        );
    }
}

#[tokio::test]
async fn a_silent_node_fails_the_probe_at_its_timeout() {
    let (url, _hold) = common::silent_node().await;
    let url: NodeUrl = url.parse().expect("url");
    let started = Instant::now();
    let e = probe(&url, &any_tls(), TIMEOUT).await.expect_err("silent");
    assert_eq!(e.category(), "timeout", "{e}");
    let took = started.elapsed();
    assert!(took >= TIMEOUT && took <= TIMEOUT + SLACK, "{took:?}");
}

#[tokio::test]
async fn reconfigure_keeps_known_nodes_and_adds_new_ones_down_until_probed() {
    let (fs1, fs3) = (spawn_sim(sim("fs1")).await, spawn_sim(sim("fs3")).await);
    let (url1, url3) = (fs1.url(), fs3.url());
    let refusing = refusing_url().await;
    let health = Health::new(&map(&[("fs1", &url1), ("fs2", &refusing)], FAST));
    let tls = any_tls();
    health.start_up(&tls).await;
    health.set_drain("fs1", true, None).expect("known");
    let since = health.up_since("fs1");

    let reloaded = map(&[("fs3", &url3), ("fs1", &url1)], "rise = 1\n");
    health.reconfigure(&reloaded);
    assert_eq!(health.settings().rise, 1);
    assert_eq!(health.state("fs1"), NodeState::Drain, "kept");
    assert_eq!(health.up_since("fs1"), since);
    let names: Vec<String> = health.snapshot().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["fs3", "fs1"], "fs2 dropped, map order");
    let s3 = status(&health, "fs3");
    assert!(!s3.probed && s3.state == NodeState::Down, "{s3:?}");
    health.start_up(&tls).await;
    assert!(health.is_up("fs3"));
    assert_eq!(fs1.stats().upgrades, 1, "a kept node is not probed again");

    // Same name, another URL: another node.
    health.reconfigure(&map(&[("fs1", &url3)], FAST));
    let s1 = status(&health, "fs1");
    assert!(
        !s1.probed && !s1.drain && s1.state == NodeState::Down,
        "{s1:?}"
    );
}

#[tokio::test]
async fn the_probe_loops_follow_a_reload_and_stop_on_shutdown() {
    let (fs1, fs2) = (spawn_sim(sim("fs1")).await, spawn_sim(sim("fs2")).await);
    let health = Arc::new(Health::new(&map(&[("fs1", &fs1.url())], FAST)));
    health.start_up(&any_tls()).await;
    let shutdown = CancellationToken::new();
    let loops = Arc::clone(&health).spawn(any_tls(), shutdown.clone());
    health.reconfigure(&map(&[("fs1", &fs1.url()), ("fs2", &fs2.url())], FAST));
    // Nobody calls start_up: fs2's loop probes it, and its first result sets its state.
    wait_state(&health, "fs2", NodeState::Up).await;
    assert!(
        status(&health, "fs2").last_change.is_none(),
        "an initial state"
    );
    let probed = fs1.wait_for(|s| s.upgrades >= 3, common::TIMEOUT).await;
    assert!(probed, "fs1 keeps being probed: {:?}", fs1.stats());
    health.reconfigure(&map(&[("fs2", &fs2.url())], FAST));
    assert_eq!(health.state("fs1"), NodeState::Down, "dropped");
    shutdown.cancel();
    within("the probe loops to stop", loops)
        .await
        .expect("loops");
}
