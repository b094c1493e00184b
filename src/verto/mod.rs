//! Verto messages the gateway handles itself: classifying what a browser sends before
//! a node has accepted its login, the JSON-RPC error replies mod_verto would send, and
//! recognising a node's answer to a forwarded `login`.
//!
//! Browser messages are read exactly as mod_verto's cJSON reads them ([`cjson`]), so
//! the gateway and FreeSWITCH agree on what is a `login` and for whom. Everything here
//! is pure; the relay hot path after login only calls [`inspect_forwarded`], which
//! parses nothing unless a cheap byte test says the message could be a `login`.
//!
//! Layout: [`cjson`] (the reader), [`prelogin`] (the pre-login state machine), and
//! here the classifications and the replies mod_verto would send.

pub mod calls;
pub mod cjson;
pub mod client_ip;
pub mod prelogin;

use serde::Deserialize;
use serde_json::value::RawValue;

use cjson::{Document, Request};

/// mod_verto's code for "log in first" (the reference client re-sends its login on it).
pub const AUTH_REQUIRED: i32 = -32000;
/// mod_verto's code for a failed login; the socket stays open for another try.
pub const AUTH_FAILED: i32 = -32001;
/// mod_verto's per-method failure code; the gateway uses it for "no node available".
pub const SESSION_ERROR: i32 = -32002;
/// JSON-RPC "Invalid Request" / mod_verto "Invalid message".
pub const INVALID_REQUEST: i32 = -32600;

/// mod_verto's words for a user it does not know; the gateway uses them for every
/// login it refuses, so its answers say nothing about the partition map.
pub const LOGIN_INCORRECT: &str = "Login Incorrect";

/// What the gateway does with one pre-login text message.
#[derive(Debug, PartialEq, Eq)]
pub enum PreLogin {
    /// Send this text back to the browser (the same answer mod_verto gives).
    Reply(String),
    /// Nothing to send: a `result` message (mod_verto ignores those too).
    Ignore,
    /// A credentialed `login`: route it and forward the original text unchanged.
    Login(LoginRequest),
    /// A `login` with a user but no password: answered locally, counted as a failed try.
    MissingPasswd {
        /// mod_verto's "Missing passwd" answer.
        reply: String,
        /// The login it named.
        login: String,
    },
}

/// The routing-relevant part of a credentialed `login`. The password is deliberately
/// not kept: the original frame is forwarded as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// The request's `id`, as raw JSON text (number, string or `null`).
    pub id: String,
    /// `params.login`, e.g. `1008@example.com`.
    pub login: String,
    /// `params.sessid`, when the browser sent one.
    pub sessid: Option<String>,
}

/// Classifies one text message received before any node accepted a login, answering
/// as an auth-enabled mod_verto answers an unauthenticated socket. A batch is answered
/// element by element ([`prelogin`] bounds its size first).
pub fn classify_pre_login(text: &str) -> PreLogin {
    match cjson::read(text) {
        Err(_) => PreLogin::Reply(invalid_request()),
        Ok(Document::Scalar) => PreLogin::Reply(invalid_message("null")),
        Ok(Document::Object(req)) => classify_single(&req, true),
        Ok(Document::Array(elements)) => PreLogin::Reply(batch_reply(&elements)),
    }
}

fn classify_single(req: &Request<'_>, allow_login: bool) -> PreLogin {
    let id = reply_id(req.id);
    if req.jsonrpc.as_str() != Some("2.0") {
        return PreLogin::Reply(invalid_message(id));
    }
    if req.has_result {
        return PreLogin::Ignore;
    }
    let Some(params) = &req.params else {
        // mod_verto checks auth before it looks at the method, so even a request with
        // no method at all gets "Missing params" on an unauthenticated socket.
        return PreLogin::Reply(error_reply(id, AUTH_FAILED, "Missing params"));
    };
    if !allow_login || !req.is_login() {
        return PreLogin::Reply(auth_required(id));
    }
    let Some(login) = params.login.non_empty() else {
        return PreLogin::Reply(auth_required(id));
    };
    if params.passwd.non_empty().is_none() {
        return PreLogin::MissingPasswd {
            reply: error_reply(id, AUTH_FAILED, "Missing passwd"),
            login: login.to_owned(),
        };
    }
    PreLogin::Login(LoginRequest {
        id: id.to_owned(),
        login: login.to_owned(),
        sessid: params.sessid.non_empty().map(str::to_owned),
    })
}

