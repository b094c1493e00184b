//! Which node of a partition is active (issue 10): the node new logins go to. The
//! first node of the list that is up and not draining, except that a partition stays
//! where it is until a recovered higher-priority node has been up for the failback
//! delay (`failback = "auto"`), or for good (`"manual"`); when the active node is no
//! longer usable the partition moves at once to the first usable node (failover),
//! whatever the delay.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, Failback};

/// What the choice needs to know of the nodes.
pub trait NodeView {
    /// Up and not draining.
    fn usable(&self, node: &str) -> bool;
    /// When the node came back from `down`; `None` when no failback delay applies.
    fn recovered_at(&self, node: &str) -> Option<Instant>;
    /// Down (not merely drained): losing an active node so is a failover.
    fn down(&self, node: &str) -> bool {
        !self.usable(node)
    }
}

/// The node `nodes` (in priority order) should have active, given the `current` one.
pub fn choose<'a>(
    current: Option<&str>,
    nodes: &[&'a str],
    failback: Failback,
    delay: Duration,
    now: Instant,
    view: &impl NodeView,
) -> Option<&'a str> {
    let settled = |node: &str| {
        view.recovered_at(node)
            .is_none_or(|at| now.saturating_duration_since(at) >= delay)
    };
    let current = current.and_then(|c| nodes.iter().position(|n| *n == c));
    match current {
        Some(at) if view.usable(nodes[at]) => match failback {
            Failback::Manual => Some(nodes[at]),
            Failback::Auto => nodes[..at]
                .iter()
                .copied()
                .find(|n| view.usable(n) && settled(n))
                .or(Some(nodes[at])),
        },
        // No active node yet, or it went away: the first usable one, delay or not.
        _ => nodes.iter().copied().find(|n| view.usable(n)),
    }
}

impl NodeView for crate::health::Health {
    fn usable(&self, node: &str) -> bool {
        self.is_up(node)
    }

    fn recovered_at(&self, node: &str) -> Option<Instant> {
        crate::health::Health::recovered_at(self, node)
    }

    fn down(&self, node: &str) -> bool {
        self.state(node) == crate::health::NodeState::Down
    }
}

/// Every partition's active node, and the operator's pins (`partition.switch`).
#[derive(Debug, Default)]
pub struct Actives {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    current: HashMap<String, String>,
    /// Pinned partitions: no automatic failback while the pinned node is usable.
    pins: HashMap<String, String>,
    /// Why and when each partition's active node last changed.
    changes: HashMap<String, (Instant, Cause)>,
    /// Partitions whose remembered active node a reload dropped.
    reloaded: std::collections::HashSet<String>,
    /// Times each partition's active node went down (not drained).
    failovers: HashMap<String, u64>,
}

impl Cause {
    /// Its name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Failover => "failover",
            Cause::Failback => "failback",
            Cause::Switch => "switch",
            Cause::Reload => "reload",
        }
    }
}

/// Why a partition's active node changed (what moving its sessions is reported as).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The active node went down or was drained.
    Failover,
    /// A higher-priority node took over again.
    Failback,
    /// The operator pinned the partition, or ended the pin.
    Switch,
    /// A reload changed the partition's nodes.
    Reload,
}

/// Why a partition cannot be switched to a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    /// The map has no such partition.
    #[error("no partition named {0:?} in the map")]
    UnknownPartition(String),
    /// The node is not in the partition's `nodes`.
    #[error("node {node:?} is not a node of partition {partition:?}")]
    NotInPartition {
        /// The partition.
        partition: String,
        /// The node asked for.
        node: String,
    },
    /// The node is down or draining.
    #[error("node {0:?} is not up")]
    NotUp(String),
}

