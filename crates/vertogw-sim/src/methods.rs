//! The methods a simulated node implements, with the result and error shapes of the
//! real captures. Calls are bookkeeping only: there is no media.

use super::json::Json;
use super::session::{Session, Timer};
use super::shared::Shared;

/// The answer SDP sent in `verto.answer`: the one FreeSWITCH sent in capture 06 (no
/// `a=mid`, no BUNDLE, `UDP/TLS/RTP/SAVPF`, candidate on 127.0.0.1).
pub const ANSWER_SDP: &str = "v=0\r\no=FreeSWITCH 1795673918 1795673919 IN IP4 127.0.0.1\r\n\
s=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=msid-semantic: WMS 4q3iQK19whaBVlQ9egiNaYDI38hKBxrW\r\n\
m=audio 10048 UDP/TLS/RTP/SAVPF 111 101\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=0; cbr=1; minptime=10\r\na=rtpmap:101 telephone-event/8000\r\n\
a=silenceSupp:off - - - -\r\na=ptime:20\r\na=sendrecv\r\n\
a=fingerprint:sha-256 86:05:E6:AA:AC:93:F1:B0:55:5C:87:65:B3:FB:D3:17:05:9A:5E:60:E2:EA:2F:EA:8B:08:3B:7D:14:6E:F8:49\r\n\
a=setup:active\r\na=rtcp-mux\r\na=rtcp:10048 IN IP4 127.0.0.1\r\na=ice-ufrag:o8i6YRhYtd3PVJyS\r\n\
a=ice-pwd:zjVu2zLAO1esLyvCwNRFcbcM\r\n\
a=candidate:0748946991 1 udp 2130706431 127.0.0.1 10048 typ host generation 0\r\n\
a=end-of-candidates\r\n";

/// Calls one method; `None` when the node has no such method (→ -32601).
pub(crate) fn call(
    session: &mut Session,
    method: &str,
    params: Option<&Json>,
) -> Option<Result<Json, Json>> {
    let result = match method {
        "login" => Ok(logged_in(session)),
        "echo" => params
            .cloned()
            .ok_or_else(|| failure("Params data missing")),
        "verto.ping" => Ok(message("PONG")),
        "verto.invite" => invite(session, params),
        "verto.bye" => bye(session, params),
        "verto.modify" => modify(session, params),
        "verto.info" => Ok(message("SENT")),
        "verto.subscribe" => subscribe(session, params),
        "verto.unsubscribe" => unsubscribe(session, params),
        "verto.answer" | "verto.attach" | "verto.broadcast" => Ok(Json::Object(Vec::new())),
        // Registered on the real node but refused without a configured allow-list.
        "jsapi" | "fsapi" => Err(Json::object([
            ("code", (-32602i64).into()),
            ("message", "Permission Denied".into()),
        ])),
        _ => return None,
    };
    Some(result)
}

/// The server request that answers a call the client placed.
pub(crate) fn answer_request(shared: &Shared, call_id: &str) -> String {
    let params = Json::object([
        ("callID", call_id.into()),
        ("sdp", ANSWER_SDP.into()),
        ("variables", Json::Object(Vec::new())),
    ]);
    shared.request("verto.answer", params)
}

fn logged_in(session: &Session) -> Json {
    let sessid = session.sessid().unwrap_or_default();
    Json::object([("message", "logged in".into()), ("sessid", sessid.into())])
}

fn message(text: &str) -> Json {
    Json::object([("message", text.into())])
}

/// A method failure: `{"message":…,"code":-32002}`.
fn failure(text: &str) -> Json {
    Json::object([("message", text.into()), ("code", (-32002i64).into())])
}

/// `dialogParams.callID`, or the failure mod_verto reports for its absence.
fn call_id(params: Option<&Json>) -> Result<String, Json> {
    let dialog = params
        .and_then(|p| p.get("dialogParams"))
        .ok_or_else(|| failure("Dialog data missing"))?;
    dialog
        .non_empty_str("callID")
        .map(str::to_owned)
        .ok_or_else(|| failure("CallID missing"))
}

fn invite(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    if params.and_then(|p| p.non_empty_str("sdp")).is_none() {
        return Err(Json::object([
            ("message", "CALL ERROR".into()),
            ("causeCode", 95u64.into()),
            ("cause", "INVALID_MSG_UNSPECIFIED".into()),
            ("code", (-32002i64).into()),
        ]));
    }
    session.calls.insert(call_id.clone(), false);
    let at = tokio::time::Instant::now() + session.shared.config.answer_delay;
    let timer = Timer::Answer {
        call_id: call_id.clone(),
    };
    session.timers.push((at, timer));
    Ok(Json::object([
        ("message", "CALL CREATED".into()),
        ("callID", call_id.into()),
    ]))
}

fn bye(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    if session.calls.remove(&call_id).is_none() {
        return Err(no_such_call(call_id));
    }
    Ok(Json::object([
        ("callID", call_id.into()),
        ("message", "CALL ENDED".into()),
        ("causeCode", 16u64.into()),
        ("cause", "NORMAL_CLEARING".into()),
    ]))
}

fn no_such_call(call_id: String) -> Json {
    Json::object([
        ("callID", call_id.into()),
        ("message", "CALL DOES NOT EXIST".into()),
        ("code", (-32002i64).into()),
    ])
}

fn modify(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    let Some(held) = session.calls.get_mut(&call_id) else {
        return Err(no_such_call(call_id));
    };
    let action = params
        .and_then(|p| p.non_empty_str("action"))
        .unwrap_or_default()
        .to_owned();
    *held = match action.as_str() {
        "hold" => true,
        "unhold" => false,
        "toggleHold" => !*held,
        _ => *held,
    };
    let state = if *held { "held" } else { "active" };
    Ok(Json::object([
        ("callID", call_id.into()),
        ("action", action.into()),
        ("holdState", state.into()),
    ]))
}

/// `eventChannel` as a list: a string or an array of strings.
fn channels(params: Option<&Json>) -> Result<Vec<String>, Json> {
    let names = match params.and_then(|p| p.get("eventChannel")) {
        Some(Json::String(name)) => vec![name.clone()],
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    match names.is_empty() {
        true => Err(failure("eventChannel not specified.")),
        false => Ok(names),
    }
}

fn string_array(names: Vec<String>) -> Json {
    Json::Array(names.into_iter().map(Json::String).collect())
}

fn subscribe(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let (mut added, mut already) = (Vec::new(), Vec::new());
    for name in channels(params)? {
        if session.channels.contains(&name) {
            already.push(name);
        } else {
            session.channels.push(name.clone());
            added.push(name);
        }
    }
    let mut result = Json::Object(Vec::new());
    if !added.is_empty() {
        result.set("subscribedChannels", string_array(added));
    }
    if !already.is_empty() {
        result.set("alreadySubscribedChannels", string_array(already));
    }
    Ok(result)
}

fn unsubscribe(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let (mut removed, mut absent) = (Vec::new(), Vec::new());
    for name in channels(params)? {
        let before = session.channels.len();
        session.channels.retain(|c| *c != name);
        match session.channels.len() < before {
            true => removed.push(name),
            false => absent.push(name),
        }
    }
    let mut result = Json::Object(Vec::new());
    if !removed.is_empty() {
        result.set("unsubscribedChannels", string_array(removed));
    }
    if !absent.is_empty() {
        result.set("notSubscribedChannels", string_array(absent));
    }
    Ok(result)
}
