//! Per-client-address admission, shared by every accept loop: how many connections one
//! address holds at once (`per_ip_connections`) and how fast it may open new ones
//! (`per_ip_connect_rate`, `per_ip_connect_burst`). Both are checked right after TCP
//! accept, before any TLS work (for a load balancer's connection, right after its PROXY
//! header, against the address it names); `trusted_networks` are exempt.
//!
//! An address is what [`address_key`] makes of the peer: an IPv4 address (an
//! IPv4-mapped IPv6 address included), or an IPv6 /64.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use governor::{DefaultKeyedRateLimiter, Quota};
use tracing::warn;

use super::throttle::Throttle;
use crate::config::{address_key, Limits};

/// How often stale rate-limit state is swept, and how often a refusal cause is logged.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Past this many spare slots the table of connection counts gives memory back.
const SPARE_SLOTS: usize = 1024;

/// Why a connection was refused; `failure` names it in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address already holds `per_ip_connections`.
    Connections,
    /// The address opened connections faster than its token bucket allows.
    Rate,
}

impl Refusal {
    /// The `failure` field of the refusal's log line.
    pub fn failure(self) -> &'static str {
        match self {
            Refusal::Connections => "per_ip_connections",
            Refusal::Rate => "per_ip_rate",
        }
    }
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The limits in force for new connections, swapped whole on reload.
struct Policy {
    limits: Limits,
    rate: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// The per-address state of one gateway: connection counts and token buckets.
pub struct PerIp {
    policy: ArcSwap<Policy>,
    counts: Counts,
    started: Instant,
    /// When the next sweep is due, in milliseconds since `started`.
    next_sweep_ms: AtomicU64,
}

/// One admitted connection's place in its address's count, given back on drop.
#[must_use = "dropping the permit releases the connection's slot at once"]
pub struct PeerPermit {
    held: Option<(Counts, IpAddr)>,
}

impl Drop for PeerPermit {
    fn drop(&mut self) {
        if let Some((counts, key)) = self.held.take() {
            let mut counts = lock(&counts);
            if let Some(n) = counts.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    // Removing at zero keeps the table as large as the addresses
                    // connected now, not every address ever seen.
                    counts.remove(&key);
                }
            }
        }
    }
}

impl PerIp {
    /// The state for `limits`.
    pub fn new(limits: &Limits) -> PerIp {
        PerIp {
            policy: ArcSwap::from_pointee(Policy {
                limits: limits.clone(),
                rate: Arc::new(limiter(limits)),
            }),
            counts: Counts::default(),
            started: Instant::now(),
            next_sweep_ms: AtomicU64::new(0),
        }
    }

    /// Applies `limits` to connections accepted from now on. Connections already held
    /// keep their slots. The token buckets are kept unless the rate or burst changed,
    /// in which case every address starts again with a full bucket.
    pub fn reconfigure(&self, limits: &Limits) {
        let old = self.policy.load();
        let same_quota = old.limits.per_ip_connect_rate == limits.per_ip_connect_rate
            && old.limits.per_ip_connect_burst == limits.per_ip_connect_burst;
        let rate = if same_quota {
            Arc::clone(&old.rate)
        } else {
            Arc::new(limiter(limits))
        };
        self.policy.store(Arc::new(Policy {
            limits: limits.clone(),
            rate,
        }));
    }

    /// Admits one connection from `peer`, or says why not. The rate is checked first,
    /// so every attempt spends a token, refused or not.
    ///
    /// Each call may also sweep the buckets (at most once per [`SWEEP_EVERY`], by
    /// whichever accept loop gets there first): governor keeps a bucket for every
    /// address it has seen, and `retain_recent` drops those that are full again
    /// (indistinguishable from a new address), i.e. idle for (burst + 1) / rate
    /// seconds. Buckets are only ever added here, so sweeping on the same path bounds
    /// the table to the addresses that connected in the last few seconds, without a
    /// timer of its own.
    pub fn admit(&self, peer: IpAddr) -> Result<PeerPermit, Refusal> {
        let policy = self.policy.load();
        self.sweep_if_due(&policy);
        if policy.limits.is_trusted(peer) {
            return Ok(PeerPermit { held: None });
        }
        let key = address_key(peer);
        if policy.rate.check_key(&key).is_err() {
            return Err(Refusal::Rate);
        }
        let mut counts = lock(&self.counts);
        let held = counts.get(&key).copied().unwrap_or(0);
        if held >= policy.limits.per_ip_connections {
            return Err(Refusal::Connections);
        }
        counts.insert(key, held + 1);
        Ok(PeerPermit {
            held: Some((Arc::clone(&self.counts), key)),
        })
    }

    /// Addresses holding at least one connection now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        lock(&self.counts).len()
    }

    fn sweep_if_due(&self, policy: &Policy) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_sweep_ms.load(Ordering::Relaxed);
        let next = now.saturating_add(SWEEP_EVERY.as_millis() as u64);
        if now < due
            || self
                .next_sweep_ms
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        policy.rate.retain_recent();
        policy.rate.shrink_to_fit();
        let mut counts = lock(&self.counts);
        if counts.capacity() > 2 * counts.len() + SPARE_SLOTS {
            let keep = 2 * counts.len();
            counts.shrink_to(keep);
        }
    }
}

fn limiter(limits: &Limits) -> DefaultKeyedRateLimiter<IpAddr> {
    let rate = NonZeroU32::new(limits.per_ip_connect_rate).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.per_ip_connect_burst).unwrap_or(NonZeroU32::MIN);
    DefaultKeyedRateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst))
}

