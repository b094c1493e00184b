//! Sticky sessids (issue 10): a browser that reconnects with the same `sessid` goes
//! back to the node it was on, where FreeSWITCH keeps its detached calls for
//! `detach-timeout-sec` and offers them again (`verto.attach`) to that sessid only.
//!
//! An entry lives while a session with that sessid is open and `sticky_ms` after the
//! last one ended; at most [`MAX_ENTRIES`], the least recently used evicted first.
//!
//! Every live session has an entry, so an entry is small (~60 bytes, no allocation of
//! its own): the sessid and the login are kept as hashes (keyed per process, so no one
//! can make two of them collide on purpose), the node name is shared.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 100_000;

/// Entries evicted at once when the bound is crossed (the oldest), so that finding
/// them, a pass over the map, happens once per this many new entries.
const EVICT_BATCH: usize = MAX_ENTRIES / 100;

#[derive(Debug)]
struct Entry {
    node: Arc<str>,
    login: u64,
    /// Sessions open with this sessid.
    open: u32,
    /// When the last of them ended (meaningful when `open` is 0).
    ended: Instant,
    /// When it was last recorded, in record order (least recently used first out).
    stamp: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// By the sessid's hash.
    entries: HashMap<u64, Entry>,
    next_stamp: u64,
    /// The node names seen, shared by the entries (a map has a handful).
    nodes: Vec<Arc<str>>,
}

/// The gateway's sessid → node memory.
#[derive(Debug, Default)]
pub struct Sticky {
    inner: Mutex<Inner>,
    keys: RandomState,
}

/// Held by a session for its life: when dropped, the entry's `sticky_ms` starts.
#[derive(Debug)]
pub struct Held {
    sticky: Arc<Sticky>,
    sessid: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut inner = self.sticky.lock();
        if let Some(entry) = inner.entries.get_mut(&self.sessid) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 {
                entry.ended = Instant::now();
            }
        }
    }
}

impl Sticky {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hash(&self, text: &str) -> u64 {
        self.keys.hash_one(text)
    }

    fn login_hash(&self, login: &str) -> u64 {
        self.keys.hash_one(login.to_ascii_lowercase())
    }

    /// Notes that `login` is logged in on `node` with `sessid`; the entry stays while
    /// the returned guard lives.
    pub fn record(self: &Arc<Self>, sessid: &str, node: &str, login: &str) -> Held {
        let key = self.hash(sessid);
        let login = self.login_hash(login);
        let mut inner = self.lock();
        inner.next_stamp += 1;
        let stamp = inner.next_stamp;
        let node = inner.node(node);
        let entry = inner.entries.entry(key).or_insert_with(|| Entry {
            node: Arc::clone(&node),
            login,
            open: 0,
            ended: Instant::now(),
            stamp,
        });
        if entry.node != node || entry.login != login {
            (entry.node, entry.login, entry.open) = (node, login, 0);
        }
        entry.open += 1;
        entry.stamp = stamp;
        inner.evict();
        Held {
            sticky: Arc::clone(self),
            sessid: key,
        }
    }

    /// The node `sessid` belongs to, if `login` is the one recorded with it and the
    /// entry is alive (a session open, or one ended less than `ttl` ago).
    pub fn lookup(&self, sessid: &str, login: &str, ttl: Duration, now: Instant) -> Option<String> {
        let (key, login) = (self.hash(sessid), self.login_hash(login));
        let inner = self.lock();
        let entry = inner.entries.get(&key)?;
        let alive = entry.open > 0 || now.saturating_duration_since(entry.ended) < ttl;
        (alive && entry.login == login).then(|| entry.node.to_string())
    }

    /// The key `sessid` is kept under.
    pub fn key(&self, sessid: &str) -> u64 {
        self.hash(sessid)
    }

    /// Forgets the sessid of `key`: a moved session must reconnect to the active node.
    pub fn forget(&self, key: u64) {
        self.lock().entries.remove(&key);
    }