impl Actives {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The active node of `partition` now (remembered for the next choice).
    pub fn active(
        &self,
        partition: &str,
        nodes: &[&str],
        failback: Failback,
        delay: Duration,
        view: &impl NodeView,
    ) -> Option<String> {
        let mut table = self.table();
        if let Some(pin) = table.pins.get(partition) {
            if view.usable(pin) && nodes.contains(&pin.as_str()) {
                let pin = pin.clone();
                table.current.insert(partition.to_owned(), pin.clone());
                return Some(pin);
            }
            // The pinned node went down or is draining: the pin ends, failover follows.
            tracing::warn!(partition, node = %pin, "pin ended: the pinned node is not up");
            table.pins.remove(partition);
        }
        let now = Instant::now();
        let current = table.current.get(partition).cloned();
        let chosen = choose(current.as_deref(), nodes, failback, delay, now, view)?.to_owned();
        if current.as_deref() != Some(chosen.as_str()) {
            let reloaded = table.reloaded.remove(partition);
            let cause = match current.as_deref() {
                Some(from) if !view.usable(from) => Some(Cause::Failover),
                Some(_) => Some(Cause::Failback),
                None if reloaded => Some(Cause::Reload),
                None => None,
            };
            if let Some(from) = &current {
                let cause = cause.map(Cause::as_str);
                tracing::warn!(partition, from = %from, to = %chosen, cause, "active node changed");
            }
            if let Some(cause) = cause {
                table.changes.insert(partition.to_owned(), (now, cause));
            }
            // Counted when the active node went down, not when the operator drained it.
            let went_down = current.as_deref().is_some_and(|from| view.down(from));
            if cause == Some(Cause::Failover) && went_down {
                *table.failovers.entry(partition.to_owned()).or_insert(0) += 1;
            }
            table.current.insert(partition.to_owned(), chosen.clone());
        }
        Some(chosen)
    }

    /// Why and when `partition`'s active node last changed (none since start-up).
    pub fn last_change(&self, partition: &str) -> Option<(Instant, Cause)> {
        self.table().changes.get(partition).copied()
    }

    /// Failovers so far, by partition.
    pub fn failovers(&self) -> Vec<(String, u64)> {
        let mut all: Vec<_> = self
            .table()
            .failovers
            .iter()
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        all.sort();
        all
    }

    /// The node `partition` is pinned to, if any.
    pub fn pinned(&self, partition: &str) -> Option<String> {
        self.table().pins.get(partition).cloned()
    }

    /// Pins `partition` (its `nodes` in priority order) to `node`, which must be one of
    /// them and up; `None` ends the pin and lets the failback rules choose again.
    /// Returns the active node afterwards.
    pub fn switch(
        &self,
        partition: &str,
        nodes: &[&str],
        node: Option<&str>,
        (failback, delay): (Failback, Duration),
        view: &impl NodeView,
    ) -> Result<Option<String>, SwitchError> {
        let Some(node) = node else {
            let mut table = self.table();
            if let Some(pin) = table.pins.remove(partition) {
                tracing::warn!(partition, node = %pin, reason = "operator", "pin ended");
                table
                    .changes
                    .insert(partition.to_owned(), (Instant::now(), Cause::Switch));
            }
            drop(table);
            return Ok(self.active(partition, nodes, failback, delay, view));
        };
        if !nodes.contains(&node) {
            return Err(SwitchError::NotInPartition {
                partition: partition.to_owned(),
                node: node.to_owned(),
            });
        }
        if !view.usable(node) {
            return Err(SwitchError::NotUp(node.to_owned()));
        }
        let mut table = self.table();
        let from = table.current.insert(partition.to_owned(), node.to_owned());
        table.pins.insert(partition.to_owned(), node.to_owned());
        table
            .changes
            .insert(partition.to_owned(), (Instant::now(), Cause::Switch));
        tracing::warn!(
            partition,
            from = from.as_deref(),
            to = node,
            reason = "operator",
            "partition pinned"
        );
        Ok(Some(node.to_owned()))
    }

