//! A WebSocket over any byte stream: reads messages (answering pings and closes as
//! RFC 6455 requires) and writes them, holding buffers only while a message is in
//! flight.
//!
//! Reads of up to [`STACK_READ_BYTES`] land in a buffer on the thread's stack and only
//! the bytes that arrived are copied to the heap, so an idle stream owns no read
//! buffer; a frame larger than that is read straight into a heap buffer that grows with
//! what arrived, up to the frame's exact size. Parsed frames are cut off that buffer without a copy and the buffer is let go
//! as soon as it is empty. Encoded frames wait in a write buffer that is freed once the
//! socket took all of it.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::frame::{self, OpCode, MAX_CONTROL_PAYLOAD};
use super::message::{Assembler, Decoded};
use super::{Error, Role};

/// The stack buffer of one read: a TLS record's worth.
const STACK_READ_BYTES: usize = 16 * 1024;

/// The least a large frame's buffer grows by at a time.
const GROWTH_FLOOR_BYTES: usize = 4 * STACK_READ_BYTES;

/// Frames one `poll_next` reads before it yields: a peer sending a stream of tiny
/// fragments must not hold its thread (the relay's own bound counts messages).
const FRAMES_PER_POLL: usize = 64;

/// One WebSocket connection.
#[derive(Debug)]
pub struct WsStream<S> {
    io: S,
    role: Role,
    reader: Assembler,
    /// Bytes read and not yet parsed; unallocated between messages.
    rbuf: BytesMut,
    /// Encoded frames; `wbuf[written..]` is still to be written. Unallocated when empty.
    wbuf: Vec<u8>,
    written: usize,
    /// The pong owed for the last ping (a later ping replaces it, RFC 6455 §5.5.3).
    pong: Option<Bytes>,
    /// A close frame was read, or reading failed or ended: nothing more to read.
    read_done: bool,
    /// A close frame was queued: nothing more to send.
    close_sent: bool,
}

