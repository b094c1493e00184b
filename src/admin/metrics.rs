//! `GET /metrics`: the Prometheus text format (prometheus-client). Each scrape builds a
//! registry from the gateway's running totals and live state, so gauges are never
//! stale and counters are the totals the gateway keeps; only the probe histograms
//! live across scrapes (in [`crate::health::Health`]).

use std::collections::BTreeMap;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::health::NodeState;
use crate::proxy::{Gateway, Load, LoginResult};
use crate::reload::Reloader;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionNode {
    partition: String,
    node: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionResult {
    partition: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    partition: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

const LOGIN_RESULTS: [LoginResult; 3] =
    [LoginResult::Ok, LoginResult::Rejected, LoginResult::NoNode];

/// The metrics text of `gw` now.
pub fn render(gw: &Gateway, reloader: Option<&Reloader>) -> String {
    let mut registry = Registry::default();
    let router = gw.router();
    let config = router.config();
    let counters = gw.counters();

    let open = Gauge::<i64>::default();
    open.set(counters.connections_open());
    registry.register(
        "vertogw_connections_open",
        "Browser WebSocket connections open, before and after login",
        open,
    );

    // Every (partition, node) pair of the map, plus pairs that still have sessions
    // (a node a reload removed from its partition).
    let mut pairs: BTreeMap<(String, String), Load> = config
        .partitions
        .iter()
        .flat_map(|p| {
            p.nodes
                .iter()
                .map(|n| ((p.name.clone(), n.clone()), Load::default()))
        })
        .collect();
    pairs.extend(gw.placement_loads());
    let sessions = Family::<PartitionNode, Gauge>::default();
    let calls = Family::<PartitionNode, Gauge>::default();
    for ((partition, node), load) in &pairs {
        let labels = PartitionNode {
            partition: partition.clone(),
            node: node.clone(),
        };
        sessions.get_or_create(&labels).set(count(load.sessions));
        calls.get_or_create(&labels).set(count(load.calls));
    }
    registry.register("vertogw_sessions", "Logged-in sessions", sessions);
    registry.register("vertogw_calls", "Calls in progress", calls);

    let logins = Family::<PartitionResult, Counter>::default();
    for p in &config.partitions {
        for result in LOGIN_RESULTS {
            // Created at 0: every pair is in the output before its first login.
            let _ = logins.get_or_create(&PartitionResult {
                partition: p.name.clone(),
                result: result.as_str(),
            });
        }
    }
    let _ = logins.get_or_create(&PartitionResult {
        partition: String::new(),
        result: LoginResult::NoPartition.as_str(),
    });
    for (partition, result, n) in counters.logins() {
        let labels = PartitionResult {
            partition,
            result: result.as_str(),
        };
        logins.get_or_create(&labels).inc_by(n);
    }
    registry.register(
        "vertogw_logins",
        "Logins by partition and result (partition \"\" for no_partition)",
        logins,
    );

    let up = Family::<NodeLabel, Gauge>::default();
    let draining = Family::<NodeLabel, Gauge>::default();
    let snapshot = gw.health().map(|h| h.snapshot()).unwrap_or_default();
    for node in &config.nodes {
        let status = snapshot.iter().find(|s| s.name == node.name);
        let labels = NodeLabel {
            node: node.name.clone(),
        };
        let answering = status.is_some_and(|s| s.state != NodeState::Down);
        up.get_or_create(&labels).set(i64::from(answering));
        let drain = status.is_some_and(|s| s.drain);
        draining.get_or_create(&labels).set(i64::from(drain));
    }
    registry.register(
        "vertogw_node_up",
        "1 while the node answers probes (up or drain)",
        up,
    );
    registry.register(
        "vertogw_node_draining",
        "1 while the operator drains the node",
        draining,
    );

    let failovers = Family::<PartitionLabel, Counter>::default();
    for p in &config.partitions {
        let _ = failovers.get_or_create(&PartitionLabel {
            partition: p.name.clone(),
        });
    }
    for (partition, n) in gw.failovers() {
        failovers
            .get_or_create(&PartitionLabel { partition })
            .inc_by(n);
    }
    registry.register(
        "vertogw_failovers",
        "Times a partition's active node went down (not failback, switch or drain)",
        failovers,
    );

    let migrations = Family::<ReasonLabel, Counter>::default();
    for (reason, n) in gw.migration_counts() {
        migrations.get_or_create(&ReasonLabel { reason }).inc_by(n);
    }
    registry.register(
        "vertogw_migrations",
        "Sessions moved to their partition's active node (1012), or closed at a drain deadline",
        migrations,
    );

    let reloads = Family::<ResultLabel, Counter>::default();
    let (ok, failed) = reloader.map_or((0, 0), Reloader::counts);
    reloads
        .get_or_create(&ResultLabel { result: "ok" })
        .inc_by(ok);
    reloads
        .get_or_create(&ResultLabel { result: "error" })
        .inc_by(failed);
    registry.register("vertogw_config_reloads", "Map reloads by result", reloads);

    let messages = Family::<DirectionLabel, Counter>::default();
    let bytes = Family::<DirectionLabel, Counter>::default();
    for (direction, totals) in [
        ("to_node", counters.to_node.totals()),
        ("to_browser", counters.to_browser.totals()),
    ] {
        let labels = DirectionLabel { direction };
        messages.get_or_create(&labels).inc_by(totals.0);
        bytes.get_or_create(&labels).inc_by(totals.1);
    }
    registry.register("vertogw_messages", "Messages relayed after login", messages);
    registry.register("vertogw_bytes", "Payload bytes relayed after login", bytes);

    if let Some(health) = gw.health() {
        registry.register(
            "vertogw_probe_seconds",
            "Health probe durations by node and result",
            health.probe_seconds().family(),
        );
    }

    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
