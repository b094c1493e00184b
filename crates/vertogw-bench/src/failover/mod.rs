//! `--mode failover`: logged-in idle sessions of one partition and steady background
//! sessions of another; then a signal to one node process (`--kill-pid`), and every
//! closed session reconnects at once and logs in again with its sessid, as a Verto
//! browser does. Measures the closes, the time until every session is back, which
//! node took the logins, and the background RTT meanwhile.

mod tally;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

pub use tally::{Event, FailoverReport, Tally};

use super::hist::{histogram, RttSummary};
use super::modes::{
    base_report, finish_deadline, login_deadline, sink, start_background, SideRuntime, Watch,
    JOIN_SLACK,
};
use super::procfs::WatchReport;
use super::report::Report;
use super::run::{Logins, Totals};
use super::session::{establish, Ended, Proto, Sink};
use super::{BenchConfig, BenchError, KillSignal};

/// After the first logins, how long to wait before the signal so that every session's
/// `verto.clientReady` (which names its node) has arrived.
const SETTLE: Duration = Duration::from_millis(500);

/// After every session is back, how long to keep listening for the last sessions'
/// `verto.clientReady`.
const NODE_GRACE: Duration = Duration::from_secs(1);

/// Pause after a failed reconnect attempt before the next one. The first attempt is
/// immediate; without a pause a refused connect would spin as fast as the loopback
/// answers, which no browser does and which would starve the measured processes.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Checks that `pid` names a process this run may signal.
pub fn check_target(pid: u32) -> Result<Pid, BenchError> {
    let bad = |why: String| Err(BenchError::Invalid(format!("--kill-pid {pid}: {why}")));
    let raw = match i32::try_from(pid) {
        Ok(raw) if raw > 1 && pid != std::process::id() => raw,
        _ => return bad("not a process this run may signal".into()),
    };
    let target = Pid::from_raw(raw);
    match kill(target, None) {
        Ok(()) => Ok(target),
        Err(e) => bad(format!("cannot signal it ({e})")),
    }
}

/// Runs the failover scenario (the configuration is validated and `target` checked).
pub async fn failover(config: &BenchConfig, proto: &Arc<Proto>, target: Pid) -> Report {
    let n = config.sessions;
    let gate = Arc::new(AtomicBool::new(false));
    let bg_sink = Sink {
        gate: Some(Arc::clone(&gate)),
        ..sink(true)
    };
    let began = Instant::now();
    let side = SideRuntime::start();
    let (bg, bg_logins) = background(config, proto, bg_sink.clone(), &side).await;
    let mut a = Sessions::spawn(proto, config);
    let a_began = Instant::now();
    let deadline = login_deadline(config, n, config.connect_concurrency);
    a.pump(deadline, |t| t.initial_outcomes >= n).await;
    let a_logins = initial_logins(&a.tally, n);
    tracing::info!(
        logged_in = a_logins.ok,
        of = n,
        ms = a_began.elapsed().as_millis() as u64,
        "bench: failover sessions logged in"
    );
    a.pump(Instant::now() + SETTLE, |_| false).await;
    let measured = match a_logins.ok {
        // Nothing to fail over: no node is killed for a run that measures nothing.
        0 => {
            tracing::error!(pid = %target, "bench: no session logged in; no signal sent");
            None
        }
        ok => Some(signal_and_watch(config, target, &mut a, &gate, ok).await),
    };
    let missing = a.tally.missing() as u64;
    let aborted = a.stop().await;
    let mut totals = match bg {
        Some((group, bg_stop)) => {
            bg_stop.cancel();
            group.finish(finish_deadline(Instant::now())).await
        }
        None => Totals::default(),
    };
    totals.errors.timeout += aborted + missing;
    totals.errors.merge(&bg_logins.errors);
    let mut report = base_report(config, &a_logins, a_began, &totals, began.elapsed());
    report.background_sessions = config.background_sessions;
    report.background_rtt_us = RttSummary::of(&bg_sink.rtt.merged());
    report.background_service_rtt_us = bg_sink.service.and_then(|s| RttSummary::of(&s.merged()));
    if let Some((failover, watch)) = measured {
        report.failover = Some(failover);
        report.watch = watch;
    }
    report
}

/// Sends the signal, opens the background window and waits (bounded by the recover
/// timeout) until every session is back, then a little longer for the last nodes' names.
async fn signal_and_watch(
    config: &BenchConfig,
    target: Pid,
    a: &mut Sessions,
    gate: &AtomicBool,
    logged_in: usize,
) -> (FailoverReport, Vec<WatchReport>) {
    let before = Watch::sample(&config.watch);
    let signal_unix_ms = unix_ms();
    let signalled = Instant::now();
    if let Err(e) = kill(target, config.signal.nix()) {
        tracing::error!(pid = %target, error = %e, "bench: cannot send the signal");
    }
    a.tally.arm(signalled);
    gate.store(true, Ordering::Relaxed);
    tracing::info!(pid = %target, signal = config.signal.name(), "bench: signal sent");
    let recover = Duration::from_millis(config.recover_timeout_ms);
    a.pump(signalled + recover, Tally::all_back).await;
    gate.store(false, Ordering::Relaxed);
    let after = Watch::sample(&config.watch);
    tracing::info!(
        back = a.tally.back(),
        missing = a.tally.missing(),
        ms = signalled.elapsed().as_millis() as u64,
        "bench: failover window ended"
    );
    a.pump(Instant::now() + NODE_GRACE, |_| false).await;
    let pid = u32::try_from(target.as_raw()).unwrap_or_default();
    let report = a.tally.report(config.signal.name(), pid, signal_unix_ms);
    (report, before.compare(&after, None, logged_in, 0))
}