/// The `id` to echo in a reply: the request's own text when it is strict JSON, else
/// `null`. cJSON accepts ids JSON does not (`01`, `1.`, raw control characters inside a
/// string) and re-prints them; echoing such text verbatim would make the gateway's
/// answer invalid JSON.
fn reply_id(raw: Option<&str>) -> &str {
    match raw {
        Some(raw) if serde_json::from_str::<serde::de::IgnoredAny>(raw).is_ok() => raw,
        _ => "null",
    }
}

/// A batch gets one local answer per element. A credentialed `login` inside a batch is
/// answered with -32000 rather than routed: the reference client reacts to -32000 by
/// sending its login on its own, which the gateway then routes.
fn batch_reply(elements: &[Option<Request<'_>>]) -> String {
    let replies: Vec<String> = elements
        .iter()
        .filter_map(|element| {
            let reply = match element {
                Some(req) => classify_single(req, false),
                None => PreLogin::Reply(invalid_message("null")),
            };
            match reply {
                PreLogin::Reply(reply) => Some(reply),
                _ => None,
            }
        })
        .collect();
    format!("[{}]", replies.join(","))
}

/// How many elements a batch has, if the text is one (the pre-login bound).
pub fn batch_len(text: &str) -> Option<usize> {
    match cjson::read(text) {
        Ok(Document::Array(elements)) => Some(elements.len()),
        _ => None,
    }
}

/// `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}`, byte for byte as
/// mod_verto writes its auth errors. `id` is raw JSON text.
pub fn error_reply(id: &str, code: i32, message: &str) -> String {
    let message = serde_json::Value::String(message.to_owned());
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#)
}

/// mod_verto's answer to any request on an unauthenticated socket.
pub fn auth_required(id: &str) -> String {
    error_reply(id, AUTH_REQUIRED, "Authentication Required")
}

/// mod_verto's answer to text that is not JSON.
pub fn invalid_request() -> String {
    r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#.to_owned()
}

/// mod_verto's answer to JSON without `"jsonrpc":"2.0"` (or a JSON scalar).
pub fn invalid_message(id: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","error":{{"code":-32600,"message":"Invalid message"}},"id":{id}}}"#
    )
}

/// What a node said to a forwarded `login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A `result` with the login's id: the socket is authenticated.
    Accepted,
    /// An `error` with the login's id: the node keeps the socket open for a retry.
    Rejected,
    /// Any other message (node request, answer to something else).
    Unrelated,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
}

/// Decides whether a node's message answers the login whose raw JSON id is `login_id`.
/// Server-originated requests carry ids from a node-global counter that can equal the
/// client's, so a message with a `method` is never an answer.
pub fn login_outcome(text: &str, login_id: &str) -> LoginOutcome {
    let Ok(answer) = serde_json::from_str::<Answer<'_>>(text) else {
        return LoginOutcome::Unrelated;
    };
    if answer.method.is_some() || !answer.id.is_some_and(|raw| same_id(raw.get(), login_id)) {
        return LoginOutcome::Unrelated;
    }
    match (answer.result, answer.error) {
        (Some(_), _) => LoginOutcome::Accepted,
        (None, Some(_)) => LoginOutcome::Rejected,
        (None, None) => LoginOutcome::Unrelated,
    }
}

