//! The gateway's running totals for `/metrics`: browser connections open, logins by
//! partition and result, and messages and bytes relayed each way. Gauges that can be
//! read off the live state (sessions, calls, node states) are not kept here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// How a login ended, as `vertogw_logins_total{result}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoginResult {
    /// The node accepted it.
    Ok,
    /// The node refused the credentials (-32001).
    Rejected,
    /// No partition has the login's domain and extension.
    NoPartition,
    /// No node of its partition could be reached.
    NoNode,
}

impl LoginResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Rejected => "rejected",
            LoginResult::NoPartition => "no_partition",
            LoginResult::NoNode => "no_node",
        }
    }
}

/// Relayed traffic in one direction (after login).
#[derive(Debug, Default)]
pub struct Direction {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Direction {
    /// Counts one message of `bytes` bytes.
    pub fn count(&self, bytes: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// (messages, bytes) so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// The totals.
#[derive(Debug, Default)]
pub struct Counters {
    connections_open: AtomicI64,
    /// Browser → node.
    pub to_node: Direction,
    /// Node → browser.
    pub to_browser: Direction,
    /// By (partition, result); partition "" for `no_partition`. Bounded by the map's
    /// partitions times four results (a login's partition is the map's, never the
    /// browser's text).
    logins: Mutex<HashMap<(String, LoginResult), u64>>,
}

/// One open browser WebSocket, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a Counters);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Counters {
    /// Counts a browser WebSocket as open until the guard is dropped.
    pub fn open_connection(&self) -> OpenConnection<'_> {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    /// Browser WebSockets open now.
    pub fn connections_open(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Counts one login of `partition` that ended with `result`.
    pub fn login(&self, partition: &str, result: LoginResult) {
        let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        match logins.get_mut(&(partition.to_owned(), result)) {
            Some(n) => *n += 1,
            None => {
                logins.insert((partition.to_owned(), result), 1);
            }
        }
    }

    /// Logins so far by (partition, result), sorted.
    pub fn logins(&self) -> Vec<(String, LoginResult, u64)> {
        let logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = logins
            .iter()
            .map(|((p, r), n)| (p.clone(), *r, *n))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_and_the_open_guard_gives_back() {
        let c = Counters::default();
        {
            let _a = c.open_connection();
            let _b = c.open_connection();
            assert_eq!(c.connections_open(), 2);
        }
        assert_eq!(c.connections_open(), 0);
        c.to_node.count(10);
        c.to_node.count(5);
        assert_eq!(c.to_node.totals(), (2, 15));
        c.login("acme", LoginResult::Ok);
        c.login("acme", LoginResult::Ok);
        c.login("", LoginResult::NoPartition);
        assert_eq!(
            c.logins(),
            [
                (String::new(), LoginResult::NoPartition, 1),
                ("acme".into(), LoginResult::Ok, 2)
            ]
        );
    }
}
