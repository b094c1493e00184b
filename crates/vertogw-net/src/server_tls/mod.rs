//! The browser-facing TLS stream, on rustls's unbuffered API so that we own every
//! buffer: an idle connection holds none, and nothing that lives as long as the
//! connection is ever resized by a large message.
//!
//! rustls's buffered connection keeps a receive buffer of at least 4 KiB for the
//! connection's whole life and grows it record by record (to ~18 KiB) during a large
//! message. The grown block moves, and the small block it shrinks back to ends up
//! elsewhere in the heap: after one 999,999-byte message each way, 1,000 sessions kept
//! ~10 KiB of RSS each (docs/performance.md, "Memory after large messages"). Here:
//! - bytes are read into a per-thread scratch buffer, decrypted there, and only what
//!   the reader has no room for (rare) or an incomplete record (exactly its size) goes
//!   to the heap, freed as soon as it is used up;
//! - writes are encrypted into a per-thread scratch buffer and sent from it; only what
//!   the socket does not take is copied to the heap.
//!
//! The handshake waits for a whole ClientHello before it takes the caller's turn (see
//! [`accept`]), as the turn is what paces a reconnect storm's CPU.

mod hello;
mod process;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use hello::{Hello, MAX_RECORD_PAYLOAD, RECORD_HEADER_BYTES};
use process::{no_write, process, tls_error, Progress, Sinks, Traffic};

/// One record on the wire at its largest.
const MAX_RECORD_BYTES: usize = RECORD_HEADER_BYTES + MAX_RECORD_PAYLOAD;

/// Bytes one read may take from the socket: four maximal records, so a large message
/// costs few system calls.
const READ_SCRATCH_BYTES: usize = 4 * MAX_RECORD_BYTES;

/// Plaintext one write encrypts: four full records.
const WRITE_PLAINTEXT_BYTES: usize = 4 * 16_384;

/// Room for [`WRITE_PLAINTEXT_BYTES`] encrypted (each record adds at most 5 header
/// bytes, a content type byte, an explicit nonce and a tag: well under 64).
const WRITE_SCRATCH_BYTES: usize = WRITE_PLAINTEXT_BYTES + 4 * 64;

/// Queued bytes a write sends along with its own records instead of waiting for them
/// to drain first: the session tickets (~400 bytes), or a small remainder of an
/// earlier write. A slow reader's backlog beyond this makes the write wait.
const COALESCE_BYTES: usize = 4096;

/// Socket reads one `poll_read` makes before it yields, if they bring no plaintext (a
/// peer sending empty or handshake records must not hold the thread).
const READS_PER_POLL: usize = 8;

/// The most bytes buffered while waiting for the ClientHello, and during the rest of
/// the handshake: a 64 KiB message in 1-byte records could be larger, and is refused.
const MAX_HANDSHAKE_BUFFER: usize = 80 * 1024;

