//! Whether the bytes read so far hold a whole ClientHello, without parsing it: the
//! handshake turn is taken only then, so a peer that sends part of one cannot hold a
//! turn (RFC 8446 §5.1 records, §4 handshake messages).

/// Record content type of handshake messages.
const HANDSHAKE: u8 = 22;

/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;

/// Bytes of a record header: type, version, length.
pub(crate) const RECORD_HEADER_BYTES: usize = 5;

/// Bytes of a handshake message header: type and a 24-bit length.
const MESSAGE_HEADER_BYTES: usize = 4;

/// The largest record payload a peer may send (TLS 1.2's ciphertext bound); rustls
/// refuses larger ones, and so does this scan.
pub(crate) const MAX_RECORD_PAYLOAD: usize = 16_384 + 2_048;

/// The largest handshake message rustls accepts (64 KiB).
const MAX_MESSAGE_BYTES: usize = 0xffff;

/// What the bytes read so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hello {
    /// A prefix of a ClientHello: read more.
    Partial,
    /// A whole ClientHello (and possibly more).
    Complete,
    /// Not a ClientHello: rustls refuses it without any expensive work.
    Other,
}

/// Scans the records at the start of `buf` for one complete ClientHello.
pub(crate) fn scan(buf: &[u8]) -> Hello {
    let mut header = [0u8; MESSAGE_HEADER_BYTES];
    let mut header_len = 0;
    let mut payload = 0usize;
    let mut rest = buf;
    loop {
        let Some(record) = rest.get(..RECORD_HEADER_BYTES) else {
            return Hello::Partial;
        };
        let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
        if record[0] != HANDSHAKE || len == 0 || len > MAX_RECORD_PAYLOAD {
            return Hello::Other;
        }
        let body = &rest[RECORD_HEADER_BYTES..];
        let body = &body[..body.len().min(len)];
        for &b in body.iter().take(MESSAGE_HEADER_BYTES - header_len) {
            header[header_len] = b;
            header_len += 1;
        }
        payload += body.len();
        if header_len == MESSAGE_HEADER_BYTES {
            if header[0] != CLIENT_HELLO {
                return Hello::Other;
            }
            let message =
                usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
            if message > MAX_MESSAGE_BYTES {
                return Hello::Other;
            }
            if payload >= MESSAGE_HEADER_BYTES + message {
                return Hello::Complete;
            }
        }
        if body.len() < len {
            return Hello::Partial;
        }
        rest = &rest[RECORD_HEADER_BYTES + len..];
    }
}

/// Bytes of the whole record `buf` starts with, as far as its header tells (the header
/// alone while fewer than its 5 bytes are there); at most one maximal record.
pub(crate) fn record_bytes(buf: &[u8]) -> usize {
    match buf.get(..RECORD_HEADER_BYTES) {
        Some(h) => {
            let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
            RECORD_HEADER_BYTES + len.min(MAX_RECORD_PAYLOAD)
        }
        None => RECORD_HEADER_BYTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut r = vec![HANDSHAKE, 3, 1];
        r.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn hello(body_len: usize) -> Vec<u8> {
        let mut m = vec![CLIENT_HELLO, 0, (body_len >> 8) as u8, body_len as u8];
        m.resize(4 + body_len, 0xab);
        m
    }

    #[test]
    fn a_hello_in_one_record_is_complete_only_with_its_last_byte() {
        let wire = record(&hello(300));
        for cut in 0..wire.len() {
            assert_eq!(scan(&wire[..cut]), Hello::Partial, "cut at {cut}");
        }
        assert_eq!(scan(&wire), Hello::Complete);
        let mut more = wire.clone();
        more.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(scan(&more), Hello::Complete);
    }

    #[test]
    fn a_hello_split_over_records_even_inside_its_header_is_complete_at_the_end() {
        let msg = hello(40_000);
        let mut wire = Vec::new();
        // The message header itself is split: 2 bytes, then 1, then the rest in 16 KiB.
        wire.extend(record(&msg[..2]));
        wire.extend(record(&msg[2..3]));
        for chunk in msg[3..].chunks(16_384) {
            wire.extend(record(chunk));
        }
        let last = wire.len();
        assert_eq!(scan(&wire[..last - 1]), Hello::Partial);
        assert_eq!(scan(&wire[..7]), Hello::Partial);
        assert_eq!(scan(&wire), Hello::Complete);
    }

    #[test]
    fn anything_else_is_left_to_rustls_to_refuse() {
        assert_eq!(scan(b"GET / HTTP/1.1\r\n"), Hello::Other);
        assert_eq!(scan(&[HANDSHAKE, 3, 1, 0, 0]), Hello::Other, "empty record");
        assert_eq!(
            scan(&[HANDSHAKE, 3, 1, 0xff, 0xff]),
            Hello::Other,
            "oversize record"
        );
        let server_hello = record(&[2, 0, 0, 1, 0]);
        assert_eq!(scan(&server_hello), Hello::Other);
        let huge = record(&[CLIENT_HELLO, 1, 0, 0]);
        assert_eq!(scan(&huge), Hello::Other, "a message over 64 KiB");
    }

    #[test]
    fn any_bytes_at_all_are_scanned_without_a_panic_and_with_a_bounded_record() {
        // A fixed xorshift stream: the same 20,000 inputs every run, biased towards
        // handshake records so that the scan goes deep.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = buf.first_mut() {
                if next() % 4 != 0 {
                    *first = HANDSHAKE;
                }
            }
            if buf.len() > 5 && next() % 2 == 0 {
                buf[5] = CLIENT_HELLO;
                buf[3] = 0;
            }
            let _ = scan(&buf);
            let whole = record_bytes(&buf);
            assert!(
                (RECORD_HEADER_BYTES..=RECORD_HEADER_BYTES + MAX_RECORD_PAYLOAD).contains(&whole)
            );
        }
    }

    #[test]
    fn record_bytes_reads_the_header_and_caps_at_one_maximal_record() {
        assert_eq!(record_bytes(&[]), 5);
        assert_eq!(record_bytes(&[23, 3, 3, 0]), 5);
        assert_eq!(record_bytes(&[23, 3, 3, 0x40, 0x11]), 5 + 0x4011);
        assert_eq!(
            record_bytes(&[23, 3, 3, 0xff, 0xff]),
            5 + MAX_RECORD_PAYLOAD
        );
    }
}
