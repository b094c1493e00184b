//! The operator's admin API: plain HTTP on its own listener (`[admin] listen`, loopback
//! by default, never the public one).
//!
//! - `GET /healthz`, `GET /readyz`: liveness and readiness, never behind the token
//!   (keepalived's `vrrp_script` and load balancers poll them).
//! - `GET /status`, `GET /route/{login}`, `GET /metrics`, `POST /rpc`: behind
//!   `Authorization: Bearer <token>` when `[admin] token` is set.
//!
//! [`body`] builds the JSON documents, [`metrics`] the Prometheus text, [`rpc`] the
//! JSON-RPC methods; this module is the listener, the routing and the token check.

pub mod body;
pub mod metrics;
pub mod rpc;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::proxy::Gateway;
use crate::reload::Reloader;

/// Admin connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 64;

/// Bound on reading a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest `POST /rpc` body.
const MAX_BODY: usize = 1 << 20;

/// What the admin API serves.
pub struct AdminApi {
    gateway: Arc<Gateway>,
    /// `None` when the map cannot be reloaded (a gateway without a map file).
    reloader: Option<Arc<Reloader>>,
    rpc: rpc::Rpc,
}

impl AdminApi {
    /// The API of `gateway`, reloading through `reloader`.
    pub fn new(gateway: Arc<Gateway>, reloader: Option<Arc<Reloader>>) -> Arc<AdminApi> {
        Arc::new(AdminApi {
            rpc: rpc::Rpc::new(Arc::clone(&gateway), reloader.clone()),
            gateway,
            reloader,
        })
    }

    /// The gateway it serves.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The reloader, when the map can be reloaded.
    pub fn reloader(&self) -> Option<&Arc<Reloader>> {
        self.reloader.as_ref()
    }

    /// Answers one request.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path().to_owned();
        let open = matches!(path.as_str(), "/healthz" | "/readyz");
        if !open && !self.authorized(&req) {
            return unauthorized();
        }
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz") => json_response(StatusCode::OK, &json!({"ok": true})),
            (&Method::GET, "/readyz") => {
                let (ready, body) = body::readyz(&self.gateway);
                let status = match ready {
                    true => StatusCode::OK,
                    false => StatusCode::SERVICE_UNAVAILABLE,
                };
                json_response(status, &body)
            }
            (&Method::GET, "/status") => {
                let last = self.reloader.as_ref().and_then(|r| r.last());
                json_response(StatusCode::OK, &body::status(&self.gateway, last.as_ref()))
            }
            (&Method::GET, "/metrics") => {
                let text = metrics::render(&self.gateway, self.reloader.as_deref());
                let mut resp = Response::new(Full::new(Bytes::from(text)));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                resp
            }
            (&Method::GET, p) if p.starts_with("/route/") => {
                let raw = &p["/route/".len()..];
                let login = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
                match body::route(&self.gateway, &login) {
                    Ok(found) => json_response(StatusCode::OK, &found),
                    Err(missing) => json_response(StatusCode::NOT_FOUND, &missing),
                }
            }
            (&Method::POST, "/rpc") => {
                let limited = Limited::new(req.into_body(), MAX_BODY);
                let bytes = match limited.collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) => {
                        debug!(error = %e, "admin: request body refused");
                        let body = json!({"error": format!("request body unreadable or over {MAX_BODY} bytes")});
                        return json_response(StatusCode::PAYLOAD_TOO_LARGE, &body);
                    }
                };
                match self.rpc.call(&bytes).await {
                    Some(reply) => {
                        let mut resp = Response::new(Full::new(Bytes::from(reply)));
                        resp.headers_mut().insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static("application/json"),
                        );
                        resp
                    }
                    // A notification: no reply.
                    None => {
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = StatusCode::NO_CONTENT;
                        resp
                    }
                }
            }
            (_, "/healthz" | "/readyz" | "/status" | "/metrics" | "/rpc") => json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({"error": "method not allowed"}),
            ),
            _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
        }
    }

    /// Whether `req` carries the token (always, when none is set).
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let router = self.gateway.router();
        let Some(token) = &router.config().admin.token else {
            return true;
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        given.is_some_and(|g| same_secret(g, token.as_bytes()))
    }
}

/// Whether `given` is `secret`, in time that depends on `secret`'s length only: a guess
/// learns nothing from timing, not even whether its length is right (`ct_eq` on slices
/// of different lengths returns at once).
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let mut same = given.len().ct_eq(&secret.len());
    for (i, byte) in secret.iter().enumerate() {
        let other = given.get(i).copied().unwrap_or(0);
        same &= other.ct_eq(byte);
    }
    bool::from(same)
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({"error": "unauthorized"}));
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves `api` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, api: Arc<AdminApi>, shutdown: CancellationToken) {
    if let Ok(addr) = listener.local_addr() {
        info!(listen = %addr, "admin API listening");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and the like: the next accept may succeed once sessions end.
                warn!(error = %e, "admin: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "admin: too many connections, closed");
            continue;
        };
        let api = Arc::clone(&api);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req: Request<Incoming>| {
                let api = Arc::clone(&api);
                async move { Ok::<_, Infallible>(api.handle(req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    // Let a request in flight finish, briefly.
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(HEADER_TIMEOUT, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = ended {
                debug!(%peer, error = %e, "admin: connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = b"test-token-0123456789abcdef";
        assert!(same_secret(secret, secret));
        assert!(!same_secret(b"", secret));
        assert!(
            !same_secret(b"test-token-0123456789abcde", secret),
            "a prefix"
        );
        assert!(
            !same_secret(b"test-token-0123456789abcdefg", secret),
            "one more"
        );
        assert!(!same_secret(b"test-token-0123456789abcdeF", secret));
        let mut with_nul = secret.to_vec();
        with_nul.push(0);
        assert!(
            !same_secret(&with_nul, secret),
            "a trailing NUL is no match"
        );
    }
}
