//! A group of sessions driven together: spawned behind a connect semaphore, reported
//! as they log in, started by one signal, and joined with a bound.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use super::hist::{histogram, MAX_RECORDED_US};
use super::large::{self, Exchange};
use super::session::{establish, LoadOutcome, Proto, Schedule, Sink};
use super::{ErrorCounts, ErrorKind};

/// What the sessions of a group do once started.
#[derive(Debug, Clone)]
pub enum Work {
    /// Open loop: one request per `period` for `duration`.
    Steady {
        /// Time between requests.
        period: Duration,
        /// Load window.
        duration: Duration,
    },
    /// Closed loop for `duration`.
    Closed {
        /// Load window.
        duration: Duration,
    },
    /// Stay connected, silent, for `duration`.
    Hold {
        /// Hold time.
        duration: Duration,
    },
    /// Close right away.
    Close,
    /// One large round trip, then stay connected, silent, until the group is stopped.
    Large(Arc<Exchange>),
}

/// How to build a group.
pub struct GroupSpec {
    /// Session index of the group's first session (user `user_start + index`).
    pub first: usize,
    /// Sessions.
    pub size: usize,
    /// Sessions connecting at once.
    pub concurrency: usize,
    /// What they do once started.
    pub work: Work,
    /// Where they record latencies.
    pub sink: Sink,
    /// Ends the work early.
    pub stop: CancellationToken,
}

/// How a group's logins went.
pub struct Logins {
    /// Sessions logged in.
    pub ok: usize,
    /// Setup failures.
    pub errors: ErrorCounts,
    /// Connect start → login accepted, µs.
    pub latency: Histogram<u64>,
    /// The login request alone: sent → result, µs.
    pub request: Histogram<u64>,
    /// When the last successful login completed.
    pub last: Option<Instant>,
}

/// What a group's sessions did once started.
#[derive(Default)]
pub struct Totals {
    /// Requests sent.
    pub sent: u64,
    /// Replies received.
    pub replies: u64,
    /// Failures during the work.
    pub errors: ErrorCounts,
}

struct Setup {
    /// Connect start → logged in, and the login request's share of it.
    result: Result<(Duration, Duration), ErrorKind>,
    at: Instant,
}

/// A running group of sessions.
pub struct Group {
    setups: mpsc::UnboundedReceiver<Setup>,
    start: watch::Sender<Option<Instant>>,
    tasks: JoinSet<LoadOutcome>,
    size: usize,
}

impl Group {
    /// Spawns every session; they connect as the semaphore allows and then wait.
    pub fn spawn(proto: &Arc<Proto>, spec: GroupSpec) -> Group {
        let (setup_tx, setups) = mpsc::unbounded_channel();
        let (start, start_rx) = watch::channel(None);
        let semaphore = Arc::new(Semaphore::new(spec.concurrency.max(1)));
        let spec = Arc::new(spec);
        let mut tasks = JoinSet::new();
        for slot in 0..spec.size {
            tasks.spawn(session_task(
                Arc::clone(proto),
                Arc::clone(&semaphore),
                Arc::clone(&spec),
                slot,
                setup_tx.clone(),
                start_rx.clone(),
            ));
        }
        Group {
            setups,
            start,
            tasks,
            size: spec.size,
        }
    }

    /// Waits until every session has logged in or failed, or `deadline`; sessions
    /// still pending then count as timeouts.
    pub async fn logins(&mut self, deadline: Instant) -> Logins {
        let mut out = Logins {
            ok: 0,
            errors: ErrorCounts::default(),
            latency: histogram(),
            request: histogram(),
            last: None,
        };
        let mut seen = 0;
        while seen < self.size {
            let Ok(Some(setup)) = timeout_at(deadline, self.setups.recv()).await else {
                break;
            };
            seen += 1;
            match setup.result {
                Ok((latency, request)) => {
                    out.ok += 1;
                    for (h, d) in [(&mut out.latency, latency), (&mut out.request, request)] {
                        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
                        h.saturating_record(us.clamp(1, MAX_RECORDED_US));
                    }
                    out.last = out.last.max(Some(setup.at));
                }
                Err(kind) => out.errors.add(kind),
            }
        }
        out.errors.timeout += (self.size - seen) as u64;
        out
    }

    /// Starts the work of every logged-in session at `at`.
    pub fn start(&self, at: Instant) {
        self.start.send_replace(Some(at));
    }

    /// Joins every session by `deadline`, aborting (and counting as timeouts) the rest.
    pub async fn finish(mut self, deadline: Instant) -> Totals {
        let mut totals = Totals::default();
        loop {
            match timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(outcome))) => {
                    totals.sent += outcome.sent;
                    totals.replies += outcome.replies;
                    totals.errors.rpc_error += outcome.rpc_errors;
                    if let Some(kind) = outcome.error {
                        totals.errors.add(kind);
                    }
                }
                Ok(Some(Err(_))) => totals.errors.closed += 1,
                Ok(None) => break,
                Err(_) => {
                    totals.errors.timeout += self.tasks.len() as u64;
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        totals
    }
}

async fn session_task(
    proto: Arc<Proto>,
    semaphore: Arc<Semaphore>,
    spec: Arc<GroupSpec>,
    slot: usize,
    setups: mpsc::UnboundedSender<Setup>,
    mut start: watch::Receiver<Option<Instant>>,
) -> LoadOutcome {
    let index = spec.first + slot;
    let permit = semaphore.acquire().await;
    let began = Instant::now();
    let result = establish(&proto, index).await;
    drop(permit);
    let at = Instant::now();
    let _ = setups.send(Setup {
        result: result
            .as_ref()
            .map(|s| (at - began, s.login_request()))
            .map_err(|k| *k),
        at,
    });
    let Ok(mut session) = result else {
        return LoadOutcome::default();
    };
    let started = session
        .idle_until(async { start.wait_for(Option::is_some).await.ok().and_then(|r| *r) })
        .await;
    let at = match started {
        Ok(Some(at)) => at,
        Ok(None) => return LoadOutcome::default(),
        Err(kind) => return failed(kind),
    };
    let prefix = &proto.request_prefix;
    let outcome = match &spec.work {
        &Work::Steady { period, duration } => {
            let phase = period.mul_f64(slot as f64 / spec.size.max(1) as f64);
            let plan = schedule(at + phase, Some(period), at + duration, &spec.stop);
            session.run(&plan, prefix, &spec.sink).await
        }
        &Work::Closed { duration } => {
            let plan = schedule(at, None, at + duration, &spec.stop);
            session.run(&plan, prefix, &spec.sink).await
        }
        &Work::Hold { duration } => {
            let until = async {
                tokio::select! {
                    () = sleep_until(at + duration) => {}
                    () = spec.stop.cancelled() => {}
                }
            };
            match session.idle_until(until).await {
                Ok(()) => LoadOutcome::default(),
                Err(kind) => return failed(kind),
            }
        }
        Work::Close => LoadOutcome::default(),
        Work::Large(exchange) => {
            large::session_work(&mut session, index, exchange, &spec.sink, &spec.stop).await
        }
    };
    if outcome.error.is_none() {
        session.close().await;
    }
    outcome
}

fn schedule(
    first: Instant,
    period: Option<Duration>,
    end: Instant,
    stop: &CancellationToken,
) -> Schedule {
    Schedule {
        first,
        period,
        end,
        stop: stop.clone(),
    }
}

fn failed(kind: ErrorKind) -> LoadOutcome {
    LoadOutcome {
        error: Some(kind),
        ..LoadOutcome::default()
    }
}