thread_local! {
    static READ_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static WRITE_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of `len` bytes (allocated on first use and
/// kept: one per thread, not per connection). The buffer is taken out while in use, so
/// a nested call (none is expected) or one while the thread exits gets its own.
fn with_scratch<R>(
    key: &'static std::thread::LocalKey<Cell<Vec<u8>>>,
    len: usize,
    f: impl FnOnce(&mut [u8]) -> R,
) -> R {
    let mut buf = key.try_with(Cell::take).unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let r = f(&mut buf[..len]);
    let _ = key.try_with(|cell| cell.set(buf));
    r
}

/// Accepts a TLS connection on `io`: reads a whole ClientHello, then awaits `turn` and
/// holds what it yields while the handshake's expensive part runs. A peer that stops
/// sending holds no turn; bound the whole call with a timeout.
///
/// With `offload`, the pass over the ClientHello — key exchange and certificate
/// signature, nearly all of a handshake's CPU — runs on that runtime instead of the
/// connection's, so a reconnect storm does not queue in front of the established
/// sessions' messages.
pub async fn accept<S, T>(
    mut io: S,
    config: Arc<ServerConfig>,
    turn: impl Future<Output = T>,
    offload: Option<&tokio::runtime::Handle>,
) -> io::Result<ServerTls<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut incoming = Vec::with_capacity(2048);
    while hello::scan(&incoming) == Hello::Partial {
        read_more(&mut io, &mut incoming).await?;
    }
    let _turn = turn.await;
    let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
    let mut hs = Box::new(Handshake {
        conn,
        incoming,
        outgoing: Vec::new(),
        plaintext: Vec::new(),
        peer_closed: false,
    });
    let mut first = offload;
    let (queued, tickets_wait) = loop {
        let passed = match first.take() {
            Some(runtime) => {
                let (back, passed) = runtime
                    .spawn(async move {
                        let passed = hs.pass();
                        (hs, passed)
                    })
                    .await
                    .map_err(io::Error::other)?;
                hs = back;
                passed
            }
            None => hs.pass(),
        };
        if passed.is_ok() && !hs.conn.is_handshaking() {
            let mut rest = Pending::from_vec(std::mem::take(&mut hs.outgoing));
            // TLS 1.3's last pass queues only the session tickets, which the client
            // does not wait for: they go out with the first answer (the 101 to a
            // browser's upgrade request), one send instead of one each. A TLS 1.2
            // client waits for our Finished: it goes now, and what the socket does not
            // take goes with the stream's first read or write.
            let tls13 = hs.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
            if !tls13 {
                poll_fn(|cx| match rest.poll_write_to(Pin::new(&mut io), cx) {
                    Poll::Pending => Poll::Ready(Ok(())),
                    done => done,
                })
                .await?;
            }
            break (rest, tls13);
        }
        // Our handshake messages, or the alert that says why we refused the peer's.
        io.write_all(&hs.outgoing).await?;
        hs.outgoing.clear();
        if passed? == Progress::Closed || hs.peer_closed {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        read_more(&mut io, &mut hs.incoming).await?;
    };
    let Handshake {
        conn,
        incoming,
        plaintext,
        peer_closed,
        ..
    } = *hs;
    Ok(ServerTls {
        io,
        conn,
        incoming: Partial::from_slice(&incoming),
        plaintext: Pending::from_vec(plaintext),
        tickets_wait: tickets_wait && !queued.is_empty(),
        outgoing: queued,
        peer_closed,
        eof: false,
        close_queued: false,
    })
}

/// A handshake's state between passes (boxed: it may move to another thread and back).
struct Handshake {
    conn: UnbufferedServerConnection,
    /// Bytes read and not yet used up by rustls.
    incoming: Vec<u8>,
    /// Records to send.
    outgoing: Vec<u8>,
    /// Application data that came with the client's last handshake flight.
    plaintext: Vec<u8>,
    peer_closed: bool,
}

impl Handshake {
    /// Processes what was read; the bytes used up are removed.
    fn pass(&mut self) -> io::Result<Progress> {
        let plaintext = &mut self.plaintext;
        let mut sinks = Sinks {
            deliver: |p: &[u8]| plaintext.extend_from_slice(p),
            write: no_write,
            outgoing: &mut self.outgoing,
            peer_closed: &mut self.peer_closed,
        };
        let (used, progress) = process(&mut self.conn, &mut self.incoming, &mut sinks)?;
        self.incoming.drain(..used);
        Ok(progress)
    }
}

/// Appends what the socket has to `buf`; EOF and an over-long handshake are errors.
async fn read_more<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.len() >= MAX_HANDSHAKE_BUFFER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "TLS handshake messages too large",
        ));
    }
    buf.reserve(4096.min(MAX_HANDSHAKE_BUFFER - buf.len()));
    if io.read_buf(buf).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Bytes waiting to be taken from the front; unallocated when empty.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    pos: usize,
}

impl Pending {
    fn from_vec(buf: Vec<u8>) -> Pending {
        if buf.is_empty() {
            return Pending::default();
        }
        Pending { buf, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.is_empty() {
            *self = Pending::default();
        }
    }

    /// Moves as much as fits into `out`.
    fn take_into(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.buf.len() - self.pos);
        out.put_slice(&self.buf[self.pos..self.pos + n]);
        self.consume(n);
    }

