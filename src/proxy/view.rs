//! Read-only views of a running gateway for the admin API: its sessions, the load of
//! each node, each partition's active node and pin. Reading them takes the same short
//! locks the migrator takes; nothing here is on a session's path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::Gateway;
use crate::config::{Failback, Partition};

/// One relaying session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Its Verto `sessid`.
    pub sessid: Option<String>,
    /// The login its node accepted.
    pub login: String,
    /// Its partition.
    pub partition: String,
    /// Its node.
    pub node: String,
    /// The browser's address.
    pub peer: SocketAddr,
    /// Its calls in progress, by `callID`.
    pub calls: Vec<String>,
    /// How long ago its login was accepted.
    pub age: Duration,
}

/// One partition now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// Its name.
    pub name: String,
    /// Its active node (none when no node is up).
    pub active: Option<String>,
    /// The node it is pinned to, if any.
    pub pinned: Option<String>,
    /// Its failback rule.
    pub failback: Failback,
    /// Its nodes in priority order.
    pub nodes: Vec<String>,
    /// Its sessions now, on whatever node.
    pub sessions: usize,
}

/// Sessions and calls in progress on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Sessions.
    pub sessions: usize,
    /// Calls in progress.
    pub calls: usize,
}

/// Which sessions [`Gateway::sessions`] lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionFilter<'a> {
    /// Only this partition's.
    pub partition: Option<&'a str>,
    /// Only those on this node.
    pub node: Option<&'a str>,
    /// Only this login's (compared ignoring ASCII case, as domains are).
    pub login: Option<&'a str>,
}

impl Gateway {
    /// The sessions `filter` selects, oldest login first, at most `limit`.
    pub fn sessions(&self, filter: SessionFilter<'_>, limit: usize) -> Vec<SessionView> {
        let now = tokio::time::Instant::now();
        self.registry()
            .snapshot()
            .into_iter()
            .filter(|l| filter.partition.is_none_or(|p| *l.partition == *p))
            .filter(|l| filter.node.is_none_or(|n| *l.node == *n))
            .filter(|l| filter.login.is_none_or(|x| l.login.eq_ignore_ascii_case(x)))
            .take(limit)
            .map(|l| SessionView {
                sessid: l.sessid.as_deref().map(str::to_owned),
                login: l.login.to_string(),
                partition: l.partition.to_string(),
                node: l.node.to_string(),
                peer: l.peer,
                calls: l.call_ids(),
                age: now.saturating_duration_since(l.since),
            })
            .collect()
    }

    /// Sessions and calls per node, and sessions per partition, now.
    pub fn loads(&self) -> (HashMap<String, Load>, HashMap<String, usize>) {
        let mut nodes: HashMap<String, Load> = HashMap::new();
        let mut partitions: HashMap<String, usize> = HashMap::new();
        for live in self.registry().snapshot() {
            let load = nodes.entry(live.node.to_string()).or_default();
            load.sessions += 1;
            load.calls += live.call_count();
            *partitions.entry(live.partition.to_string()).or_default() += 1;
        }
        (nodes, partitions)
    }

    /// Sessions and calls on `(partition, node)` pairs now.
    pub fn placement_loads(&self) -> HashMap<(String, String), Load> {
        let mut all: HashMap<(String, String), Load> = HashMap::new();
        for live in self.registry().snapshot() {
            let key = (live.partition.to_string(), live.node.to_string());
            let load = all.entry(key).or_default();
            load.sessions += 1;
            load.calls += live.call_count();
        }
        all
    }

    /// `partition`'s active node now (health monitoring only).
    pub fn active_node(&self, partition: &Partition) -> Option<String> {
        let health = self.health()?;
        let nodes: Vec<&str> = partition.nodes.iter().map(String::as_str).collect();
        let delay = health.settings().failback_delay;
        self.actives().active(
            &partition.name,
            &nodes,
            partition.failback,
            delay,
            health.as_ref(),
        )
    }

    /// `partition` now, with `sessions` of its sessions open.
    pub fn partition_view(&self, partition: &Partition, sessions: usize) -> PartitionView {
        PartitionView {
            name: partition.name.clone(),
            active: self.active_node(partition),
            pinned: self.actives().pinned(&partition.name),
            failback: partition.failback,
            nodes: partition.nodes.clone(),
            sessions,
        }
    }

    /// Failovers so far by partition (the active node went down; a drain is none).
    pub fn failovers(&self) -> Vec<(String, u64)> {
        self.actives().failovers()
    }
}
