//! Validation of `[gateway]` and `[[node]]` into domain types, reporting every problem.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::client_urls::url_key;
use super::error::{ConfigErrorKind, RangeError, Report};
use super::raw::{RawGateway, RawNode};
use super::types::{Gateway, Node, NodeUrl, PortRange};
use super::values::domain_name;

/// Default `login_timeout_ms`: time from TCP accept to a credentialed login.
pub const DEFAULT_LOGIN_TIMEOUT_MS: u64 = 10_000;
/// Default `connect_timeout_ms`: one attempt to reach a node (TCP + TLS + upgrade).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// The largest message mod_verto accepts; it closes the socket at 1,000,000 bytes.
pub const VERTO_MAX_MESSAGE_BYTES: u64 = 999_999;

/// Lines of the `[gateway]` keys that `Config::load` checks against the file system.
#[derive(Debug, Clone)]
pub(super) struct GatewayLines {
    pub tls_cert: usize,
    pub upstream_ca: Option<usize>,
    pub web_root: Option<usize>,
    /// The line of each `[[gateway.certificate]]`, in `Gateway::certificates` order.
    pub certificates: Vec<usize>,
}

const GATEWAY: &str = "[gateway]";

/// Validates `[gateway]`; `None` when any of its keys was reported.
pub(super) fn gateway(
    raw: RawGateway,
    dir: &Path,
    r: &mut Report<'_>,
) -> Option<(Gateway, GatewayLines)> {
    let before = r.errors.len();
    let listen = raw.listen.get_ref().parse::<SocketAddr>().ok();
    if listen.is_none() {
        let kind = ConfigErrorKind::BadListen(raw.listen.get_ref().clone());
        r.error(Some(&raw.listen.span()), Some(GATEWAY), kind);
    }
    let tls_cert = path(&raw.tls_cert, "tls_cert", dir, r);
    let tls_key = path(&raw.tls_key, "tls_key", dir, r);
    let upstream_ca = raw
        .upstream_ca
        .as_ref()
        .and_then(|p| path(p, "upstream_ca", dir, r));
    let default_domain = default_domain(raw.default_domain.as_ref(), r);
    let login_timeout = timeout(
        &raw.login_timeout_ms,
        "login_timeout_ms",
        DEFAULT_LOGIN_TIMEOUT_MS,
        r,
    );
    let connect_timeout = timeout(
        &raw.connect_timeout_ms,
        "connect_timeout_ms",
        DEFAULT_CONNECT_TIMEOUT_MS,
        r,
    );
    let max_message_bytes = message_size(&raw.max_message_bytes, r);
    let max_connections = positive_count(raw.max_connections.as_ref(), "max_connections", r);
    let max_tls_handshakes =
        positive_count(raw.max_tls_handshakes.as_ref(), "max_tls_handshakes", r);
    let allowed_origins = origins(raw.allowed_origins, r);
    let client_ip_param = param_name(raw.client_ip_param.as_ref(), r);
    let proxy_protocol =
        super::proxy_protocol::validate(raw.proxy_protocol.as_ref(), raw.proxy_protocol_from, r);
    let (certificates, certificate_lines) = super::certs::entries(raw.certificate, dir, r);
    let public_url = url_key(raw.public_url.as_ref(), "public_url", GATEWAY, r);
    let fallback_url = url_key(raw.fallback_url.as_ref(), "fallback_url", GATEWAY, r);
    let web_root = raw
        .web_root
        .as_ref()
        .and_then(|p| path(p, "web_root", dir, r));
    let lines = GatewayLines {
        web_root: raw.web_root.as_ref().map(|p| r.line(&p.span())),
        tls_cert: r.line(&raw.tls_cert.span()),
        upstream_ca: raw.upstream_ca.as_ref().map(|p| r.line(&p.span())),
        certificates: certificate_lines,
    };
    let (Some(listen), Some(tls_cert), Some(tls_key)) = (listen, tls_cert, tls_key) else {
        return None;
    };
    let gateway = Gateway {
        listen,
        tls_cert,
        tls_key,
        default_domain,
        login_timeout,
        max_message_bytes,
        connect_timeout,
        upstream_ca,
        max_connections,
        max_tls_handshakes,
        allowed_origins,
        client_ip_param,
        proxy_protocol,
        certificates,
        public_url,
        fallback_url,
        web_root,
    };
    (r.errors.len() == before).then_some((gateway, lines))
}

/// `client_ip_param`: a name FreeSWITCH can use as a variable.
fn param_name(value: Option<&Spanned<String>>, r: &mut Report<'_>) -> Option<String> {
    let value = value?;
    let name = value.get_ref();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !ok {
        let kind = ConfigErrorKind::BadParamName(name.clone());
        r.error(Some(&value.span()), Some(GATEWAY), kind);
        return None;
    }
    Some(name.clone())
}

