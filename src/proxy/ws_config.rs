//! WebSocket settings for both legs. Buffers start small: a gateway holds thousands of
//! mostly idle sockets, and tungstenite grows its buffers on demand for big messages.

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Largest node→browser message relayed (mod_verto itself sends replies over 1 MB).
pub const NODE_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Initial read buffer of the browser leg. Its reads come out of rustls' plaintext
/// buffer (a copy, no syscall), so a small buffer costs nothing and saves memory on
/// every idle session.
const BROWSER_READ_BUFFER_BYTES: usize = 256;

/// Initial read buffer of the node leg. Its reads are `recv` syscalls: a typical Verto
/// request or reply (a few hundred bytes) should fit in one; SDP-sized ones take a
/// second read, a fair price for the ~1.5 KiB per idle session a 2 KiB buffer costs.
const NODE_READ_BUFFER_BYTES: usize = 512;

/// Write buffer beyond which a write reports "buffer full" instead of growing: one
/// maximal message plus slack, so one slow peer can pin at most this much.
const fn max_write_buffer(max_message: usize) -> usize {
    max_message + 64 * 1024
}

/// The browser leg: messages above `max_message_bytes` are refused (close 1009).
pub fn browser(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(BROWSER_READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(max_write_buffer(NODE_MAX_MESSAGE_BYTES))
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// The node leg.
pub fn node() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(NODE_READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(max_write_buffer(NODE_MAX_MESSAGE_BYTES))
        .max_message_size(Some(NODE_MAX_MESSAGE_BYTES))
        .max_frame_size(Some(NODE_MAX_MESSAGE_BYTES))
}
