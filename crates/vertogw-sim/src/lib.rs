//! vertogw-sim: a simulated FreeSWITCH mod_verto node that behaves like the real one on
//! the wire, so the gateway can be demonstrated, tested and benchmarked without FreeSWITCH.
//!
//! Reproduces FreeSWITCH HEAD (`cc93a683ca`, libks 2.0.11) with `userauth` on,
//! `blind-reg` off and optional `force-register-domain`, as captured in
//! the project's reference transcripts (`shared/verto/transcripts`): libks' handshake and framing quirks (no pongs,
//! ping payloads parsed as JSON-RPC, 999,999-byte limit, close 1000 for everything),
//! the exact auth error matrix, `sessid` injection, node-global server request ids,
//! `verto.clientReady`, punt / "Session in use", the 30 s JSON-RPC keepalive and the
//! `#SP` speed test.
//!
//! Layout: `node` (accept loop, [`SimNode`] handle) → `conn` (one socket's I/O) →
//! `session` (its JSON-RPC state machine, no I/O) → `auth` and `methods`;
//! `handshake` and `frame` are the WebSocket layer, `shared` the node-wide state,
//! `users` the directory, `json` an order-preserving JSON value.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod auth;
mod conn;
mod frame;
mod handshake;
mod json;
mod methods;
mod node;
mod session;
mod shared;
mod speed;
mod stats;
mod stream;
mod users;

#[cfg(test)]
mod tests;

pub use frame::MAX_MESSAGE_BYTES;
pub use handshake::{HANDSHAKE_TIMEOUT, MAX_HEAD_BYTES};
pub use node::{SimNode, SHUTDOWN_GRACE};
pub use shared::{MAX_MISSED, OUTBOUND_QUEUE};
pub use speed::{ECHO_REPEATS, MAX_SPEED_TEST_BYTES};
pub use stats::{SimStats, CLOSE_CODES_KEPT, RECEIVED_LOG_BYTES, RECEIVED_LOG_MESSAGES};
pub use users::{SimUsers, UsersError, UsersFile, DEFAULT_ALLOWED_METHODS};

/// Default delay between the first successful login and `verto.clientReady`.
pub const DEFAULT_CLIENT_READY_DELAY: Duration = Duration::from_millis(100);

/// Default inbound idle time after which the node sends a JSON-RPC `verto.ping`.
pub const DEFAULT_IDLE_PING: Duration = Duration::from_secs(30);

/// Default delay between `CALL CREATED` and the node's `verto.answer`.
pub const DEFAULT_ANSWER_DELAY: Duration = Duration::from_millis(50);

/// How a simulated node behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Node name, reported as `sim_node` in `verto.clientReady` and in logs.
    pub name: String,
    /// The user directory.
    pub users: SimUsers,
    /// `force-register-domain`: replaces the domain of every login.
    pub force_domain: Option<String>,
    /// Serve `wss://` with this config instead of `ws://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// First successful login → `verto.clientReady` (default 100 ms).
    pub client_ready_delay: Duration,
    /// Inbound idle time → `verto.ping` (default 30 s).
    pub idle_ping: Duration,
    /// `verto.invite` → `verto.answer` (default 50 ms).
    pub answer_delay: Duration,
}

impl SimConfig {
    /// A plain `ws://` node with the real node's timings and no forced domain.
    pub fn new(name: impl Into<String>, users: SimUsers) -> SimConfig {
        SimConfig {
            name: name.into(),
            users,
            force_domain: None,
            tls: None,
            client_ready_delay: DEFAULT_CLIENT_READY_DELAY,
            idle_ping: DEFAULT_IDLE_PING,
            answer_delay: DEFAULT_ANSWER_DELAY,
        }
    }

    /// A node configured from a users file (its users and `force_domain`).
    pub fn from_users_file(name: impl Into<String>, path: &Path) -> Result<SimConfig, UsersError> {
        let file = UsersFile::load(path)?;
        Ok(SimConfig::new(name, file.users).with_force_domain(file.force_domain))
    }

    /// Sets or clears `force-register-domain`.
    pub fn with_force_domain(mut self, domain: Option<String>) -> SimConfig {
        self.force_domain = domain;
        self
    }

    /// Serves `wss://` with `tls`.
    pub fn with_tls(mut self, tls: Arc<rustls::ServerConfig>) -> SimConfig {
        self.tls = Some(tls);
        self
    }
}
