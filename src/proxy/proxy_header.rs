//! Reading the PROXY protocol header (HAProxy's specification, v1 text or v2 binary)
//! that a TCP load balancer sends before the client's TLS bytes: exactly the header's
//! bytes are consumed, so the TLS handshake (or the plain-HTTP check) starts on the
//! client's first byte. The parsing itself is the `ppp` crate's; this module frames
//! the header on the wire and bounds it.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};

use ppp::{v1, v2};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::per_ip;
use super::throttle::Throttle;
use crate::config::ProxyVersion;

/// Largest v1 header, `\r\n` included (the specification's own bound).
pub const MAX_V1_BYTES: usize = 107;

/// Largest v2 header accepted: its 16 fixed bytes, the addresses (36 for IPv6) and
/// TLVs. 536 bytes is TCP's default maximum segment size (RFC 879), which every path
/// carries, so a header within it arrives in one segment; it holds what balancers in
/// front of a TLS terminator send (a unique id of up to 128 bytes, a cloud endpoint
/// id, an authority). A balancer sending
/// more (TLS details of a connection it terminated itself) is refused, as it should
/// not be terminating TLS in front of this gateway.
pub const MAX_V2_BYTES: usize = 536;

/// The 12 bytes every v2 header starts with.
const V2_SIGNATURE: &[u8] = v2::PROTOCOL_PREFIX;

/// The fixed part of a v2 header: signature, version and command, family and
/// protocol, and the length of what follows.
const V2_FIXED_BYTES: usize = 16;

/// What every v1 header starts with.
const V1_PREFIX: &[u8] = b"PROXY ";

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// Whom the header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A relayed connection: the client's address and port.
    Client(SocketAddr),
    /// The balancer's own connection (v2 `LOCAL`, v1 `UNKNOWN`, or a v2 family other
    /// than IPv4 or IPv6, such as a health check): the TCP peer stays the address.
    Local,
}

/// Why a connection's header is refused; the connection is closed before TLS.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The connection opened with something else, a TLS ClientHello most often.
    #[error("no PROXY header: the connection opened with other bytes")]
    Missing,
    /// A header of the other version than `proxy_protocol` says.
    #[error("a PROXY header of the other version (expected {0})")]
    WrongVersion(ProxyVersion),
    /// A header the specification does not allow.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// Longer than [`MAX_V1_BYTES`] or [`MAX_V2_BYTES`].
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
    /// The connection ended before the header did.
    #[error("the connection ended inside the PROXY header")]
    Closed,
    /// The socket failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

impl HeaderError {
    /// The `failure` field of its log line.
    pub fn failure(&self) -> &'static str {
        match self {
            HeaderError::Missing => "proxy_header_missing",
            HeaderError::WrongVersion(_) => "proxy_header_version",
            HeaderError::Malformed(_) => "proxy_header_malformed",
            HeaderError::TooLong(_) => "proxy_header_too_long",
            HeaderError::Closed | HeaderError::Io(_) => "proxy_header_closed",
        }
    }

    /// Whether it says the balancer and the map disagree (worth a warning), rather than
    /// that a connection went away.
    pub fn is_misconfiguration(&self) -> bool {
        !matches!(self, HeaderError::Closed | HeaderError::Io(_))
    }
}

/// How much of a header the bytes so far hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// The header is the first this many bytes.
    Complete(usize),
    /// All the bytes so far are header, and more are needed.
    Partial,
}

impl ProxyVersion {
    fn max_bytes(self) -> usize {
        match self {
            ProxyVersion::V1 => MAX_V1_BYTES,
            ProxyVersion::V2 => MAX_V2_BYTES,
        }
    }
}

