//! Validated domain types of the partition map; built only by [`super::Config::parse`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A validated partition map.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this map was read from (relative paths inside it are resolved against
    /// its directory).
    pub source: PathBuf,
    /// The `[gateway]` table.
    pub gateway: Gateway,
    /// The `[[node]]` tables, in file order.
    pub nodes: Vec<Node>,
    /// The `[[partition]]` tables, in file order.
    pub partitions: Vec<Partition>,
    /// The `[media]` table: how browsers' RTP reaches the nodes; `None` when absent.
    pub media: Option<Media>,
    /// The `[limits]` table, defaults filled in.
    pub limits: super::Limits,
    /// The `[health]` table, defaults filled in.
    pub health: super::Health,
    /// The `[admin]` table, defaults filled in.
    pub admin: super::Admin,
}

/// The `[media]` table: the load balancer's side of the RTP path (PROTOCOL.md §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The address browsers send RTP to: every node's `ext-rtp-ip`.
    pub public_ip: IpAddr,
    /// The load balancer's address facing the nodes; replies are SNAT'ed to it.
    /// `None` = MASQUERADE (the address of the interface the packet leaves by).
    pub snat_ip: Option<IpAddr>,
    /// Whether `serve` applies the NAT rules when it starts.
    pub manage_iptables: bool,
    /// The iptables binary (`ip6tables` by default when `public_ip` is IPv6); its
    /// `-restore` sibling is derived by appending `-restore`.
    pub iptables: String,
}

/// The `[gateway]` table.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// TLS listener for browsers.
    pub listen: SocketAddr,
    /// PEM certificate chain, resolved against the map's directory.
    pub tls_cert: PathBuf,
    /// PEM private key, resolved against the map's directory.
    pub tls_key: PathBuf,
    /// Domain for logins without `@domain` (lower-cased).
    pub default_domain: Option<String>,
    /// Time from TCP accept to a login accepted by a node.
    pub login_timeout: Duration,
    /// Largest browser→node message, in bytes.
    pub max_message_bytes: usize,
    /// How long one attempt to reach a node (TCP + TLS + upgrade) may take.
    pub connect_timeout: Duration,
    /// Extra PEM roots trusted for `wss://` nodes, resolved against the map's directory.
    pub upstream_ca: Option<PathBuf>,
    /// Most browser connections held at once; `None` = as many as the process's
    /// descriptor limit allows (two descriptors per session).
    pub max_connections: Option<usize>,
    /// TLS handshakes in flight at once; `None` = 32 per core.
    pub max_tls_handshakes: Option<usize>,
    /// Web origins allowed to open a socket; `None` = any.
    pub allowed_origins: Option<Vec<super::OriginPattern>>,
    /// The name under which forwarded logins carry the browser's address
    /// (`loginParams.<name>`, `userVariables.<name>`); `None` = not added.
    pub client_ip_param: Option<String>,
    /// Whether connections from a load balancer start with a PROXY protocol header
    /// naming the client (`proxy_protocol`, `proxy_protocol_from`).
    pub proxy_protocol: super::ProxyProtocol,
    /// `[[gateway.certificate]]`: certificates picked by the name a browser asks for
    /// (SNI), in file order; `tls_cert`/`tls_key` answer every other connection.
    pub certificates: Vec<SniCertificate>,
    /// The `wss://` URL browsers use; `None` = derived from `listen`
    /// ([`Config::public_url`]).
    pub public_url: Option<NodeUrl>,
    /// The URL Verto clients switch to after repeated reconnect failures
    /// (`wsFallbackURL`), for partitions without their own.
    pub fallback_url: Option<NodeUrl>,
    /// Static files served on the TLS listener (resolved against the map's directory).
    pub web_root: Option<PathBuf>,
}

/// A `[[gateway.certificate]]`: a certificate served to browsers asking for its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCertificate {
    /// DNS names, lower-cased: exact (`app.example.com`) or `*.example.com`, which
    /// stands for exactly one label. No name appears in two entries.
    pub names: Vec<String>,
    /// PEM certificate chain, resolved against the map's directory.
    pub cert: PathBuf,
    /// PEM private key, resolved against the map's directory.
    pub key: PathBuf,
}

/// A `[[node]]`: one FreeSWITCH mod_verto profile.
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique name, `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Where its mod_verto profile listens.
    pub verto_url: NodeUrl,
    /// Where its RTP sockets live, as written; see [`Node::media_ip`] for the default.
    pub rtp_ip: Option<IpAddr>,
    /// Its RTP port range, within 1024-65535; disjoint from every other node's.
    pub rtp_ports: Option<PortRange>,
}

impl Node {
    /// The node's RTP address: `rtp_ip`, else the host of `verto_url` when it is an IP
    /// literal, else `None` (a map with `[media]` refuses that for nodes with RTP ports).
    pub fn media_ip(&self) -> Option<IpAddr> {
        self.rtp_ip.or_else(|| self.verto_url.host.parse().ok())
    }
}

/// A parsed `ws://` or `wss://` URL of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl {
    /// The URL as written in the map.
    pub raw: String,
    /// `wss://`?
    pub secure: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default 80 for ws, 443 for wss).
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl NodeUrl {
    /// The same URL with another port (the demo places its nodes on free ports).
    pub fn with_port(&self, port: u16) -> NodeUrl {
        let scheme = if self.secure { "wss" } else { "ws" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        NodeUrl {
            raw: format!("{scheme}://{host}:{port}{}", self.path),
            port,
            ..self.clone()
        }
    }
}

impl std::fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// An inclusive port range, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
}

/// A `[[partition]]`.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Unique name.
    pub name: String,
    /// Node names in priority order: first is active, the rest standbys.
    pub nodes: Vec<String>,
    /// Domain patterns this partition serves.
    pub domains: Vec<DomainPattern>,
    /// Users it serves; `None` = every user of its domains.
    pub extensions: Option<Vec<ExtensionRule>>,
    /// Its own `wsURL`, for tenants with their own host name; `None` = the gateway's.
    pub public_url: Option<NodeUrl>,
    /// Its own `wsFallbackURL`; `None` = the gateway's.
    pub fallback_url: Option<NodeUrl>,
    /// Whether it moves back to a recovered higher-priority node by itself.
    pub failback: Failback,
}

/// A partition's `failback`: what happens once a higher-priority node than the active
/// one is up again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Failback {
    /// `"auto"` (the default): the partition moves back once that node has been up for
    /// `[health] failback_delay_ms`.
    #[default]
    Auto,
    /// `"manual"`: the partition stays where it is until the operator moves it.
    Manual,
}

/// One entry of `domains`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    /// An exact name, lower-cased.
    Exact(String),
    /// `*.suffix`: holds the suffix without `*.`, lower-cased.
    Suffix(String),
    /// `*`.
    Any,
}

/// One entry of `extensions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionRule {
    /// `N-M`: all-digit users whose value lies in `start..=end`.
    Range {
        /// First value.
        start: u64,
        /// Last value (inclusive).
        end: u64,
    },
    /// A user name matched exactly (case-sensitive).
    Exact(String),
}
