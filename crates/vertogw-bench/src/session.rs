//! One simulated browser: the Verto login sequence, then a workload (open-loop steady,
//! closed loop, idle hold, or one prebuilt request), acknowledging the server's
//! `verto.ping` throughout.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::connect::{Target, Ws};
use super::hist::Recorder;
use super::scan::{scan, Kind, Scan};
use super::ErrorKind;

/// Requests a steady session may have in flight; beyond it, it waits for replies.
pub const MAX_OUTSTANDING: usize = 1024;

/// How long a session waits for its outstanding replies once its load window ends.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// tokio's timer resolution: an open-loop send this late is still on time (1 ms ticks,
/// deadlines rounded up to the next tick and the poller's timeout rounded up again).
pub const TIMER_RESOLUTION: Duration = Duration::from_millis(2);

/// How long closing a socket may take before it is dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What every session of a run shares: where to go and what to say.
pub struct Proto {
    /// The target.
    pub target: Target,
    /// Domain of every login.
    pub domain: String,
    /// Password of every user.
    pub password: String,
    /// Session `i` logs in as `user_start + i`.
    pub user_start: u64,
    /// Makes sessids unique per run.
    pub sessid_seed: u64,
    /// The echo request up to its id: `{…"params":{"pad":"xx…"},"id":`.
    pub request_prefix: Arc<[u8]>,
    /// Bound on TCP + TLS + upgrade + both logins.
    pub login_timeout: Duration,
}

/// Where a session records reply latencies.
#[derive(Clone)]
pub struct Sink {
    /// Intended send time → reply (open loop), or send → reply (closed loop).
    pub rtt: Arc<Recorder>,
    /// Actual send time → reply (steady only).
    pub service: Option<Arc<Recorder>>,
    /// When set, samples are kept only while it is `true` (storm window).
    pub gate: Option<Arc<AtomicBool>>,
}

/// When a session sends during its load window.
pub struct Schedule {
    /// First intended send.
    pub first: Instant,
    /// Time between intended sends (`None`: closed loop).
    pub period: Option<Duration>,
    /// No request is sent at or after this.
    pub end: Instant,
    /// Ends the window early.
    pub stop: CancellationToken,
}

/// What a session's load window produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadOutcome {
    /// Requests sent.
    pub sent: u64,
    /// Replies received.
    pub replies: u64,
    /// Replies that were JSON-RPC errors.
    pub rpc_errors: u64,
    /// Why the session ended early, if it did.
    pub error: Option<ErrorKind>,
}

/// One logged-in session.
pub struct Session {
    ws: Ws,
    index: usize,
    buf: BytesMut,
    next_id: u64,
    /// The real login's request sent → its result received.
    login_request: Duration,
}

struct Pending {
    id: u64,
    intended: Instant,
    sent: Instant,
}

/// Connects and logs in session `index`, bounded by the login timeout.
pub async fn establish(proto: &Proto, index: usize) -> Result<Session, ErrorKind> {
    timeout(proto.login_timeout, login(proto, index))
        .await
        .unwrap_or(Err(ErrorKind::Timeout))
}

async fn login(proto: &Proto, index: usize) -> Result<Session, ErrorKind> {
    let ws = proto.target.connect(index).await?;
    let mut s = Session {
        ws,
        index,
        buf: BytesMut::new(),
        next_id: 3,
        login_request: Duration::ZERO,
    };
    let sessid = format!("{:016x}-bench-{index}", proto.sessid_seed);
    let empty = serde_json::json!({"jsonrpc": "2.0", "method": "login",
        "params": {"sessid": sessid}, "id": 1});
    s.send(Message::text(empty.to_string())).await?;
    let (kind, text) = s.reply_to(1).await?;
    if kind != Kind::Error || !text.contains("-32000") {
        return Err(ErrorKind::LoginRejected);
    }
    let user = format!("{}@{}", proto.user_start + index as u64, proto.domain);
    let login = serde_json::json!({"jsonrpc": "2.0", "method": "login",
        "params": {"login": user, "passwd": proto.password, "sessid": sessid}, "id": 2});
    let sent = Instant::now();
    s.send(Message::text(login.to_string())).await?;
    match s.reply_to(2).await? {
        (Kind::Result, _) => {
            s.login_request = sent.elapsed();
            Ok(s)
        }
        _ => Err(ErrorKind::LoginRejected),
    }
}

impl Session {
    /// How long the login request took, from being sent to its result: through a
    /// gateway, the route, the node connection and the node's answer.
    pub fn login_request(&self) -> Duration {
        self.login_request
    }

    async fn send(&mut self, msg: Message) -> Result<(), ErrorKind> {
        self.ws.send(msg).await.map_err(|_| ErrorKind::Closed)
    }

