//! The node's calls: which session (sessid) owns each one, its state, and mod_verto's
//! rules for a socket that goes away (`detach_calls`), comes back (`attach_calls`) or
//! never does (`drop_detached`).
//!
//! Plain state: [`super::shared::Shared`] holds the table under a lock, and the callers
//! send whatever the operations say must be sent.

use std::collections::HashMap;

use tokio::time::Instant;

/// One call, as [`super::SimNode::calls`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCall {
    /// `callID` (the channel UUID on a real node).
    pub call_id: String,
    /// `id@domain` of the user whose session owns the call.
    pub user: String,
    /// The owning session.
    pub sessid: String,
    /// Placed by the node ([`super::SimNode::call`] or the callback rule) rather than by
    /// a browser's `verto.invite`.
    pub placed_by_node: bool,
    /// Where the call is in its life.
    pub state: SimCallState,
    /// The browser's last SDP for the call: its offer, or its answer to the node's
    /// `verto.invite` / `verto.attach` (empty until it sent one).
    pub remote_sdp: String,
}

/// The states a call goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCallState {
    /// Not answered yet (by the node for a browser's call, by the browser for the node's).
    Ringing,
    /// Answered, on a live socket.
    Active,
    /// Offered again with `verto.attach`, waiting for the browser's `verto.attach` answer.
    Reattaching,
    /// Its socket went away; it ends after the detach timeout unless reattached.
    Detached,
}

/// Who placed a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A browser's `verto.invite`.
    Browser,
    /// The node's `verto.invite`; the calls of one [`super::SimNode::call`] ring together.
    Node { ring: u64 },
}

/// A call's state, with the detach deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Ringing,
    Active,
    Reattaching,
    Detached { until: Instant },
}

/// Caller and callee ids, as `verto.invite` and `verto.attach` carry them.
#[derive(Debug, Clone)]
pub(crate) struct Parties {
    pub caller_id_name: String,
    pub caller_id_number: String,
    pub callee_id_name: String,
    pub callee_id_number: String,
    /// `inbound` for a browser's call, `outbound` for the node's (capture 10 and 11).
    pub display_direction: &'static str,
}

/// One live call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub id: String,
    pub uid: String,
    /// The socket the call is attached to (stale while detached).
    pub conn: u64,
    pub origin: Origin,
    pub state: State,
    pub held: bool,
    /// The node's RTP port for the call, kept across re-offers.
    pub port: u16,
    pub parties: Parties,
    pub remote_sdp: String,
}

impl Call {
    /// Whether socket `conn` has the call (it is not detached from it).
    pub(crate) fn is_on(&self, conn: u64) -> bool {
        self.conn == conn && !matches!(self.state, State::Detached { .. })
    }
}

/// What [`CallTable::detach`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Detached {
    /// Unanswered calls hung up (`DESTINATION_OUT_OF_ORDER`).
    pub ended: usize,
    /// Answered calls kept for a later `verto.attach`.
    pub kept: usize,
}

/// Every live call of a node, by sessid and then callID.
#[derive(Debug, Default)]
pub(crate) struct CallTable {
    by_sessid: HashMap<String, HashMap<String, Call>>,
}

impl CallTable {
    /// How many calls are live (ringing, active, reattaching or detached).
    pub(crate) fn len(&self) -> usize {
        self.by_sessid.values().map(HashMap::len).sum()
    }

    /// Adds a call to `sessid`, replacing one with the same callID.
    pub(crate) fn insert(&mut self, sessid: &str, call: Call) {
        let calls = self.by_sessid.entry(sessid.to_owned()).or_default();
        calls.insert(call.id.clone(), call);
    }

    /// The call `id` of `sessid`.
    pub(crate) fn get_mut(&mut self, sessid: &str, id: &str) -> Option<&mut Call> {
        self.by_sessid.get_mut(sessid)?.get_mut(id)
    }

    /// Ends the call `id` of `sessid`.
    pub(crate) fn remove(&mut self, sessid: &str, id: &str) -> Option<Call> {
        let calls = self.by_sessid.get_mut(sessid)?;
        let call = calls.remove(id);
        if calls.is_empty() {
            self.by_sessid.remove(sessid);
        }
        call
    }

