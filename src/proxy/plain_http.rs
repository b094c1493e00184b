//! A plain `http://` or `ws://` request sent to the TLS port: answered with a readable
//! 400 instead of a TLS alert the browser shows as an empty reply.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The first byte of every TLS record carrying a handshake (RFC 8446 §5.1).
const TLS_HANDSHAKE: u8 = 0x16;

/// Most of the request read before answering: closing with unread bytes makes the
/// kernel reset the connection, and the client may then never see the answer.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// How long the request may take to arrive before the answer goes out anyway.
const READ_TIMEOUT: Duration = Duration::from_secs(1);

const RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 72\r\n\
Connection: close\r\n\
\r\n\
This port speaks TLS only: connect with https:// or wss://, not http://\n";

/// Whether the connection opens with something other than a TLS handshake that looks
/// like an HTTP request line (an upper-case method). Waits for the first byte.
pub async fn looks_like_plain_http(tcp: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    Ok(n == 1 && first[0] != TLS_HANDSHAKE && first[0].is_ascii_uppercase())
}

/// Reads the request head (bounded in size and time), answers 400 and closes.
pub async fn refuse(mut tcp: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while head.len() < MAX_REQUEST_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, read).await;
    let _ = tcp.write_all(RESPONSE).await;
    let _ = tcp.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_length_matches_the_body() {
        let text = std::str::from_utf8(RESPONSE).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{text}"
        );
    }
}
