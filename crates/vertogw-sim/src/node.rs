//! [`SimNode`]: the accept loop and the handle tests and commands drive a node with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::calls::SimCall;
use super::conn::{self, Tokens};
use super::json::Json;
use super::outbound::{self, CallerId};
use super::shared::Shared;
use super::stats::SimStats;
use super::SimConfig;

/// How long [`SimNode::shutdown`] waits for sockets to close politely before dropping
/// the rest.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running simulated mod_verto node. Dropping it kills the node abruptly (like
/// [`SimNode::vanish`]); call [`SimNode::shutdown`] for a graceful stop.
pub struct SimNode {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tokens: Tokens,
    tracker: TaskTracker,
}

impl SimNode {
    /// Starts serving on an already-bound listener until shutdown or vanish.
    pub async fn spawn(listener: TcpListener, config: SimConfig) -> SimNode {
        let addr = listener.local_addr().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "sim: listener has no local address");
            SocketAddr::from(([0, 0, 0, 0], 0))
        });
        let tls = config.tls.clone().map(TlsAcceptor::from);
        let shared = Arc::new(Shared::new(config));
        let tokens = Tokens {
            shutdown: CancellationToken::new(),
            vanish: CancellationToken::new(),
        };
        let tracker = TaskTracker::new();
        let span = tracing::info_span!("sim_node", node = %shared.config.name, %addr);
        let accept = accept_loop(
            listener,
            Arc::clone(&shared),
            tls,
            tokens.clone(),
            tracker.clone(),
        );
        tracker.spawn(accept.instrument(span.clone()));
        let sweep = sweep_detached(Arc::clone(&shared), tokens.clone());
        tracker.spawn(sweep.instrument(span));
        SimNode {
            shared,
            addr,
            tokens,
            tracker,
        }
    }

    /// The node's name (also sent as `sim_node` in `verto.clientReady`).
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://<addr>/`, or `wss://localhost:<port>/` when the node has TLS.
    pub fn url(&self) -> String {
        match self.shared.config.tls {
            Some(_) => format!("wss://localhost:{}/", self.addr.port()),
            None => format!("ws://{}/", self.addr),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.stats.borrow().clone()
    }

    /// The last received text/binary messages, oldest first (bounded by
    /// [`super::RECEIVED_LOG_MESSAGES`] and [`super::RECEIVED_LOG_BYTES`]).
    pub fn received(&self) -> Vec<String> {
        self.shared.received()
    }

    /// Waits until `pred` holds for the stats (checked on every change); `false` on
    /// timeout.
    pub async fn wait_for(&self, pred: impl Fn(&SimStats) -> bool, timeout: Duration) -> bool {
        let mut rx = self.shared.stats.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| pred(s)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Queues a raw text frame to every authenticated socket; returns how many took it.
    pub fn broadcast(&self, text: String) -> usize {
        self.shared.broadcast(&text)
    }

    /// Sends a server request (`{"jsonrpc":"2.0","id":N,"method":…,"params":…}` with the
    /// next node-global id) to every authenticated socket; returns how many took it.
    pub fn request(&self, method: &str, params: &serde_json::Value) -> usize {
        let text = self.shared.request(method, Json::from(params));
        self.shared.broadcast(&text)
    }

    /// Calls `login` like `originate user/<login>`: every socket where it is logged in
    /// (`id@domain`, or `id` alone, completed by `force_domain` when set) gets a
    /// `verto.invite` with the node's offer; returns how many sockets got one. The
    /// first browser to answer (`verto.answer`) takes the call, the others get
    /// `verto.bye` `LOSE_RACE`.
    pub fn call(&self, login: &str, caller: &CallerId) -> usize {
        outbound::originate(&self.shared, login, caller)
    }

    /// Hangs call `call_id` up from the node: its socket gets `verto.bye`
    /// `NORMAL_CLEARING` (a detached call just ends); `false` when there is no such call.
    pub fn hangup(&self, call_id: &str) -> bool {
        outbound::hangup(&self.shared, call_id)
    }

    /// The node's live calls, sorted by user then callID.
    pub fn calls(&self) -> Vec<SimCall> {
        self.shared.calls(|t| t.snapshot())
    }

    /// Abrupt death: the listener closes and every socket is reset without a close
    /// frame. Takes effect within a scheduler tick; await [`SimNode::closed`] to be sure.
    pub fn vanish(&self) {
        self.tokens.vanish.cancel();
        self.tracker.close();
    }

    /// Resolves once the listener and every socket task are gone (after
    /// [`SimNode::vanish`] or [`SimNode::shutdown`]).
    pub async fn closed(&self) {
        self.tracker.wait().await;
    }

    /// Graceful stop: no more accepts, every socket gets close 1000; sockets still
    /// open after [`SHUTDOWN_GRACE`] are dropped.
    pub async fn shutdown(self) {
        self.tokens.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            self.tokens.vanish.cancel();
            self.tracker.wait().await;
        }
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        // A node nobody holds any more must not keep serving in the background.
        self.tokens.vanish.cancel();
        self.tracker.close();
    }
}

/// `drop_detached`: ends detached calls when their timeout passes.
async fn sweep_detached(shared: Arc<Shared>, tokens: Tokens) {
    loop {
        let deadline = shared.next_detach_deadline();
        let due = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokens.vanish.cancelled() => break,
            _ = tokens.shutdown.cancelled() => break,
            _ = shared.detach_wake.notified() => {}
            _ = due => shared.expire_detached(tokio::time::Instant::now()),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    tokens: Tokens,
    tracker: TaskTracker,
) {
    tracing::info!(users = %shared.config.users.summary(), "sim: listening");
    loop {
        let accepted = tokio::select! {
            _ = tokens.vanish.cancelled() => break,
            _ = tokens.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "sim: accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        shared.bump(|s| s.tcp_accepted += 1);
        let span = tracing::debug_span!("sim_conn", %peer);
        let serve = conn::serve(Arc::clone(&shared), tcp, tls.clone(), tokens.clone());
        tracker.spawn(serve.instrument(span));
    }
    tracing::info!("sim: listener closed");
}
