//! The `[health]` table: how nodes are watched (probe period, timeout, rise and fall),
//! and the failover bounds built on it (failback delay, migration budget, sticky
//! memory). Every key is optional; absent, the table takes every default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigErrorKind, Report};
use super::validate::{positive_count_in, timeout_in};

/// Default `interval_ms`: one probe per node per second.
pub const DEFAULT_INTERVAL_MS: u64 = 1_000;
/// Default `timeout_ms`: the whole probe (connect, TLS, upgrade, reply).
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Default `rise`: consecutive successes that mark a node up.
pub const DEFAULT_RISE: u64 = 2;
/// Default `fall`: consecutive failures that mark a node down.
pub const DEFAULT_FALL: u64 = 3;
/// Default `failback_delay_ms`.
pub const DEFAULT_FAILBACK_DELAY_MS: u64 = 30_000;
/// Default `migrate_per_second`.
pub const DEFAULT_MIGRATE_PER_SECOND: u64 = 50;
/// Default `sticky_ms`: mod_verto's default `detach-timeout-sec` (120 s).
pub const DEFAULT_STICKY_MS: u64 = 120_000;
/// Default `close_spread_ms`. A failed node's sessions all end at the same instant; closed
/// at once, 3,000 of them queued ~150 ms of work ahead of other partitions' messages on
/// two cores (RTT p99 152–164 ms during a failover), spread over 500 ms they stay at
/// 18–21 ms, and all were back on the standby as fast (docs/performance.md).
pub const DEFAULT_CLOSE_SPREAD_MS: u64 = 500;
/// The longest `close_spread_ms`.
pub const MAX_CLOSE_SPREAD_MS: u64 = 60_000;

const HEALTH: &str = "[health]";

/// `[health]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub interval_ms: Option<Spanned<u64>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub rise: Option<Spanned<u64>>,
    pub fall: Option<Spanned<u64>>,
    pub failback_delay_ms: Option<Spanned<u64>>,
    pub migrate_per_second: Option<Spanned<u64>>,
    pub sticky_ms: Option<Spanned<u64>>,
    pub close_spread_ms: Option<Spanned<u64>>,
    pub ca_file: Option<Spanned<String>>,
}

/// The validated `[health]` table (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Time between the starts of two probes of one node.
    pub interval: Duration,
    /// Bound on one whole probe (connect, TLS, upgrade, reply); at most `interval`.
    pub timeout: Duration,
    /// Consecutive successful probes that mark a down node up (at least 1).
    pub rise: u32,
    /// Consecutive failures, probes and failed login connects alike, that mark a node
    /// down (at least 1).
    pub fall: u32,
    /// How long a recovered higher-priority node must stay up before its partition
    /// moves back to it (`failback = "auto"`).
    pub failback_delay: Duration,
    /// The one global budget of sessions moved (closed 1012) per second.
    pub migrate_per_second: u32,
    /// How long a `sessid` is remembered after its session ends.
    pub sticky: Duration,
    /// Sessions that end because their node failed (its connection lost, found down,
    /// its drain deadline) are closed each at a random moment within this window, not
    /// all at once; zero closes them at once.
    pub close_spread: Duration,
    /// PEM roots `wss://` probes are verified against (with the public web PKI),
    /// resolved against the map's directory; `None` = the gateway's `upstream_ca`.
    pub ca_file: Option<PathBuf>,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            interval: Duration::from_millis(DEFAULT_INTERVAL_MS),
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            rise: DEFAULT_RISE as u32,
            fall: DEFAULT_FALL as u32,
            failback_delay: Duration::from_millis(DEFAULT_FAILBACK_DELAY_MS),
            migrate_per_second: DEFAULT_MIGRATE_PER_SECOND as u32,
            sticky: Duration::from_millis(DEFAULT_STICKY_MS),
            close_spread: Duration::from_millis(DEFAULT_CLOSE_SPREAD_MS),
            ca_file: None,
        }
    }
}

