//! `POST /rpc`: the operator's JSON-RPC 2.0 methods (jsonrpsee's `RpcModule`, behind
//! our own envelope check: one request per body, no batches).
//!
//! | method | result |
//! |---|---|
//! | `config.reload` | `{"applied":true,"partitions":N,"nodes":M}` (−32000 "invalid map") |
//! | `node.drain {node, deadline_s?}`, `node.undrain {node}` | `{node,state,sessions,calls,deadline_s_left}` |
//! | `partition.switch {partition, node\|null}` | `{partition, active, pinned}` |
//! | `sessions.list {partition?, node?, limit?}` | `[{sessid,login,partition,node,peer,calls,since_s}]` |
//! | `session.kick {sessid, punt?}` | `{kicked: n}` |
//! | `route.lookup {login}` | the `/route/{login}` body |

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use jsonrpsee::RpcModule;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body;
use crate::proxy::{DrainStatus, Gateway, OperatorError, SessionFilter};
use crate::reload::{Reloader, Source};

/// JSON-RPC's codes.
const PARSE_ERROR: i32 = -32700;
const INVALID_REQUEST: i32 = -32600;
const INVALID_PARAMS: i32 = -32602;
const INTERNAL_ERROR: i32 = -32603;
/// `config.reload` of a map that does not load.
const INVALID_MAP: i32 = -32000;

/// Default `sessions.list` limit.
const DEFAULT_LIMIT: usize = 1000;

struct Ctx {
    gateway: Arc<Gateway>,
    reloader: Option<Arc<Reloader>>,
}

