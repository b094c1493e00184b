//! `vertogw-bench`: the command line of the load generator: parse options, raise the
//! open-file limit, run, print the report, and exit non-zero when any session failed.
//!
//! Exit codes: 0 every session logged in and every request was answered (ciphers: the
//! measurement finished); 1 the run finished but some sessions or requests failed (the
//! report says which); 2 the run could not start (bad options, unreadable certificate,
//! runtime) or, in ciphers mode, a measurement failed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use vertogw_bench::ciphers::{self, CipherConfig, Suite};
use vertogw_bench::{
    BenchConfig, KillSignal, Mode, Report, Trust, DEFAULT_LARGE_IN_FLIGHT,
    DEFAULT_RECOVER_TIMEOUT_MS, MAX_LARGE_BYTES,
};

/// `--payload` when not given.
const DEFAULT_PAYLOAD: usize = 200;

/// Failover: `--sessions` and `--background-sessions` when not given (issue 10's figures).
const FAILOVER_SESSIONS: usize = 3000;
const FAILOVER_BACKGROUND_SESSIONS: usize = 200;

/// What `--help` says about the large mode's memory figures.
const LARGE_HELP: &str = "\
Mode large: log every session in, sample the RSS of each --watch-pid (after), send one \
echo request of --large-bytes per session (at most --large-in-flight at once; the reply \
is larger still), hold idle --hold seconds after the last reply, sample again (end). In \
the JSON report each watch[] entry then has rss_kib_per_session = (after - before) / \
logged_in, what an idle session costs, and rss_kib_retained_per_session = (end - after) \
/ logged_in, what a session still holds after relaying its large messages (null in \
other modes; about 0 when the target gives the memory back).

Mode failover: --background-sessions (default 200, users from --background-user-start) \
run steady echo at --background-rate; --sessions (default 3000) log in and idle; then \
--signal (kill or stop) goes to --kill-pid, a node process. Each session whose socket \
closes reconnects at once and logs in again with its sessid until it is back or \
--recover-timeout-ms passes. The JSON report's failover entry has the close codes, the \
times from the signal to the first close, the last close and all back, and the logins \
per node; background_rtt_us covers the signal until all are back.

Mode ciphers (no --url, no network): for each --suite (default all four), full \
handshakes in memory (--handshakes, server and client CPU apart), then records of 200 \
and 16,384 bytes sealed by a rustls server and opened by a rustls client \
(--iterations each; default 200,000 and 20,000): ns per record, MB/s, the cheapest \
TLS 1.3 suite, and the suite rustls' default client and the browsers' orders get from \
the gateway's server config.";

/// Load-test a Verto endpoint (the vertogw gateway, another proxy, or a node) like many browsers.
#[derive(Parser)]
#[command(version, about, after_help = LARGE_HELP)]
struct BenchArgs {
    /// Target: ws:// or wss:// URL (loopback only), e.g. wss://127.0.0.1:8443/ (every
    /// mode but ciphers).
    #[arg(long)]
    url: Option<String>,
    /// PEM certificate(s) to trust for wss:// (e.g. the gateway's self-signed cert).
    #[arg(long, conflicts_with = "insecure")]
    ca: Option<PathBuf>,
    /// Accept any server certificate.
    #[arg(long)]
    insecure: bool,
    /// TLS server name to send and verify (default: the URL's host).
    #[arg(long)]
    sni: Option<String>,
    /// steady | throughput | idle | storm | large | failover | ciphers.
    #[arg(long, default_value = "steady")]
    mode: Mode,
    /// Sessions (default 64 for throughput, 3000 for failover, else 100); storm: the
    /// storm's sessions.
    #[arg(long)]
    sessions: Option<usize>,
    /// Requests per second per session (steady).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Load window, seconds (steady, throughput).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Idle hold, seconds (idle; large: after the last large reply).
    #[arg(long, default_value_t = 10.0)]
    hold: f64,
    /// Bytes of padding in each echo request [default: 200] (not large: see --large-bytes).
    #[arg(long)]
    payload: Option<usize>,
    /// Large: bytes of each session's one large echo request, its whole JSON text
    /// (the padding fills it up); the default is the 999,999-byte message limit of
    /// mod_verto and of the gateway's browser side.
    #[arg(long, default_value_t = MAX_LARGE_BYTES)]
    large_bytes: usize,
    /// Large: sessions with a large message in flight at once.
    #[arg(long, default_value_t = DEFAULT_LARGE_IN_FLIGHT)]
    large_in_flight: usize,
    /// Domain of every login.
    #[arg(long, default_value = "bench.test")]
    domain: String,
    /// Session i logs in as <user-start + i>@<domain>.
    #[arg(long, default_value_t = 1000)]
    user_start: u64,
    /// Password of every user.
    #[arg(long, default_value = "1234", env = "VERTOGW_BENCH_PASSWORD")]
    password: String,
    /// Sessions connecting at once (storm: all of its sessions).
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Bound on one session's TCP + TLS + upgrade + login, ms.
    #[arg(long, default_value_t = 30_000)]
    login_timeout_ms: u64,
    /// Storm, failover: steady sessions established first [default: 200 for failover,
    /// else 0].
    #[arg(long)]
    background_sessions: Option<usize>,
    /// Storm, failover: requests per second per background session.
    #[arg(long, default_value_t = 10.0)]
    background_rate: f64,
    /// Failover: the background sessions' first user [default: right after the
    /// sessions' users].
    #[arg(long)]
    background_user_start: Option<u64>,
    /// Failover: the node process to signal once every session has logged in.
    #[arg(long)]
    kill_pid: Option<u32>,
    /// Failover: kill (SIGKILL: refused) or stop (SIGSTOP: black-holed).
    #[arg(long, default_value = "kill")]
    signal: KillSignal,
    /// Failover: bound on signal → every session logged in again, ms.
    #[arg(long, default_value_t = DEFAULT_RECOVER_TIMEOUT_MS)]
    recover_timeout_ms: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Report CPU and memory of this process over the measured phase (repeatable).
    #[arg(long = "watch-pid")]
    watch_pid: Vec<u32>,
    /// Ciphers: a suite to measure, by name (TLS13_AES_128_GCM_SHA256) or alias
    /// (aes128, aes256, chacha20, tls12-aes128); repeatable [default: all four].
    #[arg(long = "suite")]
    suites: Vec<Suite>,
    /// Ciphers: records timed per suite and size [default: 200000 of 200 bytes, 20000
    /// of 16384].
    #[arg(long)]
    iterations: Option<u64>,
    /// Ciphers: full handshakes timed per suite.
    #[arg(long, default_value_t = ciphers::DEFAULT_HANDSHAKES)]
    handshakes: u32,
    /// Storm: connect each storm session once beforehand (not measured) and resume its
    /// TLS session in the storm, like browsers reconnecting to the same gateway.
    #[arg(long)]
    resume: bool,
}

