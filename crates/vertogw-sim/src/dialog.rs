//! The per-call methods a browser sends: `verto.invite`, `verto.answer` (to the node's
//! calls), `verto.attach` (to the node's re-offers), `verto.bye`, `verto.modify` and
//! `verto.info`, with the result and error shapes of mod_verto.

use std::sync::Arc;

use tokio::time::Instant;

use super::calls::{Call, Origin, Parties, State};
use super::json::Json;
use super::methods::failure;
use super::outbound::{self, Cause};
use super::sdp;
use super::session::{Session, Timer};
use super::shared::Shared;

/// The answer SDP for an offer that is not SDP (the captures' `"v=0"`): the one
/// FreeSWITCH sent in capture 06 (no `a=mid`, no BUNDLE, candidate on 127.0.0.1).
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

/// The causes a browser's `verto.bye` may name that the node reports back by name; any
/// other name is `NORMAL_CLEARING`, as FreeSWITCH does for names it does not know.
const BYE_CAUSES: [Cause; 5] = [
    outbound::NORMAL_CLEARING,
    Cause::new("USER_BUSY", 17),
    Cause::new("NO_ANSWER", 19),
    Cause::new("CALL_REJECTED", 21),
    Cause::new("ORIGINATOR_CANCEL", 487),
];

/// The session a method acts for.
pub(crate) struct Owner {
    pub shared: Arc<Shared>,
    pub sessid: String,
    pub uid: String,
    pub conn: u64,
}

