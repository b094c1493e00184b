//! One socket's JSON-RPC state machine: parsing, the auth gate, replies and timers.
//!
//! No I/O here: the socket task feeds payloads and clock ticks in and writes out
//! whatever lands in [`Session::out`], so the whole protocol is testable without TCP.

use std::sync::Arc;

use tokio::time::Instant;

use super::auth::{check_auth, permitted, AuthError, Identity};
use super::json::Json;
use super::outbound::Cause;
use super::shared::{Bind, ConnHandle, Shared};
use super::speed::SpeedTest;

/// The -32601 message for unknown, missing or forbidden methods.
pub const INVALID_METHOD: &str = "Invalid Method, Missing Method or Permission Denied";

/// Something the session will send by itself later.
#[derive(Debug)]
pub(crate) enum Timer {
    /// `verto.clientReady` (after a `verto.attach` per detached call of the sessid),
    /// once per socket after the first successful auth.
    ClientReady,
    /// `verto.answer` for a call the client placed.
    Answer { call_id: String, sdp: String },
    /// `verto.bye` for a call the client placed that the node cannot take.
    Hangup { call_id: String, cause: Cause },
    /// The callback rule: `verto.bye`, then a `verto.invite` calling the client back.
    Callback { call_id: String },
}

/// The socket's identity once authenticated.
pub(crate) struct Authed {
    pub sessid: String,
    pub identity: Identity,
}

/// Per-socket protocol state.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub handle: ConnHandle,
    pub auth: Option<Authed>,
    pub channels: Vec<String>,
    pub timers: Vec<(Instant, Timer)>,
    pub speed: Option<SpeedTest>,
    idle_deadline: Instant,
    /// Frames to write, in order.
    pub out: Vec<String>,
    /// Close with 1000 once `out` is written.
    pub drop: bool,
}

impl Session {
    /// A fresh, unauthenticated session.
    pub(crate) fn new(shared: Arc<Shared>, handle: ConnHandle, now: Instant) -> Session {
        let idle_deadline = now + shared.config.idle_ping;
        Session {
            shared,
            handle,
            auth: None,
            channels: Vec::new(),
            timers: Vec::new(),
            speed: None,
            idle_deadline,
            out: Vec::new(),
            drop: false,
        }
    }

    /// The sessid, once bound.
    pub(crate) fn sessid(&self) -> Option<&str> {
        self.auth.as_ref().map(|a| a.sessid.as_str())
    }

    /// Any inbound frame resets the keepalive timer (and nothing else does).
    pub(crate) fn touch(&mut self, now: Instant) {
        self.idle_deadline = now + self.shared.config.idle_ping;
    }

    /// When [`Session::fire`] next has something to do.
    pub(crate) fn next_deadline(&self) -> Instant {
        self.timers
            .iter()
            .map(|(at, _)| *at)
            .fold(self.idle_deadline, Instant::min)
    }

    /// Emits every timer that is due at `now`.
    pub(crate) fn fire(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.timers = later;
        for (_, timer) in due {
            let messages = match timer {
                Timer::ClientReady => self.client_ready(),
                call => super::outbound::fire(self, call),
            };
            self.out.extend(messages);
        }
        if self.idle_deadline <= now {
            let serno = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let params = Json::object([("serno", serno.into())]);
            self.out.push(self.shared.request("verto.ping", params));
            self.touch(now);
        }
    }

    /// The re-offers of the sessid's detached calls, then `verto.clientReady` naming
    /// them (captures 10 and 13).
    fn client_ready(&self) -> Vec<String> {
        let (mut messages, reattached) = super::outbound::reattach(self);
        let reattached = reattached.into_iter().map(Json::String).collect();
        let params = Json::object([
            ("reattached_sessions", Json::Array(reattached)),
            // Not in the real message; real clients ignore unknown params, and tests
            // use it to see which node answered.
            ("sim_node", self.shared.config.name.as_str().into()),
        ]);
        messages.push(self.shared.request("verto.clientReady", params));
        messages
    }

    /// A ping or pong: an empty one is ignored, any payload is parsed like a message.
    pub(crate) fn handle_control(&mut self, payload: &[u8], now: Instant) {
        if !payload.is_empty() {
            self.handle_payload(payload, now);
        }
    }

    /// Handles the payload of a data message or of a ping/pong that carries one.
    pub(crate) fn handle_payload(&mut self, payload: &[u8], now: Instant) {
        if payload.first() == Some(&b'#') {
            self.speed_frame(payload, now);
            return;
        }
        // A JSON frame in the middle of a speed test ends it (mod_verto's `goto nm`).
        self.speed = None;
        let Some(json) = Json::parse(payload) else {
            self.out
                .push(invalid(-32600, "Invalid Request", Json::Null).to_text());
            return;
        };
        match json {
            Json::Array(items) => {
                let replies: Vec<Json> = items.iter().filter_map(|m| self.process(m)).collect();
                if !replies.is_empty() {
                    self.out.push(Json::Array(replies).to_text());
                }
            }
            message => {
                if let Some(mut reply) = self.process(&message) {
                    self.inject_sessid(&mut reply);
                    self.out.push(reply.to_text());
                }
            }
        }
    }