    /// Sends echo request `id`, reusing the session's buffer.
    async fn send_request(&mut self, prefix: &[u8], id: u64) -> Result<(), ErrorKind> {
        let need = prefix.len() + 24;
        if self.buf.capacity() < need {
            self.buf.reserve(need * 16);
        }
        self.buf.extend_from_slice(prefix);
        let _ = write!(self.buf, "{id}}}");
        let text = self
            .buf
            .split()
            .freeze()
            .try_into()
            .map_err(|_| ErrorKind::Closed)?;
        self.send(Message::Text(text)).await
    }

    /// Handles one incoming frame: replies are returned, server requests acknowledged.
    async fn on_message(
        &mut self,
        msg: Option<Result<Message, WsError>>,
    ) -> Result<Option<(Scan, Message)>, ErrorKind> {
        let msg = match msg {
            Some(Ok(m)) => m,
            Some(Err(_)) | None => return Err(ErrorKind::Closed),
        };
        let scanned = match &msg {
            Message::Text(t) => scan(t.as_bytes()),
            Message::Close(_) => return Err(ErrorKind::Closed),
            _ => return Ok(None),
        };
        if scanned.kind != Kind::Request {
            return Ok(Some((scanned, msg)));
        }
        if let (Some(id), Message::Text(t)) = (scanned.id, &msg) {
            if t.contains("\"verto.ping\"") {
                let ack =
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"method":"verto.ping"}}}}"#);
                self.send(Message::text(ack)).await?;
            }
        }
        Ok(None)
    }

    /// Reads until the reply to `id` arrives (the caller bounds the time).
    async fn reply_to(&mut self, id: u64) -> Result<(Kind, String), ErrorKind> {
        let (kind, m) = self.reply_message(id).await?;
        Ok((
            kind,
            m.into_text().map(|t| t.to_string()).unwrap_or_default(),
        ))
    }

    async fn reply_message(&mut self, id: u64) -> Result<(Kind, Message), ErrorKind> {
        loop {
            let msg = self.ws.next().await;
            if let Some((s, m)) = self.on_message(msg).await? {
                if s.id == Some(id) {
                    return Ok((s.kind, m));
                }
            }
        }
    }

    /// Sends a prebuilt text message (shared, not copied: a clone of `text` is cheap).
    pub async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), ErrorKind> {
        self.send(Message::Text(text)).await
    }

    /// Reads until the reply to `id` arrives and returns its kind and size in bytes,
    /// dropping its text (the caller bounds the time).
    pub async fn reply_size(&mut self, id: u64) -> Result<(Kind, usize), ErrorKind> {
        let (kind, m) = self.reply_message(id).await?;
        Ok((kind, m.len()))
    }

    /// Stays connected, acknowledging pings, until `until` fires; `Ok(None)` when the
    /// future resolved to `None` or the socket is to be closed.
    pub async fn idle_until<F, T>(&mut self, until: F) -> Result<T, ErrorKind>
    where
        F: std::future::Future<Output = T>,
    {
        tokio::pin!(until);
        loop {
            tokio::select! {
                biased;
                value = &mut until => return Ok(value),
                msg = self.ws.next() => { self.on_message(msg).await?; }
            }
        }
    }

    /// Stays connected, acknowledging pings, until the socket ends or `stop` fires.
    /// Each `verto.clientReady` hands its `sim_node` (the simulated node's name, when
    /// the node sends one) to `on_ready`, so a run can tell which node took the login.
    pub async fn idle_until_closed<F>(&mut self, stop: &CancellationToken, mut on_ready: F) -> Ended
    where
        F: FnMut(Option<String>),
    {
        loop {
            let msg = tokio::select! {
                biased;
                () = stop.cancelled() => return Ended::Stopped,
                msg = self.ws.next() => msg,
            };
            let text = match msg {
                Some(Ok(Message::Close(frame))) => {
                    // The code as sent (tungstenite turns codes it does not know, such
                    // as 1014, into 1002); no code in the frame is 1005, as a
                    // browser's CloseEvent reports it.
                    let seen = frame.map_or(1005, |f| u16::from(f.code));
                    return Ended::Closed(Some(self.ws.get_ref().close_code().unwrap_or(seen)));
                }
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                // A close frame may have come before the break (see the tap).
                Some(Err(_)) | None => return Ended::Closed(self.ws.get_ref().close_code()),
            };
            if text.contains("\"verto.clientReady\"") {
                on_ready(sim_node(&text));
            }
            if self
                .on_message(Some(Ok(Message::Text(text))))
                .await
                .is_err()
            {
                return Ended::Closed(None);
            }
        }
    }

    /// Runs the load window of `plan`: open loop with a period, else closed loop.
    pub async fn run(&mut self, plan: &Schedule, prefix: &[u8], sink: &Sink) -> LoadOutcome {
        let mut out = LoadOutcome::default();
        let mut pending = VecDeque::with_capacity(16);
        let result = self.load(plan, prefix, sink, &mut pending, &mut out).await;
        if let Err(kind) = result {
            out.error = Some(kind);
            return out;
        }
        let drained = timeout(DRAIN_TIMEOUT, async {
            while !pending.is_empty() {
                let msg = self.ws.next().await;
                if let Some((s, _)) = self.on_message(msg).await? {
                    settle(self.index, s, &mut pending, sink, &mut out);
                }
            }
            Ok(())
        })
        .await;
        out.error = match drained {
            Ok(Ok(())) => None,
            Ok(Err(kind)) => Some(kind),
            Err(_) => Some(ErrorKind::Timeout),
        };
        out
    }

    async fn load(
        &mut self,
        plan: &Schedule,
        prefix: &[u8],
        sink: &Sink,
        pending: &mut VecDeque<Pending>,
        out: &mut LoadOutcome,
    ) -> Result<(), ErrorKind> {
        let mut next = plan.first;
        let timer = sleep_until(next);
        let end = sleep_until(plan.end);
        let stopped = plan.stop.cancelled();
        tokio::pin!(timer, end, stopped);
        let open_loop = plan.period.is_some();
        if !open_loop {
            // Closed loop: the first request now, each next one as soon as its
            // predecessor's reply is in (no timer on the hot path).
            self.send_next(prefix, Instant::now(), pending, out).await?;
        }
        loop {
            let room = open_loop && pending.len() < MAX_OUTSTANDING;
            tokio::select! {
                biased;
                msg = self.ws.next() => {
                    if let Some((s, _)) = self.on_message(msg).await? {
                        settle(self.index, s, pending, sink, out);
                        if !open_loop && pending.is_empty() {
                            let now = Instant::now();
                            if now >= plan.end || plan.stop.is_cancelled() {
                                return Ok(());
                            }
                            self.send_next(prefix, now, pending, out).await?;
                        }
                    }
                }
                () = &mut timer, if room => {
                    if Instant::now() >= plan.end {
                        return Ok(());
                    }
                    self.send_next(prefix, next, pending, out).await?;
                    next += plan.period.unwrap_or_default();
                    timer.as_mut().reset(next);
                }
                () = &mut end => return Ok(()),
                () = &mut stopped => return Ok(()),
            }
        }
    }

    /// Sends the next request; `intended` is its slot in the schedule.
    async fn send_next(
        &mut self,
        prefix: &[u8],
        intended: Instant,
        pending: &mut VecDeque<Pending>,
        out: &mut LoadOutcome,
    ) -> Result<(), ErrorKind> {
        let id = self.next_id;
        self.next_id += 1;
        let sent = Instant::now();
        self.send_request(prefix, id).await?;
        // Sends within the timer's resolution of their slot are on time; lateness
        // beyond it is charged to the RTT (coordinated-omission correction).
        let intended = sent.min(intended + TIMER_RESOLUTION);
        pending.push_back(Pending { id, intended, sent });
        out.sent += 1;
        Ok(())
    }

    /// Sends a close frame (bounded) and drops the socket.
    pub async fn close(mut self) {
        let _ = timeout(CLOSE_TIMEOUT, self.ws.close(None)).await;
    }
}

