//! Failed logins, counted per client address and per login, so that guessing passwords
//! through the gateway is as slow as the map says: after `login_failures_per_minute`
//! failures the address (or the login, from any address) cools down for
//! `login_cooldown_ms`, during which its logins are answered by the gateway and reach no
//! node. Failures are the nodes' `-32001` answers and the gateway's own refusals.
//!
//! Shared by every shard; a login attempt is rare next to relayed messages, so one lock
//! held for a map lookup is cheap. The maps are bounded: entries are dropped once their
//! minute and cooldown are over, and past [`MAX_TRACKED`] keys new keys go uncounted
//! (counting fails open rather than refusing everyone).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{address_key, Limits};

/// What a browser in a cooldown is told (with -32001).
pub const COOLDOWN_MESSAGE: &str = "Too many failed logins, retry later";

/// The counting window of `login_failures_per_minute`.
const WINDOW: Duration = Duration::from_secs(60);

/// Most addresses, and most logins, tracked at once.
pub const MAX_TRACKED: usize = 65_536;

/// How often expired entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One key's failures in its current minute, and its cooldown.
#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    count: u32,
    cooling_until: Option<Instant>,
}

impl Entry {
    fn cooling(&self, now: Instant) -> bool {
        self.cooling_until.is_some_and(|until| now < until)
    }

    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.window_start) >= WINDOW && !self.cooling(now)
    }
}

#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
}

impl<K: std::hash::Hash + Eq> Table<K> {
    fn cooling(&self, key: &K, now: Instant) -> bool {
        self.entries.get(key).is_some_and(|e| e.cooling(now))
    }

    /// Counts one failure; `true` when it starts a cooldown.
    fn record(&mut self, key: K, now: Instant, limit: u32, cooldown: Duration) -> bool {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_TRACKED {
            return false;
        }
        let entry = self.entries.entry(key).or_insert(Entry {
            window_start: now,
            count: 0,
            cooling_until: None,
        });
        if now.duration_since(entry.window_start) >= WINDOW {
            entry.window_start = now;
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count >= limit && !entry.cooling(now) {
            entry.cooling_until = Some(now + cooldown);
            // The next minute starts after the cooldown.
            entry.window_start = now + cooldown;
            entry.count = 0;
            return true;
        }
        false
    }

    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, e| !e.expired(now));
    }
}

/// Why a login may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cooling {
    /// The client address failed too often.
    Address,
    /// The login failed too often (from any address).
    Login,
}

/// The failure counts of the whole gateway.
#[derive(Debug)]
pub struct LoginFailures {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    by_address: Table<IpAddr>,
    by_login: Table<String>,
    last_sweep: Instant,
}

/// Logins differing only in case share a count: a user name spelled another way must
/// not buy another ten guesses.
fn login_key(login: &str) -> String {
    login.to_lowercase()
}

impl Default for LoginFailures {
    fn default() -> LoginFailures {
        LoginFailures {
            inner: Mutex::new(Inner {
                by_address: Table {
                    entries: HashMap::new(),
                },
                by_login: Table {
                    entries: HashMap::new(),
                },
                last_sweep: Instant::now(),
            }),
        }
    }
}

impl LoginFailures {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts that are still valid numbers.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `login` from `peer` must wait. Trusted networks are exempt from the
    /// per-address count, never from the per-login one.
    pub fn cooling(
        &self,
        limits: &Limits,
        peer: IpAddr,
        login: &str,
        now: Instant,
    ) -> Option<Cooling> {
        let inner = self.lock();
        if !limits.is_trusted(peer) && inner.by_address.cooling(&address_key(peer), now) {
            return Some(Cooling::Address);
        }
        inner
            .by_login
            .cooling(&login_key(login), now)
            .then_some(Cooling::Login)
    }

    /// Counts one failed login; returns the cooldowns it started.
    pub fn record(&self, limits: &Limits, peer: IpAddr, login: &str, now: Instant) -> Vec<Cooling> {
        let (limit, cooldown) = (limits.login_failures_per_minute, limits.login_cooldown);
        let mut inner = self.lock();
        if now.duration_since(inner.last_sweep) >= SWEEP_EVERY {
            inner.by_address.sweep(now);
            inner.by_login.sweep(now);
            inner.last_sweep = now;
        }
        let mut started = Vec::new();
        if !limits.is_trusted(peer)
            && inner
                .by_address
                .record(address_key(peer), now, limit, cooldown)
        {
            started.push(Cooling::Address);
        }
        if inner
            .by_login
            .record(login_key(login), now, limit, cooldown)
        {
            started.push(Cooling::Login);
        }
        started
    }

