//! Entry points of the cargo-fuzz targets in `fuzz/` and of their corpus replay in
//! `tests/fuzz_corpus.rs`: each takes raw bytes, drives one parser, and panics when a
//! property fails. Not an API: hidden from the docs, free to change with the fuzz targets.
//!
//! Every function ignores input it cannot use (bytes that are not UTF-8, HTTP heads that
//! do not parse) and never does I/O, so a fuzz run and the replay behave the same.

mod json;
mod prelogin;
mod proxy_header;
mod websocket;

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, DomainPattern, ExtensionRule, OriginPattern};
use crate::routing::Router;
use crate::verto::cjson::{self, Document, Request};
use crate::verto::{classify_pre_login, inspect_forwarded, Forwarded, PreLogin};

pub use prelogin::prelogin;
pub use proxy_header::proxy_header;
pub use websocket::ws_frames;

/// The login reader (`verto::cjson`) and the relay's login check (`inspect_forwarded`).
///
/// Properties: a message `inspect_forwarded` lets through as [`Forwarded::Plain`] holds
/// no login under the reader; what it reports as logins are exactly the reader's; an
/// unreadable message naming `login` is never plain; on strict JSON the reader agrees
/// with an independent parser (`json.rs`) on every member the gateway looks at;
/// `classify_pre_login` routes exactly the reader's credentialed single logins; and
/// stamping the `client_ip_param` address into a login keeps it what it was.
pub fn login_reader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = cjson::read(text);
    let logins = doc.as_ref().map(reader_logins).unwrap_or_default();
    match inspect_forwarded(text) {
        Forwarded::Plain => assert!(
            logins.is_empty(),
            "inspect_forwarded says Plain but the reader finds logins {logins:?}"
        ),
        Forwarded::Logins(found) => {
            let found: Vec<&str> = found.iter().map(|r| r.login.as_str()).collect();
            let read: Vec<&str> = logins.iter().map(|(_, login)| login.as_str()).collect();
            assert_eq!(found, read, "inspect_forwarded and the reader disagree");
        }
        Forwarded::Unreadable => assert!(doc.is_err(), "Unreadable, yet the reader read it"),
    }
    for (kept, (raw, _)) in forwarded_ids(text).iter().zip(&logins) {
        check_kept_id(raw.as_deref(), kept);
    }
    if doc.is_err() && text.contains("login") && !text.starts_with('#') {
        assert_ne!(
            inspect_forwarded(text),
            Forwarded::Plain,
            "an unreadable message naming login passes as Plain"
        );
    }
    if let Ok(doc) = &doc {
        json::agrees_with_reader(text, doc);
        if !logins.is_empty() {
            client_ip_stamp(text, doc);
        }
    }
    let credentialed = match &doc {
        Ok(Document::Object(req)) if req.is_login() => {
            let params = req.params.clone().unwrap_or_default();
            (params.passwd.non_empty().is_some())
                .then(|| params.login.non_empty().map(str::to_owned))
                .flatten()
        }
        _ => None,
    };
    match classify_pre_login(text) {
        PreLogin::Login(req) => assert_eq!(Some(req.login), credentialed),
        _ => assert_eq!(credentialed, None, "a credentialed login was not routed"),
    }
}

/// The `client_ip_param` name and address the stamping property uses.
const CLIENT_IP_PARAM: &str = "vertogw_client_ip";
const CLIENT_IP: &str = "198.51.100.7";

/// A login the relay forwards gets the browser's address stamped in
/// (`verto::client_ip`): a single login without NUL always can be, and the stamped text
/// is the same request under the reader (and the same logins to the relay), with the
/// address where FreeSWITCH reads it and no browser-chosen value beside it.
fn client_ip_stamp(text: &str, doc: &Document<'_>) {
    let stamped = crate::verto::client_ip::add_client_ip(text, CLIENT_IP_PARAM, CLIENT_IP);
    // A batch cannot carry the address, and past a NUL FreeSWITCH would not see it:
    // both are refused by the relay instead.
    let (Document::Object(before), false) = (doc, text.contains('\0')) else {
        return;
    };
    let out = stamped.unwrap_or_else(|_| panic!("a single login could not be stamped"));
    match cjson::read(&out) {
        Ok(Document::Object(after)) => {
            assert_eq!(&after, before, "stamping changed the request: {out:?}");
        }
        other => panic!("the stamped login reads as {other:?}: {out:?}"),
    }
    assert_eq!(inspect_forwarded(&out), inspect_forwarded(text), "{out:?}");
    json::stamped_address(text, &out, CLIENT_IP_PARAM, CLIENT_IP);
}

/// The ids `inspect_forwarded` keeps for the logins it finds (none for other verdicts).
fn forwarded_ids(text: &str) -> Vec<String> {
    match inspect_forwarded(text) {
        Forwarded::Logins(found) => found.into_iter().map(|r| r.id).collect(),
        _ => Vec::new(),
    }
}

/// The id the gateway keeps for a request whose `id` member reads as `raw`: the text
/// itself where it is strict JSON (so answers match it), else `null`, never text that
/// would make a reply invalid JSON.
pub(crate) fn check_kept_id(raw: Option<&str>, kept: &str) {
    let strict = |s: &str| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok();
    match raw {
        Some(raw) if strict(raw) => assert_eq!(kept, raw, "the id was rewritten"),
        _ => assert_eq!(kept, "null", "the id {raw:?} is kept as {kept:?}"),
    }
}

