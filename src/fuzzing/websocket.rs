//! The `ws_frames` target: wire bytes through the relay legs' frame decoder.

use bytes::BytesMut;

use crate::websocket::{Assembler, Decoded, Role, MAX_HEADER_BYTES};

/// Message limits byte 0 chooses from: none, tiny, the control-frame edge, the 16-bit
/// length edge, a page, the 64-bit length edge.
const LIMITS: [usize; 6] = [0, 1, 125, 126, 4096, 65_536];

/// The WebSocket decoder (`websocket::Assembler::decode`) as both legs use it.
///
/// Input: byte 0 picks the role (bit 0: browser leg, which reads masked frames, or node
/// leg) and the message limit (the rest, modulo [`LIMITS`]); the remaining bytes are the
/// wire. Properties: decoding all bytes at once and in two chunks (split where byte 0
/// says) gives the same messages and the same error; a data message never exceeds the
/// limit; a request for more bytes always asks for more than are buffered and never for
/// more than a header and the limit (so a hostile length cannot make the stream buffer
/// beyond it); nothing is decoded after an error.
pub fn ws_frames(data: &[u8]) {
    let Some((&control, wire)) = data.split_first() else {
        return;
    };
    let role = if control & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let max = LIMITS[usize::from(control >> 1) % LIMITS.len()];
    let whole = decode_all(role, max, &[wire]);
    let at = (usize::from(control) * 7919) % (wire.len() + 1);
    let split = decode_all(role, max, &[&wire[..at], &wire[at..]]);
    assert_eq!(whole, split, "split at {at} decodes differently");
}

/// Every outcome, formatted, of feeding `chunks` one after the other.
fn decode_all(role: Role, max: usize, chunks: &[&[u8]]) -> Vec<String> {
    let mut reader = Assembler::new(role, max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match reader.decode(&mut buf) {
                Ok(Decoded::Frame(None)) => {}
                Ok(Decoded::Frame(Some(msg))) => {
                    if msg.is_text() || msg.is_binary() {
                        assert!(msg.len() <= max, "a {}-byte message over {max}", msg.len());
                    }
                    out.push(format!("{msg:?}"));
                }
                Ok(Decoded::Need(n)) => {
                    assert!(n > buf.len(), "asks for {n} with {} buffered", buf.len());
                    let bound = MAX_HEADER_BYTES + max.max(125);
                    assert!(n <= bound, "asks for {n} bytes, over {bound}");
                    break;
                }
                Err(e) => {
                    out.push(format!("error: {e}"));
                    return out;
                }
            }
        }
    }
    out
}
