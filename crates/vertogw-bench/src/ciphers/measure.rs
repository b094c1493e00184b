//! The mechanism of `--mode ciphers`: a server and a client config restricted to one
//! suite (or a client to one key exchange group), full handshakes shuttled through a
//! buffer in memory, and timed loops of one record sealed by the server and opened by
//! the client.

use std::io::{Read, Write};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::crypto::{aws_lc_rs, CryptoProvider, SupportedKxGroup};
use rustls::version::{TLS12, TLS13};
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, HandshakeKind, RootCertStore, ServerConfig,
    ServerConnection, SideData, SupportedCipherSuite, SupportedProtocolVersion,
};
use rustls_pki_types::ServerName;
use vertogw_net::tls::{certs_from_pem, key_from_pem, SelfSigned};

use super::{CipherError, Group, Negotiation, Suite, SERVER_NAME};

/// Flights a handshake may take before it counts as stalled (TLS 1.3 with tickets
/// takes 3 exchanges, TLS 1.2 4).
const MAX_FLIGHTS: usize = 8;

/// Untimed records before each timed loop: a tenth of the timed ones, within these.
const WARMUP_RECORDS: RangeInclusive<u64> = 100..=20_000;

/// Untimed handshakes before the timed ones.
const WARMUP_HANDSHAKES: u32 = 100;

/// The ALPN protocol WebSocket clients offer and the gateway selects.
const ALPN: &[u8] = b"http/1.1";

/// The TLS 1.3 orders browsers offer on x86-64 with AES instructions (Chrome's
/// BoringSSL; Firefox's NSS puts ChaCha20 second).
const BROWSER_ORDERS: [(&str, [Suite; 3]); 2] = [
    (
        "Chrome order",
        [Suite::Aes128Gcm, Suite::Aes256Gcm, Suite::Chacha20Poly1305],
    ),
    (
        "Firefox order",
        [Suite::Aes128Gcm, Suite::Chacha20Poly1305, Suite::Aes256Gcm],
    ),
];

/// The key exchange groups both browsers offer, in their order (Chrome since 131,
/// Firefox since 132: the post-quantum hybrid first, with an X25519 share beside it).
const BROWSER_GROUPS: [Group; 3] = [Group::X25519Mlkem768, Group::X25519, Group::Secp256r1];

/// What one suite measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteMeasurement {
    /// The suite.
    pub suite: Suite,
    /// Its handshakes.
    pub handshakes: HandshakeMeasurement,
    /// Its records, one entry per size.
    pub records: Vec<RecordMeasurement>,
}

/// Timed full handshakes of one suite.
#[derive(Debug, Clone, PartialEq)]
pub struct HandshakeMeasurement {
    /// Handshakes timed.
    pub count: u32,
    /// Time in the server's calls (new connection, read, process, write), all of them.
    pub server: Duration,
    /// Time in the client's calls, all of them.
    pub client: Duration,
    /// The key exchange group negotiated.
    pub kx_group: String,
    /// Bytes the client sent in one handshake (the last one timed).
    pub client_bytes: usize,
    /// Bytes the server sent in it (its tickets included).
    pub server_bytes: usize,
}

/// Timed records of one suite and size.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordMeasurement {
    /// Plaintext bytes per record.
    pub bytes: usize,
    /// Bytes on the wire per record (header, content type and tag included).
    pub wire_bytes: usize,
    /// Records timed.
    pub iterations: u64,
    /// The whole loop: the server writes and seals, the client reads, opens, reads out.
    pub total: Duration,
    /// The server's half alone (write, seal, `write_tls`), over as many records.
    pub seal: Duration,
}

/// One suite's configs, or any server and client pair.
pub struct Endpoints {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    name: ServerName<'static>,
    /// The suite every handshake must negotiate, when measuring one.
    expect: Option<Suite>,
}

/// Two connected ends.
pub struct Pair {
    client: ClientConnection,
    server: ServerConnection,
}