/// `(raw id text, login)` of every object, alone or in a batch, that the reader sees as a
/// `login` naming a user.
fn reader_logins(doc: &Document<'_>) -> Vec<(Option<String>, String)> {
    let requests: Vec<&Request<'_>> = match doc {
        Document::Object(req) => vec![req],
        Document::Array(elements) => elements.iter().flatten().collect(),
        Document::Scalar => Vec::new(),
    };
    requests
        .into_iter()
        .filter(|req| req.is_login())
        .filter_map(|req| {
            let login = req.params.as_ref().and_then(|p| p.login.non_empty())?;
            Some((req.id.map(str::to_owned), login.to_owned()))
        })
        .collect()
}

/// The partition map parser (`Config::parse`), and routing on the maps it accepts.
///
/// Properties: no panic; a refused map names at least one error, each on a line of the
/// text; every error and warning formats; and on an accepted map every exact-domain
/// extension routes to the partition that lists it (the map has no ties).
pub fn map_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let last_line = text.matches('\n').count() + 1;
    let loaded = match Config::parse(text, Path::new("fuzz.toml")) {
        Ok(loaded) => loaded,
        Err(errors) => {
            assert!(!errors.errors.is_empty(), "a map refused without an error");
            for error in &errors.errors {
                if let Some(line) = error.line {
                    assert!((1..=last_line).contains(&line), "line {line}: {error}");
                }
            }
            let _ = errors.to_string();
            return;
        }
    };
    let router = Router::new(Arc::new(loaded.config));
    for partition in &router.config().partitions {
        let users: Vec<String> = match &partition.extensions {
            Some(rules) => rules.iter().map(first_user).collect(),
            None => Vec::new(),
        };
        for domain in &partition.domains {
            let DomainPattern::Exact(domain) = domain else {
                continue;
            };
            for user in &users {
                let login = format!("{user}@{domain}");
                let route = router.route(&login);
                let route = route.unwrap_or_else(|e| panic!("{login} is not routed: {e}"));
                assert_eq!(route.partition.name, partition.name, "{login}");
                assert!(!route.nodes.is_empty(), "{login} routed to no node");
            }
        }
    }
}

/// A user an extension rule admits: its first number, or its name.
fn first_user(rule: &ExtensionRule) -> String {
    match rule {
        ExtensionRule::Range { start, .. } => start.to_string(),
        ExtensionRule::Exact(name) => name.clone(),
    }
}

/// Most headers read from an upgrade request (hyper's default limit is 100).
const MAX_HEADERS: usize = 100;

/// The WebSocket upgrade check (`proxy::upgrade::inspect`) on an HTTP/1 request head.
///
/// Properties: no panic; an accepted upgrade is a GET with `Sec-WebSocket-Version: 13`,
/// its accept key is 28 base64 characters, the chosen subprotocol is one non-empty
/// token of the offer, and the `101` answer carries both; every refusal has an answer.
/// The `Origin` check (`proxy::upgrade::check_origin`, against an exact origin and a
/// `*.` pattern) admits a request without `Origin` and otherwise only an origin that is
/// exactly the listed one or `https://` + host labels + the pattern's suffix.
pub fn upgrade_request(data: &[u8]) {
    let Some(req) = http_request(data) else {
        return;
    };
    origin_check(&req);
    let accepted = match crate::proxy::inspect_upgrade(&req) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            let status = refusal.response().status().as_u16();
            assert!(status == 400 || status == 426, "refusal answered {status}");
            return;
        }
    };
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(
        req.headers()
            .get(http::header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes()),
        Some(&b"13"[..])
    );
    let key = &accepted.accept_key;
    assert_eq!(key.len(), 28, "accept key {key:?}");
    assert!(key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')));
    if let Some(protocol) = &accepted.protocol {
        assert!(!protocol.is_empty() && !protocol.contains(','));
        assert_eq!(protocol.trim(), protocol);
    }
    let resp = crate::proxy::upgrade_switching(&accepted);
    assert_eq!(resp.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(
        header(http::header::SEC_WEBSOCKET_ACCEPT),
        Some(key.as_str())
    );
    assert_eq!(
        header(http::header::SEC_WEBSOCKET_PROTOCOL),
        accepted.protocol.as_deref(),
        "the chosen subprotocol is not answered"
    );
}

/// The origins [`origin_check`] allows.
const ORIGINS: [&str; 2] = ["https://app.example.com", "https://*.example.org"];

fn origin_check(req: &http::Request<()>) {
    let patterns: Vec<OriginPattern> = ORIGINS
        .iter()
        .filter_map(|p| OriginPattern::parse(p).ok())
        .collect();
    assert_eq!(patterns.len(), ORIGINS.len(), "the fixed patterns parse");
    let allowed = crate::proxy::check_origin(req, Some(&patterns), None).is_ok();
    let Some(origin) = req.headers().get(http::header::ORIGIN) else {
        assert!(allowed, "a request without Origin is refused");
        return;
    };
    if !allowed {
        return;
    }
    let origin = origin
        .to_str()
        .map(|o| o.trim().to_ascii_lowercase())
        .unwrap_or_else(|_| panic!("a non-text Origin {origin:?} is allowed"));
    let subdomain = origin
        .strip_prefix("https://")
        .and_then(|rest| rest.strip_suffix(".example.org"))
        .is_some_and(|labels| {
            !labels.is_empty()
                && !labels.starts_with('.')
                && labels
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    assert!(
        origin == ORIGINS[0] || subdomain,
        "Origin {origin:?} is allowed"
    );
}

/// Parses `data` as an HTTP/1 request head as hyper would, `None` where hyper would
/// answer 400 itself (the gateway's check never sees those).
fn http_request(data: &[u8]) -> Option<http::Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    if !parsed.parse(data).ok()?.is_complete() {
        return None;
    }
    let version = match parsed.version? {
        0 => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut builder = http::Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?)
        .version(version);
    for h in parsed.headers.iter() {
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = http::HeaderValue::from_bytes(h.value).ok()?;
        builder = builder.header(name, value);
    }
    builder.body(()).ok()
}
