//! Admission before TLS: per-address connection caps and connect rates (closed at once,
//! before a ServerHello, other addresses unaffected), the trusted networks exempt from
//! both, and the TLS handshake timeout freeing the turn of a peer that goes silent.
//!
//! Loopback is trusted by default, so these gateways trust nobody (or only 127.0.0.1),
//! and a second client address comes from 127.0.0.2 (all of 127/8 is on Linux's `lo`).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use vertogw::config::Config;

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const THERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Connection attempts while waiting for a released slot to be seen as free.
const READMIT_ATTEMPTS: usize = 100;

/// A gateway for the one-node map whose `[limits]` `f` sets, trusting no network
/// unless `f` says otherwise.
async fn gateway(f: impl FnOnce(&mut vertogw::config::Limits) + 'static) -> TestGateway {
    Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c: &mut Config| {
            c.limits.trusted_networks = vec![];
            f(&mut c.limits);
        })
        .start()
        .await
}

/// A TLS handshake over `tcp`; `None` when the gateway ends the connection instead.
async fn try_tls(tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").expect("server name");
    let connector = TlsConnector::from(Arc::clone(&certs().client));
    within("TLS handshake", connector.connect(name, tcp))
        .await
        .ok()
}

/// A finished TLS handshake from `from`: the gateway admitted the connection.
async fn admitted(addr: SocketAddr, from: IpAddr) -> TlsStream<TcpStream> {
    match try_tls(tcp_from(addr, from).await).await {
        Some(tls) => tls,
        None => panic!("a connection from {from} was refused"),
    }
}

/// The bytes of a complete TLS ClientHello for `localhost`.
fn client_hello() -> Vec<u8> {
    let name = ServerName::try_from("localhost").expect("server name");
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(&certs().client), name).expect("client");
    let mut bytes = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut bytes).expect("ClientHello");
    }
    bytes
}

/// Sends a ClientHello on `tcp` and reads once: `true` when the gateway closed the
/// connection without a byte (no ServerHello: refused before any TLS work), `false`
/// when it answered.
async fn closed_before_tls(mut tcp: TcpStream) -> bool {
    // The write may already fail when the refusal's close arrived first.
    let _ = tcp.write_all(&client_hello()).await;
    let mut buf = [0u8; 1];
    let read = within("the gateway's answer or close", tcp.read(&mut buf)).await;
    matches!(read, Ok(0) | Err(_))
}

/// Ends `tls` from the client side and waits until the gateway has closed its end.
async fn close_and_wait(mut tls: TlsStream<TcpStream>) {
    within("TLS close", tls.shutdown()).await.ok();
    let mut sink = Vec::new();
    let _ = within("the gateway to close", tls.read_to_end(&mut sink)).await;
}

#[tokio::test]
async fn past_per_ip_connections_an_address_is_refused_before_tls_and_others_are_not() {
    let gw = gateway(|l| {
        l.per_ip_connections = 3;
        l.per_ip_connect_burst = 1000;
    })
    .await;
    let bystander = Bystander::start(&gw, "1999@acme.test").await;
    bystander.attack_begins();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(admitted(gw.addr, HERE).await);
    }
    assert!(
        closed_before_tls(tcp_from(gw.addr, HERE).await).await,
        "a fourth connection from {HERE} gets no ServerHello"
    );
    let mut ws = connect_from(gw.addr, THERE).await;
    login(&mut ws, "1000@acme.test", PASSWORD, 1).await;

    close_and_wait(held.pop().expect("a held connection")).await;
    // The slot is free once the gateway's connection task has ended, which the close
    // above only nearly guarantees: retry, bounded.
    let mut again = None;
    for _ in 0..READMIT_ATTEMPTS {
        again = try_tls(tcp_from(gw.addr, HERE).await).await;
        if again.is_some() {
            break;
        }
    }
    assert!(again.is_some(), "a freed slot admits {HERE} again");
    assert!(
        closed_before_tls(tcp_from(gw.addr, HERE).await).await,
        "and the cap holds again"
    );
    bystander
        .finish("past_per_ip_connections_an_address_is_refused_before_tls_and_others_are_not")
        .await;
}

