//! The real `vertogw demo`, as a newcomer meets it: every login its banner and its map's
//! comments advertise works end to end (and may call `echo`), its certificate is made
//! once and reused, and busy ports get an error that says what to do.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use vertogw::commands::demo::{DEMO_MAP, DEMO_PASSWORD};
use vertogw::config::Config;

/// How long the demo may take to print its banner or to exit.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// A running demo and what its banner said.
struct Demo {
    child: Child,
    banner: String,
    addr: SocketAddr,
    /// (login, partition, active node) of every example line.
    examples: Vec<(String, String, String)>,
}

fn demo_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vertogw"));
    command
        .arg("demo")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts the demo on free ports with its certificate in `certs` and reads the banner.
async fn start_demo(certs: &Path) -> Demo {
    let certs = certs.to_str().expect("utf-8 temp path");
    let mut child = demo_command(&[
        "--listen",
        "127.0.0.1:0",
        "--node-port-base",
        "0",
        "--admin",
        "127.0.0.1:0",
        "--certs",
        certs,
    ])
    .spawn()
    .expect("start vertogw demo");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            banner.push_str(&line);
            banner.push('\n');
            if line.starts_with("Stop:") {
                return true;
            }
        }
        false
    };
    let complete = tokio::time::timeout(PROCESS_TIMEOUT, read).await == Ok(true);
    assert!(complete, "the demo's banner never ended:\n{banner}");
    let port = banner
        .split("wss://localhost:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no gateway URL in the banner:\n{banner}"));
    let examples = banner
        .lines()
        .filter(|l| l.contains("-> partition"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // "LOGIN -> partition NAME nodes A, B"
            (
                words[0].to_owned(),
                words[3].to_owned(),
                words[5].trim_end_matches(',').to_owned(),
            )
        })
        .collect();
    Demo {
        child,
        banner,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        examples,
    }
}

/// SIGTERM, then the exit status.
async fn stop(demo: &mut Demo) -> std::process::ExitStatus {
    let pid = demo.child.id().expect("demo pid");
    let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM the demo");
    tokio::time::timeout(PROCESS_TIMEOUT, demo.child.wait())
        .await
        .expect("the demo exits after SIGTERM")
        .expect("wait for the demo")
}

fn trusting(certs: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(certs.join("demo.crt")).expect("the demo wrote demo.crt");
    vertogw_net::tls::client_config_trusting(&pem).expect("client config")
}

/// The `route` examples in the demo map's comments: (login, partition or None for
/// "refused").
fn map_comment_examples() -> Vec<(String, Option<String>)> {
    DEMO_MAP
        .lines()
        .filter_map(|line| line.strip_prefix("#   vertogw route config/demo.toml "))
        .map(|rest| {
            let (login, outcome) = rest.split_once("->").expect("'-> outcome' in the comment");
            let outcome = outcome.split_whitespace().next().unwrap_or_default();
            let partition = (!outcome.starts_with("refused")).then(|| outcome.to_owned());
            (login.trim().to_owned(), partition)
        })
        .collect()
}

/// The active node of every partition of the demo map.
fn active_node(partition: &str) -> String {
    let config = match Config::parse(DEMO_MAP, Path::new("config/demo.toml")) {
        Ok(loaded) => loaded.config,
        Err(errs) => panic!("{errs}"),
    };
    let found = config.partitions.iter().find(|p| p.name == partition);
    match found.and_then(|p| p.nodes.first()) {
        Some(node) => node.clone(),
        None => panic!("the demo map has no partition {partition}"),
    }
}

