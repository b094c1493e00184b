//! What one browser session carries through its phases (pre-login, then relay): its
//! socket type, its context and the figures its closing log line reports.

use std::sync::Arc;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::close::EndReason;
use super::Gateway;
use crate::websocket::{Error as WsError, WsStream};

/// The browser's WebSocket.
pub type BrowserSocket = WsStream<TokioIo<Upgraded>>;

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
    /// Calls still in progress when the relay ended.
    pub calls: usize,
}

/// Maps a failed browser read to why the session ends: a broken frame is answered with
/// its close code (1002, or 1007 for text that is not UTF-8), never a silent drop.
pub fn browser_read_end(err: Option<WsError>) -> EndReason {
    match err {
        Some(WsError::TooBig { .. }) => EndReason::Oversize,
        Some(WsError::Utf8) => EndReason::BrowserInvalidUtf8,
        Some(WsError::Protocol(_)) => EndReason::BrowserProtocolError,
        Some(WsError::Io(_) | WsError::Closed) | None => EndReason::BrowserGone,
    }
}
