//! The `[limits]` table: the bounds that keep one anonymous client from stalling,
//! flooding, guessing passwords through or mis-routing the gateway. Every key is
//! optional; the defaults are for a gateway facing the internet.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigErrorKind, Report};
use super::validate::{positive_count_in, timeout_in};

/// Default `max_prelogin_message_bytes`: real logins are under 2 KiB.
pub const DEFAULT_MAX_PRELOGIN_MESSAGE_BYTES: u64 = 16 * 1024;
/// Default `max_prelogin_messages`: the reference clients send two or three.
pub const DEFAULT_MAX_PRELOGIN_MESSAGES: u64 = 20;
/// Default `per_ip_connections`.
pub const DEFAULT_PER_IP_CONNECTIONS: u64 = 256;
/// Default `per_ip_connect_rate`, connections per second.
pub const DEFAULT_PER_IP_CONNECT_RATE: u64 = 20;
/// Default `per_ip_connect_burst`.
pub const DEFAULT_PER_IP_CONNECT_BURST: u64 = 100;
/// Default `tls_handshake_timeout_ms`, from TCP accept.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// Default `login_failures_per_minute`, per client address and per login.
pub const DEFAULT_LOGIN_FAILURES_PER_MINUTE: u64 = 10;
/// Default `login_cooldown_ms`.
pub const DEFAULT_LOGIN_COOLDOWN_MS: u64 = 60_000;
/// Default `stall_timeout_ms`.
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 30_000;
/// Default `browser_ping_ms`.
pub const DEFAULT_BROWSER_PING_MS: u64 = 30_000;
/// Default `trusted_networks`: loopback only.
pub const DEFAULT_TRUSTED_NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

const LIMITS: &str = "[limits]";

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub max_prelogin_message_bytes: Option<Spanned<u64>>,
    pub max_prelogin_messages: Option<Spanned<u64>>,
    pub per_ip_connections: Option<Spanned<u64>>,
    pub per_ip_connect_rate: Option<Spanned<u64>>,
    pub per_ip_connect_burst: Option<Spanned<u64>>,
    pub tls_handshake_timeout_ms: Option<Spanned<u64>>,
    pub login_failures_per_minute: Option<Spanned<u64>>,
    pub login_cooldown_ms: Option<Spanned<u64>>,
    pub trusted_networks: Option<Spanned<Vec<Spanned<String>>>>,
    pub stall_timeout_ms: Option<Spanned<u64>>,
    pub browser_ping_ms: Option<Spanned<u64>>,
}

/// The validated `[limits]` table (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest browser message before a node has accepted a login; larger closes 1009.
    pub max_prelogin_message_bytes: usize,
    /// Messages a browser may send before a node has accepted a login; then close 1008.
    pub max_prelogin_messages: usize,
    /// Concurrent connections per client address (IPv6: per /64).
    pub per_ip_connections: usize,
    /// New connections per second per client address, sustained.
    pub per_ip_connect_rate: u32,
    /// New connections per client address allowed in a burst above the rate.
    pub per_ip_connect_burst: u32,
    /// From TCP accept to a finished TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Failed logins per minute per client address and per login before a cooldown.
    pub login_failures_per_minute: u32,
    /// How long a client address or login that failed too often is refused.
    pub login_cooldown: Duration,
    /// Client networks exempt from the per-address limits (not from the per-login one).
    pub trusted_networks: Vec<IpNet>,
    /// How long a direction may be unable to write before the session ends.
    pub stall_timeout: Duration,
    /// Browser idle time before the gateway pings it; no pong within as long closes.
    pub browser_ping: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_prelogin_message_bytes: DEFAULT_MAX_PRELOGIN_MESSAGE_BYTES as usize,
            max_prelogin_messages: DEFAULT_MAX_PRELOGIN_MESSAGES as usize,
            per_ip_connections: DEFAULT_PER_IP_CONNECTIONS as usize,
            per_ip_connect_rate: DEFAULT_PER_IP_CONNECT_RATE as u32,
            per_ip_connect_burst: DEFAULT_PER_IP_CONNECT_BURST as u32,
            tls_handshake_timeout: Duration::from_millis(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS),
            login_failures_per_minute: DEFAULT_LOGIN_FAILURES_PER_MINUTE as u32,
            login_cooldown: Duration::from_millis(DEFAULT_LOGIN_COOLDOWN_MS),
            trusted_networks: DEFAULT_TRUSTED_NETWORKS
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            stall_timeout: Duration::from_millis(DEFAULT_STALL_TIMEOUT_MS),
            browser_ping: Duration::from_millis(DEFAULT_BROWSER_PING_MS),
        }
    }
}

