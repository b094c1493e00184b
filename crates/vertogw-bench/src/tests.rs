//! End-to-end runs of the bench against an in-process simulated node on 127.0.0.1:0.

use std::time::Duration;

use tokio::net::TcpListener;

use super::*;
use vertogw_sim::{SimConfig, SimNode, SimUsers};

/// Upper bound on any one run in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(30);

async fn node(tls: bool) -> (SimNode, Trust) {
    let users = SimUsers::new()
        .with_range(1000..=1999, "1234", &["verto", "echo"])
        .with_user("7000", "1234", &["verto"]);
    let mut config = SimConfig::new("bench-sim", users);
    config.client_ready_delay = Duration::from_millis(10);
    let cert = vertogw_net::tls::self_signed(&["localhost"]).unwrap();
    if tls {
        let server = vertogw_net::tls::server_config_from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            "test",
        )
        .unwrap();
        config = config.with_tls(server);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (
        SimNode::spawn(listener, config).await,
        Trust::Pem(cert.cert_pem.into_bytes()),
    )
}

fn config(url: String, trust: Trust, mode: Mode, sessions: usize) -> BenchConfig {
    BenchConfig {
        url,
        trust,
        sni: Some("localhost".into()),
        mode,
        sessions,
        rate: 20.0,
        duration_s: 0.5,
        hold_s: 0.2,
        payload: 50,
        large_bytes: MAX_LARGE_BYTES,
        large_in_flight: DEFAULT_LARGE_IN_FLIGHT,
        domain: "bench.test".into(),
        user_start: 1000,
        password: "1234".into(),
        connect_concurrency: 4,
        login_timeout_ms: 5000,
        background_sessions: 0,
        background_rate: 20.0,
        watch: vec![std::process::id()],
        resume: false,
        background_user_start: None,
        kill_pid: None,
        signal: KillSignal::Kill,
        recover_timeout_ms: 5000,
    }
}

async fn bench(config: &BenchConfig) -> Report {
    tokio::time::timeout(RUN_LIMIT, run(config))
        .await
        .unwrap()
        .unwrap()
}