/// `allowed_origins`; absent means any origin, which `check` warns about.
fn origins(
    value: Option<super::raw::SpannedList>,
    r: &mut Report<'_>,
) -> Option<Vec<super::OriginPattern>> {
    let Some(list) = value else {
        r.warn_file(
            "[gateway] allowed_origins is not set: any web page may open sockets to the farm \
             through its visitors' browsers (the Origin header is not checked); list your web \
             apps' origins, e.g. [\"https://app.example.com\"]",
        );
        return None;
    };
    let mut patterns = Vec::new();
    for item in list.into_inner() {
        match super::OriginPattern::parse(item.get_ref()) {
            Ok(pattern) => patterns.push(pattern),
            Err(reason) => r.error(
                Some(&item.span()),
                Some(GATEWAY),
                ConfigErrorKind::BadOrigin {
                    value: item.get_ref().clone(),
                    reason,
                },
            ),
        }
    }
    Some(patterns)
}

fn default_domain(value: Option<&Spanned<String>>, r: &mut Report<'_>) -> Option<String> {
    let value = value?;
    match domain_name(value.get_ref()) {
        Ok(domain) => Some(domain),
        Err(reason) => {
            let written = value.get_ref().clone();
            let kind = ConfigErrorKind::BadDefaultDomain {
                value: written,
                reason,
            };
            r.error(Some(&value.span()), Some(GATEWAY), kind);
            None
        }
    }
}

/// Resolves a relative path against the map's directory.
fn path(
    value: &Spanned<String>,
    key: &'static str,
    dir: &Path,
    r: &mut Report<'_>,
) -> Option<PathBuf> {
    if value.get_ref().is_empty() {
        r.error(
            Some(&value.span()),
            Some(GATEWAY),
            ConfigErrorKind::EmptyPath(key),
        );
        return None;
    }
    Some(dir.join(value.get_ref()))
}

