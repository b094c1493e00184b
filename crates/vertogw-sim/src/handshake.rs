//! The server side of the WebSocket opening handshake, with libks' exact quirks.
//!
//! libks checks almost nothing: the request must start with `GET ` and carry a
//! `Sec-WebSocket-Key`; path, Host, Origin, Upgrade and version are ignored, and a
//! requested subprotocol is echoed verbatim (even a list). The reply has no Server,
//! Date or extension headers.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The request head buffer (`kws->buflen = 64*1024`); a longer head is refused.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a client may take to send its whole request head. libks blocks 10 s per
/// read and mod_verto sets no overall limit; the simulator bounds the total instead so
/// a silent client cannot pin a task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The exact reply to anything that is not a usable upgrade request.
pub const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Why a socket did not become a WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The request head did not arrive within [`HANDSHAKE_TIMEOUT`].
    #[error("request head not complete within {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    /// The peer closed before finishing the head.
    #[error("peer closed during the handshake")]
    Closed,
    /// Not a `GET`, no key, or a head over [`MAX_HEAD_BYTES`]; a 400 was sent.
    #[error("not an upgrade request (400 sent)")]
    Rejected,
    /// Reading or writing failed.
    #[error("handshake i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What a complete request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// A usable upgrade: the key and the raw `Sec-WebSocket-Protocol` value, if any.
    Upgrade {
        key: String,
        protocol: Option<String>,
    },
    /// Anything else: answered with [`BAD_REQUEST`].
    Reject,
}

/// The offset just past the blank line ending the head, if it has arrived.
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The value of header `name` (case-insensitive), trimmed.
fn header<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Classifies a complete request head.
pub(crate) fn parse_head(head: &[u8]) -> Head {
    if !head.starts_with(b"GET ") {
        return Head::Reject;
    }
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.split("\r\n").skip(1).collect();
    match header(&lines, "Sec-WebSocket-Key").filter(|k| !k.is_empty()) {
        Some(key) => Head::Upgrade {
            key: key.to_owned(),
            protocol: header(&lines, "Sec-WebSocket-Protocol").map(str::to_owned),
        },
        None => Head::Reject,
    }
}

/// The exact `101` reply for an upgrade.
pub(crate) fn switching_protocols(key: &str, protocol: Option<&str>) -> String {
    let mut reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(protocol) = protocol {
        reply.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    reply.push_str("\r\n");
    reply
}

/// Reads the request head and answers it. On success returns the bytes the client
/// already sent after the head (frames pipelined behind the request).
pub(crate) async fn accept<S>(stream: &mut S) -> Result<BytesMut, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(4096);
    let end = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_head(stream, &mut buf))
        .await
        .map_err(|_| HandshakeError::Timeout)??;
    let Some(end) = end else {
        stream.write_all(BAD_REQUEST).await?;
        let _ = stream.shutdown().await;
        return Err(HandshakeError::Rejected);
    };
    let head = buf.split_to(end);
    match parse_head(&head) {
        Head::Upgrade { key, protocol } => {
            let reply = switching_protocols(&key, protocol.as_deref());
            stream.write_all(reply.as_bytes()).await?;
            stream.flush().await?;
            Ok(buf)
        }
        Head::Reject => {
            stream.write_all(BAD_REQUEST).await?;
            let _ = stream.shutdown().await;
            Err(HandshakeError::Rejected)
        }
    }
}

/// Reads until the blank line; `None` when the head outgrows [`MAX_HEAD_BYTES`].
async fn read_head<S>(stream: &mut S, buf: &mut BytesMut) -> Result<Option<usize>, HandshakeError>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(end) = head_end(buf) {
            return Ok(Some(end));
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Ok(None);
        }
        buf.reserve(4096);
        if stream.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_matches_the_real_capture() {
        // 01-login-success: key 1nJewuDv+Dvz8fWW5g9cdg== → vBfNyF278sOyovJuTxRfXIQW6SE=
        let reply = switching_protocols("1nJewuDv+Dvz8fWW5g9cdg==", None);
        assert_eq!(
            reply,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: vBfNyF278sOyovJuTxRfXIQW6SE=\r\n\r\n"
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_nothing_else_is_checked() {
        let head = b"GET /some/path?x=1 HTTP/1.1\r\nsec-websocket-key: abc\r\n\
                     Sec-WebSocket-Version: 8\r\nsec-websocket-protocol: verto, foo\r\n\r\n";
        let expected = Head::Upgrade {
            key: "abc".into(),
            protocol: Some("verto, foo".into()),
        };
        assert_eq!(parse_head(head), expected);
    }

    #[test]
    fn a_plain_get_or_another_method_is_rejected() {
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Head::Reject
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nSec-WebSocket-Key: a\r\n\r\n"),
            Head::Reject
        );
    }
}