/// CPU time spent and bytes sent by each side.
#[derive(Debug, Default, Clone, Copy)]
struct Sides {
    server: Duration,
    client: Duration,
    server_bytes: usize,
    client_bytes: usize,
}

impl Endpoints {
    /// A server like the gateway's (ALPN, stateless tickets) and a client trusting its
    /// certificate without resumption, both offering only `suite`.
    pub fn new(suite: Suite, cert: &SelfSigned) -> Result<Endpoints, CipherError> {
        let version: &'static SupportedProtocolVersion = match suite.is_tls13() {
            true => &TLS13,
            false => &TLS12,
        };
        let only = provider(&[suite.supported()]);
        Ok(Endpoints {
            server: server_config(Arc::clone(&only), version, cert)?,
            client: client_config(only, &[version], cert)?,
            name: server_name()?,
            expect: Some(suite),
        })
    }

    /// A server like the gateway's (every group of the provider, the client's choice)
    /// and a client offering only `group`, both with AES-128-GCM only.
    pub fn with_group(group: Group, cert: &SelfSigned) -> Result<Endpoints, CipherError> {
        let suite = Suite::Aes128Gcm;
        let server = provider(&[suite.supported()]);
        let client = Arc::new(CryptoProvider {
            kx_groups: vec![group.supported()],
            ..(*server).clone()
        });
        Ok(Endpoints {
            server: server_config(server, &TLS13, cert)?,
            client: client_config(client, &[&TLS13], cert)?,
            name: server_name()?,
            expect: Some(suite),
        })
    }

    /// One full handshake in memory; the pair and the time each side spent.
    fn handshake(&self, wire: &mut Vec<u8>) -> Result<(Pair, Sides), CipherError> {
        let mut sides = Sides::default();
        let mut client = timed(&mut sides.client, || {
            ClientConnection::new(Arc::clone(&self.client), self.name.clone())
        })
        .map_err(rustls_err("client connection"))?;
        let mut server = timed(&mut sides.server, || {
            ServerConnection::new(Arc::clone(&self.server))
        })
        .map_err(rustls_err("server connection"))?;
        for _ in 0..MAX_FLIGHTS {
            let sent = timed(&mut sides.client, || send(&mut client, wire))?;
            sides.client_bytes += wire.len();
            timed(&mut sides.server, || receive(&mut server, wire))?;
            let answered = timed(&mut sides.server, || send(&mut server, wire))?;
            sides.server_bytes += wire.len();
            timed(&mut sides.client, || receive(&mut client, wire))?;
            if !sent && !answered && !client.is_handshaking() && !server.is_handshaking() {
                let pair = Pair { client, server };
                self.check(&pair)?;
                return Ok((pair, sides));
            }
        }
        Err(CipherError::Protocol(format!(
            "the handshake did not finish in {MAX_FLIGHTS} flights"
        )))
    }

    /// A full handshake of the expected suite.
    fn check(&self, pair: &Pair) -> Result<(), CipherError> {
        if pair.server.handshake_kind() != Some(HandshakeKind::Full) {
            return Err(CipherError::Protocol("a handshake resumed".into()));
        }
        let got = pair.server.negotiated_cipher_suite();
        match (self.expect, got) {
            (Some(want), Some(got)) if want.supported().suite() != got.suite() => Err(
                CipherError::Protocol(format!("{} negotiated {:?}", want.name(), got.suite())),
            ),
            (_, None) => Err(CipherError::Protocol("no suite negotiated".into())),
            _ => Ok(()),
        }
    }
}

/// Times `count` full handshakes after a warm-up.
pub fn handshakes(ends: &Endpoints, count: u32) -> Result<HandshakeMeasurement, CipherError> {
    let mut wire = Vec::with_capacity(8 * 1024);
    let mut total = Sides::default();
    let mut kx_group = String::new();
    for i in 0..WARMUP_HANDSHAKES + count {
        let (pair, sides) = ends.handshake(&mut wire)?;
        if i >= WARMUP_HANDSHAKES {
            total.server += sides.server;
            total.client += sides.client;
            (total.server_bytes, total.client_bytes) = (sides.server_bytes, sides.client_bytes);
        }
        kx_group = group_name(pair.server.negotiated_key_exchange_group());
    }
    Ok(HandshakeMeasurement {
        count,
        server: total.server,
        client: total.client,
        kx_group,
        client_bytes: total.client_bytes,
        server_bytes: total.server_bytes,
    })
}

