//! One active health probe: the way a login reaches a node (fresh TCP connect, TLS for
//! `wss://`, WebSocket upgrade), then an anonymous Verto `login` that the node must
//! answer, then close 1000.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::config::{Config, NodeUrl};
use crate::proxy::{connect_node, ConnectError};

/// What a probe sends once upgraded: a login without credentials. mod_verto answers it
/// `-32000 "Authentication Required"` without looking anything up; a profile without
/// auth answers with a `result`. Either proves the node's accept path and event loop.
pub const PROBE_LOGIN: &str = r#"{"jsonrpc":"2.0","method":"login","params":{},"id":1}"#;

/// The error code of mod_verto's "Authentication Required", a successful probe's answer.
pub const AUTH_REQUIRED: i64 = -32000;

/// Largest message a probe reads: the reply is under 200 bytes, and a node (or
/// something else on its port) must not make a probe buffer megabytes.
pub const PROBE_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TCP connect failed (refused, unreachable, no such host).
    #[error("tcp connect: {0}")]
    Refused(std::io::Error),
    /// The TLS handshake failed (certificate not trusted, wrong name, not TLS) or the
    /// host is no TLS server name.
    #[error("{0}")]
    Tls(String),
    /// The WebSocket upgrade failed: not a `101`, a wrong accept key, a closed socket.
    #[error("{0}")]
    Handshake(String),
    /// The whole probe, connect included, took longer than this.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node answered, but not with a reply to the probe's login.
    #[error("bad reply: {0}")]
    BadReply(String),
}

impl ProbeError {
    /// Whether the gateway itself failed, not the node: it is out of file descriptors
    /// and could not even open the socket. Such a result says nothing about the node
    /// (and counting it would take every node down, and end every session, exactly
    /// when a connection flood exhausts the descriptors).
    pub fn is_local(&self) -> bool {
        matches!(self, ProbeError::Refused(e) if crate::proxy::is_out_of_descriptors(e))
    }

    /// A fixed category for logs and metrics: `refused`, `tls`, `handshake`, `timeout`
    /// or `bad_reply`.
    pub fn category(&self) -> &'static str {
        match self {
            ProbeError::Refused(_) => "refused",
            ProbeError::Tls(_) => "tls",
            ProbeError::Handshake(_) => "handshake",
            ProbeError::Timeout(_) => "timeout",
            ProbeError::BadReply(_) => "bad_reply",
        }
    }

    fn from_connect(e: ConnectError, timeout: Duration) -> ProbeError {
        match e {
            ConnectError::Tcp(e) => ProbeError::Refused(e),
            ConnectError::ServerName(_) | ConnectError::Tls(_) => ProbeError::Tls(e.to_string()),
            ConnectError::Io(_) | ConnectError::Handshake(_) => {
                ProbeError::Handshake(e.to_string())
            }
            ConnectError::Timeout(_) => ProbeError::Timeout(timeout),
        }
    }
}

/// The TLS client config for probes of `wss://` nodes: the public web PKI roots plus
/// `[health]` `ca_file`, or the gateway's `upstream_ca` when `ca_file` is not set (the
/// roots logins are verified against).
pub fn client_tls(config: &Config) -> Result<Arc<ClientConfig>, vertogw_net::tls::TlsError> {
    let ca = config
        .health
        .ca_file
        .as_deref()
        .or(config.gateway.upstream_ca.as_deref());
    vertogw_net::tls::client_config(ca)
}

/// Probes the node at `url`: connect (TLS for `wss://`, SNI = the URL's host, verified
/// with `tls`), upgrade to the URL's path without a subprotocol, send [`PROBE_LOGIN`],
/// and wait for the reply with id 1: `-32000` or any `result` is a success. `timeout`
/// bounds all of it. Returns the time from the start of the connect to the reply; the
/// socket is then closed with 1000 (within what is left of `timeout`, failures ignored).
pub async fn probe(
    url: &NodeUrl,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    // The connect's own timeout only needs to be no shorter than the whole probe's.
    let mut ws = match before(deadline, connect_node(url, tls, timeout, timeout)).await {
        Some(Ok(ws)) => ws,
        Some(Err(e)) => return Err(ProbeError::from_connect(e, timeout)),
        None => return Err(ProbeError::Timeout(timeout)),
    };
    ws.set_max_message(PROBE_MAX_MESSAGE_BYTES);
    let exchange = async {
        ws.send(Message::text(PROBE_LOGIN))
            .await
            .map_err(|e| ProbeError::BadReply(format!("sending the login: {e}")))?;
        while let Some(message) = ws.next().await {
            let message = message.map_err(|e| ProbeError::BadReply(e.to_string()))?;
            let Message::Text(text) = message else {
                continue;
            };
            if let Some(verdict) = judge(text.as_str()) {
                return verdict;
            }
        }
        Err(ProbeError::BadReply("closed without replying".to_owned()))
    };
    let Some(result) = before(deadline, exchange).await else {
        return Err(ProbeError::Timeout(timeout));
    };
    let rtt = started.elapsed();
    let close = async {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if ws.close(Some(frame)).await.is_ok() {
            // Wait for the node's close (or EOF) so it sees a clean end, not a reset.
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = before(deadline, close).await;
    result.map(|()| rtt)
}

/// `fut`'s output if it is ready before `deadline` (`None`: no deadline).
async fn before<F: std::future::Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The verdict on one text message: `None` when it is not the reply to the probe (a
/// request or event from the node), else whether the reply is a healthy one.
fn judge(text: &str) -> Option<Result<(), ProbeError>> {
    let Ok(reply) = serde_json::from_str::<Value>(text) else {
        return Some(Err(ProbeError::BadReply("not JSON".to_owned())));
    };
    if reply.get("id") != Some(&Value::from(1)) || reply.get("method").is_some() {
        return None;
    }
    if reply.get("result").is_some() {
        return Some(Ok(()));
    }
    let code = reply
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64);
    Some(match code {
        Some(AUTH_REQUIRED) => Ok(()),
        Some(code) => Err(ProbeError::BadReply(format!("error {code}"))),
        None => Err(ProbeError::BadReply(
            "a reply with neither result nor error code".to_owned(),
        )),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_running_out_of_descriptors_is_the_gateways_own_failure() {
        let refused = |code| ProbeError::Refused(std::io::Error::from_raw_os_error(code));
        assert!(refused(24).is_local(), "EMFILE");
        assert!(refused(23).is_local(), "ENFILE");
        assert!(!refused(111).is_local(), "ECONNREFUSED is the node's");
        assert!(!ProbeError::Timeout(Duration::from_secs(1)).is_local());
    }

    use super::*;

    #[test]
    fn auth_required_or_any_result_is_healthy() {
        let auth = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Authentication Required"}}"#;
        assert!(matches!(judge(auth), Some(Ok(()))));
        let result = r#"{"jsonrpc":"2.0","id":1,"result":{"message":"logged in"}}"#;
        assert!(matches!(judge(result), Some(Ok(()))));
    }

    #[test]
    fn other_messages_are_skipped_and_other_errors_are_bad_replies() {
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"verto.ping","params":{}}"#;
        assert!(
            judge(ping).is_none(),
            "a node request that happens to use id 1"
        );
        assert!(judge(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#).is_none());
        let denied = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"x"}}"#;
        let category = |text| judge(text).and_then(Result::err).map(|e| e.category());
        assert_eq!(category(denied), Some("bad_reply"));
        assert_eq!(category("{oops"), Some("bad_reply"));
        assert_eq!(category(r#"{"id":1,"error":{}}"#), Some("bad_reply"));
    }
}
