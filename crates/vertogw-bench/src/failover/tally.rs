//! The failover run's session events folded into its report section: pure state, so
//! the counting rules (what counts as a close, as "back", as a node's login) are tested
//! without sockets.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::hist::{histogram, LoginSummary, MAX_RECORDED_US};
use crate::{ErrorCounts, ErrorKind};

/// Key of [`FailoverReport::close_codes`] for a socket that broke without a close frame
/// (what a browser's `CloseEvent` reports as 1006).
pub const NO_CLOSE_FRAME: &str = "1006";

/// What a failover session reports to the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first login failed; the session is gone.
    InitialFailed { kind: ErrorKind },
    /// Logged in (the first time, or again after a close).
    LoggedIn { index: usize, at: Instant },
    /// A `verto.clientReady` named the node of the session's latest login.
    Node { index: usize, node: String },
    /// The socket ended (`code`: the close frame's, `None` without one).
    Closed {
        index: usize,
        code: Option<u16>,
        at: Instant,
    },
    /// A reconnect attempt failed (the session tries again).
    AttemptFailed { kind: ErrorKind },
}

#[derive(Debug, Default, Clone, Copy)]
struct SessionState {
    /// Logged in at least once.
    seen: bool,
    up: bool,
    /// Closed at least once since the signal.
    closed: bool,
    /// Logged in again after that close.
    back: bool,
}

/// The failover section of the report (`failover` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    /// `kill` or `stop`.
    pub signal: &'static str,
    /// The process signalled.
    pub kill_pid: u32,
    /// Wall clock of the signal, ms since the Unix epoch (to match the gateway's logs).
    pub signal_unix_ms: f64,
    /// Sessions logged in when the signal was sent (all expected to come back).
    pub expected: usize,
    /// Closes seen after the signal, per close code (`"1006"`: no close frame).
    pub close_codes: BTreeMap<String, u64>,
    /// Sessions closed at least once after the signal.
    pub closed_sessions: usize,
    /// Sessions logged in again after their close.
    pub back_sessions: usize,
    /// Signal → the first close, ms.
    pub first_close_ms: Option<f64>,
    /// Signal → the last close, ms.
    pub last_close_ms: Option<f64>,
    /// Signal → every expected session logged in again, ms (`None`: not by the timeout).
    pub all_back_ms: Option<f64>,
    /// Signal → each session's login after its close: `{p50, p99, max}` ms.
    pub back_ms: Option<LoginSummary>,
    /// Reconnect attempts that failed, by category (each was retried).
    pub reconnect_failures: ErrorCounts,
    /// Logins before the signal per node (`sim_node` of `verto.clientReady`).
    pub initial_nodes: BTreeMap<String, u64>,
    /// Logins after a close per node.
    pub relogin_nodes: BTreeMap<String, u64>,
}

/// Folds [`Event`]s; [`Tally::arm`] marks the signal.
pub struct Tally {
    sessions: Vec<SessionState>,
    signal: Option<Instant>,
    expected: usize,
    /// Outcomes of first logins seen (successes and failures).
    pub initial_outcomes: usize,
    /// First logins that failed.
    pub initial_errors: ErrorCounts,
    closes: BTreeMap<String, u64>,
    first_close: Option<Instant>,
    last_close: Option<Instant>,
    back: usize,
    closed: usize,
    last_initial: Option<Instant>,
    last_back: Option<Instant>,
    back_latency: Histogram<u64>,
    reconnect_failures: ErrorCounts,
    initial_nodes: BTreeMap<String, u64>,
    relogin_nodes: BTreeMap<String, u64>,
}

impl Tally {
    /// A tally for sessions `0..n` (indices relative to the first session).
    pub fn new(n: usize) -> Tally {
        Tally {
            sessions: vec![SessionState::default(); n],
            signal: None,
            expected: 0,
            initial_outcomes: 0,
            initial_errors: ErrorCounts::default(),
            closes: BTreeMap::new(),
            first_close: None,
            last_close: None,
            back: 0,
            closed: 0,
            last_initial: None,
            last_back: None,
            back_latency: histogram(),
            reconnect_failures: ErrorCounts::default(),
            initial_nodes: BTreeMap::new(),
            relogin_nodes: BTreeMap::new(),
        }
    }

    /// Sessions logged in now.
    pub fn up(&self) -> usize {
        self.sessions.iter().filter(|s| s.up).count()
    }

    /// The signal went out at `at`: the sessions up now are the ones expected back.
    pub fn arm(&mut self, at: Instant) {
        self.signal = Some(at);
        self.expected = self.up();
    }

