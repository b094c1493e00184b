//! The modes as phases over session groups, with `--watch-pid` samples taken at the
//! edges of each mode's measured phase (`large` has its own module).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::connect::Target;
use super::failover;
use super::hist::{LoginSummary, Recorder, RttSummary};
use super::large;
use super::procfs::{self, ProcSample, WatchReport};
use super::report::Report;
use super::run::{Group, GroupSpec, Logins, Totals, Work};
use super::session::{Proto, Sink, CLOSE_TIMEOUT, DRAIN_TIMEOUT};
use super::{BenchConfig, BenchError, Mode};

/// Delay between the last login and the first request, so every session is waiting.
const START_LEAD: Duration = Duration::from_millis(50);

/// Background sessions run this long before the storm starts.
const STORM_WARMUP: Duration = Duration::from_secs(1);

/// Slack on top of each bound when joining sessions.
pub const JOIN_SLACK: Duration = Duration::from_secs(5);

/// Runs the configured mode against the target and returns the report.
pub async fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    config.validate()?;
    // Checked before any session connects, so a wrong pid costs nothing.
    let kill_target = config.kill_pid.map(failover::check_target).transpose()?;
    // `--resume`: the storm's sessions, which follow the background ones.
    let resume = match config.resume {
        true => config.background_sessions..config.background_sessions + config.sessions,
        false => 0..0,
    };
    let target = Target::new(&config.url, &config.trust, config.sni.as_deref(), resume).await?;
    let proto = Arc::new(Proto {
        target,
        domain: config.domain.clone(),
        password: config.password.clone(),
        user_start: config.user_start,
        sessid_seed: sessid_seed(),
        request_prefix: echo_prefix(config.payload).into(),
        login_timeout: Duration::from_millis(config.login_timeout_ms),
    });
    tracing::info!(mode = %config.mode, url = %config.url, sessions = config.sessions, "bench: starting");
    Ok(match config.mode {
        Mode::Steady | Mode::Throughput => load(config, &proto).await,
        Mode::Idle => idle(config, &proto).await,
        Mode::Storm => storm(config, &proto).await,
        Mode::Large => large::large(config, &proto).await,
        // Refused by `validate`: it has no target and runs without a runtime.
        Mode::Ciphers => {
            return Err(BenchError::Invalid(
                "--mode ciphers has no target: run it with ciphers::run".into(),
            ))
        }
        Mode::Failover => match kill_target {
            Some(target) => failover::failover(config, &proto, target).await,
            None => {
                return Err(BenchError::Invalid(
                    "--mode failover needs --kill-pid".into(),
                ))
            }
        },
    })
}

