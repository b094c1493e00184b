//! The pre-login state machine driven by fuzz input, with a model of what the session
//! does around it (routing verdicts, connections that fail), checking its bounds and
//! that no login reaches a node of another partition.
//!
//! Input: byte 0 picks the bounds; the rest is split at `0xFF` into segments. A segment
//! opening with `0xFE` is a binary frame; one opening with `0xFD` queues its remaining
//! bytes as routing decisions; any other is a text frame (lossy UTF-8). Each
//! [`Step::Route`] takes the next decision (see [`Decision`]), or when none is queued
//! routes the login to the partition named by its domain.

use std::collections::VecDeque;

use crate::verto::prelogin::{
    Bounds, Frame, PreLoginState, Refusal, Routed, Step, Violation, MAX_LOGIN_FAILURES,
    MAX_PRELOGIN_BATCH, MAX_ROUTES,
};
use crate::verto::{
    cjson, error_reply, inspect_forwarded, Forwarded, LoginRequest, AUTH_FAILED, LOGIN_INCORRECT,
    SESSION_ERROR,
};

const SEPARATOR: u8 = 0xFF;
const BINARY: u8 = 0xFE;
const DECISIONS: u8 = 0xFD;

/// Longest reply the gateway writes around one echoed id (the longest template is 82
/// bytes), with room to spare and a comma for batches.
const REPLY_OVERHEAD: usize = 128;

/// Drives one socket's pre-login state machine; see the module doc for the input.
///
/// Properties: a binary, oversized, surplus or `#` frame closes; a route is taken only
/// for a credentialed single login the reader sees; `routes()` never exceeds
/// [`MAX_ROUTES`]; a message forwarded to a connected node holds no login, and a login
/// is forwarded only to the node of its own partition; the [`MAX_LOGIN_FAILURES`]th
/// refusal closes; every reply is valid JSON and at most the message's length plus
/// [`MAX_PRELOGIN_BATCH`] replies' worth; nothing follows a close.
pub fn prelogin(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut socket = Socket::new(bounds(selector));
    for segment in rest.split(|&b| b == SEPARATOR) {
        let open = match segment.split_first() {
            Some((&BINARY, _)) => socket.frame(Frame::Binary, ""),
            Some((&DECISIONS, bytes)) => {
                socket.decisions.extend(bytes);
                true
            }
            _ => {
                let text = String::from_utf8_lossy(segment);
                socket.frame(Frame::Text(&text), &text)
            }
        };
        if !open {
            return;
        }
    }
}

/// Bounds around the defaults (20 messages of 16 KiB), small ones included.
fn bounds(selector: u8) -> Bounds {
    let sizes = [16 * 1024, 1024, 64, 65_536];
    Bounds {
        max_message_bytes: sizes[usize::from(selector >> 6)],
        max_messages: 1 + usize::from(selector & 0x1F),
    }
}

/// One routing decision byte: bits 0-1 the verdict (refused; the login's domain; one
/// of eight fixed partitions, bits 2-4; the whole login), bit 7 fails the connection.
#[derive(Debug, Clone, Copy)]
struct Decision(u8);

impl Decision {
    fn partition(self, login: &str) -> Option<String> {
        let domain = login.split_once('@').map_or(login, |(_, d)| d);
        match self.0 & 3 {
            0 => None,
            1 => Some(domain.to_owned()),
            2 => Some(format!("p{}", (self.0 >> 2) & 7)),
            _ => Some(login.to_owned()),
        }
    }

