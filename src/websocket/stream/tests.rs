//! The stream over in-memory pipes: messages both ways, pongs and close replies, the
//! size limit at the header, fairness, and buffers let go after large messages.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Wake;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;

const MAX: usize = 999_999;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A gateway-side browser leg (server role) and the raw end a test browser writes to.
fn browser_leg(pipe: usize) -> (WsStream<DuplexStream>, DuplexStream) {
    let (ours, theirs) = duplex(pipe);
    (WsStream::new(ours, Role::Server, &[], MAX), theirs)
}

/// One masked client frame.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&KEY);
    let start = out.len();
    out.extend_from_slice(payload);
    frame::apply_mask(&mut out[start..], KEY);
    out
}

/// Reads one unmasked server frame: (opcode byte, payload).
async fn server_frame(raw: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    raw.read_exact(&mut head).await.expect("frame header");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => usize::from(raw.read_u16().await.expect("length")),
        127 => raw.read_u64().await.expect("length") as usize,
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    raw.read_exact(&mut payload).await.expect("payload");
    (head[0], payload)
}

#[tokio::test]
async fn messages_flow_both_ways_between_a_client_and_a_server_stream() {
    let (a, b) = duplex(64);
    let mut client = WsStream::new(a, Role::Client, &[], MAX);
    let mut server = WsStream::new(b, Role::Server, &[], MAX);
    let text = "x".repeat(70_000);
    let (sent, got) = tokio::join!(client.send(Message::text(text.clone())), server.next());
    sent.expect("sent");
    match got {
        Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), text),
        other => panic!("{other:?}"),
    }
    let (sent, got) = tokio::join!(server.send(Message::binary(vec![7u8; 300])), client.next());
    sent.expect("sent");
    assert!(matches!(got, Some(Ok(Message::Binary(b))) if b[..] == [7u8; 300]));
}

#[tokio::test]
async fn leftover_bytes_from_the_upgrade_are_read_first() {
    let (ours, _theirs) = duplex(64);
    let wire = client_frame(true, 0x1, b"early");
    let mut ws = WsStream::new(ours, Role::Server, &wire, MAX);
    assert!(matches!(ws.next().await, Some(Ok(Message::Text(t))) if t.as_str() == "early"));
}

#[tokio::test]
async fn a_ping_between_fragments_is_answered_and_the_message_stays_whole() {
    let (mut ws, mut raw) = browser_leg(1024);
    let mut wire = client_frame(false, 0x1, b"hel");
    wire.extend(client_frame(true, 0x9, b"p1"));
    wire.extend(client_frame(true, 0x0, b"lo"));
    raw.write_all(&wire).await.expect("write");
    assert!(matches!(ws.next().await, Some(Ok(Message::Ping(p))) if p[..] == *b"p1"));
    assert!(matches!(ws.next().await, Some(Ok(Message::Text(t))) if t.as_str() == "hello"));
    assert_eq!(server_frame(&mut raw).await, (0x8A, b"p1".to_vec()));
}

