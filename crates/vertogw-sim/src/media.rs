//! The node's stand-in for media: a DTLS certificate fingerprint, random ICE
//! credentials and RTP port numbers, enough for SDP a browser accepts. No packet is
//! ever sent or received.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sdp::Local;

/// The RTP ports the node puts in its SDP, like the captured node's `rtp-start-port` /
/// `rtp-end-port` (nothing listens on them).
pub const RTP_PORTS: RangeInclusive<u16> = 10000..=10399;

/// What an ICE username fragment and password are made of (RFC 8839 `ice-char`, minus
/// `+` and `/` so they read well in logs).
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The node-wide part of every SDP it writes.
pub(crate) struct Media {
    /// `a=fingerprint:sha-256` value: colon-separated upper-case hex.
    fingerprint: String,
    next_port: AtomicU32,
}

impl Media {
    /// Generates the node's certificate (rcgen, through vertogw-net) and keeps the
    /// SHA-256 of its DER.
    pub(crate) fn generate(node: &str) -> Media {
        let der = match certificate_der() {
            Ok(der) => der,
            Err(reason) => {
                // No DTLS handshake ever runs, so any 32 bytes make a fingerprint a
                // browser accepts; losing the certificate must not stop the node.
                tracing::warn!(%node, %reason, "sim: no DTLS certificate, random fingerprint");
                random_bytes::<32>().to_vec()
            }
        };
        Media {
            fingerprint: colon_hex(sha256(&der).as_ref()),
            next_port: AtomicU32::new(0),
        }
    }

    /// The next port of [`RTP_PORTS`], round robin.
    pub(crate) fn next_port(&self) -> u16 {
        let span = u32::from(RTP_PORTS.end() - RTP_PORTS.start()) + 1;
        let step = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
        // `step` < `span` ≤ 400, so it fits.
        RTP_PORTS.start() + step as u16
    }

    /// Fresh ICE credentials and session id for one SDP on `port`.
    pub(crate) fn local(&self, port: u16) -> Local {
        Local {
            ufrag: ice_token(16),
            pwd: ice_token(24),
            fingerprint: self.fingerprint.clone(),
            port,
            session_id: u64::from_le_bytes(random_bytes::<8>()) >> 2,
        }
    }
}

fn certificate_der() -> Result<Vec<u8>, String> {
    let cert = vertogw_net::tls::self_signed(&["vertogw-sim"]).map_err(|e| e.to_string())?;
    let chain = vertogw_net::tls::certs_from_pem(cert.cert_pem.as_bytes(), "the DTLS certificate")
        .map_err(|e| e.to_string())?;
    chain
        .first()
        .map(|der| der.as_ref().to_vec())
        .ok_or_else(|| "empty chain".to_owned())
}

/// SHA-256 from the workspace's one crypto provider (aws-lc-rs, through rustls).
fn sha256(data: &[u8]) -> rustls::crypto::hash::Output {
    use rustls::SupportedCipherSuite;
    let hash = match rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256 {
        SupportedCipherSuite::Tls13(suite) => suite.common.hash_provider,
        SupportedCipherSuite::Tls12(suite) => suite.common.hash_provider,
    };
    hash.hash(data)
}

/// `AB:CD:…`, as SDP writes fingerprints.
fn colon_hex(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

fn ice_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ICE_CHARS[usize::from(*b) % ICE_CHARS.len()]))
        .collect()
}

/// `N` random bytes.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes);
    bytes
}

/// Fills `buf` from the system's secure random source, or from the clock if that
/// fails: the simulator needs uniqueness, not secrecy.
pub(crate) fn fill_random(buf: &mut [u8]) {
    let rng = rustls::crypto::aws_lc_rs::default_provider().secure_random;
    if rng.fill(buf).is_ok() {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, b) in buf.iter_mut().enumerate() {
        *b = nanos.rotate_left(i as u32 * 8).to_le_bytes()[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_thirty_two_colon_separated_hex_bytes() {
        let fingerprint = Media::generate("t").local(10000).fingerprint;
        let parts: Vec<&str> = fingerprint.split(':').collect();
        assert_eq!(parts.len(), 32);
        assert!(parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())));
        let other = Media::generate("t").local(10000).fingerprint;
        assert_ne!(fingerprint, other, "one certificate per node");
    }

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        assert_eq!(
            colon_hex(sha256(b"abc").as_ref()).replace(':', ""),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }

    #[test]
    fn ports_stay_in_range_and_wrap() {
        let media = Media::generate("t");
        let span = usize::from(RTP_PORTS.end() - RTP_PORTS.start()) + 1;
        let ports: Vec<u16> = (0..span + 1).map(|_| media.next_port()).collect();
        assert!(ports.iter().all(|p| RTP_PORTS.contains(p)));
        assert_eq!(ports[0], *RTP_PORTS.start());
        assert_eq!(ports[span], *RTP_PORTS.start());
    }

    #[test]
    fn ice_credentials_are_long_enough_and_differ_per_sdp() {
        let media = Media::generate("t");
        let (a, b) = (media.local(10000), media.local(10000));
        assert!(a.ufrag.len() >= 4 && a.pwd.len() >= 22);
        assert_ne!((a.ufrag, a.pwd), (b.ufrag, b.pwd));
    }
}