impl BenchArgs {
    fn cipher_config(&self) -> anyhow::Result<CipherConfig> {
        if self.url.is_some() {
            anyhow::bail!("--url does not apply to --mode ciphers: it measures in process");
        }
        let suites = match self.suites.is_empty() {
            true => Suite::ALL.to_vec(),
            false => self.suites.clone(),
        };
        Ok(CipherConfig {
            suites,
            iterations: self.iterations,
            handshakes: self.handshakes,
        })
    }

    fn config(&self) -> anyhow::Result<BenchConfig> {
        let Some(url) = self.url.clone() else {
            anyhow::bail!("--url is required (by every mode but ciphers)");
        };
        if !self.suites.is_empty() || self.iterations.is_some() {
            anyhow::bail!("--suite and --iterations only apply to --mode ciphers");
        }
        let trust = match (&self.ca, self.insecure) {
            (Some(path), _) => Trust::Pem(
                std::fs::read(path)
                    .with_context(|| format!("cannot read --ca {}", path.display()))?,
            ),
            (None, true) => Trust::Insecure,
            (None, false) if url.starts_with("wss:") => {
                anyhow::bail!("wss:// needs --ca FILE or --insecure")
            }
            (None, false) => Trust::Insecure,
        };
        if self.mode == Mode::Large && self.payload.is_some() {
            anyhow::bail!(
                "--payload does not apply to --mode large: --large-bytes sets the size of \
                 the whole large request"
            );
        }
        let failover = self.mode == Mode::Failover;
        let default_sessions = match self.mode {
            Mode::Throughput => 64,
            Mode::Failover => FAILOVER_SESSIONS,
            _ => 100,
        };
        let default_background = match failover {
            true => FAILOVER_BACKGROUND_SESSIONS,
            false => 0,
        };
        Ok(BenchConfig {
            url,
            trust,
            sni: self.sni.clone(),
            mode: self.mode,
            sessions: self.sessions.unwrap_or(default_sessions),
            rate: self.rate,
            duration_s: self.duration,
            hold_s: self.hold,
            payload: self.payload.unwrap_or(DEFAULT_PAYLOAD),
            large_bytes: self.large_bytes,
            large_in_flight: self.large_in_flight,
            domain: self.domain.clone(),
            user_start: self.user_start,
            password: self.password.clone(),
            connect_concurrency: self.connect_concurrency,
            login_timeout_ms: self.login_timeout_ms,
            background_sessions: self.background_sessions.unwrap_or(default_background),
            background_rate: self.background_rate,
            background_user_start: self.background_user_start,
            kill_pid: self.kill_pid,
            signal: self.signal,
            recover_timeout_ms: self.recover_timeout_ms,
            watch: self.watch_pid.clone(),
            resume: self.resume,
        })
    }
}

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    init_logging();
    if args.mode == Mode::Ciphers {
        return run_ciphers(&args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(run(&args)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        writeln!(out, "{}", report.to_json())
    } else {
        write!(out, "{report}")
    };
    if let Err(err) = printed.and_then(|()| out.flush()) {
        eprintln!("error: cannot print the report: {err}");
        return ExitCode::from(2);
    }
    let failures = report.failures();
    if failures > 0 {
        eprintln!(
            "error: {failures} failure(s): {} of {} sessions logged in (see errors in the report)",
            report.logged_in, report.sessions
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `--mode ciphers`: no runtime and no sockets; the report or exit code 2.
fn run_ciphers(args: &BenchArgs) -> ExitCode {
    let report = match args
        .cipher_config()
        .and_then(|config| Ok(ciphers::run(&config)?))
    {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let text = match args.json {
        true => format!("{}\n", report.to_json()),
        false => report.to_string(),
    };
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        eprintln!("error: cannot print the report: {err}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// Raises the open-file limit and runs the load.
async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    let config = args.config()?;
    let nofile = match vertogw_net::fd::raise_nofile_limit() {
        Ok(limit) => {
            tracing::info!(limit, "soft RLIMIT_NOFILE raised to the hard limit");
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise RLIMIT_NOFILE");
            None
        }
    };
    let mut report = vertogw_bench::run(&config).await?;
    report.nofile_limit = nofile;
    Ok(report)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
