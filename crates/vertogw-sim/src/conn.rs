//! One accepted socket: TLS, the handshake, then the frame loop that drives a
//! [`Session`] and writes what it produces.
//!
//! Client replies are written inline, so a slow reader stalls only its own socket
//! (mod_verto blocks its per-socket thread the same way); messages pushed by other
//! sockets go through the bounded queue of [`ConnHandle`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::frame::{self, Assembler, Event, FrameError, CLOSE_1000, CLOSE_1002};
use super::handshake::{self, HANDSHAKE_TIMEOUT};
use super::session::Session;
use super::shared::{ConnHandle, Push, Shared};
use super::stream::{abort_on_drop, SimStream};

/// How long a closing socket keeps draining what the peer still sends, so the kernel
/// sends FIN rather than RST and the peer gets to read the close frame.
pub const CLOSE_DRAIN: Duration = Duration::from_millis(500);

/// How long one frame write may stall on a peer that does not read (libks: 200
/// retries of 1–50 ms).
pub const WRITE_STALL: Duration = Duration::from_secs(10);

/// Replies up to this size are written with their header in one syscall.
const COALESCE_BYTES: usize = 16 * 1024;

/// The node-wide signals every socket obeys.
#[derive(Clone)]
pub(crate) struct Tokens {
    /// Graceful stop: close 1000.
    pub shutdown: CancellationToken,
    /// Abrupt death: drop with RST, no close frame.
    pub vanish: CancellationToken,
}

/// Why a socket ended (logged once, at the end of its task).
enum End {
    PeerClose,
    Eof,
    Io(io::Error),
    TooBig(u64),
    BadOpcode(u8),
    Dropped,
    Punted,
    Kicked,
    Shutdown,
    Vanished,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::PeerClose => f.write_str("peer sent close"),
            End::Eof => f.write_str("peer closed tcp"),
            End::Io(e) => write!(f, "i/o: {e}"),
            End::TooBig(n) => write!(f, "message of {n}+ bytes"),
            End::BadOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            End::Dropped => f.write_str("dropped by the session"),
            End::Punted => f.write_str("punted"),
            End::Kicked => f.write_str("kicked (queue overflow or punt)"),
            End::Shutdown => f.write_str("node shutdown"),
            End::Vanished => f.write_str("node vanished"),
        }
    }
}

enum Step {
    Push(Push),
    Tick,
    Read(io::Result<usize>),
    Frames,
    Close(End),
}

/// Serves one accepted TCP connection to the end.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    tokens: Tokens,
) {
    // Accepted sockets get TCP_NODELAY on the real node too.
    let _ = tcp.set_nodelay(true);
    let established = tokio::select! {
        _ = tokens.vanish.cancelled() => return,
        _ = tokens.shutdown.cancelled() => return,
        established = establish(tcp, tls) => established,
    };
    let (mut stream, buf) = match established {
        Ok(ok) => ok,
        Err(reason) => {
            tracing::debug!(failure = "handshake", %reason, "sim: no upgrade");
            shared.bump(|s| s.handshakes_rejected += 1);
            return;
        }
    };
    shared.bump(|s| {
        s.upgrades += 1;
        s.open_sockets += 1;
    });
    // A child of `vanish`, so one token interrupts a stalled write for either reason.
    let kick = tokens.vanish.child_token();
    let (handle, rx) = ConnHandle::new(shared.next_conn_id(), kick.clone());
    let conn_id = handle.conn_id;
    let mut session = Session::new(Arc::clone(&shared), handle, Instant::now());
    let end = run(&mut stream, buf, &mut session, rx, &tokens, &kick).await;
    if tokens.vanish.is_cancelled() {
        abort_on_drop(&stream);
    }
    tracing::debug!(%end, "sim: socket closed");
    shared.release(conn_id, session.sessid());
    shared.bump(|s| s.open_sockets -= 1);
}