/// Logs `login` in like the reference client and checks the node and `echo`.
async fn logs_in_on(demo: &Demo, client: &Arc<rustls::ClientConfig>, login: &str, node: &str) {
    let mut ws = connect_trusting(demo.addr, client).await;
    let reply = login_with_sessid(&mut ws, login, DEMO_PASSWORD, &sessid(), 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{login}: {reply}");
    assert_eq!(client_ready_node(&mut ws).await, node, "{login}");
    send_json(&mut ws, &request("echo", json!({"pad": login}), 3)).await;
    let echoed = recv_json(&mut ws).await;
    assert_eq!(echoed["result"]["pad"], login, "echo for {login}: {echoed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_the_banner_and_the_map_advertise_works_and_may_call_echo() {
    let certs = tempfile::tempdir().expect("temp dir");
    let mut demo = start_demo(certs.path()).await;
    let client = trusting(certs.path());
    assert_eq!(
        demo.examples.len(),
        4,
        "one example per partition:\n{}",
        demo.banner
    );
    for (login, _, node) in &demo.examples {
        logs_in_on(&demo, &client, login, node).await;
    }
    let advertised = map_comment_examples();
    assert!(advertised.len() >= 6, "{advertised:?}");
    for (login, partition) in &advertised {
        match partition {
            Some(partition) => logs_in_on(&demo, &client, login, &active_node(partition)).await,
            None => {
                let mut ws = connect_trusting(demo.addr, &client).await;
                let reply = login_with_sessid(&mut ws, login, DEMO_PASSWORD, &sessid(), 1).await;
                assert_eq!(reply["error"]["code"], -32001, "{login}: {reply}");
            }
        }
    }
    assert!(stop(&mut demo).await.success());
}

/// One `GET` over TLS trusting the demo's certificate: (status line, body).
async fn get(demo: &Demo, client: &Arc<rustls::ClientConfig>, target: &str) -> (String, String) {
    let tls = tls_connect_trusting(demo.addr, client).await;
    let raw = http_exchange(tls, "GET", target).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_web_client_and_its_config_on_the_gateway_port() {
    let certs = tempfile::tempdir().expect("temp dir");
    let mut demo = start_demo(certs.path()).await;
    let client = trusting(certs.path());
    let port = demo.addr.port();
    let page = format!("Web client: https://localhost:{port}/");
    assert!(demo.banner.contains(&page), "{}", demo.banner);
    let (status, body) = get(&demo, &client, "/").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("<script") && body.contains("app.js"),
        "{body}"
    );
    let (login, _, _) = demo.examples.first().cloned().expect("an example login");
    let (status, body) = get(&demo, &client, &format!("/verto-config?login={login}")).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let config: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        config["wsURL"],
        json!(format!("wss://localhost:{port}/")),
        "{config}"
    );
    assert!(stop(&mut demo).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_made_on_the_first_run_and_reused_after() {
    use std::os::unix::fs::PermissionsExt;
    let certs = tempfile::tempdir().expect("temp dir");
    let dir = certs.path().join("certs");
    let mut first = start_demo(&dir).await;
    assert!(
        first.banner.contains("demo.crt (generated;"),
        "{}",
        first.banner
    );
    assert!(stop(&mut first).await.success());
    let cert = std::fs::read(dir.join("demo.crt")).expect("demo.crt");
    let mode = std::fs::metadata(dir.join("demo.key"))
        .expect("demo.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");

    let mut second = start_demo(&dir).await;
    assert!(
        second.banner.contains("demo.crt (reused;"),
        "{}",
        second.banner
    );
    assert_eq!(std::fs::read(dir.join("demo.crt")).expect("demo.crt"), cert);
    // The browser's trust in the first run's certificate still holds.
    let (login, _, node) = second.examples[0].clone();
    logs_in_on(&second, &trusting(&dir), &login, &node).await;
    assert!(stop(&mut second).await.success());
}

/// Runs the demo expecting it to fail at once; returns its stderr.
async fn failing_demo(args: &[&str]) -> String {
    let mut child = demo_command(args).spawn().expect("start vertogw demo");
    let status = tokio::time::timeout(PROCESS_TIMEOUT, child.wait())
        .await
        .expect("the demo gives up at once")
        .expect("wait for the demo");
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).await.expect("read stderr");
    }
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[tokio::test]
async fn busy_ports_are_refused_with_the_option_that_moves_them() {
    let certs = tempfile::tempdir().expect("temp dir");
    let certs = certs.path().to_str().expect("utf-8 temp path");
    let busy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = busy.local_addr().expect("address").port().to_string();
    let listen = format!("127.0.0.1:{port}");

    let err = failing_demo(&[
        "--listen",
        &listen,
        "--node-port-base",
        "0",
        "--certs",
        certs,
    ])
    .await;
    assert!(err.contains(&format!("cannot listen on {listen}")), "{err}");
    assert!(err.contains("--listen ADDR"), "{err}");

    let err = failing_demo(&[
        "--listen",
        "127.0.0.1:0",
        "--node-port-base",
        &port,
        "--certs",
        certs,
    ])
    .await;
    assert!(err.contains("demo node fs1 cannot listen on"), "{err}");
    assert!(err.contains("--node-port-base PORT"), "{err}");
    assert_eq!(
        err.matches("Address already in use").count(),
        1,
        "cause printed once: {err}"
    );
}
