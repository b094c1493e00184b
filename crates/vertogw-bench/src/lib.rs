//! vertogw-bench: a Verto load generator that behaves like many browsers, to compare
//! the gateway with other proxies and with a direct connection to a node.
//!
//! Every session connects (TCP, TLS with SNI, WebSocket upgrade), sends the empty
//! `login` real clients start with, expects `-32000`, then logs in as
//! `<user_start + i>@<domain>` and expects a `result`. The load is the node's `echo`
//! method (`{"jsonrpc":"2.0","method":"echo","params":{"pad":"xx…"},"id":N}`; the
//! node's users need `echo` in `allowed_methods`); a reply is matched by its `id`,
//! server requests (`method`) are skipped and `verto.ping` is acknowledged.
//!
//! Modes: `steady` (open loop, `rate` requests/s per session, phases spread over one
//! period), `throughput` (closed loop), `idle` (log in, hold, close), `storm` (all
//! sessions at once, optionally over steady background sessions) and `large` (log in,
//! one echo of `large_bytes` (default 999,999, the largest message mod_verto and the
//! gateway accept by default) per session, at most `large_in_flight` sessions at a
//! time, then hold idle: does the target's memory return to its idle size?) and
//! `failover` (idle sessions of one partition and steady background sessions of
//! another log in; then SIGKILL or SIGSTOP to `kill_pid`, a node process; every closed
//! session reconnects at once and logs in again with its sessid, like a Verto browser,
//! until all are back or `recover_timeout_ms` passes), and `ciphers` (no target, no
//! sockets: what each TLS 1.3 cipher suite of rustls' aws-lc-rs provider costs on this
//! CPU, per record and per handshake; see [`ciphers`]).
//!
//! # JSON report (`--json`), one object, stable keys
//! - `mode`, `url`, `sessions` (requested), `logged_in`, `payload_bytes` (the bytes of
//!   `pad` in each request; large: in the large request), `rate_per_session` (steady;
//!   null otherwise).
//! - `errors`: `{connect, tls, upgrade, login_rejected, timeout, closed, rpc_error}`;
//!   each counts sessions that failed that way, except `rpc_error`, which counts
//!   error replies to `echo`.
//! - `duration_s`: the measured window (load window; idle: the hold; storm: first
//!   connect → last login; large: first large request → last large reply; failover:
//!   the whole run, over which the background sessions' `requests`/`replies` count).
//! - `requests`, `replies`, `replies_per_s` (= replies / `duration_s`).
//! - `rtt_us`: `{count, p50, p90, p99, p999, max}` in µs, or null. Steady: from the
//!   intended send time (lateness beyond the timer's 2 ms resolution is charged, so a
//!   stalled generator or target cannot hide latency); throughput and large: send →
//!   reply (large: of the large messages, queueing for a slot not counted).
//! - `service_rtt_us`: steady only, actual send → reply.
//! - `login_ms`: `{p50, p99, max}` (connect start → login accepted), or null.
//! - `login_request_ms`: the same for the login request alone (sent → its result:
//!   through a gateway, the routing, the node connection and the node's answer).
//! - `time_to_last_login_ms`: first connect → last successful login.
//! - `background_sessions`, `background_rtt_us` (storm: the background sessions' RTT
//!   during the storm window, from intended send time), `background_service_rtt_us`
//!   (the same from actual send time: the difference is the generator's own lateness).
//! - `watch`: one entry per `--watch-pid`: `{pid, cpu_s, cpu_pct, rss_kib_before,
//!   rss_kib_after, rss_kib_end, hwm_kib, rss_kib_per_session,
//!   rss_kib_retained_per_session, msgs_per_cpu_s}` over the measured phase (idle and
//!   large: before connecting → all logged in; `rss_kib_end` at the end of the hold,
//!   which in large mode follows the last large reply). `rss_kib_per_session`
//!   = (`rss_kib_after` − `rss_kib_before`) / `logged_in`: what a logged-in idle session
//!   costs. `rss_kib_retained_per_session` (large only; null otherwise)
//!   = (`rss_kib_end` − `rss_kib_after`) / `logged_in`: what each session still holds
//!   once it is idle again after its large message each way (≈ 0 when the target gives
//!   the buffers back). `hwm_kib` is the peak over the whole run, large messages included.
//! - `large_request_bytes`: large: the size of each large request's text (null
//!   otherwise); `large_reply_bytes_min`: large: the smallest successful large reply,
//!   bytes (null when none arrived), so the message was large both ways.
//! - `nofile_limit`: the bench's own open-file limit after raising it.
//! - `tls_resumed`: storm with `--resume`: the storm's TLS handshakes that resumed a
//!   session (null without `--resume`).
//! - `failover`: null except in failover mode: `{signal, kill_pid, signal_unix_ms,
//!   expected, close_codes, closed_sessions, back_sessions, first_close_ms,
//!   last_close_ms, all_back_ms, back_ms, reconnect_failures, initial_nodes,
//!   relogin_nodes}`. `expected`: sessions logged in at the signal; `close_codes`:
//!   closes after the signal per code (`"1006"`: the socket broke without a close
//!   frame); the `*_ms` times are from the signal (`all_back_ms`: every expected session
//!   logged in again, null when some were not by the timeout; `back_ms`: `{p50, p99,
//!   max}` of each session's return); `reconnect_failures`: failed attempts by category
//!   (each retried, not run errors); `initial_nodes` / `relogin_nodes`: logins per node
//!   as the node's `verto.clientReady` names it (`sim_node`; empty for real nodes).
//!   `background_rtt_us` is then the background RTT from the signal until every session
//!   is back, and a session not back in time counts in `errors.timeout`.
//!
//! # JSON report of `--mode ciphers`, one object, stable keys
//! - `mode` (`"ciphers"`), `cpu_model` (from `/proc/cpuinfo`, or null), `aes_hw` (AES-NI
//!   and PCLMULQDQ present; null off x86-64).
//! - `suites`: one entry per suite: `{suite, protocol, kx_group, records, handshake_us}`.
//!   `records`: one per size (200 bytes, a typical Verto message; 16,384, a full
//!   record): `{bytes, wire_bytes, iterations, ns_per_record, seal_ns, open_ns,
//!   mb_per_s}`: `ns_per_record` is the mean time for the server to write and seal one
//!   record and the client to open it and read it out, on one core, after a warm-up;
//!   `seal_ns` the server's half timed alone, `open_ns` the rest; `mb_per_s` plaintext
//!   MB (10^6 bytes) per second through both. `handshake_us`: `{count, server, client,
//!   pair}`, the mean µs a full handshake (ECDSA P-256 certificate, no resumption,
//!   tickets issued as the gateway does) spends in the server's calls, the client's, both.
//! - `cheapest`: the TLS 1.3 suite with the lowest `ns_per_record` at 200 bytes (null
//!   when none was measured); `cheapest_by_size`: `[{bytes, suite, ns_per_record,
//!   runner_up, margin_pct}]` (`margin_pct`: how much more the runner-up costs, %).
//! - `groups`: one entry per key exchange group (X25519, X25519MLKEM768, secp256r1):
//!   `{group, suite, handshake_us, client_bytes, server_bytes}`: full handshakes with
//!   AES-128-GCM, the client offering only that group to a server configured like the
//!   gateway; the bytes each side sent in one handshake (the server's tickets included).
//! - `negotiated`: `[{client, offers, negotiated, offers_groups, kx_group}]`: the suite
//!   and key exchange group rustls' default client, Chrome's order and Firefox's order
//!   (both offering X25519MLKEM768, X25519, secp256r1) get from the gateway's own
//!   server config.
#![forbid(unsafe_code)]