impl<S> WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// A stream over `io` (upgraded already) whose first bytes `leftover` were read with
    /// the upgrade; messages above `max_message` bytes are refused.
    pub fn new(io: S, role: Role, leftover: &[u8], max_message: usize) -> WsStream<S> {
        WsStream {
            io,
            role,
            reader: Assembler::new(role, max_message),
            rbuf: BytesMut::from(leftover),
            wbuf: Vec::new(),
            written: 0,
            pong: None,
            read_done: false,
            close_sent: false,
        }
    }

    /// Changes the size limit of the messages read (from the next frame on).
    pub fn set_max_message(&mut self, max_message: usize) {
        self.reader.set_max_message(max_message);
    }

    /// The underlying stream (to shut it down or drain it once the close was sent).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Sends a close frame (unless one was sent already) and flushes.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        self.queue_close(frame.as_ref())?;
        poll_fn(|cx| self.poll_flush_all(cx)).await
    }

    /// Heap bytes the stream holds now (tests: an idle stream holds none).
    #[cfg(test)]
    pub fn buffered_capacity(&self) -> usize {
        self.rbuf.capacity() + self.wbuf.capacity()
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.read_done {
            return Poll::Ready(None);
        }
        // What is owed (a pong, a close reply) goes out as soon as the socket takes it;
        // a write that has to wait does not hold up reading.
        if let Poll::Ready(Err(e)) = self.poll_flush_owed(cx) {
            self.read_done = true;
            return Poll::Ready(Some(Err(e)));
        }
        for _ in 0..FRAMES_PER_POLL {
            match ready!(self.poll_frame(cx)) {
                Ok(Some(Some(msg))) => return Poll::Ready(Some(Ok(self.received(msg, cx)))),
                Ok(Some(None)) => {}
                Ok(None) => {
                    self.read_done = true;
                    return Poll::Ready(None);
                }
                Err(e) => {
                    self.read_done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The next frame: `Some(Some(msg))` completed a message, `Some(None)` was a
    /// fragment, `None` is the end of the stream at a message boundary.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Option<Message>>, Error>> {
        loop {
            let want = match self.reader.decode(&mut self.rbuf)? {
                Decoded::Frame(msg) => {
                    if self.rbuf.is_empty() {
                        self.rbuf = BytesMut::new();
                    }
                    return Poll::Ready(Ok(Some(msg)));
                }
                Decoded::Need(want) => want,
            };
            if ready!(self.poll_fill(cx, want))? == 0 {
                return Poll::Ready(self.end_of_stream().map(|()| None));
            }
        }
    }

    /// Reads once towards `want` buffered bytes; `Ok(0)` is EOF.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let missing = want.saturating_sub(self.rbuf.len());
        if missing > STACK_READ_BYTES {
            // A large frame: read straight into the heap, which grows with what arrived
            // (doubling, never past the frame's end), so a header that announces a large
            // payload and sends none of it costs its sender as much as it costs us.
            let step = missing.min(self.rbuf.len().max(GROWTH_FLOOR_BYTES));
            self.rbuf.reserve(step);
            return tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf);
        }
        let mut storage = [MaybeUninit::<u8>::uninit(); STACK_READ_BYTES];
        let mut buf = ReadBuf::uninit(&mut storage);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        self.rbuf.extend_from_slice(buf.filled());
        Poll::Ready(Ok(buf.filled().len()))
    }

    /// Owes a pong for a ping, or replies to a close; hands the message on.
    fn received(&mut self, msg: Message, cx: &mut Context<'_>) -> Message {
        if self.answer_control(&msg) {
            // A failed write shows on the next read or write.
            let _ = self.poll_flush_owed(cx);
        }
        msg
    }

    /// Owes a pong for a ping, or queues the reply to a close (which ends reading);
    /// `true` when `msg` was either. The caller sends what is owed.
    fn answer_control(&mut self, msg: &Message) -> bool {
        match msg {
            Message::Ping(payload) => self.pong = Some(payload.clone()),
            Message::Close(frame) => {
                self.read_done = true;
                // RFC 6455 §5.5.1: the reply carries the peer's code (and reason).
                let _ = self.queue_close(frame.as_ref());
            }
            _ => return false,
        }
        true
    }

    /// Why the stream ended when its peer closed the socket: cleanly at a message
    /// boundary, or cut inside a frame or a fragmented message.
    fn end_of_stream(&self) -> Result<(), Error> {
        if self.rbuf.is_empty() && !self.reader.in_message() {
            Ok(())
        } else {
            Err(Error::Io(io::ErrorKind::UnexpectedEof.into()))
        }
    }

    fn queue_close(&mut self, frame: Option<&CloseFrame>) -> Result<(), Error> {
        if self.close_sent {
            return Ok(());
        }
        let mut payload = Vec::new();
        if let Some(f) = frame {
            payload.extend_from_slice(&u16::from(f.code).to_be_bytes());
            payload.extend_from_slice(f.reason.as_bytes());
        }
        self.encode(OpCode::Close, &payload)?;
        self.close_sent = true;
        Ok(())
    }

    /// Appends one final frame to the write buffer.
    fn encode(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::Protocol("control frame over 125 bytes"));
        }
        let mask = match self.role {
            Role::Client => Some(frame::new_mask()),
            Role::Server => None,
        };
        self.wbuf.reserve(frame::MAX_HEADER_BYTES + payload.len());
        frame::encode(opcode, mask, payload.len(), &mut self.wbuf);
        let start = self.wbuf.len();
        self.wbuf.extend_from_slice(payload);
        if let Some(key) = mask {
            frame::apply_mask(&mut self.wbuf[start..], key);
        }
        Ok(())
    }

    /// Writes the write buffer out, then the owed pong. The pong is encoded only once
    /// the buffer is out: until then a later ping's pong replaces it, so a peer that
    /// pings and never reads holds one pong here, not one per ping.
    fn poll_send_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            self.written += write_some(&mut self.io, cx, &self.wbuf[self.written..])?;
            if self.written < self.wbuf.len() {
                return Poll::Pending;
            }
            self.wbuf = Vec::new();
            self.written = 0;
            match self.pong.take() {
                Some(payload) if !self.close_sent => self.encode(OpCode::Pong, &payload)?,
                _ => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Writes and flushes what is queued, if anything (a TLS stream may hold written
    /// records until flushed, and nobody else flushes a pong).
    fn poll_flush_owed(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.pong.is_none() && self.wbuf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.poll_flush_all(cx)
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_send_queued(cx))?;
        Poll::Ready(ready!(Pin::new(&mut self.io).poll_flush(cx)).map_err(Error::Io))
    }
}

/// Writes `bytes` to `io` until it took them all or would block (its waker is then
/// registered); how many it took.
fn write_some<S>(io: &mut S, cx: &mut Context<'_>, bytes: &[u8]) -> io::Result<usize>
where
    S: AsyncWrite + Unpin,
{
    let mut sent = 0;
    while sent < bytes.len() {
        match Pin::new(&mut *io).poll_write(cx, &bytes[sent..]) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => sent += n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => break,
        }
    }
    Ok(sent)
}

impl<S> Stream for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

impl<S> Sink<Message> for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    /// Ready once everything queued before was handed to the socket: at most one
    /// message waits in the gateway per direction.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_send_queued(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if this.close_sent {
            return Err(Error::Closed);
        }
        match msg {
            Message::Text(text) => this.encode(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => this.encode(OpCode::Binary, &data),
            Message::Ping(data) => this.encode(OpCode::Ping, &data),
            Message::Pong(data) => this.encode(OpCode::Pong, &data),
            Message::Close(frame) => this.queue_close(frame.as_ref()),
            Message::Frame(_) => Err(Error::Protocol("raw frames are not relayed")),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_all(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.queue_close(None)?;
        this.poll_flush_all(cx)
    }
}

mod relay;

pub use relay::{Data, Pass, RelayError, Relayed};

#[cfg(test)]
mod tests;
