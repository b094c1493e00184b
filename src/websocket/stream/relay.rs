//! Frame relay: a whole, unfragmented data frame goes from one stream's socket to the
//! other's as it arrived, header re-encoded in place, so relaying a message allocates
//! nothing and copies nothing beyond the read itself.
//!
//! Only what is safe to pass through does: a final text or binary frame outside a
//! fragmented message. Text is unmasked in place for the inspector and the UTF-8 check.
//! A browser's frame goes to the node under a key of the gateway's own, never the
//! browser's: masking exists so that whoever writes a payload cannot choose the bytes
//! on the wire (RFC 6455 §10.3), and a raw client chooses its key, zero included. Text
//! is masked with the new key where it was unmasked; binary is re-keyed in one pass (the
//! old key XOR the new). Control frames are answered here and never
//! forwarded; fragments are reassembled by the [`Assembler`] and handed to the caller
//! as one [`Message`], so a node never sees a control frame inside a fragmented
//! message. Every header passes the same checks as [`WsStream::poll_next`] before its
//! payload is read.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;

use super::{write_some, WsStream, FRAMES_PER_POLL, STACK_READ_BYTES};
use crate::websocket::frame::{self, OpCode};
use crate::websocket::Error;

/// A whole message about to be relayed as it came, for the inspector to see.
#[derive(Debug)]
pub enum Data<'a> {
    Text(&'a str),
    /// A binary message of this many bytes (its payload is not shown).
    Binary(usize),
}

/// The inspector's answer about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Relay it as it came.
    Forward,
    /// Keep it from the other leg (the inspector kept what it needs) and return
    /// [`Relayed::Stopped`] now, so the caller acts before the next message.
    Stop,
}

/// What one call moved.
#[derive(Debug)]
pub enum Relayed {
    /// Frames were read: every whole message among them went to the other leg (or
    /// waits in its write buffer); pings were answered.
    Frames,
    /// The inspector stopped at a message, after relaying those before it.
    Stopped,
    /// A message for the caller to act on: a close, or a fragmented message
    /// reassembled (to be inspected and sent whole).
    Message(Message),
    /// The peer ended the stream at a message boundary.
    End,
}

/// Which leg failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading: {0}")]
    Read(Error),
    #[error("writing: {0}")]
    Write(Error),
}

/// How far one pass over buffered bytes went.
struct Scan {
    /// Bytes taken off the front of the buffer.
    consumed: usize,
    /// Bytes at the front of the buffer to write to the other leg, in order.
    forward: usize,
    stop: Option<Relayed>,
    /// Whether a frame was taken at all.
    progress: bool,
    /// Whole messages among the frames relayed.
    messages: usize,
    /// The pass stopped at [`FRAMES_PER_POLL`] frames.
    capped: bool,
}

