//! Validation of `[media]` against the nodes and partitions: everything the NAT rules
//! and the generated FreeSWITCH settings rely on (PROTOCOL.md §9).

use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;

use super::error::{ConfigErrorKind, Report};
use super::raw::RawMedia;
use super::types::{Media, Node, Partition};
use super::validate::NodeSet;

const MEDIA: &str = "[media]";

/// Validates `[media]` and what it requires of the nodes; `None` when the table is
/// absent or any of it was reported.
pub(super) fn media(
    raw: Option<(RawMedia, Range<usize>)>,
    nodes: &NodeSet,
    partitions: &[Partition],
    r: &mut Report<'_>,
) -> Option<Media> {
    let (raw, table_span) = raw?;
    let before = r.errors.len();
    let manage_iptables = raw.manage_iptables.as_ref().is_some_and(|m| *m.get_ref());
    let public_ip = match &raw.public_ip {
        Some(ip) => unicast(ip, "public_ip", r),
        None => {
            let kind = if manage_iptables {
                ConfigErrorKind::ManageWithoutPublicIp
            } else {
                ConfigErrorKind::NoPublicIp
            };
            r.error(Some(&table_span), Some(MEDIA), kind);
            None
        }
    };
    let snat_ip = raw.snat_ip.as_ref().and_then(|ip| {
        let addr = unicast(ip, "snat_ip", r)?;
        if let Some(public_ip) = public_ip {
            if let Some(kind) = mixed("snat_ip", addr, public_ip) {
                r.error(Some(&ip.span()), Some(MEDIA), kind);
            }
        }
        Some(addr)
    });
    let iptables = binary(raw.iptables.as_ref(), public_ip, r);
    for node in &nodes.nodes {
        node_media(node, nodes, partitions, public_ip, r);
    }
    let media = Media {
        public_ip: public_ip?,
        snat_ip,
        manage_iptables,
        iptables: iptables?,
    };
    (r.errors.len() == before).then_some(media)
}

/// Parses an address that can be a packet's source or destination.
fn unicast(value: &Spanned<String>, key: &'static str, r: &mut Report<'_>) -> Option<IpAddr> {
    let parsed = value.get_ref().parse::<IpAddr>().ok();
    let usable = parsed.filter(|ip| {
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        !(ip.is_unspecified() || ip.is_multicast() || broadcast)
    });
    if usable.is_none() {
        let kind = ConfigErrorKind::BadMediaIp {
            key,
            value: value.get_ref().clone(),
        };
        r.error(Some(&value.span()), Some(MEDIA), kind);
    }
    usable
}

/// The iptables binary: as written, else `iptables` or `ip6tables` by `public_ip`'s version.
fn binary(
    value: Option<&Spanned<String>>,
    public_ip: Option<IpAddr>,
    r: &mut Report<'_>,
) -> Option<String> {
    let Some(value) = value else {
        let v6 = public_ip.is_some_and(|ip| ip.is_ipv6());
        return Some(if v6 { "ip6tables" } else { "iptables" }.to_owned());
    };
    let text = value.get_ref();
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let kind = ConfigErrorKind::BadIptablesBinary(text.clone());
        r.error(Some(&value.span()), Some(MEDIA), kind);
        return None;
    }
    Some(text.clone())
}

/// Checks that a node serving a partition has an RTP range, and that a node with one
/// has an RTP address of `public_ip`'s IP version.
fn node_media(
    node: &Node,
    nodes: &NodeSet,
    partitions: &[Partition],
    public_ip: Option<IpAddr>,
    r: &mut Report<'_>,
) {
    let line = nodes.lines.get(&node.name).copied();
    let subject = format!("node {:?}", node.name);
    if node.rtp_ports.is_none() {
        let serving = partitions.iter().find(|p| p.nodes.contains(&node.name));
        if let Some(partition) = serving {
            let kind = ConfigErrorKind::MediaNoRtpPorts(partition.name.clone());
            r.error_at_line(line, Some(&subject), kind);
        }
        return;
    }
    match (node.media_ip(), public_ip) {
        (None, _) => {
            let kind = ConfigErrorKind::MediaNoRtpIp(node.verto_url.host.clone());
            r.error_at_line(line, Some(&subject), kind);
        }
        (Some(ip), Some(public_ip)) => {
            if let Some(kind) = mixed("rtp_ip", ip, public_ip) {
                r.error_at_line(line, Some(&subject), kind);
            }
        }
        (Some(_), None) => {}
    }
}