/// The echo request up to its id, with `pad` bytes of padding:
/// `{"jsonrpc":"2.0","method":"echo","params":{"pad":"xx…"},"id":`.
pub fn echo_prefix(pad: usize) -> Vec<u8> {
    let mut prefix = br#"{"jsonrpc":"2.0","method":"echo","params":{"pad":""#.to_vec();
    prefix.resize(prefix.len() + pad, b'x');
    prefix.extend_from_slice(br#""},"id":"#);
    prefix
}

fn sessid_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// A fresh latency sink; `service` also records actual send → reply.
pub fn sink(service: bool) -> Sink {
    Sink {
        rtt: Arc::new(Recorder::new()),
        service: service.then(|| Arc::new(Recorder::new())),
        gate: None,
    }
}

/// The latest a group's logins can take: each session is bounded by the login timeout
/// and they connect `concurrency` at a time.
pub fn login_deadline(config: &BenchConfig, size: usize, concurrency: usize) -> Instant {
    let waves = size.div_ceil(concurrency.max(1)) as u32;
    let per = Duration::from_millis(config.login_timeout_ms);
    Instant::now() + per.saturating_mul(waves.saturating_add(1)) + JOIN_SLACK
}

/// The latest a group's sessions can take to finish once their work ends at `from`.
pub fn finish_deadline(from: Instant) -> Instant {
    from + DRAIN_TIMEOUT + CLOSE_TIMEOUT + JOIN_SLACK
}

/// Spawns `size` sessions from index `first` with `work`; the token ends the work early.
pub fn spawn(
    proto: &Arc<Proto>,
    config: &BenchConfig,
    first: usize,
    size: usize,
    work: Work,
    sink: Sink,
) -> (Group, CancellationToken) {
    let stop = CancellationToken::new();
    let concurrency = match config.mode {
        Mode::Storm => size,
        _ => config.connect_concurrency,
    };
    let spec = GroupSpec {
        first,
        size,
        concurrency,
        work,
        sink,
        stop: stop.clone(),
    };
    (Group::spawn(proto, spec), stop)
}

async fn load(config: &BenchConfig, proto: &Arc<Proto>) -> Report {
    let duration = Duration::from_secs_f64(config.duration_s);
    let steady = config.mode == Mode::Steady;
    let work = match steady {
        true => Work::Steady {
            period: Duration::from_secs_f64(1.0 / config.rate),
            duration,
        },
        false => Work::Closed { duration },
    };
    let sink = sink(steady);
    let began = Instant::now();
    let (mut group, _stop) = spawn(proto, config, 0, config.sessions, work, sink.clone());
    let logins = log_in_all(&mut group, config, began).await;
    let start = Instant::now() + START_LEAD;
    group.start(start);
    sleep_until(start).await;
    let before = Watch::sample(&config.watch);
    sleep_until(start + duration).await;
    let after = Watch::sample(&config.watch);
    let totals = group.finish(finish_deadline(start + duration)).await;
    let mut report = base_report(config, &logins, began, &totals, duration);
    report.rate_per_session = steady.then_some(config.rate);
    report.rtt_us = RttSummary::of(&sink.rtt.merged());
    report.service_rtt_us = sink.service.and_then(|s| RttSummary::of(&s.merged()));
    report.watch = before.compare(&after, None, logins.ok, totals.replies);
    report
}

async fn idle(config: &BenchConfig, proto: &Arc<Proto>) -> Report {
    let hold = Duration::from_secs_f64(config.hold_s);
    let before = Watch::sample(&config.watch);
    let began = Instant::now();
    let work = Work::Hold { duration: hold };
    let (mut group, _stop) = spawn(proto, config, 0, config.sessions, work, sink(false));
    let logins = log_in_all(&mut group, config, began).await;
    let after = Watch::sample(&config.watch);
    let start = Instant::now();
    group.start(start);
    sleep_until(start + hold).await;
    let end = Watch::sample(&config.watch);
    let totals = group.finish(finish_deadline(start + hold)).await;
    let mut report = base_report(config, &logins, began, &totals, hold);
    report.watch = before.compare(&after, Some(&end), logins.ok, 0);
    report
}

async fn storm(config: &BenchConfig, proto: &Arc<Proto>) -> Report {
    let background = config.background_sessions;
    let gate = Arc::new(AtomicBool::new(false));
    let bg_sink = Sink {
        gate: Some(Arc::clone(&gate)),
        ..sink(true)
    };
    let side = SideRuntime::start();
    let bg = match background {
        0 => None,
        n => Some(background_group(config, proto, n, bg_sink.clone(), &side).await),
    };
    if config.resume {
        warm_up(config, proto).await;
    }
    let resumed_before = proto.target.resumed();
    let before = Watch::sample(&config.watch);
    gate.store(true, Ordering::Relaxed);
    let began = Instant::now();
    let (mut group, _stop) = spawn(
        proto,
        config,
        background,
        config.sessions,
        Work::Close,
        sink(false),
    );
    let logins = group.logins(login_deadline(config, 1, 1)).await;
    let window_end = Instant::now();
    gate.store(false, Ordering::Relaxed);
    let after = Watch::sample(&config.watch);
    progress_logged_in(&logins, config.sessions, began);
    group.start(window_end);
    let mut totals = group.finish(finish_deadline(window_end)).await;
    if let Some((bg_group, stop)) = bg {
        stop.cancel();
        let bg_totals = bg_group.finish(finish_deadline(Instant::now())).await;
        totals.errors.merge(&bg_totals.errors);
    }
    let window = window_end - began;
    let mut report = base_report(config, &logins, began, &totals, window);
    report.background_sessions = background;
    report.background_rtt_us = RttSummary::of(&bg_sink.rtt.merged());
    report.background_service_rtt_us = bg_sink.service.and_then(|s| RttSummary::of(&s.merged()));
    report.watch = before.compare(&after, None, logins.ok, 0);
    report.tls_resumed = config
        .resume
        .then(|| proto.target.resumed() - resumed_before);
    report
}

/// `--resume`: connects each storm session once (TLS + upgrade, then close), so that it
/// holds a TLS session to resume in the storm; `connect_concurrency` at a time, each
/// bounded by the login timeout. Not measured.
async fn warm_up(config: &BenchConfig, proto: &Arc<Proto>) {
    use futures_util::StreamExt;
    let began = Instant::now();
    let first = config.background_sessions;
    let per = Duration::from_millis(config.login_timeout_ms);
    let connected = futures_util::stream::iter(first..first + config.sessions)
        .map(|index| async move {
            let Ok(Ok(mut ws)) = tokio::time::timeout(per, proto.target.connect(index)).await
            else {
                return false;
            };
            // The session tickets arrived with the upgrade's answer; the close is a courtesy.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
            true
        })
        .buffer_unordered(config.connect_concurrency.max(1))
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    tracing::info!(
        connected,
        of = config.sessions,
        ms = began.elapsed().as_millis() as u64,
        "bench: warm-up done (each storm session holds a TLS session to resume)"
    );
}

/// A runtime of its own for the background sessions, so that what they measure is the
/// target's latency and not this process's: on the storm's runtime their replies would
/// wait behind thousands of client handshakes (real background users are other
/// browsers on other machines). Its one thread competes for the CPU like any other.
pub(crate) struct SideRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl SideRuntime {
    pub(crate) fn start() -> SideRuntime {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-background")
            .enable_all()
            .build();
        match built {
            Ok(runtime) => SideRuntime {
                runtime: Some(runtime),
            },
            Err(e) => {
                tracing::warn!(error = %e, "bench: background sessions share the main runtime");
                SideRuntime { runtime: None }
            }
        }
    }

    /// Spawns `spec`'s sessions on this runtime (or the current one without it).
    pub(crate) fn spawn_group(&self, proto: &Arc<Proto>, spec: GroupSpec) -> Group {
        let _entered = self.runtime.as_ref().map(|r| r.enter());
        Group::spawn(proto, spec)
    }
}

impl Drop for SideRuntime {
    // Dropped inside the main runtime, where a blocking shutdown would panic; the
    // sessions were finished (or aborted) before.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Establishes and starts the storm's background sessions on `side`; returns once they
/// have run for [`STORM_WARMUP`].
async fn background_group(
    config: &BenchConfig,
    proto: &Arc<Proto>,
    n: usize,
    sink: Sink,
    side: &SideRuntime,
) -> (Group, CancellationToken) {
    // Bounded even if the storm never ends: warmup + the storm's own login bound.
    let cap = STORM_WARMUP
        + Duration::from_millis(config.login_timeout_ms).saturating_mul(2)
        + JOIN_SLACK;
    let (group, stop, _) = start_background(config, proto, side, 0, n, cap, sink).await;
    sleep(STORM_WARMUP).await;
    (group, stop)
}

/// Spawns `n` background sessions from index `first` on `side`, `connect_concurrency` at
/// a time, each sending at `background_rate` for at most `cap`; waits (bounded) for their
/// logins, says so, and starts their work.
pub(crate) async fn start_background(
    config: &BenchConfig,
    proto: &Arc<Proto>,
    side: &SideRuntime,
    first: usize,
    n: usize,
    cap: Duration,
    sink: Sink,
) -> (Group, CancellationToken, Logins) {
    let stop = CancellationToken::new();
    let spec = GroupSpec {
        first,
        size: n,
        concurrency: config.connect_concurrency,
        work: Work::Steady {
            period: Duration::from_secs_f64(1.0 / config.background_rate),
            duration: cap,
        },
        sink,
        stop: stop.clone(),
    };
    let mut group = side.spawn_group(proto, spec);
    let began = Instant::now();
    let logins = group
        .logins(login_deadline(config, n, config.connect_concurrency))
        .await;
    tracing::info!(
        logged_in = logins.ok,
        of = n,
        ms = began.elapsed().as_millis() as u64,
        "bench: background sessions logged in"
    );
    group.start(Instant::now());
    (group, stop, logins)
}

/// Waits (bounded) until all `config.sessions` of `group` have logged in, and says so.
pub async fn log_in_all(group: &mut Group, config: &BenchConfig, began: Instant) -> Logins {
    let deadline = login_deadline(config, config.sessions, config.connect_concurrency);
    let logins = group.logins(deadline).await;
    progress_logged_in(&logins, config.sessions, began);
    logins
}

fn progress_logged_in(logins: &Logins, of: usize, began: Instant) {
    tracing::info!(
        logged_in = logins.ok,
        of,
        errors = logins.errors.total(),
        ms = began.elapsed().as_millis() as u64,
        "bench: logins done"
    );
}

/// The report's fields common to every mode.
pub fn base_report(
    config: &BenchConfig,
    logins: &Logins,
    began: Instant,
    totals: &Totals,
    window: Duration,
) -> Report {
    let mut errors = logins.errors;
    errors.merge(&totals.errors);
    let secs = window.as_secs_f64();
    Report {
        mode: config.mode.name(),
        url: config.url.clone(),
        sessions: config.sessions,
        logged_in: logins.ok,
        errors,
        duration_s: secs,
        rate_per_session: None,
        payload_bytes: config.payload,
        requests: totals.sent,
        replies: totals.replies,
        replies_per_s: if secs > 0.0 {
            totals.replies as f64 / secs
        } else {
            0.0
        },
        rtt_us: None,
        service_rtt_us: None,
        login_ms: LoginSummary::of(&logins.latency),
        login_request_ms: LoginSummary::of(&logins.request),
        time_to_last_login_ms: logins.last.map(|t| (t - began).as_secs_f64() * 1000.0),
        background_sessions: 0,
        background_rtt_us: None,
        background_service_rtt_us: None,
        watch: Vec::new(),
        nofile_limit: None,
        tls_resumed: None,
        large_request_bytes: None,
        large_reply_bytes_min: None,
        failover: None,
    }
}

/// Samples of every watched process at one moment.
pub struct Watch(Vec<(u32, Option<ProcSample>)>);

impl Watch {
    /// Reads every process of `pids` now (a gone process is kept as `None`).
    pub fn sample(pids: &[u32]) -> Watch {
        Watch(pids.iter().map(|&pid| (pid, procfs::sample(pid))).collect())
    }

    /// Per process: `self` → `after` (→ `end`), per session and per message.
    pub fn compare(
        &self,
        after: &Watch,
        end: Option<&Watch>,
        sessions: usize,
        messages: u64,
    ) -> Vec<WatchReport> {
        let ticks = procfs::clock_ticks_per_second();
        let mut out = Vec::new();
        for (i, (pid, before)) in self.0.iter().enumerate() {
            let after_sample = after.0.get(i).and_then(|(_, s)| s.as_ref());
            let end_sample = end.and_then(|e| e.0.get(i)).and_then(|(_, s)| s.as_ref());
            match (before, after_sample) {
                (Some(b), Some(a)) => out.push(WatchReport::compute(
                    *pid,
                    b,
                    a,
                    end_sample,
                    sessions as u64,
                    messages,
                    ticks,
                )),
                _ => tracing::warn!(pid, "bench: cannot read /proc for the watched process"),
            }
        }
        out
    }
}
