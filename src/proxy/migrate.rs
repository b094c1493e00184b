//! Keeps every idle session on its partition's active node (issue 10's invariant): a
//! session on another node, with no call in progress, once the node's
//! `verto.clientReady` has passed (FreeSWITCH sends `verto.attach` for detached calls
//! before it), is closed with 1012 so the browser reconnects to the active node. One
//! token bucket of `migrate_per_second` paces all moves, oldest login first, so a
//! failback never becomes a reconnect storm. Sessions whose node the health checks find
//! down, or whose drained node's deadline passed, end at once (1001), outside the budget.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::active::Cause;
use super::registry::{Ending, Live};
use super::Gateway;
use crate::config::{Config, Partition};
use crate::health::{Health, NodeState};

/// Why an idle session was moved (the `reason` of the move's log line and metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationReason {
    /// A higher-priority node became active again.
    Failback,
    /// The operator pinned the partition elsewhere (`partition.switch`).
    Switch,
    /// Its node is draining.
    Drain,
    /// A reload took its node out of the partition, removed the partition, or
    /// reordered its nodes.
    Reload,
    /// It went back to its sticky node for its calls, which have ended.
    Sticky,
}

impl MigrationReason {
    /// Every reason, in the order of their discriminants.
    pub const ALL: [MigrationReason; 5] = [
        MigrationReason::Failback,
        MigrationReason::Switch,
        MigrationReason::Drain,
        MigrationReason::Reload,
        MigrationReason::Sticky,
    ];

    /// Its name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationReason::Failback => "failback",
            MigrationReason::Switch => "switch",
            MigrationReason::Drain => "drain",
            MigrationReason::Reload => "reload",
            MigrationReason::Sticky => "sticky",
        }
    }
}

/// How many sessions were moved, by reason, and closed at a drain deadline.
#[derive(Debug, Default)]
pub struct Migrations {
    moved: [AtomicU64; MigrationReason::ALL.len()],
    drain_deadline: AtomicU64,
}

impl Migrations {
    fn count_move(&self, reason: MigrationReason) {
        self.moved[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every reason (`drain_deadline` last) with its count so far.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let mut all: Vec<(&'static str, u64)> = MigrationReason::ALL
            .iter()
            .map(|r| (r.as_str(), self.moved[*r as usize].load(Ordering::Relaxed)))
            .collect();
        all.push((
            "drain_deadline",
            self.drain_deadline.load(Ordering::Relaxed),
        ));
        all
    }
}

/// How often the sessions are checked.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// A session whose node never sends `verto.clientReady` may move this long after its
/// login.
pub const CLIENT_READY_GRACE: Duration = Duration::from_secs(5);

/// Checks the sessions every [`CHECK_EVERY`] until `shutdown`, and at once on a
/// node's state change or an operator's action.
pub(super) async fn run(gw: Arc<Gateway>, shutdown: CancellationToken) {
    let mut per_second = gw.router().config().health.migrate_per_second;
    let mut bucket = budget(per_second);
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = match gw.health() {
        Some(health) => health.changes(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            changed = changes.changed() => if changed.is_err() { return },
            () = gw.nudged() => {}
        }
        // A reload may change the budget; it applies from now on.
        let now = gw.router().config().health.migrate_per_second;
        if now != per_second {
            per_second = now;
            bucket = budget(per_second);
        }
        move_due(&gw, &bucket);
    }
}

/// One bucket of `per_second` moves a second, burst the same.
fn budget(per_second: u32) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(rate))
}

/// Where a placement's sessions should be, as the migrator sees it.
struct Scan<'a> {
    gw: &'a Gateway,
    health: &'a Health,
    config: &'a Config,
    now: Instant,
    /// Every partition's active node, chosen once per scan: the sessions and
    /// placements checked below read it rather than choosing again each.
    actives: HashMap<&'a str, Option<String>>,
}

