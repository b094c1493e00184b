//! The simulated node's sockets: plain or TLS ([`vertogw_net::MaybeTls`]), and how a
//! crashed node drops them.

use vertogw_net::MaybeTls;

/// An accepted connection, after TLS if the node has it.
pub(crate) type SimStream = MaybeTls;

/// Makes the next drop of `stream` send a TCP RST instead of a FIN: how a crashed node
/// looks.
// Deprecated because a *non-zero* linger blocks the dropping thread; a zero linger
// never blocks, it makes close() send RST, which is exactly the point here.
#[allow(deprecated)]
pub(crate) fn abort_on_drop(stream: &SimStream) {
    // Best effort: if it fails the peer sees a FIN, still without a close frame.
    let _ = stream.tcp().set_linger(Some(std::time::Duration::ZERO));
}