impl Limits {
    /// Whether `ip` is inside one of the trusted networks.
    pub fn is_trusted(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.trusted_networks.iter().any(|net| net.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack listener reports)
/// is the IPv4 address it carries.
pub fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// The address the per-address limits count against: the IPv4 address itself (an
/// IPv4-mapped IPv6 address included), or an IPv6 address's /64, which is what one
/// subscriber usually holds.
pub fn address_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match canonical_ip(ip) {
        std::net::IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            std::net::IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Validates `[limits]` (absent: every default).
pub(super) fn limits(raw: Option<RawLimits>, r: &mut Report<'_>) -> Limits {
    let raw = raw.unwrap_or_default();
    let defaults = Limits::default();
    let count = |value: &Option<Spanned<u64>>, key, default: u64, r: &mut Report<'_>| {
        positive_count_in(LIMITS, value.as_ref(), key, r)
            .unwrap_or_else(|| usize::try_from(default).unwrap_or(usize::MAX))
    };
    let rate = |value: &Option<Spanned<u64>>, key, default: u64, r: &mut Report<'_>| {
        let n = count(value, key, default, r);
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let ms = |value: &Option<Spanned<u64>>, key, default, r: &mut Report<'_>| {
        timeout_in(LIMITS, value, key, default, r)
    };
    Limits {
        max_prelogin_message_bytes: count(
            &raw.max_prelogin_message_bytes,
            "max_prelogin_message_bytes",
            DEFAULT_MAX_PRELOGIN_MESSAGE_BYTES,
            r,
        ),
        max_prelogin_messages: count(
            &raw.max_prelogin_messages,
            "max_prelogin_messages",
            DEFAULT_MAX_PRELOGIN_MESSAGES,
            r,
        ),
        per_ip_connections: count(
            &raw.per_ip_connections,
            "per_ip_connections",
            DEFAULT_PER_IP_CONNECTIONS,
            r,
        ),
        per_ip_connect_rate: rate(
            &raw.per_ip_connect_rate,
            "per_ip_connect_rate",
            DEFAULT_PER_IP_CONNECT_RATE,
            r,
        ),
        per_ip_connect_burst: rate(
            &raw.per_ip_connect_burst,
            "per_ip_connect_burst",
            DEFAULT_PER_IP_CONNECT_BURST,
            r,
        ),
        tls_handshake_timeout: ms(
            &raw.tls_handshake_timeout_ms,
            "tls_handshake_timeout_ms",
            DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
            r,
        ),
        login_failures_per_minute: rate(
            &raw.login_failures_per_minute,
            "login_failures_per_minute",
            DEFAULT_LOGIN_FAILURES_PER_MINUTE,
            r,
        ),
        login_cooldown: ms(
            &raw.login_cooldown_ms,
            "login_cooldown_ms",
            DEFAULT_LOGIN_COOLDOWN_MS,
            r,
        ),
        trusted_networks: raw
            .trusted_networks
            .map_or(defaults.trusted_networks, |list| networks(list, r)),
        stall_timeout: ms(
            &raw.stall_timeout_ms,
            "stall_timeout_ms",
            DEFAULT_STALL_TIMEOUT_MS,
            r,
        ),
        browser_ping: ms(
            &raw.browser_ping_ms,
            "browser_ping_ms",
            DEFAULT_BROWSER_PING_MS,
            r,
        ),
    }
}

/// A CIDR (host bits cleared), or a bare address as a one-host network.
pub(super) fn network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .ok()
        .map(|net| net.trunc())
}

/// CIDRs, or bare addresses for one host; an empty list trusts nobody.
fn networks(list: Spanned<Vec<Spanned<String>>>, r: &mut Report<'_>) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for item in list.into_inner() {
        match network(item.get_ref()) {
            Some(net) => nets.push(net),
            None => r.error(
                Some(&item.span()),
                Some(LIMITS),
                ConfigErrorKind::BadNetwork(item.get_ref().clone()),
            ),
        }
    }
    nets
}
