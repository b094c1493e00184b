//! The keepalived pair of docs/keepalived.md. Its `vrrp_script` command, taken from the
//! document's keepalived.conf block and changed only in the admin address, is run with
//! `sh -c` against a real `vertogw serve` process whose nodes are `vertogw sim-node`
//! processes: it exits 0 while every partition has a node, and non-zero once the only
//! node of one partition is killed. When keepalived is installed, `keepalived
//! --config-test` accepts the block as written.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::{listen_addr, vertogw, SimProcess};
use common::{certs, within};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The admin address the document's check polls (`[admin] listen`'s default).
const DOC_ADMIN: &str = "127.0.0.1:9090";

/// How long a process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Readiness has no push event: the check is polled at most this many times...
const POLLS: u32 = 100;
/// ...this far apart (the gateway probes every 100 ms and marks a node down at once).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The one fenced block of docs/keepalived.md that holds a `vrrp_script`.
fn keepalived_conf() -> String {
    let path = Path::new(ROOT).join("docs/keepalived.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(String::new()),
            }
            continue;
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    let confs: Vec<String> = blocks
        .into_iter()
        .filter(|b| b.contains("vrrp_script"))
        .collect();
    match confs.as_slice() {
        [one] => one.clone(),
        other => {
            panic!("docs/keepalived.md should hold one keepalived.conf block, found {other:#?}")
        }
    }
}

/// The `script "…"` command of the `vrrp_script` that the `vrrp_instance` tracks.
fn check_command(conf: &str) -> String {
    let start = conf.find("vrrp_script ").expect("a vrrp_script");
    let block = &conf[start..];
    let block = &block[..block.find("\n}").expect("the vrrp_script's closing brace")];
    let name = block
        .split_whitespace()
        .nth(1)
        .expect("the vrrp_script's name");
    let tracked = &conf[conf.find("track_script").expect("a track_script")..];
    let tracked = &tracked[..tracked.find('}').expect("track_script's closing brace")];
    assert!(
        tracked.split_whitespace().any(|w| w == name),
        "the vrrp_instance does not track {name}: {tracked}"
    );
    let line = block
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("script "))
        .expect("a script line");
    let quoted = line["script ".len()..].trim();
    let command = quoted
        .strip_prefix('"')
        .and_then(|q| q.rfind('"').map(|end| &q[..end]))
        .unwrap_or_else(|| panic!("the script is not quoted: {line}"));
    command.to_owned()
}

/// The document's check, pointed at the gateway's admin API `admin`.
fn live_check(admin: SocketAddr) -> String {
    let command = check_command(&keepalived_conf());
    assert_eq!(
        command
            .matches(&format!("http://{DOC_ADMIN}/readyz"))
            .count(),
        1,
        "the check should poll http://{DOC_ADMIN}/readyz once: {command}"
    );
    command.replace(DOC_ADMIN, &admin.to_string())
}

/// Runs `command` as keepalived would run its words, through `sh -c`.
async fn run_check(command: &str) -> ExitStatus {
    let run = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    within("the check command", run).await.expect("run sh")
}

/// A running `vertogw serve` (killed when dropped) and its admin address.
struct Gateway {
    _child: Child,
    admin: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `vertogw serve` with partitions `acme` = [fs1] and `beta` = [fs2], fast probes, and
/// the admin API on a free loopback port.
async fn start_gateway(fs1: &SimProcess, fs2: &SimProcess) -> Gateway {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cert.pem"), &certs().cert_pem).expect("write cert");
    std::fs::write(dir.path().join("key.pem"), &certs().key_pem).expect("write key");
    let map = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n\
         [health]\ninterval_ms = 100\ntimeout_ms = 100\nfall = 1\nrise = 1\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [[node]]\nname = \"fs1\"\nverto_url = \"{}\"\n\
         [[node]]\nname = \"fs2\"\nverto_url = \"{}\"\n\
         [[partition]]\nname = \"acme\"\nnodes = [\"fs1\"]\ndomains = [\"acme.test\"]\n\
         [[partition]]\nname = \"beta\"\nnodes = [\"fs2\"]\ndomains = [\"beta.test\"]\n",
        fs1.url, fs2.url
    );
    let map_path = dir.path().join("vertogw.toml");
    std::fs::write(&map_path, map).expect("write map");
    let map_arg = map_path.to_str().expect("UTF-8 temp path");
    let mut child = vertogw(&["serve", "--config", map_arg])
        .spawn()
        .expect("start vertogw serve");
    let log = Arc::new(Mutex::new(String::new()));
    let (admin_tx, admin_rx) = oneshot::channel();
    let (listening_tx, listening_rx) = oneshot::channel();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let collected = Arc::clone(&log);
    tokio::spawn(async move {
        let (mut admin_tx, mut listening_tx) = (Some(admin_tx), Some(listening_tx));
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("admin API listening") {
                if let (Some(tx), Some(addr)) = (admin_tx.take(), listen_addr(&line)) {
                    let _ = tx.send(addr);
                }
            }
            if line.contains("gateway listening") {
                if let Some(tx) = listening_tx.take() {
                    let _ = tx.send(());
                }
            }
            let mut all = collected.lock().unwrap_or_else(|e| e.into_inner());
            all.push_str(&line);
            all.push('\n');
        }
    });
    let started = async { (admin_rx.await, listening_rx.await) };
    let admin = match tokio::time::timeout(START_TIMEOUT, started).await {
        Ok((Ok(admin), Ok(()))) => admin,
        _ => {
            let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("vertogw never logged `admin API listening` and `gateway listening`:\n{log}");
        }
    };
    Gateway {
        _child: child,
        admin,
        log,
        _dir: dir,
    }
}

