//! The run's result: one serialisable value, printed as JSON (`--json`) or as a short
//! human summary.

use std::fmt;

use serde::Serialize;

use super::failover::FailoverReport;
use super::hist::{LoginSummary, RttSummary};
use super::procfs::WatchReport;
use super::ErrorCounts;

/// Everything a run measured; the keys are documented in the [`super`] module doc.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `steady`, `throughput`, `idle`, `storm` or `large`.
    pub mode: &'static str,
    /// The target URL.
    pub url: String,
    /// Sessions requested (storm: storm sessions, without background ones).
    pub sessions: usize,
    /// Sessions that logged in.
    pub logged_in: usize,
    /// Failures by category.
    pub errors: ErrorCounts,
    /// The measured window, seconds.
    pub duration_s: f64,
    /// Requests per second per session (steady).
    pub rate_per_session: Option<f64>,
    /// Bytes of `pad` per request.
    pub payload_bytes: usize,
    /// Requests sent.
    pub requests: u64,
    /// Replies received.
    pub replies: u64,
    /// Replies per second over the window.
    pub replies_per_s: f64,
    /// RTT percentiles, µs.
    pub rtt_us: Option<RttSummary>,
    /// Steady: actual send → reply, µs.
    pub service_rtt_us: Option<RttSummary>,
    /// Login latency, ms.
    pub login_ms: Option<LoginSummary>,
    /// The login request alone (sent → result), ms.
    pub login_request_ms: Option<LoginSummary>,
    /// First connect → last successful login, ms.
    pub time_to_last_login_ms: Option<f64>,
    /// Storm: background sessions.
    pub background_sessions: usize,
    /// Storm: background RTT during the storm window, µs.
    pub background_rtt_us: Option<RttSummary>,
    /// Storm: the same, actual send → reply, µs.
    pub background_service_rtt_us: Option<RttSummary>,
    /// One entry per watched process.
    pub watch: Vec<WatchReport>,
    /// The bench's own open-file limit, when it was raised.
    pub nofile_limit: Option<u64>,
    /// Storm with `--resume`: the storm's handshakes that resumed a TLS session.
    pub tls_resumed: Option<u64>,
    /// Large: bytes of each large request's text.
    pub large_request_bytes: Option<usize>,
    /// Large: the smallest successful large reply, bytes.
    pub large_reply_bytes_min: Option<usize>,
    /// Failover: the signal, the closes and the returns.
    pub failover: Option<FailoverReport>,
}

impl Report {
    /// How many things went wrong: failed sessions (or, where fewer were counted, the
    /// sessions that never logged in) plus error replies to requests. Zero for a clean run.
    pub fn failures(&self) -> u64 {
        let missing = self.sessions.saturating_sub(self.logged_in) as u64;
        self.errors.failed_sessions().max(missing) + self.errors.rpc_error
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    }
}

fn rtt_line(f: &mut fmt::Formatter<'_>, what: &str, r: &RttSummary) -> fmt::Result {
    let ms = |us: u64| us as f64 / 1000.0;
    writeln!(
        f,
        "{what:<14} p50 {:.3} ms  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (n={})",
        ms(r.p50),
        ms(r.p90),
        ms(r.p99),
        ms(r.p999),
        ms(r.max),
        r.count
    )
}

fn watch_line(f: &mut fmt::Formatter<'_>, w: &WatchReport) -> fmt::Result {
    write!(
        f,
        "pid {:<10} cpu {:.2} s ({:.0} % of a core), rss {} → {} KiB",
        w.pid, w.cpu_s, w.cpu_pct, w.rss_kib_before, w.rss_kib_after
    )?;
    if let Some(end) = w.rss_kib_end {
        write!(f, " → {end} KiB at end")?;
    }
    if let Some(per) = w.rss_kib_per_session {
        write!(f, ", {per:.1} KiB/session")?;
    }
    if let Some(kept) = w.rss_kib_retained_per_session {
        write!(f, ", {kept:.1} KiB/session retained after large messages")?;
    }
    if let Some(m) = w.msgs_per_cpu_s {
        write!(f, ", {m:.0} msgs/cpu-s")?;
    }
    writeln!(f)
}