    /// Whether every expected session has closed and logged in again (false before
    /// [`Tally::arm`] or when none was expected).
    pub fn all_back(&self) -> bool {
        self.signal.is_some() && self.expected > 0 && self.back >= self.expected
    }

    /// Counts one event.
    pub fn add(&mut self, event: Event) {
        match event {
            Event::InitialFailed { kind } => {
                self.initial_outcomes += 1;
                self.initial_errors.add(kind);
            }
            Event::LoggedIn { index, at } => self.logged_in(index, at),
            Event::Node { index, node } => {
                let Some(s) = self.sessions.get(index) else {
                    return;
                };
                let map = match s.closed {
                    true => &mut self.relogin_nodes,
                    false => &mut self.initial_nodes,
                };
                *map.entry(node).or_default() += 1;
            }
            Event::Closed { index, code, at } => self.closed(index, code, at),
            Event::AttemptFailed { kind } => self.reconnect_failures.add(kind),
        }
    }

    fn logged_in(&mut self, index: usize, at: Instant) {
        let Some(s) = self.sessions.get_mut(index) else {
            return;
        };
        let first = !s.seen;
        s.seen = true;
        s.up = true;
        if first {
            self.initial_outcomes += 1;
            self.last_initial = self.last_initial.max(Some(at));
        }
        if s.closed && !s.back {
            s.back = true;
            self.back += 1;
            self.last_back = self.last_back.max(Some(at));
            if let Some(signal) = self.signal {
                let us = micros(at.saturating_duration_since(signal));
                self.back_latency
                    .saturating_record(us.clamp(1, MAX_RECORDED_US));
            }
        }
    }

    fn closed(&mut self, index: usize, code: Option<u16>, at: Instant) {
        let Some(s) = self.sessions.get_mut(index) else {
            return;
        };
        s.up = false;
        // A close before the signal is not the failover's; the session just reconnects.
        if self.signal.is_none() {
            return;
        }
        if !s.closed {
            s.closed = true;
            self.closed += 1;
        }
        let key = code.map_or_else(|| NO_CLOSE_FRAME.to_owned(), |c| c.to_string());
        *self.closes.entry(key).or_default() += 1;
        self.first_close = Some(self.first_close.map_or(at, |f| f.min(at)));
        self.last_close = self.last_close.max(Some(at));
    }

    /// Sessions logged in again after their close.
    pub fn back(&self) -> usize {
        self.back
    }

    /// When the last first login completed.
    pub fn last_initial(&self) -> Option<Instant> {
        self.last_initial
    }

    /// Expected sessions that did not come back.
    pub fn missing(&self) -> usize {
        self.expected.saturating_sub(self.back)
    }