/// Times `iterations` records of `bytes` through a fresh pair (whole round trips), then
/// as many sealed by the server alone through another (so neither pair reaches the
/// record limit at which rustls would update or refuse keys).
pub fn records(
    ends: &Endpoints,
    bytes: usize,
    iterations: u64,
) -> Result<RecordMeasurement, CipherError> {
    let payload = vec![b'x'; bytes];
    let mut opened = vec![0; bytes];
    let mut wire = Vec::with_capacity(bytes + 1024);
    let warmup = (iterations / 10).clamp(*WARMUP_RECORDS.start(), *WARMUP_RECORDS.end());

    let (mut pair, _) = ends.handshake(&mut wire)?;
    record(&mut pair, &payload, &mut wire, &mut opened)?;
    if opened != payload {
        return Err(CipherError::Protocol(
            "a record opened to other bytes".into(),
        ));
    }
    let wire_bytes = wire.len();
    for _ in 0..warmup {
        record(&mut pair, &payload, &mut wire, &mut opened)?;
    }
    let start = Instant::now();
    for _ in 0..iterations {
        record(&mut pair, &payload, &mut wire, &mut opened)?;
    }
    let total = start.elapsed();

    let (mut pair, _) = ends.handshake(&mut wire)?;
    for _ in 0..warmup {
        seal(&mut pair.server, &payload, &mut wire)?;
    }
    let start = Instant::now();
    for _ in 0..iterations {
        seal(&mut pair.server, &payload, &mut wire)?;
    }
    let seal = start.elapsed();
    Ok(RecordMeasurement {
        bytes,
        wire_bytes,
        iterations,
        total,
        seal,
    })
}

/// The suite and group each client order gets from the gateway's own server config
/// (which follows the client's order): rustls' default client first, then the
/// browsers'.
pub fn negotiations(cert: &SelfSigned) -> Result<Vec<Negotiation>, CipherError> {
    let (pem, key) = (cert.cert_pem.as_bytes(), cert.key_pem.as_bytes());
    let gateway = vertogw_net::tls::server_config_from_pem(pem, key, "self-signed")?;
    let default = aws_lc_rs::default_provider();
    let mut clients = vec![(
        "rustls default client".to_owned(),
        default.cipher_suites.clone(),
        default.kx_groups.clone(),
    )];
    for (who, order) in BROWSER_ORDERS {
        let groups = BROWSER_GROUPS.map(Group::supported).to_vec();
        clients.push((who.to_owned(), order.map(Suite::supported).to_vec(), groups));
    }
    let mut wire = Vec::new();
    let mut found = Vec::with_capacity(clients.len());
    for (who, suites, kx_groups) in clients {
        let offers = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        let offers_groups = kx_groups.iter().map(|g| group_name(Some(*g))).collect();
        let client = Arc::new(CryptoProvider {
            cipher_suites: suites,
            kx_groups,
            ..aws_lc_rs::default_provider()
        });
        let ends = Endpoints {
            server: Arc::clone(&gateway),
            client: client_config(client, &[&TLS13, &TLS12], cert)?,
            name: server_name()?,
            expect: None,
        };
        let (pair, _) = ends.handshake(&mut wire)?;
        let got = pair
            .server
            .negotiated_cipher_suite()
            .map_or_else(|| "none".to_owned(), |s| format!("{:?}", s.suite()));
        found.push(Negotiation {
            client: who,
            offers,
            negotiated: got,
            offers_groups,
            kx_group: group_name(pair.server.negotiated_key_exchange_group()),
        });
    }
    Ok(found)
}