    /// How many addresses and logins are tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.by_address.entries.len(), inner.by_login.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, cooldown_ms: u64) -> Limits {
        Limits {
            login_failures_per_minute: per_minute,
            login_cooldown: Duration::from_millis(cooldown_ms),
            trusted_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..Limits::default()
        }
    }

    const A: &str = "192.0.2.7";
    const B: &str = "198.51.100.9";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_tenth_failure_in_a_minute_starts_a_cooldown_for_address_and_login() {
        let (f, l, t0) = (LoginFailures::default(), limits(10, 60_000), Instant::now());
        for i in 0..9 {
            assert!(f
                .record(&l, ip(A), "1000@x", t0 + Duration::from_secs(i))
                .is_empty());
        }
        assert_eq!(f.cooling(&l, ip(A), "1000@x", t0), None);
        let started = f.record(&l, ip(A), "1000@x", t0 + Duration::from_secs(9));
        assert_eq!(started, [Cooling::Address, Cooling::Login]);
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            f.cooling(&l, ip(A), "other@x", later),
            Some(Cooling::Address)
        );
        assert_eq!(f.cooling(&l, ip(B), "1000@X", later), Some(Cooling::Login));
        assert_eq!(f.cooling(&l, ip(B), "other@x", later), None);
        // Over after the cooldown.
        let after = t0 + Duration::from_secs(70);
        assert_eq!(f.cooling(&l, ip(A), "1000@x", after), None);
    }

    #[test]
    fn failures_spread_over_more_than_a_minute_never_cool_down() {
        let (f, l, t0) = (LoginFailures::default(), limits(3, 60_000), Instant::now());
        for i in 0..10u64 {
            let started = f.record(
                &l,
                ip(A),
                &format!("u{i}@x"),
                t0 + Duration::from_secs(31 * i),
            );
            assert!(started.is_empty(), "failure {i}");
        }
    }

    #[test]
    fn trusted_addresses_are_counted_per_login_only() {
        let (f, l, t0) = (LoginFailures::default(), limits(2, 60_000), Instant::now());
        f.record(&l, ip("127.0.0.1"), "a@x", t0);
        let started = f.record(&l, ip("127.0.0.1"), "a@x", t0);
        assert_eq!(started, [Cooling::Login]);
        assert_eq!(f.cooling(&l, ip("127.0.0.1"), "b@x", t0), None);
        assert_eq!(f.tracked().0, 0);
    }

    #[test]
    fn ipv6_neighbours_in_one_64_share_a_count() {
        let (f, l, t0) = (LoginFailures::default(), limits(2, 60_000), Instant::now());
        f.record(&l, ip("2001:db8:1:2::1"), "a@x", t0);
        f.record(&l, ip("2001:db8:1:2::2"), "b@x", t0);
        assert_eq!(
            f.cooling(&l, ip("2001:db8:1:2:ffff::3"), "c@x", t0),
            Some(Cooling::Address)
        );
    }

    #[test]
    fn expired_entries_are_swept_and_the_tables_stay_bounded() {
        let (f, l, t0) = (LoginFailures::default(), limits(10, 1_000), Instant::now());
        for i in 0..100u32 {
            f.record(
                &l,
                IpAddr::from([198, 51, 100, i as u8]),
                &format!("u{i}"),
                t0,
            );
        }
        assert_eq!(f.tracked(), (100, 100));
        f.record(&l, ip(A), "last", t0 + Duration::from_secs(61));
        assert_eq!(f.tracked(), (1, 1));
        let mut table = Table {
            entries: HashMap::new(),
        };
        for i in 0..(MAX_TRACKED as u32 + 10) {
            table.record(i, t0, 10, Duration::from_secs(1));
        }
        assert_eq!(table.entries.len(), MAX_TRACKED);
    }
}
