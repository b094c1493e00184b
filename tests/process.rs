//! The real `vertogw serve` process: it keeps the Verto password out of its logs even
//! at `RUST_LOG=trace`, prints nothing on stdout, and on SIGTERM closes sessions with
//! 1001 and exits 0.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::listen_addr;
use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use vertogw_sim::{SimConfig, SimNode, SimUsers};

/// Distinctive enough that any occurrence in the logs is the password.
const SECRET: &str = "pw-Zx9-SECRET-4711";

/// A login whose newline would start a fake log line if it were logged raw.
const FORGED_LOGIN: &str = "1000@x.test\nFORGED INFO login ok peer=203.0.113.9";

/// How long the process may take to start listening or to exit.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `vertogw serve` with its stderr being collected.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Woken on every stderr line.
    line: Arc<tokio::sync::Notify>,
    /// Collects stderr; ends when the process has exited and the pipe is drained.
    reader: tokio::task::JoinHandle<()>,
    /// Holds the map (`vertogw.toml`) and its certificate files.
    dir: tempfile::TempDir,
}

impl Gateway {
    /// Waits until stderr holds `needle` `times` times.
    async fn wait_log(&self, needle: &str, times: usize) {
        let found = tokio::time::timeout(PROCESS_TIMEOUT, async {
            loop {
                let next = self.line.notified();
                let seen = {
                    let log = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
                    log.matches(needle).count()
                };
                if seen >= times {
                    return;
                }
                next.await;
            }
        })
        .await;
        if found.is_err() {
            let log = self
                .stderr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            panic!("never logged {needle:?} {times} times; stderr:\n{log}");
        }
    }
}

