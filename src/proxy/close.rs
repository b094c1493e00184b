//! Why a session ended, what each leg is told, and the close handshake itself.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use super::watchdog::Direction;
use crate::verto::prelogin::Violation;
use crate::websocket::WsStream;

/// How long a leg may take to complete its close handshake before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// RFC 6455 1014: the upstream vanished; clients treat it like any abnormal close and
/// reconnect.
pub const BAD_GATEWAY: u16 = 1014;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The browser sent a close frame (its frame is propagated to the node).
    BrowserClosed(Option<CloseFrame>),
    /// The browser's connection failed or ended without a close frame.
    BrowserGone,
    /// The browser broke the WebSocket protocol (reserved bits or opcodes, an unmasked
    /// or fragmented control frame, a bad close frame, …): close 1002.
    BrowserProtocolError,
    /// The browser sent text (or a close reason) that is not UTF-8: close 1007.
    BrowserInvalidUtf8,
    /// The node sent a close frame (its frame is propagated to the browser).
    NodeClosed(Option<CloseFrame>),
    /// The node's connection failed or ended without a close frame.
    NodeGone,
    /// No login accepted by a node within the login timeout.
    LoginTimeout,
    /// A bound of the pre-login phase was crossed (size, count, batch, binary, `#SP`,
    /// refused logins, routes).
    PreLogin(Violation),
    /// A browser message above `max_message_bytes`.
    Oversize,
    /// A message could not be written for `stall_timeout_ms` (that peer does not read).
    Stalled(Direction),
    /// The browser answered neither the gateway's ping nor anything else.
    PingTimeout,
    /// The gateway is shutting down.
    Shutdown,
    /// Moved to its partition's active node (1012: the client reconnects at once).
    Migrated(super::migrate::MigrationReason),
    /// The operator kicked it (`session.kick`): 1008, after `verto.punt` when `punt`;
    /// the node is told 1001.
    Kicked {
        /// `verto.punt` was asked for.
        punt: bool,
    },
    /// Its node was drained with a deadline, and the deadline passed (1001, calls
    /// included; the node is told 1001 too).
    DrainDeadline,
    /// Health checks found the session's node down (it may still hold the connection
    /// open without answering): the browser gets 1001 and reconnects to the standby,
    /// the node side is dropped.
    NodeDown,
}

/// What one leg is told when the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseAction {
    /// The peer started the close: only flush the reply the stream queued.
    Echo,
    /// Send this close frame and wait (bounded) for the peer to finish.
    Send(Option<CloseFrame>),
    /// The peer is gone: nothing to say.
    Abandon,
}

fn frame(code: u16, reason: &'static str) -> CloseAction {
    CloseAction::Send(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

impl EndReason {
    /// A fixed category for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            EndReason::BrowserClosed(_) => "browser_closed",
            EndReason::BrowserGone => "browser_gone",
            EndReason::BrowserProtocolError => "protocol_error",
            EndReason::BrowserInvalidUtf8 => "invalid_utf8",
            EndReason::NodeClosed(_) => "node_closed",
            EndReason::NodeGone => "node_gone",
            EndReason::LoginTimeout => "login_timeout",
            EndReason::PreLogin(v) => v.category(),
            EndReason::Oversize => "oversize",
            EndReason::Stalled(Direction::Up) => "node_stalled",
            EndReason::Stalled(Direction::Down) => "browser_stalled",
            EndReason::PingTimeout => "ping_timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::NodeDown => "node_down",
            EndReason::Migrated(_) => "migrated",
            EndReason::DrainDeadline => "drain_deadline",
            EndReason::Kicked { .. } => "kicked",
        }
    }

    /// Why the session was moved, when it was (for the session log line).
    pub fn migration(&self) -> Option<&'static str> {
        match self {
            EndReason::Migrated(reason) => Some(reason.as_str()),
            _ => None,
        }
    }

    /// Whether the session ends because its node failed, which ends the node's other
    /// sessions at the same moment (so their closes are spread, see `close_spread_ms`).
    pub fn ends_with_its_node(&self) -> bool {
        matches!(
            self,
            EndReason::NodeGone | EndReason::NodeDown | EndReason::DrainDeadline
        )
    }

    /// Whether a limit or a protocol violation ended the session (as opposed to either
    /// side closing, a node vanishing, a timeout of an honest but slow login, or shutdown).
    pub fn is_violation(&self) -> bool {
        matches!(
            self,
            EndReason::PreLogin(_)
                | EndReason::Oversize
                | EndReason::BrowserProtocolError
                | EndReason::BrowserInvalidUtf8
        )
    }

    /// The close code involved, if any (for the session log line).
    pub fn code(&self) -> Option<u16> {
        let action = match self {
            EndReason::BrowserClosed(f) => return f.as_ref().map(|f| u16::from(f.code)),
            _ => self.browser_action(),
        };
        match action {
            CloseAction::Send(Some(f)) => Some(u16::from(f.code)),
            _ => None,
        }
    }

    /// What the browser is told.
    pub fn browser_action(&self) -> CloseAction {
        match self {
            EndReason::BrowserClosed(_) => CloseAction::Echo,
            EndReason::BrowserGone => CloseAction::Abandon,
            EndReason::BrowserProtocolError => frame(1002, "protocol error"),
            EndReason::BrowserInvalidUtf8 => frame(1007, "invalid UTF-8"),
            EndReason::NodeClosed(f) => CloseAction::Send(f.clone()),
            EndReason::NodeGone => frame(BAD_GATEWAY, "node connection lost"),
            EndReason::LoginTimeout => frame(1008, "login timeout"),
            EndReason::PreLogin(v) => frame(v.code(), v.reason()),
            EndReason::Oversize => frame(1009, "message too big"),
            EndReason::Stalled(_) => frame(1011, "peer not reading"),
            EndReason::PingTimeout => frame(1011, "no answer to ping"),
            EndReason::Shutdown => frame(1001, "gateway shutting down"),
            EndReason::NodeDown => frame(1001, "node down"),
            EndReason::Migrated(_) => frame(1012, "moving to another node"),
            EndReason::DrainDeadline => frame(1001, "node drained"),
            EndReason::Kicked { .. } => frame(1008, "kicked by the operator"),
        }
    }

    /// What the node is told (when one is connected).
    pub fn node_action(&self) -> CloseAction {
        match self {
            EndReason::BrowserClosed(f) => CloseAction::Send(f.clone()),
            EndReason::NodeClosed(_) => CloseAction::Echo,
            EndReason::NodeGone | EndReason::NodeDown => CloseAction::Abandon,
            _ => frame(1001, "going away"),
        }
    }
}

