//! Socket options for both legs.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Idle time before the first keepalive probe, and the probe interval: a browser that
/// vanished without a FIN (laptop lid, NAT timeout) is found within minutes instead of
/// holding its session and node socket for hours. mod_verto uses the same 30 s.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// `TCP_NODELAY` (Verto is small request/response frames; never wait for Nagle), TCP
/// keepalive, and `TCP_USER_TIMEOUT` = `stall`: the kernel gives up on data the peer
/// has not acknowledged for that long, the same bound the relay puts on a peer that
/// does not read. Failures are ignored: the relay enforces the stall bound itself.
pub fn tune(tcp: &TcpStream, stall: Duration) {
    let _ = tcp.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE)
        .with_interval(KEEPALIVE);
    let socket = SockRef::from(tcp);
    let _ = socket.set_tcp_keepalive(&keepalive);
    let _ = socket.set_tcp_user_timeout(Some(stall));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_legs_get_nodelay_keepalive_and_the_user_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&tcp, Duration::from_millis(1234));
        let socket = SockRef::from(&tcp);
        assert!(tcp.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1234))
        );
    }
}
