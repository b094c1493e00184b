//! Failover from nodes that are real processes (`vertogw sim-node`), stopped the two
//! ways a FreeSWITCH dies: SIGSTOP (the kernel still holds its sockets open, nothing
//! answers: a black hole) and SIGKILL (connections reset, new ones refused). The
//! gateway runs in the test with fast probes; every wait is on an event, bounded.

mod common;

use common::process::SimProcess;
use common::*;
use nix::sys::signal::Signal;
use vertogw::health::state::NodeState;

/// A monitored gateway for `acme` = [fs1, fs2], both node processes: probes every
/// 100 ms with a 100 ms timeout, down after 2 failures.
async fn gateway(fs1: &SimProcess, fs2: &SimProcess) -> TestGateway {
    let map = format!(
        "{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1", "fs2"], r#"["acme.test"]"#, None),
    );
    Setup::new(&map)
        .url("fs1", fs1.url.clone())
        .url("fs2", fs2.url.clone())
        .tweak(fast_probes)
        .start_monitored()
        .await
}

#[tokio::test]
async fn a_stopped_node_process_is_found_down_and_its_sessions_closed_with_1001() {
    let (fs1, fs2) = (
        SimProcess::start("fs1").await,
        SimProcess::start("fs2").await,
    );
    let gw = gateway(&fs1, &fs2).await;
    let (mut ws, node) = lands_on(&gw, "1000@acme.test", "sess-1").await;
    assert_eq!(node, "fs1");
    fs1.signal(Signal::SIGSTOP);
    // Its TCP connection stays open: only the probes can tell.
    wait_state(&gw, "fs1", NodeState::Down).await;
    assert_eq!(closed_with(&mut ws).await, Some(1001));
    assert_eq!(lands_on(&gw, "1000@acme.test", "sess-1").await.1, "fs2");
}

#[tokio::test]
async fn a_killed_node_process_ends_its_sessions_with_1014_and_the_standby_takes_over() {
    let (fs1, fs2) = (
        SimProcess::start("fs1").await,
        SimProcess::start("fs2").await,
    );
    let gw = gateway(&fs1, &fs2).await;
    let (mut ws, node) = lands_on(&gw, "1000@acme.test", "sess-1").await;
    assert_eq!(node, "fs1");
    fs1.signal(Signal::SIGKILL);
    // The kernel closes the node's socket: the foundation's code, before any probe.
    assert_eq!(recv_close_raw(&mut ws).await, Some(1014));
    assert_eq!(lands_on(&gw, "1000@acme.test", "sess-1").await.1, "fs2");
    wait_state(&gw, "fs1", NodeState::Down).await;
}
