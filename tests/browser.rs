//! A real browser through the gateway (issue 9 §6): headless Chromium, driven by
//! playwright-core from `tests/browser/web_client.mjs`, opens the bundled web client over
//! TLS, logs in as users of two partitions, places a call with DTMF and hangs up, sees a
//! wrong password refused in plain words, answers a call the node places, and
//! reconnects to the same node after the gateway closes its socket (a restart on the
//! same port). Screenshots go to `target/browser-test/`.
//!
//! Needs `node`, Chromium and `playwright-core` (installed by `./.ci/test` when run as
//! root). Without them the test says loudly that it is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// The whole browser session's bound: Chromium's start, every step, the reconnect.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Where `.ci/test` installs playwright-core and where screenshots go.
const WORK_DIR: &str = "target/browser-test";

/// What the browser test needs, found on this machine.
struct BrowserEnv {
    node: PathBuf,
    chromium: PathBuf,
    /// The folder holding `node_modules/playwright-core`.
    npm_prefix: PathBuf,
}

impl BrowserEnv {
    /// `Err` says what is missing.
    fn find() -> Result<BrowserEnv, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let which = |name: &str| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        };
        let node = which("node").ok_or("node (Node.js) is not installed")?;
        let chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| which("chromium"))
            .ok_or("chromium is not installed (Debian package chromium)")?;
        let npm_prefix = root.join(WORK_DIR);
        if !npm_prefix.join("node_modules/playwright-core").is_dir() {
            return Err(format!(
                "playwright-core is not installed in {} (npm install --prefix {WORK_DIR} playwright-core)",
                npm_prefix.display()
            ));
        }
        Ok(BrowserEnv {
            node,
            chromium,
            npm_prefix,
        })
    }
}

/// Two partitions on two nodes, serving the bundled client.
async fn gateway() -> TestGateway {
    let map = format!(
        "{}{}{}",
        node_tables(&["fsa", "fsb"]),
        partition("acme", &["fsa"], r#"["acme.test"]"#, None),
        partition("beta", &["fsb"], r#"["beta.test"]"#, None),
    );
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web-client");
    Setup::new(&map)
        .node(sim("fsa"))
        .node(sim("fsb"))
        .tweak(move |c| {
            c.gateway.web_root = Some(web);
            // Long enough for a person typing; the browser logs in at once anyway.
            c.gateway.login_timeout = Duration::from_secs(30);
        })
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_logs_in_calls_and_reconnects_through_the_gateway() {
    let env = match BrowserEnv::find() {
        Ok(env) => env,
        Err(missing) => {
            eprintln!(
                "\n!!!!! SKIPPED: the real-browser test cannot run: {missing}.\n!!!!! Run ./.ci/test as root to install what it needs.\n"
            );
            return;
        }
    };
    let mut gw = gateway().await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join(WORK_DIR);
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let config = json!({
        "chromium": env.chromium,
        "baseURL": format!("https://127.0.0.1:{}/", gw.addr.port()),
        "userA": "1000@acme.test",
        "userB": "1500@beta.test",
        "password": PASSWORD,
        "nodeA": "fsa",
        "nodeB": "fsb",
        "screenshots": shots,
        "npmPrefix": env.npm_prefix,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/web_client.mjs");
    let mut child = Command::new(&env.node)
        .arg(&script)
        .env("BROWSER_TEST_CONFIG", config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut steps = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("script output") {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                println!("script: {line}");
                continue;
            };
            println!("step: {event}");
            if event["need"] == "restart" {
                restart(&mut gw).await;
                stdin
                    .write_all(b"restarted\n")
                    .await
                    .expect("tell the script");
                stdin.flush().await.expect("flush");
            }
            steps.push(event);
        }
        child.wait().await.expect("script exit")
    };
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("the browser script did not finish within {SCRIPT_TIMEOUT:?}"));
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] == false).collect();
    assert!(
        status.success() && failed.is_empty(),
        "failed steps: {failed:#?}"
    );
    let done: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    for step in [
        "login A",
        "login B",
        "wrong password",
        "call",
        "dtmf",
        "hangup",
        "incoming call",
        "reconnect",
    ] {
        assert!(done.contains(&step), "step {step:?} missing from {done:?}");
    }
    // What the nodes saw agrees with what the page showed.
    let a = gw.node("fsa").stats();
    let b = gw.node("fsb").stats();
    assert!(
        a.logins_ok >= 2,
        "user A logged in, then again after the reconnect: {a:?}"
    );
    assert!(
        a.logins_failed >= 1,
        "the wrong password reached user A's node: {a:?}"
    );
    assert!(
        b.logins_ok >= 1,
        "user B logged in on its own partition's node: {b:?}"
    );
    assert_eq!(
        b.logins_failed, 0,
        "nothing of user A reached user B's node: {b:?}"
    );
    assert!(a.dtmf_digits.contains("1#"), "the node got the DTMF: {a:?}");
    assert_eq!(a.calls_placed, 1, "the node called back once: {a:?}");
    assert_eq!(
        a.calls_answered, 1,
        "the browser answered the call back: {a:?}"
    );
}

/// Shuts the gateway down (every browser socket gets 1001) and serves again on the same
/// address with the same gateway.
async fn restart(gw: &mut TestGateway) {
    gw.shutdown.cancel();
    let _ = within("the gateway to stop", &mut gw.serve).await;
    let listener = vertogw::proxy::bind_one(gw.addr).expect("bind the same address again");
    let shutdown = CancellationToken::new();
    gw.serve = tokio::spawn(vertogw::proxy::serve(
        listener,
        Arc::clone(&gw.gateway),
        shutdown.clone(),
    ));
    gw.shutdown = shutdown;
}
