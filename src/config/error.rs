//! Located map errors (file, line, table) and the collector validation reports into.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use vertogw_net::tls::TlsError;

/// What is wrong with a map, phrased so the operator knows what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("cannot read the map: {0}")]
    Read(#[source] std::io::Error),
    /// The text is not valid TOML.
    #[error("TOML syntax error: {0}")]
    Syntax(String),
    /// The TOML does not fit the schema (unknown key, wrong type, missing key).
    #[error("{0}")]
    Schema(String),
    /// A top-level key other than `gateway`, `node`, `partition`, `media`, `limits` or
    /// `health`.
    #[error(
        "unknown top-level key `{0}` (expected [gateway], [[node]], [[partition]], [media], [limits] or [health])"
    )]
    UnknownTable(String),
    /// `gateway` is not a single table, or `node`/`partition` not an array of tables.
    #[error("`{key}` has the wrong shape: write {expected}")]
    Shape {
        /// The top-level key.
        key: String,
        /// How it should be written.
        expected: String,
    },
    /// No `[gateway]` table.
    #[error("missing [gateway] table (it needs listen, tls_cert and tls_key)")]
    NoGateway,
    /// `listen` is not a socket address.
    #[error("listen = {0:?} is not an IP:port address (e.g. \"0.0.0.0:8443\")")]
    BadListen(String),
    /// `[admin]` `token` too short or not printable ASCII.
    #[error(
        "token must be at least 16 printable ASCII characters without spaces (it is sent \
         as `Authorization: Bearer <token>`); e.g. the output of `openssl rand -hex 24`"
    )]
    BadAdminToken,
    /// `[admin]` `listen` off loopback without a token.
    #[error(
        "listen = \"{0}\" is not a loopback address and [admin] has no token: anyone who \
         reaches it could drain nodes and kick sessions; add token = \"…\" or listen on \
         127.0.0.1"
    )]
    AdminWithoutToken(std::net::SocketAddr),
    /// A path key is an empty string.
    #[error("{0} is empty: give the path of a PEM file")]
    EmptyPath(&'static str),
    /// A timeout of zero milliseconds.
    #[error("{0} = 0: use a positive number of milliseconds")]
    ZeroTimeout(&'static str),
    /// A duration beyond [`super::validate::MAX_DURATION_MS`].
    #[error("{0} = {1} is more than a year: use at most {max} milliseconds", max = super::validate::MAX_DURATION_MS)]
    DurationTooLong(&'static str, u64),
    /// A count such as `max_connections` is zero.
    #[error("{0} = 0: use a positive number, or omit the key for the default")]
    ZeroCount(&'static str),
    /// `[health]` `close_spread_ms` above a minute.
    #[error("close_spread_ms = {0} is more than a minute: a node's sessions must learn of its failure sooner (use at most {max}, or 0 to close them all at once)", max = super::health::MAX_CLOSE_SPREAD_MS)]
    CloseSpreadTooLong(u64),
    /// `[health]` `timeout_ms` above `interval_ms`.
    #[error(
        "timeout_ms ({timeout_ms} ms) must not exceed interval_ms ({interval_ms} ms): each \
         probe must end before the next probe of the node starts; lower timeout_ms or raise \
         interval_ms"
    )]
    ProbeTimeoutAboveInterval {
        /// The probe timeout, as written or the default.
        timeout_ms: u128,
        /// The probe interval, as written or the default.
        interval_ms: u128,
    },
    /// A partition's `failback` is not `auto` or `manual`.
    #[error(
        "failback = {0:?}: use \"auto\" (move back to a recovered higher-priority node once \
         it has been up for [health] failback_delay_ms) or \"manual\" (stay until the \
         operator moves the partition back)"
    )]
    BadFailback(String),
    /// A `client_ip_param` that cannot be a FreeSWITCH variable name.
    #[error("client_ip_param = {0:?}: use 1 to 64 letters, digits, '_' or '-' (e.g. \"vertogw_client_ip\")")]
    BadParamName(String),
    /// An `allowed_origins` entry that is not an origin.
    #[error("allowed_origins: {value:?}: {reason}")]
    BadOrigin {
        /// As written.
        value: String,
        /// What to change.
        reason: super::OriginError,
    },
    /// A `trusted_networks` entry that is neither a CIDR nor an address.
    #[error("trusted_networks: {0:?} is not a network: write a CIDR such as \"192.0.2.0/24\" or \"2001:db8::/32\", or one address")]
    BadNetwork(String),
    /// `proxy_protocol` is not `off`, `v1` or `v2`.
    #[error(
        "proxy_protocol = {0:?}: use \"off\", \"v1\" or \"v2\", the version the load \
         balancer sends (HAProxy's send-proxy is v1, send-proxy-v2 is v2)"
    )]
    BadProxyProtocol(String),
    /// `proxy_protocol` is on without a non-empty `proxy_protocol_from`.
    #[error(
        "proxy_protocol = {0:?} needs proxy_protocol_from: list the load balancers' \
         addresses or networks (e.g. [\"10.0.0.5\", \"10.0.1.0/24\"]); only they may send a \
         PROXY header, and every connection from elsewhere is refused"
    )]
    ProxyProtocolWithoutFrom(String),
    /// `proxy_protocol_from` is set while `proxy_protocol` is off.
    #[error(
        "proxy_protocol_from is set but proxy_protocol is \"off\" (the default): set \
         proxy_protocol = \"v1\" or \"v2\" as the load balancer sends it, or remove \
         proxy_protocol_from (with the protocol off, every client behind the balancer would \
         count as the balancer's one address)"
    )]
    ProxyFromWithoutProtocol,
    /// A `proxy_protocol_from` entry that is neither a CIDR nor an address.
    #[error("proxy_protocol_from: {0:?} is not a network: write a CIDR such as \"10.0.1.0/24\", or one address")]
    BadProxySender(String),
    /// `max_message_bytes` is zero or does not fit this platform.
    #[error("max_message_bytes = {0}: use a size from 1 to 999999 (mod_verto's limit)")]
    BadMessageSize(u64),
    /// `default_domain` is not a plain domain name.
    #[error("default_domain = {value:?}: {reason}")]
    BadDefaultDomain {
        /// As written.
        value: String,
        /// Why it is refused.
        reason: PatternError,
    },
    /// A node name outside `[A-Za-z0-9_-]+`.
    #[error("name {0:?} is invalid: use letters, digits, '_' or '-'")]
    BadNodeName(String),
    /// Two nodes share a name.
    #[error("defined twice (first on line {first}): rename one of them")]
    DuplicateNode {
        /// The name.
        name: String,
        /// Line of the first definition.
        first: usize,
    },
    /// `verto_url` is unusable.
    #[error("verto_url {url:?}: {reason}")]
    BadUrl {
        /// As written.
        url: String,
        /// Why it is refused.
        reason: UrlError,
    },
    /// A `public_url` or `fallback_url` browsers could not use.
    #[error("{key} {url:?}: {reason}")]
    BadClientUrl {
        /// The key.
        key: &'static str,
        /// As written.
        url: String,
        /// Why it is refused.
        reason: UrlError,
    },
    /// `web_root` is not a readable folder.
    #[error("web_root {path:?} is not a folder: {reason}")]
    WebRoot {
        /// Resolved against the map's directory.
        path: std::path::PathBuf,
        /// What the file system said.
        reason: String,
    },
    /// `rtp_ip` is not an IP address.
    #[error("rtp_ip {0:?} is not an IP address")]
    BadRtpIp(String),
    /// A malformed or reversed `N-M` range.
    #[error("{key} {value:?}: {reason}")]
    BadRange {
        /// `rtp_ports` or `extensions`.
        key: &'static str,
        /// As written.
        value: String,
        /// Why it is refused.
        reason: RangeError,
    },
    /// Two nodes' `rtp_ports` overlap.
    #[error(
        "rtp_ports {mine} overlaps {theirs} of node {other:?} (line {line}): all nodes share \
         the load balancer's public address, so their RTP ranges must be disjoint"
    )]
    RtpOverlap {
        /// This node's range.
        mine: String,
        /// The other node's range.
        theirs: String,
        /// The other node.
        other: String,
        /// The other node's line.
        line: usize,
    },
    /// A `[media]` address that is not a unicast IP address.
    #[error("{key} = {value:?} is not a unicast IP address (e.g. \"203.0.113.10\")")]
    BadMediaIp {
        /// `public_ip` or `snat_ip`.
        key: &'static str,
        /// As written.
        value: String,
    },
    /// `[media]` without `public_ip`.
    #[error(
        "[media] needs public_ip: the load balancer address browsers send RTP to \
         (every node's ext-rtp-ip)"
    )]
    NoPublicIp,
    /// `manage_iptables = true` without `public_ip`.
    #[error(
        "manage_iptables = true needs public_ip: the DNAT rules match the address \
         browsers send RTP to; add public_ip or set manage_iptables = false"
    )]
    ManageWithoutPublicIp,
    /// `iptables` is empty or holds whitespace.
    #[error(
        "iptables = {0:?}: give one binary name or path without spaces \
         (e.g. \"iptables\", \"iptables-legacy\", \"ip6tables\")"
    )]
    BadIptablesBinary(String),
    /// An address of another IP version than `public_ip`.
    #[error(
        "{key} {value} is IPv{got} but public_ip {public_ip} is IPv{want}: one rule set \
         (iptables or ip6tables) translates one IP version; use addresses of the same version"
    )]
    MixedFamilies {
        /// Which setting (`rtp_ip`, `snat_ip`, ...).
        key: &'static str,
        /// Its address.
        value: std::net::IpAddr,
        /// `public_ip`.
        public_ip: std::net::IpAddr,
        /// Its IP version.
        got: u8,
        /// `public_ip`'s IP version.
        want: u8,
    },
    /// With `[media]`, a node serving a partition has no `rtp_ports`.
    #[error(
        "serves partition {0:?} but has no rtp_ports: with [media], every node of a \
         partition needs its own RTP range (e.g. rtp_ports = \"16384-17383\")"
    )]
    MediaNoRtpPorts(String),
    /// With `[media]`, a node with `rtp_ports` has no usable RTP address.
    #[error(
        "verto_url host {0:?} is not an IP address, so rtp_ip cannot default to it: \
         set rtp_ip to the address of the node's RTP sockets"
    )]
    MediaNoRtpIp(String),
    /// A partition name that is empty or holds whitespace.
    #[error("name {0:?} is invalid: use a non-empty name without spaces")]
    BadPartitionName(String),
    /// Two partitions share a name.
    #[error("defined twice (first on line {first}): rename or merge one of them")]
    DuplicatePartition {
        /// The name.
        name: String,
        /// Line of the first definition.
        first: usize,
    },
    /// `nodes = []`.
    #[error("nodes is empty: list at least one [[node]] name (the first is the active one)")]
    NoNodes,
    /// `nodes` names a node that has no `[[node]]`.
    #[error("node {0:?} is not defined (define a [[node]] named {0:?} or remove it from nodes)")]
    UnknownNode(String),
    /// `nodes` lists a node twice.
    #[error("node {0:?} is listed twice in nodes: remove one")]
    RepeatedNode(String),
    /// `domains = []`.
    #[error("domains is empty: list at least one domain, \"*.suffix\" or \"*\"")]
    NoDomains,
    /// A bad `domains` entry.
    #[error("domain {value:?}: {reason}")]
    BadDomain {
        /// As written.
        value: String,
        /// Why it is refused.
        reason: PatternError,
    },
    /// A `domains` entry listed twice in one partition.
    #[error("domain {0:?} is listed twice: remove one")]
    RepeatedDomain(String),
    /// `extensions = []`.
    #[error("extensions is empty: list users, or omit the key to serve every user")]
    NoExtensions,
    /// A bad `extensions` user name.
    #[error("extension {value:?}: {reason}")]
    BadExtension {
        /// As written.
        value: String,
        /// Why it is refused.
        reason: PatternError,
    },
    /// Two partitions could both be the most specific match for some user.
    #[error("ties with partition {other:?} (line {line}) for domain {pattern:?}: {why}")]
    Tie {
        /// The earlier partition.
        other: String,
        /// Its line.
        line: usize,
        /// The shared domain pattern.
        pattern: String,
        /// Which users both serve, and what to change.
        why: String,
    },
    /// The browser-facing certificate or key cannot be used.
    #[error("tls_cert/tls_key: {0}")]
    Tls(#[source] TlsError),
    /// The extra upstream roots cannot be used.
    #[error("upstream_ca: {0}")]
    UpstreamCa(#[source] TlsError),
    /// The roots `wss://` probes are verified against cannot be used.
    #[error("ca_file: {0}")]
    HealthCa(#[source] TlsError),
    /// A `[[gateway.certificate]]` certificate or key cannot be used.
    #[error("cert/key: {0}")]
    SniTls(#[source] TlsError),
    /// `names = []` in a `[[gateway.certificate]]`.
    #[error(
        "names is empty: list the DNS names browsers ask for with this certificate \
         (e.g. [\"app.example.com\", \"*.example.com\"])"
    )]
    NoCertificateNames,
    /// A `[[gateway.certificate]]` name that is not a DNS name or `*.` + one.
    #[error("names: {value:?}: {reason}")]
    BadCertificateName {
        /// As written.
        value: String,
        /// Why it is refused.
        reason: super::SniNameError,
    },
    /// A name listed by two `[[gateway.certificate]]` entries, or twice by one.
    #[error(
        "names: {name:?} is listed by the [[gateway.certificate]] on line {line} too: \
         a name picks exactly one certificate; remove one"
    )]
    RepeatedCertificateName {
        /// The name, lower-cased.
        name: String,
        /// Line of the entry that listed it first.
        line: usize,
    },
}