#[tokio::test]
async fn past_the_connect_burst_an_address_is_refused_before_tls_and_others_are_not() {
    let gw = gateway(|l| {
        l.per_ip_connect_rate = 1;
        l.per_ip_connect_burst = 5;
    })
    .await;
    let bystander = Bystander::start(&gw, "1999@acme.test").await;
    bystander.attack_begins();
    // All six TCP connections first, so the gateway accepts them within a moment of
    // each other: at one token per second, none comes back in between.
    let mut tcps = Vec::new();
    for _ in 0..6 {
        tcps.push(tcp_from(gw.addr, HERE).await);
    }
    let sixth = tcps.pop().expect("six connections");
    let mut held = Vec::new();
    for (i, tcp) in tcps.into_iter().enumerate() {
        match try_tls(tcp).await {
            Some(tls) => held.push(tls),
            None => panic!("connection {} of the burst was refused", i + 1),
        }
    }
    assert!(
        closed_before_tls(sixth).await,
        "the sixth connection within the burst gets no ServerHello"
    );
    let mut ws = connect_from(gw.addr, THERE).await;
    login(&mut ws, "1000@acme.test", PASSWORD, 1).await;
    bystander
        .finish("past_the_connect_burst_an_address_is_refused_before_tls_and_others_are_not")
        .await;
}

#[tokio::test]
async fn trusted_networks_are_exempt_from_the_per_address_limits() {
    let gw = gateway(|l| {
        l.per_ip_connections = 1;
        l.trusted_networks = vec!["127.0.0.1/32".parse().expect("network")];
    })
    .await;
    let mut first = connect_from(gw.addr, HERE).await;
    let mut second = connect_from(gw.addr, HERE).await;
    login(&mut first, "1000@acme.test", PASSWORD, 1).await;
    login(&mut second, "1001@acme.test", PASSWORD, 1).await;

    let _held = admitted(gw.addr, THERE).await;
    assert!(
        closed_before_tls(tcp_from(gw.addr, THERE).await).await,
        "{THERE} is not trusted: its second connection is refused"
    );
}

#[tokio::test]
async fn a_client_hello_followed_by_silence_gives_its_handshake_turn_back_at_the_timeout() {
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c| {
            c.gateway.max_tls_handshakes = Some(1);
            c.limits.tls_handshake_timeout = Duration::from_millis(300);
        })
        .start()
        .await;
    let mut silent = tcp_from(gw.addr, HERE).await;
    within("sending a ClientHello", silent.write_all(&client_hello()))
        .await
        .expect("ClientHello");
    // The gateway answers only once this connection holds the only handshake turn.
    let mut first = [0u8; 1];
    let n = within("the gateway's ServerHello", silent.read(&mut first)).await;
    assert!(matches!(n, Ok(1)), "expected a ServerHello, got {n:?}");

    // The timeout counts from accept and includes the wait for a turn, so a client
    // queued right behind the silent one with the same 300 ms would have only the few
    // ms between the two accepts left when the turn frees. Give later connections a
    // longer timeout (a reload applies to new connections only) to test just this:
    // the silent peer gives the turn back at its own deadline, long before the
    // 10 s login timeout that bounded it before.
    let mut longer = (*gw.config).clone();
    longer.limits.tls_handshake_timeout = Duration::from_secs(10);
    gw.gateway.replace_config(Arc::new(longer)).await;
    let honest = admitted(gw.addr, HERE).await;

    // Closed, by EOF or reset, within the bound (`within` fails the test otherwise).
    let mut rest = Vec::new();
    let _closed = within(
        "the gateway to close the silent connection",
        silent.read_to_end(&mut rest),
    )
    .await;
    drop(honest);
}

#[tokio::test]
async fn silent_client_hellos_from_one_address_cannot_hold_every_handshake_turn() {
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c: &mut Config| {
            c.limits.trusted_networks = vec![];
            c.limits.tls_handshake_timeout = Duration::from_secs(10);
            c.gateway.max_tls_handshakes = Some(16);
        })
        .start()
        .await;
    let bystander = Bystander::start(&gw, "1999@acme.test").await;
    bystander.attack_begins();
    // As many silent ClientHellos as there are turns, all from one address: they would
    // hold every turn for 10 s, but the address gets only its share.
    let mut silent = Vec::new();
    for _ in 0..16 {
        let mut tcp = tcp_from(gw.addr, HERE).await;
        within("sending a ClientHello", tcp.write_all(&client_hello()))
            .await
            .expect("ClientHello");
        silent.push(tcp);
    }
    // Another address's handshake completes within the harness bound (5 s), well before
    // the silent handshakes' 10 s timeout would free a turn.
    let honest = admitted(gw.addr, THERE).await;
    drop((honest, silent));
    bystander
        .finish("silent_client_hellos_from_one_address_cannot_hold_every_handshake_turn")
        .await;
}