/// `GET /readyz` on `admin`: the whole HTTP answer.
async fn readyz(admin: SocketAddr) -> String {
    let exchange = async {
        let mut tcp = TcpStream::connect(admin).await.expect("connect admin");
        tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .await
            .expect("send request");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.expect("read answer");
        answer
    };
    within("GET /readyz", exchange).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_check_passes_while_every_partition_has_a_node_and_fails_without() {
    let curl = check_command(&keepalived_conf());
    let program = curl.split_whitespace().next().expect("a program");
    if !Path::new(program).exists() {
        eprintln!(
            "!!!!! SKIPPED: {program} is not installed, so the documented vrrp_script \
             cannot run (./.ci/test installs it as root)"
        );
        return;
    }
    let fs1 = SimProcess::start("fs1").await;
    let fs2 = SimProcess::start("fs2").await;
    let gw = start_gateway(&fs1, &fs2).await;
    let check = live_check(gw.admin);

    // Every node is probed once before the gateway listens: ready from the start.
    let status = run_check(&check).await;
    assert!(
        status.success(),
        "`{check}` exited {status} with both nodes up; /readyz:\n{}\nlog:\n{}",
        readyz(gw.admin).await,
        gw.log()
    );

    fs1.kill().await;
    let mut last = status;
    for _ in 0..POLLS {
        last = run_check(&check).await;
        if !last.success() {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert!(
        !last.success(),
        "`{check}` still exits 0 after {POLLS} polls with acme's only node killed; log:\n{}",
        gw.log()
    );
    let answer = readyz(gw.admin).await;
    assert!(
        answer.starts_with("HTTP/1.1 503")
            && answer.contains(r#""partitions_without_node":["acme"]"#),
        "{answer}"
    );
    drop(fs2);
}

/// `keepalived`, when this machine has it.
fn keepalived() -> Option<PathBuf> {
    ["/usr/sbin/keepalived", "/sbin/keepalived"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// What `keepalived --config-test` reports about `conf` (nothing: it is valid).
/// keepalived 2.2 ends its config test with SIGTERM whatever it found, so the report
/// file is the verdict, not the exit status.
async fn config_test(keepalived: &Path, conf: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf_path = dir.path().join("keepalived.conf");
    let report = dir.path().join("config-test.log");
    std::fs::write(&conf_path, conf).expect("write keepalived.conf");
    let run = Command::new(keepalived)
        .arg(format!("--config-test={}", report.display()))
        .arg("--use-file")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    within("keepalived --config-test", run)
        .await
        .expect("run keepalived");
    std::fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn keepalived_accepts_the_documented_configuration() {
    let Some(keepalived) = keepalived() else {
        eprintln!(
            "!!!!! SKIPPED: keepalived is not installed, so docs/keepalived.md's \
             keepalived.conf was NOT checked (./.ci/test installs it as root)"
        );
        return;
    };
    let conf = keepalived_conf();
    let interface = conf
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("interface "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an interface line")
        .to_owned();
    // The document's interface need not exist on this machine; anything else counts.
    let missing_interface = |l: &str| {
        (l.contains(&format!("interface {interface} ")) && l.contains("doesn't exist"))
            || l.contains("Non-existent interface specified")
    };
    let problems: Vec<String> = config_test(&keepalived, &conf)
        .await
        .into_iter()
        .filter(|l| !missing_interface(l))
        .collect();
    assert!(
        problems.is_empty(),
        "keepalived --config-test on docs/keepalived.md:\n{}",
        problems.join("\n")
    );
    // And a real mistake is reported, so an empty report means the file was checked.
    let misspelt = conf.replacen("weight ", "weigth ", 1);
    assert_ne!(misspelt, conf);
    let report = config_test(&keepalived, &misspelt).await;
    assert!(
        report.iter().any(|l| l.contains("weigth")),
        "keepalived --config-test missed a misspelt keyword: {report:?}"
    );
}