/// Why a `verto_url` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `ws://` or `wss://`.
    #[error("use ws:// or wss:// (mod_verto speaks WebSocket)")]
    Scheme,
    /// Nothing between `//` and the port/path.
    #[error("it has no host")]
    NoHost,
    /// A host with characters no host name or IP literal has.
    #[error("host {0:?} is not a host name or IP address (IPv6 needs [brackets])")]
    BadHost(String),
    /// The port is not 1-65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// `user@host` credentials.
    #[error("credentials in the URL are not supported")]
    UserInfo,
    /// `#fragment`.
    #[error("a #fragment means nothing to a WebSocket server: remove it")]
    Fragment,
    /// Spaces or control characters.
    #[error("it contains whitespace or control characters")]
    Whitespace,
}

/// Why an `N-M` range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `N-M` with digits on both sides.
    #[error("expected FIRST-LAST, e.g. \"10000-10399\"")]
    Format,
    /// A bound too large for its kind.
    #[error("{0} is too large")]
    TooLarge(String),
    /// Port 0.
    #[error("ports must lie within 1-65535")]
    PortZero,
    /// An RTP range reaching below 1024 or above 65535.
    #[error(
        "RTP ports must lie within 1024-65535 (FreeSWITCH's RTP range; ports below 1024 \
         belong to system services)"
    )]
    RtpBounds,
    /// `start > end`.
    #[error("it is reversed (write the smaller number first)")]
    Reversed,
}