use std::fmt;

use serde::Serialize;

pub mod ciphers;
mod connect;
mod failover;
mod hist;
mod large;
mod modes;
mod procfs;
mod report;
mod run;
mod scan;
mod session;
mod tap;

#[cfg(test)]
mod tests;

pub use connect::Trust;
pub use failover::FailoverReport;
pub use hist::{LoginSummary, RttSummary, MAX_RECORDED_US};
pub use large::LARGE_REPLY_TIMEOUT;
pub use modes::run;
pub use procfs::WatchReport;
pub use report::Report;
pub use session::{CLOSE_TIMEOUT, DRAIN_TIMEOUT, MAX_OUTSTANDING, TIMER_RESOLUTION};

/// Largest `pad` an echo request may carry (the node refuses messages of 1,000,000 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 900_000;

/// Largest large-mode request, and its default size: mod_verto refuses messages of
/// 1,000,000 bytes, and the gateway's default browser message limit is the same 999,999.
pub const MAX_LARGE_BYTES: usize = 999_999;

/// Default of `large_in_flight`: sessions with a large message in flight at once.
pub const DEFAULT_LARGE_IN_FLIGHT: usize = 16;

/// Most sessions that may have a large message in flight at once (each costs the bench
/// about two messages of memory while it does).
pub const MAX_LARGE_IN_FLIGHT: usize = 1024;