impl<'a> Scan<'a> {
    /// Chooses every partition's active node now: a failover is logged and counted
    /// when it happens, sessions or not, not at the next login.
    fn new(gw: &'a Gateway, health: &'a Health, config: &'a Config) -> Scan<'a> {
        let delay = health.settings().failback_delay;
        let actives = config
            .partitions
            .iter()
            .map(|p| {
                let nodes: Vec<&str> = p.nodes.iter().map(String::as_str).collect();
                let active = gw
                    .actives()
                    .active(&p.name, &nodes, p.failback, delay, health);
                (p.name.as_str(), active)
            })
            .collect();
        Scan {
            gw,
            health,
            config,
            now: Instant::now(),
            actives,
        }
    }

    fn partition(&self, name: &str) -> Option<&Partition> {
        self.config.partitions.iter().find(|p| *p.name == *name)
    }

    fn active(&self, p: &Partition) -> Option<&str> {
        self.actives.get(p.name.as_str())?.as_deref()
    }

    /// Its node is down (a node the map no longer has is not: its sessions keep
    /// relaying until they move).
    fn node_down(&self, node: &str) -> bool {
        self.health.knows(node) && self.health.state(node) == NodeState::Down
    }

    fn deadline_passed(&self, node: &str) -> bool {
        self.health
            .drain_deadline(node)
            .is_some_and(|at| at <= self.now)
    }

    /// Whether sessions on (`partition`, `node`) break the invariant.
    fn misplaced(&self, partition: &str, node: &str) -> bool {
        if self.node_down(node) || self.deadline_passed(node) {
            return true;
        }
        match self.partition(partition) {
            None => true,
            Some(p) => self.active(p).is_some_and(|a| *a != *node),
        }
    }

    /// Why `live`, idle and settled, must move, if it must.
    fn reason(&self, live: &Live) -> Option<MigrationReason> {
        let Some(p) = self.partition(&live.partition) else {
            // Its partition left the map: the reconnect is routed by the new one.
            return Some(MigrationReason::Reload);
        };
        let active = self.active(p)?;
        if *active == *live.node {
            return None;
        }
        if !p.nodes.iter().any(|n| *n == *live.node) {
            return Some(MigrationReason::Reload);
        }
        if self.health.is_draining(&live.node) {
            return Some(MigrationReason::Drain);
        }
        let change = self.gw.actives().last_change(&p.name);
        if live.via_sticky && change.is_none_or(|(at, _)| at <= live.since) {
            return Some(MigrationReason::Sticky);
        }
        Some(match change.map(|(_, cause)| cause) {
            Some(Cause::Switch) => MigrationReason::Switch,
            Some(Cause::Reload) => MigrationReason::Reload,
            Some(Cause::Failover | Cause::Failback) | None => MigrationReason::Failback,
        })
    }
}

/// Moves the sessions that break the invariant, as far as the budget allows.
fn move_due(gw: &Gateway, bucket: &DefaultDirectRateLimiter) {
    let Some(health) = gw.health() else {
        return;
    };
    let router = gw.router();
    let scan = Scan::new(gw, health, router.config());
    // Nothing to do unless some sessions sit on a down node or off their partition's
    // active node: checked per (partition, node), not per session.
    let occupied = gw.registry().occupied();
    if !occupied.iter().any(|(p, n)| scan.misplaced(p, n)) {
        return;
    }
    for live in gw.registry().snapshot() {
        // Its node stopped answering (it may still hold the connection open): end it
        // now, calls included; that is no move and takes no budget.
        if scan.node_down(&live.node) {
            live.end(Ending::NodeDown);
            continue;
        }
        if scan.deadline_passed(&live.node) {
            if live.end(Ending::DrainDeadline) {
                gw.migrations()
                    .drain_deadline
                    .fetch_add(1, Ordering::Relaxed);
                info!(partition = %live.partition, node = %live.node, reason = "drain_deadline", "closing a session on a drained node (1001)");
            }
            continue;
        }
        let settled = live.client_ready() || scan.now >= live.since + CLIENT_READY_GRACE;
        if live.in_call() || !settled || live.ending().is_some() {
            continue;
        }
        let Some(reason) = scan.reason(&live) else {
            continue;
        };
        if bucket.check().is_err() {
            return;
        }
        if !live.end(Ending::Moved(reason)) {
            continue;
        }
        // The reconnect must reach the active node, not come back here.
        if let Some(key) = live.sticky_key {
            gw.sticky().forget(key);
        }
        gw.migrations().count_move(reason);
        info!(
            partition = %live.partition,
            from = %live.node,
            reason = reason.as_str(),
            "moving an idle session to the active node (1012)"
        );
    }
}
