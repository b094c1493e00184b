//! The PROXY protocol from a load balancer in `proxy_protocol_from`: the client address
//! its header names is the one the per-address limits and login cooldowns count (shown
//! through behaviour, with the balancer on 127.0.0.1 and clients from the documentation
//! range), and a connection without a valid header, from an unlisted sender, or whose
//! header does not arrive within `tls_handshake_timeout_ms` is closed before TLS.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ppp::v2::{Builder, Command, IPv4, Protocol, Version};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vertogw::config::{ProxyProtocol, ProxyVersion};

/// The load balancer: the only listed sender.
const BALANCER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Another local address, not listed.
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Clients behind the balancer.
const ALICE: [u8; 4] = [203, 0, 113, 7];
const BOB: [u8; 4] = [203, 0, 113, 8];

const BOTH: [ProxyVersion; 2] = [ProxyVersion::V1, ProxyVersion::V2];

/// The one-node gateway expecting `version` from 127.0.0.1/32 and trusting no client
/// network, with `[limits]` set by `f`.
async fn gateway(
    version: ProxyVersion,
    f: impl FnOnce(&mut vertogw::config::Limits) + 'static,
) -> TestGateway {
    let map = format!(
        "proxy_protocol = \"{version}\"\nproxy_protocol_from = [\"127.0.0.1/32\"]\n{}",
        one_node_map()
    );
    let gw = Setup::new(&map)
        .node(sim("fs1"))
        .tweak(|c| {
            c.limits.trusted_networks = vec![];
            f(&mut c.limits);
        })
        .start()
        .await;
    assert!(matches!(
        gw.config.gateway.proxy_protocol,
        ProxyProtocol::On { .. }
    ));
    gw
}

/// The header a balancer sends for a client at `client`:50000 reaching port 443.
fn header(version: ProxyVersion, client: [u8; 4]) -> Vec<u8> {
    match version {
        ProxyVersion::V1 => format!(
            "PROXY TCP4 {} 192.0.2.1 50000 443\r\n",
            Ipv4Addr::from(client)
        )
        .into_bytes(),
        ProxyVersion::V2 => {
            let addresses = IPv4::new(client, [192, 0, 2, 1], 50000, 443);
            Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, addresses)
                .build()
                .expect("v2 header")
        }
    }
}

/// A connection from the balancer that has sent `bytes` first.
async fn sent(addr: SocketAddr, from: IpAddr, bytes: &[u8]) -> TcpStream {
    let mut tcp = tcp_from(addr, from).await;
    within("sending the header", tcp.write_all(bytes))
        .await
        .expect("send the header");
    tcp
}

/// A TLS handshake over `tcp`, or the error that ended it.
async fn tls(tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").expect("server name");
    let connector = TlsConnector::from(Arc::clone(&certs().client));
    within("TLS handshake", connector.connect(name, tcp)).await
}

/// A browser behind the balancer: PROXY header for `client`, TLS, WebSocket upgrade.
async fn browser(gw: &TestGateway, version: ProxyVersion, client: [u8; 4]) -> Client {
    let tcp = sent(gw.addr, BALANCER, &header(version, client)).await;
    let tls = match tls(tcp).await {
        Ok(tls) => tls,
        Err(e) => panic!("{version} connection for {client:?} refused: {e}"),
    };
    let url = format!("wss://localhost:{}/", gw.addr.port());
    let request = url.into_client_request().expect("request");
    let upgrade = tokio_tungstenite::client_async_with_config(request, tls, None);
    within("WebSocket upgrade", upgrade)
        .await
        .expect("WebSocket upgrade")
        .0
}

/// Whether the gateway ends `tcp` without sending a byte (before any TLS).
async fn closed_without_a_byte(mut tcp: TcpStream) -> bool {
    let mut buf = [0u8; 1];
    let read = within("the gateway to close", tcp.read(&mut buf)).await;
    matches!(read, Ok(0) | Err(_))
}

/// Sends a credentialed login and returns the answer.
async fn try_login(ws: &mut Client, user: &str, passwd: &str) -> Value {
    send_json(ws, &login_request(user, passwd, &sessid(), 1)).await;
    recv_json(ws).await
}

#[tokio::test]
async fn a_client_behind_the_balancer_logs_in_with_either_version() {
    for version in BOTH {
        let gw = gateway(version, |_| {}).await;
        let mut ws = browser(&gw, version, ALICE).await;
        assert_eq!(login_ready(&mut ws, "1000@acme.test", 1).await, "fs1");
        assert_eq!(gw.node("fs1").stats().logins_ok, 1, "{version}");
    }
}

#[tokio::test]
async fn the_per_address_limit_counts_the_address_in_the_header_not_the_balancer() {
    for version in BOTH {
        let gw = gateway(version, |l| l.per_ip_connections = 1).await;
        let mut alice = browser(&gw, version, ALICE).await;
        let mut bob = browser(&gw, version, BOB).await;
        let again = sent(gw.addr, BALANCER, &header(version, ALICE)).await;
        assert!(
            tls(again).await.is_err(),
            "{version}: a second connection for {ALICE:?} is refused"
        );
        login(&mut alice, "1000@acme.test", PASSWORD, 1).await;
        login(&mut bob, "1001@acme.test", PASSWORD, 1).await;
    }
}

