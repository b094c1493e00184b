//! The `--mode ciphers` report: per suite and record size what one record costs, the
//! handshake's CPU per side (per suite, and per key exchange group), the cheapest suite,
//! and what each client order negotiates with the gateway; printed as one JSON object
//! or as a short table.

use std::fmt;

use serde::Serialize;

use super::measure::{HandshakeMeasurement, RecordMeasurement, SuiteMeasurement};
use super::{Group, Suite, MESSAGE_BYTES};

/// Everything `--mode ciphers` measured; the keys are documented in the crate doc.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CipherReport {
    /// Always `ciphers`.
    pub mode: &'static str,
    /// The CPU's model name, when known.
    pub cpu_model: Option<String>,
    /// Whether the CPU has AES and carry-less multiply instructions (`None` off x86-64).
    pub aes_hw: Option<bool>,
    /// One entry per suite measured, in order.
    pub suites: Vec<SuiteReport>,
    /// The TLS 1.3 suite whose [`MESSAGE_BYTES`] record costs least, if one was measured.
    pub cheapest: Option<&'static str>,
    /// The cheapest TLS 1.3 suite for each record size.
    pub cheapest_by_size: Vec<SizeWinner>,
    /// One entry per key exchange group measured, in order.
    pub groups: Vec<GroupReport>,
    /// What each client order negotiates with the gateway's server config.
    pub negotiated: Vec<Negotiation>,
}

/// One suite's costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteReport {
    /// rustls' name of the suite.
    pub suite: &'static str,
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: &'static str,
    /// The key exchange group its handshakes used.
    pub kx_group: String,
    /// One entry per record size.
    pub records: Vec<RecordReport>,
    /// Mean CPU of a full handshake.
    pub handshake_us: HandshakeReport,
}

/// A full handshake's cost with one key exchange group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// The group's name as rustls prints it.
    pub group: &'static str,
    /// The suite its handshakes used.
    pub suite: &'static str,
    /// Mean CPU of a full handshake.
    pub handshake_us: HandshakeReport,
    /// Bytes the client sent in one handshake.
    pub client_bytes: usize,
    /// Bytes the server sent in one handshake (session tickets included).
    pub server_bytes: usize,
}

/// What one record of one size costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordReport {
    /// Plaintext bytes per record.
    pub bytes: usize,
    /// Bytes on the wire per record.
    pub wire_bytes: usize,
    /// Records timed.
    pub iterations: u64,
    /// Mean ns to seal and open one record (the server writes, the client reads it out).
    pub ns_per_record: f64,
    /// Mean ns of the server's half alone (write and seal).
    pub seal_ns: f64,
    /// `ns_per_record - seal_ns`: the client's half (read, open, copy out).
    pub open_ns: f64,
    /// Plaintext MB (10^6 bytes) per second through seal + open on one core.
    pub mb_per_s: f64,
}

/// Mean µs of one full handshake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandshakeReport {
    /// Handshakes timed.
    pub count: u32,
    /// In the server's calls: what a gateway pays per browser connection.
    pub server: f64,
    /// In the client's calls.
    pub client: f64,
    /// Both.
    pub pair: f64,
}

/// The cheapest TLS 1.3 suite for one record size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeWinner {
    /// Plaintext bytes per record.
    pub bytes: usize,
    /// The suite.
    pub suite: &'static str,
    /// Its ns per record.
    pub ns_per_record: f64,
    /// The next cheapest TLS 1.3 suite, if another was measured.
    pub runner_up: Option<&'static str>,
    /// How much more the runner-up costs, % of the winner's ns per record.
    pub margin_pct: Option<f64>,
}

/// The suite and group a client order gets from the gateway's server config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Negotiation {
    /// Whose order.
    pub client: String,
    /// The suites offered, in order.
    pub offers: Vec<String>,
    /// The suite the server chose.
    pub negotiated: String,
    /// The key exchange groups offered, in order.
    pub offers_groups: Vec<String>,
    /// The group the server chose.
    pub kx_group: String,
}

