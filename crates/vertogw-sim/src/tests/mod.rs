//! Socket-level tests of the simulated node: a raw RFC 6455 client replays the
//! exchanges of the real captures and compares replies byte for byte.

mod calls;
mod session;
mod wire;

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{SimConfig, SimNode, SimUsers};

/// Upper bound for any single wait in these tests (never a sleep).
const WAIT: Duration = Duration::from_secs(5);

pub(super) const OP_TEXT: u8 = 0x1;
pub(super) const OP_CONT: u8 = 0x0;
pub(super) const OP_BINARY: u8 = 0x2;
pub(super) const OP_CLOSE: u8 = 0x8;
pub(super) const OP_PING: u8 = 0x9;
pub(super) const OP_PONG: u8 = 0xA;

/// The captures' profile: users 1000/1001/1008, force-register-domain example.com,
/// with a short clientReady delay so tests run fast.
fn config(name: &str) -> SimConfig {
    let mut config = SimConfig::new(name, SimUsers::transcript_users())
        .with_force_domain(Some("example.com".into()));
    config.client_ready_delay = Duration::from_millis(20);
    config.answer_delay = Duration::from_millis(10);
    config
}

async fn start(config: SimConfig) -> SimNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    SimNode::spawn(listener, config).await
}

/// What the client read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Got {
    Text(String),
    Close(Option<u16>),
    Other(u8, Vec<u8>),
    Eof,
}

/// A raw WebSocket client that logs nothing and hides nothing.
pub(super) struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    /// Connects and upgrades with a fixed key; panics unless the reply is a 101.
    async fn connect(node: &SimNode) -> Client {
        let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Version: 13\r\n\r\n";
        let (client, head) = Client::handshake(node, request).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        client
    }

    /// Sends `request` raw and returns the response head (up to the blank line).
    async fn handshake(node: &SimNode, request: &str) -> (Client, String) {
        let stream = TcpStream::connect(node.local_addr()).await.unwrap();
        let mut client = Client {
            stream,
            buf: BytesMut::new(),
        };
        client.stream.write_all(request.as_bytes()).await.unwrap();
        loop {
            if let Some(end) = super::handshake::head_end(&client.buf) {
                let head = client.buf.split_to(end);
                return (client, String::from_utf8(head.to_vec()).unwrap());
            }
            if client.read_more().await == 0 {
                let head = String::from_utf8_lossy(&client.buf).into_owned();
                return (client, head);
            }
        }
    }

    async fn read_more(&mut self) -> usize {
        self.buf.reserve(64 * 1024);
        let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf));
        match read.await.expect("node did not answer in time") {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Sends one masked frame.
    async fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mut out = vec![if fin { 0x80 | opcode } else { opcode }];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0xA1, 0xB2, 0xC3, 0xD4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.unwrap();
    }

    async fn send(&mut self, text: &str) {
        self.frame(true, OP_TEXT, text.as_bytes()).await;
    }

    /// The next frame the node sent (no size limit on this side).
    async fn recv(&mut self) -> Got {
        loop {
            if let Some(got) = self.parse() {
                return got;
            }
            if self.read_more().await == 0 {
                return Got::Eof;
            }
        }
    }

    fn parse(&mut self) -> Option<Got> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are never masked");
        assert_eq!(b[0] & 0x80, 0x80, "server frames are never fragmented");
        let (len, at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < at + len {
            return None;
        }
        let opcode = b[0] & 0x0F;
        self.buf.advance(at);
        let payload = self.buf.split_to(len).to_vec();
        Some(match opcode {
            OP_TEXT => Got::Text(String::from_utf8(payload).unwrap()),
            OP_CLOSE if payload.len() >= 2 => {
                Got::Close(Some(u16::from_be_bytes([payload[0], payload[1]])))
            }
            OP_CLOSE => Got::Close(None),
            other => Got::Other(other, payload),
        })
    }

    /// The next frame, which must be text.
    async fn text(&mut self) -> String {
        match self.recv().await {
            Got::Text(text) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame as JSON.
    async fn json(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.text().await).unwrap()
    }

    /// Logs in and returns the exact result text (the clientReady is left unread).
    async fn login(&mut self, user: &str, id: u64, sessid: &str) -> String {
        let login = format!(
            r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"{user}","passwd":"1234","sessid":"{sessid}"}},"id":{id}}}"#
        );
        self.send(&login).await;
        self.text().await
    }

    /// Logs in and consumes the clientReady; returns its id.
    async fn ready(&mut self, user: &str, sessid: &str) -> u64 {
        let reply = self.login(user, 1, sessid).await;
        assert!(reply.contains("logged in"), "{reply}");
        let ready = self.json().await;
        assert_eq!(ready["method"], "verto.clientReady");
        ready["id"].as_u64().unwrap()
    }

    /// Expects close 1000 and then the end of the TCP stream.
    async fn closed_with_1000(&mut self) {
        assert_eq!(self.recv().await, Got::Close(Some(1000)));
        assert_eq!(self.recv().await, Got::Eof);
    }

    /// Sends a close with `code` and expects the node's 1000 and TCP close.
    async fn close(&mut self, code: u16) {
        self.frame(true, OP_CLOSE, &code.to_be_bytes()).await;
        self.closed_with_1000().await;
    }
}

/// `{"jsonrpc":"2.0","id":<id>,"error":{"code":<code>,"message":"<message>"}}`.
fn error(id: &str, code: i64, message: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":"{message}"}}}}"#)
}

const INVALID_REQUEST: &str =
    r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#;
