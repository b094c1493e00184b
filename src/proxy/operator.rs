//! The operator's actions on a running gateway — drain, undrain and pin (the admin
//! API's `node.drain`, `node.undrain` and `partition.switch` call these). Each takes
//! effect at once: the migrator is woken rather than left to its next tick.

use std::time::Duration;

use tokio::time::Instant;

use super::active::SwitchError;
use super::Gateway;
use crate::health::{NodeState, UnknownNode};

/// A node after a drain or undrain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainStatus {
    /// The node.
    pub node: String,
    /// Its state now.
    pub state: NodeState,
    /// Sessions on it now.
    pub sessions: usize,
    /// Calls in progress on it now.
    pub calls: usize,
    /// Seconds until its remaining sessions are closed, if a deadline is set.
    pub deadline_s_left: Option<u64>,
}

/// The partition after a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switched {
    /// The partition.
    pub partition: String,
    /// Its active node now (none when no node is up).
    pub active: Option<String>,
    /// Whether it is pinned.
    pub pinned: bool,
}

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// Health monitoring is off (no node states to change).
    #[error("health monitoring is not running")]
    NotMonitored,
    /// No such node.
    #[error(transparent)]
    UnknownNode(#[from] UnknownNode),
    /// The switch cannot be made.
    #[error(transparent)]
    Switch(#[from] SwitchError),
    /// A drain deadline beyond [`MAX_DRAIN_DEADLINE`].
    #[error("deadline_s must be at most {} (one year)", MAX_DRAIN_DEADLINE.as_secs())]
    DeadlineTooFar,
}

/// The longest drain deadline: beyond it a drain is simply without one.
pub const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

impl Gateway {
    /// Drains `node`: it stops being active, its idle sessions move (reason `drain`),
    /// sessions with calls stay; after `deadline`, if given, the rest are closed with
    /// 1001. Draining again replaces the deadline.
    pub fn drain(
        &self,
        node: &str,
        deadline: Option<Duration>,
    ) -> Result<DrainStatus, OperatorError> {
        let health = self.health().ok_or(OperatorError::NotMonitored)?;
        if deadline.is_some_and(|d| d > MAX_DRAIN_DEADLINE) {
            return Err(OperatorError::DeadlineTooFar);
        }
        let at = deadline.map(|d| Instant::now() + d);
        health.set_drain(node, true, at)?;
        self.nudge.notify_one();
        Ok(self.drain_status(node))
    }

    /// Ends the drain of `node` at once (no failback delay).
    pub fn undrain(&self, node: &str) -> Result<DrainStatus, OperatorError> {
        let health = self.health().ok_or(OperatorError::NotMonitored)?;
        health.set_drain(node, false, None)?;
        self.nudge.notify_one();
        Ok(self.drain_status(node))
    }

    /// `node`'s state, load and drain deadline now.
    pub fn drain_status(&self, node: &str) -> DrainStatus {
        let (state, deadline) = match self.health() {
            Some(h) => (h.state(node), h.drain_deadline(node)),
            None => (NodeState::Down, None),
        };
        let (sessions, calls) = self.registry().load(node);
        DrainStatus {
            node: node.to_owned(),
            state,
            sessions,
            calls,
            deadline_s_left: deadline
                .map(|at| seconds_up(at.saturating_duration_since(Instant::now()))),
        }
    }

    /// Closes every session with `sessid` (1008; `verto.punt` first when `punt`, so the
    /// client does not reconnect) and forgets its sticky entry; returns how many.
    pub fn kick(&self, sessid: &str, punt: bool) -> usize {
        self.sticky().forget(self.sticky().key(sessid));
        let kicked = self.registry().kick(sessid, punt);
        tracing::warn!(kicked, punt, reason = "operator", "sessions kicked");
        kicked
    }

    /// Pins `partition` to `node` (up and in its list): no automatic failback while
    /// pinned; `None` ends the pin. Idle sessions move by the invariant (reason
    /// `switch`).
    pub fn switch(&self, partition: &str, node: Option<&str>) -> Result<Switched, OperatorError> {
        let health = self.health().ok_or(OperatorError::NotMonitored)?;
        let router = self.router();
        let p = router
            .config()
            .partitions
            .iter()
            .find(|p| p.name == partition)
            .ok_or_else(|| SwitchError::UnknownPartition(partition.to_owned()))?;
        let nodes: Vec<&str> = p.nodes.iter().map(String::as_str).collect();
        let delay = health.settings().failback_delay;
        let active = self.actives().switch(
            partition,
            &nodes,
            node,
            (p.failback, delay),
            health.as_ref(),
        )?;
        self.nudge.notify_one();
        Ok(Switched {
            partition: partition.to_owned(),
            active,
            pinned: self.actives().pinned(partition).is_some(),
        })
    }
}

/// Whole seconds in `d`, rounded up: a deadline set to 60 s reads 60, not 59, right
/// after it was set, and 1 until it has passed.
pub fn seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
