//! The desired NAT rules for a map, as plain data: one DNAT and one SNAT rule per node
//! with an RTP range, and the jumps into vertogw's chains.

use std::net::IpAddr;

use crate::config::{Config, PortRange};

use super::{NatError, DNAT_CHAIN, SNAT_CHAIN, TAG_PREFIX};

/// What a rule does with a matching packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Rewrite the destination address (ports stay: FreeSWITCH advertises its real port).
    Dnat(IpAddr),
    /// Rewrite the source address to this one.
    Snat(IpAddr),
    /// Rewrite the source address to the outgoing interface's address.
    Masquerade,
    /// Continue in one of vertogw's chains.
    Jump(&'static str),
}

/// One rule of the `nat` table, in the order iptables prints its parts.
///
/// Only UDP is matched: FreeSWITCH's RTP/RTCP, and the ICE (STUN) and DTLS that
/// WebRTC runs on the same ports, are all UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The chain it lives in.
    pub chain: &'static str,
    /// `-d`: destination address.
    pub dst: Option<IpAddr>,
    /// `--dport`: destination ports.
    pub ports: Option<PortRange>,
    /// `--ctorigdst` with `--ctstate DNAT`: only connections DNAT'ed from this address.
    pub orig_dst: Option<IpAddr>,
    /// The comment naming the owner, e.g. `vertogw:node=fs1`.
    pub tag: String,
    /// `-j`.
    pub target: Target,
}

/// One node's forwarding, for the human summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNat {
    /// The node's name.
    pub name: String,
    /// Its RTP range, the same on both sides of the load balancer.
    pub ports: PortRange,
    /// Where the range is forwarded.
    pub rtp_ip: IpAddr,
}

/// Everything vertogw wants in the `nat` table for a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The iptables binary (its `-restore` sibling applies the batch).
    pub iptables: String,
    /// The address browsers send RTP to.
    pub public_ip: IpAddr,
    /// The source replies get on the node side; `None` = MASQUERADE.
    pub snat_ip: Option<IpAddr>,
    /// Per node, in map order.
    pub nodes: Vec<NodeNat>,
    /// The rules of [`DNAT_CHAIN`] then [`SNAT_CHAIN`].
    pub rules: Vec<Rule>,
    /// The jumps from `PREROUTING`, `OUTPUT` and `POSTROUTING` into them.
    pub jumps: Vec<Rule>,
}

/// The comment on the jump rules.
pub const JUMP_TAG: &str = "vertogw:jump";

/// Builds the rules a validated map asks for: every node with `rtp_ports` gets its
/// range forwarded, whether or not a partition uses it yet.
pub fn plan(config: &Config) -> Result<Plan, NatError> {
    let media = config.media.as_ref().ok_or(NatError::NoMedia)?;
    let mut nodes = Vec::new();
    for node in &config.nodes {
        let Some(ports) = node.rtp_ports else {
            continue;
        };
        let rtp_ip = node
            .media_ip()
            .ok_or_else(|| NatError::NoRtpIp(node.name.clone()))?;
        nodes.push(NodeNat {
            name: node.name.clone(),
            ports,
            rtp_ip,
        });
    }
    let dnat = nodes.iter().map(|n| Rule {
        chain: DNAT_CHAIN,
        dst: Some(media.public_ip),
        ports: Some(n.ports),
        orig_dst: None,
        tag: node_tag(&n.name),
        target: Target::Dnat(n.rtp_ip),
    });
    // Only what was DNAT'ed from public_ip is SNAT'ed: other traffic to a node's RTP
    // ports that happens to be routed through the load balancer keeps its source.
    let snat = nodes.iter().map(|n| Rule {
        chain: SNAT_CHAIN,
        dst: Some(n.rtp_ip),
        ports: Some(n.ports),
        orig_dst: Some(media.public_ip),
        tag: node_tag(&n.name),
        target: media.snat_ip.map_or(Target::Masquerade, Target::Snat),
    });
    let rules = dnat.chain(snat).collect();
    Ok(Plan {
        iptables: media.iptables.clone(),
        public_ip: media.public_ip,
        snat_ip: media.snat_ip,
        nodes,
        rules,
        jumps: jumps(media.public_ip),
    })
}

/// `PREROUTING` catches browsers' packets, `OUTPUT` those the load balancer itself sends
/// to its public address (probes, local tests); `POSTROUTING` sends everything UDP
/// through the SNAT chain, whose rules are precise.
fn jumps(public_ip: IpAddr) -> Vec<Rule> {
    let jump = |chain, dst, to| Rule {
        chain,
        dst,
        ports: None,
        orig_dst: None,
        tag: JUMP_TAG.to_owned(),
        target: Target::Jump(to),
    };
    vec![
        jump("PREROUTING", Some(public_ip), DNAT_CHAIN),
        jump("OUTPUT", Some(public_ip), DNAT_CHAIN),
        jump("POSTROUTING", None, SNAT_CHAIN),
    ]
}

/// The comment tagging a node's rules.
pub fn node_tag(node: &str) -> String {
    format!("{TAG_PREFIX}node={node}")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;

    pub(crate) const MAP: &str = include_str!("../../tests/golden/nat_map.toml");

    pub(crate) fn config(text: &str) -> Config {
        match Config::parse(text, Path::new("nat_map.toml")) {
            Ok(loaded) => loaded.config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_node_with_a_range_gets_one_dnat_and_one_snat_rule() {
        let plan = plan(&config(MAP)).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["fs1", "fs2"]);
        assert_eq!(plan.rules.len(), 4);
        assert_eq!(
            plan.rules[0].target,
            Target::Dnat("192.0.2.11".parse().unwrap())
        );
        assert_eq!(
            plan.rules[3].target,
            Target::Snat("192.0.2.1".parse().unwrap())
        );
        assert_eq!(plan.rules[3].tag, "vertogw:node=fs2");
        assert_eq!(plan.jumps.len(), 3);
    }

    #[test]
    fn without_snat_ip_replies_are_masqueraded() {
        let plan = plan(&config(&MAP.replace("snat_ip = \"192.0.2.1\"\n", "")));
        let targets: Vec<Target> = plan
            .map(|p| p.rules.into_iter().map(|r| r.target).collect())
            .unwrap_or_default();
        assert_eq!(targets[2..], [Target::Masquerade, Target::Masquerade]);
    }

    #[test]
    fn a_map_without_media_has_no_plan() {
        let text = MAP.split("[media]").next().unwrap_or_default();
        assert!(matches!(plan(&config(text)), Err(NatError::NoMedia)));
    }
}
