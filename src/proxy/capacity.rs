//! The descriptor budget: how many browser connections the process can hold, and how
//! the accept loop refuses the ones beyond it without failing or stalling.

use std::fs::File;

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors one session holds: the browser's socket and the node's.
pub const FDS_PER_SESSION: u64 = 2;

/// Descriptors kept free of sessions: stdio, the listener, epoll, signal pipes, log and
/// map files, the reserve descriptor, and the runtime's own.
pub const RESERVED_FDS: u64 = 32;

/// TLS handshakes in flight per core (see [`concurrent_handshakes`]).
pub const HANDSHAKES_PER_CORE: usize = 32;

/// How many TLS handshakes may be in flight at once.
pub fn concurrent_handshakes() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    HANDSHAKES_PER_CORE * cores
}

/// How many sessions fit in `nofile` descriptors.
pub fn session_capacity(nofile: u64) -> usize {
    let sessions = nofile.saturating_sub(RESERVED_FDS) / FDS_PER_SESSION;
    usize::try_from(sessions.max(1)).unwrap_or(usize::MAX)
}

/// Admission control for the accept loop: one permit per connection (released when
/// its task ends), and a reserve descriptor for when the process runs out anyway.
pub struct Admission {
    permits: Arc<Semaphore>,
    max: usize,
    // Held open so that, when accept() fails with EMFILE, closing it frees exactly one
    // descriptor: enough to accept the pending connection and close it at once,
    // instead of leaving it in the backlog where the loop would spin on it.
    reserve: Mutex<Option<File>>,
}

impl Admission {
    /// Admits at most `max` connections at once.
    pub fn new(max: usize) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(max)),
            max,
            reserve: Mutex::new(open_reserve()),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections held now.
    pub fn in_use(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// A permit for one more connection, or `None` at capacity.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }

    /// After accept() failed for lack of descriptors: accept one pending connection
    /// with the reserve descriptor and close it, so the peer is refused at once.
    /// Returns whether a connection was shed.
    pub fn shed_one(&self, listener: &TcpListener) -> bool {
        let Ok(mut reserve) = self.reserve.lock() else {
            return false;
        };
        *reserve = None;
        let shed = matches!(
            futures_util::FutureExt::now_or_never(listener.accept()),
            Some(Ok(_))
        );
        *reserve = open_reserve();
        shed
    }
}

fn open_reserve() -> Option<File> {
    File::open("/dev/null").ok()
}

/// Whether an accept error means the process or system ran out of descriptors.
pub fn is_out_of_descriptors(err: &std::io::Error) -> bool {
    // EMFILE (24): process limit; ENFILE (23): system-wide limit.
    matches!(err.raw_os_error(), Some(23) | Some(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_the_reserve_and_counts_two_descriptors_per_session() {
        assert_eq!(session_capacity(20_000), 9_984);
        assert_eq!(session_capacity(80), 24);
        assert_eq!(session_capacity(10), 1);
    }

    #[test]
    fn permits_run_out_at_the_cap_and_come_back_when_released() {
        let admission = Admission::new(2);
        let a = admission.try_admit();
        let b = admission.try_admit();
        assert!(a.is_some() && b.is_some());
        assert!(admission.try_admit().is_none());
        assert_eq!(admission.in_use(), 2);
        drop(a);
        assert!(admission.try_admit().is_some());
    }
}