#[tokio::test]
async fn a_close_is_answered_with_its_code_and_ends_the_stream() {
    let (mut ws, mut raw) = browser_leg(1024);
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    raw.write_all(&client_frame(true, 0x8, &payload))
        .await
        .expect("write");
    match ws.next().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::from(4000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(server_frame(&mut raw).await, (0x88, payload));
    assert!(ws.next().await.is_none());
    assert!(matches!(
        ws.send(Message::text("late")).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn an_oversized_message_is_refused_at_its_header() {
    let (mut ws, mut raw) = browser_leg(1024);
    // Only the header of a 2 MB frame: the refusal must not wait for its payload.
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&(2_000_000u64).to_be_bytes());
    head.extend_from_slice(&KEY);
    raw.write_all(&head).await.expect("write");
    assert!(matches!(
        ws.next().await,
        Some(Err(Error::TooBig {
            size: 2_000_000,
            max: MAX
        }))
    ));
}

#[tokio::test]
async fn eof_at_a_boundary_ends_the_stream_and_inside_a_frame_is_an_error() {
    let (mut ws, raw) = browser_leg(64);
    drop(raw);
    assert!(ws.next().await.is_none());
    let (mut ws, mut raw) = browser_leg(64);
    raw.write_all(&client_frame(true, 0x1, b"cut")[..5])
        .await
        .expect("write");
    drop(raw);
    assert!(matches!(ws.next().await, Some(Err(Error::Io(_)))));
}

#[tokio::test]
async fn a_message_of_tiny_fragments_yields_the_thread_between_batches() {
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let (mut ws, mut raw) = browser_leg(64 * 1024);
    let fragments = 3 * FRAMES_PER_POLL;
    let mut wire = client_frame(false, 0x1, b"[");
    for _ in 1..fragments - 1 {
        wire.extend(client_frame(false, 0x0, b"1"));
    }
    wire.extend(client_frame(true, 0x0, b"]"));
    raw.write_all(&wire).await.expect("write");
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    let mut polls = 0;
    let msg = loop {
        polls += 1;
        assert!(polls <= fragments, "no message after {polls} polls");
        if let Poll::Ready(m) = Pin::new(&mut ws).poll_next(&mut cx) {
            break m;
        }
    };
    assert!(matches!(msg, Some(Ok(Message::Text(t))) if t.len() == fragments));
    assert_eq!(polls, 3, "one poll per {FRAMES_PER_POLL} fragments");
    assert_eq!(
        count.0.load(Ordering::Relaxed),
        2,
        "each yield wakes itself"
    );
}

#[tokio::test]
async fn buffers_are_let_go_after_a_large_message_each_way() {
    let (a, b) = duplex(64 * 1024);
    let mut client = WsStream::new(a, Role::Client, &[], 16 * 1024 * 1024);
    let mut server = WsStream::new(b, Role::Server, &[], MAX);
    let big = "y".repeat(MAX);
    let (sent, got) = tokio::join!(client.send(Message::text(big.clone())), server.next());
    sent.expect("sent");
    let got = got.and_then(Result::ok);
    assert!(matches!(&got, Some(Message::Text(t)) if t.len() == MAX));
    let (sent, back) = tokio::join!(server.send(Message::text(big)), client.next());
    sent.expect("sent");
    assert!(matches!(back, Some(Ok(Message::Text(t))) if t.len() == MAX));
    drop(got);
    assert_eq!(server.buffered_capacity(), 0);
    assert_eq!(client.buffered_capacity(), 0);
    // And an idle stream that only ever carried small messages holds nothing either.
    let (sent, got) = tokio::join!(client.send(Message::text("small")), server.next());
    sent.expect("sent");
    assert!(got.is_some());
    assert_eq!(
        (server.buffered_capacity(), client.buffered_capacity()),
        (0, 0)
    );
}

#[tokio::test]
async fn a_peer_that_does_not_read_stops_the_writer_at_one_message() {
    let (mut ws, mut raw) = browser_leg(1024);
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(Pin::new(&mut ws).poll_ready(&mut cx).is_ready());
    Pin::new(&mut ws)
        .start_send(Message::text("z".repeat(10_000)))
        .expect("queued");
    assert!(Pin::new(&mut ws).poll_flush(&mut cx).is_pending());
    assert!(
        Pin::new(&mut ws).poll_ready(&mut cx).is_pending(),
        "no second message while the first waits"
    );
    let (op, payload) = tokio::join!(ws.flush(), server_frame(&mut raw)).1;
    assert_eq!((op, payload.len()), (0x81, 10_000));
}

#[tokio::test]
async fn a_peer_that_pings_and_never_reads_costs_one_pong_not_one_per_ping() {
    // A 64-byte pipe the peer never reads: the first pong fills it.
    let (mut ws, mut raw) = browser_leg(64);
    let pings = 10_000;
    let mut wire = Vec::new();
    for i in 0..pings {
        wire.extend(client_frame(true, 0x9, format!("{i:0>100}").as_bytes()));
    }
    wire.extend(client_frame(true, 0x1, b"last"));
    let (_, received) = tokio::join!(
        async {
            // The gateway side reads (the pipe's other direction) while this writes.
            tokio::io::AsyncWriteExt::write_all(&mut raw, &wire)
                .await
                .expect("write");
            raw
        },
        async {
            let mut got = 0;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Ping(_))) => got += 1,
                    Some(Ok(Message::Text(t))) if t.as_str() == "last" => break got,
                    other => panic!("{other:?}"),
                }
            }
        }
    );
    assert_eq!(received, pings);
    let held = ws.buffered_capacity();
    assert!(held < 1024, "{held} bytes held for {pings} pings");
}

#[tokio::test]
async fn a_large_frame_announced_but_not_sent_holds_memory_in_step_with_what_arrived() {
    let (mut ws, mut raw) = browser_leg(1 << 20);
    let announced = 900_000usize;
    let mut wire = client_frame(true, 0x1, &vec![b'x'; announced]);
    let header = wire.len() - announced;
    // The header and the first 100 bytes; the rest is never sent.
    wire.truncate(header + 100);
    raw.write_all(&wire).await.expect("write");
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
    let held = ws.buffered_capacity();
    assert!(
        held <= 2 * GROWTH_FLOOR_BYTES,
        "{held} bytes held for 100 received"
    );
    // And a frame that does arrive whole is read whole, however it grew.
    let (mut ws, mut raw) = browser_leg(1 << 20);
    let text = "y".repeat(announced);
    let (_, got) = tokio::join!(
        async {
            raw.write_all(&client_frame(true, 0x1, text.as_bytes()))
                .await
                .expect("write");
            raw
        },
        ws.next()
    );
    assert!(matches!(got, Some(Ok(Message::Text(t))) if t.as_str() == text));
    assert_eq!(ws.buffered_capacity(), 0);
}
