//! A read tap that finds the code of the first close frame the target sends, as it was
//! on the wire. tungstenite replaces codes it does not know (1014 "bad gateway", which
//! the gateway sends when a node connection is lost) with 1002 before the bench sees
//! them, so the code a browser would report has to be read below it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// WebSocket opcode of a close frame.
const OP_CLOSE: u8 = 0x8;

/// Where the frame scan is.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Before the frames: the upgrade's HTTP answer, up to its blank line (the
    /// bytes of `\r\n\r\n` matched so far).
    Http { matched: usize },
    /// Reading a frame header: the bytes so far.
    Header { buf: [u8; 14], have: usize },
    /// Inside a payload: bytes left, and for a close frame the code bytes so far.
    Payload {
        left: u64,
        close: Option<([u8; 2], usize)>,
        mask: Option<[u8; 4]>,
    },
    /// The first close frame's code is known (or it had none): nothing more to scan.
    Done,
}

/// Follows server frames byte by byte and keeps the first close frame's code.
#[derive(Debug, Clone, Copy)]
pub struct CloseScan {
    state: State,
    code: Option<u16>,
}

impl Default for CloseScan {
    fn default() -> CloseScan {
        CloseScan {
            state: State::Http { matched: 0 },
            code: None,
        }
    }
}

impl CloseScan {
    /// The first close frame's code: `Some(1005)` for a close frame without one,
    /// `None` before any close frame.
    pub fn code(&self) -> Option<u16> {
        self.code
    }

    /// Scans the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return,
                State::Http { matched } => {
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    *matched = match (b, *matched) {
                        (b'\r', 0 | 2) | (b'\n', 1 | 3) => *matched + 1,
                        (b'\r', _) => 1,
                        _ => 0,
                    };
                    if *matched == 4 {
                        self.state = State::Header {
                            buf: [0; 14],
                            have: 0,
                        };
                    }
                }
                State::Header { buf, have } => {
                    buf[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    let (header, len) = (*buf, *have);
                    let Some(next) = header_done(&header, len) else {
                        continue;
                    };
                    // A close frame with an empty payload: no code (a browser says 1005).
                    if header[0] & 0x0f == OP_CLOSE && matches!(next, State::Header { .. }) {
                        self.code = Some(1005);
                        self.state = State::Done;
                        return;
                    }
                    self.state = next;
                }
                State::Payload { left, close, mask } => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    if let Some((code, got)) = close {
                        for &b in bytes.iter().take(take) {
                            if *got < 2 {
                                let key = mask.map_or(0, |m| m[*got % 4]);
                                code[*got] = b ^ key;
                                *got += 1;
                            }
                        }
                        if *got == 2 {
                            self.code = Some(u16::from_be_bytes(*code));
                            self.state = State::Done;
                            return;
                        }
                    }
                    *left -= take as u64;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.state = State::Header {
                            buf: [0; 14],
                            have: 0,
                        };
                    }
                }
            }
        }
    }
}

/// The state after a complete header of `have` bytes, or `None` while it is incomplete.
fn header_done(buf: &[u8; 14], have: usize) -> Option<State> {
    if have < 2 {
        return None;
    }
    let masked = buf[1] & 0x80 != 0;
    let (ext, len7) = match buf[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let need = 2 + ext + if masked { 4 } else { 0 };
    if have < need {
        return None;
    }
    let len = len7.unwrap_or_else(|| {
        buf[2..2 + ext]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    });
    let mask = masked.then(|| {
        let mut m = [0; 4];
        m.copy_from_slice(&buf[2 + ext..need]);
        m
    });
    if len == 0 {
        return Some(State::Header {
            buf: [0; 14],
            have: 0,
        });
    }
    let close = (buf[0] & 0x0f == OP_CLOSE).then_some(([0; 2], 0));
    Some(State::Payload {
        left: len,
        close,
        mask,
    })
}

/// A stream whose incoming bytes go through a [`CloseScan`].
pub struct Tap<S> {
    inner: S,
    scan: CloseScan,
}

impl<S> Tap<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Tap<S> {
        Tap {
            inner,
            scan: CloseScan::default(),
        }
    }

    /// The first close frame's code as sent (see [`CloseScan::code`]).
    pub fn close_code(&self) -> Option<u16> {
        self.scan.code()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.scan.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scan past an upgrade answer, as the tap sees the stream.
    fn scan() -> CloseScan {
        let mut scan = CloseScan::default();
        scan.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
        scan
    }

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n < 65536 => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    fn close(code: u16) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(b"node connection lost");
        frame(OP_CLOSE, &p)
    }

    #[test]
    fn the_close_code_after_text_frames_of_every_length_form_is_found() {
        let mut stream = frame(0x1, b"{}");
        stream.extend(frame(0x1, &[b'x'; 300]));
        stream.extend(frame(0x1, &vec![b'y'; 70_000]));
        stream.extend(close(1014));
        let mut scan = scan();
        scan.feed(&stream);
        assert_eq!(scan.code(), Some(1014));
    }

    #[test]
    fn the_code_is_found_whatever_the_read_boundaries() {
        let mut stream = frame(0x1, &[b'x'; 200]);
        stream.extend(close(1001));
        stream.extend(close(1000));
        for chunk in 1..=7 {
            let mut scan = CloseScan::default();
            let mut all = b"HTTP/1.1 101 OK\r\n\r\n".to_vec();
            all.extend_from_slice(&stream);
            for part in all.chunks(chunk) {
                scan.feed(part);
            }
            assert_eq!(scan.code(), Some(1001), "chunks of {chunk}");
        }
    }

    #[test]
    fn the_upgrade_answer_is_not_read_as_frames() {
        let mut scan = CloseScan::default();
        // "HTTP" would read as a frame header, and a close code in a header is text.
        scan.feed(b"HTTP/1.1 101 Switching Protocols\r\nX-Close: \x88\x02\x03\xf6\r\n\r");
        assert_eq!(scan.code(), None);
        scan.feed(b"\n");
        scan.feed(&close(1014));
        assert_eq!(scan.code(), Some(1014));
    }

    #[test]
    fn a_close_without_a_code_is_1005_and_no_close_is_none() {
        let mut scan = scan();
        scan.feed(&frame(0x1, b"hello"));
        assert_eq!(scan.code(), None);
        scan.feed(&frame(OP_CLOSE, b""));
        assert_eq!(scan.code(), Some(1005));
    }

    #[test]
    fn a_masked_close_frame_is_unmasked() {
        let key = [1, 2, 3, 4];
        let mut out = vec![0x88, 0x80 | 2];
        out.extend_from_slice(&key);
        let code = 1012u16.to_be_bytes();
        out.extend_from_slice(&[code[0] ^ key[0], code[1] ^ key[1]]);
        let mut scan = scan();
        scan.feed(&out);
        assert_eq!(scan.code(), Some(1012));
    }
}