fn wss_url(node: &SimNode) -> String {
    format!("wss://127.0.0.1:{}/", node.local_addr().port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_over_wss_measures_rtt_without_errors() {
    let (node, trust) = node(true).await;
    let r = bench(&config(wss_url(&node), trust, Mode::Steady, 6)).await;
    assert_eq!(r.errors, ErrorCounts::default(), "{r}");
    assert_eq!(r.logged_in, 6);
    // 6 sessions × 20/s × 0.5 s, give or take a slot at the window's edges.
    assert!((50..=66).contains(&r.requests), "{r}");
    assert_eq!(r.requests, r.replies, "{r}");
    let rtt = r.rtt_us.unwrap();
    assert_eq!(rtt.count, r.replies);
    assert!(r.service_rtt_us.unwrap().p50 <= rtt.p50);
    assert_eq!(r.watch.len(), 1);
    assert_eq!(r.watch[0].pid, std::process::id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_over_plain_ws_counts_replies_per_second() {
    let (node, _) = node(false).await;
    let url = format!("ws://{}/", node.local_addr());
    let r = bench(&config(url, Trust::Insecure, Mode::Throughput, 4)).await;
    assert_eq!(r.errors, ErrorCounts::default(), "{r}");
    assert!(r.replies > 100, "{r}");
    assert!(r.replies_per_s > 200.0, "{r}");
    assert!(r.rtt_us.is_some() && r.service_rtt_us.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_reports_memory_samples_and_login_times() {
    let (node, trust) = node(true).await;
    let r = bench(&config(wss_url(&node), trust, Mode::Idle, 5)).await;
    assert_eq!((r.logged_in, r.errors.total()), (5, 0), "{r}");
    assert!(r.time_to_last_login_ms.is_some() && r.login_ms.is_some());
    assert!(r.watch[0].rss_kib_end.is_some());
    assert_eq!(r.requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_relays_one_full_size_message_each_way_per_session_and_reports_retained_memory() {
    let (node, trust) = node(true).await;
    let mut c = config(wss_url(&node), trust, Mode::Large, 5);
    // Fewer slots than sessions, so some sessions wait for one.
    c.large_in_flight = 2;
    let r = bench(&c).await;
    assert_eq!((r.logged_in, r.errors.total()), (5, 0), "{r}");
    assert_eq!((r.requests, r.replies), (5, 5), "{r}");
    assert_eq!(r.large_request_bytes, Some(999_999));
    // The node's echo adds a sessid: larger than the request, so large both ways.
    assert!(r.large_reply_bytes_min.unwrap() > 999_999, "{r}");
    assert_eq!(r.rtt_us.unwrap().count, 5);
    let w = &r.watch[0];
    assert!(
        w.rss_kib_end.is_some() && w.rss_kib_per_session.is_some(),
        "{r}"
    );
    let retained = w.rss_kib_retained_per_session.unwrap();
    let expected = (w.rss_kib_end.unwrap() as f64 - w.rss_kib_after as f64) / 5.0;
    assert!((retained - expected).abs() < 1e-9, "{r}");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(json["watch"][0]["rss_kib_retained_per_session"].is_number());
    assert_eq!(json["mode"], "large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_large_request_is_an_rpc_error_and_no_large_reply() {
    // User 7000 may not call `echo`: the node answers with an error.
    let (node, trust) = node(true).await;
    let mut c = config(wss_url(&node), trust, Mode::Large, 1);
    c.user_start = 7000;
    c.large_bytes = 2000;
    let r = bench(&c).await;
    assert_eq!(
        (r.logged_in, r.replies, r.errors.rpc_error),
        (1, 1, 1),
        "{r}"
    );
    assert_eq!(r.large_reply_bytes_min, None, "{r}");
    assert!(r.watch[0].rss_kib_retained_per_session.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_with_background_reports_both_sides() {
    let (node, _) = node(true).await;
    let mut c = config(wss_url(&node), Trust::Insecure, Mode::Storm, 20);
    c.background_sessions = 3;
    c.background_rate = 200.0;
    let r = bench(&c).await;
    assert_eq!((r.logged_in, r.errors.total()), (20, 0), "{r}");
    assert_eq!(r.background_sessions, 3);
    assert!(r.time_to_last_login_ms.unwrap() > 0.0);
    // The login request is part of each login: no longer than the whole of it.
    let (whole, request) = (r.login_ms.unwrap(), r.login_request_ms.unwrap());
    assert!(request.max > 0.0 && request.max <= whole.max, "{r}");
    // The storm window may be too short to catch a background reply; when it does,
    // every sample was recorded inside it.
    if let Some(bg) = r.background_rtt_us {
        assert!(bg.count > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_with_resume_resumes_every_storm_handshake_and_only_those() {
    let (node, _) = node(true).await;
    let mut c = config(wss_url(&node), Trust::Insecure, Mode::Storm, 12);
    c.background_sessions = 2;
    let plain = bench(&c).await;
    assert_eq!(plain.tls_resumed, None, "{plain}");
    c.resume = true;
    let r = bench(&c).await;
    assert_eq!((r.logged_in, r.errors.total()), (12, 0), "{r}");
    assert_eq!(r.tls_resumed, Some(12), "{r}");
}

#[tokio::test]
async fn a_wrong_password_is_counted_as_login_rejected() {
    let (node, trust) = node(true).await;
    let mut c = config(wss_url(&node), trust, Mode::Steady, 2);
    c.password = "wrong".into();
    let r = bench(&c).await;
    assert_eq!((r.logged_in, r.errors.login_rejected), (0, 2), "{r}");
    assert_eq!(r.requests, 0);
}

#[tokio::test]
async fn users_without_echo_permission_show_up_as_rpc_errors() {
    let (node, trust) = node(true).await;
    let mut c = config(wss_url(&node), trust, Mode::Throughput, 1);
    c.user_start = 7000;
    let r = bench(&c).await;
    assert_eq!(r.logged_in, 1, "{r}");
    assert!(
        r.errors.rpc_error > 0 && r.errors.rpc_error == r.replies,
        "{r}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_and_a_closed_port_a_connect_error() {
    let (node, _) = node(true).await;
    let other = vertogw_net::tls::self_signed(&["localhost"]).unwrap();
    let c = config(
        wss_url(&node),
        Trust::Pem(other.cert_pem.into_bytes()),
        Mode::Steady,
        2,
    );
    assert_eq!(bench(&c).await.errors.tls, 2);
    let port = node.local_addr().port();
    drop(node);
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", closed.local_addr().unwrap());
    drop(closed);
    let r = bench(&config(url, Trust::Insecure, Mode::Steady, 2)).await;
    assert_eq!(r.errors.connect, 2, "{r} (node was on {port})");
}

#[tokio::test]
async fn non_loopback_targets_and_bad_settings_are_refused() {
    let c = config(
        "wss://192.0.2.1:8443/".into(),
        Trust::Insecure,
        Mode::Steady,
        1,
    );
    assert!(matches!(run(&c).await, Err(BenchError::Url(_))));
    let c = config("http://127.0.0.1/".into(), Trust::Insecure, Mode::Steady, 1);
    assert!(matches!(run(&c).await, Err(BenchError::Url(_))));
    let mut c = config("ws://127.0.0.1:1/".into(), Trust::Insecure, Mode::Steady, 1);
    c.rate = 0.0;
    assert!(matches!(run(&c).await, Err(BenchError::Invalid(_))));
    c.rate = 1.0;
    c.background_sessions = 1;
    assert!(matches!(run(&c).await, Err(BenchError::Invalid(_))));
    c.background_sessions = 0;
    c.resume = true;
    assert!(matches!(run(&c).await, Err(BenchError::Invalid(_))));
    c.mode = Mode::Storm;
    assert!(
        matches!(run(&c).await, Err(BenchError::Invalid(_))),
        "ws:// cannot resume"
    );
    let mut c = config("ws://127.0.0.1:1/".into(), Trust::Insecure, Mode::Large, 1);
    for (bytes, in_flight) in [(MAX_LARGE_BYTES + 1, 1), (10, 1), (1000, 0)] {
        c.large_bytes = bytes;
        c.large_in_flight = in_flight;
        assert!(
            matches!(run(&c).await, Err(BenchError::Invalid(_))),
            "{bytes} bytes, {in_flight} in flight"
        );
    }
}

#[test]
fn modes_parse_from_their_names() {
    for m in Mode::ALL {
        assert_eq!(m.name().parse::<Mode>(), Ok(m));
    }
    assert!("fast".parse::<Mode>().is_err());
}

#[tokio::test]
async fn failover_settings_are_checked_before_anything_connects() {
    let mut c = config(
        "ws://127.0.0.1:1/".into(),
        Trust::Insecure,
        Mode::Failover,
        2,
    );
    assert!(
        matches!(run(&c).await, Err(BenchError::Invalid(m)) if m.contains("--kill-pid")),
        "failover needs a pid"
    );
    c.kill_pid = Some(std::process::id());
    assert!(
        matches!(run(&c).await, Err(BenchError::Invalid(_))),
        "never the bench itself"
    );
    c.kill_pid = Some(1);
    assert!(
        matches!(run(&c).await, Err(BenchError::Invalid(_))),
        "never init"
    );
    c.kill_pid = Some(4_000_000_000);
    assert!(matches!(run(&c).await, Err(BenchError::Invalid(_))));
    c.kill_pid = Some(2);
    c.background_sessions = 1;
    c.background_user_start = Some(1001);
    assert!(
        matches!(run(&c).await, Err(BenchError::Invalid(m)) if m.contains("--background-user-start")),
        "background users overlapping the sessions' users"
    );
    let mut c = config("ws://127.0.0.1:1/".into(), Trust::Insecure, Mode::Steady, 1);
    c.kill_pid = Some(2);
    assert!(matches!(run(&c).await, Err(BenchError::Invalid(_))));
    c.kill_pid = None;
    c.background_user_start = Some(5000);
    assert!(matches!(run(&c).await, Err(BenchError::Invalid(_))));
}

#[test]
fn background_users_follow_the_sessions_unless_placed() {
    let mut c = config(
        "ws://127.0.0.1:1/".into(),
        Trust::Insecure,
        Mode::Failover,
        30,
    );
    c.background_sessions = 5;
    c.kill_pid = Some(2);
    assert!(c.validate().is_ok());
    assert_eq!(c.background_first(), 30);
    c.background_user_start = Some(50_000);
    assert!(c.validate().is_ok());
    assert_eq!(c.background_first(), 49_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_signals_the_pid_once_logged_in_and_counts_sessions_not_back() {
    // The signalled process is a stand-in: the node stays up, so nothing closes and no
    // session comes back within the recover timeout.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let (node, _) = node(false).await;
    let url = format!("ws://{}/", node.local_addr());
    let mut c = config(url, Trust::Insecure, Mode::Failover, 3);
    c.kill_pid = Some(child.id());
    c.recover_timeout_ms = 300;
    c.background_sessions = 2;
    c.background_user_start = Some(1500);
    let r = bench(&c).await;
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "SIGKILL sent");
    assert_eq!(r.logged_in, 3, "{r}");
    let fo = r.failover.as_ref().unwrap();
    assert_eq!((fo.signal, fo.expected, fo.closed_sessions), ("kill", 3, 0));
    assert_eq!(fo.all_back_ms, None);
    assert_eq!(fo.initial_nodes.get("bench-sim"), Some(&3), "{fo:?}");
    assert!(fo.signal_unix_ms > 1.0e12);
    assert_eq!(r.errors.timeout, 3, "{r}");
    assert_eq!(r.background_sessions, 2);
    assert!(r.background_rtt_us.is_some(), "{r}");
    assert_eq!(r.failures(), 3);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["failover"]["expected"], 3);
    assert!(r.to_string().contains("SIGKILL to pid"), "{r}");
}

#[test]
fn the_client_offers_the_suites_in_the_browsers_order() {
    let provider = connect::browser_provider();
    let suites: Vec<rustls::CipherSuite> =
        provider.cipher_suites.iter().map(|s| s.suite()).collect();
    assert_eq!(
        suites[..3],
        [
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        ]
    );
    assert_eq!(
        suites.len(),
        rustls::crypto::aws_lc_rs::default_provider()
            .cipher_suites
            .len(),
        "every suite is still offered"
    );
}