    /// Writes everything out; ready once all is written.
    fn poll_write_to<S: AsyncWrite>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.is_empty() {
            let n = ready!(io.as_mut().poll_write(cx, &self.buf[self.pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(n);
        }
        Poll::Ready(Ok(()))
    }
}

/// The start of a record not yet complete, in a buffer of the record's exact size;
/// unallocated when there is none.
#[derive(Debug, Default)]
struct Partial {
    buf: Vec<u8>,
    len: usize,
}

impl Partial {
    fn from_slice(bytes: &[u8]) -> Partial {
        let mut p = Partial::default();
        if !bytes.is_empty() {
            p.buf = vec![0; hello::record_bytes(bytes).max(bytes.len())];
            p.buf[..bytes.len()].copy_from_slice(bytes);
            p.len = bytes.len();
        }
        p
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for the rest of the record, as far as its header tells.
    fn grow_to_record(&mut self) {
        let want = hello::record_bytes(&self.buf[..self.len]);
        if want > self.buf.len() {
            self.buf.resize(want, 0);
        }
    }

    fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Drops the first `n` bytes, freeing the buffer once nothing is left.
    fn consume(&mut self, n: usize) {
        if n >= self.len {
            *self = Partial::default();
        } else if n > 0 {
            self.buf.copy_within(n..self.len, 0);
            self.len -= n;
        }
    }
}

/// A server-side TLS connection over `S` once the handshake is done (see [`accept`]).
pub struct ServerTls<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// An incomplete record (at most one: whole ones are always processed at once).
    incoming: Partial,
    /// Decrypted bytes the reader had no room for.
    plaintext: Pending,
    /// Encrypted bytes the socket has not taken yet.
    outgoing: Pending,
    /// `outgoing` is TLS 1.3's session tickets alone, held for the first answer:
    /// reads and flushes before it leave them (hyper does both while its service
    /// works out the answer).
    tickets_wait: bool,
    /// The peer's close_notify was read: EOF after `plaintext`.
    peer_closed: bool,
    /// The socket reached EOF without a close_notify.
    eof: bool,
    /// Our close_notify is queued: nothing more may be written.
    close_queued: bool,
}

impl<S> std::fmt::Debug for ServerTls<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("incoming", &self.incoming.len)
            .field("plaintext", &self.plaintext.len())
            .field("outgoing", &self.outgoing.len())
            .field("peer_closed", &self.peer_closed)
            .field("close_queued", &self.close_queued)
            .finish_non_exhaustive()
    }
}

impl<S> ServerTls<S> {
    /// Heap bytes the stream holds now (tests: an idle stream holds none).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.buf.capacity() + self.plaintext.buf.capacity() + self.outgoing.buf.capacity()
    }
}

impl<S> ServerTls<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Processes the incomplete record held (rustls may need to see it to answer a
    /// write), handing any plaintext to `plaintext` and writing with `write` once
    /// application data may be sent.
    fn process_held(
        &mut self,
        write: impl FnMut(&mut Traffic<'_>) -> io::Result<()>,
    ) -> io::Result<Progress> {
        let plaintext = &mut self.plaintext;
        let mut sinks = Sinks {
            deliver: |p: &[u8]| plaintext.extend(p),
            write,
            outgoing: &mut self.outgoing.buf,
            peer_closed: &mut self.peer_closed,
        };
        let (used, progress) = process(&mut self.conn, self.incoming.filled_mut(), &mut sinks)?;
        self.incoming.consume(used);
        Ok(progress)
    }

    /// One socket read and the records it completes; `Ready(Ok(false))` at EOF.
    fn poll_read_records(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<bool>> {
        if !self.incoming.is_empty() {
            return self.poll_complete_held(cx, out);
        }
        let want = out.remaining().clamp(MAX_RECORD_BYTES, READ_SCRATCH_BYTES);
        with_scratch(&READ_SCRATCH, want, |scratch| {
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(false));
            }
            let received = &mut scratch[..n];
            let plaintext = &mut self.plaintext;
            let mut sinks = Sinks {
                deliver: |p: &[u8]| deliver(p, out, plaintext),
                write: no_write,
                outgoing: &mut self.outgoing.buf,
                peer_closed: &mut self.peer_closed,
            };
            let (used, progress) = process(&mut self.conn, received, &mut sinks)?;
            if progress == Progress::NeedData {
                self.incoming = Partial::from_slice(&received[used..]);
            }
            Poll::Ready(Ok(true))
        })
    }

    /// Reads the rest of the incomplete record held, straight into its buffer.
    fn poll_complete_held(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<bool>> {
        self.incoming.grow_to_record();
        let Partial { buf, len } = &mut self.incoming;
        let mut read = ReadBuf::new(&mut buf[*len..]);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        if n == 0 {
            return Poll::Ready(Ok(false));
        }
        *len += n;
        let plaintext = &mut self.plaintext;
        let mut sinks = Sinks {
            deliver: |p: &[u8]| deliver(p, out, plaintext),
            write: no_write,
            outgoing: &mut self.outgoing.buf,
            peer_closed: &mut self.peer_closed,
        };
        let (used, _) = process(&mut self.conn, self.incoming.filled_mut(), &mut sinks)?;
        self.incoming.consume(used);
        Poll::Ready(Ok(true))
    }

    /// Sends what is queued; ready once the socket took all of it.
    fn poll_send_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tickets_wait = false;
        self.outgoing.poll_write_to(Pin::new(&mut self.io), cx)
    }

    /// Encrypts `data` (at most [`WRITE_PLAINTEXT_BYTES`] of it) and sends it or queues
    /// what the socket does not take; returns the plaintext bytes taken.
    fn write_records(&mut self, cx: &mut Context<'_>, data: &[u8]) -> io::Result<usize> {
        let data = &data[..data.len().min(WRITE_PLAINTEXT_BYTES)];
        with_scratch(&WRITE_SCRATCH, WRITE_SCRATCH_BYTES, |scratch| {
            let mut sealed = 0;
            let mut heap = Vec::new();
            let progress = self.process_held(|traffic| {
                sealed = match traffic.encrypt(data, scratch) {
                    Ok(n) => n,
                    Err(rustls::unbuffered::EncryptError::InsufficientSize(e)) => {
                        heap.resize(e.required_size, 0);
                        traffic.encrypt(data, &mut heap).map_err(io::Error::other)?
                    }
                    Err(e) => return Err(io::Error::other(e)),
                };
                Ok(())
            })?;
            if progress == Progress::Closed || sealed == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let record = if heap.is_empty() {
                &scratch[..sealed]
            } else {
                &heap[..sealed]
            };
            if self.outgoing.is_empty() {
                let written = match Pin::new(&mut self.io).poll_write(cx, record) {
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => 0,
                };
                self.outgoing.extend(&record[written..]);
            } else {
                // Records queued first (session tickets, a key update) keep their
                // place in line, and one send takes them and this record together.
                self.outgoing.extend(record);
                if let Poll::Ready(Err(e)) = self.poll_send_queued(cx) {
                    return Err(e);
                }
            }
            Ok(data.len())
        })
    }
}