/// The methods, ready to answer request bodies.
pub struct Rpc {
    module: RpcModule<Ctx>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainParams {
    node: String,
    deadline_s: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeParams {
    node: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchParams {
    partition: String,
    #[serde(default)]
    node: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListParams {
    partition: Option<String>,
    node: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KickParams {
    sessid: String,
    #[serde(default)]
    punt: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginParams {
    login: String,
}

fn invalid_params(message: impl ToString) -> ErrorObjectOwned {
    ErrorObject::owned(INVALID_PARAMS, message.to_string(), None::<()>)
}

fn operator_error(e: OperatorError) -> ErrorObjectOwned {
    match e {
        OperatorError::NotMonitored => {
            ErrorObject::owned(INTERNAL_ERROR, e.to_string(), None::<()>)
        }
        OperatorError::UnknownNode(_)
        | OperatorError::Switch(_)
        | OperatorError::DeadlineTooFar => invalid_params(e),
    }
}

fn drain_body(s: &DrainStatus) -> Value {
    json!({
        "node": s.node,
        "state": s.state.as_str(),
        "sessions": s.sessions,
        "calls": s.calls,
        "deadline_s_left": s.deadline_s_left,
    })
}

/// `params` as `T`; absent params read as `{}` where `T` allows it.
fn parse<T: for<'de> Deserialize<'de>>(params: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    match params.as_str() {
        None => serde_json::from_str("{}").map_err(|_| invalid_params("params required")),
        Some(_) => params.parse::<T>(),
    }
}

impl Rpc {
    /// The methods over `gateway`, reloading with `reloader`.
    pub fn new(gateway: Arc<Gateway>, reloader: Option<Arc<Reloader>>) -> Rpc {
        let mut module = RpcModule::new(Ctx { gateway, reloader });
        let registered = Self::register(&mut module);
        // The names are fixed and distinct: registering cannot fail.
        debug_assert!(registered.is_ok(), "{registered:?}");
        Rpc { module }
    }

    fn register(m: &mut RpcModule<Ctx>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
        m.register_async_method("config.reload", |_, ctx, _| async move {
            let Some(reloader) = &ctx.reloader else {
                return Err(ErrorObject::owned(
                    INTERNAL_ERROR,
                    "this gateway has no map file to reload",
                    None::<()>,
                ));
            };
            match reloader.reload(Source::Rpc).await {
                Ok(applied) => Ok(json!({
                    "applied": true,
                    "partitions": applied.partitions,
                    "nodes": applied.nodes,
                })),
                Err(e) => Err(ErrorObject::owned(
                    INVALID_MAP,
                    "invalid map",
                    Some(json!({"errors": e.lines()})),
                )),
            }
        })?;
        m.register_method("node.drain", |params, ctx, _| {
            let p: DrainParams = parse(&params)?;
            let deadline = p.deadline_s.map(Duration::from_secs);
            let status = ctx
                .gateway
                .drain(&p.node, deadline)
                .map_err(operator_error)?;
            Ok::<_, ErrorObjectOwned>(drain_body(&status))
        })?;
        m.register_method("node.undrain", |params, ctx, _| {
            let p: NodeParams = parse(&params)?;
            let status = ctx.gateway.undrain(&p.node).map_err(operator_error)?;
            Ok::<_, ErrorObjectOwned>(drain_body(&status))
        })?;
        m.register_method("partition.switch", |params, ctx, _| {
            let p: SwitchParams = parse(&params)?;
            let switched = ctx
                .gateway
                .switch(&p.partition, p.node.as_deref())
                .map_err(operator_error)?;
            Ok::<_, ErrorObjectOwned>(json!({
                "partition": switched.partition,
                "active": switched.active,
                "pinned": switched.pinned,
            }))
        })?;
        m.register_method("sessions.list", |params, ctx, _| {
            let p: ListParams = parse(&params)?;
            let filter = SessionFilter {
                partition: p.partition.as_deref(),
                node: p.node.as_deref(),
                login: None,
            };
            let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
            let rows: Vec<Value> = ctx
                .gateway
                .sessions(filter, limit)
                .iter()
                .map(body::session_row)
                .collect();
            Ok::<_, ErrorObjectOwned>(Value::Array(rows))
        })?;
        m.register_method("session.kick", |params, ctx, _| {
            let p: KickParams = parse(&params)?;
            let kicked = ctx.gateway.kick(&p.sessid, p.punt);
            Ok::<_, ErrorObjectOwned>(json!({"kicked": kicked}))
        })?;
        m.register_method("route.lookup", |params, ctx, _| {
            let p: LoginParams = parse(&params)?;
            let body = body::route(&ctx.gateway, &p.login).unwrap_or_else(|missing| missing);
            Ok::<_, ErrorObjectOwned>(body)
        })?;
        Ok(())
    }

    /// Answers one request body; `None` for a notification (no reply is owed).
    pub async fn call(&self, body: &[u8]) -> Option<String> {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return Some(error_reply(PARSE_ERROR, "Parse error")),
        };
        let Value::Object(mut request) = value else {
            let message = match value.is_array() {
                true => "batches are not supported: send one request per POST",
                false => "Invalid Request",
            };
            return Some(error_reply(INVALID_REQUEST, message));
        };
        let valid = request.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && request.get("method").is_some_and(Value::is_string)
            && request
                .get("id")
                .is_none_or(|id| id.is_number() || id.is_string() || id.is_null())
            && request
                .get("params")
                .is_none_or(|p| p.is_object() || p.is_array());
        if !valid {
            return Some(error_reply(INVALID_REQUEST, "Invalid Request"));
        }
        // A notification is carried out, and its answer dropped.
        let notification = !request.contains_key("id");
        if notification {
            request.insert("id".into(), json!(0));
        }
        let text = Value::Object(request).to_string();
        let reply = match self.module.raw_json_request(&text, 1).await {
            Ok((reply, _)) => reply.get().to_owned(),
            Err(_) => error_reply(INVALID_REQUEST, "Invalid Request"),
        };
        (!notification).then_some(reply)
    }
}

fn error_reply(code: i32, message: &str) -> String {
    json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": null}).to_string()
}
