//! The sessions relaying now, with what moving them needs (issue 10's migration): the
//! partition and node each is on, when it logged in, whether the node's
//! `verto.clientReady` has passed, its calls in progress, and the signal that moves it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One relaying session.
#[derive(Debug)]
pub struct Live {
    /// Its partition.
    pub partition: String,
    /// The node it is on.
    pub node: String,
    /// Its sessid (its sticky entry is forgotten when it is moved).
    pub sessid: Option<String>,
    /// When the node accepted its login.
    pub since: Instant,
    ready: AtomicBool,
    calls: AtomicU32,
    moved: CancellationToken,
}

impl Live {
    /// Notes what the relay saw: calls in progress, and whether `verto.clientReady` passed.
    pub fn update(&self, calls: usize, client_ready: bool) {
        self.calls
            .store(u32::try_from(calls).unwrap_or(u32::MAX), Ordering::Relaxed);
        if client_ready {
            self.ready.store(true, Ordering::Relaxed);
        }
    }

    /// Whether it has a call in progress.
    pub fn in_call(&self) -> bool {
        self.calls.load(Ordering::Relaxed) > 0
    }

    /// Whether the node's `verto.clientReady` has been relayed.
    pub fn client_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Cancelled when the session is to move to its partition's active node.
    pub fn moved(&self) -> &CancellationToken {
        &self.moved
    }
}

/// Every relaying session.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, Arc<Live>>>,
    next: AtomicU64,
}

/// A session's place in the registry, left when dropped.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<Registry>,
    id: u64,
    live: Arc<Live>,
}

impl Registered {
    /// The session's shared state.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Live>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a session that the node accepted just now.
    pub fn register(
        self: &Arc<Self>,
        partition: &str,
        node: &str,
        sessid: Option<String>,
    ) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let live = Arc::new(Live {
            partition: partition.to_owned(),
            node: node.to_owned(),
            sessid,
            since: Instant::now(),
            ready: AtomicBool::new(false),
            calls: AtomicU32::new(0),
            moved: CancellationToken::new(),
        });
        self.lock().insert(id, Arc::clone(&live));
        Registered {
            registry: Arc::clone(self),
            id,
            live,
        }
    }

    /// Every session now, oldest login first.
    pub fn snapshot(&self) -> Vec<Arc<Live>> {
        let mut all: Vec<Arc<Live>> = self.lock().values().cloned().collect();
        all.sort_by_key(|l| l.since);
        all
    }
}
