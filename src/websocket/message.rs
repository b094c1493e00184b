//! Frames into messages (RFC 6455 §5.4–5.5, §7.4): the fragmentation rules, the message
//! size limit, UTF-8 of text and close reasons, and valid close codes. Pure: fed one
//! frame at a time by the stream, so every rule is tested without a socket.

use bytes::{Buf, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::frame::{self, Header, OpCode};
use super::{Error, Role};

/// What the bytes read so far give.
#[derive(Debug)]
pub enum Decoded {
    /// One frame, taken off the buffer: a complete message, or `None` for a fragment.
    Frame(Option<Message>),
    /// The next frame needs this many buffered bytes in all.
    Need(usize),
}

/// A message whose first fragments arrived.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
}

/// Assembles one direction's frames into messages.
#[derive(Debug)]
pub struct Assembler {
    role: Role,
    max_message: usize,
    partial: Option<Partial>,
}

impl Assembler {
    /// Reads frames sent by the peer of a `role` endpoint, refusing messages above
    /// `max_message` bytes.
    pub fn new(role: Role, max_message: usize) -> Assembler {
        Assembler {
            role,
            max_message,
            partial: None,
        }
    }

    /// Changes the message size limit (from the next frame on).
    pub fn set_max_message(&mut self, max_message: usize) {
        self.max_message = max_message;
    }

    /// Whether a fragmented message is open (EOF now cuts a message short).
    pub fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Checks a header before its payload is read, so that a frame that breaks a rule
    /// (or the size limit) is refused without buffering it. Changes nothing.
    pub fn check(&self, h: &Header) -> Result<(), Error> {
        match (self.role, h.mask) {
            (Role::Server, None) => return Err(Error::Protocol("unmasked frame from a client")),
            (Role::Client, Some(_)) => return Err(Error::Protocol("masked frame from a server")),
            _ => {}
        }
        let so_far = match (h.opcode, &self.partial) {
            (OpCode::Continue, None) => {
                return Err(Error::Protocol("continuation frame without a message"))
            }
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(Error::Protocol("new message inside a fragmented one"))
            }
            (OpCode::Continue, Some(p)) => p.data.len() as u64,
            _ => 0,
        };
        let size = so_far.saturating_add(h.len);
        if !h.opcode.is_control() && size > self.max_message as u64 {
            return Err(Error::TooBig {
                size,
                max: self.max_message,
            });
        }
        Ok(())
    }

    /// Takes the next frame off the front of `buf` once it is all there. A header that
    /// breaks a rule is refused as soon as its bytes arrived, before any payload.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Error> {
        let Some((header, at)) = frame::parse(buf)? else {
            return Ok(Decoded::Need(buf.len() + 1));
        };
        self.check(&header)?;
        // `check` bounded the length by the message limit (or 125 for control frames).
        let len = usize::try_from(header.len).map_err(|_| Error::TooBig {
            size: header.len,
            max: self.max_message,
        })?;
        if buf.len() - at < len {
            return Ok(Decoded::Need(at + len));
        }
        buf.advance(at);
        let mut payload = buf.split_to(len);
        if let Some(key) = header.mask {
            frame::apply_mask(&mut payload, key);
        }
        self.push(&header, payload).map(Decoded::Frame)
    }

    /// Takes a frame that passed [`Assembler::check`], its payload unmasked: a message
    /// when one is complete, `None` after a non-final fragment.
    pub(super) fn push(&mut self, h: &Header, payload: BytesMut) -> Result<Option<Message>, Error> {
        self.check(h)?;
        match h.opcode {
            OpCode::Ping => Ok(Some(Message::Ping(payload.freeze()))),
            OpCode::Pong => Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Close => close(payload.freeze()).map(|f| Some(Message::Close(f))),
            OpCode::Text | OpCode::Binary if h.fin => {
                message(h.opcode == OpCode::Text, payload).map(Some)
            }
            OpCode::Text | OpCode::Binary => {
                self.partial = Some(Partial {
                    text: h.opcode == OpCode::Text,
                    data: payload,
                });
                Ok(None)
            }
            OpCode::Continue => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(Error::Protocol("continuation frame without a message"));
                };
                partial.data.extend_from_slice(&payload);
                if !h.fin {
                    return Ok(None);
                }
                match self.partial.take() {
                    Some(done) => message(done.text, done.data).map(Some),
                    None => Ok(None),
                }
            }
        }
    }
}

