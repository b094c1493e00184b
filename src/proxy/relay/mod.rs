//! The relay pump after login: whole frames flow both ways as they came
//! ([`WsStream::poll_relay`](crate::websocket::WsStream::poll_relay): no reassembly, no
//! re-masking, no allocation per message). Browser text passes the session's
//! [`SessionPolicy`] (which refuses logins for other partitions) first; the relay itself
//! makes no routing decision. What the frame relay hands back (a message the policy
//! stopped, a fragmented message reassembled, a close) goes through the pump's slots.
//!
//! Backpressure policy: nothing is queued between the legs. Each direction holds at most
//! one read's worth of frames (or one message) in flight and reads again only once that
//! was handed to the other leg's socket, so a slow reader stalls its own sender (through
//! TCP flow control) and never grows the gateway's memory beyond that per direction.
//! The two directions progress independently, so a peer blocked on writing can never
//! deadlock the other direction.
//!
//! The pump is one hand-written future over both sockets rather than two tasks or
//! split halves: an idle session then holds no locks, channels or second copies of
//! its sockets, which is most of what a session costs (docs/performance.md).
//!
//! Time bounds ([`Watchdog`], one timer per session): a message that cannot be
//! written for `stall_timeout_ms` ends the session (a peer that stopped reading must
//! not hold its session, and its FreeSWITCH thread, forever); a browser silent for
//! `browser_ping_ms` is pinged, and one that stays silent as long again is gone. Both
//! close the browser with 1011 and the node with 1001, so FreeSWITCH detaches calls
//! promptly. Nodes are never pinged (mod_verto answers pings with JSON errors).
//!
//! A session whose node the health checks find down ends at once (1001 to the browser):
//! a node that stopped answering may still hold its TCP connection open.
//!
//! Calls: every relayed text passes [`Calls`], which parses only the few messages that
//! can start or end a call, so the session knows whether moving it would cut one. The
//! gateway's own answers and pings go to the browser before any more of the node's
//! frames.
//!
//! Fairness: the pump moves at most [`MESSAGES_PER_POLL`] messages per poll, then yields,
//! so one busy session cannot hold its shard's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Message;

use super::close::EndReason;
use super::context::{BrowserSocket, SessionCtx, Summary};
use super::counters::Counters;
use super::policy::SessionPolicy;
use super::registry::{Ending, Live};
use super::upstream::NodeSocket;
use super::watchdog::{Alarm, Direction, Watchdog};
use crate::verto::calls::Calls;
use crate::websocket::Error as WsError;

mod legs;

/// Messages the pump moves in one poll before it yields to the other sessions of its
/// thread.
pub const MESSAGES_PER_POLL: usize = 64;

/// What the gateway's keepalive ping carries.
const PING_PAYLOAD: &[u8] = b"vertogw";

/// Relays until either side ends or the gateway shuts down; returns why.
pub async fn run(
    browser: &mut BrowserSocket,
    node: &mut NodeSocket,
    ctx: &SessionCtx,
    policy: &SessionPolicy,
    summary: &mut Summary,
    live: Option<&Arc<Live>>,
) -> EndReason {
    let settings = ctx.gateway.settings();
    // The node accepted the login: from now on the session's own message limit.
    browser.set_max_message(settings.max_message_bytes);
    let watch = Watchdog::new(
        settings.browser_ping,
        settings.stall_timeout,
        Instant::now(),
    );
    let mut pump = Pump {
        timer: Box::pin(tokio::time::sleep_until(watch.next_deadline())),
        watch,
        browser,
        node,
        policy,
        to_node: None,
        to_browser: None,
        local: None,
        flush_node: false,
        flush_browser: false,
        bytes_up: 0,
        bytes_down: 0,
        calls: Calls::default(),
        live: None,
        counters: ctx.gateway.counters(),
    };
    pump.live = live.cloned();
    let reason = tokio::select! {
        r = &mut pump => r,
        _ = ctx.shutdown.cancelled() => EndReason::Shutdown,
    };
    summary.bytes_up += pump.bytes_up;
    summary.bytes_down += pump.bytes_down;
    summary.calls = pump.calls.count();
    drop(pump);
    if matches!(reason, EndReason::Kicked { punt: true }) {
        // Boxed: the send and its timer take room in the session's future only when a
        // session is punted, not for the hours every session relays.
        Box::pin(punt(browser)).await;
    }
    reason
}

/// Sends `verto.punt`, as FreeSWITCH punts a socket: the client then closes without
/// reconnecting. Bounded by [`PUNT_GRACE`].
async fn punt(browser: &mut BrowserSocket) {
    let id = PUNT_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let text = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"verto.punt","params":{{}}}}"#);
    let _ = tokio::time::timeout(PUNT_GRACE, browser.send(Message::text(text))).await;
}

/// Ids of the gateway's own `verto.punt` requests: one process-wide counter, like the
/// node's own request ids, so none repeats on a socket.
static PUNT_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 32);

/// How long the `verto.punt` before a kick may take to write.
const PUNT_GRACE: Duration = Duration::from_secs(1);

/// Both directions of one session.
struct Pump<'a> {
    browser: &'a mut BrowserSocket,
    node: &'a mut NodeSocket,
    policy: &'a SessionPolicy,
    watch: Watchdog,
    /// Fires at the watchdog's next deadline (re-armed lazily: it may fire early).
    timer: Pin<Box<Sleep>>,
    /// A browser message waiting for the node's socket.
    to_node: Option<Message>,
    /// A node message waiting for the browser's socket.
    to_browser: Option<Message>,
    /// The gateway's own answer waiting for the browser's socket.
    local: Option<Message>,
    flush_node: bool,
    flush_browser: bool,
    bytes_up: u64,
    bytes_down: u64,
    /// The calls in progress, from what was relayed both ways.
    calls: Calls,
    /// The session's registry entry, told about calls and `verto.clientReady`.
    live: Option<Arc<Live>>,
    counters: &'a Counters,
}