    /// The sessid that owns call `id`, whoever it is.
    pub(crate) fn owner(&self, id: &str) -> Option<&str> {
        self.by_sessid
            .iter()
            .find(|(_, calls)| calls.contains_key(id))
            .map(|(sessid, _)| sessid.as_str())
    }

    /// Socket `conn` of `sessid` went away (closed, dropped or punted): its unanswered
    /// calls end, its answered ones wait for a new socket until `until`.
    pub(crate) fn detach(&mut self, sessid: &str, conn: u64, until: Instant) -> Detached {
        let mut outcome = Detached::default();
        let Some(calls) = self.by_sessid.get_mut(sessid) else {
            return outcome;
        };
        calls.retain(|_, call| {
            if !call.is_on(conn) {
                return true;
            }
            if call.state == State::Ringing {
                outcome.ended += 1;
                return false;
            }
            call.state = State::Detached { until };
            outcome.kept += 1;
            true
        });
        if calls.is_empty() {
            self.by_sessid.remove(sessid);
        }
        outcome
    }

    /// Moves the detached calls of `sessid` and user `uid` to socket `conn`, to be
    /// offered again with `verto.attach`; returns them, sorted by callID.
    pub(crate) fn reattach(&mut self, sessid: &str, uid: &str, conn: u64) -> Vec<Call> {
        let Some(calls) = self.by_sessid.get_mut(sessid) else {
            return Vec::new();
        };
        let mut moved: Vec<Call> = calls
            .values_mut()
            .filter(|c| matches!(c.state, State::Detached { .. }) && c.uid == uid)
            .map(|call| {
                call.state = State::Reattaching;
                call.conn = conn;
                call.clone()
            })
            .collect();
        moved.sort_by(|a, b| a.id.cmp(&b.id));
        moved
    }

    /// Ends the detached calls whose deadline passed, unless a socket holds their
    /// sessid again (`bound`): those wait until `rearm` (mod_verto keeps them while a
    /// socket with the sessid exists). Returns how many ended.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        bound: impl Fn(&str) -> bool,
        rearm: Instant,
    ) -> usize {
        let mut ended = 0;
        for (sessid, calls) in self.by_sessid.iter_mut() {
            let is_bound = bound(sessid);
            calls.retain(|_, call| match call.state {
                State::Detached { until } if until <= now && is_bound => {
                    call.state = State::Detached { until: rearm };
                    true
                }
                State::Detached { until } if until <= now => {
                    ended += 1;
                    false
                }
                _ => true,
            });
        }
        self.by_sessid.retain(|_, calls| !calls.is_empty());
        ended
    }

    /// The earliest detach deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_sessid
            .values()
            .flat_map(HashMap::values)
            .filter_map(|call| match call.state {
                State::Detached { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Ends the other still-ringing calls of ring group `ring` (they lost the race to
    /// `winner`); returns them as (sessid, call).
    pub(crate) fn lose_race(&mut self, ring: u64, winner: &str) -> Vec<(String, Call)> {
        let mut losers = Vec::new();
        for (sessid, calls) in self.by_sessid.iter_mut() {
            calls.retain(|id, call| {
                let lost = call.origin == Origin::Node { ring }
                    && call.state == State::Ringing
                    && id != winner;
                if lost {
                    losers.push((sessid.clone(), call.clone()));
                }
                !lost
            });
        }
        self.by_sessid.retain(|_, calls| !calls.is_empty());
        losers
    }

    /// Every call, sorted by user then callID.
    pub(crate) fn snapshot(&self) -> Vec<SimCall> {
        let mut calls: Vec<SimCall> = self
            .by_sessid
            .iter()
            .flat_map(|(sessid, calls)| calls.values().map(move |c| (sessid, c)))
            .map(|(sessid, call)| SimCall {
                call_id: call.id.clone(),
                user: call.uid.clone(),
                sessid: sessid.clone(),
                placed_by_node: matches!(call.origin, Origin::Node { .. }),
                state: match call.state {
                    State::Ringing => SimCallState::Ringing,
                    State::Active => SimCallState::Active,
                    State::Reattaching => SimCallState::Reattaching,
                    State::Detached { .. } => SimCallState::Detached,
                },
                remote_sdp: call.remote_sdp.clone(),
            })
            .collect();
        calls.sort_by(|a, b| (&a.user, &a.call_id).cmp(&(&b.user, &b.call_id)));
        calls
    }
}

#[cfg(test)]
mod tests;
