//! The probe loops: one task per node of the current map, each probing its node every
//! `interval_ms` and recording the result; a supervisor starts and stops them as
//! reloads add and remove nodes.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{probe, Health};

impl Health {
    /// Starts the probe loops: one per node, a probe every `interval_ms` (each bounded
    /// by `timeout_ms`), following [`Health::reconfigure`]; all stop when `shutdown` is
    /// cancelled, and the task ends once they have.
    pub fn spawn(
        self: Arc<Self>,
        tls: Arc<ClientConfig>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        self.set_tls(tls);
        tokio::spawn(self.supervise(shutdown))
    }

    /// Keeps one probe loop per node of the current map.
    async fn supervise(self: Arc<Self>, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let mut loops: HashMap<String, CancellationToken> = HashMap::new();
        let mut list = self.nodes.subscribe();
        loop {
            let names: Vec<String> = self.read().nodes.keys().cloned().collect();
            loops.retain(|name, stop| {
                let keep = names.contains(name);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            for name in names {
                if let Entry::Vacant(slot) = loops.entry(name) {
                    let stop = shutdown.child_token();
                    let task = Arc::clone(&self).probe_loop(slot.key().clone(), stop.clone());
                    tracker.spawn(task);
                    slot.insert(stop);
                }
            }
            list.mark_unchanged();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = list.changed() => if changed.is_err() { break },
            }
        }
        tracker.close();
        tracker.wait().await;
    }

    /// Probes `name` every interval until `stop` or the node leaves the map.
    async fn probe_loop(self: Arc<Self>, name: String, stop: CancellationToken) {
        let mut period = self.settings().interval;
        let mut ticks = ticker(period);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let target = {
                let inner = self.read();
                let Some(entry) = inner.nodes.get(&name) else {
                    return;
                };
                (entry.url.clone(), inner.tls.clone(), inner.settings.timeout)
            };
            let (url, Some(tls), timeout) = target else {
                continue;
            };
            let started = Instant::now();
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                result = probe(&url, &tls, timeout) => result,
            };
            self.record_probe(&name, &url, &result, started.elapsed());
            let now = self.settings().interval;
            if now != period {
                period = now;
                ticks = ticker(period);
            }
        }
    }
}

/// Ticks every `period`, the first one `period` from now; a late tick delays the next
/// ones rather than bunching them.
fn ticker(period: Duration) -> tokio::time::Interval {
    // `interval` panics on zero; the map refuses zero, a hand-built config might not.
    let period = period.max(Duration::from_millis(1));
    let start = Instant::now()
        .checked_add(period)
        .unwrap_or_else(Instant::now);
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}
