//! One WebSocket frame header (RFC 6455 §5.2), read from and written to bytes, and the
//! payload mask. Pure: no I/O and no allocation beyond the caller's buffer.

/// The longest header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_BYTES: usize = 14;

/// Payload bytes a control frame may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// What a frame is (the reserved opcodes are refused when parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continue,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    fn from_bits(bits: u8) -> Result<OpCode, HeaderError> {
        Ok(match bits {
            0x0 => OpCode::Continue,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(HeaderError::ReservedOpcode(other)),
        })
    }

    fn bits(self) -> u8 {
        match self {
            OpCode::Continue => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: never fragmented, at most 125 bytes, allowed between the
    /// fragments of a message.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The last frame of its message.
    pub fin: bool,
    pub opcode: OpCode,
    /// The masking key (client frames carry one, server frames never do).
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
}

/// A header no endpoint may send; the connection fails with 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("reserved bits set without an extension")]
    ReservedBits,
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("fragmented control frame")]
    FragmentedControl,
    #[error("control frame with more than 125 bytes")]
    ControlTooLong,
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
}

/// Parses the header at the front of `buf`: the header and its length in bytes, or
/// `None` while `buf` holds only part of it. Violations are reported as soon as the
/// bytes that show them are there.
pub fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, HeaderError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(HeaderError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from_bits(b0 & 0x0f)?;
    let short = b1 & 0x7f;
    if opcode.is_control() {
        if !fin {
            return Err(HeaderError::FragmentedControl);
        }
        if usize::from(short) > MAX_CONTROL_PAYLOAD {
            return Err(HeaderError::ControlTooLong);
        }
    }
    let (len, mut at) = match short {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len >> 63 != 0 {
        return Err(HeaderError::LengthOverflow);
    }
    let mask = if b1 & 0x80 != 0 {
        match buf
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
        {
            Some(key) => {
                at += 4;
                Some(key)
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some((
        Header {
            fin,
            opcode,
            mask,
            len,
        },
        at,
    )))
}

/// Appends the header of a final frame of `len` payload bytes, in the shortest length
/// form, with `mask` when given.
pub fn encode(opcode: OpCode, mask: Option<[u8; 4]>, len: usize, out: &mut Vec<u8>) {
    let (head, head_len) = header(opcode, mask, len);
    out.extend_from_slice(&head[..head_len]);
}

/// The header [`encode`] writes, as bytes and their count (for rewriting a header in
/// place, where the shortest form never outgrows the one it replaces).
pub fn header(
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: usize,
) -> ([u8; MAX_HEADER_BYTES], usize) {
    let mut head = [0u8; MAX_HEADER_BYTES];
    head[0] = 0x80 | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut at = match len {
        0..=125 => {
            head[1] = mask_bit | len as u8;
            2
        }
        126..=0xffff => {
            head[1] = mask_bit | 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = mask_bit | 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        head[at..at + 4].copy_from_slice(&key);
        at += 4;
    }
    (head, at)
}

/// A masking key for a frame the gateway sends to a node: from the thread's CSPRNG, as
/// RFC 6455 §5.3 asks ("a strong source of entropy"), so no client can predict it.
pub fn new_mask() -> [u8; 4] {
    // One draw: an array would be drawn a byte at a time.
    rand::random::<u32>().to_ne_bytes()
}

/// The key that turns a payload masked with `old` into the same payload masked with
/// `new`, in one pass of [`apply_mask`].
pub fn rekey(old: [u8; 4], new: [u8; 4]) -> [u8; 4] {
    std::array::from_fn(|i| old[i] ^ new[i])
}

/// XORs `buf` with `key`, starting at key byte 0 (masking and unmasking are the same).
/// Eight bytes at a time: this runs over every byte a browser sends.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Up to 7 bytes: the key repeats, still in phase (8 is a multiple of 4).
    for (b, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> Header {
        Header {
            fin: true,
            opcode,
            mask,
            len,
        }
    }

    #[test]
    fn every_length_form_round_trips_and_a_partial_header_waits() {
        for len in [0usize, 1, 125, 126, 65_535, 65_536, 999_999] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut wire = Vec::new();
                encode(OpCode::Binary, mask, len, &mut wire);
                for cut in 0..wire.len() {
                    assert_eq!(parse(&wire[..cut]), Ok(None), "{len} {mask:?} cut {cut}");
                }
                let want = header(OpCode::Binary, mask, len as u64);
                assert_eq!(parse(&wire), Ok(Some((want, wire.len()))), "{len} {mask:?}");
            }
        }
    }

    #[test]
    fn the_shortest_length_form_is_written() {
        let sizes = |len| {
            let mut wire = Vec::new();
            encode(OpCode::Text, None, len, &mut wire);
            wire.len()
        };
        assert_eq!((sizes(125), sizes(126), sizes(65_535)), (2, 4, 4));
        assert_eq!(sizes(65_536), 10);
    }

    #[test]
    fn reserved_bits_and_opcodes_are_refused() {
        for b0 in [0x91, 0xA1, 0xC1] {
            assert_eq!(parse(&[b0, 0]), Err(HeaderError::ReservedBits), "{b0:#x}");
        }
        for op in [0x3, 0x7, 0xB, 0xF] {
            assert_eq!(parse(&[0x80 | op, 0]), Err(HeaderError::ReservedOpcode(op)));
        }
    }

    #[test]
    fn control_frames_are_final_and_short() {
        assert_eq!(parse(&[0x09, 0]), Err(HeaderError::FragmentedControl));
        assert_eq!(parse(&[0x89, 126]), Err(HeaderError::ControlTooLong));
        assert_eq!(parse(&[0x88, 127]), Err(HeaderError::ControlTooLong));
        assert!(matches!(parse(&[0x8A, 125]), Ok(Some(_))));
    }

    #[test]
    fn a_length_with_the_top_bit_set_is_refused() {
        let mut wire = vec![0x82, 127];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(parse(&wire), Err(HeaderError::LengthOverflow));
    }

    #[test]
    fn masking_twice_restores_the_payload_at_every_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let mut data = plain.clone();
            apply_mask(&mut data, key);
            let expected: Vec<u8> = plain
                .iter()
                .zip(key.iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            assert_eq!(data, expected, "{len}");
            apply_mask(&mut data, key);
            assert_eq!(data, plain, "{len}");
        }
    }

    #[test]
    fn a_rekeyed_payload_is_the_payload_under_the_new_key() {
        let (old, new) = ([0x37, 0xfa, 0x21, 0x3d], [0x00, 0x81, 0xff, 0x12]);
        for len in 0..40 {
            let plain: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7)).collect();
            let mut data = plain.clone();
            apply_mask(&mut data, old);
            apply_mask(&mut data, rekey(old, new));
            apply_mask(&mut data, new);
            assert_eq!(data, plain, "{len}");
        }
    }
}
