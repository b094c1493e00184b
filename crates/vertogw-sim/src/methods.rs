//! The methods a simulated node implements, with the result and error shapes of the
//! real captures; the per-call ones live in `dialog`.

use super::dialog;
use super::json::Json;
use super::session::Session;

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
        "verto.invite" => dialog::invite(session, params),
        "verto.answer" => dialog::answer(session, params),
        "verto.attach" => dialog::attach(session, params),
        "verto.bye" => dialog::bye(session, params),
        "verto.modify" => dialog::modify(session, params),
        "verto.info" => dialog::info(session, params),
        "verto.subscribe" => subscribe(session, params),
        "verto.unsubscribe" => unsubscribe(session, params),
        "verto.broadcast" => Ok(Json::Object(Vec::new())),
        // Registered on the real node but refused without a configured allow-list.
        "jsapi" | "fsapi" => Err(Json::object([
            ("code", (-32602i64).into()),
            ("message", "Permission Denied".into()),
        ])),
        _ => return None,
    };
    Some(result)
}

fn logged_in(session: &Session) -> Json {
    let sessid = session.sessid().unwrap_or_default();
    Json::object([("message", "logged in".into()), ("sessid", sessid.into())])
}

fn message(text: &str) -> Json {
    Json::object([("message", text.into())])
}

/// A method failure: `{"message":…,"code":-32002}`.
pub(crate) fn failure(text: &str) -> Json {
    Json::object([("message", text.into()), ("code", (-32002i64).into())])
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
