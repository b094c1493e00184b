//! A throw-away network lab for the NAT tests: client, load balancer and two node
//! namespaces joined by veth links, on documentation address ranges, with no route
//! out. Everything lives in namespaces this process creates and deletes on drop; the
//! host's own interfaces and tables are never touched.
//!
//! ```text
//! client 198.51.100.2 ── to-c 198.51.100.1 + 203.0.113.10 (public_ip)  [LB]
//!                                 br0 192.0.2.1 ── node1 192.0.2.11 (fs1)
//!                                               └─ node2 192.0.2.12 (fs2)
//! ```

// Each test crate uses a different subset of the harness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// The load balancer's public address (the map's `public_ip`).
pub const PUBLIC_IP: &str = "203.0.113.10";
/// The load balancer's address facing the nodes (the map's `snat_ip`).
pub const LB_NODE_SIDE: &str = "192.0.2.1";
/// How long a UDP helper waits for its one datagram, in seconds.
pub const UDP_WAIT_SECS: u64 = 5;
/// The environment variable that turns the `udp_helper` test into a helper process.
pub const HELPER_ENV: &str = "VERTOGW_UDP_HELPER";

/// Whether this process runs as root (effective uid 0, from /proc/self/status).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Installs iptables and iproute2 with apt-get when either tool is missing.
pub fn ensure_tools() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let have = |tool: &str| {
            Command::new(tool)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if have("iptables") && have("ip") {
            return;
        }
        eprintln!("nat_netns: installing iptables and iproute2 with apt-get");
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "apt-get install iptables iproute2 failed: the NAT tests need them");
    });
}