/// Why a domain pattern, default domain or extension name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty string (or `*.` with nothing after it).
    #[error("it is empty")]
    Empty,
    /// A `*` anywhere but as a whole `*` or a leading `*.`.
    #[error("a wildcard must be \"*\" or lead as \"*.suffix\"")]
    Wildcard,
    /// Characters a domain cannot hold, or an empty label.
    #[error("not a domain name (letters, digits, '-', '_' and '.' between non-empty labels)")]
    BadDomain,
    /// `@`, whitespace or control characters in a user name.
    #[error("a user name cannot hold '@', whitespace or control characters")]
    BadUser,
    /// `1000-`, `-5`, `1-2-3`: almost a range.
    #[error("looks like an incomplete range: write FIRST-LAST, e.g. \"1000-1999\"")]
    HalfRange,
}

/// One problem in a map, located as precisely as the file allows.
#[derive(Debug)]
pub struct ConfigError {
    /// The map file.
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// The table the problem is in, e.g. `partition "acme"`, when known.
    pub subject: Option<String>,
    /// What is wrong and how to fix it.
    pub kind: ConfigErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(subject) = &self.subject {
            write!(f, "{subject}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind's text is already part of our Display; expose what lies beneath it.
        std::error::Error::source(&self.kind)
    }
}

/// Every problem found in a map; `Display` prints one per line.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The problems, in file order within each validation pass.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// A list holding a single error about `file` as a whole.
    pub fn single(file: &Path, kind: ConfigErrorKind) -> ConfigErrors {
        ConfigErrors {
            errors: vec![ConfigError {
                file: file.to_owned(),
                line: None,
                subject: None,
                kind,
            }],
        }
    }
}

