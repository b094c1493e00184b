//! What one browser session carries through its phases (pre-login, then relay): its
//! socket type, its context and the figures its closing log line reports.

use std::sync::Arc;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::close::EndReason;
use super::Gateway;

/// The browser's WebSocket.
pub type BrowserSocket = WebSocketStream<TokioIo<Upgraded>>;

/// What a session needs from its connection.
pub struct SessionCtx {
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// The gateway (router, TLS for nodes, settings).
    pub gateway: Arc<Gateway>,
    /// When TCP was accepted.
    pub accepted: Instant,
    /// Until when a node must have accepted a login.
    pub deadline: Instant,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
}

/// What the session log line reports.
#[derive(Debug, Default)]
pub struct Summary {
    /// The login the session is (or was last trying to be) routed for.
    pub login: Option<String>,
    /// Its partition.
    pub partition: Option<String>,
    /// The node it reached.
    pub node: Option<String>,
    /// Payload bytes browser → node.
    pub bytes_up: u64,
    /// Payload bytes node → browser.
    pub bytes_down: u64,
}

/// Maps a failed browser read to why the session ends: a broken frame is answered with
/// its close code (1002, or 1007 for text that is not UTF-8), never a silent drop.
pub fn browser_read_end(err: Option<WsError>) -> EndReason {
    match err {
        Some(WsError::Capacity(_)) => EndReason::Oversize,
        Some(WsError::Utf8(_)) => EndReason::BrowserInvalidUtf8,
        Some(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
            EndReason::BrowserGone
        }
        Some(WsError::Protocol(_)) => EndReason::BrowserProtocolError,
        _ => EndReason::BrowserGone,
    }
}