/// Runs a command and returns its output, panicking with its stderr on failure.
pub fn run(argv: &[&str]) -> Output {
    let (program, args) = argv.split_first().unwrap_or((&"true", &[]));
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The four namespaces of one test; deleted (with their veths) when dropped.
pub struct Lab {
    /// Client namespace.
    pub client: String,
    /// Load balancer namespace: where the rules go.
    pub lb: String,
    /// Node namespaces, fs1 then fs2.
    pub nodes: [String; 2],
    created: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.created {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

impl Lab {
    /// Builds the topology; `forwarding` sets the LB's `net.ipv4.ip_forward`.
    pub fn new(forwarding: bool) -> Lab {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "vgw-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            client: format!("{id}-c"),
            lb: format!("{id}-lb"),
            nodes: [format!("{id}-n1"), format!("{id}-n2")],
            created: Vec::new(),
        };
        let all = [&lab.client, &lab.lb, &lab.nodes[0], &lab.nodes[1]].map(String::clone);
        for ns in all {
            run(&["ip", "netns", "add", &ns]);
            lab.created.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        lab.wire(forwarding);
        lab
    }

    fn wire(&self, forwarding: bool) {
        let lb = self.lb.as_str();
        let ip = |ns: &str, args: &[&str]| {
            let mut argv = vec!["ip", "-n", ns];
            argv.extend(args);
            run(&argv);
        };
        ip(
            lb,
            &[
                "link",
                "add",
                "name",
                "to-c",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &self.client,
            ],
        );
        ip(lb, &["addr", "add", "198.51.100.1/24", "dev", "to-c"]);
        ip(
            lb,
            &["addr", "add", &format!("{PUBLIC_IP}/32"), "dev", "to-c"],
        );
        ip(lb, &["link", "set", "to-c", "up"]);
        ip(lb, &["link", "add", "name", "br0", "type", "bridge"]);
        ip(
            lb,
            &["addr", "add", &format!("{LB_NODE_SIDE}/24"), "dev", "br0"],
        );
        ip(lb, &["link", "set", "br0", "up"]);
        ip(
            &self.client,
            &["addr", "add", "198.51.100.2/24", "dev", "eth0"],
        );
        ip(&self.client, &["link", "set", "eth0", "up"]);
        ip(
            &self.client,
            &[
                "route",
                "add",
                &format!("{PUBLIC_IP}/32"),
                "via",
                "198.51.100.1",
            ],
        );
        for (i, node) in self.nodes.iter().enumerate() {
            let port = format!("to-n{}", i + 1);
            ip(
                lb,
                &[
                    "link", "add", "name", &port, "type", "veth", "peer", "name", "eth0", "netns",
                    node,
                ],
            );
            ip(lb, &["link", "set", &port, "master", "br0"]);
            ip(lb, &["link", "set", &port, "up"]);
            ip(
                node,
                &[
                    "addr",
                    "add",
                    &format!("192.0.2.1{}/24", i + 1),
                    "dev",
                    "eth0",
                ],
            );
            ip(node, &["link", "set", "eth0", "up"]);
        }
        let value = format!("net.ipv4.ip_forward={}", u8::from(forwarding));
        run(&["ip", "netns", "exec", lb, "sysctl", "-q", "-w", &value]);
    }

    /// Runs `iptables -w 10 -t nat ARGS…` inside the LB namespace.
    pub fn lb_iptables(&self, args: &[&str]) -> String {
        let mut argv = vec![
            "ip", "netns", "exec", &self.lb, "iptables", "-w", "10", "-t", "nat",
        ];
        argv.extend(args);
        String::from_utf8_lossy(&run(&argv).stdout).into_owned()
    }
}

/// A helper process (this test binary, re-run in a namespace) killed on drop.
pub struct Helper {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Helper {
    /// Starts `udp_helper` in `ns` with `args` (see the helper test) and waits for its
    /// first protocol line (`VGW-READY` once a responder is bound).
    pub fn start(ns: &str, args: &str) -> (Helper, String) {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let exe = exe.to_string_lossy().into_owned();
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                &exe,
                "--exact",
                "udp_helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the UDP helper: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut helper = Helper {
            child,
            lines: BufReader::new(stdout),
        };
        let first = helper.next_line();
        (helper, first)
    }

    /// The next `VGW-` line; each helper ends within `UDP_WAIT_SECS`, which bounds
    /// this read (EOF gives an empty string).
    pub fn next_line(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            match self.lines.read_line(&mut line) {
                Ok(0) | Err(_) => return String::new(),
                // libtest may print "test udp_helper ... " in front of the first line.
                Ok(_) => {
                    if let Some(at) = line.find("VGW-") {
                        return line[at..].trim_end().to_owned();
                    }
                }
            }
        }
    }
}

/// The helper's body: `recv PORT NAME` answers one datagram on PORT with
/// `NAME saw SRC`; `send ADDR:PORT` sends one and prints the reply and its source.
pub fn helper_main(spec: &str) {
    use std::net::UdpSocket;
    use std::time::Duration;
    let wait = Some(Duration::from_secs(UDP_WAIT_SECS));
    let words: Vec<&str> = spec.split_whitespace().collect();
    match words.as_slice() {
        ["recv", port, name] => {
            let sock = UdpSocket::bind(format!("0.0.0.0:{port}")).unwrap_or_else(|e| panic!("{e}"));
            let _ = sock.set_read_timeout(wait);
            println!("VGW-READY");
            let mut buf = [0u8; 512];
            match sock.recv_from(&mut buf) {
                Ok((_, src)) => {
                    let _ = sock.send_to(format!("{name} saw {src}").as_bytes(), src);
                    println!("VGW-GOT {src}");
                }
                Err(e) => println!("VGW-TIMEOUT {e}"),
            }
        }
        ["send", target] => {
            let sock = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("{e}"));
            let _ = sock.set_read_timeout(wait);
            let _ = sock.send_to(b"rtp", target);
            let mut buf = [0u8; 512];
            match sock.recv_from(&mut buf) {
                Ok((n, src)) => {
                    println!(
                        "VGW-REPLY {} from {src}",
                        String::from_utf8_lossy(&buf[..n])
                    )
                }
                Err(e) => println!("VGW-TIMEOUT {e}"),
            }
        }
        _ => println!("VGW-BAD {spec}"),
    }
}