/// Where the header of `version` ends in `bytes`, the first bytes of a connection.
/// Decides from the first byte that cannot start such a header, so a connection
/// without one is refused as soon as its first bytes arrive.
pub(crate) fn frame(version: ProxyVersion, bytes: &[u8]) -> Result<Framing, HeaderError> {
    let starts = |prefix: &[u8]| {
        let n = bytes.len().min(prefix.len());
        bytes[..n] == prefix[..n]
    };
    let own = match version {
        ProxyVersion::V1 => V1_PREFIX,
        ProxyVersion::V2 => V2_SIGNATURE,
    };
    if !starts(own) {
        let other = match version {
            ProxyVersion::V1 => V2_SIGNATURE,
            ProxyVersion::V2 => V1_PREFIX,
        };
        return Err(if starts(other) {
            HeaderError::WrongVersion(version)
        } else if bytes.first() == Some(&TLS_HANDSHAKE) {
            HeaderError::Missing
        } else {
            HeaderError::Malformed("it does not start as a PROXY header".into())
        });
    }
    let max = version.max_bytes();
    let end = match version {
        ProxyVersion::V1 => bytes.iter().position(|&b| b == b'\n').map(|i| i + 1),
        ProxyVersion::V2 => bytes
            .get(V2_FIXED_BYTES - 2..V2_FIXED_BYTES)
            .map(|len| V2_FIXED_BYTES + usize::from(u16::from_be_bytes([len[0], len[1]]))),
    };
    match end {
        Some(end) if end > max => Err(HeaderError::TooLong(max)),
        Some(end) if end <= bytes.len() => Ok(Framing::Complete(end)),
        None if bytes.len() >= max => Err(HeaderError::TooLong(max)),
        _ => Ok(Framing::Partial),
    }
}

/// Parses one whole header, exactly its bytes.
pub(crate) fn parse(version: ProxyVersion, header: &[u8]) -> Result<Source, HeaderError> {
    let malformed = |e: &dyn std::fmt::Display| HeaderError::Malformed(e.to_string());
    match version {
        ProxyVersion::V1 => {
            let parsed = v1::Header::try_from(header).map_err(|e| malformed(&e))?;
            if parsed.header.len() != header.len() {
                return Err(malformed(&"bytes after the first \\r"));
            }
            Ok(match parsed.addresses {
                v1::Addresses::Tcp4(a) => client(a.source_address.into(), a.source_port),
                v1::Addresses::Tcp6(a) => client(a.source_address.into(), a.source_port),
                v1::Addresses::Unknown => Source::Local,
            })
        }
        ProxyVersion::V2 => {
            let parsed = v2::Header::try_from(header).map_err(|e| malformed(&e))?;
            Ok(match (parsed.command, parsed.addresses) {
                (v2::Command::Local, _) => Source::Local,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    client(a.source_address.into(), a.source_port)
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    client(a.source_address.into(), a.source_port)
                }
                (v2::Command::Proxy, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => {
                    Source::Local
                }
            })
        }
    }
}

fn client(ip: IpAddr, port: u16) -> Source {
    Source::Client(SocketAddr::new(ip, port))
}

/// Reads the header of `version` that opens `tcp`, consuming exactly its bytes.
///
/// Peeks at what has arrived; once it holds the whole header, reads exactly that
/// much. Until then every byte that arrived is header, so it is read (and the next
/// peek waits for new bytes instead of spinning). Each pass consumes at least one
/// byte and the header is bounded, so the loop is too; the caller bounds the time.
pub async fn read(tcp: &mut TcpStream, version: ProxyVersion) -> Result<Source, HeaderError> {
    let max = version.max_bytes();
    let mut buf = [0u8; MAX_V2_BYTES];
    let mut consumed = 0;
    while consumed < max {
        let peeked = tcp.peek(&mut buf[consumed..max]).await?;
        if peeked == 0 {
            return Err(HeaderError::Closed);
        }
        let seen = consumed + peeked;
        match frame(version, &buf[..seen]) {
            Ok(Framing::Complete(end)) => {
                tcp.read_exact(&mut buf[consumed..end]).await?;
                return parse(version, &buf[..end]);
            }
            Ok(Framing::Partial) => {
                tcp.read_exact(&mut buf[consumed..seen]).await?;
                consumed = seen;
            }
            Err(err) => return Err(err),
        }
    }
    Err(HeaderError::TooLong(max))
}

/// How much of what a refused connection has already sent is read before it is
/// closed, so it sees the close as an end of stream (FIN) rather than a reset.
const DISCARD_BYTES: usize = 16 * 1024;

