//! One pass of rustls's unbuffered state machine over the records we hold: hands on
//! the plaintext, queues what rustls wants sent, and says what it needs next.

use std::io;

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, UnbufferedStatus, WriteTraffic,
};

/// The state in which application data may be encrypted.
pub(crate) type Traffic<'c> = WriteTraffic<'c, ServerConnectionData>;

/// A `Sinks::write` for passes that only read.
pub(crate) fn no_write(_: &mut Traffic<'_>) -> io::Result<()> {
    Ok(())
}

/// What the records held came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Every whole record is processed; more bytes from the peer are needed.
    NeedData,
    /// Both sides sent close_notify: nothing more comes or goes.
    Closed,
}

/// Where a pass puts what it produces.
pub(crate) struct Sinks<'a, D, W> {
    /// Receives decrypted application data, in order.
    pub deliver: D,
    /// Called once application data may be encrypted (the handshake is far enough).
    pub write: W,
    /// Records rustls wants sent (handshake messages, alerts, key updates) are appended.
    pub outgoing: &'a mut Vec<u8>,
    /// Set once the peer's close_notify is read.
    pub peer_closed: &'a mut bool,
}

/// Processes the records at the start of `incoming`; returns how many bytes of it were
/// used up (to be removed from its front before the next pass). On an error, any alert
/// for the peer is queued in `outgoing` already.
pub(crate) fn process<D, W>(
    conn: &mut UnbufferedServerConnection,
    incoming: &mut [u8],
    sinks: &mut Sinks<'_, D, W>,
) -> io::Result<(usize, Progress)>
where
    D: FnMut(&[u8]),
    W: FnMut(&mut Traffic<'_>) -> io::Result<()>,
{
    let mut used = 0;
    loop {
        let UnbufferedStatus { mut discard, state } =
            conn.process_tls_records(&mut incoming[used..]);
        let done = match state {
            Err(err) => {
                used += discard;
                return Err(fail(conn, &mut incoming[used..], sinks.outgoing, err));
            }
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(tls_error)?;
                    discard += record.discard;
                    (sinks.deliver)(record.payload);
                }
                None
            }
            Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                encode_into(&mut encode, sinks.outgoing)?;
                None
            }
            // What was encoded sits in `outgoing`, which goes out before anything
            // queued later, so it counts as sent.
            Ok(ConnectionState::TransmitTlsData(transmit)) => {
                transmit.done();
                None
            }
            Ok(ConnectionState::PeerClosed) => {
                *sinks.peer_closed = true;
                None
            }
            Ok(ConnectionState::Closed) => Some(Progress::Closed),
            Ok(ConnectionState::BlockedHandshake) => Some(Progress::NeedData),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                (sinks.write)(&mut traffic)?;
                Some(Progress::NeedData)
            }
            // Early data is never enabled in our configs; anything newer is unknown.
            Ok(other) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected TLS state {other:?}"),
                ))
            }
        };
        used += discard;
        if let Some(progress) = done {
            return Ok((used, progress));
        }
    }
}

/// After rustls refused the peer's records, takes the alert it queued for the peer.
fn fail(
    conn: &mut UnbufferedServerConnection,
    incoming: &mut [u8],
    outgoing: &mut Vec<u8>,
    err: rustls::Error,
) -> io::Error {
    let UnbufferedStatus { state, .. } = conn.process_tls_records(incoming);
    if let Ok(ConnectionState::EncodeTlsData(mut encode)) = state {
        let _ = encode_into(&mut encode, outgoing);
    }
    tls_error(err)
}

fn encode_into(
    encode: &mut EncodeTlsData<'_, ServerConnectionData>,
    outgoing: &mut Vec<u8>,
) -> io::Result<()> {
    let start = outgoing.len();
    let needed = match encode.encode(&mut []) {
        Ok(_) => return Ok(()),
        Err(EncodeError::InsufficientSize(e)) => e.required_size,
        Err(e @ EncodeError::AlreadyEncoded) => return Err(io::Error::other(e)),
    };
    outgoing.resize(start + needed, 0);
    match encode.encode(&mut outgoing[start..]) {
        Ok(n) => {
            outgoing.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            outgoing.truncate(start);
            Err(io::Error::other(e))
        }
    }
}

/// A rustls error as the I/O error callers see (as tokio-rustls reports it).
pub(crate) fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}
