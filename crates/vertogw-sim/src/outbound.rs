//! What the node sends about calls on its own: the timed answer or hangup of a
//! browser's call, the `callback` rule, `verto.attach` re-offers at `clientReady`, and
//! the calls it places ([`super::SimNode::call`]) and hangs up.

use super::calls::{Call, Origin, Parties, State};
use super::dialog::Owner;
use super::json::Json;
use super::sdp;
use super::session::{new_sessid, Session, Timer};
use super::shared::{Push, Shared};

/// The destination number of the callback rule: a `verto.invite` to it is answered,
/// hung up by the node ([`super::SimConfig::callback_delay`] after the answer, cause
/// `NORMAL_CLEARING`), and the caller's session then gets a `verto.invite` from the node.
pub const CALLBACK_DESTINATION: &str = "callback";

/// Who a call placed by the node says is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// `caller_id_name`.
    pub name: String,
    /// `caller_id_number`.
    pub number: String,
}

impl Default for CallerId {
    /// The originate of capture 11: `FS-Originate` / `9999`.
    fn default() -> CallerId {
        CallerId {
            name: "FS-Originate".into(),
            number: "9999".into(),
        }
    }
}

/// A hangup cause (Q.850 code and FreeSWITCH name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cause {
    pub name: &'static str,
    pub code: u64,
}

pub(crate) const NORMAL_CLEARING: Cause = Cause::new("NORMAL_CLEARING", 16);
pub(crate) const INCOMPATIBLE_DESTINATION: Cause = Cause::new("INCOMPATIBLE_DESTINATION", 88);
pub(crate) const LOSE_RACE: Cause = Cause::new("LOSE_RACE", 502);

impl Cause {
    pub(crate) const fn new(name: &'static str, code: u64) -> Cause {
        Cause { name, code }
    }
}

/// What a call timer of this session sends, if the call is still on its socket.
pub(crate) fn fire(session: &Session, timer: Timer) -> Vec<String> {
    let Ok(owner) = Owner::of(session) else {
        return Vec::new();
    };
    let shared = &owner.shared;
    let (sessid, conn) = (owner.sessid.as_str(), owner.conn);
    match timer {
        Timer::ClientReady => Vec::new(),
        Timer::Answer { call_id, sdp } => {
            let answered = shared.calls(|t| {
                let call = t.get_mut(sessid, &call_id)?;
                (call.is_on(conn) && call.state == State::Ringing)
                    .then(|| call.state = State::Active)
            });
            match answered {
                Some(()) => vec![answer_request(shared, &call_id, &sdp)],
                None => Vec::new(),
            }
        }
        Timer::Hangup { call_id, cause } => match take_on(shared, sessid, &call_id, conn) {
            Some(_) => vec![bye_request(shared, &call_id, cause)],
            None => Vec::new(),
        },
        Timer::Callback { call_id } => match take_on(shared, sessid, &call_id, conn) {
            Some(_) => {
                let caller = CallerId {
                    name: "Callback".into(),
                    number: CALLBACK_DESTINATION.into(),
                };
                let ring = shared.next_ring();
                let (_, invite) = place(shared, sessid, &owner.uid, conn, &caller, ring);
                shared.bump(|s| s.calls_placed += 1);
                vec![bye_request(shared, &call_id, NORMAL_CLEARING), invite]
            }
            None => Vec::new(),
        },
    }
}

/// Removes call `call_id` of `sessid` if socket `conn` still has it.
fn take_on(shared: &Shared, sessid: &str, call_id: &str, conn: u64) -> Option<Call> {
    shared.calls(|t| match t.get_mut(sessid, call_id) {
        Some(call) if call.is_on(conn) => t.remove(sessid, call_id),
        _ => None,
    })
}

/// The `verto.attach` re-offers for the detached calls of the session (sent just
/// before `verto.clientReady`), and their callIDs for `reattached_sessions`.
pub(crate) fn reattach(session: &Session) -> (Vec<String>, Vec<String>) {
    let Ok(owner) = Owner::of(session) else {
        return (Vec::new(), Vec::new());
    };
    let shared = &owner.shared;
    let calls = shared.calls(|t| t.reattach(&owner.sessid, &owner.uid, owner.conn));
    let offers = calls
        .iter()
        .map(|call| {
            let offer = sdp::offer(&shared.media.local(call.port));
            call_request(shared, "verto.attach", &call.id, &offer, &call.parties)
        })
        .collect();
    (offers, calls.into_iter().map(|c| c.id).collect())
}