    fn connect_fails(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// The state machine and what the session around it knows.
struct Socket {
    state: PreLoginState,
    bounds: Bounds,
    decisions: VecDeque<u8>,
    frames: usize,
    refusals: u32,
    /// The partition whose node holds the pending login, as the session sees it.
    connected: Option<String>,
}

impl Socket {
    fn new(bounds: Bounds) -> Socket {
        Socket {
            state: PreLoginState::new(bounds),
            bounds,
            decisions: VecDeque::new(),
            frames: 0,
            refusals: 0,
            connected: None,
        }
    }

    /// Feeds one frame; `false` once the socket is closed.
    fn frame(&mut self, frame: Frame<'_>, text: &str) -> bool {
        self.frames += 1;
        let step = self.state.on_frame(frame);
        let expected_close = match frame {
            Frame::Binary => Some(Violation::Binary),
            Frame::Text(t) if t.len() > self.bounds.max_message_bytes => Some(Violation::TooLarge),
            Frame::Text(_) if self.frames > self.bounds.max_messages => {
                Some(Violation::TooManyMessages)
            }
            Frame::Text(t) if t.starts_with('#') => Some(Violation::SpeedTest),
            Frame::Text(_) => None,
        };
        if let Some(violation) = expected_close {
            assert_eq!(step, Step::Close(violation), "frame {}", self.frames);
            return false;
        }
        match step {
            Step::Reply(reply) => {
                check_reply(&reply, text);
                true
            }
            Step::Refuse(refusal) => self.refused(refusal, text),
            Step::Ignore => true,
            Step::Forward => {
                assert!(self.connected.is_some(), "forwarded with no node");
                assert_eq!(
                    inspect_forwarded(text),
                    Forwarded::Plain,
                    "a message forwarded unrouted may be a login"
                );
                true
            }
            Step::Route(req) => {
                check_route(&req, text);
                self.route(&req, text)
            }
            Step::Connect => panic!("Connect answered a frame"),
            Step::Close(Violation::BatchTooLarge) => {
                let n = crate::verto::batch_len(text);
                assert!(n.is_some_and(|n| n > MAX_PRELOGIN_BATCH), "{n:?}");
                false
            }
            Step::Close(other) => panic!("unexpected close {other:?}"),
        }
    }

    /// Reports a routing verdict for `req` as the session would.
    fn route(&mut self, req: &LoginRequest, text: &str) -> bool {
        let decision = self.decisions.pop_front().map(Decision);
        let partition = match decision {
            Some(d) => d.partition(&req.login),
            None => Decision(1).partition(&req.login),
        };
        let routes_before = self.state.routes();
        let verdict = match &partition {
            Some(p) => Routed::Partition(p),
            None => Routed::Refused("no_partition"),
        };
        let refusal = error_reply(&req.id, AUTH_FAILED, LOGIN_INCORRECT);
        let step = self.state.routed(verdict, &req.login, refusal.clone());
        let routes = self.state.routes();
        assert!(routes <= MAX_ROUTES, "{routes} routes");
        assert!(routes == routes_before || (routes == routes_before + 1 && step == Step::Connect));
        match step {
            Step::Refuse(r) => {
                assert_eq!(r.reply, refusal);
                self.refused(r, text)
            }
            Step::Forward => {
                assert!(
                    partition.is_some() && self.connected == partition,
                    "login for {partition:?} forwarded to the node of {:?}",
                    self.connected
                );
                true
            }
            Step::Connect => {
                if decision.is_some_and(Decision::connect_fails) {
                    self.state.connect_failed();
                    self.connected = None;
                    check_reply(
                        &error_reply(&req.id, SESSION_ERROR, "No node available"),
                        text,
                    );
                } else {
                    self.connected = partition;
                }
                true
            }
            Step::Close(Violation::TooManyRoutes) => {
                assert_eq!(routes, MAX_ROUTES);
                false
            }
            other => panic!("routed answered {other:?}"),
        }
    }

    /// A refusal: its reply is checked and the last allowed one closes.
    fn refused(&mut self, refusal: Refusal, text: &str) -> bool {
        check_reply(&refusal.reply, text);
        assert!(!refusal.login.is_empty(), "refused an empty login");
        self.refusals += 1;
        let last = self.refusals >= MAX_LOGIN_FAILURES;
        let want = last.then_some(Violation::TooManyFailures);
        assert_eq!(refusal.close, want, "refusal {}", self.refusals);
        !last
    }
}

/// A route is taken only for what the reader sees as one credentialed login.
fn check_route(req: &LoginRequest, text: &str) {
    let Ok(cjson::Document::Object(read)) = cjson::read(text) else {
        panic!("routed a message that is no single object");
    };
    assert!(read.is_login(), "routed a message that is no login");
    let params = read.params.unwrap_or_default();
    assert_eq!(params.login.non_empty(), Some(req.login.as_str()));
    assert!(params.passwd.non_empty().is_some(), "routed without passwd");
    super::check_kept_id(read.id, &req.id);
}

/// Every reply is valid JSON (RFC 8259's grammar: read as `IgnoredAny`, a number is not
/// required to fit an `f64`), no larger than the message plus a batch of templates.
fn check_reply(reply: &str, text: &str) {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(reply) {
        panic!("reply is not JSON ({e}): {reply:?}");
    }
    let bound = text.len() + MAX_PRELOGIN_BATCH * REPLY_OVERHEAD + 2;
    assert!(
        reply.len() <= bound,
        "reply of {} bytes to {} bytes",
        reply.len(),
        text.len()
    );
}
