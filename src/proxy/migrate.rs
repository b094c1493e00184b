//! Keeps every idle session on its partition's active node (issue 10's invariant): a
//! session on another node, with no call in progress, once the node's
//! `verto.clientReady` has passed (FreeSWITCH sends `verto.attach` for detached calls
//! before it), is closed with 1012 so the browser reconnects to the active node. One
//! token bucket of `migrate_per_second` paces all moves, oldest login first, so a
//! failback never becomes a reconnect storm.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Gateway;

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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => move_due(&gw, &bucket),
        }
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
    let now = Instant::now();
    for live in gw.registry().snapshot() {
        let settled = live.client_ready() || now >= live.since + CLIENT_READY_GRACE;
        if live.in_call() || !settled || live.moved().is_cancelled() {
            continue;
        }
        let Some(partition) = config.partitions.iter().find(|p| p.name == live.partition) else {
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
        if active.as_ref().is_none_or(|a| *a == live.node) || !health.is_usable(&live.node) {
            continue;
        }
        if bucket.check().is_err() {
            return;
        }
        if let Some(sessid) = &live.sessid {
            gw.sticky().forget(sessid);
        }
        info!(
            partition = %live.partition,
            from = %live.node,
            to = active.as_deref(),
            "moving an idle session to the active node (1012)"
        );
        live.moved().cancel();
    }
}