/// Hands decrypted bytes to the reader, keeping what does not fit.
fn deliver(payload: &[u8], out: &mut ReadBuf<'_>, rest: &mut Pending) {
    let n = if rest.is_empty() {
        payload.len().min(out.remaining())
    } else {
        0
    };
    out.put_slice(&payload[..n]);
    if n < payload.len() {
        rest.extend(&payload[n..]);
    }
}

impl<S> AsyncRead for ServerTls<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.plaintext.is_empty() {
            this.plaintext.take_into(out);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() == 0 || this.peer_closed {
            return Poll::Ready(Ok(()));
        }
        if this.eof {
            return Poll::Ready(Err(unexpected_eof()));
        }
        let before = out.filled().len();
        for _ in 0..READS_PER_POLL {
            // Records written and not yet taken by the socket, a key update's reply, an
            // alert: they go out while the reader waits, not only when written to again.
            if !this.tickets_wait {
                if let Poll::Ready(Err(e)) = this.poll_send_queued(cx) {
                    return Poll::Ready(Err(e));
                }
            }
            let more = ready!(this.poll_read_records(cx, out))?;
            if out.filled().len() > before || !this.plaintext.is_empty() || this.peer_closed {
                if out.filled().len() == before {
                    this.plaintext.take_into(out);
                }
                return Poll::Ready(Ok(()));
            }
            if !more {
                this.eof = true;
                return Poll::Ready(Err(unexpected_eof()));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn unexpected_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "peer closed connection without sending TLS close_notify",
    )
}

impl<S> AsyncWrite for ServerTls<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Earlier records first: this is where a slow reader pushes back. A few
        // queued bytes (the session tickets) go out with this write instead.
        if this.outgoing.len() > COALESCE_BYTES {
            ready!(this.poll_send_queued(cx))?;
        }
        if this.close_queued {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        Poll::Ready(this.write_records(cx, data))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.tickets_wait {
            ready!(this.poll_send_queued(cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            this.close_queued = true;
            let mut alert = [0u8; 64];
            let mut sealed = 0;
            this.process_held(|traffic| {
                sealed = traffic
                    .queue_close_notify(&mut alert)
                    .map_err(io::Error::other)?;
                Ok(())
            })?;
            this.outgoing.extend(&alert[..sealed]);
        }
        ready!(this.poll_send_queued(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