    /// `ws_write_json`: a top-level `result` always ends with the socket's sessid
    /// (batch elements are not touched, as on the real node).
    fn inject_sessid(&self, reply: &mut Json) {
        let (Some(sessid), Json::Object(members)) = (self.sessid(), reply) else {
            return;
        };
        if let Some((_, result)) = members.iter_mut().find(|(k, _)| k == "result") {
            result.set("sessid", sessid.into());
        }
    }

    fn speed_frame(&mut self, payload: &[u8], now: Instant) {
        if payload.len() < 4 {
            return;
        }
        if self.auth.is_none() {
            self.drop = true;
            return;
        }
        let frames = super::speed::on_frame(&mut self.speed, payload, now);
        self.out.extend(frames);
    }

    /// One JSON-RPC message → its reply, if it gets one.
    fn process(&mut self, message: &Json) -> Option<Json> {
        let id = message.get("id").cloned().unwrap_or(Json::Null);
        if message.get("jsonrpc").and_then(Json::as_str) != Some("2.0") {
            return Some(invalid(-32600, "Invalid message", id));
        }
        if message.get("result").is_some() {
            return None;
        }
        let Some(method) = message.get("method").and_then(Json::as_str) else {
            return Some(error(id, -32601, INVALID_METHOD));
        };
        let params = message.get("params");
        if self.auth.is_none() || method == "login" {
            if let Err(e) = self.authenticate(params) {
                return Some(error(id, e.code(), e.message()));
            }
        }
        let allowed = self.auth.as_ref().map(|a| Arc::clone(&a.identity.allowed));
        if !allowed.is_some_and(|allowed| permitted(&allowed, method)) {
            return Some(error(id, -32601, INVALID_METHOD));
        }
        match super::methods::call(self, method, params) {
            None => Some(error(id, -32601, INVALID_METHOD)),
            Some(Err(body)) => Some(envelope(id, "error", body)),
            Some(Ok(mut result)) => {
                if let Some(echo) = params.and_then(|p| p.get("echoParams")) {
                    let copy = match echo {
                        Json::Bool(true) => params.cloned().unwrap_or(Json::Null),
                        other => other.clone(),
                    };
                    result.set("requestParams", copy);
                }
                Some(envelope(id, "result", result))
            }
        }
    }

    /// `check_auth` plus the HEAD sessid binding on a socket's first success.
    fn authenticate(&mut self, params: Option<&Json>) -> Result<(), AuthError> {
        let config = &self.shared.config;
        let checked = check_auth(params, &config.users, config.force_domain.as_deref());
        let identity = checked.inspect_err(|e| {
            if e.is_failed_login() {
                self.shared.bump(|s| s.logins_failed += 1);
            }
        })?;
        let conn_id = self.handle.conn_id;
        if let Some(authed) = self.auth.as_mut() {
            // A re-login keeps the first sessid and sends no second clientReady.
            self.shared.authenticated(conn_id, &identity.uid);
            authed.identity = identity;
            return Ok(());
        }
        let sessid = params
            .and_then(|p| p.non_empty_str("sessid"))
            .map_or_else(new_sessid, str::to_owned);
        if self.shared.bind(&sessid, &identity.uid, &self.handle) == Bind::InUse {
            self.shared.bump(|s| s.logins_failed += 1);
            self.drop = true;
            return Err(AuthError::SessionInUse);
        }
        tracing::debug!(uid = %identity.uid, %sessid, "sim: logged in");
        self.shared.authenticated(conn_id, &identity.uid);
        let at = Instant::now() + self.shared.config.client_ready_delay;
        self.timers.push((at, Timer::ClientReady));
        self.auth = Some(Authed { sessid, identity });
        Ok(())
    }
}

/// `{"jsonrpc":"2.0","error":{…},"id":…}`: the order mod_verto uses for -32600.
fn invalid(code: i64, message: &str, id: Json) -> Json {
    Json::object([
        ("jsonrpc", "2.0".into()),
        ("error", error_body(code, message)),
        ("id", id),
    ])
}

fn error_body(code: i64, message: &str) -> Json {
    Json::object([("code", code.into()), ("message", message.into())])
}

/// `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}`.
fn error(id: Json, code: i64, message: &str) -> Json {
    envelope(id, "error", error_body(code, message))
}

/// `{"jsonrpc":"2.0","id":…,<kind>:…}`.
fn envelope(id: Json, kind: &str, body: Json) -> Json {
    Json::object([("jsonrpc", "2.0".into()), ("id", id), (kind, body)])
}

/// A random UUID v4, as `set_session_id` would create for a login without sessid
/// (also the callID of calls the node places).
pub(crate) fn new_sessid() -> String {
    let mut b = super::media::random_bytes::<16>();
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