/// Waits a random moment within `window` when `reason` ends many sessions at once (a
/// node failed): thousands of closes made at the same instant queue ahead of every
/// other session's messages on the thread, and the browsers' reconnects then arrive as
/// one storm. A shutdown of the gateway ends the wait.
pub async fn spread(reason: &EndReason, window: Duration, shutdown: &CancellationToken) {
    if let Some(wait) = spread_wait(reason, window) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => {}
        }
    }
}

/// How long [`spread`] waits: uniform in `[0, window)` for a failed node's sessions.
fn spread_wait(reason: &EndReason, window: Duration) -> Option<Duration> {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    (reason.ends_with_its_node() && window_ms > 0)
        .then(|| Duration::from_millis(rand::random_range(0..window_ms)))
}

/// Carries out `action` on one leg, bounded by [`CLOSE_GRACE`].
pub async fn close_leg<S>(mut ws: WsStream<S>, action: CloseAction)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let work = async {
        match action {
            CloseAction::Echo => {
                let _ = ws.flush().await;
                let _ = ws.get_mut().shutdown().await;
            }
            CloseAction::Send(frame) => {
                if ws.close(frame).await.is_ok() {
                    // Half-close right after the close frame: the peer sees our code and
                    // then EOF, so neither side waits for the other to drop TCP first.
                    let _ = ws.get_mut().shutdown().await;
                    drain(ws.get_mut()).await;
                }
            }
            CloseAction::Abandon => {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, work).await;
}

/// Reads and discards until the peer closes TCP. Dropping a socket with unread input
/// makes the kernel send RST, which can destroy the close frame we just sent before
/// the peer reads it (e.g. after refusing an oversized message midway). Raw bytes, not
/// frames: after an oversized frame the stream is not at a frame boundary.
async fn drain<S: AsyncRead + Unpin>(io: &mut S) {
    // On the heap: this runs once per session, and a buffer in the future would sit in
    // every session's task allocation for its whole life.
    let mut buf = vec![0u8; 2048];
    while let Ok(n) = io.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::{spread, spread_wait, EndReason};

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn only_the_sessions_of_a_failed_node_wait_and_within_the_window() {
        for reason in [
            EndReason::BrowserGone,
            EndReason::Shutdown,
            EndReason::Oversize,
            EndReason::Kicked { punt: false },
        ] {
            assert_eq!(spread_wait(&reason, MINUTE), None, "{reason:?}");
        }
        for reason in [
            EndReason::NodeGone,
            EndReason::NodeDown,
            EndReason::DrainDeadline,
        ] {
            assert_eq!(spread_wait(&reason, Duration::ZERO), None, "{reason:?}");
            let waits: Vec<Duration> = (0..200)
                .filter_map(|_| spread_wait(&reason, MINUTE))
                .collect();
            assert_eq!(waits.len(), 200, "{reason:?} always waits");
            assert!(waits.iter().all(|w| *w < MINUTE), "{reason:?}: {waits:?}");
            // Spread, not one fixed delay: 200 draws over 60,000 ms are not all equal.
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "{reason:?}: {waits:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_shutdown_ends_the_wait() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        // The longest window the map allows, and a draw that may be near its end: the
        // call must still return at once.
        let bound = Duration::from_secs(10);
        for _ in 0..20 {
            tokio::time::timeout(bound, spread(&EndReason::NodeDown, MINUTE, &shutdown))
                .await
                .expect("the shutdown ended the wait");
        }
    }
}
