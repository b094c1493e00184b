//! Keeps every idle session on its partition's active node (issue 10's invariant): a
//! session on another node, with no call in progress, once the node's
//! `verto.clientReady` has passed (FreeSWITCH sends `verto.attach` for detached calls
//! before it), is closed with 1012 so the browser reconnects to the active node. One
//! token bucket of `migrate_per_second` paces all moves, oldest login first, so a
//! failback never becomes a reconnect storm. Sessions whose node the health checks find
//! down end at once (1001), outside the budget.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Gateway;
use crate::health::NodeState;

/// How often the sessions are checked.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// A session whose node never sends `verto.clientReady` may move this long after its
/// login.
pub const CLIENT_READY_GRACE: Duration = Duration::from_secs(5);

/// Checks the sessions every [`CHECK_EVERY`] until `shutdown`.
pub(super) async fn run(gw: Arc<Gateway>, shutdown: CancellationToken) {
    let per_second = gw.router().config().health.migrate_per_second;
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let bucket = DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(rate));
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A node's state change is acted on at once, not at the next tick.
    let mut changes = match gw.health() {
        Some(health) => health.changes(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            changed = changes.changed() => if changed.is_err() { return },
        }
        move_due(&gw, &bucket);
    }
}

/// Moves the sessions that break the invariant, as far as the budget allows.
fn move_due(gw: &Gateway, bucket: &DefaultDirectRateLimiter) {
    let Some(health) = gw.health() else {
        return;
    };
    let router = gw.router();
    let config = router.config();
    let delay = health.settings().failback_delay;
    // Nothing to do unless some sessions sit on a down node or off their partition's
    // active node: checked per (partition, node), not per session.
    let misplaced = gw
        .registry()
        .occupied()
        .into_iter()
        .any(|(partition, node)| {
            if health.state(&node) == NodeState::Down {
                return true;
            }
            let Some(p) = config.partitions.iter().find(|p| *p.name == *partition) else {
                return false;
            };
            let nodes: Vec<&str> = p.nodes.iter().map(String::as_str).collect();
            let active = gw
                .actives()
                .active(&p.name, &nodes, p.failback, delay, health.as_ref());
            active.is_some_and(|a| *a != *node)
        });
    if !misplaced {
        return;
    }
    let now = Instant::now();
    for live in gw.registry().snapshot() {
        // Its node stopped answering (it may still hold the connection open): end it
        // now, calls included; that is no move and takes no budget.
        if health.state(&live.node) == NodeState::Down {
            live.node_is_down();
            continue;
        }
        let settled = live.client_ready() || now >= live.since + CLIENT_READY_GRACE;
        if live.in_call() || !settled || live.is_moved() {
            continue;
        }
        let Some(partition) = config
            .partitions
            .iter()
            .find(|p| *p.name == *live.partition)
        else {
            continue;
        };
        let nodes: Vec<&str> = partition.nodes.iter().map(String::as_str).collect();
        let active = gw.actives().active(
            &partition.name,
            &nodes,
            partition.failback,
            delay,
            health.as_ref(),
        );
        // No active node: nowhere better to go. Its own node down: failover closes it.
        if active.as_deref().is_none_or(|a| a == &*live.node) {
            continue;
        }
        if bucket.check().is_err() {
            return;
        }
        if let Some(key) = live.sticky_key {
            gw.sticky().forget(key);
        }
        info!(
            partition = %live.partition,
            from = %live.node,
            to = active.as_deref(),
            "moving an idle session to the active node (1012)"
        );
        live.move_now();
    }
}
