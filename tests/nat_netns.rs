//! Real-kernel tests of `vertogw iptables`, as root, inside network namespaces each
//! test creates (see `netns/mod.rs`): the rules are applied in the load balancer's
//! namespace and UDP really travels client → public_ip:port → node and back.
//! Not root: every test passes after a loud SKIPPED line.

mod netns;

use std::io::Write;
use std::path::{Path, PathBuf};

use netns::{ensure_tools, helper_main, is_root, Helper, Lab, HELPER_ENV, LB_NODE_SIDE, PUBLIC_IP};
use vertogw::commands::iptables::{run, Action, EXIT_DIFFERS};
use vertogw::nat::Runner;

const MAP: &str = include_str!("golden/nat_map.toml");

/// Not a test: the UDP helper this binary becomes inside a namespace.
#[test]
fn udp_helper() {
    if let Ok(spec) = std::env::var(HELPER_ENV) {
        helper_main(&spec);
    }
}

/// True when the test may run; prints why not otherwise.
fn root_lab(test: &str) -> bool {
    if !is_root() {
        // Straight to the process's stderr: libtest captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (not root): nat_netns::{test} needs root for network namespaces and iptables"
        );
        return false;
    }
    ensure_tools();
    true
}

/// A map file in a fresh temporary directory.
struct MapFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn map_file(text: &str) -> MapFile {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("map.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    MapFile { _dir: dir, path }
}

/// Runs an `iptables` action against the lab's LB namespace: (exit code, stdout, stderr).
fn vgw(lab: &Lab, map: &Path, action: Action) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(map, action, &Runner::netns(&lab.lb), &mut out, &mut err);
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (code, text(out), text(err))
}

fn apply_ok(lab: &Lab, map: &Path) -> String {
    let (code, out, err) = vgw(lab, map, Action::Apply);
    assert_eq!(code, 0, "apply failed:\n{out}\n{err}");
    assert!(!err.contains("ip_forward"), "unexpected warning: {err}");
    out
}

/// Sends one datagram from the client to public_ip:port while `node` listens on port:
/// (what the client got back, the source the node saw).
fn exchange(lab: &Lab, node: usize, name: &str, port: u16) -> (String, String) {
    let (mut responder, ready) = Helper::start(&lab.nodes[node], &format!("recv {port} {name}"));
    assert_eq!(
        ready, "VGW-READY",
        "the responder in {} did not start",
        lab.nodes[node]
    );
    let (_client, reply) = Helper::start(&lab.client, &format!("send {PUBLIC_IP}:{port}"));
    (reply, responder.next_line())
}

#[test]
fn rtp_to_each_nodes_range_reaches_that_node_and_replies_come_from_public_ip() {
    if !root_lab("rtp_to_each_nodes_range_reaches_that_node") {
        return;
    }
    let lab = Lab::new(true);
    let map = map_file(MAP);
    apply_ok(&lab, &map.path);
    for (node, name, port) in [(0, "fs1", 16500), (1, "fs2", 18383)] {
        let (reply, seen) = exchange(&lab, node, name, port);
        assert!(
            seen.starts_with(&format!("VGW-GOT {LB_NODE_SIDE}:")),
            "{name} should see the LB as source, saw {seen:?}"
        );
        assert!(
            reply.starts_with(&format!("VGW-REPLY {name} saw {LB_NODE_SIDE}:"))
                && reply.ends_with(&format!(" from {PUBLIC_IP}:{port}")),
            "the client should get {name}'s reply from {PUBLIC_IP}:{port}, got {reply:?}"
        );
    }
}

#[test]
fn applying_twice_changes_nothing_and_check_is_clean() {
    if !root_lab("applying_twice_changes_nothing") {
        return;
    }
    let lab = Lab::new(true);
    let map = map_file(MAP);
    let first = apply_ok(&lab, &map.path);
    assert!(
        first.contains("applied: 7 rule(s) added, 0 removed"),
        "{first}"
    );
    let before = lab.lb_iptables(&["-S"]);
    assert_eq!(
        apply_ok(&lab, &map.path),
        "no change: the live rules already match the map\n"
    );
    assert_eq!(lab.lb_iptables(&["-S"]), before);
    let (code, out, _) = vgw(&lab, &map.path, Action::Check);
    assert_eq!((code, out.as_str()), (0, "in sync: 2 node(s) forwarded\n"));
    let (code, out, _) = vgw(&lab, &map.path, Action::Plan { live: true });
    assert_eq!(code, 0);
    assert!(
        out.ends_with("# the live table matches: apply would send nothing\n"),
        "{out}"
    );
}

