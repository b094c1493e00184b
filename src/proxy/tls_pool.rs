//! The threads that do the CPU-heavy part of TLS handshakes (key exchange, certificate
//! signature), at a lower scheduling priority than the threads that relay messages.
//!
//! In a reconnect storm after a node failure, thousands of handshakes arrive within a
//! second. Done on the shard threads, each one sits in the same run queue as the
//! established sessions' messages, which then wait behind them (RTT p99 of another
//! partition's sessions 193–233 ms during a 3,000-session failover, docs/performance.md).
//! Here the shard thread hands the ClientHello's pass to this pool and goes on relaying;
//! the kernel gives the relay threads the CPU first, and the pool the rest.

use tokio::runtime::{Builder, Handle, Runtime};
use tracing::warn;

/// How much nicer than the gateway's own threads the pool's are (19 is the lowest
/// priority): at +10 the relay threads get about ten times the CPU of the handshake
/// threads when both want it, and the handshakes still get every cycle the relay leaves.
pub const HANDSHAKE_NICENESS: i32 = 10;

/// The lowest priority Linux has.
const NICEST: i32 = 19;

/// A runtime of one low-priority thread per core.
#[derive(Debug)]
pub struct TlsPool {
    runtime: Option<Runtime>,
}

impl TlsPool {
    /// Starts the pool's threads; without them (a thread limit) handshakes run on the
    /// connections' own threads, as they would without a pool.
    pub fn start() -> TlsPool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let built = Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name("vertogw-tls")
            .on_thread_start(lower_priority)
            .build();
        match built {
            Ok(runtime) => TlsPool {
                runtime: Some(runtime),
            },
            Err(err) => {
                warn!(error = %err, "no TLS handshake threads: handshakes share the relay threads");
                TlsPool { runtime: None }
            }
        }
    }

    /// Where handshakes' heavy passes run, if the pool started.
    pub fn handle(&self) -> Option<&Handle> {
        self.runtime.as_ref().map(Runtime::handle)
    }
}

impl Drop for TlsPool {
    // The gateway may be dropped inside an async context, where a blocking shutdown
    // would panic; the pool's tasks are short and hold nothing to flush.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's priority by [`HANDSHAKE_NICENESS`] (Linux schedules
/// threads, not processes: this changes only the pool's thread). Failing is harmless:
/// the thread keeps the gateway's priority.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let lowered = rustix::process::getpriority_process(Some(tid))
        .map(|own| own.saturating_add(HANDSHAKE_NICENESS).min(NICEST))
        .and_then(|nice| rustix::process::setpriority_process(Some(tid), nice));
    if let Err(err) = lowered {
        warn!(error = %err, "cannot lower the TLS handshake threads' priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_threads_run_at_the_lower_priority_and_the_caller_keeps_its_own() {
        let own = rustix::process::getpriority_process(None).unwrap();
        let pool = TlsPool::start();
        let handle = pool.handle().expect("the pool starts").clone();
        let probe = std::thread::spawn(move || {
            handle.block_on(async {
                tokio::spawn(async {
                    let name = std::thread::current().name().map(str::to_owned);
                    let tid = rustix::thread::gettid();
                    (
                        name,
                        rustix::process::getpriority_process(Some(tid)).unwrap(),
                    )
                })
                .await
                .unwrap()
            })
        });
        let (name, niceness) = probe.join().unwrap();
        assert_eq!(name.as_deref(), Some("vertogw-tls"));
        assert_eq!(niceness, (own + HANDSHAKE_NICENESS).min(NICEST));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), own);
    }
}
