//! The sessions relaying now, with what moving them needs (issue 10's migration): the
//! partition and node each is on, when it logged in, whether the node's
//! `verto.clientReady` has passed, its calls in progress, and the signal that moves it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::task::AtomicWaker;
use std::task::{Context, Poll};
use tokio::time::Instant;

use super::migrate::MigrationReason;

/// One relaying session. Every live session has one, so it is small and allocates
/// nothing of its own: names are shared, the sessid is its sticky key.
#[derive(Debug)]
pub struct Live {
    /// Its partition.
    pub partition: Arc<str>,
    /// The node it is on.
    pub node: Arc<str>,
    /// The login the node accepted.
    pub login: Box<str>,
    /// Its Verto `sessid`.
    pub sessid: Option<Box<str>>,
    /// The browser's address.
    pub peer: SocketAddr,
    /// Its sessid's sticky key (the entry is forgotten when the session is moved).
    pub sticky_key: Option<u64>,
    /// When the node accepted its login.
    pub since: Instant,
    /// It reached its node through its sticky sessid rather than as the active node.
    pub via_sticky: bool,
    ready: AtomicBool,
    /// Its calls in progress, by `callID` (written only when the relay read a message
    /// that can change them).
    calls: Mutex<Vec<Box<str>>>,
    /// How it is to end: [`Ending::code`], 0 while it is not to.
    end: AtomicU8,
    /// The session's relay, woken when it is told to end.
    waker: AtomicWaker,
}

/// Why the registry ends a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Its node is down (close it at once, the node side dropped).
    NodeDown,
    /// Its node was drained and the operator's deadline passed (1001, calls included).
    DrainDeadline,
    /// The operator kicked it (1008); with `punt`, `verto.punt` is sent first so the
    /// client does not reconnect.
    Kicked {
        /// Send `verto.punt` before closing.
        punt: bool,
    },
    /// It is to move to its partition's active node (1012).
    Moved(MigrationReason),
}

impl Ending {
    /// One byte, ordered by precedence: a node found down overrides a deadline, which
    /// overrides a move.
    fn code(self) -> u8 {
        match self {
            Ending::NodeDown => u8::MAX,
            Ending::DrainDeadline => u8::MAX - 1,
            Ending::Kicked { punt: true } => u8::MAX - 2,
            Ending::Kicked { punt: false } => u8::MAX - 3,
            Ending::Moved(reason) => 1 + reason as u8,
        }
    }

    fn from_code(code: u8) -> Option<Ending> {
        match code {
            0 => None,
            u8::MAX => Some(Ending::NodeDown),
            c if c == u8::MAX - 1 => Some(Ending::DrainDeadline),
            c if c == u8::MAX - 2 => Some(Ending::Kicked { punt: true }),
            c if c == u8::MAX - 3 => Some(Ending::Kicked { punt: false }),
            c => MigrationReason::ALL
                .get(usize::from(c - 1))
                .map(|r| Ending::Moved(*r)),
        }
    }
}

impl Live {
    /// Notes what the relay saw: calls in progress, and whether `verto.clientReady` passed.
    pub fn update<'a>(&self, calls: impl Iterator<Item = &'a str>, client_ready: bool) {
        let mut mine = self.calls();
        mine.clear();
        mine.extend(calls.map(Box::from));
        if client_ready {
            self.ready.store(true, Ordering::Relaxed);
        }
    }

    fn calls(&self) -> MutexGuard<'_, Vec<Box<str>>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether it has a call in progress.
    pub fn in_call(&self) -> bool {
        !self.calls().is_empty()
    }

    /// Its calls in progress, by `callID`.
    pub fn call_ids(&self) -> Vec<String> {
        self.calls().iter().map(|c| c.to_string()).collect()
    }

    /// How many calls it has in progress.
    pub fn call_count(&self) -> usize {
        self.calls().len()
    }

    /// Whether the node's `verto.clientReady` has been relayed.
    pub fn client_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// How the session was told to end, if it was.
    pub fn ending(&self) -> Option<Ending> {
        Ending::from_code(self.end.load(Ordering::Relaxed))
    }

    /// Tells the session to end so, unless it was told something that takes
    /// precedence (a move never replaces an earlier ending); `false` when it was.
    pub fn end(&self, how: Ending) -> bool {
        let code = how.code();
        let raised = match how {
            Ending::Moved(_) => self
                .end
                .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok(),
            Ending::NodeDown | Ending::DrainDeadline | Ending::Kicked { .. } => {
                self.end.fetch_max(code, Ordering::Relaxed) < code
            }
        };
        if raised {
            self.waker.wake();
        }
        raised
    }

    /// Ready once the session is to end, with why; the relay polls it with its own
    /// waker, so an idle session holds no extra future for it.
    pub fn poll_ended(&self, cx: &mut Context<'_>) -> Poll<Ending> {
        if let Some(ending) = self.ending() {
            return Poll::Ready(ending);
        }
        self.waker.register(cx.waker());
        // Checked again after registering: an `end` in between is not missed.
        match self.ending() {
            Some(ending) => Poll::Ready(ending),
            None => Poll::Pending,
        }
    }
}

