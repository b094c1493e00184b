//! A node-side socket, plain or TLS, that can still reach its TCP stream (for linger).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// An accepted connection, after TLS if the node has it.
pub(crate) enum SimStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<TlsStream<TcpStream>>),
}

impl SimStream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            SimStream::Plain(tcp) => tcp,
            SimStream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Makes the next drop send a TCP RST instead of a FIN: how a crashed node looks.
    // Deprecated because a *non-zero* linger blocks the dropping thread; a zero linger
    // never blocks, it makes close() send RST, which is exactly the point here.
    #[allow(deprecated)]
    pub(crate) fn abort_on_drop(&self) {
        // Best effort: if it fails the peer sees a FIN, still without a close frame.
        let _ = self.tcp().set_linger(Some(std::time::Duration::ZERO));
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            SimStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            SimStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_flush(cx),
            SimStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            SimStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
