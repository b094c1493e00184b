//! The accept loop and one browser connection up to the WebSocket upgrade.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::Acceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use super::capacity::{self, Admission};
use super::context::SessionCtx;
use super::per_ip::{self, PeerPermit};
use super::session;
use super::{plain_http, upgrade, ws_config, Gateway, SHUTDOWN_GRACE};

/// Pause after an accept error such as EMFILE, so a full descriptor table does not
/// turn the accept loop into a busy loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts browsers on `listener` until `shutdown` is cancelled, then closes every
/// session with 1001 and returns once they are gone (or [`SHUTDOWN_GRACE`] passed).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let admission = Arc::new(Admission::new(gateway.max_connections()));
    info!(
        listen = %listener.local_addr()?,
        threads = 1,
        max_connections = admission.max(),
        "gateway listening"
    );
    serve_shard(listener, gateway, shutdown, admission).await
}

/// One accept loop of possibly several sharing `admission` (one per thread, each on
/// its own `SO_REUSEPORT` listener); otherwise as [`serve`].
pub async fn serve_shard(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    admission: Arc<Admission>,
) -> std::io::Result<()> {
    let tracker = TaskTracker::new();
    let mut refused = RefusalLog::default();
    let mut refused_per_ip = per_ip::RefusalLog::default();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(err) if capacity::is_out_of_descriptors(&err) => {
                    if !admission.shed_one(&listener) {
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                    refused.note("out_of_descriptors", admission.in_use());
                    continue;
                }
                Err(err) => {
                    warn!(error = %err, failure = "accept", "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let peer_permit = match gateway.per_ip().admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                // Refused before any TLS work, so a flood from one address costs an
                // accept and a close each.
                drop(tcp);
                refused_per_ip.note(refusal, peer);
                continue;
            }
        };
        let Some(permit) = admission.try_admit() else {
            // Closing at once is the clean refusal: the client sees the connection
            // end and retries, and the accept loop never blocks on a full table.
            drop(tcp);
            refused.note("at_capacity", admission.in_use());
            continue;
        };
        let span = tracing::info_span!("conn", %peer);
        let conn = Connection {
            peer,
            gateway: Arc::clone(&gateway),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            permit: Mutex::new(Some(Permits {
                _capacity: permit,
                _peer: peer_permit,
            })),
        };
        tracker.spawn(conn.run(tcp).instrument(span));
    }
    drop(listener);
    tracker.close();
    info!(sessions = tracker.len(), "shutting down: closing sessions");
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            left = tracker.len(),
            "sessions still open after the shutdown grace period"
        );
    }
    Ok(())
}

/// Logs refused connections at most once a second, with a count, so a flood of
/// refusals cannot flood the log.
#[derive(Default)]
struct RefusalLog {
    since_last: u64,
    last: Option<std::time::Instant>,
}

impl RefusalLog {
    fn note(&mut self, failure: &'static str, in_use: usize) {
        self.since_last += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            warn!(
                failure,
                refused = self.since_last,
                in_use,
                "connection refused: gateway at capacity"
            );
            self.since_last = 0;
            self.last = Some(now);
        }
    }
}

/// What an admitted connection holds until it ends: its place under `max_connections`
/// and under its address's `per_ip_connections`.
struct Permits {
    _capacity: OwnedSemaphorePermit,
    _peer: PeerPermit,
}

struct Connection {
    /// The client's address (the one per-address limits and logs use).
    peer: std::net::SocketAddr,
    gateway: Arc<Gateway>,
    /// The admission permits: move into the session on upgrade, else are released
    /// when the connection ends.
    permit: Mutex<Option<Permits>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Connection {
    async fn run(self, tcp: TcpStream) {
        let accepted = Instant::now();
        let settings = self.gateway.settings();
        let deadline = accepted + settings.login_timeout;
        // Also frees the handshake turn of a peer that sent its ClientHello and went
        // silent, so it delays the handshakes queued behind it by at most this much.
        let tls_deadline = deadline.min(accepted + settings.tls_handshake_timeout);
        super::tcp::tune(&tcp, settings.stall_timeout);
        let tls = tokio::select! {
            r = tokio::time::timeout_at(tls_deadline, self.tls_handshake(tcp)) => match r {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => return debug!(failure = "tls", error = %err, "TLS handshake failed"),
                Err(_) => return debug!(failure = "tls_timeout", "TLS handshake timed out"),
            },
            _ = self.shutdown.cancelled() => return,
        };
        let ctx = Arc::new(self);
        let service = {
            let ctx = Arc::clone(&ctx);
            service_fn(move |req| {
                let ctx = Arc::clone(&ctx);
                async move { Ok::<_, Infallible>(ctx.on_request(req, accepted, deadline)) }
            })
        };
        let http = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.login_timeout)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(tls), service)
            .with_upgrades();
        tokio::select! {
            r = http => if let Err(err) = r {
                debug!(failure = "http", error = %err, "HTTP connection ended");
            },
            _ = tokio::time::sleep_until(deadline) => debug!(failure = "login_timeout", "no upgrade in time"),
            _ = ctx.shutdown.cancelled() => {}
        }
    }

    /// TLS handshakes make a reconnect storm CPU-bound for the whole host. Bounding how
    /// many are in flight paces the storm (the others wait, accepted and idle, within
    /// their login timeout) and leaves CPU to the established sessions, as HAProxy does
    /// by de-prioritising handshakes. The turn is taken only once a complete ClientHello
    /// has arrived, so a peer that sends nothing cannot hold one, and one that goes
    /// silent after its ClientHello holds it until its `tls_handshake_timeout`.
    async fn tls_handshake(
        &self,
        tcp: TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        if plain_http::looks_like_plain_http(&tcp).await? {
            debug!(
                failure = "plain_http",
                "plain HTTP on the TLS port: answered 400"
            );
            plain_http::refuse(tcp).await;
            return Err(std::io::Error::other("plain HTTP on the TLS port"));
        }
        let hello = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
        let _turn = self.gateway.handshakes().acquire().await.ok();
        hello.into_stream(self.gateway.server_tls()).await
    }

    fn on_request(
        &self,
        mut req: Request<Incoming>,
        accepted: Instant,
        deadline: Instant,
    ) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
        let router = self.gateway.router();
        let origins = router.config().gateway.allowed_origins.as_deref();
        let checked = upgrade::inspect(&req)
            .and_then(|accepted| upgrade::check_origin(&req, origins).map(|()| accepted));
        let accepted_upgrade = match checked {
            Ok(a) => a,
            Err(refusal) => {
                debug!(?refusal, path = ?req.uri().path(), "not a WebSocket upgrade");
                return refusal.response();
            }
        };
        let on_upgrade = hyper::upgrade::on(&mut req);
        let ctx = SessionCtx {
            peer: self.peer,
            gateway: Arc::clone(&self.gateway),
            accepted,
            deadline,
            shutdown: self.shutdown.clone(),
        };
        let max = ctx.gateway.settings().max_message_bytes;
        let permit = self.permit.lock().ok().and_then(|mut p| p.take());
        self.tracker.spawn(
            async move {
                let _permit = permit;
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let io = TokioIo::new(upgraded);
                        let ws = WebSocketStream::from_raw_socket(
                            io,
                            Role::Server,
                            Some(ws_config::browser(max)),
                        )
                        .await;
                        session::run(ws, ctx).await;
                    }
                    Err(err) => debug!(failure = "upgrade", error = %err, "upgrade failed"),
                }
            }
            .in_current_span(),
        );
        upgrade::switching(&accepted_upgrade)
    }
}