/// Ends the still-ringing legs of ring group `ring` that lost to `winner`: each gets
/// `verto.bye` `LOSE_RACE`.
pub(crate) fn lose_race(shared: &Shared, ring: u64, winner: &str) {
    for (sessid, lost) in shared.calls(|t| t.lose_race(ring, winner)) {
        if let Some(handle) = shared.handle_of(&sessid, lost.conn) {
            handle.push(Push::Text(bye_request(shared, &lost.id, LOSE_RACE)));
        }
    }
}

/// Calls every socket where `login` is logged in (`id@domain`, or `id` alone for any
/// domain), like `originate user/<login>`; returns how many sockets got the invite.
pub(crate) fn originate(shared: &Shared, login: &str, caller: &CallerId) -> usize {
    let uid = super::auth::derive_id_domain(login, shared.config.force_domain.as_deref())
        .map(|(id, domain)| format!("{id}@{domain}"));
    let wanted = |candidate: &str| match &uid {
        Some(uid) => candidate == uid,
        None => candidate.split('@').next() == Some(login),
    };
    let ring = shared.next_ring();
    let mut reached = 0;
    for (sessid, bound_uid, handle) in shared.bound_sockets() {
        if !wanted(&bound_uid) {
            continue;
        }
        let (call_id, invite) = place(shared, &sessid, &bound_uid, handle.conn_id, caller, ring);
        if handle.push(Push::Text(invite)) {
            reached += 1;
        } else {
            shared.calls(|t| t.remove(&sessid, &call_id));
        }
    }
    shared.bump(|s| s.calls_placed += reached as u64);
    reached
}

/// Registers a call the node places to socket `conn` of `sessid`; returns its callID
/// and the `verto.invite` to send.
fn place(
    shared: &Shared,
    sessid: &str,
    uid: &str,
    conn: u64,
    caller: &CallerId,
    ring: u64,
) -> (String, String) {
    let call_id = new_sessid();
    let port = shared.media.next_port();
    let parties = Parties {
        caller_id_name: caller.name.clone(),
        caller_id_number: caller.number.clone(),
        callee_id_name: "Outbound Call".into(),
        callee_id_number: uid.split('@').next().unwrap_or(uid).to_owned(),
        display_direction: "outbound",
    };
    let offer = sdp::offer(&shared.media.local(port));
    let invite = call_request(shared, "verto.invite", &call_id, &offer, &parties);
    let call = Call {
        id: call_id.clone(),
        uid: uid.to_owned(),
        conn,
        origin: Origin::Node { ring },
        state: State::Ringing,
        held: false,
        port,
        parties,
        remote_sdp: String::new(),
    };
    shared.calls(|t| t.insert(sessid, call));
    (call_id, invite)
}

/// The node hangs call `call_id` up (`NORMAL_CLEARING`), telling its socket unless the
/// call is detached; `false` when there is no such call.
pub(crate) fn hangup(shared: &Shared, call_id: &str) -> bool {
    let removed = shared.calls(|t| {
        let sessid = t.owner(call_id)?.to_owned();
        let call = t.remove(&sessid, call_id)?;
        Some((sessid, call))
    });
    let Some((sessid, call)) = removed else {
        return false;
    };
    if !matches!(call.state, State::Detached { .. }) {
        if let Some(handle) = shared.handle_of(&sessid, call.conn) {
            handle.push(Push::Text(bye_request(shared, call_id, NORMAL_CLEARING)));
        }
    }
    true
}

/// The server request that answers a call the client placed.
fn answer_request(shared: &Shared, call_id: &str, sdp: &str) -> String {
    let params = Json::object([
        ("callID", call_id.into()),
        ("sdp", sdp.into()),
        ("variables", Json::Object(Vec::new())),
    ]);
    shared.request("verto.answer", params)
}

/// `verto.bye` from the node.
fn bye_request(shared: &Shared, call_id: &str, cause: Cause) -> String {
    let params = Json::object([
        ("callID", call_id.into()),
        ("causeCode", cause.code.into()),
        ("cause", cause.name.into()),
    ]);
    shared.request("verto.bye", params)
}

/// `verto.invite` or `verto.attach` from the node, with the params of captures 10/11.
fn call_request(shared: &Shared, method: &str, call_id: &str, sdp: &str, p: &Parties) -> String {
    let params = Json::object([
        ("callID", call_id.into()),
        ("variables", Json::Object(Vec::new())),
        ("sdp", sdp.into()),
        ("caller_id_name", p.caller_id_name.as_str().into()),
        ("caller_id_number", p.caller_id_number.as_str().into()),
        ("callee_id_name", p.callee_id_name.as_str().into()),
        ("callee_id_number", p.callee_id_number.as_str().into()),
        ("display_direction", p.display_direction.into()),
    ]);
    shared.request(method, params)
}
