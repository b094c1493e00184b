//! The systemd unit in `packaging/`: `systemd-analyze verify` accepts it, alone and with
//! its iptables drop-in, and its lines keep the contract the README states (reload by
//! SIGHUP, the open-file limit, a read-only file system, the dedicated user, only
//! CAP_NET_BIND_SERVICE unless the drop-in adds CAP_NET_ADMIN, a stop that outlasts the
//! gateway's shutdown grace).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use vertogw::cli::Cli;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The binary the unit starts.
const INSTALLED_BINARY: &str = "/usr/local/bin/vertogw";

fn read(relative: &str) -> String {
    let path = Path::new(ROOT).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(section, key, value)` of every setting of a unit file, in order.
fn settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a setting: {line}"));
        found.push((section.clone(), key.trim().into(), value.trim().into()));
    }
    found
}

/// The values `key` has in `[section]` (a key may be given more than once).
fn values<'a>(settings: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The one value of `key` in `[Service]`.
fn service(settings: &[(String, String, String)], key: &str) -> String {
    match values(settings, "Service", key).as_slice() {
        [one] => (*one).to_owned(),
        other => panic!("[Service] {key}= should be set once, found {other:?}"),
    }
}

fn unit() -> Vec<(String, String, String)> {
    settings(&read("packaging/vertogw.service"))
}

fn drop_in() -> Vec<(String, String, String)> {
    settings(&read("packaging/vertogw.service.d/iptables.conf"))
}

#[test]
fn the_unit_starts_serve_with_the_installed_map_and_reloads_with_sighup() {
    let unit = unit();
    assert_eq!(
        service(&unit, "Type"),
        "simple",
        "the binary has no sd_notify"
    );
    let exec = service(&unit, "ExecStart");
    assert_eq!(
        exec,
        format!("{INSTALLED_BINARY} serve --config /etc/vertogw/vertogw.toml")
    );
    // The command line is one the real parser accepts.
    let words: Vec<&str> = exec.split_whitespace().collect();
    Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("ExecStart={exec}: {e}"));
    let reload = service(&unit, "ExecReload");
    assert!(
        reload.contains("kill -HUP $MAINPID"),
        "ExecReload must send SIGHUP to the gateway: {reload}"
    );
    assert_eq!(service(&unit, "Restart"), "on-failure");
    assert_eq!(service(&unit, "LimitNOFILE"), "1048576");
}

#[test]
fn the_unit_runs_as_the_dedicated_user_on_a_read_only_file_system() {
    let unit = unit();
    assert_eq!(service(&unit, "User"), "vertogw");
    assert_eq!(service(&unit, "Group"), "vertogw");
    assert_eq!(service(&unit, "ProtectSystem"), "strict");
    assert_eq!(service(&unit, "NoNewPrivileges"), "yes");
    // The sysusers.d file creates exactly that user.
    let sysusers = read("packaging/sysusers.d/vertogw.conf");
    let users: Vec<Vec<&str>> = sysusers
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        users
            .iter()
            .any(|w| w.first() == Some(&"u") && w.get(1) == Some(&"vertogw")),
        "packaging/sysusers.d/vertogw.conf should create user vertogw: {users:?}"
    );
}

#[test]
fn the_default_unit_grants_only_net_bind_service_and_the_drop_in_adds_net_admin() {
    let text = read("packaging/vertogw.service");
    assert!(
        !text.contains("CAP_NET_ADMIN"),
        "CAP_NET_ADMIN belongs in the iptables drop-in only"
    );
    let unit = unit();
    assert_eq!(
        service(&unit, "AmbientCapabilities"),
        "CAP_NET_BIND_SERVICE"
    );
    assert_eq!(
        service(&unit, "CapabilityBoundingSet"),
        "CAP_NET_BIND_SERVICE"
    );
    let drop_in = drop_in();
    assert_eq!(service(&drop_in, "AmbientCapabilities"), "CAP_NET_ADMIN");
    assert_eq!(service(&drop_in, "CapabilityBoundingSet"), "CAP_NET_ADMIN");
    // iptables-nft speaks netlink, which the unit's address families leave out.
    assert_eq!(service(&drop_in, "RestrictAddressFamilies"), "AF_NETLINK");
}

#[test]
fn the_unit_stops_with_sigterm_and_waits_longer_than_the_shutdown_grace() {
    let unit = unit();
    assert_eq!(service(&unit, "KillSignal"), "SIGTERM");
    let raw = service(&unit, "TimeoutStopSec");
    let secs: u64 = raw
        .strip_suffix('s')
        .unwrap_or(&raw)
        .parse()
        .unwrap_or_else(|e| panic!("TimeoutStopSec={raw} (write plain seconds): {e}"));
    assert!(
        Duration::from_secs(secs) > vertogw::proxy::SHUTDOWN_GRACE,
        "TimeoutStopSec={raw} must outlast the gateway's {:?} shutdown grace",
        vertogw::proxy::SHUTDOWN_GRACE
    );
}

/// `systemd-analyze`, when this machine has it.
fn systemd_analyze() -> Option<PathBuf> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A copy of the unit in `dir` whose ExecStart runs the binary under test (verify
/// insists that the program exists), with the drop-in beside it when asked.
fn unit_copy(dir: &Path, with_drop_in: bool) -> PathBuf {
    let binary = env!("CARGO_BIN_EXE_vertogw");
    assert!(
        !binary.contains(char::is_whitespace),
        "the test binary's path has a space: {binary}"
    );
    let text = read("packaging/vertogw.service");
    assert_eq!(text.matches(INSTALLED_BINARY).count(), 1, "one ExecStart");
    let unit = dir.join("vertogw.service");
    std::fs::write(&unit, text.replace(INSTALLED_BINARY, binary)).expect("write unit");
    if with_drop_in {
        let d = dir.join("vertogw.service.d");
        std::fs::create_dir(&d).expect("drop-in dir");
        let conf = read("packaging/vertogw.service.d/iptables.conf");
        std::fs::write(d.join("iptables.conf"), conf).expect("write drop-in");
    }
    unit
}

/// Runs `systemd-analyze verify` on `unit`: `Err` with its output on any complaint about
/// the files in `dir` (an unknown key is only a warning to systemd, an error here).
fn verify(analyze: &Path, dir: &Path, unit: &Path) -> Result<(), String> {
    let out = Command::new(analyze)
        .arg("verify")
        .arg(unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours = stderr
        .lines()
        .any(|l| l.contains(&*dir.to_string_lossy()) || l.contains("vertogw"));
    match out.status.success() && !ours {
        true => Ok(()),
        false => Err(format!(
            "systemd-analyze verify {}: {}\n{stderr}",
            unit.display(),
            out.status
        )),
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_alone_and_with_the_iptables_drop_in() {
    let Some(analyze) = systemd_analyze() else {
        eprintln!(
            "!!!!! SKIPPED: systemd-analyze is not installed; packaging/vertogw.service was \
             NOT verified (the contract tests still ran)"
        );
        return;
    };
    for with_drop_in in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let unit = unit_copy(dir.path(), with_drop_in);
        verify(&analyze, dir.path(), &unit).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn systemd_analyze_verify_reports_a_bad_key_so_a_clean_run_means_something() {
    let Some(analyze) = systemd_analyze() else {
        eprintln!("!!!!! SKIPPED: systemd-analyze is not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_copy(dir.path(), true);
    let conf = dir.path().join("vertogw.service.d/iptables.conf");
    let mut text = std::fs::read_to_string(&conf).expect("drop-in");
    text.push_str("AmbientCapabilites=CAP_NET_RAW\n");
    std::fs::write(&conf, text).expect("write drop-in");
    assert!(
        verify(&analyze, dir.path(), &unit).is_err(),
        "a misspelt key in the drop-in went unnoticed"
    );
}