/// Validates `[health]` (absent: every default); also returns the line of `ca_file`,
/// which `Config::load` checks against the file system.
pub(super) fn health(
    raw: Option<RawHealth>,
    dir: &Path,
    r: &mut Report<'_>,
) -> (Health, Option<usize>) {
    let raw = raw.unwrap_or_default();
    let ms = |value: &Option<Spanned<u64>>, key, default, r: &mut Report<'_>| {
        timeout_in(HEALTH, value, key, default, r)
    };
    let count = |value: &Option<Spanned<u64>>, key, default: u64, r: &mut Report<'_>| {
        let n = positive_count_in(HEALTH, value.as_ref(), key, r)
            .map_or(default, |n| u64::try_from(n).unwrap_or(u64::MAX));
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let interval = ms(&raw.interval_ms, "interval_ms", DEFAULT_INTERVAL_MS, r);
    let timeout = ms(&raw.timeout_ms, "timeout_ms", DEFAULT_TIMEOUT_MS, r);
    if timeout > interval && !interval.is_zero() {
        // Point at whichever of the two the operator wrote (timeout_ms first).
        let at = raw.timeout_ms.as_ref().or(raw.interval_ms.as_ref());
        let kind = ConfigErrorKind::ProbeTimeoutAboveInterval {
            timeout_ms: timeout.as_millis(),
            interval_ms: interval.as_millis(),
        };
        r.error(at.map(|v| v.span()).as_ref(), Some(HEALTH), kind);
    }
    let ca_file = raw.ca_file.as_ref().and_then(|p| {
        if p.get_ref().is_empty() {
            let kind = ConfigErrorKind::EmptyPath("ca_file");
            r.error(Some(&p.span()), Some(HEALTH), kind);
            return None;
        }
        Some(dir.join(p.get_ref()))
    });
    let ca_line = raw.ca_file.as_ref().map(|p| r.line(&p.span()));
    let health = Health {
        interval,
        timeout,
        rise: count(&raw.rise, "rise", DEFAULT_RISE, r),
        fall: count(&raw.fall, "fall", DEFAULT_FALL, r),
        failback_delay: ms(
            &raw.failback_delay_ms,
            "failback_delay_ms",
            DEFAULT_FAILBACK_DELAY_MS,
            r,
        ),
        migrate_per_second: count(
            &raw.migrate_per_second,
            "migrate_per_second",
            DEFAULT_MIGRATE_PER_SECOND,
            r,
        ),
        sticky: ms(&raw.sticky_ms, "sticky_ms", DEFAULT_STICKY_MS, r),
        close_spread: close_spread(raw.close_spread_ms.as_ref(), r),
        ca_file,
    };
    (health, ca_line)
}

