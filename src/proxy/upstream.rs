//! Reaching a partition's node: TCP (+ TLS for `wss://`) + WebSocket upgrade, each
//! attempt bounded by the connect timeout, trying the nodes in priority order.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::config::NodeUrl;
use crate::websocket::{Role, WsStream};
use vertogw_net::MaybeTls;

/// A WebSocket to a node.
pub type NodeSocket = WsStream<MaybeTls>;

/// Largest node→browser message relayed (mod_verto itself sends replies over 1 MB).
pub const NODE_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why one node could not be reached; logged, never shown to the browser.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed (refused, unreachable, …).
    #[error("tcp connect: {0}")]
    Tcp(std::io::Error),
    /// The node's host is not a valid TLS server name.
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
    /// The TLS handshake failed.
    #[error("tls handshake: {0}")]
    Tls(std::io::Error),
    /// Reading or writing the upgrade failed.
    #[error("websocket upgrade: {0}")]
    Io(std::io::Error),
    /// The node's answer to the upgrade was not an acceptable `101`.
    #[error("websocket upgrade: {0}")]
    Handshake(String),
    /// TCP + TLS + upgrade took longer than the connect timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl ConnectError {
    /// Whether the gateway itself failed (out of file descriptors), not the node.
    pub fn is_local(&self) -> bool {
        matches!(self, ConnectError::Tcp(e) if super::capacity::is_out_of_descriptors(e))
    }

    /// A fixed category for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            ConnectError::Tcp(_) => "refused",
            ConnectError::ServerName(_) | ConnectError::Tls(_) => "tls",
            ConnectError::Io(_) | ConnectError::Handshake(_) => "handshake",
            ConnectError::Timeout(_) => "timeout",
        }
    }
}

/// Opens a WebSocket to `url` within `timeout`. No `Sec-WebSocket-Protocol` is sent:
/// mod_verto would echo whatever it gets, and the browser's choice was answered by us.
pub async fn connect(
    url: &NodeUrl,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
    stall: Duration,
) -> Result<NodeSocket, ConnectError> {
    tokio::time::timeout(timeout, connect_inner(url, tls, stall))
        .await
        .unwrap_or(Err(ConnectError::Timeout(timeout)))
}

async fn connect_inner(
    url: &NodeUrl,
    tls: &Arc<ClientConfig>,
    stall: Duration,
) -> Result<NodeSocket, ConnectError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(ConnectError::Tcp)?;
    super::tcp::tune(&tcp, stall);
    let io = if url.secure {
        let name = ServerName::try_from(url.host.clone())
            .map_err(|_| ConnectError::ServerName(url.host.clone()))?;
        let stream = TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(ConnectError::Tls)?;
        MaybeTls::tls(stream)
    } else {
        MaybeTls::Plain(tcp)
    };
    upgrade(io, url).await
}

/// Largest HTTP response head accepted from a node (mod_verto's is ~130 bytes).
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// The client side of the WebSocket upgrade, by hand: mod_verto's answer is a fixed,
/// tiny 101, and whatever follows it is handed to the stream.
async fn upgrade(mut io: MaybeTls, url: &NodeUrl) -> Result<NodeSocket, ConnectError> {
    let key = generate_key();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        path = url.path,
        host = host_header(url),
    );
    io.write_all(request.as_bytes())
        .await
        .map_err(ConnectError::Io)?;
    let mut head = Vec::with_capacity(512);
    let end = loop {
        if head.len() >= MAX_RESPONSE_HEAD {
            return Err(ConnectError::Handshake("response head too long".into()));
        }
        let mut chunk = [0u8; 512];
        let n = io.read(&mut chunk).await.map_err(ConnectError::Io)?;
        if n == 0 {
            return Err(ConnectError::Handshake(
                "connection closed during upgrade".into(),
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&head) {
            break end;
        }
    };
    check_response(&head[..end], &derive_accept_key(key.as_bytes()))?;
    Ok(WsStream::new(
        io,
        Role::Client,
        &head[end..],
        NODE_MAX_MESSAGE_BYTES,
    ))
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Accepts a `101` whose `Sec-WebSocket-Accept` matches our key.
fn check_response(head: &[u8], expected_accept: &str) -> Result<(), ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(ConnectError::Handshake("malformed HTTP response".into())),
    }
    if response.code != Some(101) {
        let code = response.code.unwrap_or(0);
        return Err(ConnectError::Handshake(format!(
            "HTTP {code} instead of 101"
        )));
    }
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    if accept != Some(expected_accept.as_bytes()) {
        return Err(ConnectError::Handshake(
            "wrong or missing Sec-WebSocket-Accept".into(),
        ));
    }
    Ok(())
}

fn host_header(url: &NodeUrl) -> String {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let default_port = if url.secure { 443 } else { 80 };
    if url.port == default_port {
        host
    } else {
        format!("{host}:{}", url.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_101_with_the_right_accept_key_is_accepted() {
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let expected = derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
        assert!(check_response(head, &expected).is_ok());
        assert!(check_response(head, "other").is_err());
    }

    #[test]
    fn a_400_is_a_handshake_error_naming_the_status() {
        let head = b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let err = check_response(head, "x").unwrap_err();
        assert!(err.to_string().contains("HTTP 400"), "{err}");
    }

    #[test]
    fn the_head_ends_at_the_blank_line() {
        assert_eq!(find_head_end(b"HTTP/1.1 101 x\r\n\r\n{"), Some(18));
        assert_eq!(find_head_end(b"HTTP/1.1 101 x\r\n"), None);
    }
}
