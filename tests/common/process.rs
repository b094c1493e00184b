//! Processes a test starts from the real binary: `vertogw sim-node` nodes that can be
//! stopped (SIGSTOP) or killed like a FreeSWITCH, with their URL read from their log.
//! Every process is the test's own, stopped by its PID and killed when dropped.

use std::process::Stdio;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::within;

/// Test users for [`SimProcess`]: 1000 and 1001, password `pw`.
pub const SIM_USERS: &str = r#"
[[user]]
id = "1000"
password = "pw"
allowed_methods = ["verto", "echo"]

[[user]]
id = "1001"
password = "pw"
allowed_methods = ["verto", "echo"]
"#;

/// `vertogw ARGS` with the log at `info`, plain, on a piped stderr; stdout and stdin
/// closed; killed if dropped.
pub fn vertogw(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vertogw"));
    command
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A `vertogw sim-node` process.
pub struct SimProcess {
    /// The process.
    pub child: Child,
    /// Its `ws://` URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl SimProcess {
    /// Starts node `name` with [`SIM_USERS`] on a free port; returns once it is ready.
    pub async fn start(name: &str) -> SimProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let users = dir.path().join("users.toml");
        std::fs::write(&users, SIM_USERS).expect("write users");
        let users = users.to_str().expect("UTF-8 temp path");
        let listen = ["sim-node", "--listen", "127.0.0.1:0", "--name", name];
        let mut child = vertogw(&listen)
            .args(["--users", users])
            .spawn()
            .expect("start vertogw sim-node");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let url = within(&format!("{name} to be ready"), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.contains("node ready").then(|| ws_url(&line)).flatten() {
                    return url;
                }
            }
            panic!("{name} exited before it was ready");
        })
        .await;
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        SimProcess {
            child,
            url,
            _dir: dir,
        }
    }

    /// Sends `signal` to the process this test started, by its PID.
    pub fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("the node runs");
        let pid = Pid::from_raw(i32::try_from(pid).expect("a pid"));
        kill(pid, signal).expect("signal the node we started");
    }

    /// SIGKILL, then waits until the process is gone.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("kill the node we started");
        within("the node to exit", self.child.wait())
            .await
            .expect("wait for the node");
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // A stopped process must be continued to die of the kill that `kill_on_drop`
        // sends; both go to the process this test started, by its PID.
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// The `ws://…/` URL in a node's ready line.
pub fn ws_url(line: &str) -> Option<String> {
    let at = line.find("ws://")?;
    let url = line[at..].split(|c: char| c.is_whitespace() || c == '"' || c == ',');
    url.into_iter().next().map(str::to_owned)
}

/// The address after `listen=` in a log line (`… gateway listening listen=127.0.0.1:1234`).
pub fn listen_addr(line: &str) -> Option<std::net::SocketAddr> {
    let rest = &line[line.find("listen=")? + "listen=".len()..];
    rest.split(|c: char| c.is_whitespace() || c == ',' || c == '}' || c == '"')
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}