async fn establish(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
) -> Result<(SimStream, BytesMut), String> {
    let mut stream = match tls {
        None => SimStream::Plain(tcp),
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
        {
            Ok(Ok(tls)) => SimStream::tls(tls),
            Ok(Err(e)) => return Err(format!("tls: {e}")),
            Err(_) => return Err("tls: timeout".into()),
        },
    };
    let buf = handshake::accept(&mut stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok((stream, buf))
}

async fn run(
    stream: &mut SimStream,
    mut buf: BytesMut,
    session: &mut Session,
    mut rx: mpsc::Receiver<Push>,
    tokens: &Tokens,
    kick: &CancellationToken,
) -> End {
    let mut asm = Assembler::default();
    // Frames pipelined behind the request head are processed before reading more.
    let mut step = Step::Frames;
    loop {
        let end = match step {
            Step::Close(end) => return close(stream, &CLOSE_1000, end).await,
            Step::Push(Push::Text(text)) => {
                write_text(stream, &text, kick).await.err().map(End::Io)
            }
            Step::Push(Push::Punt(text)) => match write_text(stream, &text, kick).await {
                Ok(()) => Some(End::Punted),
                Err(e) => Some(End::Io(e)),
            },
            Step::Tick => {
                session.fire(Instant::now());
                flush(stream, session, kick).await.err().map(End::Io)
            }
            Step::Read(Ok(0)) => return End::Eof,
            Step::Read(Ok(_)) | Step::Frames => {
                read_frames(stream, &mut buf, &mut asm, session, kick)
                    .await
                    .err()
            }
            Step::Read(Err(e)) => return End::Io(e),
        };
        match end {
            Some(End::Vanished) => return End::Vanished,
            Some(End::Io(e)) => return End::Io(e),
            Some(End::BadOpcode(op)) => {
                return close(stream, &CLOSE_1002, End::BadOpcode(op)).await
            }
            Some(end) => return close(stream, &CLOSE_1000, end).await,
            None => {}
        }
        if buf.capacity() - buf.len() < 8 * 1024 {
            buf.reserve(64 * 1024);
        }
        let deadline = session.next_deadline();
        step = tokio::select! {
            biased;
            _ = tokens.vanish.cancelled() => {
                abort_on_drop(stream);
                return End::Vanished;
            }
            _ = tokens.shutdown.cancelled() => Step::Close(End::Shutdown),
            _ = kick.cancelled() => Step::Close(End::Kicked),
            Some(push) = rx.recv() => Step::Push(push),
            _ = tokio::time::sleep_until(deadline) => Step::Tick,
            read = stream.read_buf(&mut buf) => Step::Read(read),
        };
    }
}

/// Decodes and handles every complete frame in `buf`. `Err` carries why the socket
/// must end (`Dropped` when the session asked to drop it).
async fn read_frames(
    stream: &mut SimStream,
    buf: &mut BytesMut,
    asm: &mut Assembler,
    session: &mut Session,
    kick: &CancellationToken,
) -> Result<(), End> {
    loop {
        let frame = match frame::parse(buf, asm.pending()) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(FrameError::TooBig(size)) => {
                session.shared.bump(|s| s.oversize_closes += 1);
                return Err(End::TooBig(size));
            }
            Err(FrameError::BadOpcode(op)) => return Err(End::BadOpcode(op)),
        };
        let now = Instant::now();
        session.touch(now);
        let Some(event) = asm.push(frame) else {
            continue;
        };
        let shared = Arc::clone(&session.shared);
        match event {
            Event::Close(code) => {
                if let Some(code) = code {
                    shared.bump(|s| s.record_close_code(code));
                }
                return Err(End::PeerClose);
            }
            Event::Message(payload) => {
                shared.bump(|s| s.messages_received += 1);
                shared.record_received(&payload);
                if !payload.is_empty() {
                    session.handle_payload(&payload, now);
                }
            }
            Event::Ping(payload) => {
                shared.bump(|s| s.pings_received += 1);
                session.handle_control(&payload, now);
            }
            Event::Pong(payload) => {
                shared.bump(|s| s.pongs_received += 1);
                session.handle_control(&payload, now);
            }
            Event::ControlInsideMessage { ping: true } => shared.bump(|s| s.pings_received += 1),
            Event::ControlInsideMessage { ping: false } => shared.bump(|s| s.pongs_received += 1),
        }
        flush(stream, session, kick).await.map_err(End::Io)?;
        if session.drop {
            return Err(End::Dropped);
        }
    }
}

/// Writes whatever the session produced.
async fn flush(
    stream: &mut SimStream,
    session: &mut Session,
    kick: &CancellationToken,
) -> io::Result<()> {
    for text in std::mem::take(&mut session.out) {
        write_text(stream, &text, kick).await?;
    }
    Ok(())
}

/// One unfragmented, unmasked TEXT frame, as libks writes every message. A write
/// that stalls for [`WRITE_STALL`] or is interrupted by `kick` fails, which drops
/// the socket (libks gives up after its retry budget the same way).
async fn write_text(
    stream: &mut SimStream,
    text: &str,
    kick: &CancellationToken,
) -> io::Result<()> {
    let write = async {
        let mut header = frame::text_header(text.len());
        if text.len() <= COALESCE_BYTES {
            header.extend_from_slice(text.as_bytes());
            stream.write_all(&header).await?;
        } else {
            stream.write_all(&header).await?;
            stream.write_all(text.as_bytes()).await?;
        }
        stream.flush().await
    };
    tokio::select! {
        written = tokio::time::timeout(WRITE_STALL, write) => {
            written.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write stalled"))?
        }
        _ = kick.cancelled() => Err(io::Error::other("socket kicked during a write")),
    }
}

/// Sends a close frame, shuts the socket down and drains the peer for a moment.
async fn close(stream: &mut SimStream, close_frame: &[u8], end: End) -> End {
    let polite = async {
        stream.write_all(close_frame).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut scratch = vec![0u8; 64 * 1024];
        while stream.read(&mut scratch).await? > 0 {}
        Ok::<(), io::Error>(())
    };
    // Whatever fails here, the socket is going away anyway.
    let _ = tokio::time::timeout(CLOSE_DRAIN, polite).await;
    end
}