    /// The report section; `signal`/`pid`/`unix_ms` describe the signal sent.
    pub fn report(&self, signal: &'static str, pid: u32, unix_ms: f64) -> FailoverReport {
        let since = |t: Option<Instant>| {
            let (t, s) = (t?, self.signal?);
            Some(t.saturating_duration_since(s).as_secs_f64() * 1000.0)
        };
        FailoverReport {
            signal,
            kill_pid: pid,
            signal_unix_ms: unix_ms,
            expected: self.expected,
            close_codes: self.closes.clone(),
            closed_sessions: self.closed,
            back_sessions: self.back,
            first_close_ms: since(self.first_close),
            last_close_ms: since(self.last_close),
            all_back_ms: self.all_back().then(|| since(self.last_back)).flatten(),
            back_ms: LoginSummary::of(&self.back_latency),
            reconnect_failures: self.reconnect_failures,
            initial_nodes: self.initial_nodes.clone(),
            relogin_nodes: self.relogin_nodes.clone(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn logged_in(index: usize, at: Instant) -> Event {
        Event::LoggedIn { index, at }
    }

    fn closed(index: usize, code: Option<u16>, at: Instant) -> Event {
        Event::Closed { index, code, at }
    }

    fn node(index: usize, name: &str) -> Event {
        Event::Node {
            index,
            node: name.into(),
        }
    }

    #[test]
    fn every_session_closed_and_logged_in_again_is_all_back_at_the_last_login() {
        let t0 = Instant::now();
        let mut t = Tally::new(3);
        for i in 0..3 {
            t.add(logged_in(i, t0));
            t.add(node(i, "a1"));
        }
        assert!(!t.all_back(), "not armed yet");
        t.arm(ms(t0, 100));
        t.add(closed(0, Some(1014), ms(t0, 110)));
        t.add(closed(1, None, ms(t0, 120)));
        t.add(closed(2, Some(1014), ms(t0, 130)));
        t.add(Event::AttemptFailed {
            kind: ErrorKind::LoginRejected,
        });
        t.add(logged_in(0, ms(t0, 300)));
        t.add(logged_in(1, ms(t0, 400)));
        assert!(!t.all_back());
        assert_eq!(t.missing(), 1);
        t.add(logged_in(2, ms(t0, 600)));
        t.add(node(2, "a2"));
        assert!(t.all_back());
        let r = t.report("kill", 42, 1.5);
        assert_eq!(r.expected, 3);
        assert_eq!(r.close_codes.get("1014"), Some(&2));
        assert_eq!(r.close_codes.get(NO_CLOSE_FRAME), Some(&1));
        assert_eq!((r.closed_sessions, r.back_sessions), (3, 3));
        assert_eq!(r.first_close_ms, Some(10.0));
        assert_eq!(r.last_close_ms, Some(30.0));
        assert_eq!(r.all_back_ms, Some(500.0));
        assert!((r.back_ms.unwrap().max - 500.0).abs() < 1.0);
        assert_eq!(r.reconnect_failures.login_rejected, 1);
        assert_eq!(r.initial_nodes.get("a1"), Some(&3));
        assert_eq!(r.relogin_nodes.get("a2"), Some(&1));
        assert_eq!(t.missing(), 0);
    }

    #[test]
    fn a_session_not_back_by_the_end_leaves_all_back_unset() {
        let t0 = Instant::now();
        let mut t = Tally::new(2);
        t.add(logged_in(0, t0));
        t.add(logged_in(1, t0));
        t.arm(t0);
        t.add(closed(0, Some(1001), ms(t0, 4000)));
        t.add(logged_in(0, ms(t0, 4100)));
        let r = t.report("stop", 7, 0.0);
        assert_eq!(r.all_back_ms, None);
        assert_eq!((r.closed_sessions, r.back_sessions), (1, 1));
        assert_eq!(t.missing(), 1);
    }

    #[test]
    fn sessions_that_never_logged_in_are_not_expected_back() {
        let t0 = Instant::now();
        let mut t = Tally::new(3);
        t.add(logged_in(0, t0));
        t.add(Event::InitialFailed {
            kind: ErrorKind::Timeout,
        });
        t.add(Event::InitialFailed {
            kind: ErrorKind::Connect,
        });
        assert_eq!(t.initial_outcomes, 3);
        assert_eq!(t.initial_errors.failed_sessions(), 2);
        t.arm(t0);
        t.add(closed(0, Some(1001), ms(t0, 5)));
        t.add(logged_in(0, ms(t0, 9)));
        assert!(t.all_back());
        assert_eq!(t.report("kill", 1, 0.0).expected, 1);
    }

    #[test]
    fn closes_before_the_signal_and_repeated_closes_are_counted_apart() {
        let t0 = Instant::now();
        let mut t = Tally::new(1);
        t.add(logged_in(0, t0));
        // Before the signal: not the failover's close, and the re-login is not "back".
        t.add(closed(0, Some(1000), ms(t0, 1)));
        t.add(logged_in(0, ms(t0, 2)));
        assert_eq!(t.initial_outcomes, 1, "a re-login is not a first login");
        t.arm(ms(t0, 10));
        t.add(closed(0, Some(1014), ms(t0, 11)));
        t.add(logged_in(0, ms(t0, 12)));
        // Closed again after coming back: counted as a close, still one session back.
        t.add(closed(0, Some(1012), ms(t0, 20)));
        t.add(logged_in(0, ms(t0, 25)));
        let r = t.report("kill", 1, 0.0);
        assert_eq!(r.close_codes.len(), 2, "{:?}", r.close_codes);
        assert!(!r.close_codes.contains_key("1000"));
        assert_eq!((r.closed_sessions, r.back_sessions), (1, 1));
        assert_eq!(r.last_close_ms, Some(10.0));
        assert_eq!(
            r.all_back_ms,
            Some(2.0),
            "the first time every session was back"
        );
    }

    #[test]
    fn events_for_unknown_sessions_are_ignored() {
        let t0 = Instant::now();
        let mut t = Tally::new(1);
        t.add(logged_in(5, t0));
        t.add(closed(5, None, t0));
        t.add(node(5, "x"));
        assert_eq!(t.up(), 0);
        assert!(t.report("kill", 1, 0.0).initial_nodes.is_empty());
    }
}
