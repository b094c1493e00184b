//! `GET /verto-config?login=user@domain`: the `wsURL` (and `wsFallbackURL`) a browser of
//! that login connects to, from the map alone. Nothing secret and no partition or node
//! name in it: anyone may ask.

use std::net::SocketAddr;

use http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};

use crate::routing::{RouteError, Router};

/// Where web apps ask.
pub const VERTO_CONFIG_PATH: &str = "/verto-config";

/// Longest login accepted (mod_verto's own logins are far shorter).
const MAX_LOGIN_BYTES: usize = 512;

/// The status and JSON body answering a request with `method` and `query` to the
/// listener bound to `bound`.
pub fn verto_config(
    router: &Router,
    bound: SocketAddr,
    method: &Method,
    query: Option<&str>,
) -> (StatusCode, Value) {
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    let Some(login) = login_param(query) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing login: ask /verto-config?login=user@domain",
        );
    };
    if login.len() > MAX_LOGIN_BYTES || login.chars().any(char::is_control) {
        return error(StatusCode::BAD_REQUEST, "invalid login");
    }
    let route = match router.route(&login) {
        Ok(route) => route,
        Err(RouteError::UnknownDomain { .. } | RouteError::NoExtension { .. }) => {
            return error(StatusCode::NOT_FOUND, "no partition")
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid login"),
    };
    let urls = router.config().client_urls_at(route.partition, bound);
    let mut body = json!({"login": login, "wsURL": urls.ws_url});
    if let (Some(fallback), Some(object)) = (urls.fallback_url, body.as_object_mut()) {
        object.insert("wsFallbackURL".to_owned(), fallback.into());
    }
    (StatusCode::OK, body)
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({"error": message}))
}

/// The first `login` parameter of a query string, form-decoded (`+` is a space); `None`
/// when it is absent, empty or not UTF-8.
fn login_param(query: Option<&str>) -> Option<String> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("login="))?;
    let spaced = value.replace('+', " ");
    let login = percent_decode_str(&spaced).decode_utf8().ok()?;
    (!login.is_empty()).then(|| login.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_parameter_is_form_decoded_and_the_first_one_counts() {
        assert_eq!(
            login_param(Some("login=1000%40acme.test")).as_deref(),
            Some("1000@acme.test")
        );
        assert_eq!(
            login_param(Some("x=1&login=a%2Bb@c&login=other")).as_deref(),
            Some("a+b@c")
        );
        assert_eq!(login_param(Some("login=a+b")).as_deref(), Some("a b"));
        assert_eq!(login_param(Some("login=")), None);
        assert_eq!(login_param(Some("login=%ff")), None);
        assert_eq!(login_param(Some("logins=x")), None);
        assert_eq!(login_param(None), None);
    }
}