/// The error for an address of another IP version than `public_ip`, if it is one.
fn mixed(key: &'static str, value: IpAddr, public_ip: IpAddr) -> Option<ConfigErrorKind> {
    let version = |ip: IpAddr| if ip.is_ipv4() { 4 } else { 6 };
    (value.is_ipv4() != public_ip.is_ipv4()).then(|| ConfigErrorKind::MixedFamilies {
        key,
        value,
        public_ip,
        got: version(value),
        want: version(public_ip),
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::tests::{error, errors, loaded, map, PARTITION};
    use super::super::Media;

    /// The shared test map (fs1 by IP, fs2 by DNS name without rtp_ip) plus `media`.
    fn with_media(media: &str) -> String {
        map("", &format!("{PARTITION}\n[media]\n{media}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// fs2 gets an rtp_ip, so the shared map is valid with `[media]`.
    fn fixed(media: &str) -> String {
        with_media(media).replace(
            "rtp_ports = \"10400-10799\"",
            "rtp_ip = \"192.0.2.12\"\nrtp_ports = \"10400-10799\"",
        )
    }

    #[test]
    fn media_table_is_read_with_defaults() {
        let config = loaded(&fixed("public_ip = \"203.0.113.10\"\n")).config;
        assert_eq!(
            config.media,
            Some(Media {
                public_ip: ip("203.0.113.10"),
                snat_ip: None,
                manage_iptables: false,
                iptables: "iptables".into(),
            })
        );
        let text = "public_ip = \"203.0.113.10\"\nsnat_ip = \"192.0.2.1\"\nmanage_iptables = true\niptables = \"iptables-legacy\"\n";
        let media = loaded(&fixed(text)).config.media;
        assert_eq!(
            media.as_ref().and_then(|m| m.snat_ip),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            media.map(|m| (m.manage_iptables, m.iptables)),
            Some((true, "iptables-legacy".into()))
        );
    }

    #[test]
    fn a_map_without_media_table_has_no_media() {
        assert_eq!(loaded(&map("", PARTITION)).config.media, None);
    }

    #[test]
    fn ipv6_public_ip_defaults_to_ip6tables() {
        let text = map(
            "",
            &format!("{PARTITION}\n[media]\npublic_ip = \"2001:db8::10\"\n"),
        )
        .replace("\"192.0.2.11\"", "\"2001:db8::11\"")
        .replace(
            "rtp_ports = \"10400-10799\"",
            "rtp_ip = \"2001:db8::12\"\nrtp_ports = \"10400-10799\"",
        );
        let media = loaded(&text).config.media;
        assert_eq!(media.map(|m| m.iptables), Some("ip6tables".into()));
    }

    #[test]
    fn rtp_ip_defaults_to_an_ip_literal_verto_host() {
        let config = loaded(
            &fixed("public_ip = \"203.0.113.10\"\n").replace("rtp_ip = \"192.0.2.11\"\n", ""),
        )
        .config;
        let fs1 = config.node("fs1").map(|n| (n.rtp_ip, n.media_ip()));
        assert_eq!(fs1, Some((None, Some(ip("192.0.2.11")))));
    }

    #[test]
    fn dns_verto_host_without_rtp_ip_is_an_error_with_media() {
        let e = error(&with_media("public_ip = \"203.0.113.10\"\n"));
        assert_eq!(
            e,
            "maps/t.toml:13: node \"fs2\": verto_url host \"fs2.example.net\" is not an IP \
             address, so rtp_ip cannot default to it: set rtp_ip to the address of the \
             node's RTP sockets"
        );
    }

    #[test]
    fn manage_iptables_without_public_ip_is_an_error() {
        let e = error(&fixed("manage_iptables = true\n"));
        assert!(
            e.starts_with("maps/t.toml:24: [media]: manage_iptables = true needs public_ip"),
            "{e}"
        );
        let e = error(&fixed("snat_ip = \"192.0.2.1\"\n"));
        assert!(e.contains(":24: [media]: [media] needs public_ip"), "{e}");
    }

    #[test]
    fn a_node_of_a_partition_without_rtp_ports_is_an_error_with_media() {
        let text =
            fixed("public_ip = \"203.0.113.10\"\n").replace("rtp_ports = \"10400-10799\"\n", "");
        let e = error(&text);
        assert!(
            e.starts_with(
                "maps/t.toml:13: node \"fs2\": serves partition \"acme\" but has no rtp_ports"
            ),
            "{e}"
        );
        // Without [media] the same map is fine: nothing needs the range.
        loaded(&map("", PARTITION).replace("rtp_ports = \"10400-10799\"\n", ""));
    }

    #[test]
    fn a_node_outside_every_partition_needs_no_rtp_ports() {
        let extra = "\n[[node]]\nname = \"spare\"\nverto_url = \"ws://fs9.example.net\"\n";
        let text = format!("{}{extra}", fixed("public_ip = \"203.0.113.10\"\n"));
        assert_eq!(loaded(&text).config.nodes.len(), 3);
    }

    #[test]
    fn bad_media_values_are_errors() {
        let text =
            fixed("public_ip = \"0.0.0.0\"\nsnat_ip = \"224.0.0.1\"\niptables = \"ip tables\"\n");
        let e = errors(&text);
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(
            e[0].ends_with(
                "[media]: public_ip = \"0.0.0.0\" is not a unicast IP address (e.g. \"203.0.113.10\")"
            ),
            "{e:#?}"
        );
        assert!(
            e[1].contains("snat_ip = \"224.0.0.1\" is not a unicast"),
            "{e:#?}"
        );
        assert!(
            e[2].contains("iptables = \"ip tables\": give one binary"),
            "{e:#?}"
        );
        let e = error(&fixed("public_ip = \"203.0.113.10\"\nmanage = true\n"));
        assert!(e.contains("[media]: unknown field `manage`"), "{e}");
    }

    #[test]
    fn addresses_of_another_ip_version_than_public_ip_are_errors() {
        let text = fixed("public_ip = \"203.0.113.10\"\nsnat_ip = \"2001:db8::1\"\n")
            .replace("rtp_ip = \"192.0.2.12\"", "rtp_ip = \"2001:db8::12\"");
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].starts_with("maps/t.toml:13: node \"fs2\": rtp_ip 2001:db8::12 is IPv6 but public_ip 203.0.113.10 is IPv4"),
            "{e:#?}"
        );
        assert!(
            e[1].contains("[media]: snat_ip 2001:db8::1 is IPv6"),
            "{e:#?}"
        );
    }
}