/// How [`Session::idle_until_closed`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The socket ended: the close frame's code, or `None` when it broke without one
    /// (what a browser reports as 1006).
    Closed(Option<u16>),
    /// The caller stopped the wait; the socket is still open.
    Stopped,
}

/// The `sim_node` parameter of a `verto.clientReady` text (`None` for a real node,
/// which does not send one, or an unparsable message).
pub fn sim_node(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(v.get("params")?.get("sim_node")?.as_str()?.to_owned())
}

/// Matches a reply to its request and records the latencies.
fn settle(
    index: usize,
    reply: Scan,
    pending: &mut VecDeque<Pending>,
    sink: &Sink,
    out: &mut LoadOutcome,
) {
    let Some(id) = reply.id else { return };
    let Some(pos) = pending.iter().position(|p| p.id == id) else {
        return;
    };
    let Some(p) = pending.remove(pos) else { return };
    out.replies += 1;
    if reply.kind == Kind::Error {
        out.rpc_errors += 1;
    }
    if sink
        .gate
        .as_ref()
        .is_some_and(|g| !g.load(Ordering::Relaxed))
    {
        return;
    }
    let now = Instant::now();
    sink.rtt
        .record(index, now.saturating_duration_since(p.intended));
    if let Some(service) = &sink.service {
        service.record(index, now.saturating_duration_since(p.sent));
    }
}
