//! What each `ctl` verb asks the admin API (a `GET` or a JSON-RPC call) and what an
//! answer means: the result, or the API's error. Pure: no I/O.

use std::time::Duration;

use http::StatusCode;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::Verb;

/// Bound on one exchange with the admin API.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on `config.reload`, which loads certificates and probes the map's nodes.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The characters of a login kept as they are in `/route/{login}`: RFC 3986's
/// unreserved ones and `@`, which a path segment allows.
const LOGIN_KEPT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// The `config.reload` error whose `data.errors` lists the map's problems.
const INVALID_MAP: i64 = -32000;

/// One request to the admin API.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    /// `GET` this path.
    Get(String),
    /// `POST /rpc` with this method and params.
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// Its params (an object).
        params: Value,
    },
}

impl ApiRequest {
    /// What `verb` asks.
    pub fn for_verb(verb: &Verb) -> ApiRequest {
        let rpc = |method, params| ApiRequest::Rpc { method, params };
        match verb {
            Verb::Status => ApiRequest::Get("/status".to_owned()),
            Verb::Route { login } => {
                ApiRequest::Get(format!("/route/{}", utf8_percent_encode(login, LOGIN_KEPT)))
            }
            Verb::Drain { node, deadline } => {
                let mut params = Map::new();
                params.insert("node".into(), json!(node));
                if let Some(s) = deadline {
                    params.insert("deadline_s".into(), json!(s));
                }
                rpc("node.drain", Value::Object(params))
            }
            Verb::Undrain { node } => rpc("node.undrain", json!({"node": node})),
            Verb::Switch {
                partition, node, ..
            } => {
                // `--auto` leaves `node` empty: null ends the pin.
                rpc(
                    "partition.switch",
                    json!({"partition": partition, "node": node}),
                )
            }
            Verb::Sessions { partition, node } => {
                let mut params = Map::new();
                for (key, value) in [("partition", partition), ("node", node)] {
                    if let Some(v) = value {
                        params.insert(key.into(), json!(v));
                    }
                }
                rpc("sessions.list", Value::Object(params))
            }
            Verb::Kick { sessid, punt } => {
                rpc("session.kick", json!({"sessid": sessid, "punt": punt}))
            }
            Verb::Reload => rpc("config.reload", json!({})),
        }
    }

    /// The request's method, path (under the URL's prefix) and body.
    pub fn parts(&self) -> (http::Method, &str, Option<Vec<u8>>) {
        match self {
            ApiRequest::Get(path) => (http::Method::GET, path, None),
            ApiRequest::Rpc { method, params } => {
                let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
                (
                    http::Method::POST,
                    "/rpc",
                    Some(body.to_string().into_bytes()),
                )
            }
        }
    }

    /// How long its answer may take.
    pub fn timeout(&self) -> Duration {
        match self {
            ApiRequest::Rpc {
                method: "config.reload",
                ..
            } => RELOAD_TIMEOUT,
            _ => TIMEOUT,
        }
    }
}

/// What the admin API answered instead of a result (exit 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 401: the token is missing or wrong.
    #[error("{}", unauthorized_hint(*token_sent))]
    Unauthorized {
        /// Whether the request carried a token.
        token_sent: bool,
    },
    /// Another HTTP error status.
    #[error("{message} (HTTP {status})")]
    Status {
        /// The status.
        status: StatusCode,
        /// The body's `error`, else its text.
        message: String,
    },
    /// A JSON-RPC error.
    #[error("{message} (JSON-RPC error {code}){}", lines.iter().map(|l| format!("\n{l}")).collect::<String>())]
    Rpc {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
        /// Detail lines: each of `config.reload`'s `data.errors`, or `data` itself.
        lines: Vec<String>,
    },
    /// The answer is not the JSON the API sends.
    #[error("the admin API answered something else than its JSON (HTTP {status}): {excerpt}")]
    Malformed {
        /// The status.
        status: StatusCode,
        /// The start of the body.
        excerpt: String,
    },
}

fn unauthorized_hint(token_sent: bool) -> &'static str {
    match token_sent {
        true => "unauthorized (HTTP 401): the admin API refused the token; check --token-file FILE or the map's [admin] token",
        false => "unauthorized (HTTP 401): the admin API wants a token; give --token-file FILE or --config MAP with [admin] token",
    }
}

/// The result in an answer to `request`: the body of a `GET`, the `result` of a call.
pub fn result_of(
    request: &ApiRequest,
    status: StatusCode,
    body: &[u8],
    token_sent: bool,
) -> Result<Value, ApiError> {
    if status == StatusCode::UNAUTHORIZED {
        return Err(ApiError::Unauthorized { token_sent });
    }
    let malformed = || ApiError::Malformed {
        status,
        excerpt: String::from_utf8_lossy(body).chars().take(200).collect(),
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| malformed())?;
    if !status.is_success() {
        let message = match value.get("error").and_then(Value::as_str) {
            Some(m) => m.to_owned(),
            None => value.to_string(),
        };
        return Err(ApiError::Status { status, message });
    }
    match request {
        ApiRequest::Get(_) => Ok(value),
        ApiRequest::Rpc { .. } => rpc_result(value).ok_or_else(malformed)?,
    }
}

