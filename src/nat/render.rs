//! Rendering plans as `iptables-restore` batches and as a human summary (pure).

use std::fmt::Write as _;

use super::diff::{Diff, Owned};
use super::live::{join_args, normalize, LiveRule};
use super::plan::{Plan, Rule, Target};
use super::{DNAT_CHAIN, SNAT_CHAIN};

impl Rule {
    /// The rule's arguments after the chain name, in the order `iptables -S` prints them.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |parts: &[&str]| args.extend(parts.iter().map(|s| s.to_string()));
        if let Some(dst) = self.dst {
            push(&["-d", &host(dst)]);
        }
        push(&["-p", "udp"]);
        if let Some(ports) = self.ports {
            push(&[
                "-m",
                "udp",
                "--dport",
                &format!("{}:{}", ports.start, ports.end),
            ]);
        }
        if let Some(orig) = self.orig_dst {
            push(&[
                "-m",
                "conntrack",
                "--ctstate",
                "DNAT",
                "--ctorigdst",
                &host(orig),
            ]);
        }
        push(&["-m", "comment", "--comment", &self.tag]);
        match &self.target {
            Target::Dnat(to) => push(&["-j", "DNAT", "--to-destination", &to.to_string()]),
            Target::Snat(to) => push(&["-j", "SNAT", "--to-source", &to.to_string()]),
            Target::Masquerade => push(&["-j", "MASQUERADE"]),
            Target::Jump(chain) => push(&["-j", chain]),
        }
        args
    }

    /// The rule as `iptables-restore` would append it: `-A CHAIN …`.
    pub fn line(&self) -> String {
        self.as_live().line()
    }

    /// The rule as [`super::live::parse`] reads it back, for comparison.
    pub fn as_live(&self) -> LiveRule {
        LiveRule {
            chain: self.chain.to_owned(),
            args: normalize(self.args()),
        }
    }

    /// The arguments quoted for a restore line (with the host mask iptables prints).
    fn quoted_args(&self) -> String {
        join_args(&self.args())
    }
}

/// An address with its full host mask, as `-d` takes and prints it.
fn host(ip: std::net::IpAddr) -> String {
    let mask = if ip.is_ipv4() { 32 } else { 128 };
    format!("{ip}/{mask}")
}

/// The batch that installs `plan` on a table where vertogw has nothing yet; `apply`
/// sends [`render_batch`] of the live difference instead, which leaves out jumps
/// already present.
pub fn render(plan: &Plan) -> String {
    let everything = Diff {
        add_jumps: plan.jumps.clone(),
        ..Diff::default()
    };
    render_batch(plan, &everything)
}

/// The `iptables-restore --noflush` batch that turns the live table into `plan`.
///
/// Declaring a chain (`:VERTOGW-DNAT - [0:0]`) in `--noflush` mode creates it or
/// empties it, and touches no other chain, so vertogw's chains are rebuilt whole in
/// the same transaction that fixes the jumps: a failure changes nothing.
pub fn render_batch(plan: &Plan, diff: &Diff) -> String {
    let mut out = String::from("*nat\n");
    for chain in [DNAT_CHAIN, SNAT_CHAIN] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for rule in &plan.rules {
        let _ = writeln!(out, "-A {} {}", rule.chain, rule.quoted_args());
    }
    for stale in &diff.stale_jumps {
        let _ = writeln!(out, "-D {}", &stale.line()[3..]);
    }
    // First in their chains, so an earlier ACCEPT or DNAT of another tool cannot
    // shadow the media path.
    for jump in &diff.add_jumps {
        let _ = writeln!(out, "-I {} 1 {}", jump.chain, jump.quoted_args());
    }
    out.push_str("COMMIT\n");
    out
}

/// The batch that removes exactly what vertogw owns: the jumps into its chains, then
/// the chains (emptied by declaring them, then deleted).
pub fn render_flush(owned: &Owned) -> String {
    let mut out = String::from("*nat\n");
    for jump in &owned.jumps {
        let _ = writeln!(out, "-D {}", &jump.line()[3..]);
    }
    for chain in &owned.chains {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for chain in &owned.chains {
        let _ = writeln!(out, "-X {chain}");
    }
    out.push_str("COMMIT\n");
    out
}

/// Per node: the public range and where it goes; then how replies are rewritten.
pub fn summary(plan: &Plan) -> String {
    let mut out = String::new();
    let public = plan.public_ip;
    let width = plan.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "UDP to {public} is forwarded by port range, ports unchanged ({} nodes):",
        plan.nodes.len()
    );
    for n in &plan.nodes {
        let _ = writeln!(
            out,
            "  {:<width$}  {}:{}  ->  {}:{}  ({} ports)",
            n.name,
            public,
            n.ports,
            n.rtp_ip,
            n.ports,
            n.ports.len()
        );
    }
    let source = match plan.snat_ip {
        Some(ip) => format!("{ip} (SNAT)"),
        None => "the load balancer's address towards the node (MASQUERADE)".to_owned(),
    };
    let _ = writeln!(
        out,
        "Forwarded packets leave with source {source},\nso nodes reply through the load \
         balancer and browsers see the replies come from {public}:port."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::plan::{plan, tests::config, tests::MAP};
    use crate::testutil::golden;

    fn the_plan(text: &str) -> Plan {
        plan(&config(text)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn restore_batch_matches_the_golden_file() {
        golden("nat_plan.rules", &render(&the_plan(MAP)));
    }

    #[test]
    fn masquerade_batch_matches_the_golden_file() {
        let map = MAP.replace("snat_ip = \"192.0.2.1\"\n", "");
        golden("nat_plan_masquerade.rules", &render(&the_plan(&map)));
    }

    #[test]
    fn ipv6_batch_matches_the_golden_file() {
        let map = MAP
            .replace("203.0.113.10", "2001:db8:ffff::10")
            .replace("snat_ip = \"192.0.2.1\"", "snat_ip = \"2001:db8::1\"")
            .replace("ws://192.0.2.11:8081", "ws://[2001:db8::11]:8081")
            .replace("ws://192.0.2.12:8081", "ws://[2001:db8::12]:8081")
            .replace("rtp_ip = \"192.0.2.12\"", "rtp_ip = \"2001:db8::12\"");
        let plan = the_plan(&map);
        assert_eq!(plan.iptables, "ip6tables");
        golden("nat_plan_v6.rules", &render(&plan));
    }

    #[test]
    fn summary_matches_the_golden_file() {
        golden("nat_plan.summary", &summary(&the_plan(MAP)));
    }

    #[test]
    fn rendered_rules_read_back_as_themselves() {
        let plan = the_plan(MAP);
        for rule in plan.rules.iter().chain(&plan.jumps) {
            let live = crate::nat::live::parse(&rule.line()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(live.rules, [rule.as_live()]);
        }
    }

    #[test]
    fn flush_batch_deletes_jumps_before_chains() {
        let owned = Owned {
            jumps: vec![the_plan(MAP).jumps[0].as_live()],
            chains: vec![DNAT_CHAIN.to_owned()],
            rules: 2,
        };
        assert_eq!(
            render_flush(&owned),
            "*nat\n-D PREROUTING -d 203.0.113.10 -p udp -m comment --comment \"vertogw:jump\" \
             -j VERTOGW-DNAT\n:VERTOGW-DNAT - [0:0]\n-X VERTOGW-DNAT\nCOMMIT\n"
        );
    }
}
