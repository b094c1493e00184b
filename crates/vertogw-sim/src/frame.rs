//! RFC 6455 framing as libks does it, quirks included (pure; no I/O).
//!
//! Hand-written rather than tungstenite because tungstenite always queues a pong for a
//! ping, echoes the peer's close code, rejects unmasked client frames and handles a
//! ping between fragments on its own — libks does none of that, and a simulator that
//! hides those differences would let the gateway pass tests the real node fails.

use bytes::{Buf, BytesMut};

/// The largest reassembled message accepted (`payload_size_max = 1000000` is exclusive).
pub const MAX_MESSAGE_BYTES: usize = 999_999;

/// Close frame with code 1000 and no reason: libks' answer to every close and its
/// signal before dropping a socket.
pub const CLOSE_1000: [u8; 4] = [0x88, 0x02, 0x03, 0xE8];

/// Close frame with code 1002, sent for an unknown opcode.
pub const CLOSE_1002: [u8; 4] = [0x88, 0x02, 0x03, 0xEA];

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Why the frame stream cannot continue.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The (reassembled) message would exceed [`MAX_MESSAGE_BYTES`]: close 1000.
    #[error("message of {0} bytes or more exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooBig(u64),
    /// An opcode libks does not know: close 1002.
    #[error("unknown opcode {0:#x}")]
    BadOpcode(u8),
}

/// One wire frame with its payload unmasked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// What the connection sees once frames are reassembled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A complete text or binary message (libks does not tell them apart).
    Message(Vec<u8>),
    /// A ping outside a fragmented message; its payload goes to the JSON-RPC parser.
    Ping(Vec<u8>),
    /// A pong; treated exactly like a ping.
    Pong(Vec<u8>),
    /// A ping or pong that arrived between fragments: its payload was appended to the
    /// message being reassembled, as libks does.
    ControlInsideMessage { ping: bool },
    /// The peer sent a close frame (any code), with its status code if it has one.
    Close(Option<u16>),
}

/// Decodes one frame from the front of `buf`; `Ok(None)` means "need more bytes".
/// `pending` is the size of the message being reassembled, so the limit is enforced
/// from the header alone, before the body is buffered.
pub(crate) fn parse(buf: &mut BytesMut, pending: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let opcode = b0 & 0x0F;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(FrameError::BadOpcode(opcode));
    }
    let (len, mut at) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(be), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    let total = len.saturating_add(pending as u64);
    if total > MAX_MESSAGE_BYTES as u64 {
        return Err(FrameError::TooBig(total));
    }
    // Bounded by MAX_MESSAGE_BYTES just above, so this cannot truncate.
    let len = len as usize;
    let masked = b1 & 0x80 != 0;
    let mask_len = if masked { 4 } else { 0 };
    if buf.len() < at + mask_len + len {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    if masked {
        mask.copy_from_slice(&buf[at..at + 4]);
        at += 4;
    }
    buf.advance(at);
    let mut payload = buf.split_to(len).to_vec();
    if masked {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
    }
    Ok(Some(Frame {
        fin: b0 & 0x80 != 0,
        opcode,
        payload,
    }))
}

/// Reassembles fragmented messages the libks way.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    partial: Option<Vec<u8>>,
}

impl Assembler {
    /// Bytes of the message being reassembled (counted against the limit).
    pub(crate) fn pending(&self) -> usize {
        self.partial.as_ref().map_or(0, Vec::len)
    }

    /// Feeds one frame; returns what it completes, if anything.
    pub(crate) fn push(&mut self, frame: Frame) -> Option<Event> {
        match frame.opcode {
            OP_CLOSE => Some(Event::Close(close_code(&frame.payload))),
            OP_PING | OP_PONG => {
                let ping = frame.opcode == OP_PING;
                match self.partial.as_mut() {
                    Some(partial) => {
                        partial.extend_from_slice(&frame.payload);
                        Some(Event::ControlInsideMessage { ping })
                    }
                    None if ping => Some(Event::Ping(frame.payload)),
                    None => Some(Event::Pong(frame.payload)),
                }
            }
            // Text, binary and continuation all append to the same body: libks keeps
            // one growing buffer until a FIN frame arrives.
            _ => {
                let mut body = self.partial.take().unwrap_or_default();
                body.extend_from_slice(&frame.payload);
                if frame.fin {
                    Some(Event::Message(body))
                } else {
                    self.partial = Some(body);
                    None
                }
            }
        }
    }
}

/// The header of an unmasked, unfragmented TEXT frame carrying `len` bytes.
pub(crate) fn text_header(len: usize) -> Vec<u8> {
    let mut header = vec![0x80 | OP_TEXT];
    match len {
        0..=125 => header.push(len as u8),
        126..=0xFFFF => {
            header.push(126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(127);
            header.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    header
}

/// The status code of a close frame's payload, if it has one.
fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser would send it (masked).
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = text_header(payload.len());
        out[0] = if fin { 0x80 | opcode } else { opcode };
        out[1] |= 0x80;
        let mask = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn events(bytes: &[u8]) -> Vec<Event> {
        let mut buf = BytesMut::from(bytes);
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        while let Some(frame) = parse(&mut buf, asm.pending()).unwrap() {
            out.extend(asm.push(frame));
        }
        out
    }

    #[test]
    fn masked_and_unmasked_frames_are_both_accepted() {
        let mut bytes = client_frame(true, OP_TEXT, b"hi");
        bytes.extend_from_slice(&[0x81, 0x02, b'y', b'o']);
        let expected = vec![
            Event::Message(b"hi".to_vec()),
            Event::Message(b"yo".to_vec()),
        ];
        assert_eq!(events(&bytes), expected);
    }

    #[test]
    fn a_ping_between_fragments_is_appended_to_the_message() {
        let mut bytes = client_frame(false, OP_TEXT, b"{\"a\"");
        bytes.extend(client_frame(true, OP_PING, b"XX"));
        bytes.extend(client_frame(true, OP_CONTINUATION, b":1}"));
        let expected = vec![
            Event::ControlInsideMessage { ping: true },
            Event::Message(b"{\"a\"XX:1}".to_vec()),
        ];
        assert_eq!(events(&bytes), expected);
    }

    #[test]
    fn the_limit_counts_the_reassembled_size_and_is_checked_from_the_header() {
        let mut buf = BytesMut::from(&text_header(MAX_MESSAGE_BYTES)[..]);
        assert_eq!(parse(&mut buf, 0), Ok(None));
        let mut buf = BytesMut::from(&text_header(MAX_MESSAGE_BYTES + 1)[..]);
        assert_eq!(parse(&mut buf, 0), Err(FrameError::TooBig(1_000_000)));
        let mut buf = BytesMut::from(&text_header(10)[..]);
        assert!(parse(&mut buf, MAX_MESSAGE_BYTES - 9).is_err());
    }

    #[test]
    fn an_unknown_opcode_is_an_error() {
        let mut buf = BytesMut::from(&[0x83u8, 0x00][..]);
        assert_eq!(parse(&mut buf, 0), Err(FrameError::BadOpcode(3)));
    }

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(text_header(125), vec![0x81, 125]);
        assert_eq!(text_header(126), vec![0x81, 126, 0, 126]);
        assert_eq!(text_header(70_000)[1], 127);
    }
}
