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

use crate::config::Failback;

/// What the choice needs to know of the nodes.
pub trait NodeView {
    /// Up and not draining.
    fn usable(&self, node: &str) -> bool;
    /// When the node came back from `down`; `None` when no failback delay applies.
    fn recovered_at(&self, node: &str) -> Option<Instant>;
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
}

/// Every partition's active node.
#[derive(Debug, Default)]
pub struct Actives {
    by_partition: Mutex<HashMap<String, String>>,
}

impl Actives {
    /// The active node of `partition` now (remembered for the next choice).
    pub fn active(
        &self,
        partition: &str,
        nodes: &[&str],
        failback: Failback,
        delay: Duration,
        view: &impl NodeView,
    ) -> Option<String> {
        let mut map = self
            .by_partition
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = map.get(partition).map(String::as_str);
        let chosen = choose(current, nodes, failback, delay, Instant::now(), view)?.to_owned();
        if current != Some(chosen.as_str()) {
            if let Some(from) = current {
                tracing::warn!(partition, from, to = %chosen, "active node changed");
            }
            map.insert(partition.to_owned(), chosen.clone());
        }
        Some(chosen)
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
}