#[tokio::test]
async fn failed_logins_cool_down_the_address_in_the_header_only() {
    let gw = gateway(ProxyVersion::V2, |l| l.login_failures_per_minute = 1).await;
    let mut alice = browser(&gw, ProxyVersion::V2, ALICE).await;
    let wrong = try_login(&mut alice, "1000@acme.test", "wrong").await;
    assert_eq!(wrong["error"]["code"], -32001, "{wrong}");
    assert_eq!(
        wrong["error"]["message"], "Authentication Failure",
        "{wrong}"
    );

    // Another user from Alice's address: the address cools down.
    let mut alice_again = browser(&gw, ProxyVersion::V2, ALICE).await;
    let cooling = try_login(&mut alice_again, "1001@acme.test", PASSWORD).await;
    assert_eq!(
        cooling["error"]["message"], "Too many failed logins, retry later",
        "{cooling}"
    );
    // Bob, through the same balancer, is not cooling down.
    let mut bob = browser(&gw, ProxyVersion::V2, BOB).await;
    assert_eq!(login_ready(&mut bob, "1002@acme.test", 1).await, "fs1");
    assert_eq!(gw.node("fs1").stats().logins_failed, 1);
}

#[tokio::test]
async fn a_connection_from_the_balancer_without_a_header_is_closed_before_tls() {
    for version in BOTH {
        let gw = gateway(version, |_| {}).await;
        let tcp = tcp_from(gw.addr, BALANCER).await;
        match tls(tcp).await {
            Ok(_) => panic!("{version}: a connection without a header got TLS"),
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof,
                "{version}: {e}"
            ),
        }
        gw.assert_no_node_contacted();
    }
}

#[tokio::test]
async fn malformed_headers_and_headers_of_the_other_version_are_closed_before_tls() {
    let mut bad_v2 = header(ProxyVersion::V2, ALICE);
    bad_v2[12] = 0x31; // version 3
    let cases: [(ProxyVersion, Vec<u8>); 5] = [
        (
            ProxyVersion::V1,
            b"PROXY TCP4 203.0.113.300 192.0.2.1 50000 443\r\n".to_vec(),
        ),
        (ProxyVersion::V1, b"PROXY SCTP 1 2 3 4\r\n".to_vec()),
        (ProxyVersion::V2, bad_v2),
        (ProxyVersion::V1, header(ProxyVersion::V2, ALICE)),
        (ProxyVersion::V2, header(ProxyVersion::V1, ALICE)),
    ];
    for (version, bytes) in cases {
        let gw = gateway(version, |_| {}).await;
        let tcp = sent(gw.addr, BALANCER, &bytes).await;
        assert!(
            closed_without_a_byte(tcp).await,
            "{version} gateway answered {bytes:02x?}"
        );
    }
}

#[tokio::test]
async fn a_header_from_a_sender_not_in_proxy_protocol_from_is_closed() {
    let gw = gateway(ProxyVersion::V2, |_| {}).await;
    let tcp = sent(gw.addr, STRANGER, &header(ProxyVersion::V2, ALICE)).await;
    assert!(closed_without_a_byte(tcp).await);
    // Without a header too: the unlisted sender is not a client either.
    assert!(tls(tcp_from(gw.addr, STRANGER).await).await.is_err());
    let mut ws = browser(&gw, ProxyVersion::V2, ALICE).await;
    login(&mut ws, "1000@acme.test", PASSWORD, 1).await;
}

#[tokio::test]
async fn a_header_that_stops_half_way_is_closed_at_the_handshake_timeout() {
    let gw = Setup::new(&format!(
        "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1\"]\n{}",
        one_node_map()
    ))
    .node(sim("fs1"))
    .tweak(|c| c.limits.tls_handshake_timeout = Duration::from_millis(300))
    .start()
    .await;
    let started = std::time::Instant::now();
    let tcp = sent(gw.addr, BALANCER, b"PROXY TCP4 ").await;
    // `within` bounds the wait at 5 s; the gateway closes at about 300 ms.
    assert!(closed_without_a_byte(tcp).await);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "closed after {:?}, before the timeout",
        started.elapsed()
    );
}

#[tokio::test]
async fn plain_http_after_the_header_still_gets_the_400_hint() {
    let gw = gateway(ProxyVersion::V2, |_| {}).await;
    let mut request = header(ProxyVersion::V2, ALICE);
    request.extend(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut tcp = sent(gw.addr, BALANCER, &request).await;
    let mut answer = Vec::new();
    within("the 400 answer", tcp.read_to_end(&mut answer))
        .await
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[tokio::test]
async fn a_health_check_with_a_local_header_is_served_as_the_balancer() {
    let gw = gateway(ProxyVersion::V2, |l| l.per_ip_connections = 1).await;
    let local = Builder::new(Version::Two | Command::Local, 0)
        .build()
        .expect("LOCAL header");
    // LOCAL connections are the balancer's own: not limited as one address.
    let first = tls(sent(gw.addr, BALANCER, &local).await).await;
    let second = tls(sent(gw.addr, BALANCER, &local).await).await;
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
}
