//! Verto messages the gateway handles itself: classifying what a browser sends before
//! a node has accepted its login, the JSON-RPC error replies mod_verto would send, and
//! recognising a node's answer to a forwarded `login`.
//!
//! Everything here is pure and allocation-light; the relay hot path after login only
//! calls [`mentions_login`], a byte scan.

use serde::Deserialize;
use serde_json::value::RawValue;

/// mod_verto's code for "log in first" (the reference client re-sends its login on it).
pub const AUTH_REQUIRED: i32 = -32000;
/// mod_verto's code for a failed login; the socket stays open for another try.
pub const AUTH_FAILED: i32 = -32001;
/// mod_verto's per-method failure code; the gateway uses it for "no node available".
pub const SESSION_ERROR: i32 = -32002;
/// JSON-RPC "Invalid Request" / mod_verto "Invalid message".
pub const INVALID_REQUEST: i32 = -32600;

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
    MissingPasswd(String),
}

/// The routing-relevant part of a credentialed `login`. The password is deliberately
/// not kept: the original frame is forwarded as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// The request's `id`, as raw JSON text (number, string or `null`).
    pub id: String,
    /// `params.login`, e.g. `1008@example.com`.
    pub login: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct LoginParams {
    #[serde(default)]
    login: Option<serde_json::Value>,
    #[serde(default)]
    passwd: Option<serde_json::Value>,
}

/// Classifies one text message received before any node accepted a login, answering
/// as an auth-enabled mod_verto answers an unauthenticated socket.
pub fn classify_pre_login(text: &str) -> PreLogin {
    let value: &RawValue = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return PreLogin::Reply(invalid_request()),
    };
    let raw = value.get().trim_start();
    if raw.starts_with('[') {
        return PreLogin::Reply(batch_reply(value));
    }
    classify_single(value, true)
}

fn classify_single(value: &RawValue, allow_login: bool) -> PreLogin {
    if !value.get().trim_start().starts_with('{') {
        return PreLogin::Reply(invalid_message("null"));
    }
    let env: Envelope<'_> = match serde_json::from_str(value.get()) {
        Ok(env) => env,
        // An object whose known keys have unexpected types (e.g. a numeric method).
        Err(_) => return PreLogin::Reply(invalid_message("null")),
    };
    let id = env.id.map(|raw| raw.get()).unwrap_or("null");
    if env.jsonrpc.map(|raw| raw.get()) != Some("\"2.0\"") {
        return PreLogin::Reply(invalid_message(id));
    }
    if env.result.is_some() {
        return PreLogin::Ignore;
    }
    let Some(params) = env.params else {
        // mod_verto checks auth before it looks at the method, so even a request with
        // no method at all gets "Missing params" on an unauthenticated socket.
        return PreLogin::Reply(error_reply(id, AUTH_FAILED, "Missing params"));
    };
    if !allow_login || env.method.as_deref() != Some("login") {
        return PreLogin::Reply(auth_required(id));
    }
    classify_login(id, params)
}

fn classify_login(id: &str, params: &RawValue) -> PreLogin {
    let params: LoginParams = serde_json::from_str(params.get()).unwrap_or_default();
    let login = match params.login {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        _ => return PreLogin::Reply(auth_required(id)),
    };
    match params.passwd {
        Some(serde_json::Value::String(p)) if !p.is_empty() => {}
        _ => return PreLogin::MissingPasswd(error_reply(id, AUTH_FAILED, "Missing passwd")),
    }
    PreLogin::Login(LoginRequest {
        id: id.to_owned(),
        login,
    })
}

/// A batch gets one local answer per element. A credentialed `login` inside a batch is
/// answered with -32000 rather than routed: the reference client reacts to -32000 by
/// sending its login on its own, which the gateway then routes.
fn batch_reply(value: &RawValue) -> String {
    let elements: Vec<&RawValue> = serde_json::from_str(value.get()).unwrap_or_default();
    let replies: Vec<String> = elements
        .into_iter()
        .filter_map(|element| match classify_single(element, false) {
            PreLogin::Reply(reply) => Some(reply),
            _ => None,
        })
        .collect();
    format!("[{}]", replies.join(","))
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
    if answer.method.is_some() || answer.id.map(|raw| raw.get()) != Some(login_id) {
        return LoginOutcome::Unrelated;
    }
    match (answer.result, answer.error) {
        (Some(_), _) => LoginOutcome::Accepted,
        (None, Some(_)) => LoginOutcome::Rejected,
        (None, None) => LoginOutcome::Unrelated,
    }
}

/// Cheap pre-filter for the relay: can this message possibly be a `login` request?
/// Only messages that pass are parsed.
pub fn mentions_login(text: &str) -> bool {
    text.contains("\"login\"")
}

/// Parses a message already known to mention `login`; returns the request when it is a
/// `login` call (credentialed or not).
pub fn as_login_request(text: &str) -> Option<LoginRequest> {
    let env: Envelope<'_> = serde_json::from_str(text).ok()?;
    if env.method.as_deref() != Some("login") {
        return None;
    }
    let params: LoginParams = env
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    let login = match params.login {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        _ => return None,
    };
    Some(LoginRequest {
        id: env
            .id
            .map(|raw| raw.get().to_owned())
            .unwrap_or("null".into()),
        login,
    })
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
            PreLogin::MissingPasswd(
                r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32001,"message":"Missing passwd"}}"#
                    .into()
            )
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
        assert_eq!(login_outcome("#SPU 10", "1"), LoginOutcome::Unrelated);
    }

    #[test]
    fn relay_login_detection_finds_logins_only() {
        let login = r#"{"jsonrpc":"2.0","method":"login","params":{"login":"2000@b.test","passwd":"x"},"id":9}"#;
        assert!(mentions_login(login));
        assert_eq!(
            as_login_request(login).map(|r| r.login),
            Some("2000@b.test".into())
        );
        let echo = r#"{"jsonrpc":"2.0","method":"echo","params":{"login":"x"},"id":9}"#;
        assert!(as_login_request(echo).is_none());
    }
}
