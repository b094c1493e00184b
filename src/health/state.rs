//! One node's health as a pure state machine: consecutive success and failure counts
//! (probes and failed login connects share the failure count), the operator's drain
//! flag, and the transitions they cause, returned as values. No I/O, no clock: the
//! caller passes the time.

use std::fmt;

use tokio::time::Instant;

/// What the gateway may do with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Probes say it answers and the operator has not drained it: it takes new logins.
    Up,
    /// Probes say it does not answer (or it has not been probed yet): no login goes there.
    Down,
    /// It answers, but the operator drained it: only sessions returning to it (sticky)
    /// go there.
    Drain,
}

impl NodeState {
    /// The name used in logs and on the admin side: `up`, `down` or `drain`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Down => "down",
            NodeState::Drain => "drain",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Active probes (`rise` successes, or a `fall`th failure that was a probe's).
    Probe,
    /// A failed connect, TLS handshake or upgrade while routing a login was the `fall`th
    /// failure.
    Passive,
    /// The operator drained or undrained the node.
    Operator,
}

impl Reason {
    /// The name used in logs: `probe`, `passive` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Probe => "probe",
            Reason::Passive => "passive",
            Reason::Operator => "operator",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: NodeState,
    /// The state after.
    pub to: NodeState,
    /// What caused it.
    pub reason: Reason,
    /// When (for a transition out of `down`, the node's [`NodeHealth::up_since`]).
    pub at: Instant,
}

/// What one probe result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The node's first probe set its initial state (`up` or `drain` on success, else
    /// `down`), without `rise` or `fall`.
    Initial(NodeState),
    /// A later result moved the node to another state.
    Transition(Transition),
}

/// One node's health.
#[derive(Debug, Clone, Default)]
pub struct NodeHealth {
    /// A probe result has been recorded.
    probed: bool,
    /// Probes say it answers (`up` or `drain`).
    alive: bool,
    /// The operator's drain flag; kept while the node is down.
    drain: bool,
    successes: u32,
    failures: u32,
    up_since: Option<Instant>,
}

impl NodeHealth {
    /// A node not probed yet: `down`, not drained.
    pub fn new() -> NodeHealth {
        NodeHealth::default()
    }

    /// The node's state.
    pub fn state(&self) -> NodeState {
        match (self.alive, self.drain) {
            (false, _) => NodeState::Down,
            (true, true) => NodeState::Drain,
            (true, false) => NodeState::Up,
        }
    }

    /// Whether a probe result has been recorded (the first one sets the initial state).
    pub fn is_probed(&self) -> bool {
        self.probed
    }

    /// The operator's drain flag (also while the node is down).
    pub fn drain(&self) -> bool {
        self.drain
    }

    /// Consecutive successful probes.
    pub fn successes(&self) -> u32 {
        self.successes
    }

    /// Consecutive failures, probes and passive ones together.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the node last came up (its first successful probe, or the transition out of
    /// `down`); `None` while it is down.
    pub fn up_since(&self) -> Option<Instant> {
        self.up_since
    }

    /// Records a probe result: `ok` counts toward `rise`, a failure toward `fall`.
    pub fn probe(&mut self, ok: bool, rise: u32, fall: u32, now: Instant) -> Option<Change> {
        if !self.probed {
            self.probed = true;
            self.count(ok);
            self.alive = ok;
            self.up_since = ok.then_some(now);
            return Some(Change::Initial(self.state()));
        }
        if ok {
            self.success(rise, now).map(Change::Transition)
        } else {
            self.failure(Reason::Probe, fall, now)
                .map(Change::Transition)
        }
    }

    /// Records a failed connect, TLS handshake or upgrade of a login: one more failure
    /// toward `fall`, like a failed probe.
    pub fn passive_failure(&mut self, fall: u32, now: Instant) -> Option<Transition> {
        self.failure(Reason::Passive, fall, now)
    }

    /// Sets or clears the drain flag; a transition only when the node is not down.
    pub fn set_drain(&mut self, drain: bool, now: Instant) -> Option<Transition> {
        let from = self.state();
        self.drain = drain;
        self.transition(from, Reason::Operator, now)
    }

