//! Node health: active probes of every node, passive failures reported by the login
//! path, the operator's drain flag, and each node's resulting state (`up`, `down`,
//! `drain`) for the router to read.
//!
//! - [`probe`](mod@probe): one probe (connect, TLS, upgrade, anonymous `login`, close 1000).
//! - [`state`]: one node's counters and transitions (pure).
//! - [`Health`] (here): the shared table of node states, the start-up probes and the
//!   transition log; `loops`: the probe loops ([`Health::spawn`]).
//!
//! Reads (`state`, `is_up`, …) take a read lock for a map lookup; probes run with no
//! lock held, so reading a node's state never waits on one.

mod loops;
pub mod probe;
mod probe_seconds;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use rustls::ClientConfig;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{self, Config, NodeUrl};

pub use probe::{client_tls, probe, ProbeError};
pub use probe_seconds::{ProbeLabels, ProbeSeconds};
pub use state::{Change, NodeHealth, NodeState, Reason, Transition};

/// The shared health table of the map's nodes; hold it in an `Arc`.
#[derive(Debug)]
pub struct Health {
    inner: RwLock<Inner>,
    /// Bumped on every initial state and transition.
    changes: watch::Sender<u64>,
    /// Bumped when [`Health::reconfigure`] changed the node list, for the probe loops.
    nodes: watch::Sender<u64>,
    /// How long probes took, by node and result (`vertogw_probe_seconds`).
    probe_seconds: ProbeSeconds,
}

#[derive(Debug)]
struct Inner {
    settings: config::Health,
    nodes: HashMap<String, Entry>,
    /// The TLS config of the probe loops (set by `spawn`, replaced by `set_tls`).
    tls: Option<Arc<ClientConfig>>,
}

#[derive(Debug)]
struct Entry {
    url: NodeUrl,
    /// Position in the map, for [`Health::snapshot`].
    order: usize,
    health: NodeHealth,
    last_change: Option<Transition>,
    last_probe: Option<Result<Duration, &'static str>>,
    /// When the sessions still on the drained node are closed (kept with the flag).
    drain_deadline: Option<Instant>,
}

impl Entry {
    fn new(url: NodeUrl, order: usize) -> Entry {
        Entry {
            url,
            order,
            health: NodeHealth::new(),
            last_change: None,
            last_probe: None,
            drain_deadline: None,
        }
    }

    /// Keeps `t` as the last change.
    fn changed(&mut self, t: Transition) {
        self.last_change = Some(t);
    }
}

/// One node's health as [`Health::snapshot`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// Its `verto_url`, as written.
    pub url: String,
    /// Its state.
    pub state: NodeState,
    /// The operator's drain flag (kept while the node is down).
    pub drain: bool,
    /// When the sessions still on the drained node are closed, if the operator set it.
    pub drain_deadline: Option<Instant>,
    /// Whether it has been probed (a node not probed yet is `down`).
    pub probed: bool,
    /// Consecutive successful probes.
    pub successes: u32,
    /// Consecutive failures, probes and passive ones together.
    pub failures: u32,
    /// When it last came up; `None` while down.
    pub up_since: Option<Instant>,
    /// Its last transition.
    pub last_change: Option<Transition>,
    /// Its last probe: the round trip, or the failure category.
    pub last_probe: Option<Result<Duration, &'static str>>,
}

/// [`Health::set_drain`] named a node the map does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no node named {0:?} in the map")]
pub struct UnknownNode(pub String);

