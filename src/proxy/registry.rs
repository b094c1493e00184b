//! The sessions relaying now, with what moving them needs (issue 10's migration): the
//! partition and node each is on, when it logged in, whether the node's
//! `verto.clientReady` has passed, its calls in progress, and the signal that moves it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

/// One relaying session. Every live session has one, so it is small and allocates
/// nothing of its own: names are shared, the sessid is its sticky key.
#[derive(Debug)]
pub struct Live {
    /// Its partition.
    pub partition: Arc<str>,
    /// The node it is on.
    pub node: Arc<str>,
    /// Its sessid's sticky key (the entry is forgotten when the session is moved).
    pub sticky_key: Option<u64>,
    /// When the node accepted its login.
    pub since: Instant,
    ready: AtomicBool,
    calls: AtomicU32,
    moved: AtomicBool,
    /// Its node was found down.
    node_down: AtomicBool,
    wake: Notify,
}

/// Why the registry ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its node is down (close it at once, the node side dropped).
    NodeDown,
    /// It is to move to its partition's active node (1012).
    Moved,
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

    /// Whether the session was told to move.
    pub fn is_moved(&self) -> bool {
        self.moved.load(Ordering::Relaxed)
    }

    /// Tells the session to move to its partition's active node.
    pub fn move_now(&self) {
        self.moved.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Tells the session its node is down.
    pub fn node_is_down(&self) {
        self.node_down.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Resolves once the session is to end, with why. One wait for both causes keeps
    /// each session's relay state small.
    pub async fn ended(&self) -> Ending {
        loop {
            // `notify_one` keeps a permit when nobody waits yet, so nothing is missed.
            if self.node_down.load(Ordering::Relaxed) {
                return Ending::NodeDown;
            }
            if self.is_moved() {
                return Ending::Moved;
            }
            self.wake.notified().await;
        }
    }
}

/// A (partition, node) pair.
pub type Placement = (Arc<str>, Arc<str>);

/// Every relaying session.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<u64, Arc<Live>>>,
    /// Sessions per (partition, node): the migrator scans the sessions only when one
    /// of these pairs is not where it should be, so a farm at rest costs it nothing per
    /// session.
    placements: Mutex<HashMap<Placement, usize>>,
    next: AtomicU64,
    /// Partition and node names, shared by the sessions.
    names: Mutex<Vec<Arc<str>>>,
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
        let mut placements = self.registry.placements();
        let key = (
            Arc::clone(&self.live.partition),
            Arc::clone(&self.live.node),
        );
        if let Some(count) = placements.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                placements.remove(&key);
            }
        }
    }
}

impl Registry {
    fn placements(&self) -> MutexGuard<'_, HashMap<Placement, usize>> {
        self.placements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The (partition, node) pairs that have sessions now.
    pub fn occupied(&self) -> Vec<Placement> {
        self.placements().keys().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Live>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn name(&self, name: &str) -> Arc<str> {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = names.iter().find(|n| &***n == name) {
            return Arc::clone(known);
        }
        let shared: Arc<str> = Arc::from(name);
        names.push(Arc::clone(&shared));
        shared
    }

    /// Adds a session that the node accepted just now.
    pub fn register(
        self: &Arc<Self>,
        partition: &str,
        node: &str,
        sticky_key: Option<u64>,
    ) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let live = Arc::new(Live {
            partition: self.name(partition),
            node: self.name(node),
            sticky_key,
            since: Instant::now(),
            ready: AtomicBool::new(false),
            calls: AtomicU32::new(0),
            moved: AtomicBool::new(false),
            node_down: AtomicBool::new(false),
            wake: Notify::new(),
        });
        self.lock().insert(id, Arc::clone(&live));
        let key = (Arc::clone(&live.partition), Arc::clone(&live.node));
        *self.placements().entry(key).or_insert(0) += 1;
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
