//! `[gateway] proxy_protocol` and `proxy_protocol_from`: whether connections from a TCP
//! load balancer start with a PROXY protocol header naming the client, and from which
//! addresses such connections come.

use std::net::IpAddr;

use ipnet::IpNet;
use toml::Spanned;

use super::error::{ConfigErrorKind, Report};
use super::limits::{canonical_ip, network};
use super::raw::SpannedList;

const GATEWAY: &str = "[gateway]";

/// The PROXY protocol version a load balancer sends (HAProxy's specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text header (`PROXY TCP4 … \r\n`): HAProxy's `send-proxy`, nginx stream's
    /// `proxy_protocol on`.
    V1,
    /// The binary header: HAProxy's `send-proxy-v2`, and most cloud load balancers.
    V2,
}

impl std::fmt::Display for ProxyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyVersion::V1 => "v1",
            ProxyVersion::V2 => "v2",
        })
    }
}

/// Whether the gateway reads a PROXY protocol header, and from whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// No header: the TCP peer is the client (the default).
    #[default]
    Off,
    /// Connections from `from` must open with a header of `version`, whose source
    /// address is then the client's; connections from anywhere else are refused.
    On {
        /// The header version the balancers send.
        version: ProxyVersion,
        /// The balancers' networks (host bits cleared); never empty.
        from: Vec<IpNet>,
    },
}

/// Who a connection's TCP peer is, as [`ProxyProtocol::sender`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySender {
    /// The protocol is off: the peer is the client.
    Client,
    /// A listed balancer: a header of this version comes first.
    Balancer(ProxyVersion),
    /// The protocol is on and the peer is not a listed balancer: refused.
    Unlisted,
}

impl ProxyProtocol {
    /// Who `peer` is: a client, a balancer, or a sender to refuse.
    pub fn sender(&self, peer: IpAddr) -> ProxySender {
        match self {
            ProxyProtocol::Off => ProxySender::Client,
            ProxyProtocol::On { version, from } => {
                let peer = canonical_ip(peer);
                if from.iter().any(|net| net.contains(&peer)) {
                    ProxySender::Balancer(*version)
                } else {
                    ProxySender::Unlisted
                }
            }
        }
    }
}

/// Validates the two keys together; `Off` when either was reported.
pub(super) fn validate(
    mode: Option<&Spanned<String>>,
    from: Option<SpannedList>,
    r: &mut Report<'_>,
) -> ProxyProtocol {
    let version = match mode.map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "off")) => None,
        Some((_, "v1")) => Some(ProxyVersion::V1),
        Some((_, "v2")) => Some(ProxyVersion::V2),
        Some((m, other)) => {
            let kind = ConfigErrorKind::BadProxyProtocol(other.to_owned());
            r.error(Some(&m.span()), Some(GATEWAY), kind);
            return ProxyProtocol::Off;
        }
    };
    match (version, from) {
        (None, None) => ProxyProtocol::Off,
        // An error rather than a warning: with the protocol off, every client behind
        // the balancer would share its one address, so per-address limits and login
        // cooldowns would refuse everyone at once. A list without the switch is far
        // more likely a forgotten switch than a wish.
        (None, Some(list)) => {
            r.error(
                Some(&list.span()),
                Some(GATEWAY),
                ConfigErrorKind::ProxyFromWithoutProtocol,
            );
            ProxyProtocol::Off
        }
        (Some(version), list) => {
            let span = list.as_ref().map(Spanned::span);
            let Some(from) = list.map_or(Some(Vec::new()), |l| balancers(l, r)) else {
                return ProxyProtocol::Off;
            };
            if from.is_empty() {
                let at = span.or_else(|| mode.map(Spanned::span));
                let kind = ConfigErrorKind::ProxyProtocolWithoutFrom(version.to_string());
                r.error(at.as_ref(), Some(GATEWAY), kind);
                return ProxyProtocol::Off;
            }
            ProxyProtocol::On { version, from }
        }
    }
}