impl Owner {
    /// Methods only run after the auth gate, so a session without identity is a bug
    /// reported as the gate would.
    pub(crate) fn of(session: &Session) -> Result<Owner, Json> {
        let auth = session
            .auth
            .as_ref()
            .ok_or_else(|| failure("Authentication Required"))?;
        Ok(Owner {
            shared: Arc::clone(&session.shared),
            sessid: auth.sessid.clone(),
            uid: auth.identity.uid.clone(),
            conn: session.handle.conn_id,
        })
    }
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

fn sdp_param(params: Option<&Json>) -> Result<String, Json> {
    params
        .and_then(|p| p.non_empty_str("sdp"))
        .map(str::to_owned)
        .ok_or_else(|| failure("SDP missing"))
}

fn no_such_call(call_id: String) -> Json {
    Json::object([
        ("callID", call_id.into()),
        ("message", "CALL DOES NOT EXIST".into()),
        ("code", (-32002i64).into()),
    ])
}

/// A browser places a call: CALL CREATED now, `verto.answer` (or `verto.bye` when no
/// codec matches) after `answer_delay`.
pub(crate) fn invite(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    let Some(offer) = params.and_then(|p| p.non_empty_str("sdp")) else {
        return Err(Json::object([
            ("message", "CALL ERROR".into()),
            ("causeCode", 95u64.into()),
            ("cause", "INVALID_MSG_UNSPECIFIED".into()),
            ("code", (-32002i64).into()),
        ]));
    };
    let owner = Owner::of(session)?;
    let shared = &owner.shared;
    let port = shared.media.next_port();
    let reply = match sdp::parse(offer) {
        None => Some(ANSWER_SDP.to_owned()),
        Some(parsed) => sdp::answer(&parsed, &shared.media.local(port)),
    };
    let dialog = params.and_then(|p| p.get("dialogParams"));
    let destination = dialog
        .and_then(|d| d.non_empty_str("destination_number"))
        .unwrap_or("service");
    let parties = parties(dialog, destination);
    let callback = destination == outbound::CALLBACK_DESTINATION;
    let call = Call {
        id: call_id.clone(),
        uid: owner.uid,
        conn: owner.conn,
        origin: Origin::Browser,
        state: State::Ringing,
        held: false,
        port,
        parties,
        remote_sdp: offer.to_owned(),
    };
    shared.calls(|t| t.insert(&owner.sessid, call));
    let config = &shared.config;
    let at = Instant::now() + config.answer_delay;
    let id = call_id.clone();
    let timer = match reply {
        Some(sdp) => Timer::Answer { call_id: id, sdp },
        None => Timer::Hangup {
            call_id: id,
            cause: outbound::INCOMPATIBLE_DESTINATION,
        },
    };
    session.timers.push((at, timer));
    if callback {
        let id = call_id.clone();
        let timer = Timer::Callback { call_id: id };
        session.timers.push((at + config.callback_delay, timer));
    }
    Ok(Json::object([
        ("message", "CALL CREATED".into()),
        ("callID", call_id.into()),
    ]))
}

/// The ids a browser's call shows when it is re-offered (capture 10): the caller from
/// `dialogParams`, the callee from its `remote_caller_id_*` or the destination.
fn parties(dialog: Option<&Json>, destination: &str) -> Parties {
    let text = |key: &str| dialog.and_then(|d| d.non_empty_str(key));
    Parties {
        caller_id_name: text("caller_id_name").unwrap_or_default().to_owned(),
        caller_id_number: text("caller_id_number").unwrap_or_default().to_owned(),
        callee_id_name: text("remote_caller_id_name")
            .unwrap_or("Outbound Call")
            .to_owned(),
        callee_id_number: text("remote_caller_id_number")
            .unwrap_or(destination)
            .to_owned(),
        display_direction: "inbound",
    }
}

/// A browser answers a call the node placed (capture 11): its SDP is recorded, the
/// other sockets the call rang get `verto.bye` `LOSE_RACE`. Result `{}` even for an
/// unknown call, as mod_verto does.
pub(crate) fn answer(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    let sdp = sdp_param(params)?;
    let owner = Owner::of(session)?;
    let shared = &owner.shared;
    let answered = shared.calls(|t| {
        let call = t.get_mut(&owner.sessid, &call_id)?;
        call.remote_sdp = sdp;
        let Origin::Node { ring } = call.origin else {
            return None;
        };
        (call.state == State::Ringing).then(|| {
            call.state = State::Active;
            call.conn = owner.conn;
            ring
        })
    });
    if let Some(ring) = answered {
        shared.bump(|s| s.calls_answered += 1);
        outbound::lose_race(shared, ring, &call_id);
    }
    Ok(Json::Object(Vec::new()))
}

/// A browser answers the node's `verto.attach` re-offer with its own `verto.attach`
/// (capture 10): the call is active on this socket again.
pub(crate) fn attach(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    params
        .and_then(|p| p.get("dialogParams"))
        .ok_or_else(|| failure("Dialog data missing"))?;
    let sdp = sdp_param(params)?;
    let call_id = call_id(params)?;
    let owner = Owner::of(session)?;
    let shared = &owner.shared;
    let before = shared.calls(|t| {
        let call = t.get_mut(&owner.sessid, &call_id)?;
        let before = call.state;
        if before == State::Ringing {
            t.remove(&owner.sessid, &call_id);
        } else {
            call.state = State::Active;
            call.conn = owner.conn;
            call.remote_sdp = sdp;
        }
        Some(before)
    });
    match before {
        None => Err(failure("Call does not exist")),
        // mod_verto hangs such a call up (DESTINATION_OUT_OF_ORDER).
        Some(State::Ringing) => Err(failure(
            "Cannot attach to a call that has not been answered.",
        )),
        Some(State::Reattaching | State::Detached { .. }) => {
            shared.bump(|s| s.calls_reattached += 1);
            Ok(Json::Object(Vec::new()))
        }
        Some(State::Active) => Ok(Json::Object(Vec::new())),
    }
}

/// A browser hangs up (or declines a call the node placed).
pub(crate) fn bye(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    let owner = Owner::of(session)?;
    let named = params.and_then(|p| p.non_empty_str("cause"));
    let cause = BYE_CAUSES
        .into_iter()
        .find(|c| Some(c.name) == named)
        .unwrap_or(outbound::NORMAL_CLEARING);
    let Some(call) = owner.shared.calls(|t| t.remove(&owner.sessid, &call_id)) else {
        return Err(no_such_call(call_id));
    };
    if matches!(call.origin, Origin::Node { .. }) && call.state == State::Ringing {
        owner.shared.bump(|s| s.calls_declined += 1);
    }
    Ok(Json::object([
        ("callID", call_id.into()),
        ("message", "CALL ENDED".into()),
        ("causeCode", cause.code.into()),
        ("cause", cause.name.into()),
    ]))
}

/// Hold and unhold.
pub(crate) fn modify(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let call_id = call_id(params)?;
    let owner = Owner::of(session)?;
    let action = params
        .and_then(|p| p.non_empty_str("action"))
        .unwrap_or_default()
        .to_owned();
    let held = owner.shared.calls(|t| {
        let call = t.get_mut(&owner.sessid, &call_id)?;
        call.held = match action.as_str() {
            "hold" => true,
            "unhold" => false,
            "toggleHold" => !call.held,
            _ => call.held,
        };
        Some(call.held)
    });
    let Some(held) = held else {
        return Err(no_such_call(call_id));
    };
    let state = if held { "held" } else { "active" };
    Ok(Json::object([
        ("callID", call_id.into()),
        ("action", action.into()),
        ("holdState", state.into()),
    ]))
}

/// DTMF for a call of this session is recorded ([`super::SimStats::dtmf_digits`]) and
/// "SENT"; chat (`msg`) is acknowledged but not delivered; anything else gets `{}`.
pub(crate) fn info(session: &mut Session, params: Option<&Json>) -> Result<Json, Json> {
    let owner = Owner::of(session)?;
    let mut result = Json::Object(Vec::new());
    let call_id = params
        .and_then(|p| p.get("dialogParams"))
        .and_then(|d| d.non_empty_str("callID"));
    let dtmf = params.and_then(|p| p.non_empty_str("dtmf"));
    if let (Some(call_id), Some(dtmf)) = (call_id, dtmf) {
        let known = owner
            .shared
            .calls(|t| t.get_mut(&owner.sessid, call_id).is_some());
        if known {
            owner.shared.bump(|s| s.record_dtmf(dtmf));
            result.set("message", "SENT".into());
        }
    }
    if params.and_then(|p| p.get("msg")).is_some() {
        result.set("message", "SENT".into());
    }
    Ok(result)
}