/// Hands `slot`'s message to `sink` and flushes; `Err(())` when the sink failed.
fn deliver<S>(
    sink: &mut S,
    slot: &mut Option<Message>,
    flush: &mut bool,
    cx: &mut Context<'_>,
    progress: &mut bool,
) -> Result<(), ()>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    if slot.is_some() {
        match Pin::new(&mut *sink).poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                if let Some(msg) = slot.take() {
                    Pin::new(&mut *sink).start_send(msg).map_err(|_| ())?;
                    *flush = true;
                    *progress = true;
                }
            }
            Poll::Ready(Err(_)) => return Err(()),
            Poll::Pending => {}
        }
    }
    if *flush {
        match Pin::new(&mut *sink).poll_flush(cx) {
            Poll::Ready(Ok(())) => *flush = false,
            Poll::Ready(Err(_)) => return Err(()),
            Poll::Pending => {}
        }
    }
    Ok(())
}

impl Future for Pump<'_> {
    type Output = EndReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<EndReason> {
        let this = &mut *self;
        // Told to end (node down, moved, kicked): checked on every poll, with the
        // task's own waker registered, so no separate future waits for it.
        if let Some(live) = &this.live {
            if let Poll::Ready(ending) = live.poll_ended(cx) {
                return Poll::Ready(match ending {
                    Ending::NodeDown => EndReason::NodeDown,
                    Ending::DrainDeadline => EndReason::DrainDeadline,
                    Ending::Moved(reason) => EndReason::Migrated(reason),
                    Ending::Kicked { punt } => EndReason::Kicked { punt },
                });
            }
        }
        let mut moved = 0;
        loop {
            let mut progress = false;
            if deliver(
                this.node,
                &mut this.to_node,
                &mut this.flush_node,
                cx,
                &mut progress,
            )
            .is_err()
            {
                return Poll::Ready(EndReason::NodeGone);
            }
            // The gateway's own answers (and pings) go first, then the node's messages.
            let slot = if this.local.is_some() {
                &mut this.local
            } else {
                &mut this.to_browser
            };
            if deliver(
                this.browser,
                slot,
                &mut this.flush_browser,
                cx,
                &mut progress,
            )
            .is_err()
            {
                return Poll::Ready(EndReason::BrowserGone);
            }
            if moved >= MESSAGES_PER_POLL {
                // Explicit fairness: come back after the thread's other sessions.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if this.to_node.is_none() && this.local.is_none() {
                match this.relay_up(cx) {
                    Poll::Ready(Ok(n)) => (progress, moved) = (true, moved + n),
                    Poll::Ready(Err(reason)) => return Poll::Ready(reason),
                    Poll::Pending => {}
                }
            }
            if this.to_browser.is_none() && this.local.is_none() {
                match this.relay_down(cx) {
                    Poll::Ready(Ok(n)) => (progress, moved) = (true, moved + n),
                    Poll::Ready(Err(reason)) => return Poll::Ready(reason),
                    Poll::Pending => {}
                }
            }
            if progress {
                continue;
            }
            match this.poll_clock(cx) {
                Poll::Ready(Some(reason)) => return Poll::Ready(reason),
                // A ping was queued: deliver it.
                Poll::Ready(None) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Pump<'_> {
    /// Notes which directions wait on a peer, then sees to the timer: `Ready(Some)` ends
    /// the session, `Ready(None)` queued a ping, `Pending` armed the timer.
    fn poll_clock(&mut self, cx: &mut Context<'_>) -> Poll<Option<EndReason>> {
        let up_blocked = self.to_node.is_some() || self.flush_node;
        let down_blocked = self.local.is_some() || self.to_browser.is_some() || self.flush_browser;
        // The clock is read only when a direction's state changes: a session that goes
        // idle after every message (most of them) then reads it once per browser
        // message, not twice.
        for (direction, blocked) in [(Direction::Up, up_blocked), (Direction::Down, down_blocked)] {
            if self.watch.is_blocked(direction) != blocked {
                self.watch.blocked(direction, blocked, Instant::now());
            }
        }
        loop {
            let deadline = self.watch.next_deadline();
            if deadline < self.timer.deadline() {
                self.timer.as_mut().reset(deadline);
            }
            ready!(self.timer.as_mut().poll(cx));
            let now = Instant::now();
            match self.watch.check(now) {
                Some(Alarm::Stalled(direction)) => {
                    return Poll::Ready(Some(EndReason::Stalled(direction)))
                }
                Some(Alarm::PongMissing) => return Poll::Ready(Some(EndReason::PingTimeout)),
                Some(Alarm::Ping) if self.local.is_none() => {
                    self.local = Some(Message::Ping(PING_PAYLOAD.into()));
                    self.watch.pinged(now);
                    self.timer.as_mut().reset(self.watch.next_deadline());
                    return Poll::Ready(None);
                }
                // Not due (the browser spoke since), or the ping must wait for the
                // gateway's own answer to go out first: re-arm and poll again.
                _ => {
                    let next = self
                        .watch
                        .next_deadline()
                        .max(now + Duration::from_millis(10));
                    self.timer.as_mut().reset(next);
                }
            }
        }
    }
}