/// The balancers' networks, `None` when an entry was reported. An entry covering every
/// address is allowed with a warning (any host could then claim to be any client).
fn balancers(list: SpannedList, r: &mut Report<'_>) -> Option<Vec<IpNet>> {
    let mut nets = Vec::new();
    let mut bad = false;
    for item in list.into_inner() {
        match network(item.get_ref()) {
            Some(net) => {
                if net.prefix_len() == 0 {
                    let message = format!(
                        "proxy_protocol_from includes {net}: any host that reaches the \
                         listener can claim to be any client; list only the load balancers"
                    );
                    r.warn(&item.span(), GATEWAY, &message);
                }
                nets.push(net);
            }
            None => {
                bad = true;
                let kind = ConfigErrorKind::BadProxySender(item.get_ref().clone());
                r.error(Some(&item.span()), Some(GATEWAY), kind);
            }
        }
    }
    (!bad).then_some(nets)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const HEAD: &str = "[gateway]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nallowed_origins = [\"*\"]\n";

    fn parse(keys: &str) -> Result<crate::config::Loaded, String> {
        Config::parse(&format!("{HEAD}{keys}"), Path::new("map.toml")).map_err(|e| e.to_string())
    }

    fn proxy(keys: &str) -> ProxyProtocol {
        match parse(keys) {
            Ok(loaded) => loaded.config.gateway.proxy_protocol,
            Err(e) => panic!("{keys}: {e}"),
        }
    }

    fn error(keys: &str) -> String {
        match parse(keys) {
            Ok(_) => panic!("{keys} was accepted"),
            Err(e) => e,
        }
    }

    fn net(text: &str) -> IpNet {
        network(text).unwrap_or_default()
    }

    #[test]
    fn the_protocol_is_off_unless_the_map_turns_it_on() {
        assert_eq!(proxy(""), ProxyProtocol::Off);
        assert_eq!(proxy("proxy_protocol = \"off\"\n"), ProxyProtocol::Off);
    }

    #[test]
    fn a_version_with_balancers_turns_it_on_for_those_networks() {
        let on = proxy(
            "proxy_protocol = \"v2\"\nproxy_protocol_from = [\"10.0.0.5\", \"10.0.1.7/24\", \"2001:db8::/32\"]\n",
        );
        let expected = ProxyProtocol::On {
            version: ProxyVersion::V2,
            from: vec![net("10.0.0.5/32"), net("10.0.1.0/24"), net("2001:db8::/32")],
        };
        assert_eq!(on, expected);
        let v1 = proxy("proxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1\"]\n");
        assert!(matches!(
            v1,
            ProxyProtocol::On {
                version: ProxyVersion::V1,
                ..
            }
        ));
    }

    #[test]
    fn an_unknown_version_is_an_error_naming_the_choices() {
        let e = error("proxy_protocol = \"v3\"\nproxy_protocol_from = [\"10.0.0.5\"]\n");
        assert!(
            e.contains("map.toml:6: [gateway]: proxy_protocol = \"v3\""),
            "{e}"
        );
        assert!(e.contains("\"off\", \"v1\" or \"v2\""), "{e}");
        let e = error("proxy_protocol = true\n");
        assert!(e.contains("map.toml:6: [gateway]: invalid type"), "{e}");
    }

    #[test]
    fn a_version_without_balancers_is_an_error() {
        let e = error("proxy_protocol = \"v2\"\n");
        assert!(
            e.contains("map.toml:6: [gateway]: proxy_protocol = \"v2\" needs proxy_protocol_from"),
            "{e}"
        );
        let e = error("proxy_protocol = \"v1\"\nproxy_protocol_from = []\n");
        assert!(
            e.contains("map.toml:7: [gateway]: proxy_protocol = \"v1\" needs"),
            "{e}"
        );
    }

    #[test]
    fn balancers_without_a_version_are_an_error() {
        for keys in [
            "proxy_protocol_from = [\"10.0.0.5\"]\n",
            "proxy_protocol = \"off\"\nproxy_protocol_from = [\"10.0.0.5\"]\n",
        ] {
            let e = error(keys);
            assert!(
                e.contains("proxy_protocol_from is set but proxy_protocol is \"off\""),
                "{e}"
            );
        }
    }

    #[test]
    fn a_balancer_that_is_not_a_network_is_an_error_of_its_own() {
        let e = error("proxy_protocol = \"v2\"\nproxy_protocol_from = [\"10.0.0.300\"]\n");
        assert!(
            e.contains("proxy_protocol_from: \"10.0.0.300\" is not a network"),
            "{e}"
        );
        assert!(!e.contains("needs proxy_protocol_from"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn a_balancer_list_covering_every_address_is_accepted_with_a_warning() {
        let loaded = parse("proxy_protocol = \"v1\"\nproxy_protocol_from = [\"0.0.0.0/0\"]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("proxy_protocol_from includes 0.0.0.0/0")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn only_listed_senders_are_balancers_and_mapped_addresses_count_as_ipv4() {
        let on = ProxyProtocol::On {
            version: ProxyVersion::V1,
            from: vec![net("10.0.1.0/24")],
        };
        let ip = |t: &str| t.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            on.sender(ip("10.0.1.9")),
            ProxySender::Balancer(ProxyVersion::V1)
        );
        assert_eq!(
            on.sender(ip("::ffff:10.0.1.9")),
            ProxySender::Balancer(ProxyVersion::V1)
        );
        assert_eq!(on.sender(ip("10.0.2.9")), ProxySender::Unlisted);
        assert_eq!(
            ProxyProtocol::Off.sender(ip("10.0.2.9")),
            ProxySender::Client
        );
    }
}