/// Whether a node's answer carries the request's id. mod_verto re-prints ids through
/// cJSON, so `1.0` comes back as `1` and `"\u0041"` as `"A"`: compare values, numbers
/// by value.
pub(crate) fn same_id(answer: &str, request: &str) -> bool {
    if answer == request {
        return true;
    }
    let parse = |raw: &str| serde_json::from_str::<serde_json::Value>(raw).ok();
    match (parse(answer), parse(request)) {
        (Some(serde_json::Value::Number(a)), Some(serde_json::Value::Number(b))) => {
            a.as_f64() == b.as_f64()
        }
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// What a message forwarded to a node carries that the gateway must check first.
#[derive(Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Nothing that could change who the socket is: forward it.
    Plain,
    /// `login` requests naming a user (one, or several in a batch): forward only if each
    /// belongs to the session's partition.
    Logins(Vec<LoginRequest>),
    /// Could be a `login` but cannot be read the way every FreeSWITCH reads it: never
    /// forwarded (mod_verto would answer it "Invalid Request" or worse, mis-read it).
    Unreadable,
}

/// Whether a message could be a `login` request: its method must spell `login`, either
/// literally or through escapes. Everything else skips the parser.
fn may_be_login(text: &str) -> bool {
    text.contains("login") || text.contains('\\')
}

/// Inspects a message on its way to a node. `#`-frames (the speed test) never reach
/// mod_verto's JSON reader and pass untouched.
pub fn inspect_forwarded(text: &str) -> Forwarded {
    if text.starts_with('#') || !may_be_login(text) {
        return Forwarded::Plain;
    }
    let requests: Vec<Request<'_>> = match cjson::read(text) {
        Err(_) => return Forwarded::Unreadable,
        Ok(Document::Scalar) => return Forwarded::Plain,
        Ok(Document::Object(req)) => vec![req],
        Ok(Document::Array(elements)) => elements.into_iter().flatten().collect(),
    };
    let logins: Vec<LoginRequest> = requests
        .iter()
        .filter(|req| req.is_login())
        .filter_map(|req| {
            let params = req.params.as_ref()?;
            let login = params.login.non_empty()?;
            Some(LoginRequest {
                id: reply_id(req.id).to_owned(),
                login: login.to_owned(),
                sessid: params.sessid.non_empty().map(str::to_owned),
            })
        })
        .collect();
    if logins.is_empty() {
        Forwarded::Plain
    } else {
        Forwarded::Logins(logins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> String {
        match classify_pre_login(text) {
            PreLogin::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn empty_login_gets_authentication_required_with_the_same_id() {
        let r = reply(r#"{"jsonrpc":"2.0","method":"login","params":{"sessid":"s"},"id":7}"#);
        assert_eq!(
            r,
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32000,"message":"Authentication Required"}}"#
        );
    }

    #[test]
    fn any_method_with_params_gets_authentication_required_and_string_ids_survive() {
        let r = reply(r#"{"jsonrpc":"2.0","method":"verto.ping","params":{},"id":"string-id-7"}"#);
        assert_eq!(
            r,
            r#"{"jsonrpc":"2.0","id":"string-id-7","error":{"code":-32000,"message":"Authentication Required"}}"#
        );
    }

    #[test]
    fn request_without_params_gets_missing_params() {
        let r = reply(r#"{"jsonrpc":"2.0","method":"login","id":6}"#);
        assert_eq!(
            r,
            r#"{"jsonrpc":"2.0","id":6,"error":{"code":-32001,"message":"Missing params"}}"#
        );
    }

    #[test]
    fn non_json_gets_invalid_request_with_null_id() {
        for text in [
            "hello, not json",
            r#"{"jsonrpc":"2.0","method":"login","params":{"#,
            "",
        ] {
            assert_eq!(
                reply(text),
                r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#
            );
        }
    }

    #[test]
    fn missing_or_wrong_jsonrpc_gets_invalid_message_echoing_the_id() {
        let expect =
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid message"},"id":5}"#;
        assert_eq!(
            reply(r#"{"method":"echo","params":{"a":1},"id":5}"#),
            expect
        );
        assert_eq!(
            reply(r#"{"jsonrpc":"1.0","method":"echo","params":{"a":1},"id":5}"#),
            expect
        );
        assert_eq!(
            reply(r#""just a string""#),
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid message"},"id":null}"#
        );
    }

    #[test]
    fn batch_gets_an_array_of_answers() {
        let r = reply(r#"[1,2]"#);
        let bad =
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid message"},"id":null}"#;
        assert_eq!(r, format!("[{bad},{bad}]"));
        let r = reply(
            r#"[{"jsonrpc":"2.0","method":"echo","params":{},"id":1},{"jsonrpc":"2.0","method":"login","params":{"login":"a@b","passwd":"x"},"id":2}]"#,
        );
        assert_eq!(
            r,
            format!("[{},{}]", auth_required("1"), auth_required("2"))
        );
    }

    #[test]
    fn ids_cjson_accepts_but_json_does_not_are_answered_with_null() {
        for id in ["01", "1.", "\"a\u{1}b\""] {
            let text = format!(r#"{{"jsonrpc":"2.0","method":"echo","params":{{}},"id":{id}}}"#);
            let r = reply(&text);
            assert_eq!(r, auth_required("null"), "{id:?}");
            assert!(serde_json::from_str::<serde_json::Value>(&r).is_ok());
        }
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":"x"}"#),
            auth_required("\"x\"")
        );
    }

    #[test]
    fn results_are_ignored() {
        assert_eq!(
            classify_pre_login(r#"{"jsonrpc":"2.0","id":4242,"result":{"foo":1}}"#),
            PreLogin::Ignore
        );
    }

    #[test]
    fn credentialed_login_is_extracted_without_the_password() {
        let text = r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1008@example.com","passwd":"s3cret","sessid":"abc"},"id":3}"#;
        let PreLogin::Login(req) = classify_pre_login(text) else {
            panic!("not a login")
        };
        assert_eq!(req.id, "3");
        assert_eq!(req.login, "1008@example.com");
        assert!(!format!("{req:?}").contains("s3cret"));
    }

    #[test]
    fn login_without_passwd_is_answered_missing_passwd() {
        let text =
            r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1008@example.com"},"id":5}"#;
        assert_eq!(
            classify_pre_login(text),
            PreLogin::MissingPasswd {
                reply:
                    r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32001,"message":"Missing passwd"}}"#
                        .into(),
                login: "1008@example.com".into(),
            }
        );
    }

    #[test]
    fn odd_types_never_panic() {
        for text in [
            r#"{"jsonrpc":2,"method":5,"params":3,"id":{}}"#,
            r#"{"jsonrpc":"2.0","method":"login","params":[1],"id":1}"#,
            r#"{"jsonrpc":"2.0","method":"login","params":{"login":5,"passwd":[]},"id":1}"#,
            r#"[[[]]]"#,
            "null",
            "123456789012345678901234567890",
        ] {
            let _ = classify_pre_login(text);
        }
    }

    #[test]
    fn node_answer_to_the_login_is_recognised_and_requests_are_not() {
        let ok = r#"{"jsonrpc":"2.0","id":1,"result":{"message":"logged in","sessid":"x"}}"#;
        let bad = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"Authentication Failure"}}"#;
        let ready = r#"{"jsonrpc":"2.0","id":1,"method":"verto.clientReady","params":{}}"#;
        assert_eq!(login_outcome(ok, "1"), LoginOutcome::Accepted);
        assert_eq!(login_outcome(bad, "1"), LoginOutcome::Rejected);
        assert_eq!(login_outcome(ready, "1"), LoginOutcome::Unrelated);
        assert_eq!(login_outcome(ok, "2"), LoginOutcome::Unrelated);
        // cJSON re-prints the id it echoes.
        assert_eq!(login_outcome(ok, "1.0"), LoginOutcome::Accepted);
        assert_eq!(login_outcome(ok, "1e0"), LoginOutcome::Accepted);
        let named = r#"{"jsonrpc":"2.0","id":"A","result":{}}"#;
        assert_eq!(login_outcome(named, r#""\u0041""#), LoginOutcome::Accepted);
        assert_eq!(login_outcome("#SPU 10", "1"), LoginOutcome::Unrelated);
    }

    fn logins(text: &str) -> Vec<String> {
        match inspect_forwarded(text) {
            Forwarded::Logins(l) => l.into_iter().map(|r| r.login).collect(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn forwarded_logins_are_found_however_they_are_written() {
        for (text, want) in [
            (
                r#"{"jsonrpc":"2.0","method":"login","params":{"login":"2000@b.test","passwd":"x"},"id":9}"#,
                vec!["2000@b.test"],
            ),
            (
                r#"{"jsonrpc":"2.0","method":"\u006cogin","params":{"login":"2000@b.test"},"id":9}"#,
                vec!["2000@b.test"],
            ),
            (
                r#"{"JSONRPC":"2.0","Method":"login","PARAMS":{"Login":"a@A","login":"b@B"}}"#,
                vec!["a@A"],
            ),
            (
                r#"{"jsonrpc":"2.0","method":"login","params":{"login":"a@A"},"params":{"login":"b@B"}}"#,
                vec!["a@A"],
            ),
            (
                r#"[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"login","params":{"login":"c@C"}}]"#,
                vec!["c@C"],
            ),
        ] {
            assert_eq!(logins(text), want, "{text}");
        }
    }

    #[test]
    fn everything_else_is_plain_or_unreadable() {
        for text in [
            r#"{"jsonrpc":"2.0","method":"echo","params":{"login":"x"},"id":9}"#,
            r#"{"jsonrpc":"2.0","method":"verto.invite","params":{"sdp":"v=0\r\n"}}"#,
            r#"{"jsonrpc":"2.0","method":"login","params":{"passwd":"x"}}"#,
            r#"{"jsonrpc":"2.0","method":"login","result":{},"params":{"login":"a@A"}}"#,
            r#"{"method":"login","params":{"login":"a@A"}}"#,
            "#SPB login",
            "not json at all",
        ] {
            assert_eq!(inspect_forwarded(text), Forwarded::Plain, "{text}");
        }
        for text in [
            r#"{"jsonrpc":"2.0","method":"\login","params":{"login":"a@A"}}"#,
            r#"{"jsonrpc":"2.0","method":"login","params":{"login":"a@A"}"#,
            "login is not json",
        ] {
            assert_eq!(inspect_forwarded(text), Forwarded::Unreadable, "{text}");
        }
    }
}