impl Health {
    /// The nodes of `config`, none probed yet (all `down`), with its `[health]` settings.
    pub fn new(config: &Config) -> Health {
        let nodes = config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), Entry::new(n.verto_url.clone(), i)))
            .collect();
        Health {
            inner: RwLock::new(Inner {
                settings: config.health.clone(),
                nodes,
                tls: None,
            }),
            changes: watch::Sender::new(0),
            nodes: watch::Sender::new(0),
            probe_seconds: ProbeSeconds::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long probes took, by node and result.
    pub fn probe_seconds(&self) -> &ProbeSeconds {
        &self.probe_seconds
    }

    /// The `[health]` settings in force.
    pub fn settings(&self) -> config::Health {
        self.read().settings.clone()
    }

    /// The state of `node`; `down` for a node the map does not have.
    pub fn state(&self, node: &str) -> NodeState {
        self.read()
            .nodes
            .get(node)
            .map_or(NodeState::Down, |e| e.health.state())
    }

    /// Whether `node` is `up`: it may take new logins (a partition's active node is its
    /// first node that is up).
    pub fn is_up(&self, node: &str) -> bool {
        self.state(node) == NodeState::Up
    }

    /// Whether `node` is `drain`: it answers, but only sessions returning to it
    /// (sticky) may go there.
    pub fn is_draining(&self, node: &str) -> bool {
        self.state(node) == NodeState::Drain
    }

    /// Whether `node` answers at all (`up` or `drain`): no login waits on a node for
    /// which this is false.
    pub fn is_usable(&self, node: &str) -> bool {
        self.state(node) != NodeState::Down
    }

    /// When `node` last came up (for the failback delay); `None` while it is down or
    /// for a node the map does not have. A node up from its first probe has been up
    /// since that probe.
    pub fn up_since(&self, node: &str) -> Option<Instant> {
        self.read()
            .nodes
            .get(node)
            .and_then(|e| e.health.up_since())
    }

    /// When `node` last came back from `down` (its failback delay counts from then);
    /// `None` when it is not up, or has been up since start-up or an undrain, which
    /// need no delay.
    pub fn recovered_at(&self, node: &str) -> Option<Instant> {
        let inner = self.read();
        let entry = inner.nodes.get(node)?;
        match entry.last_change {
            Some(t)
                if entry.health.state() == NodeState::Up
                    && t.to == NodeState::Up
                    && t.from == NodeState::Down =>
            {
                Some(t.at)
            }
            _ => None,
        }
    }

    /// Every node's health, in map order.
    pub fn snapshot(&self) -> Vec<NodeStatus> {
        let inner = self.read();
        let mut all: Vec<(usize, NodeStatus)> = inner
            .nodes
            .iter()
            .map(|(name, e)| {
                let status = NodeStatus {
                    name: name.clone(),
                    url: e.url.raw.clone(),
                    state: e.health.state(),
                    drain: e.health.drain(),
                    drain_deadline: e.drain_deadline,
                    probed: e.health.is_probed(),
                    successes: e.health.successes(),
                    failures: e.health.failures(),
                    up_since: e.health.up_since(),
                    last_change: e.last_change,
                    last_probe: e.last_probe,
                };
                (e.order, status)
            })
            .collect();
        all.sort_by_key(|(order, _)| *order);
        all.into_iter().map(|(_, s)| s).collect()
    }

    /// A counter bumped on every initial state and transition: await `changed()`, then
    /// read the states again.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Probes, in parallel, every node not probed yet (at start: all of them; after
    /// [`Health::reconfigure`]: the nodes it added) and sets each one's initial state
    /// from its result: `up` on success, else `down`. Logs each at INFO.
    pub async fn start_up(&self, tls: &Arc<ClientConfig>) {
        let (targets, timeout): (Vec<(String, NodeUrl)>, Duration) = {
            let inner = self.read();
            let targets = inner
                .nodes
                .iter()
                .filter(|(_, e)| !e.health.is_probed())
                .map(|(name, e)| (name.clone(), e.url.clone()))
                .collect();
            (targets, inner.settings.timeout)
        };
        let probes = targets.iter().map(|(name, url)| async move {
            let started = Instant::now();
            let result = probe(url, tls, timeout).await;
            self.record_probe(name, url, &result, started.elapsed());
        });
        futures_util::future::join_all(probes).await;
    }

    /// Probes `node` now and records the result as the probe loop would; `None` for a
    /// node the map does not have.
    pub async fn probe_once(
        &self,
        node: &str,
        tls: &Arc<ClientConfig>,
    ) -> Option<Result<Duration, ProbeError>> {
        let (url, timeout) = {
            let inner = self.read();
            (inner.nodes.get(node)?.url.clone(), inner.settings.timeout)
        };
        let started = Instant::now();
        let result = probe(&url, tls, timeout).await;
        self.record_probe(node, &url, &result, started.elapsed());
        Some(result)
    }

    /// Records a failed connect, TLS handshake or upgrade to `node` while routing a
    /// login (`category` as in [`ProbeError::category`]): one more failure toward
    /// `fall`. Returns the transition it caused, if any.
    pub fn passive_failure(&self, node: &str, category: &'static str) -> Option<Transition> {
        let transition = {
            let mut inner = self.write();
            let fall = inner.settings.fall;
            let entry = inner.nodes.get_mut(node)?;
            let t = entry.health.passive_failure(fall, Instant::now());
            if let Some(t) = t {
                entry.changed(t);
            }
            t
        };
        tracing::debug!(node, failure = category, "health: passive failure");
        if let Some(t) = transition {
            log_transition(node, &t, Some(category), None);
            self.changes.send_modify(|n| *n += 1);
        }
        transition
    }

    /// Sets or clears the operator's drain flag of `node`, with the time at which the
    /// sessions still on it are to be closed (`deadline`, only with the flag; draining
    /// again replaces it). The flag survives the node going down and up; the state
    /// changes only while the node is not down.
    pub fn set_drain(
        &self,
        node: &str,
        drain: bool,
        deadline: Option<Instant>,
    ) -> Result<Option<Transition>, UnknownNode> {
        let (transition, state) = {
            let mut inner = self.write();
            let Some(entry) = inner.nodes.get_mut(node) else {
                return Err(UnknownNode(node.to_owned()));
            };
            let t = entry.health.set_drain(drain, Instant::now());
            entry.last_change = t.or(entry.last_change);
            entry.drain_deadline = deadline.filter(|_| drain);
            (t, entry.health.state())
        };
        let deadline_ms = deadline
            .filter(|_| drain)
            .map(|d| d.saturating_duration_since(Instant::now()).as_millis());
        match transition {
            Some(t) => log_transition(node, &t, None, None),
            None => tracing::info!(node, drain, %state, deadline_ms, "health: drain flag set"),
        }
        // A new deadline matters even without a transition.
        self.changes.send_modify(|n| *n += 1);
        Ok(transition)
    }

    /// When the sessions still on the draining `node` are to be closed, if the operator
    /// set a deadline.
    pub fn drain_deadline(&self, node: &str) -> Option<Instant> {
        self.read().nodes.get(node).and_then(|e| e.drain_deadline)
    }

    /// Whether the map has a node named `node`.
    pub fn knows(&self, node: &str) -> bool {
        self.read().nodes.contains_key(node)
    }

    /// Replaces the TLS config the probe loops use from their next probe (a reload that
    /// changed `ca_file`).
    pub fn set_tls(&self, tls: Arc<ClientConfig>) {
        self.write().tls = Some(tls);
    }

    /// Follows a reloaded map: new `[health]` settings; nodes still present under the
    /// same name and `verto_url` keep their state, counters and drain flag; other nodes
    /// start `down`, not probed (probe them with [`Health::start_up`]; the loops probe
    /// them too); removed nodes are forgotten.
    pub fn reconfigure(&self, config: &Config) {
        {
            let mut inner = self.write();
            inner.settings = config.health.clone();
            let mut old = std::mem::take(&mut inner.nodes);
            for (order, node) in config.nodes.iter().enumerate() {
                let kept = old
                    .remove(&node.name)
                    .filter(|e| same_target(&e.url, &node.verto_url));
                let entry = match kept {
                    Some(e) => Entry {
                        url: node.verto_url.clone(),
                        order,
                        ..e
                    },
                    None => {
                        let (name, url) = (&node.name, &node.verto_url);
                        tracing::info!(node = %name, %url, "health: new node, down until probed");
                        Entry::new(node.verto_url.clone(), order)
                    }
                };
                inner.nodes.insert(node.name.clone(), entry);
            }
            for name in old.keys() {
                tracing::info!(node = %name, "health: node left the map or changed its URL");
            }
        }
        self.nodes.send_modify(|n| *n += 1);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Applies one probe result of `node` at `url` (ignored if the node has since left
    /// the map or changed its URL), then logs what changed.
    fn record_probe(
        &self,
        node: &str,
        url: &NodeUrl,
        result: &Result<Duration, ProbeError>,
        took: Duration,
    ) {
        if let Err(e) = result.as_ref().map_err(ProbeError::is_local) {
            if e {
                tracing::debug!(
                    node,
                    "health: probe not sent: the gateway is out of descriptors"
                );
                return;
            }
        }
        self.probe_seconds.observe(node, result.is_ok(), took);
        let change = {
            let mut inner = self.write();
            let (rise, fall) = (inner.settings.rise, inner.settings.fall);
            let Some(entry) = inner
                .nodes
                .get_mut(node)
                .filter(|e| same_target(&e.url, url))
            else {
                return;
            };
            entry.last_probe = Some(result.as_ref().copied().map_err(ProbeError::category));
            let change = entry
                .health
                .probe(result.is_ok(), rise, fall, Instant::now());
            if let Some(Change::Transition(t)) = change {
                entry.changed(t);
            }
            change
        };
        let rtt_ms = result.as_ref().ok().map(|d| d.as_millis());
        let failure = result.as_ref().err().map(ProbeError::category);
        if let Err(e) = result {
            tracing::debug!(node, failure, error = %e, "health: probe failed");
        }
        match change {
            None => return,
            Some(Change::Initial(state)) => match result {
                Ok(_) => tracing::info!(node, %url, %state, rtt_ms, "health: initial state"),
                Err(e) => {
                    tracing::info!(node, %url, %state, failure, error = %e, "health: initial state")
                }
            },
            Some(Change::Transition(t)) => log_transition(node, &t, failure, rtt_ms),
        }
        self.changes.send_modify(|n| *n += 1);
    }
}

/// The one WARN line of a transition.
fn log_transition(node: &str, t: &Transition, failure: Option<&'static str>, rtt_ms: Option<u128>) {
    tracing::warn!(
        node,
        from = %t.from,
        to = %t.to,
        reason = %t.reason,
        failure,
        rtt_ms,
        "health: node state changed"
    );
}

/// Whether two URLs reach the same node (the same scheme, host, port and path, however
/// written).
fn same_target(a: &NodeUrl, b: &NodeUrl) -> bool {
    (a.secure, &a.host, a.port, &a.path) == (b.secure, &b.host, b.port, &b.path)
}
