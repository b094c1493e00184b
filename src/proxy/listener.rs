//! The accept loop and one browser connection up to the WebSocket upgrade.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};
use vertogw_net::server_tls::{self, ServerTls};

use super::capacity::{self, Admission};
use super::context::SessionCtx;
use super::per_ip::{self, PeerPermit};
use super::proxy_header::{self, ProxiedRefusals, Source};
use super::session;
use super::throttle::Throttle;
use super::{plain_http, upgrade, Gateway, Settings, SHUTDOWN_GRACE};
use crate::config::{ProxySender, ProxyVersion};
use crate::web::WebBody;
use crate::websocket::{Role, WsStream};
use http_body_util::Either;

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
    // Where browsers reached us: the derived public URL needs the real port when the
    // map says port 0.
    let bound = listener.local_addr()?;
    super::tcp::tune_listener(&listener);
    let tracker = TaskTracker::new();
    let mut refused = RefusalLog::default();
    let mut refused_per_ip = per_ip::RefusalLog::default();
    let mut refused_unlisted = Throttle::default();
    let proxied_refusals = Arc::new(ProxiedRefusals::default());
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
        let sender = gateway
            .router()
            .config()
            .gateway
            .proxy_protocol
            .sender(peer.ip());
        let peer_permit = match sender {
            ProxySender::Client => match gateway.per_ip().admit(peer.ip()) {
                Ok(permit) => Some(permit),
                Err(refusal) => {
                    // Refused before any TLS work, so a flood from one address costs an
                    // accept and a close each.
                    drop(tcp);
                    refused_per_ip.note(refusal, peer);
                    continue;
                }
            },
            // Its clients are admitted by the addresses their headers name; the
            // balancer itself is not limited as one address.
            ProxySender::Balancer(_) => None,
            ProxySender::Unlisted => {
                drop(tcp);
                proxy_header::log_unlisted(&mut refused_unlisted, peer);
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
        let conn = Connection {
            peer,
            bound,
            gateway: Arc::clone(&gateway),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            permit: Mutex::new(Some(Permits {
                _capacity: permit,
                _peer: peer_permit,
            })),
        };
        let accepted = Instant::now();
        if let ProxySender::Balancer(version) = sender {
            let refusals = Arc::clone(&proxied_refusals);
            tracker.spawn(conn.run_proxied(tcp, accepted, version, refusals));
        } else {
            let span = tracing::info_span!("conn", %peer);
            tracker.spawn(conn.run(tcp, accepted).instrument(span));
        }
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
    throttle: Throttle,
}

impl RefusalLog {
    fn note(&mut self, failure: &'static str, in_use: usize) {
        if let Some(refused) = self.throttle.note() {
            warn!(
                failure,
                refused, in_use, "connection refused: gateway at capacity"
            );
        }
    }
}

/// What an admitted connection holds until it ends: its place under `max_connections`
/// and under its address's `per_ip_connections` (none for a load balancer's own
/// connections, nor yet for one whose PROXY header is still to be read).
struct Permits {
    _capacity: OwnedSemaphorePermit,
    _peer: Option<PeerPermit>,
}

/// From TCP accept to a finished TLS handshake, a PROXY header included: the earlier
/// of `tls_handshake_timeout_ms` and `login_timeout_ms`.
fn handshake_deadline(settings: &Settings, accepted: Instant) -> Instant {
    accepted + settings.tls_handshake_timeout.min(settings.login_timeout)
}

struct Connection {
    /// The client's address (the one per-address limits and logs use): the TCP peer,
    /// or the source a load balancer's PROXY header names.
    peer: std::net::SocketAddr,
    /// The listener's address.
    bound: std::net::SocketAddr,
    gateway: Arc<Gateway>,
    /// The admission permits: move into the session on upgrade, else are released
    /// when the connection ends.
    permit: Mutex<Option<Permits>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Connection {
    /// A load balancer's connection: reads its PROXY header within the handshake
    /// deadline (which counts from accept), admits the address the header names under
    /// the per-address limits, then goes on as [`Self::run`] with that address as the
    /// client's. Any failure closes the connection before TLS.
    async fn run_proxied(
        mut self,
        mut tcp: TcpStream,
        accepted: Instant,
        version: ProxyVersion,
        refusals: Arc<ProxiedRefusals>,
    ) {
        let balancer = self.peer;
        let deadline = handshake_deadline(&self.gateway.settings(), accepted);
        let read = tokio::time::timeout_at(deadline, proxy_header::read(&mut tcp, version));
        let read = tokio::select! {
            r = read => r,
            _ = self.shutdown.cancelled() => return,
        };
        let source = match read {
            Ok(Ok(source)) => source,
            Ok(Err(err)) => {
                proxy_header::discard_pending(&tcp);
                return refusals.header(balancer, &err);
            }
            Err(_) => {
                return debug!(failure = "proxy_header_timeout", %balancer, "no PROXY header in time")
            }
        };
        let Some(client) = self.admit_source(source, &tcp, &refusals) else {
            return;
        };
        self.peer = client;
        let span = tracing::info_span!("conn", peer = %client, %balancer);
        self.run(tcp, accepted).instrument(span).await
    }

    /// The client a PROXY header names, admitted under the per-address limits (the
    /// permit joins the connection's); `None` when refused. A header for the balancer's
    /// own connection (a health check) makes the balancer the client, not limited as
    /// one address.
    fn admit_source(
        &mut self,
        source: Source,
        tcp: &TcpStream,
        refusals: &ProxiedRefusals,
    ) -> Option<std::net::SocketAddr> {
        let client = match source {
            Source::Client(client) => client,
            Source::Local => return Some(self.peer),
        };
        match self.gateway.per_ip().admit(client.ip()) {
            Ok(permit) => {
                if let Some(held) = self.permit.get_mut().ok().and_then(Option::as_mut) {
                    held._peer = Some(permit);
                }
                Some(client)
            }
            Err(refusal) => {
                proxy_header::discard_pending(tcp);
                refusals.per_ip(refusal, client);
                None
            }
        }
    }

    async fn run(self, tcp: TcpStream, accepted: Instant) {
        let settings = self.gateway.settings();
        let deadline = accepted + settings.login_timeout;
        // Also frees the handshake turn of a peer that sent its ClientHello and went
        // silent, so it delays the handshakes queued behind it by at most this much.
        let tls_deadline = handshake_deadline(&settings, accepted);
        super::tcp::tune_accepted(&tcp, settings.stall_timeout);
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
                async move { Ok::<_, Infallible>(ctx.on_request(req, accepted, deadline).await) }
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
    async fn tls_handshake(&self, tcp: TcpStream) -> std::io::Result<ServerTls<TcpStream>> {
        if plain_http::looks_like_plain_http(&tcp).await? {
            debug!(
                failure = "plain_http",
                "plain HTTP on the TLS port: answered 400"
            );
            plain_http::refuse(tcp).await;
            return Err(std::io::Error::other("plain HTTP on the TLS port"));
        }
        let peer = self.peer.ip();
        let trusted = self.gateway.router().config().limits.is_trusted(peer);
        let turn = self.gateway.handshakes().acquire(peer, trusted);
        let offload = self.gateway.tls_pool.handle();
        server_tls::accept(tcp, self.gateway.server_tls(), turn, offload).await
    }

    /// A WebSocket upgrade starts a session; any other request is the web side's.
    async fn on_request(
        &self,
        mut req: Request<Incoming>,
        accepted: Instant,
        deadline: Instant,
    ) -> hyper::Response<WebBody> {
        let router = self.gateway.router();
        let config = router.config();
        let origins = config.gateway.allowed_origins.as_deref();
        let own = config.own_web_origin();
        let checked = upgrade::inspect(&req).and_then(|accepted| {
            upgrade::check_origin(&req, origins, own.as_deref()).map(|()| accepted)
        });
        let accepted_upgrade = match checked {
            Ok(a) => a,
            Err(refusal @ upgrade::Refusal::NotUpgrade) => {
                return crate::web::respond(req, &router, self.bound, refusal.response()).await;
            }
            Err(refusal) => {
                debug!(?refusal, path = ?req.uri().path(), "not a WebSocket upgrade");
                return refusal.response().map(Either::Left);
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
        // Until a node accepts a login, the pre-login limit: a larger message is refused
        // at its header, before any of it is buffered.
        let settings = ctx.gateway.settings();
        let max = settings
            .prelogin
            .max_message_bytes
            .min(settings.max_message_bytes);
        let permit = self.permit.lock().ok().and_then(|mut p| p.take());
        self.tracker.spawn(
            async move {
                let _permit = permit;
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let io = TokioIo::new(upgraded);
                        let ws = WsStream::new(io, Role::Server, &[], max);
                        session::run(ws, ctx).await;
                    }
                    Err(err) => debug!(failure = "upgrade", error = %err, "upgrade failed"),
                }
            }
            .in_current_span(),
        );
        upgrade::switching(&accepted_upgrade).map(Either::Left)
    }
}