/// Collects errors and warnings while a map is validated, turning byte spans into lines.
pub(super) struct Report<'a> {
    file: &'a Path,
    text: &'a str,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<String>,
}

impl<'a> Report<'a> {
    pub(super) fn new(file: &'a Path, text: &'a str) -> Report<'a> {
        Report {
            file,
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// 1-based line of a byte offset; offsets past the end count as the last line.
    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        let bytes = self.text.as_bytes();
        let end = span.start.min(bytes.len());
        bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    pub(super) fn error(
        &mut self,
        span: Option<&Range<usize>>,
        subject: Option<&str>,
        kind: ConfigErrorKind,
    ) {
        let line = span.map(|s| self.line(s));
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            subject: subject.map(str::to_owned),
            kind,
        });
    }

    /// Like [`Self::error`], for a problem found after spans were turned into lines.
    pub(super) fn error_at_line(
        &mut self,
        line: Option<usize>,
        subject: Option<&str>,
        kind: ConfigErrorKind,
    ) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            subject: subject.map(str::to_owned),
            kind,
        });
    }

    pub(super) fn warn_file(&mut self, message: &str) {
        let file = self.file.display();
        self.warnings.push(format!("{file}: {message}"));
    }

    pub(super) fn warn(&mut self, span: &Range<usize>, subject: &str, message: &str) {
        let line = self.line(span);
        let file = self.file.display();
        self.warnings
            .push(format!("{file}:{line}: {subject}: {message}"));
    }
}