/// Writes the certificate, key and map to a temporary directory and starts the binary.
async fn spawn_gateway(node: SocketAddr) -> Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = certs();
    std::fs::write(dir.path().join("cert.pem"), &certs.cert_pem).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), &certs.key_pem).expect("write key");
    // Relative certificate paths resolve against the map's directory.
    let map = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\
         [[node]]\nname = \"fs1\"\nverto_url = \"ws://{node}/\"\n\
         [[partition]]\nname = \"acme\"\nnodes = [\"fs1\"]\ndomains = [\"acme.test\"]\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n"
    );
    let map_path = dir.path().join("vertogw.toml");
    std::fs::write(&map_path, map).expect("write map");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vertogw"))
        .arg("serve")
        .arg("--config")
        .arg(&map_path)
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start vertogw");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (listening_tx, listening_rx) = oneshot::channel();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let collected = Arc::clone(&stderr);
    let line_seen = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&line_seen);
    let reader = tokio::spawn(async move {
        let mut listening_tx = Some(listening_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("gateway listening") {
                if let (Some(tx), Some(addr)) = (listening_tx.take(), listen_addr(&line)) {
                    let _ = tx.send(addr);
                }
            }
            {
                let mut all = collected.lock().unwrap_or_else(|e| e.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
            notify.notify_waiters();
        }
    });
    let addr = match tokio::time::timeout(PROCESS_TIMEOUT, listening_rx).await {
        Ok(Ok(addr)) => addr,
        _ => {
            let log = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("vertogw never logged `gateway listening listen=…`; stderr:\n{log}");
        }
    };
    Gateway {
        child,
        addr,
        stderr,
        line: line_seen,
        reader,
        dir,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one run of the binary left behind.
struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    /// The close code the logged-in browser got after SIGTERM.
    close: Option<u16>,
}

/// Starts a node and `vertogw serve`, logs in once successfully and twice
/// unsuccessfully with [`SECRET`], relays a message, then sends SIGTERM and waits for
/// the exit.
async fn run_and_terminate() -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    let node_addr = listener.local_addr().expect("node address");
    let users = SimUsers::new()
        .with_user("1000", SECRET, &["verto"])
        .with_user("1001", "a-different-password", &["verto"]);
    let node = SimNode::spawn(listener, SimConfig::new("fs1", users)).await;
    let mut gw = spawn_gateway(node_addr).await;

    // A login the node accepts: this session is live when SIGTERM comes.
    let mut live = connect(gw.addr).await;
    let reply = login_with_sessid(&mut live, "1000@acme.test", SECRET, &sessid(), 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    assert_eq!(client_ready_node(&mut live).await, "fs1");
    // A login the node refuses, and one the gateway cannot route, both with the secret.
    let mut refused = connect(gw.addr).await;
    send_json(
        &mut refused,
        &login_request("1001@acme.test", SECRET, &sessid(), 1),
    )
    .await;
    assert_eq!(
        recv_json(&mut refused).await["error"]["message"],
        "Authentication Failure"
    );
    send_json(
        &mut refused,
        &login_request("1000@nowhere.test", SECRET, &sessid(), 2),
    )
    .await;
    assert_eq!(recv_json(&mut refused).await["error"]["code"], -32001);
    // A login that tries to forge a log line of its own.
    send_json(
        &mut refused,
        &login_request(FORGED_LOGIN, SECRET, &sessid(), 3),
    )
    .await;
    assert_eq!(recv_json(&mut refused).await["error"]["code"], -32001);
    // Traffic after login, through the relay.
    send_json(
        &mut live,
        &request("verto.ping", json!({"passwd": SECRET}), 2),
    )
    .await;
    assert_eq!(recv_json(&mut live).await["id"], 2);
    // A call the node takes: still in progress when the session ends.
    let invite = json!({"jsonrpc": "2.0", "method": "verto.invite", "id": 3,
        "params": {"sdp": "v=0\r\n", "dialogParams": {"callID": "call-1"}}});
    send_json(&mut live, &invite).await;
    assert_eq!(
        recv_json(&mut live).await["result"]["message"],
        "CALL CREATED"
    );

    let pid = gw.child.id().expect("child pid");
    let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let close = recv_close(&mut live).await;
    let status = tokio::time::timeout(PROCESS_TIMEOUT, gw.child.wait())
        .await
        .expect("vertogw exits after SIGTERM")
        .expect("wait for vertogw");
    within("stderr to be drained", &mut gw.reader)
        .await
        .expect("stderr reader");
    let mut stdout = String::new();
    if let Some(mut out) = gw.child.stdout.take() {
        out.read_to_string(&mut stdout).await.expect("read stdout");
    }
    let stderr = gw.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
    node.shutdown().await;
    Run {
        status,
        stdout,
        stderr,
        close,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_live_sessions_with_1001_and_serve_exits_0_printing_nothing_on_stdout() {
    let run = run_and_terminate().await;
    assert_eq!(run.close, Some(1001), "close code of the live session");
    assert!(
        run.status.success(),
        "exit status {}; stderr:\n{}",
        run.status,
        run.stderr
    );
    assert_eq!(run.stdout, "", "serve prints nothing on stdout");
    let ended: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("session ended"))
        .collect();
    let with_call = ended.iter().filter(|l| l.contains(" calls=1 ")).count();
    assert_eq!(
        with_call, 1,
        "the call in progress is counted once: {ended:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_logged_in_the_fail2ban_format() {
    let run = run_and_terminate().await;
    let refused: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("login failed peer=127.0.0.1 "))
        .collect();
    assert_eq!(refused.len(), 3, "stderr:\n{}", run.stderr);
    // Attacker-controlled text is escaped: the forged line never starts a line.
    assert!(
        refused[2].contains(r#"login="1000@x.test\nFORGED INFO"#),
        "{}",
        refused[2]
    );
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("FORGED")),
        "a login forged a log line:\n{}",
        run.stderr
    );
    assert!(
        refused[0].contains("login=\"1001@acme.test\" reason=\"node_refused\""),
        "{}",
        refused[0]
    );
    assert!(
        refused[1].contains("login=\"1000@nowhere.test\" reason=\"no_partition\""),
        "{}",
        refused[1]
    );
    let listening = run.stderr.matches("gateway listening").count();
    assert_eq!(listening, 1, "logged once, not per core:\n{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_reaches_the_log_even_at_trace_level() {
    let run = run_and_terminate().await;
    let log = &run.stderr;
    assert!(log.contains(" TRACE "), "trace logging was on:\n{log}");
    let leaks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(SECRET) || l.contains(&hex(SECRET.as_bytes())))
        .collect();
    assert!(
        leaks.is_empty(),
        "the password reached the log in {} line(s), e.g.:\n{}",
        leaks.len(),
        leaks
            .iter()
            .take(3)
            .map(|l| &l[..l.len().min(400)])
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_map_and_a_broken_map_changes_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    let node_addr = listener.local_addr().expect("node address");
    let users = SimUsers::new().with_range(1000..=1999, "pw", &["verto"]);
    let node = SimNode::spawn(listener, SimConfig::new("fs1", users)).await;
    let gw = spawn_gateway(node_addr).await;
    let pid = Pid::from_raw(i32::try_from(gw.child.id().expect("pid")).expect("pid"));
    let mut before = connect(gw.addr).await;
    let reply = login_with_sessid(&mut before, "1000@acme.test", "pw", &sessid(), 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    assert_eq!(client_ready_node(&mut before).await, "fs1");
    let mut ws = connect(gw.addr).await;
    let reply = login_with_sessid(&mut ws, "1000@beta.test", "pw", &sessid(), 1).await;
    assert_eq!(reply["error"]["code"], -32001, "no partition yet: {reply}");

    // beta.test joins the map.
    let map_path = gw.dir.path().join("vertogw.toml");
    let map = std::fs::read_to_string(&map_path).expect("read map");
    let grown = map.replace(
        "domains = [\"acme.test\"]",
        "domains = [\"acme.test\", \"beta.test\"]",
    );
    assert_ne!(grown, map);
    std::fs::write(&map_path, &grown).expect("write map");
    kill(pid, Signal::SIGHUP).expect("SIGHUP the gateway we started");
    gw.wait_log("map reloaded", 1).await;
    let mut ws = connect(gw.addr).await;
    let reply = login_with_sessid(&mut ws, "1000@beta.test", "pw", &sessid(), 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");

    // A broken map: rejected, logged with its line, nothing changes.
    std::fs::write(
        &map_path,
        grown.replace("nodes = [\"fs1\"]", "nodes = [\"fs9\"]"),
    )
    .expect("write map");
    kill(pid, Signal::SIGHUP).expect("SIGHUP the gateway we started");
    gw.wait_log("reload rejected: nothing changed", 1).await;
    assert!(gw
        .stderr
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains("vertogw.toml:"));
    let mut ws = connect(gw.addr).await;
    let reply = login_with_sessid(&mut ws, "1001@beta.test", "pw", &sessid(), 1).await;
    assert_eq!(
        reply["result"]["message"], "logged in",
        "the previous map still serves: {reply}"
    );
    // The session from before both reloads never noticed.
    send_json(
        &mut before,
        &json!({"jsonrpc": "2.0", "method": "echo", "params": {"n": 1}, "id": 9}),
    )
    .await;
    let echo = recv_json(&mut before).await;
    assert_eq!(echo["id"], 9, "{echo}");
    node.shutdown().await;
}
