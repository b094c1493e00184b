//! State shared by every socket of one node: request ids, the sessid table, the calls,
//! stats.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::calls::CallTable;
use super::json::Json;
use super::media::Media;
use super::stats::{ReceivedLog, SimStats};
use super::SimConfig;

/// Server-originated messages a socket may have waiting. mod_verto allows 100000 per
/// socket; the simulator keeps fewer because its messages may be 1 MB each.
pub const OUTBOUND_QUEUE: usize = 1024;

/// Consecutive failed enqueues after which a socket is dropped (`MAX_MISSED`).
pub const MAX_MISSED: u32 = 500;

/// The least extra time a detached call gets when its sessid is bound again as it times
/// out (that socket's `clientReady` reattaches it within `client_ready_delay`); keeps a
/// zero detach timeout from spinning the sweeper.
pub const MIN_REARM: Duration = Duration::from_secs(1);

/// A message pushed to a socket by someone other than its own task.
#[derive(Debug)]
pub(crate) enum Push {
    /// Write this text frame.
    Text(String),
    /// Write this `verto.punt`, then close 1000.
    Punt(String),
}

/// How other tasks reach one socket.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    pub conn_id: u64,
    tx: mpsc::Sender<Push>,
    kick: CancellationToken,
    missed: Arc<AtomicU32>,
}

impl ConnHandle {
    /// A handle plus the receiving end its socket task reads.
    pub(crate) fn new(conn_id: u64, kick: CancellationToken) -> (ConnHandle, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let missed = Arc::new(AtomicU32::new(0));
        let handle = ConnHandle {
            conn_id,
            tx,
            kick,
            missed,
        };
        (handle, rx)
    }

    /// Queues without waiting; a socket that keeps not draining its queue is dropped,
    /// so a slow reader costs bounded memory.
    pub(crate) fn push(&self, push: Push) -> bool {
        let punt = matches!(push, Push::Punt(_));
        if self.tx.try_send(push).is_ok() {
            self.missed.store(0, Ordering::Relaxed);
            return true;
        }
        if punt || self.missed.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_MISSED {
            self.kick.cancel();
        }
        false
    }
}

struct Binding {
    uid: String,
    handle: ConnHandle,
}

/// The outcome of binding a sessid at a socket's first successful auth.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    /// The socket owns the sessid now (a previous owner of the same user was punted).
    Bound,
    /// Another user's socket owns it: "Session in use".
    InUse,
}

/// Everything the sockets of one node share.
///
/// Lock order: `sessions` before `calls` (a punt detaches calls while binding).
pub(crate) struct Shared {
    pub config: SimConfig,
    pub media: Media,
    next_request: AtomicU64,
    next_conn: AtomicU64,
    next_ring: AtomicU64,
    sessions: Mutex<HashMap<String, Binding>>,
    authed: Mutex<HashMap<u64, String>>,
    calls: Mutex<CallTable>,
    received: Mutex<ReceivedLog>,
    pub stats: watch::Sender<SimStats>,
    /// Woken when a call is detached, so the sweeper re-reads the next deadline.
    pub detach_wake: Notify,
}

