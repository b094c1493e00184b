//! Why a session ended, what each leg is told, and the close handshake itself.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::WebSocketStream;

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
    /// The node sent a close frame (its frame is propagated to the browser).
    NodeClosed(Option<CloseFrame>),
    /// The node's connection failed or ended without a close frame.
    NodeGone,
    /// No login accepted by a node within the login timeout.
    LoginTimeout,
    /// Too many logins the gateway could not route.
    TooManyFailures,
    /// Something the protocol does not allow before login (binary, `#SP` frames).
    PreLoginViolation(&'static str),
    /// A browser message above `max_message_bytes`.
    Oversize,
    /// The gateway is shutting down.
    Shutdown,
}

/// What one leg is told when the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseAction {
    /// The peer started the close: only flush the reply tungstenite queued.
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
            EndReason::NodeClosed(_) => "node_closed",
            EndReason::NodeGone => "node_gone",
            EndReason::LoginTimeout => "login_timeout",
            EndReason::TooManyFailures => "no_partition",
            EndReason::PreLoginViolation(_) => "pre_login_violation",
            EndReason::Oversize => "oversize",
            EndReason::Shutdown => "shutdown",
        }
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
            EndReason::NodeClosed(f) => CloseAction::Send(f.clone()),
            EndReason::NodeGone => frame(BAD_GATEWAY, "node connection lost"),
            EndReason::LoginTimeout => frame(1008, "login timeout"),
            EndReason::TooManyFailures => frame(1008, "too many failed logins"),
            EndReason::PreLoginViolation(why) => frame(1008, why),
            EndReason::Oversize => frame(1009, "message too big"),
            EndReason::Shutdown => frame(1001, "gateway shutting down"),
        }
    }

    /// What the node is told (when one is connected).
    pub fn node_action(&self) -> CloseAction {
        match self {
            EndReason::BrowserClosed(f) => CloseAction::Send(f.clone()),
            EndReason::NodeClosed(_) => CloseAction::Echo,
            EndReason::NodeGone => CloseAction::Abandon,
            _ => frame(1001, "going away"),
        }
    }
}

/// Carries out `action` on one leg, bounded by [`CLOSE_GRACE`].
pub async fn close_leg<S>(mut ws: WebSocketStream<S>, action: CloseAction)
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
