//! Socket options for both legs.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpListener, TcpStream};

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
    let socket = SockRef::from(tcp);
    let _ = socket.set_tcp_keepalive(&keepalive());
    tune_accepted(tcp, stall);
}

/// [`tune`]'s fixed options on a listener, which Linux copies to every socket it
/// accepts: four system calls per browser connection fewer (a login storm makes
/// thousands a second). `TCP_USER_TIMEOUT` follows `stall_timeout_ms`, which a reload
/// changes, so it is set on each accepted socket ([`tune_accepted`]).
pub fn tune_listener(listener: &TcpListener) {
    let socket = SockRef::from(listener);
    let _ = socket.set_tcp_nodelay(true);
    let _ = socket.set_tcp_keepalive(&keepalive());
}

/// What an accepted socket does not inherit from a [`tune_listener`]ed listener.
pub fn tune_accepted(tcp: &TcpStream, stall: Duration) {
    let _ = SockRef::from(tcp).set_tcp_user_timeout(Some(stall));
}

fn keepalive() -> TcpKeepalive {
    TcpKeepalive::new()
        .with_time(KEEPALIVE)
        .with_interval(KEEPALIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_tuned(tcp: &TcpStream, stall: Duration) {
        let socket = SockRef::from(tcp);
        assert!(tcp.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), KEEPALIVE);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), KEEPALIVE);
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(stall));
    }

    #[tokio::test]
    async fn a_connected_socket_gets_nodelay_keepalive_and_the_user_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        tune(&tcp, Duration::from_millis(1234));
        assert_tuned(&tcp, Duration::from_millis(1234));
    }

    #[tokio::test]
    async fn an_accepted_socket_inherits_the_listeners_options_and_gets_the_user_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tune_listener(&listener);
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        tune_accepted(&accepted, Duration::from_millis(4321));
        assert_tuned(&accepted, Duration::from_millis(4321));
    }
}
