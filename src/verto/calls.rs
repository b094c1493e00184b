//! Which calls a session has in progress, from the messages relayed both ways (issue 10,
//! "Calls in progress"): the gateway moves a session between nodes only when it has
//! none, since moving it cuts them.
//!
//! A call (by `callID`: `params.callID`, else `params.dialogParams.callID`) starts at the
//! first `verto.invite`, `verto.answer`, `verto.attach` or `verto.media` in either
//! direction, and ends on `verto.bye` in either direction, on a reply carrying its
//! `callID` with `"message":"CALL ENDED"`, on an error reply to the browser's own
//! `verto.invite` (matched by that request's id: the node's own ids come from one
//! process-wide counter and are never keys), or with the socket. Only messages that can
//! matter are parsed, so the relay stays JSON-free for the rest.

use super::cjson::{self, DialogFields};

/// Calls tracked per session: a browser inventing call ids cannot grow the gateway's
/// memory beyond this (mod_verto itself refuses a second call per socket in practice).
pub const MAX_CALLS: usize = 32;

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Browser,
    Node,
}

/// One session's calls.
#[derive(Debug, Default)]
pub struct Calls {
    /// The node's `verto.clientReady` was relayed: FreeSWITCH has offered the detached
    /// calls (`verto.attach` comes before it), so the session may be moved.
    client_ready: bool,
    /// Boxed, and only while a call or an invite is open: an idle session, which is
    /// most of them most of the time, keeps one pointer in its task for this.
    open: Option<Box<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    active: Vec<String>,
    /// The browser's `verto.invite` requests not yet answered: (raw id, callID).
    invites: Vec<(String, String)>,
}

/// The methods that start a call.
const STARTS: [&str; 4] = [
    "verto.invite",
    "verto.answer",
    "verto.attach",
    "verto.media",
];

impl Calls {
    /// Whether a call is in progress.
    pub fn in_progress(&self) -> bool {
        self.count() > 0
    }

