//! The `proxy_header` target: the first bytes of a connection from a load balancer.

use crate::config::ProxyVersion;
use crate::proxy::proxy_header::{frame, parse, Framing, Source, MAX_V1_BYTES, MAX_V2_BYTES};

/// The PROXY header framing and parsing (`proxy::proxy_header`), fed the connection's
/// bytes one at a time as they could arrive.
///
/// Input: byte 0 bit 0 picks the version the map expects (v1 or v2); the rest is what
/// the connection sends. Properties: no panic; once a prefix is refused, every longer
/// one is (bytes arriving later never turn a refusal into a header); once a prefix holds
/// a whole header, every longer one holds the same; a header ends within the version's
/// bound and never asks for bytes beyond it; a v2 header names a client only when its
/// command is PROXY over IPv4 or IPv6, and a v1 header only when it says TCP4 or TCP6.
pub fn proxy_header(data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let (version, max) = match control & 1 {
        0 => (ProxyVersion::V1, MAX_V1_BYTES),
        _ => (ProxyVersion::V2, MAX_V2_BYTES),
    };
    let mut refused = false;
    let mut complete = None;
    for n in 0..=bytes.len().min(max + 1) {
        match frame(version, &bytes[..n]) {
            Err(_) => refused = true,
            Ok(Framing::Partial) => {
                assert!(!refused, "refused at a shorter prefix, partial at {n}");
                assert!(
                    complete.is_none(),
                    "complete at a shorter prefix, partial at {n}"
                );
                assert!(n < max, "{n} bytes, no end and no refusal");
            }
            Ok(Framing::Complete(end)) => {
                assert!(!refused, "refused at a shorter prefix, complete at {n}");
                assert!(end <= n && end <= max, "end {end} with {n} bytes");
                assert!(complete.is_none_or(|e| e == end), "the end moved to {end}");
                complete = Some(end);
            }
        }
    }
    let Some(end) = complete else {
        return;
    };
    let header = &bytes[..end];
    if let Ok(Source::Client(_)) = parse(version, header) {
        match version {
            ProxyVersion::V1 => assert!(
                header.starts_with(b"PROXY TCP4 ") || header.starts_with(b"PROXY TCP6 "),
                "a client from a v1 header that is not TCP4/TCP6"
            ),
            ProxyVersion::V2 => {
                assert_eq!(header.get(12), Some(&0x21), "a client without PROXY v2");
                let family = header.get(13).map(|b| b >> 4);
                assert!(
                    matches!(family, Some(1 | 2)),
                    "a client of family {family:?}"
                );
            }
        }
    }
}