/// The counts stay consistent whatever panicked while holding the lock (nothing
/// in between the lock and the unlock can leave them half-updated).
fn lock(counts: &Counts) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logs per-address refusals at most once a second per cause, with how many there were
/// since the last line, so a flood of refusals cannot flood the log. One per accept
/// loop, like the loop's other refusal log.
#[derive(Default)]
pub struct RefusalLog {
    connections: Throttle,
    rate: Throttle,
}

impl RefusalLog {
    /// Counts one refusal of `peer`, and logs if this cause has not been logged lately.
    pub fn note(&mut self, refusal: Refusal, peer: SocketAddr) {
        let throttle = match refusal {
            Refusal::Connections => &mut self.connections,
            Refusal::Rate => &mut self.rate,
        };
        if let Some(refused) = throttle.note() {
            warn!(
                failure = refusal.failure(),
                refused,
                %peer,
                "connection refused: per-address limit"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(connections: usize, rate: u32, burst: u32, trusted: &[&str]) -> Limits {
        Limits {
            per_ip_connections: connections,
            per_ip_connect_rate: rate,
            per_ip_connect_burst: burst,
            trusted_networks: trusted.iter().filter_map(|n| n.parse().ok()).collect(),
            ..Limits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let per_ip = PerIp::new(&limits(1, 1000, 1000, &[]));
        let _a = per_ip.admit(ip("2001:db8:1:2::1")).ok();
        assert_eq!(
            per_ip.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::Connections)
        );
        assert!(per_ip.admit(ip("2001:db8:1:3::1")).is_ok());
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let per_ip = PerIp::new(&limits(1, 1000, 1000, &[]));
        let _a = per_ip.admit(ip("192.0.2.7")).ok();
        assert_eq!(
            per_ip.admit(ip("::ffff:192.0.2.7")).err(),
            Some(Refusal::Connections)
        );
        assert!(per_ip.admit(ip("192.0.2.8")).is_ok());
    }

    #[test]
    fn dropping_a_permit_frees_its_slot_and_forgets_an_idle_address() {
        let per_ip = PerIp::new(&limits(2, 1000, 1000, &[]));
        let a = per_ip.admit(ip("198.51.100.1"));
        let b = per_ip.admit(ip("198.51.100.1"));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(
            per_ip.admit(ip("198.51.100.1")).err(),
            Some(Refusal::Connections)
        );
        drop(a);
        let c = per_ip.admit(ip("198.51.100.1"));
        assert!(c.is_ok(), "the freed slot is taken again");
        assert_eq!(per_ip.addresses(), 1);
        drop((b, c));
        assert_eq!(per_ip.addresses(), 0, "no entry is left at zero");
    }

    #[test]
    fn a_burst_beyond_the_bucket_is_refused_for_rate() {
        // A rate of 1 per second: the bucket cannot refill within this test.
        let per_ip = PerIp::new(&limits(100, 1, 3, &[]));
        for _ in 0..3 {
            assert!(per_ip.admit(ip("203.0.113.5")).is_ok());
        }
        assert_eq!(per_ip.admit(ip("203.0.113.5")).err(), Some(Refusal::Rate));
        assert!(per_ip.admit(ip("203.0.113.6")).is_ok(), "another address");
    }

    #[test]
    fn trusted_networks_are_exempt_from_both_limits() {
        let per_ip = PerIp::new(&limits(1, 1, 1, &["10.0.0.0/8", "2001:db8::/32"]));
        let held: Vec<_> = (0..5)
            .map(|_| per_ip.admit(ip("10.1.2.3")))
            .chain((0..5).map(|_| per_ip.admit(ip("::ffff:10.1.2.3"))))
            .chain((0..5).map(|_| per_ip.admit(ip("2001:db8::1"))))
            .collect();
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(per_ip.addresses(), 0, "trusted clients are not counted");
        let _first = per_ip.admit(ip("192.0.2.1"));
        assert!(per_ip.admit(ip("192.0.2.1")).is_err(), "others are limited");
    }

    #[test]
    fn a_reload_applies_to_new_connections_and_keeps_held_slots() {
        let per_ip = PerIp::new(&limits(1, 1000, 1000, &[]));
        let first = per_ip.admit(ip("192.0.2.1"));
        assert!(first.is_ok());
        per_ip.reconfigure(&limits(2, 1000, 1000, &[]));
        let second = per_ip.admit(ip("192.0.2.1"));
        assert!(second.is_ok(), "the new cap applies");
        assert!(per_ip.admit(ip("192.0.2.1")).is_err());
        per_ip.reconfigure(&limits(1, 1000, 1000, &["192.0.2.0/24"]));
        assert!(per_ip.admit(ip("192.0.2.1")).is_ok(), "now trusted");
        drop((first, second));
        assert_eq!(per_ip.addresses(), 0);
    }

    #[test]
    fn a_reload_with_a_new_quota_starts_full_buckets() {
        let per_ip = PerIp::new(&limits(100, 1, 1, &[]));
        assert!(per_ip.admit(ip("192.0.2.1")).is_ok());
        assert_eq!(per_ip.admit(ip("192.0.2.1")).err(), Some(Refusal::Rate));
        per_ip.reconfigure(&limits(50, 1, 1, &[]));
        assert_eq!(
            per_ip.admit(ip("192.0.2.1")).err(),
            Some(Refusal::Rate),
            "an unchanged quota keeps the bucket"
        );
        per_ip.reconfigure(&limits(50, 1, 2, &[]));
        assert!(per_ip.admit(ip("192.0.2.1")).is_ok());
    }
}
