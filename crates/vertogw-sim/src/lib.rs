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
//! Calls are signalling only, but with SDP a browser's `RTCPeerConnection` accepts: a
//! browser's offer is answered from its own m-lines (opus, else PCMU/PCMA; other
//! m-lines rejected with port 0), and the node's offers carry its own ICE credentials
//! and the fingerprint of a certificate generated at start. No media flows. The node
//! also places calls ([`SimNode::call`], capture 11), hangs them up
//! ([`SimNode::hangup`]), keeps answered calls of a socket that went away for
//! [`SimConfig::detach_timeout`] and offers them again with `verto.attach` when the
//! same sessid logs in (captures 10 and 13), and records DTMF
//! ([`SimStats::dtmf_digits`]).
//!
//! Dial rule: a `verto.invite` to [`CALLBACK_DESTINATION`] (`callback`) is answered;
//! [`SimConfig::callback_delay`] later the node hangs it up (`verto.bye`,
//! `NORMAL_CLEARING`) and calls the caller's session back with a `verto.invite`.
//! Every other destination is answered and stays up until someone hangs up.
//!
//! Where the simulator differs from FreeSWITCH on purpose: a call counts as answered
//! once the node sent `verto.answer` (FreeSWITCH also waits for DTLS, so the fake-SDP
//! call of capture 06b is hung up there but detached here); an offer that is not SDP
//! is answered with the fixed SDP of capture 06 instead of `verto.bye` 88; every
//! destination has a route.
//!
//! Layout: `node` (accept loop, detach sweeper, [`SimNode`] handle) → `conn` (one
//! socket's I/O) → `session` (its JSON-RPC state machine, no I/O) → `auth`, `methods`
//! and `dialog` (the per-call methods a browser sends); `outbound` is what the node
//! sends about calls on its own (timed answers, the callback rule, re-offers, calls it
//! places); `calls` is the node-wide call table (pure), `sdp` reads and writes SDP
//! (pure), `media` holds the node's fingerprint, ICE credentials and ports;
//! `handshake` and `frame` are the WebSocket layer, `shared` the node-wide state,
//! `users` the directory, `json` an order-preserving JSON value.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod auth;
mod calls;
mod conn;
mod dialog;
mod frame;
mod handshake;
mod json;
mod media;
mod methods;
mod node;
mod outbound;
mod sdp;
mod session;
mod shared;
mod speed;
mod stats;
mod stream;
mod users;

#[cfg(test)]
mod tests;

pub use calls::{SimCall, SimCallState};
pub use frame::MAX_MESSAGE_BYTES;
pub use handshake::{HANDSHAKE_TIMEOUT, MAX_HEAD_BYTES};
pub use node::{SimNode, SHUTDOWN_GRACE};
pub use outbound::{CallerId, CALLBACK_DESTINATION};
pub use shared::{MAX_MISSED, OUTBOUND_QUEUE};
pub use speed::{ECHO_REPEATS, MAX_SPEED_TEST_BYTES};
pub use stats::{
    SimStats, CLOSE_CODES_KEPT, DTMF_DIGITS_KEPT, RECEIVED_LOG_BYTES, RECEIVED_LOG_MESSAGES,
};
pub use users::{SimUsers, UsersError, UsersFile, DEFAULT_ALLOWED_METHODS};

/// Default delay between the first successful login and `verto.clientReady`.
pub const DEFAULT_CLIENT_READY_DELAY: Duration = Duration::from_millis(100);

/// Default inbound idle time after which the node sends a JSON-RPC `verto.ping`.
pub const DEFAULT_IDLE_PING: Duration = Duration::from_secs(30);

/// Default delay between `CALL CREATED` and the node's `verto.answer`.
pub const DEFAULT_ANSWER_DELAY: Duration = Duration::from_millis(50);

/// Default time an answered call outlives its socket, waiting for the same sessid to
/// log in again (`detach-timeout-sec`, 120 s on a real node).
pub const DEFAULT_DETACH_TIMEOUT: Duration = Duration::from_secs(120);

/// Default delay between answering a call to [`CALLBACK_DESTINATION`] and hanging it up
/// to call back.
pub const DEFAULT_CALLBACK_DELAY: Duration = Duration::from_secs(2);

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
    /// How long answered calls of a socket that went away are kept for a new socket
    /// with the same sessid (default 120 s).
    pub detach_timeout: Duration,
    /// Answer of a call to [`CALLBACK_DESTINATION`] → the node's `verto.bye` and
    /// call-back `verto.invite` (default 2 s).
    pub callback_delay: Duration,
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
            detach_timeout: DEFAULT_DETACH_TIMEOUT,
            callback_delay: DEFAULT_CALLBACK_DELAY,
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
