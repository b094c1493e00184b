//! One HTTP/1.1 exchange with the admin API over a fresh TCP connection (hyper's
//! low-level client), bounded in time and in the size of the answer.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::target::Target;

/// Largest answer read (a `sessions.list` of its default 1,000 rows is ~200 KB).
const MAX_ANSWER: usize = 16 << 20;

/// An answer: its status and body.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

/// Why no answer came (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The TCP connection failed (refused, unreachable, unknown host).
    #[error("cannot connect to the admin API at {authority}: {source}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// Why.
        source: std::io::Error,
    },
    /// The whole exchange took longer than its bound.
    #[error("no answer from the admin API at {authority} within {} s", timeout.as_secs())]
    Timeout {
        /// `host:port`.
        authority: String,
        /// The bound.
        timeout: Duration,
    },
    /// HTTP failed (the peer is not an HTTP server, or closed mid-answer).
    #[error("HTTP with the admin API at {authority} failed: {source}")]
    Http {
        /// `host:port`.
        authority: String,
        /// Why.
        source: hyper::Error,
    },
    /// The answer's body could not be read whole.
    #[error("reading the answer of the admin API at {authority}: {source} (answers are read up to {MAX_ANSWER} bytes)")]
    Body {
        /// `host:port`.
        authority: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request could not be built (a path the URL syntax refuses).
    #[error("cannot build the request: {0}")]
    Request(#[from] http::Error),
}

/// Sends `method path` (under the target's prefix) with `body` as JSON, carrying the
/// target's token; the answer, or why none came within `timeout`.
pub async fn exchange(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, TransportError> {
    let timed_out = || TransportError::Timeout {
        authority: target.authority.clone(),
        timeout,
    };
    tokio::time::timeout(timeout, exchange_unbounded(target, method, path, body))
        .await
        .map_err(|_| timed_out())?
}

async fn exchange_unbounded(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Answer, TransportError> {
    let authority = || target.authority.clone();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", target.base))
        .header(header::HOST, &target.authority)
        .header(header::ACCEPT, "application/json");
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(auth) = target.token.as_ref().and_then(|t| t.header_value()) {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| TransportError::Connect {
            authority: authority(),
            source,
        })?;
    let http = |source| TransportError::Http {
        authority: authority(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(http)?;
    // The connection is driven beside the request; it ends when `sender` is dropped,
    // and the abort covers an early return.
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|source| TransportError::Body {
                authority: authority(),
                source,
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::super::target::{parse_url, Token};
    use super::*;

    async fn listener() -> (TcpListener, Target) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let target = parse_url(&format!("http://{addr}/base/")).unwrap_or_else(|e| panic!("{e}"));
        (listener, target)
    }

    /// Reads one request head from the first connection, answers `answer`, and returns
    /// the head.
    async fn answer_once(listener: TcpListener, answer: &'static str) -> String {
        let (mut tcp, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tcp.write_all(answer.as_bytes()).await;
        String::from_utf8_lossy(&head).into_owned()
    }

    #[tokio::test]
    async fn the_request_carries_host_prefix_and_token_and_the_answer_is_read_whole() {
        let (listener, mut target) = listener().await;
        target.token = Token::new("t0k3n-0123456789abcdef");
        let server = tokio::spawn(answer_once(
            listener,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
        ));
        let answer = exchange(
            &target,
            Method::GET,
            "/status",
            None,
            Duration::from_secs(5),
        )
        .await;
        let answer = answer.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(&answer.body[..], b"{\"a\":1}");
        let head = server.await.unwrap_or_default().to_ascii_lowercase();
        assert!(head.starts_with("get /base/status http/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("host: {}\r\n", target.authority)),
            "{head}"
        );
        assert!(
            head.contains("authorization: bearer t0k3n-0123456789abcdef\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_is_a_timeout() {
        let (listener, target) = listener().await;
        // Accepts and holds the connection without a word.
        let holder = tokio::spawn(async move { listener.accept().await.map(|(tcp, _)| tcp) });
        let bound = Duration::from_millis(200);
        let result = exchange(&target, Method::GET, "/status", None, bound).await;
        assert!(
            matches!(result, Err(TransportError::Timeout { .. })),
            "{result:?}"
        );
        holder.abort();
    }

    #[tokio::test]
    async fn a_peer_that_is_not_http_is_an_http_error() {
        let (listener, target) = listener().await;
        let server = tokio::spawn(answer_once(listener, "SSH-2.0-OpenSSH\r\n"));
        let result = exchange(
            &target,
            Method::GET,
            "/status",
            None,
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(result, Err(TransportError::Http { .. })),
            "{result:?}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let (listener, target) = listener().await;
        drop(listener);
        let result = exchange(
            &target,
            Method::GET,
            "/status",
            None,
            Duration::from_secs(5),
        )
        .await;
        assert!(
            matches!(result, Err(TransportError::Connect { .. })),
            "{result:?}"
        );
    }
}
