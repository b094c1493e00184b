//! Socket options for both legs.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Idle time before the first keepalive probe, and the probe interval: a browser that
/// vanished without a FIN (laptop lid, NAT timeout) is found within minutes instead of
/// holding its session and node socket for hours. mod_verto uses the same 30 s.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// `TCP_NODELAY` (Verto is small request/response frames; never wait for Nagle) and
/// TCP keepalive. Failures are ignored: both are optimisations, not requirements.
pub fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE)
        .with_interval(KEEPALIVE);
    let _ = SockRef::from(tcp).set_tcp_keepalive(&keepalive);
}