/// Most sessions one run may open.
pub const MAX_SESSIONS: usize = 100_000;

/// Default of `recover_timeout_ms`: how long failover sessions may take to come back.
pub const DEFAULT_RECOVER_TIMEOUT_MS: u64 = 30_000;

/// Longest load window or hold.
pub const MAX_DURATION_S: f64 = 3600.0;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The target URL is unusable.
    #[error("--url {0}")]
    Url(String),
    /// A setting is out of bounds.
    #[error("{0}")]
    Invalid(String),
    /// The trusted certificate could not be used.
    #[error(transparent)]
    Tls(#[from] vertogw_net::tls::TlsError),
}

/// How a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// TCP connect failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The WebSocket upgrade failed.
    Upgrade,
    /// A login got an unexpected answer.
    LoginRejected,
    /// Login or outstanding replies took too long.
    Timeout,
    /// The socket closed or broke.
    Closed,
}

/// Failure counts by category (`errors` in the report).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// TCP connect failures.
    pub connect: u64,
    /// TLS handshake failures.
    pub tls: u64,
    /// WebSocket upgrade failures.
    pub upgrade: u64,
    /// Logins that got an unexpected answer.
    pub login_rejected: u64,
    /// Sessions that timed out logging in or waiting for replies.
    pub timeout: u64,
    /// Sessions whose socket closed or broke.
    pub closed: u64,
    /// Error replies to `echo`.
    pub rpc_error: u64,
}

impl ErrorCounts {
    /// Counts one failure.
    pub fn add(&mut self, kind: ErrorKind) {
        let slot = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Tls => &mut self.tls,
            ErrorKind::Upgrade => &mut self.upgrade,
            ErrorKind::LoginRejected => &mut self.login_rejected,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Closed => &mut self.closed,
        };
        *slot += 1;
    }

    /// Sessions that failed, in any category (`rpc_error` counts replies, not sessions).
    pub fn failed_sessions(&self) -> u64 {
        self.connect + self.tls + self.upgrade + self.login_rejected + self.timeout + self.closed
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.tls += other.tls;
        self.upgrade += other.upgrade;
        self.login_rejected += other.login_rejected;
        self.timeout += other.timeout;
        self.closed += other.closed;
        self.rpc_error += other.rpc_error;
    }

    /// All failures.
    pub fn total(&self) -> u64 {
        self.connect
            + self.tls
            + self.upgrade
            + self.login_rejected
            + self.timeout
            + self.closed
            + self.rpc_error
    }
}

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Open loop at a fixed rate per session: RTT percentiles.
    Steady,
    /// Closed loop: messages per second.
    Throughput,
    /// Log in and hold: memory per idle session.
    Idle,
    /// All sessions at once: login latency (optionally over background load).
    Storm,
    /// One large message each way per session, then idle: memory retained afterwards.
    Large,
    /// A node process is signalled; its sessions reconnect: closes, time to all back.
    Failover,
    /// No target: the CPU cost of each TLS cipher suite, in process ([`ciphers`]).
    Ciphers,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 7] = [
        Mode::Steady,
        Mode::Throughput,
        Mode::Idle,
        Mode::Storm,
        Mode::Large,
        Mode::Failover,
        Mode::Ciphers,
    ];

    /// The mode's name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Steady => "steady",
            Mode::Throughput => "throughput",
            Mode::Idle => "idle",
            Mode::Storm => "storm",
            Mode::Large => "large",
            Mode::Failover => "failover",
            Mode::Ciphers => "ciphers",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown mode {s:?}: steady, throughput, idle, storm, large, failover or ciphers")
            })
    }
}

