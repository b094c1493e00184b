//! The browser-facing TLS over real sockets, built from a map on disk by `Config::load`:
//! `[[gateway.certificate]]` entries picked by SNI (exact name, one-label wildcard, the
//! default for other names and for no name), and session resumption (TLS 1.3 tickets,
//! TLS 1.2 tickets and TLS 1.2 session IDs) across two connections of one client.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use rustls::client::{Resumption, Tls12Resumption};
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use common::{one_node_map, sim, within, Setup, TestGateway};
use vertogw::config::Config;
use vertogw_net::tls::{certs_from_pem, self_signed, SelfSigned};

/// A map on disk with a default certificate and two SNI entries, and the certificates.
struct Farm {
    _dir: tempfile::TempDir,
    gateway: TestGateway,
    /// For `localhost`, `127.0.0.1` and `*.unknown.test` (no entry lists those).
    default: SelfSigned,
    /// `[[gateway.certificate]]` for `a.example.test`.
    a: SelfSigned,
    /// `[[gateway.certificate]]` for `*.other.test`.
    b: SelfSigned,
}

const MAP: &str = r#"
[gateway]
listen = "127.0.0.1:0"
tls_cert = "gw.crt"
tls_key = "gw.key"
allowed_origins = ["*"]

[[gateway.certificate]]
names = ["a.example.test"]
cert = "a.crt"
key = "a.key"

[[gateway.certificate]]
names = ["*.other.test"]
cert = "b.crt"
key = "b.key"

[[node]]
name = "fs1"
verto_url = "ws://127.0.0.1:9/"

[[partition]]
name = "acme"
nodes = ["fs1"]
domains = ["acme.test"]
"#;

fn generate(names: &[&str]) -> SelfSigned {
    self_signed(names).unwrap_or_else(|e| panic!("generate a certificate: {e}"))
}

/// Writes the map and certificates, loads them as `serve` does, starts a gateway.
async fn farm() -> Farm {
    let dir = tempfile::tempdir().expect("temporary directory");
    let default = generate(&["localhost", "127.0.0.1", "*.unknown.test"]);
    let a = generate(&["a.example.test"]);
    let b = generate(&["*.other.test"]);
    for (stem, ss) in [("gw", &default), ("a", &a), ("b", &b)] {
        for (ext, pem) in [("crt", &ss.cert_pem), ("key", &ss.key_pem)] {
            let path = dir.path().join(format!("{stem}.{ext}"));
            std::fs::write(path, pem).expect("write PEM");
        }
    }
    let map = dir.path().join("m.toml");
    std::fs::write(&map, MAP).expect("write map");
    let loaded = Config::load(&map).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let certificates = loaded.certificates.expect("load loads the certificates");
    let server = certificates.server_config().expect("server config");
    let gateway = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .server_tls(server)
        .start()
        .await;
    Farm {
        _dir: dir,
        gateway,
        default,
        a,
        b,
    }
}

/// A client trusting the farm's three certificates, offering `versions`.
fn client(farm: &Farm, tls12_only: bool, resumption: Resumption) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ss in [&farm.default, &farm.a, &farm.b] {
        for cert in certs_from_pem(ss.cert_pem.as_bytes(), "test").expect("PEM") {
            roots.add(cert).expect("trust anchor");
        }
    }
    let versions = match tls12_only {
        true => vec![&TLS12],
        false => vec![&TLS13, &TLS12],
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = resumption;
    Arc::new(config)
}

/// A TLS connection to `addr` asking for `name` (an IP address sends no SNI).
async fn tls(addr: SocketAddr, client: &Arc<ClientConfig>, name: &str) -> TlsStream<TcpStream> {
    let tcp = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("TCP connect");
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    let connector = TlsConnector::from(Arc::clone(client));
    within("TLS handshake", connector.connect(name, tcp))
        .await
        .unwrap_or_else(|e| panic!("TLS handshake: {e}"))
}

fn leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("a peer certificate");
    certs[0].clone().into_owned()
}