    fn count(&mut self, ok: bool) {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
        }
    }

    fn success(&mut self, rise: u32, now: Instant) -> Option<Transition> {
        let from = self.state();
        self.count(true);
        if !self.alive && self.successes >= rise {
            self.alive = true;
            self.up_since = Some(now);
        }
        self.transition(from, Reason::Probe, now)
    }

    fn failure(&mut self, reason: Reason, fall: u32, now: Instant) -> Option<Transition> {
        let from = self.state();
        self.count(false);
        if self.alive && self.failures >= fall {
            self.alive = false;
            self.up_since = None;
        }
        self.transition(from, reason, now)
    }

    fn transition(&self, from: NodeState, reason: Reason, at: Instant) -> Option<Transition> {
        let to = self.state();
        (from != to).then_some(Transition {
            from,
            to,
            reason,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::NodeState::{Down, Drain, Up};
    use super::Reason::{Operator, Passive, Probe};
    use super::*;

    /// (from, to, reason, index of the event that caused it).
    type Seen = (NodeState, NodeState, Reason, usize);

    /// Feeds `events` (one second apart) to a fresh node: `S` a successful probe, `F` a
    /// failed one, `P` a passive failure, `+`/`-` the operator draining/undraining.
    /// Returns the node and every transition.
    fn run(rise: u32, fall: u32, events: &str) -> (NodeHealth, Vec<Seen>) {
        let start = Instant::now();
        let mut node = NodeHealth::new();
        let mut seen = Vec::new();
        for (i, ev) in events.chars().enumerate() {
            let now = start + Duration::from_secs(i as u64);
            let t = match ev {
                'S' | 'F' => match node.probe(ev == 'S', rise, fall, now) {
                    Some(Change::Transition(t)) => Some(t),
                    Some(Change::Initial(_)) | None => None,
                },
                'P' => node.passive_failure(fall, now),
                '+' | '-' => node.set_drain(ev == '+', now),
                other => panic!("no event {other:?}"),
            };
            if let Some(t) = t {
                assert_eq!(t.at, now);
                seen.push((t.from, t.to, t.reason, i));
            }
        }
        (node, seen)
    }

    #[test]
    fn transitions_follow_rise_fall_and_the_drain_flag() {
        /// What, rise, fall, events, final state, transitions.
        type Row = (
            &'static str,
            u32,
            u32,
            &'static str,
            NodeState,
            &'static [Seen],
        );
        #[rustfmt::skip]
        let table: &[Row] = &[
            ("unprobed is down", 2, 3, "", Down, &[]),
            ("a first success starts up at once", 2, 3, "S", Up, &[]),
            ("a first failure starts down at once", 2, 3, "F", Down, &[]),
            ("fall failures take an up node down", 2, 3, "SFFF", Down, &[(Up, Down, Probe, 3)]),
            ("fewer than fall failures do not", 2, 3, "SFFSFF", Up, &[]),
            ("rise successes bring it back", 2, 3, "FSS", Up, &[(Down, Up, Probe, 2)]),
            ("a failure restarts the rise count", 2, 3, "FSFSS", Up, &[(Down, Up, Probe, 4)]),
            ("passive failures count toward fall", 2, 3, "SFFP", Down, &[(Up, Down, Passive, 3)]),
            ("and probes finish what passive began", 2, 3, "SPPF", Down, &[(Up, Down, Probe, 3)]),
            ("a success resets the failure count", 2, 3, "SPPSPP", Up, &[]),
            ("passive failures never bring a node up", 1, 1, "FPP", Down, &[]),
            ("rise = fall = 1 flips on every result", 1, 1, "SFS", Up,
                &[(Up, Down, Probe, 1), (Down, Up, Probe, 2)]),
            ("drain moves an up node and back", 2, 3, "S+-", Up,
                &[(Up, Drain, Operator, 1), (Drain, Up, Operator, 2)]),
            ("draining twice is one transition", 2, 3, "S++", Drain, &[(Up, Drain, Operator, 1)]),
            ("a drained node goes down and comes back drained", 2, 3, "S+FFFSS", Drain,
                &[(Up, Drain, Operator, 1), (Drain, Down, Probe, 4), (Down, Drain, Probe, 6)]),
            ("draining a down node changes no state", 2, 3, "F+SS", Drain, &[(Down, Drain, Probe, 3)]),
            ("a drained node's first success starts drain", 2, 3, "+S", Drain, &[]),
        ];
        for (what, rise, fall, events, state, transitions) in table {
            let (node, seen) = run(*rise, *fall, events);
            assert_eq!(node.state(), *state, "{what}");
            assert_eq!(seen, *transitions, "{what}");
        }
    }

    #[test]
    fn up_since_is_the_time_the_node_came_up() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut node = NodeHealth::new();
        assert_eq!(node.probe(true, 2, 1, at(0)), Some(Change::Initial(Up)));
        assert_eq!(node.up_since(), Some(at(0)));
        node.probe(true, 2, 1, at(1));
        assert_eq!(node.up_since(), Some(at(0)), "further successes keep it");
        node.probe(false, 2, 1, at(2));
        assert_eq!(node.up_since(), None);
        node.probe(true, 2, 1, at(3));
        assert_eq!(node.up_since(), None, "one success of two");
        let t = node.probe(true, 2, 1, at(4));
        assert!(matches!(t, Some(Change::Transition(t)) if t.at == at(4)));
        assert_eq!(node.up_since(), Some(at(4)));
        node.set_drain(true, at(5));
        assert_eq!(node.up_since(), Some(at(4)), "draining is not coming up");
    }

    #[test]
    fn counters_are_consecutive_and_shared() {
        let (node, _) = run(2, 9, "SSFPF");
        assert_eq!((node.successes(), node.failures()), (0, 3));
        let (node, _) = run(2, 9, "FPSSS");
        assert_eq!((node.successes(), node.failures()), (3, 0));
        assert!(node.is_probed() && !NodeHealth::new().is_probed());
    }
}