/// The signal `--mode failover` sends to `--kill-pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSignal {
    /// SIGKILL: the node's sockets are gone, new connections are refused.
    Kill,
    /// SIGSTOP: the node is black-holed, its sockets stay open and silent.
    Stop,
}

impl KillSignal {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            KillSignal::Kill => "kill",
            KillSignal::Stop => "stop",
        }
    }
}

impl std::str::FromStr for KillSignal {
    type Err = String;

    fn from_str(s: &str) -> Result<KillSignal, String> {
        match s {
            "kill" => Ok(KillSignal::Kill),
            "stop" => Ok(KillSignal::Stop),
            _ => Err(format!("unknown signal {s:?}: kill or stop")),
        }
    }
}

/// Everything a run needs (the command line, validated by [`BenchConfig::validate`]).
/// No `Debug`: it holds the users' password.
#[derive(Clone)]
pub struct BenchConfig {
    /// `ws://` or `wss://` URL of the target (loopback only).
    pub url: String,
    /// How the target's certificate is trusted.
    pub trust: Trust,
    /// SNI name (default: the URL's host).
    pub sni: Option<String>,
    /// What to measure.
    pub mode: Mode,
    /// Sessions (storm: the storm's sessions).
    pub sessions: usize,
    /// Requests per second per session (steady).
    pub rate: f64,
    /// Load window, seconds (steady, throughput).
    pub duration_s: f64,
    /// Hold time, seconds (idle; large: after the last large reply).
    pub hold_s: f64,
    /// Bytes of `x` in each echo request's `pad` (not large: see `large_bytes`).
    pub payload: usize,
    /// Large: bytes of each large echo request's whole JSON text (its `pad` fills it).
    pub large_bytes: usize,
    /// Large: sessions with a large message in flight at once.
    pub large_in_flight: usize,
    /// Domain of every login.
    pub domain: String,
    /// First user number.
    pub user_start: u64,
    /// Password of every user.
    pub password: String,
    /// Sessions connecting at once (storm: all of them).
    pub connect_concurrency: usize,
    /// Bound on one session's connect + login, ms.
    pub login_timeout_ms: u64,
    /// Storm, failover: steady sessions established first.
    pub background_sessions: usize,
    /// Storm, failover: requests per second per background session.
    pub background_rate: f64,
    /// Failover: the first background user (default: right after the sessions' users),
    /// so that the background sessions can belong to another partition.
    pub background_user_start: Option<u64>,
    /// Failover: the process to signal (a node the caller started).
    pub kill_pid: Option<u32>,
    /// Failover: which signal.
    pub signal: KillSignal,
    /// Failover: signal → every session back, at most, ms.
    pub recover_timeout_ms: u64,
    /// Processes whose CPU and memory are reported.
    pub watch: Vec<u32>,
    /// Storm: each storm session first connects once (a warm-up, not measured) and
    /// keeps its TLS session, so the storm's handshakes resume, as browsers reconnecting
    /// to the same gateway do.
    pub resume: bool,
}