/// A group's name as rustls prints it, or `none`.
fn group_name(group: Option<&dyn SupportedKxGroup>) -> String {
    group.map_or_else(|| "none".to_owned(), |g| format!("{:?}", g.name()))
}

/// The server writes (and so seals) `payload`, the client reads the record and opens it
/// into `opened`.
fn record(
    pair: &mut Pair,
    payload: &[u8],
    wire: &mut Vec<u8>,
    opened: &mut [u8],
) -> Result<(), CipherError> {
    seal(&mut pair.server, payload, wire)?;
    receive(&mut pair.client, wire)?;
    pair.client
        .reader()
        .read_exact(opened)
        .map_err(io_err("reading the plaintext out"))
}

/// The server writes `payload` and moves its record into `wire`.
fn seal(
    server: &mut ServerConnection,
    payload: &[u8],
    wire: &mut Vec<u8>,
) -> Result<(), CipherError> {
    server
        .writer()
        .write_all(payload)
        .map_err(io_err("writing the plaintext"))?;
    send(server, wire).map(drop)
}

/// Moves everything `conn` has to send into `wire` (emptied first); whether it sent any.
fn send<D: SideData>(
    conn: &mut ConnectionCommon<D>,
    wire: &mut Vec<u8>,
) -> Result<bool, CipherError> {
    wire.clear();
    while conn.wants_write() {
        conn.write_tls(wire).map_err(io_err("write_tls"))?;
    }
    Ok(!wire.is_empty())
}

/// Feeds all of `wire` to `conn` and processes it.
fn receive<D: SideData>(conn: &mut ConnectionCommon<D>, wire: &[u8]) -> Result<(), CipherError> {
    if wire.is_empty() {
        return Ok(());
    }
    let mut rest = wire;
    while !rest.is_empty() {
        if conn.read_tls(&mut rest).map_err(io_err("read_tls"))? == 0 {
            return Err(CipherError::Protocol("read_tls took nothing".into()));
        }
    }
    conn.process_new_packets()
        .map(drop)
        .map_err(rustls_err("process_new_packets"))
}

/// Runs `f`, adding its duration to `acc`.
fn timed<T>(acc: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    *acc += start.elapsed();
    out
}

/// The aws-lc-rs provider with only `suites`, in that order.
fn provider(suites: &[SupportedCipherSuite]) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: suites.to_vec(),
        ..aws_lc_rs::default_provider()
    })
}

fn server_name() -> Result<ServerName<'static>, CipherError> {
    ServerName::try_from(SERVER_NAME)
        .map_err(|e| CipherError::Protocol(format!("server name {SERVER_NAME}: {e}")))
}

fn server_config(
    provider: Arc<CryptoProvider>,
    version: &'static SupportedProtocolVersion,
    cert: &SelfSigned,
) -> Result<Arc<ServerConfig>, CipherError> {
    let certs = certs_from_pem(cert.cert_pem.as_bytes(), "self-signed certificate")?;
    let key = key_from_pem(cert.key_pem.as_bytes(), "self-signed key")?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .map_err(rustls_err("server config"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rustls_err("server certificate"))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.ticketer = aws_lc_rs::Ticketer::new().map_err(rustls_err("ticketer"))?;
    Ok(Arc::new(config))
}

/// A client trusting exactly `cert` that never resumes, so every handshake is full.
fn client_config(
    provider: Arc<CryptoProvider>,
    versions: &[&'static SupportedProtocolVersion],
    cert: &SelfSigned,
) -> Result<Arc<ClientConfig>, CipherError> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(cert.cert_pem.as_bytes(), "self-signed certificate")? {
        roots.add(c).map_err(rustls_err("trusted certificate"))?;
    }
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(rustls_err("client config"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

fn rustls_err(what: &'static str) -> impl Fn(rustls::Error) -> CipherError {
    move |source| CipherError::Rustls {
        what: what.into(),
        source,
    }
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> CipherError {
    move |source| CipherError::Io {
        what: what.into(),
        source,
    }
}