fn message(text: bool, data: BytesMut) -> Result<Message, Error> {
    if text {
        Utf8Bytes::try_from(data.freeze())
            .map(Message::Text)
            .map_err(|_| Error::Utf8)
    } else {
        Ok(Message::Binary(data.freeze()))
    }
}

/// A close frame's payload: empty, or a valid code and a UTF-8 reason.
fn close(payload: Bytes) -> Result<Option<CloseFrame>, Error> {
    match payload.len() {
        0 => return Ok(None),
        1 => return Err(Error::Protocol("close frame with a 1-byte payload")),
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !is_valid_close_code(code) {
        return Err(Error::Protocol("invalid close code"));
    }
    let reason = Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| Error::Utf8)?;
    Ok(Some(CloseFrame {
        code: CloseCode::from(code),
        reason,
    }))
}

/// The codes a peer may send (RFC 6455 §7.4 and the IANA registry): 1004–1006 and 1015
/// are reserved or only local, 1016–2999 unassigned, 3000–4999 for applications.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    fn h(fin: bool, opcode: OpCode, len: usize) -> Header {
        Header {
            fin,
            opcode,
            mask: KEY,
            len: len as u64,
        }
    }

    /// Decodes one masked frame through the same path the stream takes.
    fn feed(
        a: &mut Assembler,
        fin: bool,
        op: OpCode,
        data: &[u8],
    ) -> Result<Option<Message>, Error> {
        let mut wire = Vec::new();
        frame::encode(op, KEY, data.len(), &mut wire);
        if !fin {
            wire[0] &= 0x7f;
        }
        let start = wire.len();
        wire.extend_from_slice(data);
        if let Some(key) = KEY {
            frame::apply_mask(&mut wire[start..], key);
        }
        let mut buf = BytesMut::from(&wire[..]);
        match a.decode(&mut buf)? {
            Decoded::Frame(msg) => {
                assert!(buf.is_empty(), "the whole frame is taken");
                Ok(msg)
            }
            Decoded::Need(n) => panic!("a whole frame, yet {n} bytes needed"),
        }
    }

    #[test]
    fn a_partial_frame_says_how_many_bytes_it_needs() {
        let mut a = Assembler::new(Role::Server, 100);
        let mut wire = Vec::new();
        frame::encode(OpCode::Text, KEY, 10, &mut wire);
        wire.extend_from_slice(&[b'a'; 10]);
        let whole = wire.len();
        for cut in 0..whole {
            let mut buf = BytesMut::from(&wire[..cut]);
            match a.decode(&mut buf) {
                Ok(Decoded::Need(n)) => assert!(n > cut && n <= whole, "cut {cut}: need {n}"),
                other => panic!("cut {cut}: {other:?}"),
            }
            assert_eq!(buf.len(), cut, "nothing is taken from a partial frame");
        }
    }

    #[test]
    fn fragments_with_a_ping_between_make_one_message() {
        let mut a = Assembler::new(Role::Server, 100);
        assert!(matches!(feed(&mut a, false, OpCode::Text, b"he"), Ok(None)));
        assert!(matches!(
            feed(&mut a, true, OpCode::Ping, b"p"),
            Ok(Some(Message::Ping(_)))
        ));
        assert!(matches!(
            feed(&mut a, false, OpCode::Continue, b"ll"),
            Ok(None)
        ));
        match feed(&mut a, true, OpCode::Continue, b"o") {
            Ok(Some(Message::Text(t))) => assert_eq!(t.as_str(), "hello"),
            other => panic!("{other:?}"),
        }
        assert!(!a.in_message());
    }

    #[test]
    fn a_character_split_across_fragments_is_valid_and_broken_utf8_is_not() {
        let mut a = Assembler::new(Role::Server, 100);
        let e = "é".as_bytes();
        assert!(matches!(
            feed(&mut a, false, OpCode::Text, &e[..1]),
            Ok(None)
        ));
        assert!(matches!(
            feed(&mut a, true, OpCode::Continue, &e[1..]),
            Ok(Some(Message::Text(_)))
        ));
        assert!(matches!(
            feed(&mut a, true, OpCode::Text, &[0xC3, 0x28]),
            Err(Error::Utf8)
        ));
    }

    #[test]
    fn fragmentation_rules_are_enforced() {
        let a = Assembler::new(Role::Server, 100);
        assert!(matches!(
            a.check(&h(true, OpCode::Continue, 1)),
            Err(Error::Protocol(_))
        ));
        let mut a = Assembler::new(Role::Server, 100);
        assert!(matches!(
            feed(&mut a, false, OpCode::Binary, b"x"),
            Ok(None)
        ));
        assert!(matches!(
            a.check(&h(true, OpCode::Text, 1)),
            Err(Error::Protocol(_))
        ));
        assert!(a.check(&h(true, OpCode::Pong, 1)).is_ok());
    }

    #[test]
    fn masking_must_match_the_role() {
        let unmasked = Header {
            mask: None,
            ..h(true, OpCode::Text, 1)
        };
        assert!(Assembler::new(Role::Server, 9).check(&unmasked).is_err());
        assert!(Assembler::new(Role::Client, 9).check(&unmasked).is_ok());
        assert!(Assembler::new(Role::Client, 9)
            .check(&h(true, OpCode::Text, 1))
            .is_err());
    }

    #[test]
    fn the_size_limit_counts_every_fragment_before_the_payload_is_read() {
        let mut a = Assembler::new(Role::Server, 10);
        assert!(a.check(&h(true, OpCode::Text, 10)).is_ok());
        assert!(matches!(
            a.check(&h(true, OpCode::Text, 11)),
            Err(Error::TooBig { size: 11, max: 10 })
        ));
        assert!(matches!(
            feed(&mut a, false, OpCode::Text, b"123456"),
            Ok(None)
        ));
        assert!(a.check(&h(false, OpCode::Continue, 4)).is_ok());
        assert!(matches!(
            a.check(&h(false, OpCode::Continue, 5)),
            Err(Error::TooBig { size: 11, .. })
        ));
        a.set_max_message(20);
        assert!(a.check(&h(false, OpCode::Continue, 5)).is_ok());
    }

    #[test]
    fn close_frames_are_checked() {
        let mut a = Assembler::new(Role::Server, 10);
        assert!(matches!(
            feed(&mut a, true, OpCode::Close, b""),
            Ok(Some(Message::Close(None)))
        ));
        assert!(matches!(
            feed(&mut a, true, OpCode::Close, &[3]),
            Err(Error::Protocol(_))
        ));
        let mut ok = 4000u16.to_be_bytes().to_vec();
        ok.extend_from_slice("bye ✓".as_bytes());
        match feed(&mut a, true, OpCode::Close, &ok) {
            Ok(Some(Message::Close(Some(f)))) => {
                assert_eq!((u16::from(f.code), f.reason.as_str()), (4000, "bye ✓"))
            }
            other => panic!("{other:?}"),
        }
        let mut bad = 1000u16.to_be_bytes().to_vec();
        bad.extend_from_slice(&[0xC3, 0x28]);
        assert!(matches!(
            feed(&mut a, true, OpCode::Close, &bad),
            Err(Error::Utf8)
        ));
    }

    #[test]
    fn only_sendable_close_codes_are_valid() {
        for code in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(is_valid_close_code(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert!(!is_valid_close_code(code), "{code}");
        }
    }
}