impl CipherReport {
    /// Assembles the report from the measurements.
    pub fn new(
        measured: Vec<SuiteMeasurement>,
        groups: Vec<(Group, HandshakeMeasurement)>,
        negotiated: Vec<Negotiation>,
        cpu_model: Option<String>,
        aes_hw: Option<bool>,
    ) -> CipherReport {
        let suites: Vec<SuiteReport> = measured.iter().map(suite_report).collect();
        let mut sizes: Vec<usize> = measured
            .iter()
            .flat_map(|m| m.records.iter().map(|r| r.bytes))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let cheapest_by_size: Vec<SizeWinner> = sizes
            .into_iter()
            .filter_map(|bytes| cheapest(&measured, &suites, bytes))
            .collect();
        let cheapest = cheapest_by_size
            .iter()
            .find(|w| w.bytes == MESSAGE_BYTES)
            .map(|w| w.suite);
        CipherReport {
            mode: "ciphers",
            cpu_model,
            aes_hw,
            suites,
            cheapest,
            cheapest_by_size,
            groups: groups
                .iter()
                .map(|(group, h)| GroupReport {
                    group: group.name(),
                    suite: Suite::Aes128Gcm.name(),
                    handshake_us: handshake_report(h),
                    client_bytes: h.client_bytes,
                    server_bytes: h.server_bytes,
                })
                .collect(),
            negotiated,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    }
}

fn suite_report(m: &SuiteMeasurement) -> SuiteReport {
    SuiteReport {
        suite: m.suite.name(),
        protocol: if m.suite.is_tls13() {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        },
        kx_group: m.handshakes.kx_group.clone(),
        records: m.records.iter().map(record_report).collect(),
        handshake_us: handshake_report(&m.handshakes),
    }
}

/// Mean nanoseconds of `total` over `n` (0 when nothing was timed).
pub fn mean_ns(total: std::time::Duration, n: u64) -> f64 {
    match n {
        0 => 0.0,
        n => total.as_nanos() as f64 / n as f64,
    }
}

fn record_report(r: &RecordMeasurement) -> RecordReport {
    let ns = mean_ns(r.total, r.iterations);
    let seal = mean_ns(r.seal, r.iterations);
    RecordReport {
        bytes: r.bytes,
        wire_bytes: r.wire_bytes,
        iterations: r.iterations,
        ns_per_record: ns,
        seal_ns: seal,
        open_ns: ns - seal,
        // bytes per ns = GB/s; × 1000 = MB/s.
        mb_per_s: if ns > 0.0 {
            r.bytes as f64 / ns * 1000.0
        } else {
            0.0
        },
    }
}

fn handshake_report(h: &HandshakeMeasurement) -> HandshakeReport {
    let us = |d| mean_ns(d, u64::from(h.count)) / 1000.0;
    HandshakeReport {
        count: h.count,
        server: us(h.server),
        client: us(h.client),
        pair: us(h.server + h.client),
    }
}

/// The TLS 1.3 suite with the lowest ns per record of `bytes` (the first on a tie), and
/// the next one, so a difference within noise shows as such.
fn cheapest(
    measured: &[SuiteMeasurement],
    reports: &[SuiteReport],
    bytes: usize,
) -> Option<SizeWinner> {
    let mut costs: Vec<(Suite, f64)> = measured
        .iter()
        .zip(reports)
        .filter(|(m, _)| m.suite.is_tls13())
        .filter_map(|(m, r)| {
            let rec = r.records.iter().find(|rec| rec.bytes == bytes)?;
            Some((m.suite, rec.ns_per_record))
        })
        .collect();
    // Stable: equal costs keep the measuring order.
    costs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (suite, ns) = *costs.first()?;
    let next = costs.get(1);
    Some(SizeWinner {
        bytes,
        suite: suite.name(),
        ns_per_record: ns,
        runner_up: next.map(|(s, _)| s.name()),
        margin_pct: next.map(|(_, n)| match ns > 0.0 {
            true => (n - ns) / ns * 100.0,
            false => 0.0,
        }),
    })
}

impl fmt::Display for CipherReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        writeln!(
            f,
            "bench ciphers: rustls + aws-lc-rs in process on {} (AES instructions: {})",
            self.cpu_model.as_deref().unwrap_or("an unknown CPU"),
            yes_no(self.aes_hw)
        )?;
        writeln!(
            f,
            "{:<40} {:>6} {:>11} {:>9} {:>9} {:>9}",
            "record (seal + open)", "bytes", "ns/record", "seal ns", "open ns", "MB/s"
        )?;
        for s in &self.suites {
            for r in &s.records {
                writeln!(
                    f,
                    "{:<40} {:>6} {:>11.1} {:>9.1} {:>9.1} {:>9.0}",
                    s.suite, r.bytes, r.ns_per_record, r.seal_ns, r.open_ns, r.mb_per_s
                )?;
            }
        }
        writeln!(
            f,
            "{:<40} {:>9} {:>9} {:>9}  kx",
            "full handshake, mean µs", "server", "client", "pair"
        )?;
        for s in &self.suites {
            let h = &s.handshake_us;
            writeln!(
                f,
                "{:<40} {:>9.1} {:>9.1} {:>9.1}  {}",
                s.suite, h.server, h.client, h.pair, s.kx_group
            )?;
        }
        if let Some(first) = self.groups.first() {
            writeln!(
                f,
                "{:<40} {:>9} {:>9} {:>9}  bytes client / server",
                format!("full handshake ({}), mean µs", short_suite(first.suite)),
                "server",
                "client",
                "pair"
            )?;
        }
        for g in &self.groups {
            let h = &g.handshake_us;
            writeln!(
                f,
                "{:<40} {:>9.1} {:>9.1} {:>9.1}  {} / {}",
                g.group, h.server, h.client, h.pair, g.client_bytes, g.server_bytes
            )?;
        }
        for w in &self.cheapest_by_size {
            write!(
                f,
                "cheapest TLS 1.3 suite for {}-byte records: {} ({:.1} ns)",
                w.bytes, w.suite, w.ns_per_record
            )?;
            match (w.runner_up, w.margin_pct) {
                (Some(next), Some(pct)) => writeln!(f, ", then {next} (+{pct:.1} %)")?,
                _ => writeln!(f)?,
            }
        }
        for n in &self.negotiated {
            writeln!(
                f,
                "{} against the gateway's config (client order) → {}, {}",
                n.client, n.negotiated, n.kx_group
            )?;
        }
        Ok(())
    }
}

/// `TLS13_AES_128_GCM_SHA256` → `AES_128_GCM_SHA256`.
fn short_suite(name: &str) -> &str {
    name.strip_prefix("TLS13_").unwrap_or(name)
}
