//! `vertogw ctl`, the real binary, against the admin API of a live gateway: every verb,
//! its table and its `--json`, the exit codes (0 done, 1 the API answered an error,
//! 2 no answer), the token from a file or the map, and what a kicked browser sees.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::Command;
use vertogw::admin::{self, AdminApi};
use vertogw::health::state::NodeState;
use vertogw::reload::Reloader;

/// Bound on one run of `vertogw ctl` (process start included).
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// A token long enough for `[admin] token`; distinctive, to find it if it leaks.
const TOKEN: &str = "ctl-test-token-Q7f3Zk9wB2";

/// What one run of `vertogw ctl` left.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts exit 0 and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self:?}");
        &self.stdout
    }

    /// Asserts `code`, nothing on stdout, and returns stderr.
    fn failed(&self, code: i32) -> &str {
        assert_eq!((self.code, self.stdout.as_str()), (code, ""), "{self:?}");
        &self.stderr
    }

    /// stdout as JSON.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The words of the stdout line whose first word is `first`.
    fn row(&self, first: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.first() == Some(&first))
            .unwrap_or_else(|| panic!("no row {first:?} in\n{}", self.stdout))
    }
}

/// Runs `vertogw ctl ARGS`.
async fn ctl(args: &[&str]) -> Out {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vertogw"));
    command
        .arg("ctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(CTL_TIMEOUT, command.output()).await {
        Ok(output) => output.expect("run vertogw ctl"),
        Err(_) => panic!("vertogw ctl {args:?} ran longer than {CTL_TIMEOUT:?}"),
    };
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `vertogw ctl --admin URL ARGS`.
async fn ctl_at(url: &str, args: &[&str]) -> Out {
    let mut all = vec!["--admin", url];
    all.extend_from_slice(args);
    ctl(&all).await
}

/// Serves `gw`'s admin API on a fresh loopback port; its URL.
async fn serve_admin(gw: &TestGateway, reloader: Option<Arc<Reloader>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let url = format!("http://{}", listener.local_addr().expect("admin address"));
    let api = AdminApi::new(Arc::clone(&gw.gateway), reloader);
    tokio::spawn(admin::serve(listener, api, gw.shutdown.clone()));
    url
}

/// `acme` (`acme.test`) served by fs1 then fs2, both simulated and probed up.
async fn farm() -> TestGateway {
    let map = format!(
        "{}{}",
        node_tables(&["fs1", "fs2"]),
        partition("acme", &["fs1", "fs2"], r#"["acme.test"]"#, None),
    );
    Setup::new(&map)
        .node(sim("fs1"))
        .node(sim("fs2"))
        .start_monitored()
        .await
}

fn state(gw: &TestGateway, node: &str) -> NodeState {
    gw.gateway.health().expect("monitored").state(node)
}

#[tokio::test]
async fn status_prints_node_and_partition_tables_and_json_is_the_document() {
    let gw = farm().await;
    let url = serve_admin(&gw, None).await;

    let out = ctl_at(&url, &["status"]).await;
    let text = out.ok();
    assert!(
        text.starts_with("NODE  STATE  SESSIONS  CALLS  RTT_MS  DRAIN\n"),
        "{text}"
    );
    assert_eq!(out.row("fs1")[1..4], ["up", "0", "0"], "{text}");
    assert_eq!(out.row("fs1")[5], "-", "{text}");
    assert_eq!(out.row("fs2")[1], "up", "{text}");
    assert_eq!(
        out.row("PARTITION"),
        [
            "PARTITION",
            "ACTIVE",
            "PINNED",
            "FAILBACK",
            "NODES",
            "SESSIONS"
        ]
    );
    let acme = out.row("acme");
    assert_eq!(
        (acme[1], acme[2], acme[4], acme[5]),
        ("fs1", "no", "fs1,fs2", "0")
    );
    assert!(text.ends_with("last reload: none since start\n"), "{text}");

    // --json before or after the verb: the API's document, as it sent it.
    for args in [["--json", "status"], ["status", "--json"]] {
        let doc = ctl_at(&url, &args).await.json();
        assert_eq!(doc["nodes"]["fs1"]["state"], "up", "{doc}");
        assert_eq!(doc["partitions"]["acme"]["active"], "fs1", "{doc}");
        assert_eq!(doc["last_reload"], Value::Null, "{doc}");
    }

    // A gateway without a map file cannot reload: the API says so, exit 1.
    let err = ctl_at(&url, &["reload"]).await;
    assert!(err.failed(1).contains("no map file to reload"), "{err:?}");
}

#[tokio::test]
async fn drain_undrain_and_switch_change_the_gateway_and_say_how() {
    let gw = farm().await;
    let url = serve_admin(&gw, None).await;

    let out = ctl_at(&url, &["drain", "fs1", "--deadline", "60"]).await;
    // The API reports whole seconds left, rounded up: 60 right after.
    let text = out.ok();
    assert_eq!(
        text, "fs1: drain, 0 sessions, 0 calls, closing the rest in 60 s\n",
        "{text}"
    );
    assert_eq!(state(&gw, "fs1"), NodeState::Drain);
    let status = ctl_at(&url, &["status"]).await;
    assert_eq!(status.row("fs1")[1], "drain", "{status:?}");
    assert!(status.row("fs1").ends_with(&["s", "left)"]), "{status:?}");
    let drained = ctl_at(&url, &["--json", "drain", "fs1"]).await.json();
    assert_eq!(drained["node"], "fs1", "{drained}");
    assert_eq!(drained["state"], "drain", "{drained}");

    let out = ctl_at(&url, &["undrain", "fs1"]).await;
    assert_eq!(out.ok(), "fs1: up, 0 sessions, 0 calls\n");
    assert_eq!(state(&gw, "fs1"), NodeState::Up);

    let out = ctl_at(&url, &["switch", "acme", "fs2"]).await;
    assert_eq!(out.ok(), "acme: pinned to fs2\n");
    let doc = ctl_at(&url, &["--json", "status"]).await.json();
    assert_eq!(doc["partitions"]["acme"]["pinned"], true, "{doc}");
    assert_eq!(doc["partitions"]["acme"]["active"], "fs2", "{doc}");

    let out = ctl_at(&url, &["switch", "acme", "--auto"]).await;
    assert!(
        out.ok().starts_with("acme: not pinned, active node fs"),
        "{out:?}"
    );
    let unpinned = ctl_at(&url, &["--json", "switch", "acme", "--auto"])
        .await
        .json();
    assert_eq!(unpinned["pinned"], false, "{unpinned}");

    // Refusals are the API's: exit 1 with its message.
    let err = ctl_at(&url, &["drain", "fs9"]).await;
    let text = err.failed(1);
    assert!(
        text.contains("fs9") && text.contains("JSON-RPC error -32602"),
        "{text}"
    );
    let err = ctl_at(&url, &["switch", "nowhere", "fs1"]).await;
    assert!(err.failed(1).contains("nowhere"), "{err:?}");
    // `switch` wants a node or --auto, not both: a usage error before any request.
    assert_ne!(ctl_at(&url, &["switch", "acme"]).await.code, 0);
    assert_ne!(
        ctl_at(&url, &["switch", "acme", "fs1", "--auto"])
            .await
            .code,
        0
    );
}

#[tokio::test]
async fn sessions_route_and_kick_see_and_end_a_logged_in_browser() {
    let gw = farm().await;
    let url = serve_admin(&gw, None).await;
    let sid = sessid();
    let (mut ws, node) = lands_on(&gw, "1000@acme.test", &sid).await;

    let out = ctl_at(&url, &["sessions"]).await;
    assert_eq!(
        out.row("SESSID"),
        [
            "SESSID",
            "LOGIN",
            "PARTITION",
            "NODE",
            "PEER",
            "CALLS",
            "SINCE_S"
        ]
    );
    let row = out.row(&sid);
    assert_eq!(
        row[1..4],
        ["1000@acme.test", "acme", node.as_str()],
        "{out:?}"
    );
    assert!(row[4].starts_with("127.0.0.1:"), "{out:?}");
    assert_eq!(row[5], "0", "{out:?}");
    let rows = ctl_at(&url, &["sessions", "--partition", "acme", "--json"])
        .await
        .json();
    assert_eq!(rows[0]["sessid"], sid.as_str(), "{rows}");
    let other = if node == "fs1" { "fs2" } else { "fs1" };
    let out = ctl_at(&url, &["sessions", "--node", other]).await;
    assert_eq!(out.ok(), "no sessions\n");

    let out = ctl_at(&url, &["route", "1000@acme.test"]).await;
    let text = out.ok();
    assert!(
        text.starts_with(&format!(
            "1000@acme.test -> partition acme, node {node} (ws://"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("sessions: {sid} on {node}")),
        "{text}"
    );
    let doc = ctl_at(&url, &["--json", "route", "1000@acme.test"])
        .await
        .json();
    assert_eq!(doc["partition"], "acme", "{doc}");
    let err = ctl_at(&url, &["route", "1000@nowhere.test"]).await;
    assert!(
        err.failed(1)
            .contains("no partition serves domain nowhere.test (HTTP 404 Not Found)"),
        "{err:?}"
    );

    let out = ctl_at(&url, &["kick", &sid]).await;
    assert_eq!(out.ok(), format!("{sid}: kicked 1 session (close 1008)\n"));
    assert_eq!(closed_with(&mut ws).await, Some(1008));
    let out = ctl_at(&url, &["kick", &sid]).await;
    assert_eq!(out.ok(), format!("no session has sessid {sid}\n"));

    // With --punt the browser is told not to come back before the close.
    let sid = sessid();
    let (mut ws, _) = lands_on(&gw, "1001@acme.test", &sid).await;
    let out = ctl_at(&url, &["kick", &sid, "--punt"]).await;
    assert_eq!(
        out.ok(),
        format!("{sid}: kicked 1 session (verto.punt, then close 1008)\n")
    );
    let punt = recv_json(&mut ws).await;
    assert_eq!(punt["method"], "verto.punt", "{punt}");
    assert_eq!(closed_with(&mut ws).await, Some(1008));
}

/// Writes the test certificate and `map` (with `cert.pem` and `key.pem` beside it).
fn write_map(dir: &Path, map: &str) -> std::path::PathBuf {
    let certs = certs();
    std::fs::write(dir.join("cert.pem"), &certs.cert_pem).expect("write cert");
    std::fs::write(dir.join("key.pem"), &certs.key_pem).expect("write key");
    let path = dir.join("vertogw.toml");
    std::fs::write(&path, map).expect("write map");
    path
}

#[tokio::test]
async fn reload_applies_a_valid_map_and_prints_every_problem_of_an_invalid_one() {
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .start_monitored()
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let head =
        "[gateway]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n";
    let nodes = node_tables(&["fs1"]).replace("{fs1}", &gw.node("fs1").url());
    let acme = partition("acme", &["fs1"], r#"["acme.test"]"#, None);
    let path = write_map(dir.path(), &format!("{head}{nodes}{acme}"));
    let reloader = Arc::new(Reloader::new(path.clone(), Arc::clone(&gw.gateway)));
    let url = serve_admin(&gw, Some(reloader)).await;

    let out = ctl_at(&url, &["reload"]).await;
    assert_eq!(out.ok(), "map reloaded: 1 partition, 1 node\n");
    let status = ctl_at(&url, &["status"]).await;
    assert!(status.ok().contains("(rpc): ok\n"), "{status:?}");

    // Two problems: an unknown node and a certificate that is not there.
    let broken = format!(
        "{}{nodes}{}",
        head.replace("cert.pem", "missing.pem"),
        partition("acme", &["fs1", "fs9"], r#"["acme.test"]"#, None)
    );
    std::fs::write(&path, broken).expect("write the broken map");
    let err = ctl_at(&url, &["reload"]).await;
    let text = err.failed(1);
    assert!(
        text.starts_with("error: invalid map (JSON-RPC error -32000)\n"),
        "{text}"
    );
    assert!(text.contains("fs9"), "{text}");
    assert!(text.contains("missing.pem"), "{text}");
    let lines = text.lines().count();
    let status = ctl_at(&url, &["status"]).await;
    let shown = status.ok();
    assert!(shown.contains("(rpc): error\n"), "{shown}");
    // Every problem the reload reported is listed under the last reload too.
    assert_eq!(
        shown
            .lines()
            .rev()
            .take_while(|l| l.starts_with("  "))
            .count(),
        lines - 1,
        "{shown}\n---\n{text}"
    );
    // The old map still serves.
    assert_eq!(state(&gw, "fs1"), NodeState::Up);
}

#[tokio::test]
async fn a_token_in_the_map_is_needed_and_comes_from_a_file_or_the_map() {
    let map = format!("{}[admin]\ntoken = \"{TOKEN}\"\n", one_node_map());
    let gw = Setup::new(&map).node(sim("fs1")).start().await;
    let url = serve_admin(&gw, None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let right = dir.path().join("right");
    std::fs::write(&right, format!("{TOKEN}\n")).expect("write token");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-token-0123456789\n").expect("write token");
    let right = right.to_str().expect("utf-8 path");
    let wrong = wrong.to_str().expect("utf-8 path");

    let mut outs = Vec::new();
    let out = ctl_at(&url, &["status"]).await;
    assert!(out.failed(1).contains("wants a token"), "{out:?}");
    assert!(out.stderr.contains("--token-file"), "{out:?}");
    outs.push(out);
    let out = ctl_at(&url, &["--token-file", wrong, "status"]).await;
    assert!(out.failed(1).contains("refused the token"), "{out:?}");
    outs.push(out);
    let out = ctl_at(&url, &["--token-file", right, "status"]).await;
    assert_eq!(out.row("fs1")[0], "fs1", "{out:?}");
    outs.push(out);

    // The map names the listener and the token; a token file still wins.
    let listen = url.trim_start_matches("http://");
    let client_map = write_map(
        dir.path(),
        &format!("{MAP_HEAD}[admin]\nlisten = \"{listen}\"\ntoken = \"{TOKEN}\"\n"),
    );
    let client_map = client_map.to_str().expect("utf-8 path");
    let out = ctl(&["--config", client_map, "route", "1000@acme.test"]).await;
    assert!(
        out.ok().starts_with("1000@acme.test -> partition acme"),
        "{out:?}"
    );
    outs.push(out);
    let out = ctl(&["--config", client_map, "--token-file", wrong, "status"]).await;
    assert!(out.failed(1).contains("refused the token"), "{out:?}");
    outs.push(out);

    for out in &outs {
        assert!(
            !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
            "the token was printed: {out:?}"
        );
    }
}

#[tokio::test]
async fn an_admin_api_that_cannot_be_reached_exits_two() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let out = ctl_at(&format!("http://{addr}"), &["status"]).await;
    assert!(out.failed(2).contains("cannot connect"), "{out:?}");
    let out = ctl_at(&format!("https://{addr}"), &["status"]).await;
    assert!(out.failed(2).contains("https is not supported"), "{out:?}");
    let out = ctl(&["--config", "/nonexistent/vertogw.toml", "status"]).await;
    assert!(out.failed(2).contains("cannot read the map"), "{out:?}");
}