/// What a session the node just accepted is.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// Its partition.
    pub partition: &'a str,
    /// Its node.
    pub node: &'a str,
    /// The accepted login.
    pub login: &'a str,
    /// Its `sessid`.
    pub sessid: Option<&'a str>,
    /// The browser's address.
    pub peer: SocketAddr,
    /// Its sessid's sticky key.
    pub sticky_key: Option<u64>,
    /// It reached its node through its sticky sessid rather than as the active node.
    pub via_sticky: bool,
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
    pub fn register(self: &Arc<Self>, new: NewSession<'_>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let live = Arc::new(Live {
            partition: self.name(new.partition),
            node: self.name(new.node),
            login: Box::from(new.login),
            sessid: new.sessid.map(Box::from),
            peer: new.peer,
            sticky_key: new.sticky_key,
            since: Instant::now(),
            via_sticky: new.via_sticky,
            ready: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            end: AtomicU8::new(0),
            waker: AtomicWaker::new(),
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

    /// Sessions and calls in progress on `node` now.
    pub fn load(&self, node: &str) -> (usize, usize) {
        self.lock()
            .values()
            .filter(|l| *l.node == *node)
            .fold((0, 0), |(sessions, calls), l| {
                (sessions + 1, calls + l.call_count())
            })
    }

    /// Ends every session with `sessid` as the operator's kick; returns how many.
    pub fn kick(&self, sessid: &str, punt: bool) -> usize {
        let sessions: Vec<Arc<Live>> = self
            .lock()
            .values()
            .filter(|l| l.sessid.as_deref() == Some(sessid))
            .cloned()
            .collect();
        sessions
            .iter()
            .filter(|l| l.end(Ending::Kicked { punt }))
            .count()
    }

    /// Every session now, oldest login first.
    pub fn snapshot(&self) -> Vec<Arc<Live>> {
        let mut all: Vec<Arc<Live>> = self.lock().values().cloned().collect();
        all.sort_by_key(|l| l.since);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_round_trips_and_the_stronger_one_wins() {
        let mut all: Vec<Ending> = MigrationReason::ALL.map(Ending::Moved).to_vec();
        all.extend([
            Ending::Kicked { punt: false },
            Ending::Kicked { punt: true },
            Ending::DrainDeadline,
            Ending::NodeDown,
        ]);
        for how in all {
            assert_eq!(Ending::from_code(how.code()), Some(how));
        }
        assert_eq!(Ending::from_code(0), None);
        let registry = Arc::new(Registry::default());
        let session = registry.register(NewSession {
            partition: "p",
            node: "n",
            login: "1000@d.test",
            sessid: Some("s"),
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            sticky_key: None,
            via_sticky: false,
        });
        let live = session.live();
        assert!(live.end(Ending::Moved(MigrationReason::Drain)));
        assert!(
            !live.end(Ending::Moved(MigrationReason::Failback)),
            "first move wins"
        );
        assert!(!live.end(Ending::Moved(MigrationReason::Drain)));
        assert!(live.end(Ending::Kicked { punt: false }));
        assert!(live.end(Ending::Kicked { punt: true }));
        assert!(!live.end(Ending::Kicked { punt: false }));
        assert!(live.end(Ending::DrainDeadline));
        assert!(live.end(Ending::NodeDown));
        assert!(!live.end(Ending::DrainDeadline));
        assert_eq!(live.ending(), Some(Ending::NodeDown));
        assert_eq!(registry.load("n"), (1, 0));
        drop(session);
        assert_eq!(registry.load("n"), (0, 0));
        assert!(registry.occupied().is_empty());
    }
}
