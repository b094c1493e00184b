//! The pre-login state machine: what the gateway does with each browser message until a
//! node has accepted a login. Pure: it decides (reply, route, forward, close) and
//! counts; the session performs the I/O and reports routing outcomes back.
//!
//! Every count is bounded, so whatever a browser sends before login, the gateway's
//! answers and work stay bounded: message size and number, batch length, refused
//! logins, and how many times one socket may be routed.

use super::{
    classify_pre_login, inspect_forwarded, invalid_request, Forwarded, LoginRequest, PreLogin,
};

/// Most elements of a batch before login; a longer batch closes the socket (1008), so
/// the reply to anything sent before login stays bounded.
pub const MAX_PRELOGIN_BATCH: usize = 16;

/// Logins refused before a node accepted one (unroutable, or without a password)
/// before the socket is closed with 1008.
pub const MAX_LOGIN_FAILURES: u32 = 3;

/// How many times one socket may be routed (the first route and 3 re-routes); the
/// next login for another partition closes it with 1008. Retrying the same partition
/// after no node answered is no re-route (outages are not the browser's fault); those
/// retries are bounded by `max_prelogin_messages`.
pub const MAX_ROUTES: u32 = 4;

/// The configurable bounds (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Largest message before login (`max_prelogin_message_bytes`).
    pub max_message_bytes: usize,
    /// Messages before login (`max_prelogin_messages`).
    pub max_messages: usize,
}

/// Why the gateway closes a socket before login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A message above `max_prelogin_message_bytes` (1009).
    TooLarge,
    /// More than `max_prelogin_messages` messages (1008).
    TooManyMessages,
    /// A batch of more than [`MAX_PRELOGIN_BATCH`] elements (1008).
    BatchTooLarge,
    /// A binary frame (1008).
    Binary,
    /// A `#SP` speed-test frame, which mod_verto allows only after login (1008).
    SpeedTest,
    /// [`MAX_LOGIN_FAILURES`] refused logins (1008).
    TooManyFailures,
    /// A login beyond [`MAX_ROUTES`] routes (1008).
    TooManyRoutes,
}

impl Violation {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Violation::TooLarge => 1009,
            _ => 1008,
        }
    }

    /// The close reason the browser reads.
    pub fn reason(self) -> &'static str {
        match self {
            Violation::TooLarge => "message too big before login",
            Violation::TooManyMessages => "too many messages before login",
            Violation::BatchTooLarge => "batch too large before login",
            Violation::Binary => "binary frame before login",
            Violation::SpeedTest => "speed test before login",
            Violation::TooManyFailures => "too many failed logins",
            Violation::TooManyRoutes => "too many logins for other partitions",
        }
    }

    /// A fixed category for logs and metrics.
    pub fn category(self) -> &'static str {
        match self {
            Violation::TooLarge => "prelogin_too_large",
            Violation::TooManyMessages => "prelogin_too_many_messages",
            Violation::BatchTooLarge => "prelogin_batch_too_large",
            Violation::Binary => "prelogin_binary",
            Violation::SpeedTest => "prelogin_speed_test",
            Violation::TooManyFailures => "too_many_failed_logins",
            Violation::TooManyRoutes => "too_many_routes",
        }
    }
}

/// One browser frame before login.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary,
}

/// A login the gateway refused itself: answered, counted, logged.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The answer to the browser (-32001).
    pub reply: String,
    /// The login refused.
    pub login: String,
    /// Why, for the log line: `no_partition`, `missing_passwd`, `cooling_down`.
    pub reason: &'static str,
    /// Set when this was the socket's last allowed refusal: close after the answer.
    pub close: Option<Violation>,
}

/// What the session does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this text to the browser.
    Reply(String),
    /// Refuse a login: answer, count, and maybe close.
    Refuse(Refusal),
    /// Nothing to do.
    Ignore,
    /// Route this login, then report with [`PreLoginState::routed`].
    Route(LoginRequest),
    /// Forward the message to the node holding the pending login.
    Forward,
    /// Connect to the routed partition's node, then forward the login.
    Connect,
    /// Close the browser.
    Close(Violation),
}