/// A `*_ms` key of table `subject`: positive milliseconds, `default` when absent.
pub(super) fn timeout_in(
    subject: &'static str,
    value: &Option<Spanned<u64>>,
    key: &'static str,
    default: u64,
    r: &mut Report<'_>,
) -> Duration {
    match value {
        Some(ms) if *ms.get_ref() == 0 => {
            r.error(
                Some(&ms.span()),
                Some(subject),
                ConfigErrorKind::ZeroTimeout(key),
            );
            Duration::ZERO
        }
        Some(ms) if *ms.get_ref() > MAX_DURATION_MS => {
            let kind = ConfigErrorKind::DurationTooLong(key, *ms.get_ref());
            r.error(Some(&ms.span()), Some(subject), kind);
            Duration::from_millis(default)
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
        None => Duration::from_millis(default),
    }
}

/// The longest duration a map may set (a year): every deadline is `now +` one of them,
/// and a clock cannot add an unbounded one.
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3600 * 1000;

fn timeout(
    value: &Option<Spanned<u64>>,
    key: &'static str,
    default: u64,
    r: &mut Report<'_>,
) -> Duration {
    timeout_in(GATEWAY, value, key, default, r)
}

fn positive_count(
    value: Option<&Spanned<u64>>,
    key: &'static str,
    r: &mut Report<'_>,
) -> Option<usize> {
    positive_count_in(GATEWAY, value, key, r)
}

/// A count key of table `subject`: positive, `None` when absent or reported.
pub(super) fn positive_count_in(
    subject: &'static str,
    value: Option<&Spanned<u64>>,
    key: &'static str,
    r: &mut Report<'_>,
) -> Option<usize> {
    let value = value?;
    match usize::try_from(*value.get_ref()) {
        Ok(0) | Err(_) => {
            r.error(
                Some(&value.span()),
                Some(subject),
                ConfigErrorKind::ZeroCount(key),
            );
            None
        }
        Ok(n) => Some(n),
    }
}

fn message_size(value: &Option<Spanned<u64>>, r: &mut Report<'_>) -> usize {
    let Some(value) = value else {
        // Lossless: the constant is far below any usize.
        return VERTO_MAX_MESSAGE_BYTES as usize;
    };
    let bytes = *value.get_ref();
    match usize::try_from(bytes) {
        Ok(0) | Err(_) => {
            r.error(
                Some(&value.span()),
                Some(GATEWAY),
                ConfigErrorKind::BadMessageSize(bytes),
            );
            0
        }
        Ok(size) => {
            if bytes > VERTO_MAX_MESSAGE_BYTES {
                let message = format!(
                    "max_message_bytes = {bytes} exceeds mod_verto's limit of \
                     {VERTO_MAX_MESSAGE_BYTES}: the node closes the socket on such messages"
                );
                r.warn(&value.span(), GATEWAY, &message);
            }
            size
        }
    }
}

/// The validated nodes, plus every name written (so partitions naming a node whose
/// other keys are broken don't also get an "is not defined" error).
#[derive(Debug, Default)]
pub(super) struct NodeSet {
    pub nodes: Vec<Node>,
    pub names: HashSet<String>,
    /// Line of each node's `name`, for errors found by later passes.
    pub lines: HashMap<String, usize>,
}

/// A node's RTP range with where it was written, for the overlap check.
struct RtpSpan {
    name: String,
    range: PortRange,
    span: Range<usize>,
}

/// Validates every `[[node]]`, then checks names are unique and RTP ranges disjoint.
pub(super) fn nodes(raw: Vec<RawNode>, r: &mut Report<'_>) -> NodeSet {
    let mut set = NodeSet::default();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut rtp: Vec<RtpSpan> = Vec::new();
    for raw in raw {
        let before = r.errors.len();
        let name = raw.name.get_ref().clone();
        let subject = format!("node {name:?}");
        let line = r.line(&raw.name.span());
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !name_ok {
            r.error(
                Some(&raw.name.span()),
                Some(&subject),
                ConfigErrorKind::BadNodeName(name.clone()),
            );
        } else if let Some(&first) = first_line.get(&name) {
            let kind = ConfigErrorKind::DuplicateNode {
                name: name.clone(),
                first,
            };
            r.error(Some(&raw.name.span()), Some(&subject), kind);
        } else {
            first_line.insert(name.clone(), line);
        }
        set.names.insert(name.clone());
        let node = node_fields(raw, name, &subject, r);
        if let (Some(node), true) = (node, r.errors.len() == before) {
            set.nodes.push(node.0);
            rtp.extend(node.1);
        }
    }
    rtp_overlaps(&rtp, r);
    set.lines = first_line;
    set
}

fn node_fields(
    raw: RawNode,
    name: String,
    subject: &str,
    r: &mut Report<'_>,
) -> Option<(Node, Option<RtpSpan>)> {
    let url = raw.verto_url.get_ref();
    let verto_url = url.parse::<NodeUrl>().map_err(|reason| {
        let kind = ConfigErrorKind::BadUrl {
            url: url.clone(),
            reason,
        };
        r.error(Some(&raw.verto_url.span()), Some(subject), kind);
    });
    let rtp_ip = raw.rtp_ip.as_ref().and_then(|ip| {
        let parsed = ip.get_ref().parse::<IpAddr>().ok();
        if parsed.is_none() {
            r.error(
                Some(&ip.span()),
                Some(subject),
                ConfigErrorKind::BadRtpIp(ip.get_ref().clone()),
            );
        }
        parsed
    });
    let rtp_ports = raw.rtp_ports.as_ref().and_then(|ports| {
        rtp_range(ports.get_ref())
            .map_err(|reason| {
                let value = ports.get_ref().clone();
                let kind = ConfigErrorKind::BadRange {
                    key: "rtp_ports",
                    value,
                    reason,
                };
                r.error(Some(&ports.span()), Some(subject), kind);
            })
            .ok()
    });
    let rtp = rtp_ports
        .zip(raw.rtp_ports.as_ref())
        .map(|(range, ports)| RtpSpan {
            name: name.clone(),
            range,
            span: ports.span(),
        });
    let node = Node {
        name,
        verto_url: verto_url.ok()?,
        rtp_ip,
        rtp_ports,
    };
    Some((node, rtp))
}

/// Lowest port an RTP range may use: FreeSWITCH's RTP lives in unprivileged ports, and
/// DNATing a system service's port to a node would hijack it on the load balancer.
pub const RTP_MIN_PORT: u16 = 1024;

/// Parses `rtp_ports`: a port range lying within `RTP_MIN_PORT`-65535.
fn rtp_range(text: &str) -> Result<PortRange, RangeError> {
    match text.parse::<PortRange>() {
        Ok(range) if range.start >= RTP_MIN_PORT => Ok(range),
        Ok(_) | Err(RangeError::PortZero | RangeError::TooLarge(_)) => Err(RangeError::RtpBounds),
        Err(other) => Err(other),
    }
}

/// Reports each node whose range overlaps an earlier node's: every node's RTP is
/// reached through the same public address, so equal ports would collide whatever
/// the `rtp_ip`.
fn rtp_overlaps(rtp: &[RtpSpan], r: &mut Report<'_>) {
    for (i, later) in rtp.iter().enumerate() {
        for earlier in &rtp[..i] {
            if later.range.overlaps(&earlier.range) {
                let kind = ConfigErrorKind::RtpOverlap {
                    mine: later.range.to_string(),
                    theirs: earlier.range.to_string(),
                    other: earlier.name.clone(),
                    line: r.line(&earlier.span),
                };
                r.error(
                    Some(&later.span),
                    Some(&format!("node {:?}", later.name)),
                    kind,
                );
            }
        }
    }
}