/// The failover sessions: their tasks, their events and what the events add up to.
struct Sessions {
    events: mpsc::UnboundedReceiver<Event>,
    tally: Tally,
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

impl Sessions {
    /// Spawns `config.sessions` sessions; they log in `connect_concurrency` at a time.
    fn spawn(proto: &Arc<Proto>, config: &BenchConfig) -> Sessions {
        let (events_tx, events) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let semaphore = Arc::new(Semaphore::new(config.connect_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for index in 0..config.sessions {
            tasks.spawn(session_task(
                Arc::clone(proto),
                index,
                Arc::clone(&semaphore),
                events_tx.clone(),
                stop.clone(),
            ));
        }
        Sessions {
            events,
            tally: Tally::new(config.sessions),
            tasks,
            stop,
        }
    }

    /// Folds events into the tally until `done` holds, `deadline` passes, or every
    /// session task has ended.
    async fn pump(&mut self, deadline: Instant, done: impl Fn(&Tally) -> bool) {
        while !done(&self.tally) {
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.tally.add(event),
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Stops every session (each closes its socket, bounded) and joins them; returns how
    /// many had to be aborted.
    async fn stop(mut self) -> u64 {
        self.stop.cancel();
        let deadline = finish_deadline(Instant::now());
        loop {
            match timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => return 0,
                Err(_) => {
                    let left = self.tasks.len() as u64;
                    self.tasks.abort_all();
                    return left;
                }
            }
        }
    }
}

/// The first logins as [`Logins`] (latency is not tracked per session here).
fn initial_logins(tally: &Tally, n: usize) -> Logins {
    let mut errors = tally.initial_errors;
    errors.timeout += n.saturating_sub(tally.initial_outcomes) as u64;
    Logins {
        ok: tally.up(),
        errors,
        latency: histogram(),
        request: histogram(),
        last: tally.last_initial(),
    }
}

/// The background sessions (steady echo load), logged in and started; their work is
/// bounded by the whole run's length even if the stop token never fires.
async fn background(
    config: &BenchConfig,
    proto: &Arc<Proto>,
    sink: Sink,
    side: &SideRuntime,
) -> (Option<(super::run::Group, CancellationToken)>, Logins) {
    let m = config.background_sessions;
    let empty = Logins {
        ok: 0,
        errors: Default::default(),
        latency: histogram(),
        request: histogram(),
        last: None,
    };
    if m == 0 {
        return (None, empty);
    }
    let first = config.background_first();
    let a_bound = login_deadline(config, config.sessions, config.connect_concurrency);
    let recover = Duration::from_millis(config.recover_timeout_ms);
    let cap = (a_bound - Instant::now()) + SETTLE + recover + NODE_GRACE + JOIN_SLACK;
    let (group, stop, logins) = start_background(config, proto, side, first, m, cap, sink).await;
    (Some((group, stop)), logins)
}

/// One failover session: log in, idle until the socket ends, then reconnect and log in
/// again at once (same index, so the same user and sessid), until `stop`.
async fn session_task(
    proto: Arc<Proto>,
    index: usize,
    semaphore: Arc<Semaphore>,
    events: mpsc::UnboundedSender<Event>,
    stop: CancellationToken,
) {
    let permit = semaphore.acquire().await;
    let first = tokio::select! {
        r = establish(&proto, index) => r,
        () = stop.cancelled() => return,
    };
    drop(permit);
    let mut session = match first {
        Ok(s) => s,
        Err(kind) => {
            let _ = events.send(Event::InitialFailed { kind });
            return;
        }
    };
    let _ = events.send(Event::LoggedIn {
        index,
        at: Instant::now(),
    });
    loop {
        let on_ready = |node: Option<String>| {
            if let Some(node) = node {
                let _ = events.send(Event::Node { index, node });
            }
        };
        match session.idle_until_closed(&stop, on_ready).await {
            Ended::Stopped => {
                session.close().await;
                return;
            }
            Ended::Closed(code) => {
                let at = Instant::now();
                let _ = events.send(Event::Closed { index, code, at });
            }
        }
        session = loop {
            let attempt = tokio::select! {
                r = establish(&proto, index) => r,
                () = stop.cancelled() => return,
            };
            match attempt {
                Ok(s) => break s,
                Err(kind) => {
                    let _ = events.send(Event::AttemptFailed { kind });
                    tokio::select! {
                        () = sleep(RETRY_PAUSE) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        };
        let _ = events.send(Event::LoggedIn {
            index,
            at: Instant::now(),
        });
    }
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl KillSignal {
    fn nix(self) -> Signal {
        match self {
            KillSignal::Kill => Signal::SIGKILL,
            KillSignal::Stop => Signal::SIGSTOP,
        }
    }
}