/// What routing said about a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed<'a> {
    /// Refused before any node: no partition takes it (`no_partition`) or its address
    /// or login is cooling down (`cooling_down`).
    Refused(&'static str),
    /// It belongs to this partition.
    Partition(&'a str),
}

/// Counters and the partition of the node that holds a pending login.
#[derive(Debug, Clone)]
pub struct PreLoginState {
    bounds: Bounds,
    messages: usize,
    failures: u32,
    routes: u32,
    /// The partition of the last route.
    routed_to: Option<String>,
    /// Whether a node of `routed_to` is connected and holds the pending login.
    pending: bool,
}

impl PreLoginState {
    /// A fresh socket.
    pub fn new(bounds: Bounds) -> PreLoginState {
        PreLoginState {
            bounds,
            messages: 0,
            failures: 0,
            routes: 0,
            routed_to: None,
            pending: false,
        }
    }

    /// How many routes this socket has used.
    pub fn routes(&self) -> u32 {
        self.routes
    }

    /// Decides what to do with one browser frame.
    pub fn on_frame(&mut self, frame: Frame<'_>) -> Step {
        self.messages = self.messages.saturating_add(1);
        let text = match frame {
            Frame::Binary => return Step::Close(Violation::Binary),
            Frame::Text(text) => text,
        };
        if text.len() > self.bounds.max_message_bytes {
            return Step::Close(Violation::TooLarge);
        }
        if self.messages > self.bounds.max_messages {
            return Step::Close(Violation::TooManyMessages);
        }
        if text.starts_with('#') {
            return Step::Close(Violation::SpeedTest);
        }
        if super::batch_len(text).is_some_and(|n| n > MAX_PRELOGIN_BATCH) {
            return Step::Close(Violation::BatchTooLarge);
        }
        if self.pending {
            return self.with_pending_node(text);
        }
        self.classify(text)
    }

    fn classify(&mut self, text: &str) -> Step {
        match classify_pre_login(text) {
            PreLogin::Reply(reply) => Step::Reply(reply),
            PreLogin::Ignore => Step::Ignore,
            PreLogin::MissingPasswd { reply, login } => self.failed(reply, login, "missing_passwd"),
            PreLogin::Login(req) => Step::Route(req),
        }
    }

    /// A node is connected but has not accepted a login yet: it answers everything
    /// itself, except a new login, which is routed afresh. A batch carrying logins is
    /// answered locally, as before any node, so no login reaches a node unrouted.
    fn with_pending_node(&mut self, text: &str) -> Step {
        match inspect_forwarded(text) {
            Forwarded::Plain => Step::Forward,
            Forwarded::Unreadable => Step::Reply(invalid_request()),
            Forwarded::Logins(_) => self.classify(text),
        }
    }

    /// Routing's verdict on the login of the last [`Step::Route`]; `refusal` is the
    /// answer should it be refused.
    pub fn routed(&mut self, verdict: Routed<'_>, login: &str, refusal: String) -> Step {
        match verdict {
            Routed::Refused(reason) => self.failed(refusal, login.to_owned(), reason),
            Routed::Partition(p) if self.routed_to.as_deref() == Some(p) => {
                if self.pending {
                    Step::Forward
                } else {
                    self.pending = true;
                    Step::Connect
                }
            }
            Routed::Partition(p) => {
                if self.routes >= MAX_ROUTES {
                    return Step::Close(Violation::TooManyRoutes);
                }
                self.routes += 1;
                self.routed_to = Some(p.to_owned());
                self.pending = true;
                Step::Connect
            }
        }
    }

    /// The connection for the last [`Step::Connect`] failed: no node holds a login.
    pub fn connect_failed(&mut self) {
        self.pending = false;
    }

    fn failed(&mut self, reply: String, login: String, reason: &'static str) -> Step {
        self.failures += 1;
        let close = (self.failures >= MAX_LOGIN_FAILURES).then_some(Violation::TooManyFailures);
        Step::Refuse(Refusal {
            reply,
            login,
            reason,
            close,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        max_message_bytes: 16384,
        max_messages: 20,
    };

    fn login(user: &str, id: u32) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"{user}","passwd":"p"}},"id":{id}}}"#
        )
    }

    fn route_of(step: Step) -> String {
        match step {
            Step::Route(req) => req.login,
            other => panic!("expected a route, got {other:?}"),
        }
    }

    #[test]
    fn bounds_close_before_anything_is_parsed() {
        let big = format!(r#"{{"jsonrpc":"2.0","pad":"{}"}}"#, "x".repeat(16384));
        let batch = format!("[{}]", vec!["1"; MAX_PRELOGIN_BATCH + 1].join(","));
        let table: [(Frame<'_>, Violation); 4] = [
            (Frame::Text(&big), Violation::TooLarge),
            (Frame::Binary, Violation::Binary),
            (Frame::Text("#SPU 1000"), Violation::SpeedTest),
            (Frame::Text(&batch), Violation::BatchTooLarge),
        ];
        for (frame, want) in table {
            let mut state = PreLoginState::new(BOUNDS);
            assert_eq!(state.on_frame(frame), Step::Close(want), "{frame:?}");
        }
        let mut state = PreLoginState::new(BOUNDS);
        let batch = format!("[{}]", vec!["1"; MAX_PRELOGIN_BATCH].join(","));
        assert!(matches!(
            state.on_frame(Frame::Text(&batch)),
            Step::Reply(_)
        ));
        assert_eq!(Violation::TooLarge.code(), 1009);
        assert_eq!(Violation::BatchTooLarge.code(), 1008);
    }

    #[test]
    fn the_message_after_the_last_allowed_one_closes() {
        let mut state = PreLoginState::new(BOUNDS);
        let ping = r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":1}"#;
        for _ in 0..BOUNDS.max_messages {
            assert!(matches!(state.on_frame(Frame::Text(ping)), Step::Reply(_)));
        }
        assert_eq!(
            state.on_frame(Frame::Text(ping)),
            Step::Close(Violation::TooManyMessages)
        );
    }

    #[test]
    fn the_third_refused_login_is_answered_then_closes() {
        let mut state = PreLoginState::new(BOUNDS);
        let no_pass = r#"{"jsonrpc":"2.0","method":"login","params":{"login":"a@b"},"id":1}"#;
        let Step::Refuse(first) = state.on_frame(Frame::Text(no_pass)) else {
            panic!("a login without a password is refused");
        };
        assert_eq!(
            (first.login.as_str(), first.reason, first.close),
            ("a@b", "missing_passwd", None)
        );
        route_of(state.on_frame(Frame::Text(&login("x@nowhere", 2))));
        assert!(matches!(
            state.routed(Routed::Refused("no_partition"), "x@nowhere", "no".into()),
            Step::Refuse(Refusal { close: None, .. })
        ));
        route_of(state.on_frame(Frame::Text(&login("y@nowhere", 3))));
        assert_eq!(
            state.routed(Routed::Refused("no_partition"), "y@nowhere", "no".into()),
            Step::Refuse(Refusal {
                reply: "no".into(),
                login: "y@nowhere".into(),
                reason: "no_partition",
                close: Some(Violation::TooManyFailures),
            })
        );
    }

    #[test]
    fn a_socket_is_routed_at_most_four_times() {
        let mut state = PreLoginState::new(BOUNDS);
        for (i, partition) in ["a", "b", "a", "b"].iter().enumerate() {
            route_of(state.on_frame(Frame::Text(&login("u@x", 1))));
            assert_eq!(
                state.routed(Routed::Partition(partition), "u@x", String::new()),
                Step::Connect,
                "route {i}"
            );
        }
        // The same partition again is no new route.
        route_of(state.on_frame(Frame::Text(&login("u@x", 1))));
        assert_eq!(
            state.routed(Routed::Partition("b"), "u@x", String::new()),
            Step::Forward
        );
        route_of(state.on_frame(Frame::Text(&login("u@x", 1))));
        assert_eq!(
            state.routed(Routed::Partition("a"), "u@x", String::new()),
            Step::Close(Violation::TooManyRoutes)
        );
        assert_eq!(state.routes(), MAX_ROUTES);
    }

    #[test]
    fn retrying_a_partition_no_node_answered_is_no_new_route() {
        let mut state = PreLoginState::new(BOUNDS);
        for _ in 0..(MAX_ROUTES + 2) {
            route_of(state.on_frame(Frame::Text(&login("u@x", 1))));
            assert_eq!(
                state.routed(Routed::Partition("a"), "u@x", String::new()),
                Step::Connect
            );
            state.connect_failed();
        }
        assert_eq!(state.routes(), 1);
    }

    #[test]
    fn with_a_pending_node_only_logins_are_looked_at() {
        let mut state = PreLoginState::new(BOUNDS);
        route_of(state.on_frame(Frame::Text(&login("u@a", 1))));
        assert_eq!(
            state.routed(Routed::Partition("a"), "u@x", String::new()),
            Step::Connect
        );
        let table = [
            (r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":2}"#.to_owned(), "forward"),
            (r#"{"jsonrpc":"2.0","method":"\u006cogin","params":{"LOGIN":"v@b","passwd":"p"},"id":3}"#.to_owned(), "route v@b"),
            (r#"{"jsonrpc":"2.0","method":"login","params":{"login":"w@b"}"#.to_owned(), "reply"),
            (format!("[{},{}]", login("z@b", 4), login("z@b", 5)), "reply"),
        ];
        for (text, want) in table {
            let got = match state.on_frame(Frame::Text(&text)) {
                Step::Forward => "forward".to_owned(),
                Step::Route(req) => format!("route {}", req.login),
                Step::Reply(_) | Step::Refuse(_) => "reply".to_owned(),
                other => format!("{other:?}"),
            };
            assert_eq!(got, want, "{text}");
        }
        state.connect_failed();
        assert!(matches!(
            state.on_frame(Frame::Text(
                r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":2}"#
            )),
            Step::Reply(_)
        ));
    }
}