impl<S> WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Reads frames and relays their messages to `out`, asking `inspect` about each
    /// whole message first. Waits while `out` still holds earlier bytes: one direction
    /// never buffers more than one read's worth.
    pub fn poll_relay<W>(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut WsStream<W>,
        inspect: &mut impl FnMut(Data<'_>) -> Pass,
    ) -> Poll<Result<Relayed, RelayError>>
    where
        W: AsyncRead + AsyncWrite + Unpin,
    {
        debug_assert_ne!(
            self.role, out.role,
            "frames relay from one role to the other"
        );
        if self.read_done {
            return Poll::Ready(Ok(Relayed::End));
        }
        if let Poll::Ready(Err(e)) = self.poll_flush_owed(cx) {
            return self.failed(e);
        }
        ready!(out.poll_send_queued(cx)).map_err(RelayError::Write)?;
        let result = ready!(self.poll_relay_once(cx, out, inspect));
        // A pong or a close reply owed: out as soon as the socket takes it (a failed
        // write shows on the next read or write).
        let _ = self.poll_flush_owed(cx);
        Poll::Ready(result)
    }

    fn poll_relay_once<W>(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut WsStream<W>,
        inspect: &mut impl FnMut(Data<'_>) -> Pass,
    ) -> Poll<Result<Relayed, RelayError>>
    where
        W: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            if self.rbuf.is_empty() {
                let mut storage = [MaybeUninit::<u8>::uninit(); STACK_READ_BYTES];
                let mut buf = ReadBuf::uninit(&mut storage);
                if let Err(e) = ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
                    return self.failed(Error::Io(e));
                }
                if buf.filled().is_empty() {
                    return self.at_eof();
                }
                let filled = buf.filled_mut();
                let scan = self.relay_buffered(filled, out, cx, inspect)?;
                // What is left (a frame cut short, or frames after a stop) waits on the
                // heap, at its exact size.
                self.rbuf.extend_from_slice(&filled[scan.consumed..]);
                if let Some(done) = ready!(Self::outcome(scan, cx)) {
                    return Poll::Ready(Ok(done));
                }
            } else {
                let mut buf = std::mem::take(&mut self.rbuf);
                let scanned = self.relay_buffered(&mut buf, out, cx, inspect);
                if let Ok(scan) = &scanned {
                    buf.advance(scan.consumed);
                }
                self.rbuf = if buf.is_empty() { BytesMut::new() } else { buf };
                if let Some(done) = ready!(Self::outcome(scanned?, cx)) {
                    return Poll::Ready(Ok(done));
                }
                // A frame cut short: read towards it (straight into the heap when large).
                let want = self.frame_bytes_wanted();
                match ready!(self.poll_fill(cx, want)) {
                    Ok(0) => return self.at_eof(),
                    Ok(_) => {}
                    Err(e) => return self.failed(Error::Io(e)),
                }
            }
        }
    }

    /// What a pass amounts to: `Ready(None)` when it took no frame (more bytes
    /// needed), `Pending` (already woken) after a whole batch of frames that carried no
    /// message, so that a peer streaming control frames or empty fragments yields its
    /// thread as often as one streaming messages.
    fn outcome(scan: Scan, cx: &mut Context<'_>) -> Poll<Option<Relayed>> {
        Poll::Ready(match scan.stop {
            Some(stop) => Some(stop),
            None if scan.capped && scan.messages == 0 => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            None if scan.progress => Some(Relayed::Frames),
            None => None,
        })
    }

    /// Bytes the buffer must hold for its first frame to be whole.
    fn frame_bytes_wanted(&self) -> usize {
        match frame::parse(&self.rbuf) {
            Ok(Some((header, at))) => {
                at.saturating_add(usize::try_from(header.len).unwrap_or(usize::MAX))
            }
            _ => self.rbuf.len() + 1,
        }
    }

    /// Relays the whole frames at the front of `buf` and writes what goes on to `out`.
    fn relay_buffered<W>(
        &mut self,
        buf: &mut [u8],
        out: &mut WsStream<W>,
        cx: &mut Context<'_>,
        inspect: &mut impl FnMut(Data<'_>) -> Pass,
    ) -> Result<Scan, RelayError>
    where
        W: AsyncRead + AsyncWrite + Unpin,
    {
        let scan = match self.scan(buf, inspect) {
            Ok(scan) => scan,
            Err(e) => {
                self.read_done = true;
                return Err(RelayError::Read(e));
            }
        };
        out.write_through(cx, &buf[..scan.forward])
            .map_err(RelayError::Write)?;
        Ok(scan)
    }

    /// Takes whole frames off the front of `buf`: messages to relay are moved, header
    /// re-encoded, to `buf[..forward]`; control frames and fragments are handled here.
    fn scan(
        &mut self,
        buf: &mut [u8],
        inspect: &mut impl FnMut(Data<'_>) -> Pass,
    ) -> Result<Scan, Error> {
        let mut scan = Scan {
            consumed: 0,
            forward: 0,
            stop: None,
            progress: false,
            messages: 0,
            capped: false,
        };
        for taken in 0..=FRAMES_PER_POLL {
            if taken == FRAMES_PER_POLL {
                scan.capped = true;
                break;
            }
            let at = scan.consumed;
            let Some((header, header_len)) = frame::parse(&buf[at..])? else {
                break;
            };
            self.reader.check(&header)?;
            // `check` bounded the length by the message limit (or 125 for control).
            let len = usize::try_from(header.len).map_err(|_| Error::TooBig {
                size: header.len,
                max: usize::MAX,
            })?;
            let body = at + header_len;
            let end = match body.checked_add(len) {
                Some(end) if end <= buf.len() => end,
                _ => break,
            };
            scan.consumed = end;
            scan.progress = true;
            let whole = header.fin && !self.reader.in_message();
            let text = header.opcode == OpCode::Text;
            if whole && (text || header.opcode == OpCode::Binary) {
                let payload = &mut buf[body..end];
                // Masked frames come from a browser and go to a node (`check` holds
                // each role to its side of that): under a fresh key.
                let out_mask = header.mask.map(|_| frame::new_mask());
                let pass = if text {
                    if let Some(key) = header.mask {
                        frame::apply_mask(payload, key);
                    }
                    let text = std::str::from_utf8(payload).map_err(|_| Error::Utf8)?;
                    let pass = inspect(Data::Text(text));
                    if let (Pass::Forward, Some(key)) = (pass, out_mask) {
                        frame::apply_mask(payload, key);
                    }
                    pass
                } else {
                    let pass = inspect(Data::Binary(len));
                    if let (Pass::Forward, Some(old), Some(new)) = (pass, header.mask, out_mask) {
                        frame::apply_mask(payload, frame::rekey(old, new));
                    }
                    pass
                };
                if pass == Pass::Stop {
                    scan.stop = Some(Relayed::Stopped);
                    break;
                }
                // The shortest header is never longer than the one received, so it
                // fits in front of the payload where the old one ended.
                let (head, head_len) = frame::header(header.opcode, out_mask, len);
                let start = body - head_len;
                buf[start..body].copy_from_slice(&head[..head_len]);
                if start != scan.forward {
                    buf.copy_within(start..end, scan.forward);
                }
                scan.forward += end - start;
                scan.messages += 1;
                continue;
            }
            let payload = &mut buf[body..end];
            if let Some(key) = header.mask {
                frame::apply_mask(payload, key);
            }
            // Pings and pongs end here; a close or a reassembled message goes to the
            // caller (`poll_relay` sends the pong or the close reply owed).
            if let Some(msg) = self.reader.push(&header, BytesMut::from(&payload[..]))? {
                self.answer_control(&msg);
                if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                    scan.stop = Some(Relayed::Message(msg));
                    break;
                }
            }
        }
        Ok(scan)
    }

    /// Writes `bytes` to the socket now; what it does not take waits in the write
    /// buffer (the caller's next [`WsStream::poll_relay`] waits for it).
    fn write_through(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.close_sent {
            return Err(Error::Closed);
        }
        let sent = match self.wbuf.is_empty() {
            true => write_some(&mut self.io, cx, bytes)?,
            false => 0,
        };
        self.wbuf.extend_from_slice(&bytes[sent..]);
        Ok(())
    }

    fn at_eof(&mut self) -> Poll<Result<Relayed, RelayError>> {
        self.read_done = true;
        Poll::Ready(
            self.end_of_stream()
                .map(|()| Relayed::End)
                .map_err(RelayError::Read),
        )
    }

    fn failed(&mut self, e: Error) -> Poll<Result<Relayed, RelayError>> {
        self.read_done = true;
        Poll::Ready(Err(RelayError::Read(e)))
    }
}

#[cfg(test)]
mod tests;
