//! The WebSocket framing of both relay legs (RFC 6455 §5), after the HTTP upgrade.
//!
//! Our own codec rather than tungstenite's stream, for memory: tungstenite keeps the
//! largest frame it ever read or wrote in its buffers for the connection's whole life,
//! so a session that once carried a 999,999-byte message held about that much until
//! it ended. Here a stream owns buffers only while a message is on its way: between
//! messages it holds its socket and a small struct, however large the last message
//! was. Messages, close frames and the UTF-8 type stay tungstenite's, so the rest of
//! the gateway speaks one vocabulary.
//!
//! - [`frame`]: header parsing and writing, masking (pure).
//! - [`message`]: fragments into messages, limits, UTF-8, close frames (pure).
//! - [`stream`]: the socket, its buffers, pongs and close replies, and the frame relay
//!   between two streams.

mod frame;
mod message;
mod stream;

pub use message::{Assembler, Decoded};
pub use stream::{Data, Pass, RelayError, Relayed, WsStream};

/// Bytes of the longest frame header.
pub const MAX_HEADER_BYTES: usize = frame::MAX_HEADER_BYTES;

/// Which end of the connection the gateway is: it reads masked frames from browsers
/// (as the server) and writes masked frames to nodes (as the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The browser leg.
    Server,
    /// The node leg.
    Client,
}

/// Why a WebSocket stream failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer broke the framing rules (close 1002).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// Text or a close reason that is not UTF-8 (close 1007).
    #[error("text that is not UTF-8")]
    Utf8,
    /// A message above the limit (close 1009); refused at its header.
    #[error("message of {size} bytes or more, over the limit of {max}")]
    TooBig { size: u64, max: usize },
    /// The socket failed, or ended inside a frame.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A message was sent after the close frame.
    #[error("message sent after the close frame")]
    Closed,
}

impl From<frame::HeaderError> for Error {
    fn from(e: frame::HeaderError) -> Error {
        Error::Protocol(match e {
            frame::HeaderError::ReservedBits => "reserved bits set",
            frame::HeaderError::ReservedOpcode(_) => "reserved opcode",
            frame::HeaderError::FragmentedControl => "fragmented control frame",
            frame::HeaderError::ControlTooLong => "control frame over 125 bytes",
            frame::HeaderError::LengthOverflow => "payload length over 2^63",
        })
    }
}