#[test]
fn a_node_removed_from_the_map_loses_its_rules_and_its_traffic() {
    if !root_lab("a_node_removed_from_the_map_loses_its_rules") {
        return;
    }
    let lab = Lab::new(true);
    let map = map_file(MAP);
    apply_ok(&lab, &map.path);
    let edited = MAP
        .replace("nodes = [\"fs1\", \"fs2\"]", "nodes = [\"fs1\"]")
        .replace("rtp_ports = \"17384-18383\"\n", "");
    std::fs::write(&map.path, edited).unwrap_or_else(|e| panic!("{e}"));
    let out = apply_ok(&lab, &map.path);
    assert!(out.contains("applied: 0 rule(s) added, 2 removed"), "{out}");
    let live = lab.lb_iptables(&["-S"]);
    assert!(
        !live.contains("vertogw:node=fs2") && live.contains("vertogw:node=fs1"),
        "{live}"
    );
    let (reply, seen) = exchange(&lab, 1, "fs2", 17500);
    assert!(
        reply.starts_with("VGW-TIMEOUT") || reply.is_empty(),
        "{reply}"
    );
    assert!(
        seen.starts_with("VGW-TIMEOUT"),
        "fs2 still gets traffic: {seen}"
    );
}

#[test]
fn flush_removes_only_what_vertogw_owns() {
    if !root_lab("flush_removes_only_what_vertogw_owns") {
        return;
    }
    let lab = Lab::new(true);
    let map = map_file(MAP);
    lab.lb_iptables(&["-N", "FOREIGN"]);
    lab.lb_iptables(&["-A", "FOREIGN", "-p", "tcp", "-j", "RETURN"]);
    lab.lb_iptables(&["-A", "PREROUTING", "-p", "tcp", "-j", "FOREIGN"]);
    lab.lb_iptables(&["-A", "POSTROUTING", "-s", "10.9.0.0/16", "-j", "MASQUERADE"]);
    let foreign = lab.lb_iptables(&["-S"]);
    apply_ok(&lab, &map.path);
    let (code, out, err) = vgw(&lab, &map.path, Action::Flush);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("flushed: 3 jump(s), chain(s) VERTOGW-DNAT, VERTOGW-SNAT with 4 rule(s)"),
        "{out}"
    );
    assert_eq!(
        lab.lb_iptables(&["-S"]),
        foreign,
        "flush must leave foreign rules exactly as they were"
    );
    let (code, out, _) = vgw(&lab, &map.path, Action::Flush);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "nothing to flush: vertogw has no rules in the nat table\n"
        )
    );
    let (code, out, _) = vgw(&lab, &map.path, Action::Check);
    assert_eq!(code, EXIT_DIFFERS);
    assert!(out.contains("+ -N VERTOGW-DNAT"), "{out}");
}

#[test]
fn a_rule_added_by_hand_in_our_chain_is_reported_and_removed_by_apply() {
    if !root_lab("a_rule_added_by_hand_in_our_chain_is_reported") {
        return;
    }
    let lab = Lab::new(true);
    let map = map_file(MAP);
    apply_ok(&lab, &map.path);
    lab.lb_iptables(&["-A", "VERTOGW-DNAT", "-p", "tcp", "-j", "ACCEPT"]);
    let (code, out, _) = vgw(&lab, &map.path, Action::Check);
    assert_eq!(code, EXIT_DIFFERS, "{out}");
    assert!(
        out.ends_with("- -A VERTOGW-DNAT -p tcp -j ACCEPT\n"),
        "{out}"
    );
    let out = apply_ok(&lab, &map.path);
    assert!(out.contains("applied: 0 rule(s) added, 1 removed"), "{out}");
    assert_eq!(vgw(&lab, &map.path, Action::Check).0, 0);
}

#[test]
fn forwarding_disabled_in_the_lb_is_warned_about() {
    if !root_lab("forwarding_disabled_in_the_lb_is_warned_about") {
        return;
    }
    let lab = Lab::new(false);
    let map = map_file(MAP);
    let (code, _, err) = vgw(&lab, &map.path, Action::Apply);
    assert_eq!(code, 0);
    assert!(
        err.starts_with("warning: net.ipv4.ip_forward is 0"),
        "{err}"
    );
}

#[test]
fn the_binary_checks_a_namespace_given_by_netns() {
    if !root_lab("the_binary_checks_a_namespace_given_by_netns") {
        return;
    }
    let lab = Lab::new(true);
    let map = map_file(MAP);
    let cli = |verb: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vertogw"))
            .args(["iptables", verb, "--netns", &lab.lb, "--config"])
            .arg(&map.path)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(cli("check").status.code(), Some(EXIT_DIFFERS));
    assert!(cli("apply").status.success());
    let check = cli("check");
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
