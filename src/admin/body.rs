//! The admin API's JSON documents, in the shapes operators and scripts depend on:
//! `/readyz`, `/status`, `/route/{login}` (and `route.lookup`), and the rows of
//! `sessions.list`.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::config::Failback;
use crate::health::NodeState;
use crate::proxy::{Gateway, SessionFilter, SessionView};
use crate::reload::LastReload;

/// Ready when every partition has a node that answers (`up` or `drain`); an empty map
/// is ready. Returns the verdict and the body.
pub fn readyz(gw: &Gateway) -> (bool, Value) {
    let router = gw.router();
    let health = gw.health();
    let without: Vec<&str> = router
        .config()
        .partitions
        .iter()
        .filter(|p| {
            !p.nodes
                .iter()
                .any(|n| health.is_none_or(|h| h.is_usable(n)))
        })
        .map(|p| p.name.as_str())
        .collect();
    match without.is_empty() {
        true => (true, json!({"ready": true})),
        false => (
            false,
            json!({"ready": false, "partitions_without_node": without}),
        ),
    }
}

/// `/status`: every node, every partition, and the last reload.
pub fn status(gw: &Gateway, last_reload: Option<&LastReload>) -> Value {
    let router = gw.router();
    let config = router.config();
    let (loads, per_partition) = gw.loads();
    let now = tokio::time::Instant::now();
    let mut nodes = Map::new();
    let snapshot = gw.health().map(|h| h.snapshot()).unwrap_or_default();
    for node in &config.nodes {
        let status = snapshot.iter().find(|s| s.name == node.name);
        let load = loads.get(&node.name).copied().unwrap_or_default();
        let rtt_ms = status
            .and_then(|s| s.last_probe)
            .and_then(|p| p.ok())
            .map(|d| d.as_secs_f64() * 1000.0);
        let deadline = status
            .and_then(|s| s.drain_deadline)
            .map(|at| crate::proxy::seconds_up(at.saturating_duration_since(now)));
        nodes.insert(
            node.name.clone(),
            json!({
                "state": status.map_or(NodeState::Down, |s| s.state).as_str(),
                "verto_url": node.verto_url.raw,
                "probe_rtt_ms": rtt_ms,
                "sessions": load.sessions,
                "calls": load.calls,
                "draining": status.is_some_and(|s| s.drain),
                "drain_deadline_s": deadline,
            }),
        );
    }
    let mut partitions = Map::new();
    for p in &config.partitions {
        let sessions = per_partition.get(&p.name).copied().unwrap_or(0);
        let view = gw.partition_view(p, sessions);
        partitions.insert(
            p.name.clone(),
            json!({
                "active": view.active,
                "pinned": view.pinned.is_some(),
                "failback": failback(view.failback),
                "nodes": view.nodes,
                "sessions": view.sessions,
            }),
        );
    }
    let last_reload = last_reload.map(|r| {
        json!({
            "at": rfc3339(r.at),
            "source": r.source.as_str(),
            "result": if r.errors.is_empty() { "ok" } else { "error" },
            "errors": r.errors,
        })
    });
    json!({"nodes": nodes, "partitions": partitions, "last_reload": last_reload})
}

/// `/route/{login}`: where `login` belongs and where it is connected now; `Err` with
/// the 404 body when no partition has it.
pub fn route(gw: &Gateway, login: &str) -> Result<Value, Value> {
    let router = gw.router();
    let route = match router.route(login) {
        Ok(route) => route,
        Err(e) => return Err(json!({"login": login, "error": e.to_string()})),
    };
    let active = gw.active_node(route.partition).or_else(|| {
        // Without health monitoring the first node is the one logins try first.
        gw.health()
            .is_none()
            .then(|| route.nodes.first().map(|n| n.name.clone()))
            .flatten()
    });
    let verto_url = active
        .as_deref()
        .and_then(|a| route.nodes.iter().find(|n| n.name == a))
        .map(|n| n.verto_url.raw.clone());
    let filter = SessionFilter {
        login: Some(login),
        ..SessionFilter::default()
    };
    let sessions: Vec<Value> = gw
        .sessions(filter, usize::MAX)
        .into_iter()
        .map(|s| json!({"node": s.node, "sessid": s.sessid}))
        .collect();
    Ok(json!({
        "login": login,
        "partition": route.partition.name,
        "node": active,
        "verto_url": verto_url,
        "nodes": route.partition.nodes,
        "sessions": sessions,
    }))
}

/// One row of `sessions.list`.
pub fn session_row(s: &SessionView) -> Value {
    json!({
        "sessid": s.sessid,
        "login": s.login,
        "partition": s.partition,
        "node": s.node,
        "peer": s.peer.to_string(),
        "calls": s.calls,
        "since_s": s.age.as_secs(),
    })
}

/// A partition's failback rule as the map writes it.
pub fn failback(f: Failback) -> &'static str {
    match f {
        Failback::Auto => "auto",
        Failback::Manual => "manual",
    }
}

/// `at` as an RFC 3339 UTC timestamp.
pub fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
