//! The gateway's answers to plain HTTP requests on its TLS listener (anything that is
//! not a WebSocket upgrade): `/verto-config` for web apps, and the static files of
//! `[gateway] web_root` (the bundled web client in the demo).

mod files;
mod verto_config;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tower_http::services::fs::ServeFileSystemResponseBody;

use crate::routing::Router;

pub use verto_config::{verto_config, VERTO_CONFIG_PATH};

/// The body of every HTTP answer: a small one in memory, or a file streamed from disk.
pub type WebBody = Either<Full<Bytes>, ServeFileSystemResponseBody>;

/// Answers a request that reached the listener bound to `bound` and is not a WebSocket
/// upgrade; `not_upgrade` is what the gateway answers when nothing else applies (no
/// `web_root`).
pub async fn respond<B>(
    req: Request<B>,
    router: &Router,
    bound: SocketAddr,
    not_upgrade: Response<Full<Bytes>>,
) -> Response<WebBody> {
    if req.uri().path() == VERTO_CONFIG_PATH {
        let (status, body) = verto_config(router, bound, req.method(), req.uri().query());
        return json(status, &body);
    }
    match &router.config().gateway.web_root {
        Some(root) => files::serve(root, req).await,
        None => not_upgrade.map(Either::Left),
    }
}

/// A JSON answer that no cache keeps.
fn json(status: StatusCode, body: &serde_json::Value) -> Response<WebBody> {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(body.to_string()))));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Nothing in it is secret (the map's public URLs), so web apps on other origins
    // may read it.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}