/// A JSON-RPC reply's result or error; `None` when it is neither.
fn rpc_result(mut reply: Value) -> Option<Result<Value, ApiError>> {
    if let Some(result) = reply.get_mut("result") {
        return Some(Ok(result.take()));
    }
    let error = reply.get("error")?;
    let code = error.get("code").and_then(Value::as_i64)?;
    let message = error.get("message").and_then(Value::as_str)?.to_owned();
    let data = error.get("data");
    let lines = match (code, data.and_then(|d| d.get("errors"))) {
        (INVALID_MAP, Some(Value::Array(errors))) => errors
            .iter()
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
            .collect(),
        _ => data
            .filter(|d| !d.is_null())
            .map(|d| vec![d.as_str().map_or_else(|| d.to_string(), str::to_owned)])
            .unwrap_or_default(),
    };
    Some(Err(ApiError::Rpc {
        code,
        message,
        lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(verb: Verb) -> (&'static str, Value) {
        match ApiRequest::for_verb(&verb) {
            ApiRequest::Rpc { method, params } => (method, params),
            other => panic!("{verb:?} asked {other:?}"),
        }
    }

    #[test]
    fn each_verb_asks_its_method_with_its_params() {
        let node = || "fs1".to_owned();
        let drain = |deadline| Verb::Drain {
            node: node(),
            deadline,
        };
        assert_eq!(
            rpc(drain(Some(60))),
            ("node.drain", json!({"node": "fs1", "deadline_s": 60}))
        );
        assert_eq!(rpc(drain(None)), ("node.drain", json!({"node": "fs1"})));
        assert_eq!(
            rpc(Verb::Undrain { node: node() }),
            ("node.undrain", json!({"node": "fs1"}))
        );
        let switch = |node, auto| Verb::Switch {
            partition: "acme".into(),
            node,
            auto,
        };
        assert_eq!(
            rpc(switch(Some(node()), false)),
            (
                "partition.switch",
                json!({"partition": "acme", "node": "fs1"})
            )
        );
        assert_eq!(
            rpc(switch(None, true)),
            (
                "partition.switch",
                json!({"partition": "acme", "node": null})
            )
        );
        let sessions = Verb::Sessions {
            partition: Some("acme".into()),
            node: None,
        };
        assert_eq!(
            rpc(sessions),
            ("sessions.list", json!({"partition": "acme"}))
        );
        let kick = Verb::Kick {
            sessid: "s-1".into(),
            punt: true,
        };
        assert_eq!(
            rpc(kick),
            ("session.kick", json!({"sessid": "s-1", "punt": true}))
        );
        assert_eq!(rpc(Verb::Reload), ("config.reload", json!({})));
    }

    #[test]
    fn a_login_is_percent_encoded_in_the_route_path() {
        let get = |login: &str| {
            ApiRequest::for_verb(&Verb::Route {
                login: login.into(),
            })
        };
        assert_eq!(
            get("1000@acme.test"),
            ApiRequest::Get("/route/1000@acme.test".into())
        );
        assert_eq!(
            get("a b/c?d#é"),
            ApiRequest::Get("/route/a%20b%2Fc%3Fd%23%C3%A9".into())
        );
        assert_eq!(
            ApiRequest::for_verb(&Verb::Status),
            ApiRequest::Get("/status".into())
        );
    }

    #[test]
    fn reload_may_take_longer_than_the_other_verbs() {
        assert_eq!(
            ApiRequest::for_verb(&Verb::Reload).timeout(),
            RELOAD_TIMEOUT
        );
        assert_eq!(ApiRequest::for_verb(&Verb::Status).timeout(), TIMEOUT);
    }

    #[test]
    fn an_rpc_body_is_one_jsonrpc_request() {
        let reload = ApiRequest::for_verb(&Verb::Reload);
        let (method, path, body) = reload.parts();
        assert_eq!((method, path), (http::Method::POST, "/rpc"));
        let body: Value = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "method": "config.reload", "params": {}, "id": 1})
        );
    }

    fn answer(request: &ApiRequest, status: u16, body: &str) -> Result<Value, ApiError> {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        result_of(request, status, body.as_bytes(), false)
    }

    #[test]
    fn a_call_yields_its_result_or_its_error() {
        let reload = ApiRequest::for_verb(&Verb::Reload);
        let ok = r#"{"jsonrpc":"2.0","result":{"applied":true},"id":1}"#;
        assert_eq!(answer(&reload, 200, ok), Ok(json!({"applied": true})));
        let invalid = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"invalid map",
            "data":{"errors":["m.toml:3: one","m.toml:9: two"]}}}"#;
        let err = answer(&reload, 200, invalid).err();
        assert_eq!(
            err.as_ref().map(ToString::to_string).as_deref(),
            Some("invalid map (JSON-RPC error -32000)\nm.toml:3: one\nm.toml:9: two")
        );
        let unknown =
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown node fs9"}}"#;
        assert_eq!(
            answer(&reload, 200, unknown),
            Err(ApiError::Rpc {
                code: -32602,
                message: "unknown node fs9".into(),
                lines: vec![]
            })
        );
        assert!(matches!(
            answer(&reload, 200, r#"{"id":1}"#),
            Err(ApiError::Malformed { .. })
        ));
    }

    #[test]
    fn an_http_error_yields_its_message() {
        let route = ApiRequest::Get("/route/x".into());
        let missing = r#"{"login":"x","error":"no partition serves domain x"}"#;
        assert_eq!(
            answer(&route, 404, missing).map_err(|e| e.to_string()),
            Err("no partition serves domain x (HTTP 404 Not Found)".into())
        );
        assert!(matches!(
            answer(&route, 502, "<html>bad gateway</html>"),
            Err(ApiError::Malformed { .. })
        ));
        assert_eq!(answer(&route, 200, r#"{"a":1}"#), Ok(json!({"a": 1})));
    }

    #[test]
    fn a_401_hints_at_the_token() {
        let status = ApiRequest::Get("/status".into());
        let body = br#"{"error":"unauthorized"}"#;
        for sent in [false, true] {
            let err = result_of(&status, StatusCode::UNAUTHORIZED, body, sent).err();
            let text = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains("--token-file"), "{text}");
        }
    }
}
