//! Turns for TLS handshakes: a global bound (`max_tls_handshakes`, which paces reconnect
//! storms), and within it a per-address share, so that one client address sending
//! ClientHellos and going silent cannot hold every turn until its handshake times out.
//! An address over its share waits for its own earlier handshakes, holding no global
//! turn, so the other addresses' handshakes go on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::config::address_key;

/// The share of the global turns one address may hold: an eighth (at least 2).
pub fn per_address_share(global: usize) -> usize {
    (global / 8).max(2)
}

/// The handshake turns of one gateway.
#[derive(Debug)]
pub struct Turns {
    global: Semaphore,
    share: usize,
    per_address: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
}

/// A turn: held for one handshake's CPU work and round trips, then dropped.
#[derive(Debug)]
pub struct Turn<'a> {
    _global: Option<SemaphorePermit<'a>>,
    _address: Option<AddressTurn>,
}

#[derive(Debug)]
struct AddressTurn {
    permit: Option<OwnedSemaphorePermit>,
    key: IpAddr,
    table: Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>,
}

impl Drop for AddressTurn {
    fn drop(&mut self) {
        drop(self.permit.take());
        // The entry goes once nobody holds or waits for it, so the table holds only
        // addresses with handshakes in flight.
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            table.remove(&self.key);
        }
    }
}

impl Turns {
    /// `global` turns in all; each address may hold [`per_address_share`] of them.
    pub fn new(global: usize) -> Turns {
        Turns {
            global: Semaphore::new(global),
            share: per_address_share(global),
            per_address: Arc::default(),
        }
    }

    /// Waits for a turn for a handshake from `peer`; `trusted` addresses skip the share.
    pub async fn acquire(&self, peer: IpAddr, trusted: bool) -> Turn<'_> {
        let address = if trusted {
            None
        } else {
            let key = address_key(peer);
            let semaphore = {
                let mut table = self
                    .per_address
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                Arc::clone(
                    table
                        .entry(key)
                        .or_insert_with(|| Arc::new(Semaphore::new(self.share))),
                )
            };
            Some(AddressTurn {
                permit: semaphore.acquire_owned().await.ok(),
                key,
                table: Arc::clone(&self.per_address),
            })
        };
        Turn {
            _global: self.global.acquire().await.ok(),
            _address: address,
        }
    }

    /// Addresses with a handshake in flight or waiting.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.per_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_and_others_still_get_turns() {
        let turns = Turns::new(16);
        assert_eq!(per_address_share(16), 2);
        let a1 = turns.acquire(ip("192.0.2.1"), false).await;
        let a2 = turns.acquire(ip("192.0.2.1"), false).await;
        let third = tokio::time::timeout(
            Duration::from_millis(50),
            turns.acquire(ip("192.0.2.1"), false),
        )
        .await;
        assert!(third.is_err(), "a third turn for the same address waits");
        let other = tokio::time::timeout(
            Duration::from_secs(5),
            turns.acquire(ip("198.51.100.1"), false),
        )
        .await;
        assert!(other.is_ok(), "another address is not held up");
        drop((a1, a2, other));
        assert_eq!(turns.addresses(), 0, "entries go when the turns do");
    }

    #[tokio::test]
    async fn trusted_addresses_and_ipv6_neighbours() {
        let turns = Turns::new(16);
        let held: Vec<_> =
            futures_util::future::join_all((0..5).map(|_| turns.acquire(ip("127.0.0.1"), true)))
                .await;
        assert_eq!(held.len(), 5, "trusted addresses skip the share");
        let _a = turns.acquire(ip("2001:db8::1"), false).await;
        let _b = turns.acquire(ip("2001:db8::2"), false).await;
        let third = tokio::time::timeout(
            Duration::from_millis(50),
            turns.acquire(ip("2001:db8::3"), false),
        )
        .await;
        assert!(third.is_err(), "one /64 is one address");
    }
}
