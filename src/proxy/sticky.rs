//! Sticky sessids (issue 10): a browser that reconnects with the same `sessid` goes
//! back to the node it was on, where FreeSWITCH keeps its detached calls for
//! `detach-timeout-sec` and offers them again (`verto.attach`) to that sessid only.
//!
//! An entry lives while a session with that sessid is open and `sticky_ms` after the
//! last one ended; at most [`MAX_ENTRIES`], the least recently used evicted first.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 100_000;

/// Every live session has an entry, so it is kept small: the sessid is shared with
/// the use order and the session's guard, node names are shared, and the login is kept
/// as a hash of its lower-cased form (it is only ever compared).
#[derive(Debug)]
struct Entry {
    node: Arc<str>,
    login: u64,
    /// Sessions open with this sessid.
    open: u32,
    /// When the last of them ended (meaningful when `open` is 0).
    ended: Instant,
    /// Its position in the use order (see `Inner::order`).
    stamp: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Arc<str>, Entry>,
    /// Use order, oldest first: (sessid, stamp). A pair whose stamp is no longer its
    /// entry's is stale and skipped, so a use costs a push, not a search.
    order: VecDeque<(Arc<str>, u64)>,
    next_stamp: u64,
    /// The node names seen, shared by the entries (a map has a handful).
    nodes: Vec<Arc<str>>,
}

/// The gateway's sessid → node memory.
#[derive(Debug, Default)]
pub struct Sticky {
    inner: Mutex<Inner>,
}

/// Held by a session for its life: when dropped, the entry's `sticky_ms` starts.
#[derive(Debug)]
pub struct Held {
    sticky: Arc<Sticky>,
    sessid: Arc<str>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut inner = self.sticky.lock();
        if let Some(entry) = inner.entries.get_mut(&*self.sessid) {
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

    /// Notes that `login` is logged in on `node` with `sessid`; the entry stays while
    /// the returned guard lives.
    pub fn record(self: &Arc<Self>, sessid: &str, node: &str, login: &str) -> Held {
        let mut inner = self.lock();
        let key: Arc<str> = match inner.entries.get_key_value(sessid) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(sessid),
        };
        let stamp = inner.touch(&key);
        let node = inner.node(node);
        let login = login_key(login);
        let entry = inner
            .entries
            .entry(Arc::clone(&key))
            .or_insert_with(|| Entry {
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
        let inner = self.lock();
        let entry = inner.entries.get(sessid)?;
        let alive = entry.open > 0 || now.saturating_duration_since(entry.ended) < ttl;
        (alive && entry.login == login_key(login)).then(|| entry.node.to_string())
    }

    /// How many entries are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// What a login is compared by: a hash of its lower-cased form.
fn login_key(login: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    login.to_ascii_lowercase().hash(&mut hasher);
    hasher.finish()
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

    /// A fresh stamp for `sessid`, queued as its most recent use.
    fn touch(&mut self, sessid: &Arc<str>) -> u64 {
        self.next_stamp += 1;
        let stamp = self.next_stamp;
        self.order.push_back((Arc::clone(sessid), stamp));
        // Stale pairs pile up with repeated uses: drop them once they are the majority.
        if self.order.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order
                .retain(|(id, s)| entries.get(id).is_some_and(|e| e.stamp == *s) || *s == stamp);
        }
        stamp
    }

    /// Removes the least recently used entries beyond [`MAX_ENTRIES`].
    fn evict(&mut self) {
        while self.entries.len() > MAX_ENTRIES {
            let Some((id, stamp)) = self.order.pop_front() else {
                return;
            };
            if self.entries.get(&id).is_some_and(|e| e.stamp == stamp) {
                self.entries.remove(&id);
            }
        }
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
        assert_eq!(sticky.len(), MAX_ENTRIES);
        let now = Instant::now();
        assert!(sticky.lookup("s0", "1000@a.test", TTL, now).is_some());
        assert!(sticky.lookup("s1", "1000@a.test", TTL, now).is_none());
        assert!(sticky
            .lookup(&format!("s{}", MAX_ENTRIES + 9), "1000@a.test", TTL, now)
            .is_some());
    }
}
