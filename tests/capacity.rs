//! Connection capacity: at `max_connections`, and at the process's real descriptor
//! limit, new browsers are refused cleanly while existing sessions keep working and
//! the accept loop keeps serving once capacity frees up.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vertogw_sim::SimNode;

/// How long one attempt (TCP, TLS, upgrade, login) may take before it counts as refused.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts after capacity frees up, each a full connect + login round trip.
const READMIT_ATTEMPTS: usize = 50;

/// A full browser login, where any failure (closed during TLS, no upgrade, a
/// "no node available" answer) is a refusal rather than a test failure.
async fn try_session(addr: SocketAddr, user: u32) -> Option<Client> {
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let name = ServerName::try_from("localhost").ok()?;
        let tls = TlsConnector::from(Arc::clone(&certs().client))
            .connect(name, tcp)
            .await
            .ok()?;
        let request = format!("wss://localhost:{}/", addr.port())
            .into_client_request()
            .ok()?;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tls, None)
            .await
            .ok()?;
        let login = login_request(&format!("{user}@acme.test"), PASSWORD, &sessid(), 1);
        ws.send(login.to_string().into()).await.ok()?;
        let reply = futures_util::StreamExt::next(&mut ws).await?.ok()?;
        let reply: Value = serde_json::from_str(reply.to_text().ok()?).ok()?;
        (reply["result"]["message"] == "logged in").then_some(ws)
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}

/// Opens `count` sessions one after another; returns those admitted.
async fn open_sessions(addr: SocketAddr, first_user: u32, count: u32) -> Vec<Client> {
    let mut admitted = Vec::new();
    for user in first_user..first_user + count {
        if let Some(ws) = try_session(addr, user).await {
            admitted.push(ws);
        }
    }
    admitted
}

/// Retries a login (bounded) until the gateway admits it again.
async fn readmitted(addr: SocketAddr, user: u32) -> bool {
    for _ in 0..READMIT_ATTEMPTS {
        if try_session(addr, user).await.is_some() {
            return true;
        }
        // Pacing between full connection attempts; the permit frees when the closed
        // session's task has finished its close handshake.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn at_max_connections_the_next_browser_is_refused_and_admitted_after_one_leaves() {
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c| c.gateway.max_connections = Some(3))
        .start()
        .await;
    let mut held = open_sessions(gw.addr, 1000, 3).await;
    assert_eq!(held.len(), 3, "the first three are admitted");
    assert!(
        try_session(gw.addr, 1003).await.is_none(),
        "a fourth connection is refused"
    );
    // The sessions already held are untouched by the refusal.
    send_json(&mut held[0], &request("verto.ping", json!({}), 7)).await;
    let pong = loop {
        let msg = recv_json(&mut held[0]).await;
        if msg["id"] == 7 {
            break msg;
        }
    };
    assert_eq!(pong["result"]["message"], "PONG", "{pong}");
    let mut leaving = held.pop().expect("a session");
    close_with(&mut leaving, 1000).await;
    wait_stats(gw.node("fs1"), "the node socket closed", |s| {
        s.open_sockets == 2
    })
    .await;
    assert!(readmitted(gw.addr, 1004).await, "capacity came back");
}

/// A running `vertogw serve` under a small `ulimit -n`.
struct Limited {
    child: Child,
    addr: SocketAddr,
    /// The `max_connections=` it logged at start.
    logged_capacity: Option<usize>,
    _dir: tempfile::TempDir,
}

async fn spawn_limited(node: SocketAddr, nofile: u32, extra_gateway_keys: &str) -> Limited {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = certs();
    std::fs::write(dir.path().join("cert.pem"), &certs.cert_pem).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), &certs.key_pem).expect("write key");
    let map = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n{extra_gateway_keys}\n\
         [[node]]\nname = \"fs1\"\nverto_url = \"ws://{node}/\"\n\
         [[partition]]\nname = \"acme\"\nnodes = [\"fs1\"]\ndomains = [\"acme.test\"]\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n"
    );
    let map_path = dir.path().join("vertogw.toml");
    std::fs::write(&map_path, map).expect("write map");
    // `ulimit -n N` sets both the soft and the hard limit, so the gateway's own raise
    // to the hard limit stays at N.
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" serve --config \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_vertogw"))
        .arg(&map_path)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start vertogw");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let started = within("the gateway to start listening", async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("gateway listening") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("vertogw exited before listening");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Limited {
        child,
        addr: field(&started, "listen=").expect("listen address"),
        logged_capacity: field(&started, "max_connections="),
        _dir: dir,
    }
}

fn field<T: std::str::FromStr>(line: &str, key: &str) -> Option<T> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

async fn node() -> SimNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    SimNode::spawn(listener, sim("fs1")).await
}

#[tokio::test]
async fn the_descriptor_limit_sets_the_capacity_and_excess_browsers_are_refused() {
    let node = node().await;
    let mut gw = spawn_limited(node.local_addr(), 96, "").await;
    // (96 - 32 reserved) / 2 descriptors per session.
    assert_eq!(gw.logged_capacity, Some(32), "capacity logged at start");
    let mut held = open_sessions(gw.addr, 1000, 36).await;
    assert_eq!(held.len(), 32, "exactly the capacity is admitted");
    for mut ws in held.drain(..4) {
        close_with(&mut ws, 1000).await;
    }
    assert!(
        readmitted(gw.addr, 1100).await,
        "admits again after some leave"
    );
    assert!(
        gw.child.try_wait().expect("child status").is_none(),
        "still running"
    );
}

#[tokio::test]
async fn running_out_of_descriptors_sheds_connections_without_stalling_the_accept_loop() {
    let node = node().await;
    // A cap far above what 96 descriptors allow: accept() itself hits EMFILE.
    let mut gw = spawn_limited(node.local_addr(), 96, "max_connections = 1000").await;
    let held = open_sessions(gw.addr, 1000, 60).await;
    assert!(
        !held.is_empty() && held.len() < 60,
        "some admitted, the rest refused: {} of 60",
        held.len()
    );
    assert!(
        gw.child.try_wait().expect("child status").is_none(),
        "still running"
    );
    drop(held);
    assert!(
        readmitted(gw.addr, 1200).await,
        "serves again once descriptors free up"
    );
}

#[tokio::test]
async fn silent_connections_cannot_hold_the_only_tls_handshake_turn() {
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c| c.gateway.max_tls_handshakes = Some(1))
        .start()
        .await;
    // Peers that connect and send nothing, or only the start of a TLS record, wait for
    // their ClientHello without a turn.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(gw.addr).await.expect("tcp connect"));
    }
    let mut partial = TcpStream::connect(gw.addr).await.expect("tcp connect");
    tokio::io::AsyncWriteExt::write_all(&mut partial, &[0x16, 0x03, 0x01])
        .await
        .expect("partial record");
    let mut sessions = Vec::new();
    for user in 1000..1004 {
        let ws = try_session(gw.addr, user).await;
        assert!(
            ws.is_some(),
            "user {user} logged in despite the silent peers"
        );
        sessions.push(ws);
    }
    drop((silent, partial));
}

#[test]
fn zero_tls_handshakes_is_a_config_error() {
    let map = format!("{MAP_HEAD}max_tls_handshakes = 0\n{}", one_node_map());
    let errs = match vertogw::config::Config::parse(&map, std::path::Path::new("t.toml")) {
        Ok(_) => panic!("max_tls_handshakes = 0 was accepted"),
        Err(errs) => errs.to_string(),
    };
    assert!(errs.contains("max_tls_handshakes = 0"), "{errs}");
}