impl BenchConfig {
    /// Checks every bound; the error says which option to change.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: String| Err(BenchError::Invalid(m));
        if self.mode == Mode::Ciphers {
            return bad("--mode ciphers has no target: run it with ciphers::run".into());
        }
        let total = self.sessions.saturating_add(self.background_sessions);
        if self.sessions == 0 || total > MAX_SESSIONS {
            return bad(format!(
                "--sessions (+ --background-sessions) must be 1..={MAX_SESSIONS}"
            ));
        }
        for (name, rate) in [
            ("--rate", self.rate),
            ("--background-rate", self.background_rate),
        ] {
            if !(rate > 0.0 && rate <= 100_000.0) {
                return bad(format!("{name} must be > 0 and <= 100000 requests/s"));
            }
        }
        for (name, secs) in [("--duration", self.duration_s), ("--hold", self.hold_s)] {
            if !(secs > 0.0 && secs <= MAX_DURATION_S) {
                return bad(format!(
                    "{name} must be > 0 and <= {MAX_DURATION_S} seconds"
                ));
            }
        }
        if self.payload > MAX_PAYLOAD_BYTES {
            return bad(format!("--payload must be <= {MAX_PAYLOAD_BYTES} bytes"));
        }
        let smallest = large::smallest_request();
        if !(smallest..=MAX_LARGE_BYTES).contains(&self.large_bytes) {
            return bad(format!(
                "--large-bytes must be {smallest}..={MAX_LARGE_BYTES} (the whole request)"
            ));
        }
        if !(1..=MAX_LARGE_IN_FLIGHT).contains(&self.large_in_flight) {
            return bad(format!(
                "--large-in-flight must be 1..={MAX_LARGE_IN_FLIGHT}"
            ));
        }
        if self.connect_concurrency == 0 {
            return bad("--connect-concurrency must be at least 1".into());
        }
        if !(1..=600_000).contains(&self.login_timeout_ms) {
            return bad("--login-timeout-ms must be 1..=600000".into());
        }
        if self.background_sessions > 0 && !matches!(self.mode, Mode::Storm | Mode::Failover) {
            return bad("--background-sessions only applies to --mode storm or failover".into());
        }
        self.validate_failover()?;
        if self.resume && (self.mode != Mode::Storm || !self.url.starts_with("wss:")) {
            return bad("--resume only applies to --mode storm against a wss:// URL".into());
        }
        Ok(())
    }

    /// The failover options: present exactly in failover mode, and the background
    /// users after the sessions' users (the same user twice would be two browsers
    /// fighting over one registration).
    fn validate_failover(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::Invalid(m.into()));
        let failover = self.mode == Mode::Failover;
        match (failover, self.kill_pid) {
            (true, None) => return bad("--mode failover needs --kill-pid PID (a node process)"),
            (false, Some(_)) => return bad("--kill-pid only applies to --mode failover"),
            _ => {}
        }
        if !failover && self.background_user_start.is_some() {
            return bad("--background-user-start only applies to --mode failover");
        }
        if !(1..=600_000).contains(&self.recover_timeout_ms) {
            return bad("--recover-timeout-ms must be 1..=600000");
        }
        let sessions_end = self.user_start.saturating_add(self.sessions as u64);
        if let Some(start) = self.background_user_start {
            if start < sessions_end {
                return bad("--background-user-start must be >= --user-start + --sessions");
            }
            if start - self.user_start > MAX_USER_OFFSET {
                return bad("--background-user-start is too far above --user-start");
            }
        }
        Ok(())
    }

    /// Failover: the session index of the first background session (index `i` logs in
    /// as `user_start + i`).
    pub(crate) fn background_first(&self) -> usize {
        let start = self
            .background_user_start
            .unwrap_or(self.user_start + self.sessions as u64);
        usize::try_from(start.saturating_sub(self.user_start)).unwrap_or(self.sessions)
    }
}

/// Largest distance between `--user-start` and `--background-user-start`.
const MAX_USER_OFFSET: u64 = 10_000_000;