/// Reads and drops what has arrived on `tcp` (up to [`DISCARD_BYTES`], never waiting)
/// before it is closed: closing with unread bytes makes the kernel reset the
/// connection, and a client then reports a reset instead of a closed connection.
pub fn discard_pending(tcp: &TcpStream) {
    let mut sink = [0u8; 4096];
    for _ in 0..DISCARD_BYTES / sink.len() {
        match tcp.try_read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// Logs a connection from an address not in `proxy_protocol_from`, refused.
pub fn log_unlisted(throttle: &mut Throttle, sender: SocketAddr) {
    if let Some(refused) = throttle.note() {
        warn!(
            failure = "proxy_unlisted_sender",
            refused,
            %sender,
            "connection refused: not from a load balancer in proxy_protocol_from"
        );
    }
}

/// The refusal logs of one accept loop's connections from load balancers, which are
/// refused in their own tasks (once the header is read), not in the loop.
#[derive(Default)]
pub struct ProxiedRefusals {
    inner: Mutex<(Throttle, per_ip::RefusalLog)>,
}

impl ProxiedRefusals {
    fn lock(&self) -> MutexGuard<'_, (Throttle, per_ip::RefusalLog)> {
        // Tallies for log lines: whatever panicked while holding them left valid numbers.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a refused header from `balancer`: a warning when the balancer and the map
    /// seem to disagree (throttled), else at debug.
    pub fn header(&self, balancer: SocketAddr, err: &HeaderError) {
        if !err.is_misconfiguration() {
            return debug!(failure = err.failure(), %balancer, error = %err, "PROXY header refused");
        }
        if let Some(refused) = self.lock().0.note() {
            warn!(
                failure = err.failure(),
                refused,
                %balancer,
                error = %err,
                "connection refused: PROXY header refused (do proxy_protocol and the load balancer agree?)"
            );
        }
    }

    /// Logs the refusal of `client`, named by a header, under the per-address limits.
    pub fn per_ip(&self, refusal: per_ip::Refusal, client: SocketAddr) {
        self.lock().1.note(refusal, client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_header(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x20 | command, family]);
        h.extend(u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend(body);
        h
    }

    fn v2_tcp4(src: [u8; 4], port: u16) -> Vec<u8> {
        let mut body = src.to_vec();
        body.extend([10, 0, 0, 1]);
        body.extend(port.to_be_bytes());
        body.extend(443u16.to_be_bytes());
        v2_header(1, 0x11, &body)
    }

    fn source(ip: &str, port: u16) -> Source {
        Source::Client(SocketAddr::new(
            ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port,
        ))
    }

    #[test]
    fn a_v1_header_is_framed_at_its_line_end_and_names_the_client() {
        let wire = b"PROXY TCP4 203.0.113.7 10.0.0.1 50000 443\r\n\x16\x03\x01";
        let end = wire.len() - 3;
        assert_eq!(
            frame(ProxyVersion::V1, wire).ok(),
            Some(Framing::Complete(end))
        );
        assert_eq!(
            parse(ProxyVersion::V1, &wire[..end]).ok(),
            Some(source("203.0.113.7", 50000))
        );
        let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 50000 443\r\n";
        assert_eq!(
            parse(ProxyVersion::V1, v6).ok(),
            Some(source("2001:db8::7", 50000))
        );
    }

    #[test]
    fn every_prefix_of_a_header_is_partial() {
        let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 50000 443\r\n".to_vec();
        let v2 = v2_tcp4([203, 0, 113, 7], 50000);
        for (version, wire) in [(ProxyVersion::V1, v1), (ProxyVersion::V2, v2)] {
            for n in 1..wire.len() {
                assert_eq!(
                    frame(version, &wire[..n]).ok(),
                    Some(Framing::Partial),
                    "{version} {n}"
                );
            }
            assert_eq!(
                frame(version, &wire).ok(),
                Some(Framing::Complete(wire.len()))
            );
        }
    }

    #[test]
    fn a_v2_header_is_framed_by_its_length_and_tlvs_are_skipped() {
        let mut body = vec![203, 0, 113, 7, 10, 0, 0, 1, 0xc3, 0x50, 1, 187];
        body.extend([0x04, 0, 2, 0, 0]); // a NOOP TLV
        let mut wire = v2_header(1, 0x11, &body);
        let end = wire.len();
        wire.extend([0x16, 0x03]);
        assert_eq!(
            frame(ProxyVersion::V2, &wire).ok(),
            Some(Framing::Complete(end))
        );
        assert_eq!(
            parse(ProxyVersion::V2, &wire[..end]).ok(),
            Some(source("203.0.113.7", 50000))
        );
    }

    #[test]
    fn local_and_unknown_keep_the_tcp_peer() {
        assert_eq!(
            parse(ProxyVersion::V1, b"PROXY UNKNOWN\r\n").ok(),
            Some(Source::Local)
        );
        let local = v2_header(0, 0x00, &[]);
        assert_eq!(parse(ProxyVersion::V2, &local).ok(), Some(Source::Local));
        let mut body = vec![127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2];
        let local_v4 = v2_header(0, 0x11, &body);
        assert_eq!(parse(ProxyVersion::V2, &local_v4).ok(), Some(Source::Local));
        body.clear();
        assert_eq!(
            parse(ProxyVersion::V2, &v2_header(1, 0x00, &body)).ok(),
            Some(Source::Local)
        );
    }

    #[test]
    fn a_tls_client_hello_is_a_missing_header_at_its_first_byte() {
        for version in [ProxyVersion::V1, ProxyVersion::V2] {
            assert!(matches!(
                frame(version, &[TLS_HANDSHAKE]),
                Err(HeaderError::Missing)
            ));
        }
    }

    #[test]
    fn a_header_of_the_other_version_is_refused_as_such() {
        assert!(matches!(
            frame(ProxyVersion::V2, b"PROXY TCP4"),
            Err(HeaderError::WrongVersion(ProxyVersion::V2))
        ));
        assert!(matches!(
            frame(ProxyVersion::V1, &V2_SIGNATURE[..3]),
            Err(HeaderError::WrongVersion(ProxyVersion::V1))
        ));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let v1 = [
            &b"PROXY TCP4 203.0.113.300 10.0.0.1 50000 443\r\n"[..],
            b"PROXY TCP4 203.0.113.7 10.0.0.1 50000 443\n",
            b"PROXY TCP5 203.0.113.7 10.0.0.1 50000 443\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 050000 443\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 50000 443\rX\n",
        ];
        for wire in v1 {
            let framed = frame(ProxyVersion::V1, wire);
            let result = match framed {
                Ok(Framing::Complete(end)) => parse(ProxyVersion::V1, &wire[..end]),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(wire)),
            };
            assert!(
                matches!(result, Err(HeaderError::Malformed(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(wire)
            );
        }
        assert!(matches!(
            frame(ProxyVersion::V1, b"GET / HTTP/1.1\r\n"),
            Err(HeaderError::Malformed(_))
        ));
        let mut bad_version = v2_tcp4([203, 0, 113, 7], 1);
        bad_version[12] = 0x31;
        assert!(matches!(
            parse(ProxyVersion::V2, &bad_version),
            Err(HeaderError::Malformed(_))
        ));
        // IPv4 with a length too short for its addresses.
        let short = v2_header(1, 0x11, &[1, 2, 3, 4]);
        assert!(matches!(
            parse(ProxyVersion::V2, &short),
            Err(HeaderError::Malformed(_))
        ));
    }

    #[test]
    fn headers_past_the_bounds_are_refused_before_they_arrive() {
        let mut long_v1 = b"PROXY ".to_vec();
        long_v1.resize(MAX_V1_BYTES, b'1');
        assert!(matches!(
            frame(ProxyVersion::V1, &long_v1),
            Err(HeaderError::TooLong(MAX_V1_BYTES))
        ));
        // Only the fixed part has arrived, announcing 521 more bytes: 537 in all.
        let announced = v2_header(1, 0x11, &[0; 521]);
        assert!(matches!(
            frame(ProxyVersion::V2, &announced[..V2_FIXED_BYTES]),
            Err(HeaderError::TooLong(MAX_V2_BYTES))
        ));
        let largest = v2_header(1, 0x11, &[0; 520]);
        assert_eq!(
            frame(ProxyVersion::V2, &largest).ok(),
            Some(Framing::Complete(MAX_V2_BYTES))
        );
    }

    #[tokio::test]
    async fn reading_consumes_the_header_and_not_one_byte_more() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let header = v2_tcp4([203, 0, 113, 7], 50000);
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            // In two parts, the second with the first bytes after the header.
            tcp.write_all(&header[..5]).await.unwrap();
            tcp.flush().await.unwrap();
            let mut rest = header[5..].to_vec();
            rest.extend(b"after");
            tcp.write_all(&rest).await.unwrap();
            tcp
        });
        let (mut tcp, _) = listener.accept().await.unwrap();
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            read(&mut tcp, ProxyVersion::V2),
        )
        .await
        .unwrap();
        assert_eq!(got.ok(), Some(source("203.0.113.7", 50000)));
        let mut after = [0u8; 5];
        tcp.read_exact(&mut after).await.unwrap();
        assert_eq!(&after, b"after");
        drop(sender.await);
    }
}
