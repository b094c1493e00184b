//! The HTTP side of a browser connection: validate the WebSocket upgrade, choose the
//! subprotocol, and answer everything that is not an upgrade with a small error.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What the gateway answered to a WebSocket upgrade it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The one subprotocol answered, if the browser offered any.
    pub protocol: Option<String>,
}

/// Why a request is not an acceptable WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A plain HTTP request (no `Upgrade: websocket`).
    NotUpgrade,
    /// Not a GET, or no `Connection: Upgrade`.
    Malformed,
    /// `Sec-WebSocket-Version` is not 13.
    BadVersion,
    /// No `Sec-WebSocket-Key`.
    MissingKey,
    /// An `Origin` that `allowed_origins` does not list.
    Origin,
}

impl Refusal {
    /// The small HTTP answer for this refusal.
    pub fn response(self) -> Response<Full<Bytes>> {
        match self {
            Refusal::NotUpgrade => plain(
                StatusCode::UPGRADE_REQUIRED,
                "vertogw: this is a Verto WebSocket endpoint; connect with a wss:// client\n",
            ),
            Refusal::Malformed => plain(
                StatusCode::BAD_REQUEST,
                "vertogw: malformed WebSocket upgrade\n",
            ),
            Refusal::BadVersion => {
                let mut resp = plain(
                    StatusCode::UPGRADE_REQUIRED,
                    "vertogw: WebSocket version 13 required\n",
                );
                resp.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                resp
            }
            Refusal::MissingKey => plain(
                StatusCode::BAD_REQUEST,
                "vertogw: Sec-WebSocket-Key missing\n",
            ),
            Refusal::Origin => plain(
                StatusCode::FORBIDDEN,
                "vertogw: this web origin may not connect\n",
            ),
        }
    }
}

/// Decides whether `req` is an acceptable WebSocket upgrade. Any path is accepted, as
/// mod_verto does; Origin and Host are not checked.
pub fn inspect<B>(req: &Request<B>) -> Result<Accepted, Refusal> {
    let headers = req.headers();
    if !header_has_token(headers, header::UPGRADE, "websocket") {
        return Err(Refusal::NotUpgrade);
    }
    if req.method() != Method::GET || !header_has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::Malformed);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(Refusal::BadVersion);
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(Refusal::MissingKey);
    };
    Ok(Accepted {
        accept_key: derive_accept_key(key.as_bytes()),
        protocol: choose_protocol(headers),
    })
}

/// mod_verto echoes the offered header verbatim, which browsers reject when it is a
/// list; the gateway answers the first offered value only.
fn choose_protocol(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty() && HeaderValue::from_str(p).is_ok())
        .map(str::to_owned)
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks the request's `Origin` against `allowed` (`None`: any origin) and the origin
/// of the pages the gateway serves itself (`own`).
pub fn check_origin<B>(
    req: &Request<B>,
    allowed: Option<&[crate::config::OriginPattern]>,
    own: Option<&str>,
) -> Result<(), Refusal> {
    // A header that is not text cannot match any listed origin.
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let own_page =
        matches!((origin, own), (Some(o), Some(own)) if o.trim().eq_ignore_ascii_case(own));
    if own_page || crate::config::origin_allowed(allowed, origin) {
        Ok(())
    } else {
        Err(Refusal::Origin)
    }
}

/// The `101 Switching Protocols` answer.
pub fn switching(accepted: &Accepted) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accepted.accept_key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(Ok(v)) = accepted.protocol.as_deref().map(HeaderValue::from_str) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request(extra: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/any/path?x=1")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_gateways_own_pages_may_upgrade_whatever_allowed_origins_lists() {
        let listed = [
            crate::config::OriginPattern::parse("https://app.example.com")
                .unwrap_or(crate::config::OriginPattern::Any),
        ];
        let own = Some("https://verto.example.com");
        let from = |origin: &str| upgrade_request(&[("Origin", origin)]);
        assert!(check_origin(&from("https://verto.example.com"), Some(&listed), own).is_ok());
        assert!(check_origin(&from("https://VERTO.example.com"), Some(&listed), own).is_ok());
        assert!(check_origin(&from("https://app.example.com"), Some(&listed), own).is_ok());
        assert_eq!(
            check_origin(&from("https://evil.test"), Some(&listed), own),
            Err(Refusal::Origin)
        );
        assert_eq!(
            check_origin(&from("https://verto.example.com"), Some(&listed), None),
            Err(Refusal::Origin)
        );
    }

    #[test]
    fn valid_upgrade_on_any_path_is_accepted_with_the_rfc_accept_key() {
        let acc = inspect(&upgrade_request(&[])).unwrap();
        assert_eq!(acc.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(acc.protocol, None);
    }

    #[test]
    fn a_list_of_subprotocols_is_answered_with_one_value() {
        let acc = inspect(&upgrade_request(&[(
            "Sec-WebSocket-Protocol",
            "verto, foo",
        )]))
        .unwrap();
        assert_eq!(acc.protocol.as_deref(), Some("verto"));
    }

    #[test]
    fn plain_get_gets_426() {
        let req = Request::get("/").body(()).unwrap();
        assert_eq!(inspect(&req).unwrap_err(), Refusal::NotUpgrade);
        assert_eq!(
            Refusal::NotUpgrade.response().status(),
            StatusCode::UPGRADE_REQUIRED
        );
    }

    #[test]
    fn missing_key_gets_400_and_old_version_gets_426() {
        let mut req = upgrade_request(&[]);
        req.headers_mut().remove("Sec-WebSocket-Key");
        assert_eq!(
            inspect(&req).unwrap_err().response().status(),
            StatusCode::BAD_REQUEST
        );
        let mut req = upgrade_request(&[]);
        req.headers_mut()
            .insert("Sec-WebSocket-Version", HeaderValue::from_static("8"));
        let resp = inspect(&req).unwrap_err().response();
        assert_eq!(resp.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(resp.headers()["Sec-WebSocket-Version"], "13");
    }
}
