//! The real `vertogw-bench` binary tells a clean run from a failed one by its exit code,
//! so a script (or `bench/run.sh`) never takes a run in which sessions failed for a
//! result: 0 clean, 1 some sessions or requests failed (report still printed), 2 the
//! run could not start.

use std::process::Output;
use std::time::Duration;

use tokio::net::TcpListener;
use vertogw_sim::{SimConfig, SimNode, SimUsers};

/// Bound on one run of the binary.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A plain `ws://` node whose users 1000-1999 may call `methods`.
async fn node(methods: &'static [&'static str]) -> SimNode {
    let users = SimUsers::new().with_range(1000..=1999, "1234", methods);
    let mut config = SimConfig::new("bench-sim", users);
    config.client_ready_delay = Duration::from_millis(10);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
    SimNode::spawn(listener, config).await
}

/// Runs the binary with `args` after a short closed-loop load's worth of defaults.
async fn bench(url: &str, extra: &[&str]) -> Output {
    let mut args: Vec<String> = [
        "--url",
        url,
        "--mode",
        "throughput",
        "--sessions",
        "2",
        "--duration",
        "0.3",
        "--login-timeout-ms",
        "5000",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vertogw-bench"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run vertogw-bench")
    });
    tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("vertogw-bench finishes")
        .expect("join")
}

fn report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_exits_zero() {
    let node = node(&["verto", "echo"]).await;
    let out = bench(&node.url(), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = report(&out);
    assert_eq!(report["logged_in"], 2, "{report}");
    assert!(report["replies"].as_u64().unwrap_or(0) > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_exit_one_with_the_report_printed() {
    // Users without `echo`: every request gets an error reply.
    let node = node(&["verto"]).await;
    let out = bench(&node.url(), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(report(&out)["errors"]["rpc_error"].as_u64().unwrap_or(0) > 0);
    assert!(stderr(&out).contains("failure(s)"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_exit_one() {
    let node = node(&["verto", "echo"]).await;
    let out = bench(&node.url(), &["--password", "wrong"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = report(&out);
    assert_eq!(report["logged_in"], 0, "{report}");
    assert_eq!(report["errors"]["login_rejected"], 2, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_exits_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let out = bench(&format!("ws://{addr}/"), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(report(&out)["errors"]["connect"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_start_exits_two() {
    let out = bench("wss://127.0.0.1:9/", &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--ca"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_with_mode_large_cannot_start_and_names_large_bytes() {
    let run = tokio::task::spawn_blocking(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vertogw-bench"))
            .args(["--url", "ws://127.0.0.1:9/", "--mode", "large"])
            .args(["--payload", "500000"])
            .output()
            .expect("run vertogw-bench")
    });
    let out = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("vertogw-bench finishes")
        .expect("join");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--large-bytes"), "{}", stderr(&out));
}

/// Runs the binary with exactly `args`, no target involved.
fn bench_offline(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vertogw-bench"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run vertogw-bench")
}

#[test]
fn the_ciphers_mode_needs_no_target_and_exits_zero() {
    let out = bench_offline(&[
        "--mode",
        "ciphers",
        "--suite",
        "aes128",
        "--suite",
        "TLS13_CHACHA20_POLY1305_SHA256",
        "--iterations",
        "5",
        "--handshakes",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = report(&out);
    assert_eq!(report["mode"], "ciphers", "{report}");
    assert_eq!(
        report["suites"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
}

#[test]
fn the_ciphers_mode_refuses_a_url_and_the_load_modes_need_one() {
    let out = bench_offline(&["--mode", "ciphers", "--url", "ws://127.0.0.1:9/"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--url"), "{}", stderr(&out));
    let out = bench_offline(&["--mode", "steady"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--url"), "{}", stderr(&out));
    let out = bench_offline(&["--url", "ws://127.0.0.1:9/", "--iterations", "5"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--mode ciphers"), "{}", stderr(&out));
}
