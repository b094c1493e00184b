//! Failover from nodes that are real processes (`vertogw sim-node`), stopped the two
//! ways a FreeSWITCH dies: SIGSTOP (the kernel still holds its sockets open, nothing
//! answers: a black hole) and SIGKILL (connections reset, new ones refused). The
//! gateway runs in the test with fast probes; every wait is on an event, bounded.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use vertogw::health::state::NodeState;

/// Test users, as `vertogw sim-node --users` reads them.
const USERS: &str = r#"
[[user]]
id = "1000"
password = "pw"
allowed_methods = ["verto", "echo"]

[[user]]
id = "1001"
password = "pw"
allowed_methods = ["verto", "echo"]
"#;

/// A `vertogw sim-node` process.
struct NodeProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl NodeProcess {
    async fn start(name: &str) -> NodeProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let users = dir.path().join("users.toml");
        std::fs::write(&users, USERS).expect("write users");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vertogw"))
            .args([
                "sim-node",
                "--listen",
                "127.0.0.1:0",
                "--name",
                name,
                "--users",
            ])
            .arg(&users)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start vertogw sim-node");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let url = within(&format!("{name} to be ready"), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("node ready") {
                    if let Some(url) = ws_url(&line) {
                        return url;
                    }
                }
            }
            panic!("{name} exited before it was ready");
        })
        .await;
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        NodeProcess {
            child,
            url,
            _dir: dir,
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("the node runs");
        let pid = Pid::from_raw(i32::try_from(pid).expect("a pid"));
        kill(pid, signal).expect("signal the node we started");
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // A stopped process must be continued to die of the kill that `kill_on_drop`
        // sends; both go to the process this test started, by its PID.
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// The `ws://…/` URL in the node's ready line.
fn ws_url(line: &str) -> Option<String> {
    let at = line.find("ws://")?;
    let url = line[at..].split(|c: char| c.is_whitespace() || c == '"' || c == ',');
    url.into_iter().next().map(str::to_owned)
}

/// A monitored gateway for `acme` = [fs1, fs2], both node processes: probes every
/// 100 ms with a 100 ms timeout, down after 2 failures.
async fn gateway(fs1: &NodeProcess, fs2: &NodeProcess) -> TestGateway {
    let map = format!(
        "{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1", "fs2"], r#"["acme.test"]"#, None),
    );
    Setup::new(&map)
        .url("fs1", fs1.url.clone())
        .url("fs2", fs2.url.clone())
        .tweak(|c| {
            c.health.interval = Duration::from_millis(100);
            c.health.timeout = Duration::from_millis(100);
            c.health.rise = 1;
            c.health.fall = 2;
        })
        .start_monitored()
        .await
}

#[tokio::test]
async fn a_stopped_node_process_is_found_down_and_its_sessions_closed_with_1001() {
    let (fs1, fs2) = (
        NodeProcess::start("fs1").await,
        NodeProcess::start("fs2").await,
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
        NodeProcess::start("fs1").await,
        NodeProcess::start("fs2").await,
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