    /// How many calls are in progress.
    pub fn count(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.active.len())
    }

    /// Whether the node's `verto.clientReady` was relayed.
    pub fn client_ready(&self) -> bool {
        self.client_ready
    }

    /// The calls in progress, by `callID`.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.open
            .iter()
            .flat_map(|o| o.active.iter().map(String::as_str))
    }

    /// Notes one relayed text message; `true` when it was read (the calls or
    /// `clientReady` may have changed), `false` when the byte test let it pass unread.
    pub fn on_message(&mut self, from: From, text: &str) -> bool {
        if !self.worth_reading(from, text) {
            return false;
        }
        // A message no cJSON reads the same way cannot start or end a call on the node.
        let Ok(objects) = cjson::read_dialog(text) else {
            return false;
        };
        for object in &objects {
            self.on_object(from, object);
        }
        true
    }

    /// The cheap byte test, erring towards parsing: a method naming `verto.` (or any
    /// escape from the browser, which could spell one), a `CALL ENDED` reply, or any node
    /// message while the browser's invite awaits its answer.
    fn worth_reading(&self, from: From, text: &str) -> bool {
        text.contains("\"verto.")
            || text.contains("CALL ENDED")
            || match from {
                From::Browser => text.contains('\\'),
                From::Node => self.open.as_ref().is_some_and(|o| !o.invites.is_empty()),
            }
    }

    fn on_object(&mut self, from: From, o: &DialogFields<'_>) {
        match (o.method.as_str(), o.call_id.as_deref()) {
            (Some(method), Some(call)) if STARTS.contains(&method) => {
                self.start(call);
                if from == From::Browser && method == "verto.invite" {
                    if let Some(id) = o.id {
                        let open = self.open.get_or_insert_with(Box::default);
                        if open.invites.len() < MAX_CALLS {
                            open.invites.push((id.to_owned(), call.to_owned()));
                        }
                    }
                }
            }
            (Some("verto.bye"), Some(call)) => self.end(call),
            (Some("verto.clientReady"), _) if from == From::Node => self.client_ready = true,
            (Some(_), _) => {}
            (None, _) => self.on_reply(from, o),
        }
    }

    fn on_reply(&mut self, from: From, o: &DialogFields<'_>) {
        if o.result_message.as_deref() == Some("CALL ENDED") {
            if let Some(call) = o.result_call_id.as_deref() {
                self.end(call);
            }
        }
        if from != From::Node {
            return;
        }
        let (Some(id), Some(open)) = (o.id, self.open.as_mut()) else {
            return;
        };
        if let Some(at) = open
            .invites
            .iter()
            .position(|(raw, _)| super::same_id(id, raw))
        {
            let (_, call) = open.invites.remove(at);
            if o.is_error {
                self.end(&call);
            }
        }
        self.close_if_idle();
    }

    fn start(&mut self, call: &str) {
        let open = self.open.get_or_insert_with(Box::default);
        if !open.active.iter().any(|c| c == call) && open.active.len() < MAX_CALLS {
            open.active.push(call.to_owned());
        }
    }

    fn end(&mut self, call: &str) {
        if let Some(open) = self.open.as_mut() {
            open.active.retain(|c| c != call);
            open.invites.retain(|(_, c)| c != call);
        }
        self.close_if_idle();
    }

    /// Frees the open calls' memory once none is left.
    fn close_if_idle(&mut self) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.active.is_empty() && o.invites.is_empty())
        {
            self.open = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(id: u64, call: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"verto.invite","params":{{"sdp":"v=0\r\n","dialogParams":{{"callID":"{call}"}}}},"id":{id}}}"#
        )
    }

    fn bye(call: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"verto.bye","params":{{"dialogParams":{{"callID":"{call}"}}}},"id":9}}"#
        )
    }

    #[test]
    fn a_call_starts_with_an_invite_and_ends_with_a_bye_either_way() {
        let mut calls = Calls::default();
        calls.on_message(From::Browser, &invite(3, "a"));
        assert!(calls.in_progress());
        calls.on_message(From::Node, &bye("a"));
        assert!(!calls.in_progress());
        calls.on_message(From::Node, &invite(100, "b").replace("invite", "attach"));
        calls.on_message(From::Browser, &bye("b"));
        assert_eq!(calls.count(), 0);
    }

    #[test]
    fn a_call_ended_reply_ends_its_call() {
        let mut calls = Calls::default();
        calls.on_message(From::Node, &invite(100, "a"));
        calls.on_message(
            From::Node,
            r#"{"jsonrpc":"2.0","id":4,"result":{"callID":"a","message":"CALL ENDED"}}"#,
        );
        assert!(!calls.in_progress());
    }

    #[test]
    fn an_error_answer_to_the_browsers_invite_ends_it_and_a_result_does_not() {
        let mut calls = Calls::default();
        calls.on_message(From::Browser, &invite(3, "a"));
        calls.on_message(
            From::Node,
            r#"{"jsonrpc":"2.0","id":3,"result":{"message":"CALL CREATED","callID":"a"}}"#,
        );
        assert!(calls.in_progress());
        calls.on_message(From::Browser, &invite(4, "b"));
        // The node's own request with the same id number is not the answer.
        calls.on_message(
            From::Node,
            r#"{"jsonrpc":"2.0","id":4,"method":"verto.event","params":{}}"#,
        );
        assert_eq!(calls.count(), 2);
        calls.on_message(
            From::Node,
            r#"{"jsonrpc":"2.0","id":4.0,"error":{"code":-32002,"message":"CALL ERROR"}}"#,
        );
        assert_eq!(
            calls.count(),
            1,
            "the error ends b, matched by the id's value"
        );
    }

    #[test]
    fn escapes_batches_and_key_case_are_read_as_freeswitch_reads_them() {
        let mut calls = Calls::default();
        calls.on_message(
            From::Browser,
            r#"[{"jsonrpc":"2.0","METHOD":"\u0076erto.invite","PARAMS":{"callID":"x"},"id":1}]"#,
        );
        assert!(
            calls.in_progress(),
            "an escaped method in a batch still starts a call"
        );
    }

    #[test]
    fn messages_that_cannot_matter_are_not_parsed_and_the_count_is_bounded() {
        let calls = Calls::default();
        assert!(!calls.worth_reading(From::Browser, r#"{"method":"echo","params":{}}"#));
        assert!(!calls.worth_reading(From::Node, r#"{"id":1,"result":{}}"#));
        let mut calls = Calls::default();
        for i in 0..(MAX_CALLS as u64 + 10) {
            calls.on_message(From::Browser, &invite(i, &format!("c{i}")));
        }
        assert_eq!(calls.count(), MAX_CALLS);
    }
}