/// `close_spread_ms`: zero (off) up to [`MAX_CLOSE_SPREAD_MS`].
fn close_spread(value: Option<&Spanned<u64>>, r: &mut Report<'_>) -> Duration {
    match value {
        Some(ms) if *ms.get_ref() > MAX_CLOSE_SPREAD_MS => {
            let kind = ConfigErrorKind::CloseSpreadTooLong(*ms.get_ref());
            r.error(Some(&ms.span()), Some(HEALTH), kind);
            Duration::from_millis(DEFAULT_CLOSE_SPREAD_MS)
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
        None => Duration::from_millis(DEFAULT_CLOSE_SPREAD_MS),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::config::tests::{error, errors, loaded, map, PARTITION};
    use crate::config::{Config, Failback, Health};

    /// The test map with `tail` after its partition (a `[health]` table starts on line 23).
    fn with(tail: &str) -> String {
        format!("{}\n{tail}", map("", PARTITION))
    }

    #[test]
    fn health_and_failback_default_when_absent() {
        let config = loaded(&map("", PARTITION)).config;
        assert_eq!(config.health, Health::default());
        let h = &config.health;
        assert_eq!(
            (h.interval, h.timeout, h.rise, h.fall),
            (Duration::from_secs(1), Duration::from_secs(1), 2, 3)
        );
        assert_eq!(
            (h.failback_delay, h.migrate_per_second, h.sticky),
            (Duration::from_secs(30), 50, Duration::from_secs(120))
        );
        assert_eq!(h.close_spread, Duration::from_millis(500));
        assert_eq!(h.ca_file, None);
        assert_eq!(config.partitions[0].failback, Failback::Auto);
    }

    #[test]
    fn health_keys_and_failback_are_read() {
        let text = format!(
            "{}failback = \"manual\"\n\n[health]\ninterval_ms = 500\ntimeout_ms = 500\nrise = 1\n\
             fall = 5\nfailback_delay_ms = 1000\nmigrate_per_second = 7\nsticky_ms = 60000\n\
             close_spread_ms = 2000\nca_file = \"certs/nodes-ca.pem\"\n",
            map("", PARTITION)
        );
        let config = loaded(&text).config;
        let h = config.health;
        assert_eq!(
            (h.interval, h.timeout, h.rise, h.fall),
            (Duration::from_millis(500), Duration::from_millis(500), 1, 5)
        );
        assert_eq!(
            (h.failback_delay, h.migrate_per_second, h.sticky),
            (Duration::from_secs(1), 7, Duration::from_secs(60))
        );
        assert_eq!(h.close_spread, Duration::from_secs(2));
        assert_eq!(h.ca_file, Some(PathBuf::from("maps/certs/nodes-ca.pem")));
        assert_eq!(config.partitions[0].failback, Failback::Manual);
    }

    #[test]
    fn zero_health_times_are_errors() {
        let e = errors(&with(
            "[health]\ninterval_ms = 0\ntimeout_ms = 0\nfailback_delay_ms = 0\nsticky_ms = 0\n",
        ));
        assert_eq!(
            e,
            [
                "maps/t.toml:24: [health]: interval_ms = 0: use a positive number of milliseconds",
                "maps/t.toml:25: [health]: timeout_ms = 0: use a positive number of milliseconds",
                "maps/t.toml:26: [health]: failback_delay_ms = 0: use a positive number of milliseconds",
                "maps/t.toml:27: [health]: sticky_ms = 0: use a positive number of milliseconds",
            ]
        );
    }

    #[test]
    fn rise_fall_and_migrate_per_second_must_be_at_least_one() {
        let e = errors(&with(
            "[health]\nrise = 0\nfall = 0\nmigrate_per_second = 0\n",
        ));
        let tail = "use a positive number, or omit the key for the default";
        assert_eq!(
            e,
            [
                format!("maps/t.toml:24: [health]: rise = 0: {tail}"),
                format!("maps/t.toml:25: [health]: fall = 0: {tail}"),
                format!("maps/t.toml:26: [health]: migrate_per_second = 0: {tail}"),
            ]
        );
    }

    #[test]
    fn a_negative_or_fractional_health_value_is_refused() {
        let e = error(&with("[health]\nrise = -1\n"));
        assert!(
            e.starts_with("maps/t.toml:24: [health]: invalid value: integer `-1`"),
            "{e}"
        );
        let e = error(&with("[health]\ninterval_ms = 1.5\n"));
        assert!(
            e.starts_with("maps/t.toml:24: [health]: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn a_probe_timeout_above_the_interval_is_an_error() {
        let e = error(&with("[health]\ninterval_ms = 1000\ntimeout_ms = 1500\n"));
        assert_eq!(
            e,
            "maps/t.toml:25: [health]: timeout_ms (1500 ms) must not exceed interval_ms \
             (1000 ms): each probe must end before the next probe of the node starts; lower \
             timeout_ms or raise interval_ms"
        );
        // The default timeout (1000 ms) against a shorter interval: the interval is named.
        let e = error(&with("[health]\ninterval_ms = 400\n"));
        assert!(
            e.starts_with("maps/t.toml:24: [health]: timeout_ms (1000 ms) must not exceed interval_ms (400 ms)"),
            "{e}"
        );
        loaded(&with("[health]\ninterval_ms = 400\ntimeout_ms = 400\n"));
    }

    #[test]
    fn close_spread_may_be_zero_and_at_most_a_minute() {
        let h = loaded(&with("[health]\nclose_spread_ms = 0\n"))
            .config
            .health;
        assert_eq!(h.close_spread, Duration::ZERO);
        let h = loaded(&with("[health]\nclose_spread_ms = 60000\n"))
            .config
            .health;
        assert_eq!(h.close_spread, Duration::from_secs(60));
        let e = error(&with("[health]\nclose_spread_ms = 60001\n"));
        assert_eq!(
            e,
            "maps/t.toml:24: [health]: close_spread_ms = 60001 is more than a minute: a \
             node's sessions must learn of its failure sooner (use at most 60000, or 0 to \
             close them all at once)"
        );
    }

    #[test]
    fn an_unknown_health_key_is_an_error() {
        let e = error(&with("[health]\nintervall_ms = 500\n"));
        assert!(
            e.starts_with("maps/t.toml:24: [health]: unknown field `intervall_ms`"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_ca_file_is_an_error() {
        let e = error(&with("[health]\nca_file = \"\"\n"));
        assert_eq!(
            e,
            "maps/t.toml:24: [health]: ca_file is empty: give the path of a PEM file"
        );
    }

    #[test]
    fn failback_must_be_auto_or_manual() {
        let e = error(&format!("{}failback = \"Auto\"\n", map("", PARTITION)));
        assert_eq!(
            e,
            "maps/t.toml:22: partition \"acme\": failback = \"Auto\": use \"auto\" (move back \
             to a recovered higher-priority node once it has been up for [health] \
             failback_delay_ms) or \"manual\" (stay until the operator moves the partition back)"
        );
    }

    #[test]
    fn load_checks_that_ca_file_holds_pem_roots() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ss = vertogw_net::tls::self_signed(&["localhost"]).unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"))
        };
        write("gw.crt", &ss.cert_pem);
        write("gw.key", &ss.key_pem);
        write("ca.pem", &ss.cert_pem);
        write("not-pem.txt", "hello");
        let text = |ca: &str| {
            map("", PARTITION)
                .replace("../certs/gw.crt", "gw.crt")
                .replace("/etc/vertogw/gw.key", "gw.key")
                + &format!("\n[health]\nca_file = \"{ca}\"\n")
        };
        let load = |ca: &str| {
            write("m.toml", &text(ca));
            Config::load(&dir.path().join("m.toml"))
        };
        let good = load("ca.pem").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(good.config.health.ca_file, Some(dir.path().join("ca.pem")));
        let m = dir.path().join("m.toml");
        for (ca, expected) in [
            ("missing.pem", "cannot read"),
            ("not-pem.txt", "no PEM certificate found"),
        ] {
            let e = match load(ca) {
                Ok(_) => panic!("{ca}: accepted"),
                Err(e) => e.to_string(),
            };
            let head = format!("{}:24: [health]: ca_file: ", m.display());
            assert!(e.starts_with(&head) && e.contains(expected), "{ca}: {e}");
        }
        // `parse` reads no file.
        Config::parse(&text("missing.pem"), Path::new("m.toml")).unwrap_or_else(|e| panic!("{e}"));
    }
}