    /// Follows a reloaded map: a partition that is gone or whose `nodes` changed loses
    /// its pin and its remembered active node, so its new order applies at once (no
    /// failback delay).
    pub fn reconfigure(&self, old: &Config, new: &Config) {
        let mut table = self.table();
        for p in &old.partitions {
            let now = new.partitions.iter().find(|n| n.name == p.name);
            if now.is_some_and(|n| n.nodes == p.nodes) {
                continue;
            }
            let had_active = table.current.remove(&p.name).is_some();
            if let Some(pin) = table.pins.remove(&p.name) {
                tracing::warn!(partition = %p.name, node = %pin, reason = "reload", "pin ended");
            }
            match now {
                Some(_) if had_active => {
                    table.reloaded.insert(p.name.clone());
                }
                Some(_) => {}
                None => {
                    table.changes.remove(&p.name);
                    table.reloaded.remove(&p.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes by name: (usable, recovered this long ago).
    struct View(Vec<(&'static str, bool, Option<Duration>)>, Instant);

    impl NodeView for View {
        fn usable(&self, node: &str) -> bool {
            self.0.iter().any(|(n, up, _)| *n == node && *up)
        }
        fn recovered_at(&self, node: &str) -> Option<Instant> {
            let ago = self.0.iter().find(|(n, ..)| *n == node)?.2?;
            Some(self.1 - ago)
        }
    }

    const NODES: [&str; 3] = ["a", "b", "c"];
    const DELAY: Duration = Duration::from_secs(30);

    fn pick(
        current: Option<&str>,
        failback: Failback,
        view: &[(&'static str, bool, Option<Duration>)],
    ) -> Option<&'static str> {
        let now = Instant::now() + Duration::from_secs(3600);
        choose(
            current,
            &NODES,
            failback,
            DELAY,
            now,
            &View(view.to_vec(), now),
        )
    }

    #[test]
    fn the_first_usable_node_is_chosen_without_a_current_one() {
        let view = [("a", false, None), ("b", true, None), ("c", true, None)];
        assert_eq!(pick(None, Failback::Auto, &view), Some("b"));
        assert_eq!(pick(None, Failback::Auto, &[("a", false, None)]), None);
    }

    #[test]
    fn failover_moves_at_once_even_to_a_node_inside_its_delay() {
        let view = [
            ("a", true, Some(Duration::from_secs(1))),
            ("b", false, None),
            ("c", true, None),
        ];
        assert_eq!(pick(Some("b"), Failback::Auto, &view), Some("a"));
        assert_eq!(pick(Some("b"), Failback::Manual, &view), Some("a"));
    }

    #[test]
    fn auto_failback_waits_for_the_delay_and_manual_never_returns() {
        let early = [
            ("a", true, Some(DELAY / 2)),
            ("b", true, None),
            ("c", true, None),
        ];
        assert_eq!(
            pick(Some("b"), Failback::Auto, &early),
            Some("b"),
            "not before the delay"
        );
        let settled = [
            ("a", true, Some(DELAY)),
            ("b", true, None),
            ("c", true, None),
        ];
        assert_eq!(pick(Some("b"), Failback::Auto, &settled), Some("a"));
        assert_eq!(pick(Some("b"), Failback::Manual, &settled), Some("b"));
        // A node below the current one never takes over while the current one is fine.
        assert_eq!(pick(Some("a"), Failback::Auto, &settled), Some("a"));
    }

    /// A view where every node is usable and none is inside a failback delay.
    fn all_up() -> View {
        let nodes = NODES.iter().map(|n| (*n, true, None)).collect();
        View(nodes, Instant::now())
    }

    #[test]
    fn a_pin_holds_against_failback_and_ends_when_its_node_is_not_usable() {
        let actives = Actives::default();
        let up = all_up();
        let active = |view: &View| actives.active("p", &NODES, Failback::Auto, DELAY, view);
        assert_eq!(active(&up).as_deref(), Some("a"));
        let pinned = actives.switch("p", &NODES, Some("c"), (Failback::Auto, DELAY), &up);
        assert_eq!(pinned, Ok(Some("c".to_owned())));
        assert_eq!(
            active(&up).as_deref(),
            Some("c"),
            "no failback while pinned"
        );
        assert_eq!(
            actives.last_change("p").map(|(_, c)| c),
            Some(Cause::Switch)
        );
        let c_down = View(vec![("a", true, None), ("b", true, None)], Instant::now());
        assert_eq!(active(&c_down).as_deref(), Some("a"), "failover");
        assert_eq!(actives.pinned("p"), None, "the pin ended");
        assert_eq!(
            actives.last_change("p").map(|(_, c)| c),
            Some(Cause::Failover)
        );
        assert_eq!(actives.failovers(), [("p".to_owned(), 1)]);
    }

    /// `a` drained: not usable, but not down.
    struct Drained;

    impl NodeView for Drained {
        fn usable(&self, node: &str) -> bool {
            node != "a"
        }
        fn recovered_at(&self, _: &str) -> Option<Instant> {
            None
        }
        fn down(&self, _: &str) -> bool {
            false
        }
    }

    #[test]
    fn a_drained_active_node_hands_over_without_counting_a_failover() {
        let actives = Actives::default();
        let first = actives.active("p", &NODES, Failback::Auto, DELAY, &all_up());
        assert_eq!(first.as_deref(), Some("a"));
        let next = actives.active("p", &NODES, Failback::Auto, DELAY, &Drained);
        assert_eq!(next.as_deref(), Some("b"));
        assert!(actives.failovers().is_empty());
    }

    #[test]
    fn a_switch_needs_a_usable_node_of_the_partition() {
        let actives = Actives::default();
        let a_only = View(vec![("a", true, None)], Instant::now());
        let how = (Failback::Auto, DELAY);
        assert_eq!(
            actives.switch("p", &NODES, Some("b"), how, &a_only),
            Err(SwitchError::NotUp("b".into()))
        );
        assert!(matches!(
            actives.switch("p", &NODES, Some("z"), how, &a_only),
            Err(SwitchError::NotInPartition { .. })
        ));
        assert_eq!(actives.pinned("p"), None);
        assert_eq!(
            actives.switch("p", &NODES, None, how, &a_only),
            Ok(Some("a".into()))
        );
    }

    #[test]
    fn a_reload_that_changes_the_nodes_drops_the_pin_and_the_remembered_node() {
        let head = "[gateway]\nlisten = \"127.0.0.1:1\"\ntls_cert = \"c\"\ntls_key = \"k\"\n\
                    [[node]]\nname = \"a\"\nverto_url = \"ws://127.0.0.1:2/\"\n\
                    [[node]]\nname = \"b\"\nverto_url = \"ws://127.0.0.1:3/\"\n";
        let map = |nodes: &str| {
            let text = format!(
                "{head}[[partition]]\nname = \"p\"\nnodes = {nodes}\ndomains = [\"d.test\"]\n"
            );
            match Config::parse(&text, std::path::Path::new("t.toml")) {
                Ok(loaded) => loaded.config,
                Err(e) => panic!("{e}"),
            }
        };
        let (old, same, reordered) = (
            map(r#"["a", "b"]"#),
            map(r#"["a", "b"]"#),
            map(r#"["b", "a"]"#),
        );
        let actives = Actives::default();
        let up = all_up();
        let nodes = ["a", "b"];
        let how = (Failback::Manual, DELAY);
        assert_eq!(
            actives.switch("p", &nodes, Some("a"), how, &up),
            Ok(Some("a".into()))
        );
        actives.reconfigure(&old, &same);
        assert_eq!(
            actives.pinned("p").as_deref(),
            Some("a"),
            "unchanged nodes keep it"
        );
        actives.reconfigure(&old, &reordered);
        assert_eq!(actives.pinned("p"), None);
        let active = actives.active("p", &["b", "a"], Failback::Manual, DELAY, &up);
        assert_eq!(active.as_deref(), Some("b"), "the new order at once");
        assert_eq!(
            actives.last_change("p").map(|(_, c)| c),
            Some(Cause::Reload)
        );
    }
}