fn failover_lines(f: &mut fmt::Formatter<'_>, fo: &FailoverReport) -> fmt::Result {
    let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.0} ms"));
    let codes: Vec<String> = fo
        .close_codes
        .iter()
        .map(|(code, n)| format!("{code} ×{n}"))
        .collect();
    writeln!(
        f,
        "failover       SIG{} to pid {}: {} of {} sessions closed ({}), first close {}, last close {}",
        fo.signal.to_uppercase(),
        fo.kill_pid,
        fo.closed_sessions,
        fo.expected,
        if codes.is_empty() { "no close".into() } else { codes.join(", ") },
        ms(fo.first_close_ms),
        ms(fo.last_close_ms),
    )?;
    writeln!(
        f,
        "back           {} of {} logged in again, all back after {}; reconnect attempts failed: {}",
        fo.back_sessions,
        fo.expected,
        ms(fo.all_back_ms),
        fo.reconnect_failures.total()
    )?;
    let nodes = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !fo.initial_nodes.is_empty() || !fo.relogin_nodes.is_empty() {
        writeln!(
            f,
            "nodes          before: {}; after: {}",
            nodes(&fo.initial_nodes),
            nodes(&fo.relogin_nodes)
        )?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bench {} → {}", self.mode, self.url)?;
        writeln!(
            f,
            "sessions       {} logged in of {}{}",
            self.logged_in,
            self.sessions,
            match self.time_to_last_login_ms {
                Some(ms) => format!(", last login after {ms:.0} ms"),
                None => String::new(),
            }
        )?;
        if let Some(l) = &self.login_ms {
            writeln!(
                f,
                "login          p50 {:.1} ms  p99 {:.1}  max {:.1}",
                l.p50, l.p99, l.max
            )?;
        }
        if let Some(l) = &self.login_request_ms {
            writeln!(
                f,
                "login request  p50 {:.1} ms  p99 {:.1}  max {:.1}",
                l.p50, l.p99, l.max
            )?;
        }
        if let Some(n) = self.tls_resumed {
            writeln!(f, "tls            {n} handshakes resumed a session")?;
        }
        if let Some(bytes) = self.large_request_bytes {
            writeln!(
                f,
                "large          requests of {bytes} bytes, smallest reply {}",
                match self.large_reply_bytes_min {
                    Some(r) => format!("{r} bytes"),
                    None => "— (none arrived)".into(),
                }
            )?;
        }
        let e = &self.errors;
        writeln!(
            f,
            "errors         {} (connect {}, tls {}, upgrade {}, login_rejected {}, timeout {}, closed {}, rpc_error {})",
            e.total(), e.connect, e.tls, e.upgrade, e.login_rejected, e.timeout, e.closed, e.rpc_error
        )?;
        if self.requests > 0 {
            writeln!(
                f,
                "load           {} requests, {} replies in {:.2} s = {:.0} replies/s",
                self.requests, self.replies, self.duration_s, self.replies_per_s
            )?;
        }
        if let Some(r) = &self.rtt_us {
            rtt_line(f, "rtt", r)?;
        }
        if let Some(r) = &self.service_rtt_us {
            rtt_line(f, "rtt (service)", r)?;
        }
        if let Some(fo) = &self.failover {
            failover_lines(f, fo)?;
        }
        if let Some(r) = &self.background_rtt_us {
            rtt_line(f, "background rtt", r)?;
        }
        if let Some(r) = &self.background_service_rtt_us {
            rtt_line(f, "bg (service)", r)?;
        }
        for w in &self.watch {
            watch_line(f, w)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            mode: "steady",
            url: "wss://127.0.0.1:8443/".into(),
            sessions: 10,
            logged_in: 10,
            errors: ErrorCounts::default(),
            duration_s: 1.0,
            rate_per_session: Some(10.0),
            payload_bytes: 200,
            requests: 100,
            replies: 100,
            replies_per_s: 100.0,
            rtt_us: Some(RttSummary {
                count: 100,
                p50: 210,
                p90: 400,
                p99: 900,
                p999: 950,
                max: 1000,
            }),
            service_rtt_us: None,
            login_ms: Some(LoginSummary {
                p50: 1.0,
                p99: 2.0,
                max: 3.0,
            }),
            login_request_ms: Some(LoginSummary {
                p50: 0.25,
                p99: 0.5,
                max: 0.75,
            }),
            time_to_last_login_ms: Some(12.0),
            background_sessions: 0,
            background_rtt_us: None,
            background_service_rtt_us: None,
            watch: Vec::new(),
            nofile_limit: Some(20000),
            tls_resumed: None,
            large_request_bytes: None,
            large_reply_bytes_min: None,
            failover: None,
        }
    }

    #[test]
    fn the_json_report_has_the_documented_keys() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "mode",
            "url",
            "sessions",
            "logged_in",
            "errors",
            "duration_s",
            "rate_per_session",
            "payload_bytes",
            "requests",
            "replies",
            "replies_per_s",
            "rtt_us",
            "service_rtt_us",
            "login_ms",
            "login_request_ms",
            "time_to_last_login_ms",
            "background_sessions",
            "background_rtt_us",
            "background_service_rtt_us",
            "watch",
            "nofile_limit",
            "tls_resumed",
            "large_request_bytes",
            "large_reply_bytes_min",
            "failover",
        ] {
            assert!(keys.contains(&key), "missing {key} in {keys:?}");
        }
        let errors = v["errors"].as_object().unwrap();
        for key in [
            "connect",
            "tls",
            "upgrade",
            "login_rejected",
            "timeout",
            "closed",
            "rpc_error",
        ] {
            assert_eq!(errors[key], 0, "{key}");
        }
        for key in ["p50", "p90", "p99", "p999", "max", "count"] {
            assert!(v["rtt_us"][key].is_u64(), "{key}");
        }
        assert!(v["background_rtt_us"].is_null());
        assert_eq!(v["login_ms"]["max"], 3.0);
        assert_eq!(v["login_request_ms"]["p99"], 0.5);
    }

    #[test]
    fn watch_entries_have_the_documented_keys() {
        let mut r = report();
        r.watch.push(WatchReport {
            pid: 1,
            cpu_s: 1.0,
            cpu_pct: 10.0,
            rss_kib_before: 1,
            rss_kib_after: 2,
            rss_kib_end: None,
            hwm_kib: 2,
            rss_kib_per_session: Some(0.1),
            rss_kib_retained_per_session: None,
            msgs_per_cpu_s: None,
        });
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let w = v["watch"][0].as_object().unwrap();
        for key in [
            "pid",
            "cpu_s",
            "cpu_pct",
            "rss_kib_before",
            "rss_kib_after",
            "rss_kib_end",
            "hwm_kib",
            "rss_kib_per_session",
            "rss_kib_retained_per_session",
            "msgs_per_cpu_s",
        ] {
            assert!(w.contains_key(key), "{key}");
        }
    }

    #[test]
    fn the_human_summary_names_the_essentials() {
        let text = report().to_string();
        assert!(text.contains("10 logged in of 10"), "{text}");
        assert!(text.contains("p50 0.210 ms"), "{text}");
        assert!(text.contains("100 replies/s"), "{text}");
        assert!(
            text.contains("login request  p50 0.2 ms  p99 0.5"),
            "{text}"
        );
    }
}