    /// Forgets every entry pointing at `node` (it left the map or changed its URL:
    /// the calls are not there).
    pub fn forget_node(&self, node: &str) {
        self.lock().entries.retain(|_, e| &*e.node != node);
    }

    /// How many entries are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Inner {
    /// The shared name of `node`.
    fn node(&mut self, node: &str) -> Arc<str> {
        if let Some(known) = self.nodes.iter().find(|n| &***n == node) {
            return Arc::clone(known);
        }
        let name: Arc<str> = Arc::from(node);
        self.nodes.push(Arc::clone(&name));
        name
    }

    /// Past [`MAX_ENTRIES`], removes the [`EVICT_BATCH`] least recently recorded.
    fn evict(&mut self) {
        if self.entries.len() <= MAX_ENTRIES {
            return;
        }
        let mut stamps: Vec<u64> = self.entries.values().map(|e| e.stamp).collect();
        let excess = self.entries.len() - MAX_ENTRIES;
        let cut = (EVICT_BATCH + excess).min(stamps.len() - 1);
        let (_, oldest_kept, _) = stamps.select_nth_unstable(cut);
        let oldest_kept = *oldest_kept;
        self.entries.retain(|_, e| e.stamp >= oldest_kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(120);

    #[test]
    fn an_entry_lives_while_open_and_ttl_after_the_last_session_ends() {
        let sticky = Arc::new(Sticky::default());
        let held = sticky.record("s1", "fs2", "1000@a.test");
        let found = |at| sticky.lookup("s1", "1000@a.test", TTL, at);
        let later = Instant::now() + TTL * 2;
        assert_eq!(found(later).as_deref(), Some("fs2"), "open: no expiry");
        drop(held);
        let ended = Instant::now();
        assert_eq!(found(ended + TTL / 2).as_deref(), Some("fs2"));
        assert_eq!(found(ended + TTL * 2), None, "expired");
    }

    #[test]
    fn only_the_same_login_finds_the_node() {
        let sticky = Arc::new(Sticky::default());
        let _held = sticky.record("s1", "fs2", "1000@a.test");
        let now = Instant::now();
        assert_eq!(
            sticky.lookup("s1", "1000@A.test", TTL, now).as_deref(),
            Some("fs2")
        );
        assert_eq!(sticky.lookup("s1", "1001@a.test", TTL, now), None);
        assert_eq!(sticky.lookup("s2", "1000@a.test", TTL, now), None);
    }

    #[test]
    fn a_sessid_seen_on_another_node_follows_it() {
        let sticky = Arc::new(Sticky::default());
        let first = sticky.record("s1", "fs1", "1000@a.test");
        let _second = sticky.record("s1", "fs2", "1000@a.test");
        drop(first);
        let now = Instant::now();
        assert_eq!(
            sticky.lookup("s1", "1000@a.test", TTL, now).as_deref(),
            Some("fs2")
        );
    }

    #[test]
    fn the_least_recently_used_entries_go_beyond_the_bound() {
        let sticky = Arc::new(Sticky::default());
        for i in 0..MAX_ENTRIES + 10 {
            drop(sticky.record(&format!("s{i}"), "fs1", "1000@a.test"));
            if i == MAX_ENTRIES {
                // s0 is used again: it must survive the eviction of s1…s10.
                drop(sticky.record("s0", "fs1", "1000@a.test"));
            }
        }
        assert!(sticky.len() <= MAX_ENTRIES, "{}", sticky.len());
        assert!(
            sticky.len() >= MAX_ENTRIES - EVICT_BATCH - 10,
            "{}",
            sticky.len()
        );
        let now = Instant::now();
        assert!(sticky.lookup("s0", "1000@a.test", TTL, now).is_some());
        assert!(sticky.lookup("s1", "1000@a.test", TTL, now).is_none());
        assert!(sticky
            .lookup(&format!("s{}", MAX_ENTRIES + 9), "1000@a.test", TTL, now)
            .is_some());
    }
}
