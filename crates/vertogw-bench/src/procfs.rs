//! What `--watch-pid` measures: CPU time and resident memory of other processes, read
//! from `/proc/PID/stat` and `/proc/PID/status`; and raising the bench's own
//! open-file limit.

use std::time::Instant;

use serde::Serialize;

/// Clock ticks per second assumed when `sysconf(_SC_CLK_TCK)` cannot be read.
const FALLBACK_CLK_TCK: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub hwm_kib: u64,
}

/// Reads a sample of `pid`; `None` when the process is gone or unreadable.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss_kib, hwm_kib) = parse_status(&status);
    Some(ProcSample {
        at,
        cpu_ticks: parse_stat_cpu_ticks(&stat)?,
        rss_kib: rss_kib?,
        hwm_kib: hwm_kib.unwrap_or(0),
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` and `VmHWM` in KiB from a `/proc/PID/status` text.
pub fn parse_status(status: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, else 100).
pub fn clock_ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => u64::try_from(t).unwrap_or(FALLBACK_CLK_TCK),
        _ => FALLBACK_CLK_TCK,
    }
}

/// What one watched process used during the measured phase (`watch[]` in the JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchReport {
    /// The process.
    pub pid: u32,
    /// CPU seconds (user + system) used during the phase.
    pub cpu_s: f64,
    /// `cpu_s` as a percentage of one core over the phase's wall time.
    pub cpu_pct: f64,
    /// VmRSS at the start of the phase, KiB.
    pub rss_kib_before: u64,
    /// VmRSS at the end of the phase, KiB (idle, large: once all sessions are logged in).
    pub rss_kib_after: u64,
    /// VmRSS at the end of the hold (idle and large modes only), KiB.
    pub rss_kib_end: Option<u64>,
    /// VmHWM (peak RSS) at the end, KiB.
    pub hwm_kib: u64,
    /// (after − before) / logged-in sessions, KiB.
    pub rss_kib_per_session: Option<f64>,
    /// Large mode: (end − after) / logged-in sessions, KiB: what each session still
    /// holds once idle again after its large messages (`None` in other modes).
    pub rss_kib_retained_per_session: Option<f64>,
    /// Replies during the phase per CPU second of this process (`None` without replies).
    pub msgs_per_cpu_s: Option<f64>,
}

impl WatchReport {
    /// Compares two samples of `pid`; `end` is the optional third (idle) sample.
    pub fn compute(
        pid: u32,
        before: &ProcSample,
        after: &ProcSample,
        end: Option<&ProcSample>,
        sessions: u64,
        messages: u64,
        ticks_per_s: u64,
    ) -> WatchReport {
        let cpu_s =
            after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / ticks_per_s.max(1) as f64;
        let wall = after.at.saturating_duration_since(before.at).as_secs_f64();
        let cpu_pct = if wall > 0.0 {
            cpu_s / wall * 100.0
        } else {
            0.0
        };
        let delta = after.rss_kib as f64 - before.rss_kib as f64;
        let last = end.unwrap_or(after);
        WatchReport {
            pid,
            cpu_s,
            cpu_pct,
            rss_kib_before: before.rss_kib,
            rss_kib_after: after.rss_kib,
            rss_kib_end: end.map(|e| e.rss_kib),
            hwm_kib: last.hwm_kib.max(after.hwm_kib),
            rss_kib_per_session: (sessions > 0).then(|| delta / sessions as f64),
            rss_kib_retained_per_session: None,
            msgs_per_cpu_s: (messages > 0 && cpu_s > 0.0).then(|| messages as f64 / cpu_s),
        }
    }
}

impl WatchReport {
    /// (end − after) / `sessions`, KiB; `None` without an end sample or sessions.
    pub fn retained_per_session(&self, sessions: u64) -> Option<f64> {
        let end = self.rss_kib_end?;
        (sessions > 0).then(|| (end as f64 - self.rss_kib_after as f64) / sessions as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const STAT: &str = "4242 (vertogw (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        250 50 0 0 20 0 3 0 12345 123456789 2048 18446744073709551615";

    #[test]
    fn cpu_ticks_are_utime_plus_stime_even_with_odd_command_names() {
        assert_eq!(parse_stat_cpu_ticks(STAT), Some(300));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn rss_and_hwm_come_from_status_in_kib() {
        let status = "Name:\tvertogw\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(parse_status(status), (Some(10240), Some(20480)));
        assert_eq!(parse_status("Name:\tkthread\n"), (None, None));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
        assert!(clock_ticks_per_second() > 0);
        assert!(sample(u32::MAX).is_none());
    }

    #[test]
    fn the_report_derives_cpu_share_and_rss_per_session() {
        let t0 = Instant::now();
        let before = ProcSample {
            at: t0,
            cpu_ticks: 100,
            rss_kib: 10_000,
            hwm_kib: 10_000,
        };
        let after = ProcSample {
            at: t0 + Duration::from_secs(10),
            cpu_ticks: 600,
            rss_kib: 30_000,
            hwm_kib: 31_000,
        };
        let r = WatchReport::compute(7, &before, &after, None, 1000, 100_000, 100);
        assert_eq!(r.pid, 7);
        assert!((r.cpu_s - 5.0).abs() < 1e-9);
        assert!((r.cpu_pct - 50.0).abs() < 1e-9);
        assert_eq!(r.rss_kib_per_session, Some(20.0));
        assert_eq!(r.msgs_per_cpu_s, Some(20_000.0));
        assert_eq!(r.hwm_kib, 31_000);
        let none = WatchReport::compute(7, &before, &before, None, 0, 0, 100);
        assert_eq!(
            (none.rss_kib_per_session, none.msgs_per_cpu_s),
            (None, None)
        );
    }

    #[test]
    fn retained_per_session_is_end_minus_after_over_sessions_and_may_be_negative() {
        let t0 = Instant::now();
        let at = |rss_kib| ProcSample {
            at: t0,
            cpu_ticks: 0,
            rss_kib,
            hwm_kib: 50_000,
        };
        let r = WatchReport::compute(7, &at(10_000), &at(20_000), Some(&at(22_000)), 100, 0, 100);
        assert_eq!(r.rss_kib_per_session, Some(100.0));
        assert_eq!(
            r.rss_kib_retained_per_session, None,
            "set by the large mode"
        );
        assert_eq!(r.retained_per_session(100), Some(20.0));
        assert_eq!(r.retained_per_session(0), None);
        let shrunk =
            WatchReport::compute(7, &at(10_000), &at(20_000), Some(&at(19_000)), 100, 0, 100);
        assert_eq!(shrunk.retained_per_session(100), Some(-10.0));
        let no_end = WatchReport::compute(7, &at(10_000), &at(20_000), None, 100, 0, 100);
        assert_eq!(no_end.retained_per_session(100), None);
    }
}
