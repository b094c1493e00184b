//! Reaching a partition's node: TCP (+ TLS for `wss://`) + WebSocket upgrade, each
//! attempt bounded by the connect timeout, trying the nodes in priority order.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;

use super::io::UpstreamIo;
use super::ws_config;
use crate::config::NodeUrl;

/// A WebSocket to a node.
pub type NodeSocket = WebSocketStream<UpstreamIo>;

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
    /// The WebSocket upgrade failed.
    #[error("websocket upgrade: {0}")]
    Upgrade(#[from] tokio_tungstenite::tungstenite::Error),
    /// TCP + TLS + upgrade took longer than the connect timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl ConnectError {
    /// A fixed category for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            ConnectError::Tcp(_) => "refused",
            ConnectError::ServerName(_) | ConnectError::Tls(_) => "tls",
            ConnectError::Upgrade(_) => "handshake",
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
) -> Result<NodeSocket, ConnectError> {
    tokio::time::timeout(timeout, connect_inner(url, tls))
        .await
        .unwrap_or(Err(ConnectError::Timeout(timeout)))
}

async fn connect_inner(url: &NodeUrl, tls: &Arc<ClientConfig>) -> Result<NodeSocket, ConnectError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(ConnectError::Tcp)?;
    super::tcp::tune(&tcp);
    let io = if url.secure {
        let name = ServerName::try_from(url.host.clone())
            .map_err(|_| ConnectError::ServerName(url.host.clone()))?;
        let stream = TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(ConnectError::Tls)?;
        UpstreamIo::Tls(Box::new(stream))
    } else {
        UpstreamIo::Plain(tcp)
    };
    let request = request_for(url)?;
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(request, io, Some(ws_config::node())).await?;
    Ok(socket)
}

fn request_for(
    url: &NodeUrl,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, ConnectError> {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let scheme = if url.secure { "wss" } else { "ws" };
    Ok(format!("{scheme}://{host}:{}{}", url.port, url.path).into_client_request()?)
}