fn der(ss: &SelfSigned) -> CertificateDer<'static> {
    certs_from_pem(ss.cert_pem.as_bytes(), "test").expect("PEM")[0].clone()
}

#[tokio::test]
async fn each_name_gets_its_certificate_and_other_names_the_default() {
    let farm = farm().await;
    let client = client(&farm, false, Resumption::disabled());
    let addr = farm.gateway.addr;
    let cases = [
        ("a.example.test", &farm.a, "exact name"),
        ("A.Example.TEST", &farm.a, "exact name, other case"),
        ("b.other.test", &farm.b, "one label under *.other.test"),
        ("x.unknown.test", &farm.default, "a name no entry lists"),
        ("127.0.0.1", &farm.default, "no SNI (an IP address)"),
    ];
    for (name, expected, why) in cases {
        let conn = tls(addr, &client, name).await;
        assert!(
            leaf(&conn) == der(expected),
            "{name} ({why}) got another certificate"
        );
    }
}

/// Connects twice with one client config, each time completing the WebSocket upgrade
/// and closing; returns both handshakes' kinds and the protocol version.
async fn twice(farm: &Farm, client: &Arc<ClientConfig>) -> Vec<(HandshakeKind, ProtocolVersion)> {
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let conn = tls(farm.gateway.addr, client, "a.example.test").await;
        let session = conn.get_ref().1;
        let kind = session.handshake_kind().expect("handshake done");
        let version = session.protocol_version().expect("version agreed");
        assert!(
            leaf(&conn) == der(&farm.a),
            "a resumed session keeps its certificate"
        );
        kinds.push((kind, version));
        let url = format!("wss://a.example.test:{}/", farm.gateway.addr.port());
        let (mut ws, _) = within(
            "WebSocket upgrade",
            tokio_tungstenite::client_async(url, conn),
        )
        .await
        .expect("WebSocket upgrade");
        // Reading the upgrade's answer took in the session tickets sent after the
        // handshake; now close and wait for the gateway's answer.
        within("closing", ws.close(None)).await.ok();
        within("the end of the socket", async {
            while ws.next().await.is_some() {}
        })
        .await;
    }
    kinds
}

#[tokio::test]
async fn a_tls13_client_resumes_from_a_ticket() {
    let farm = farm().await;
    let client = client(&farm, false, Resumption::default());
    let kinds = twice(&farm, &client).await;
    assert_eq!(
        kinds,
        [
            (HandshakeKind::Full, ProtocolVersion::TLSv1_3),
            (HandshakeKind::Resumed, ProtocolVersion::TLSv1_3),
        ]
    );
}

#[tokio::test]
async fn a_tls12_client_resumes_from_a_ticket() {
    let farm = farm().await;
    let client = client(&farm, true, Resumption::default());
    let kinds = twice(&farm, &client).await;
    assert_eq!(
        kinds,
        [
            (HandshakeKind::Full, ProtocolVersion::TLSv1_2),
            (HandshakeKind::Resumed, ProtocolVersion::TLSv1_2),
        ]
    );
}

#[tokio::test]
async fn a_tls12_client_without_tickets_resumes_from_the_session_cache() {
    let farm = farm().await;
    let resumption = Resumption::default().tls12_resumption(Tls12Resumption::SessionIdOnly);
    let client = client(&farm, true, resumption);
    let kinds = twice(&farm, &client).await;
    assert_eq!(
        kinds,
        [
            (HandshakeKind::Full, ProtocolVersion::TLSv1_2),
            (HandshakeKind::Resumed, ProtocolVersion::TLSv1_2),
        ]
    );
}

#[tokio::test]
async fn without_resumption_every_handshake_is_full() {
    let farm = farm().await;
    let client = client(&farm, false, Resumption::disabled());
    let kinds = twice(&farm, &client).await;
    assert!(
        kinds.iter().all(|(kind, _)| *kind == HandshakeKind::Full),
        "{kinds:?}"
    );
}
