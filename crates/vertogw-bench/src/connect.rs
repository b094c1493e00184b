//! Reaching the target like a browser: TCP (no Nagle), TLS with an SNI name, then the
//! WebSocket upgrade. The target URL is parsed and resolved once, up front.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::tap::Tap;
use super::{BenchError, ErrorKind};

/// Initial WebSocket read buffer per session: small, so 10,000 sessions stay cheap.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Largest message accepted from the target.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// How the bench trusts the target's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly the certificates of this PEM text.
    Pem(Vec<u8>),
    /// Any certificate (signatures are still checked).
    Insecure,
}

/// A parsed, resolved target.
#[derive(Clone)]
pub struct Target {
    addr: SocketAddr,
    host_header: String,
    path: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Sessions that keep a TLS session to resume (`--resume`): the first index and one
    /// connector each, whose client config has its own session store.
    resuming: Option<(usize, Arc<[TlsConnector]>)>,
    /// TLS handshakes that resumed a session.
    resumed: Arc<AtomicU64>,
    first_failure: Arc<[AtomicBool; 3]>,
}

/// A socket to the target, plain or TLS.
pub type BenchStream = vertogw_net::MaybeTls;

/// A session's WebSocket, over a tap that reads the close code as sent.
pub type Ws = WebSocketStream<Tap<BenchStream>>;

impl Target {
    /// Parses `url` (`ws://` or `wss://`, loopback only), resolves it and builds the TLS
    /// client config; `sni` overrides the name sent and verified. Sessions whose index
    /// lies in `resume` each keep the TLS session of their last connection and offer it
    /// on the next, as a reconnecting browser does; the others never resume.
    pub async fn new(
        url: &str,
        trust: &Trust,
        sni: Option<&str>,
        resume: Range<usize>,
    ) -> Result<Target, BenchError> {
        let bad = |why: &str| BenchError::Url(format!("{url}: {why}"));
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(bad("the scheme must be ws:// or wss://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority
            .port_u16()
            .unwrap_or(if secure { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| bad(&format!("cannot resolve: {e}")))?
            .find(|a| a.ip().is_loopback())
            .ok_or_else(|| bad("the bench only targets loopback addresses (127.0.0.1, ::1)"))?;
        let mut resuming = None;
        let tls = match secure {
            true => {
                let name = sni.unwrap_or(host).to_owned();
                let server_name = ServerName::try_from(name).map_err(|_| bad("bad SNI name"))?;
                let config = client_config(trust)?;
                if !resume.is_empty() {
                    resuming = Some((resume.start, resuming_connectors(&config, resume.len())));
                }
                Some((TlsConnector::from(config), server_name))
            }
            false => None,
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Target {
            addr,
            host_header: authority.as_str().to_owned(),
            path,
            tls,
            resuming,
            resumed: Arc::default(),
            first_failure: Arc::default(),
        })
    }

    /// TLS handshakes so far that resumed a session.
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    fn connector(&self, index: usize) -> Option<(&TlsConnector, &ServerName<'static>)> {
        let (shared, name) = self.tls.as_ref()?;
        let own = self.resuming.as_ref().and_then(|(first, connectors)| {
            let i = index.checked_sub(*first)?;
            connectors.get(i)
        });
        Some((own.unwrap_or(shared), name))
    }

    /// TCP + TLS + upgrade for session `index`, each failure mapped to its category.
    pub async fn connect(&self, index: usize) -> Result<Ws, ErrorKind> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| self.failed(ErrorKind::Connect, &e))?;
        // Small request/reply messages: Nagle would add up to 40 ms per round trip.
        tcp.set_nodelay(true)
            .map_err(|e| self.failed(ErrorKind::Connect, &e))?;
        let stream = match self.connector(index) {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| self.failed(ErrorKind::Tls, &e))?;
                if tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                    self.resumed.fetch_add(1, Ordering::Relaxed);
                }
                BenchStream::tls(tls)
            }
            None => BenchStream::Plain(tcp),
        };
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let uri = format!("{scheme}://{}{}", self.host_header, self.path);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(uri, Tap::new(stream), Some(config))
                .await
                .map_err(|e| self.failed(ErrorKind::Upgrade, &e))?;
        Ok(ws)
    }

    /// Logs the first failure of each category with its cause (the rest are counted).
    fn failed(&self, kind: ErrorKind, cause: &dyn std::fmt::Display) -> ErrorKind {
        let slot = match kind {
            ErrorKind::Connect => 0,
            ErrorKind::Tls => 1,
            _ => 2,
        };
        if !self.first_failure[slot].swap(true, Ordering::Relaxed) {
            tracing::warn!(failure = ?kind, addr = %self.addr, "bench: first such failure: {cause}");
        }
        kind
    }
}

/// `n` connectors like `base`, each with a session store of its own: one browser each.
fn resuming_connectors(base: &Arc<ClientConfig>, n: usize) -> Arc<[TlsConnector]> {
    (0..n)
        .map(|_| {
            let mut config = (**base).clone();
            // Sizes 1-8 remember one server: the target.
            config.resumption = Resumption::in_memory_sessions(1);
            TlsConnector::from(Arc::new(config))
        })
        .collect()
}

/// The aws-lc-rs provider with the TLS 1.3 suites in the order browsers offer them
/// (Chrome and Firefox: AES-128-GCM first), so a target pays what a browser costs it;
/// rustls's own default order puts AES-256-GCM first.
pub fn browser_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| browser_rank(s.suite()));
    Arc::new(provider)
}

fn browser_rank(suite: rustls::CipherSuite) -> u8 {
    match suite {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        // TLS 1.2 suites keep their order, after TLS 1.3's.
        _ => 3,
    }
}

fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, BenchError> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let rustls_error = |what: &str| {
        let what = what.to_owned();
        move |source| vertogw_net::tls::TlsError::Rustls { what, source }
    };
    let mut config = match trust {
        Trust::Pem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in vertogw_net::tls::certs_from_pem(pem, "trusted certificate")? {
                roots
                    .add(cert)
                    .map_err(rustls_error("trusted certificate"))?;
            }
            ClientConfig::builder_with_provider(browser_provider())
                .with_protocol_versions(&versions)
                .map_err(rustls_error("bench client config"))?
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        Trust::Insecure => {
            let provider = browser_provider();
            ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|source| vertogw_net::tls::TlsError::Rustls {
                    what: "bench client config".into(),
                    source,
                })?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every session is a distinct browser: no resumption unless `--resume` gives the
    // session a store of its own (`resuming_connectors`).
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// `--insecure`: accepts any certificate, still checking handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
