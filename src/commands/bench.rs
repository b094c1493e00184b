//! `vertogw bench`: the command-line face of [`crate::bench`]: parse options, raise
//! the open-file limit, run, print the report.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::bench::{self, BenchConfig, Mode, Trust};

/// Options of `vertogw bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Target: ws:// or wss:// URL (loopback only), e.g. wss://127.0.0.1:8443/.
    #[arg(long)]
    pub url: String,
    /// PEM certificate(s) to trust for wss:// (e.g. the gateway's self-signed cert).
    #[arg(long, conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// TLS server name to send and verify (default: the URL's host).
    #[arg(long)]
    pub sni: Option<String>,
    /// steady | throughput | idle | storm.
    #[arg(long, default_value = "steady")]
    pub mode: Mode,
    /// Sessions (default 64 for throughput, else 100); storm: the storm's sessions.
    #[arg(long)]
    pub sessions: Option<usize>,
    /// Requests per second per session (steady).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Load window, seconds (steady, throughput).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Idle hold, seconds (idle).
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Bytes of padding in each echo request.
    #[arg(long, default_value_t = 200)]
    pub payload: usize,
    /// Domain of every login.
    #[arg(long, default_value = "bench.test")]
    pub domain: String,
    /// Session i logs in as <user-start + i>@<domain>.
    #[arg(long, default_value_t = 1000)]
    pub user_start: u64,
    /// Password of every user.
    #[arg(long, default_value = "1234", env = "VERTOGW_BENCH_PASSWORD")]
    pub password: String,
    /// Sessions connecting at once (storm: all of its sessions).
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Bound on one session's TCP + TLS + upgrade + login, ms.
    #[arg(long, default_value_t = 30_000)]
    pub login_timeout_ms: u64,
    /// Storm: steady sessions established before the storm.
    #[arg(long, default_value_t = 0)]
    pub background_sessions: usize,
    /// Storm: requests per second per background session.
    #[arg(long, default_value_t = 10.0)]
    pub background_rate: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Report CPU and memory of this process over the measured phase (repeatable).
    #[arg(long = "watch-pid")]
    pub watch_pid: Vec<u32>,
}

impl BenchArgs {
    fn config(&self) -> anyhow::Result<BenchConfig> {
        let trust = match (&self.ca, self.insecure) {
            (Some(path), _) => Trust::Pem(
                std::fs::read(path)
                    .with_context(|| format!("cannot read --ca {}", path.display()))?,
            ),
            (None, true) => Trust::Insecure,
            (None, false) if self.url.starts_with("wss:") => {
                anyhow::bail!("wss:// needs --ca FILE or --insecure")
            }
            (None, false) => Trust::Insecure,
        };
        let default_sessions = if self.mode == Mode::Throughput {
            64
        } else {
            100
        };
        Ok(BenchConfig {
            url: self.url.clone(),
            trust,
            sni: self.sni.clone(),
            mode: self.mode,
            sessions: self.sessions.unwrap_or(default_sessions),
            rate: self.rate,
            duration_s: self.duration,
            hold_s: self.hold,
            payload: self.payload,
            domain: self.domain.clone(),
            user_start: self.user_start,
            password: self.password.clone(),
            connect_concurrency: self.connect_concurrency,
            login_timeout_ms: self.login_timeout_ms,
            background_sessions: self.background_sessions,
            background_rate: self.background_rate,
            watch: self.watch_pid.clone(),
        })
    }
}

/// Runs the bench and prints its report (JSON with `--json`) to `out`.
pub async fn run(args: BenchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let config = args.config()?;
    let nofile = match bench::raise_nofile_limit() {
        Ok(limit) => {
            tracing::info!(limit, "bench: soft RLIMIT_NOFILE raised to the hard limit");
            Some(limit)
        }
        Err(e) => {
            tracing::warn!(error = %e, "bench: cannot raise RLIMIT_NOFILE");
            None
        }
    };
    let mut report = bench::run(&config).await?;
    report.nofile_limit = nofile;
    if args.json {
        writeln!(out, "{}", report.to_json())?;
    } else {
        write!(out, "{report}")?;
    }
    Ok(())
}