/// Locks ignoring poisoning: the data stays consistent because no code panics while
/// holding these locks, and a test's panic must not cascade into every other socket.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Fresh state for a node.
    pub(crate) fn new(config: SimConfig) -> Shared {
        Shared {
            media: Media::generate(&config.name),
            config,
            next_request: AtomicU64::new(1),
            next_conn: AtomicU64::new(1),
            next_ring: AtomicU64::new(1),
            sessions: Mutex::default(),
            authed: Mutex::default(),
            calls: Mutex::default(),
            received: Mutex::default(),
            stats: watch::Sender::new(SimStats::default()),
            detach_wake: Notify::new(),
        }
    }

    /// A new connection number (internal, for the sessid table).
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A server request with the next id of the node-global counter.
    pub(crate) fn request(&self, method: &str, params: Json) -> String {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        Json::object([
            ("jsonrpc", "2.0".into()),
            ("id", id.into()),
            ("method", method.into()),
            ("params", params),
        ])
        .to_text()
    }

    /// Updates the stats and wakes `wait_for` callers.
    pub(crate) fn bump(&self, update: impl FnOnce(&mut SimStats)) {
        self.stats.send_modify(update);
    }

    /// Appends to the received-message log.
    pub(crate) fn record_received(&self, payload: &[u8]) {
        lock(&self.received).push(payload);
    }

    /// The retained received messages.
    pub(crate) fn received(&self) -> Vec<String> {
        lock(&self.received).snapshot()
    }

    /// Binds `sessid` to a socket at its first successful auth (HEAD rules).
    pub(crate) fn bind(&self, sessid: &str, uid: &str, handle: &ConnHandle) -> Bind {
        let mut sessions = lock(&self.sessions);
        if let Some(old) = sessions.get(sessid) {
            if old.handle.conn_id != handle.conn_id {
                if old.uid != uid {
                    return Bind::InUse;
                }
                let punt = self.request("verto.punt", Json::Object(Vec::new()));
                old.handle.push(Push::Punt(punt));
                self.bump(|s| s.punts += 1);
                // The punted socket's calls wait for this one's clientReady (capture 13).
                self.detach(sessid, old.handle.conn_id);
            }
        }
        let binding = Binding {
            uid: uid.to_owned(),
            handle: handle.clone(),
        };
        sessions.insert(sessid.to_owned(), binding);
        Bind::Bound
    }

    /// Records that a socket is (now) authenticated as `uid`.
    pub(crate) fn authenticated(&self, conn_id: u64, uid: &str) {
        let mut authed = lock(&self.authed);
        let previous = authed.insert(conn_id, uid.to_owned());
        // Kept sorted by insertion rather than rebuilt: rebuilding on every login made
        // a 10,000-session benchmark quadratic in allocations.
        self.bump(|s| {
            s.logins_ok += 1;
            if let Some(old) = previous {
                remove_sorted(&mut s.logged_in_users, &old);
            }
            let at = s
                .logged_in_users
                .binary_search_by(|u| u.as_str().cmp(uid))
                .unwrap_or_else(|at| at);
            s.logged_in_users.insert(at, uid.to_owned());
        });
    }

    /// Forgets a closed socket: its sessid binding (unless taken over), its login, and
    /// its calls (detached or ended).
    pub(crate) fn release(&self, conn_id: u64, sessid: Option<&str>) {
        if let Some(sessid) = sessid {
            let mut sessions = lock(&self.sessions);
            if sessions
                .get(sessid)
                .is_some_and(|b| b.handle.conn_id == conn_id)
            {
                sessions.remove(sessid);
            }
            drop(sessions);
            self.detach(sessid, conn_id);
        }
        let mut authed = lock(&self.authed);
        if let Some(uid) = authed.remove(&conn_id) {
            self.bump(|s| remove_sorted(&mut s.logged_in_users, &uid));
        }
    }

    /// Queues `text` to every authenticated socket; returns how many accepted it.
    pub(crate) fn broadcast(&self, text: &str) -> usize {
        let handles: Vec<ConnHandle> = lock(&self.sessions)
            .values()
            .map(|b| b.handle.clone())
            .collect();
        handles
            .iter()
            .filter(|h| h.push(Push::Text(text.to_owned())))
            .count()
    }
}

impl Shared {
    /// Runs `f` on the call table and keeps [`SimStats::calls`] current.
    pub(crate) fn calls<R>(&self, f: impl FnOnce(&mut CallTable) -> R) -> R {
        let mut table = lock(&self.calls);
        let result = f(&mut table);
        let live = table.len() as u64;
        drop(table);
        self.stats.send_if_modified(|s| {
            let changed = s.calls != live;
            s.calls = live;
            changed
        });
        result
    }

    /// A new ring group: the calls of one originate.
    pub(crate) fn next_ring(&self) -> u64 {
        self.next_ring.fetch_add(1, Ordering::Relaxed)
    }

    /// The socket bound to `sessid`, if it is socket `conn_id`.
    pub(crate) fn handle_of(&self, sessid: &str, conn_id: u64) -> Option<ConnHandle> {
        lock(&self.sessions)
            .get(sessid)
            .filter(|b| b.handle.conn_id == conn_id)
            .map(|b| b.handle.clone())
    }

    /// Every authenticated socket as (sessid, uid, handle).
    pub(crate) fn bound_sockets(&self) -> Vec<(String, String, ConnHandle)> {
        lock(&self.sessions)
            .iter()
            .map(|(sessid, b)| (sessid.clone(), b.uid.clone(), b.handle.clone()))
            .collect()
    }

    /// `detach_calls` for socket `conn_id` of `sessid`: unanswered calls end, answered
    /// ones are kept for [`SimConfig::detach_timeout`].
    pub(crate) fn detach(&self, sessid: &str, conn_id: u64) {
        let until = Instant::now() + self.config.detach_timeout;
        let outcome = self.calls(|t| t.detach(sessid, conn_id, until));
        let (kept, ended) = (outcome.kept, outcome.ended);
        if kept + ended > 0 {
            tracing::debug!(%sessid, kept, ended, "sim: socket gone, calls detached or ended");
        }
        if kept > 0 {
            self.bump(|s| s.calls_detached += kept as u64);
            self.detach_wake.notify_one();
        }
    }

    /// `drop_detached`: ends the detached calls whose timeout passed (a call whose
    /// sessid is bound again is given another timeout, at least [`MIN_REARM`], instead).
    pub(crate) fn expire_detached(&self, now: Instant) {
        let sessions = lock(&self.sessions);
        let rearm = now + self.config.detach_timeout.max(MIN_REARM);
        let ended = self.calls(|t| t.expire(now, |s| sessions.contains_key(s), rearm));
        drop(sessions);
        if ended > 0 {
            tracing::debug!(ended, "sim: detached calls timed out");
            self.bump(|s| s.calls_expired += ended as u64);
        }
    }

    /// When [`Shared::expire_detached`] next has something to do.
    pub(crate) fn next_detach_deadline(&self) -> Option<Instant> {
        lock(&self.calls).next_deadline()
    }
}

fn remove_sorted(users: &mut Vec<String>, uid: &str) {
    if let Ok(at) = users.binary_search_by(|u| u.as_str().cmp(uid)) {
        users.remove(at);
    }
}
