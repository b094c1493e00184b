//! Thread-per-core serving: one `SO_REUSEPORT` listener and one single-threaded
//! runtime per core. A session's two legs then always run on one thread, so relaying
//! a message never wakes another thread; measured on 2 cores this relays ~25 % more
//! messages per CPU-second than one work-stealing runtime (docs/performance.md).

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::capacity::Admission;
use super::listener::serve_shard;
use super::Gateway;

/// Pending connections the kernel queues per listener. A login storm of thousands of
/// browsers overflows the default 128 and turns into 1 s / 3 s SYN retries.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Binds `count` listeners to `addr`, sharing the port with `SO_REUSEPORT` when there
/// is more than one (the kernel then spreads connections across them). With port 0 the
/// first listener picks the port and the others join it, so every shard serves the
/// same, single address.
pub fn bind(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let shared = count > 1;
    let first = bind_socket(addr, shared)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_socket(addr, shared)?);
    }
    Ok(listeners)
}

fn bind_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// One listener with the gateway's backlog, for callers inside a Tokio runtime.
pub fn bind_one(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let mut listeners = bind(addr, 1)?;
    match listeners.pop() {
        Some(listener) => tokio::net::TcpListener::from_std(listener),
        None => Err(std::io::Error::other("no listener bound")),
    }
}

/// Serves every listener on its own thread and single-threaded runtime until
/// `shutdown`, sharing one connection cap; returns when all have stopped. Blocking.
pub fn serve_sharded(
    listeners: Vec<std::net::TcpListener>,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let admission = Arc::new(Admission::new(gateway.max_connections()));
    if let Some(first) = listeners.first() {
        info!(
            listen = %first.local_addr()?,
            threads = listeners.len(),
            max_connections = admission.max(),
            "gateway listening"
        );
    }
    let threads: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let (gateway, shutdown, admission) = (
                Arc::clone(&gateway),
                shutdown.clone(),
                Arc::clone(&admission),
            );
            std::thread::Builder::new()
                .name(format!("vertogw-{i}"))
                .spawn(move || -> std::io::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        serve_shard(listener, gateway, shutdown, admission).await
                    })
                })
        })
        .collect::<Result<_, _>>()?;
    let mut result = Ok(());
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => result = Err(err),
            Err(_) => result = Err(std::io::Error::other("a serving thread panicked")),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_shard_the_same_port() {
        let listeners = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
    }
}
