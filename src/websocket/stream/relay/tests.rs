//! The frame relay between a browser leg and a node leg over in-memory pipes: payloads
//! pass as they came (a browser's under a key of the gateway's own), headers are made
//! minimal, control frames and fragments never reach the other side, stops keep order,
//! bad input fails the read, and a slow peer holds its own sender without growing the
//! gateway's buffers.

use std::future::poll_fn;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;
use crate::websocket::Role;

const MAX: usize = 999_999;
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The gateway's two legs and the raw ends a test browser and a test node use.
struct Legs {
    browser: WsStream<DuplexStream>,
    node: WsStream<DuplexStream>,
    browser_raw: DuplexStream,
    node_raw: DuplexStream,
}

fn legs(browser_pipe: usize, node_pipe: usize) -> Legs {
    let (b, browser_raw) = duplex(browser_pipe);
    let (n, node_raw) = duplex(node_pipe);
    Legs {
        browser: WsStream::new(b, Role::Server, &[], MAX),
        node: WsStream::new(n, Role::Client, &[], MAX),
        browser_raw,
        node_raw,
    }
}

/// A frame with the length in the form `len_form` (7, 16 or 64 bits) and `mask`.
fn frame_with(
    fin: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    len_form: u8,
) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match len_form {
        7 => out.push(mask_bit | payload.len() as u8),
        16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    let start = out.len() + mask.map_or(0, |k| k.len());
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        frame::apply_mask(&mut out[start..], key);
    }
    out
}

fn shortest(len: usize) -> u8 {
    match len {
        0..=125 => 7,
        126..=0xffff => 16,
        _ => 64,
    }
}

/// What a browser sends: masked, shortest length.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(fin, opcode, payload, Some(KEY), shortest(payload.len()))
}

/// What a node sends: unmasked, shortest length.
fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(fin, opcode, payload, None, shortest(payload.len()))
}

/// One frame as a peer reads it: the first header byte (FIN, RSV, opcode), the length
/// form (7, 16 or 64 bits) and the payload, unmasked.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    head: u8,
    len_form: u8,
    payload: Vec<u8>,
}

/// Splits `wire` into its frames; their masking keys come back apart.
fn frames(wire: &[u8]) -> (Vec<Read>, Vec<Option<[u8; 4]>>) {
    let (mut read, mut keys, mut at) = (Vec::new(), Vec::new(), 0);
    while at < wire.len() {
        let (header, header_len) = frame::parse(&wire[at..])
            .expect("a valid header")
            .expect("a whole header");
        let end = at + header_len + header.len as usize;
        let mut payload = wire[at + header_len..end].to_vec();
        if let Some(key) = header.mask {
            frame::apply_mask(&mut payload, key);
        }
        let len_form = match header_len - header.mask.map_or(0, |k| k.len()) {
            2 => 7,
            4 => 16,
            _ => 64,
        };
        read.push(Read {
            head: wire[at],
            len_form,
            payload,
        });
        keys.push(header.mask);
        at = end;
    }
    (read, keys)
}

/// `got`, what the node read, is `sent`, what the browser wrote, frame for frame, with
/// every frame masked under a key the browser did not choose.
fn assert_rekeyed(got: &[u8], sent: &[u8]) {
    let ((got, got_keys), (sent, sent_keys)) = (frames(got), frames(sent));
    assert_eq!(got, sent);
    for (theirs, ours) in sent_keys.iter().zip(&got_keys) {
        assert!(
            ours.is_some() && ours != theirs,
            "the browser's key {theirs:?} reached the node"
        );
    }
}

/// What one relay call gave, and the messages the inspector saw.
struct Outcome {
    result: Result<Relayed, RelayError>,
    seen: Vec<String>,
}

/// One `poll_relay` call from `from` to `to`; the inspector stops at texts equal to
/// `stop_at`.
async fn relay_once<A, B>(from: &mut WsStream<A>, to: &mut WsStream<B>, stop_at: &str) -> Outcome
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut seen = Vec::new();
    let result = poll_fn(|cx| {
        from.poll_relay(cx, to, &mut |data| {
            let (name, pass) = match data {
                Data::Text(t) => (
                    t.to_owned(),
                    if t == stop_at {
                        Pass::Stop
                    } else {
                        Pass::Forward
                    },
                ),
                Data::Binary(n) => (format!("<{n} bytes>"), Pass::Forward),
            };
            seen.push(name);
            pass
        })
    })
    .await;
    Outcome { result, seen }
}

async fn read_exactly(raw: &mut DuplexStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    raw.read_exact(&mut got).await.expect("the relayed bytes");
    got
}

/// Nothing more is readable on `raw` now.
async fn nothing_more(raw: &mut DuplexStream) {
    let mut byte = [0u8; 1];
    let read =
        tokio::time::timeout(std::time::Duration::from_millis(50), raw.read(&mut byte)).await;
    assert!(read.is_err(), "unexpected bytes: {read:?}");
}

#[tokio::test]
async fn browser_frames_reach_the_node_as_they_came_under_a_key_of_the_gateways_own() {
    let mut l = legs(1 << 16, 1 << 16);
    let mut wire = client_frame(true, 0x1, br#"{"method":"echo","id":1}"#);
    wire.extend(client_frame(true, 0x2, &[0, 1, 2, 3, 250]));
    wire.extend(client_frame(true, 0x1, "é✓".as_bytes()));
    l.browser_raw.write_all(&wire).await.expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    assert!(
        matches!(out.result, Ok(Relayed::Frames)),
        "{:?}",
        out.result
    );
    assert_eq!(out.seen, [r#"{"method":"echo","id":1}"#, "<5 bytes>", "é✓"]);
    assert_rekeyed(&read_exactly(&mut l.node_raw, wire.len()).await, &wire);
    assert_eq!(
        l.browser.buffered_capacity() + l.node.buffered_capacity(),
        0
    );
}

#[tokio::test]
async fn node_frames_reach_the_browser_as_they_came() {
    let mut l = legs(1 << 17, 1 << 17);
    let big = "n".repeat(70_000);
    let mut wire = server_frame(true, 0x1, b"{\"result\":{}}");
    wire.extend(server_frame(true, 0x2, big.as_bytes()));
    l.node_raw.write_all(&wire).await.expect("write");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let out = relay_once(&mut l.node, &mut l.browser, "").await;
        assert!(
            matches!(out.result, Ok(Relayed::Frames)),
            "{:?}",
            out.result
        );
        seen.extend(out.seen);
    }
    assert_eq!(seen, ["{\"result\":{}}", "<70000 bytes>"]);
    assert_eq!(read_exactly(&mut l.browser_raw, wire.len()).await, wire);
    assert_eq!(
        l.browser.buffered_capacity() + l.node.buffered_capacity(),
        0
    );
}

#[tokio::test]
async fn a_longer_length_form_than_needed_is_made_the_shortest_and_the_rest_kept() {
    let mut l = legs(1 << 16, 1 << 16);
    let mut wire = frame_with(true, 0x1, b"short", Some(KEY), 64);
    wire.extend(frame_with(true, 0x1, b"also short", Some([9, 8, 7, 6]), 16));
    l.browser_raw.write_all(&wire).await.expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    assert!(matches!(out.result, Ok(Relayed::Frames)));
    let mut want = client_frame(true, 0x1, b"short");
    want.extend(frame_with(true, 0x1, b"also short", Some([9, 8, 7, 6]), 7));
    assert_rekeyed(&read_exactly(&mut l.node_raw, want.len()).await, &want);
}

/// A raw client picks its own key, zero included, so it would choose the bytes the node
/// leg carries if its key went on: text and binary alike reach the node under a key
/// of the gateway's, a different one per frame.
#[tokio::test]
async fn a_clients_chosen_key_never_reaches_the_node_not_even_zero() {
    let mut l = legs(1 << 16, 1 << 16);
    let plain = b"GET / HTTP/1.1\r\nHost: cache\r\n\r\n";
    let mut wire = Vec::new();
    for opcode in [0x1, 0x2, 0x1, 0x2] {
        wire.extend(frame_with(true, opcode, plain, Some([0; 4]), 7));
    }
    l.browser_raw.write_all(&wire).await.expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    assert!(matches!(out.result, Ok(Relayed::Frames)));
    let got = read_exactly(&mut l.node_raw, wire.len()).await;
    assert_rekeyed(&got, &wire);
    let keys = frames(&got).1;
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "one key per frame: {keys:?}");
    // Each frame's payload on the wire is not the client's bytes.
    for at in (0..4).map(|i| i * (6 + plain.len())) {
        assert_ne!(&got[at + 6..at + 6 + plain.len()], plain);
    }
}

#[tokio::test]
async fn a_fragmented_message_comes_back_whole_and_its_pings_never_pass() {
    let mut l = legs(1 << 16, 1 << 16);
    let mut wire = client_frame(false, 0x1, b"hel");
    wire.extend(client_frame(true, 0x9, b"p1"));
    wire.extend(client_frame(false, 0x0, b"l"));
    wire.extend(client_frame(true, 0xA, b"unasked pong"));
    wire.extend(client_frame(true, 0x0, b"o"));
    wire.extend(client_frame(true, 0x1, b"after"));
    l.browser_raw.write_all(&wire).await.expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    match out.result {
        Ok(Relayed::Message(Message::Text(t))) => assert_eq!(t.as_str(), "hello"),
        other => panic!("{other:?}"),
    }
    assert!(
        out.seen.is_empty(),
        "fragments are not inspected one by one"
    );
    // The ping was answered, once, and nothing reached the node.
    let pong = server_frame(true, 0xA, b"p1");
    assert_eq!(read_exactly(&mut l.browser_raw, pong.len()).await, pong);
    nothing_more(&mut l.node_raw).await;
    // The message after it waited for the next call.
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    assert!(matches!(out.result, Ok(Relayed::Frames)));
    assert_eq!(out.seen, ["after"]);
    let after = client_frame(true, 0x1, b"after");
    assert_rekeyed(&read_exactly(&mut l.node_raw, after.len()).await, &after);
}

#[tokio::test]
async fn a_stop_relays_what_came_before_and_keeps_what_comes_after() {
    let mut l = legs(1 << 16, 1 << 16);
    let (first, login, last) = (
        client_frame(true, 0x1, b"first"),
        client_frame(true, 0x1, b"login"),
        client_frame(true, 0x1, b"last"),
    );
    l.browser_raw
        .write_all(&[first.clone(), login, last.clone()].concat())
        .await
        .expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "login").await;
    assert!(
        matches!(out.result, Ok(Relayed::Stopped)),
        "{:?}",
        out.result
    );
    assert_eq!(out.seen, ["first", "login"]);
    assert_rekeyed(&read_exactly(&mut l.node_raw, first.len()).await, &first);
    nothing_more(&mut l.node_raw).await;
    let out = relay_once(&mut l.browser, &mut l.node, "login").await;
    assert!(matches!(out.result, Ok(Relayed::Frames)));
    assert_eq!(out.seen, ["last"]);
    assert_rekeyed(&read_exactly(&mut l.node_raw, last.len()).await, &last);
    assert_eq!(l.browser.buffered_capacity(), 0, "nothing left buffered");
}

#[tokio::test]
async fn broken_input_fails_the_read_before_anything_of_it_passes() {
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "invalid UTF-8",
            client_frame(true, 0x1, &[b'o', b'k', 0xC3, 0x28]),
        ),
        ("an unmasked frame", server_frame(true, 0x1, b"no mask")),
        ("a reserved opcode", client_frame(true, 0x3, b"x")),
        (
            "a continuation without a message",
            client_frame(true, 0x0, b"x"),
        ),
    ];
    for (what, bad) in cases {
        let mut l = legs(1 << 16, 1 << 16);
        let good = client_frame(true, 0x1, b"good");
        l.browser_raw
            .write_all(&[good.clone(), bad].concat())
            .await
            .expect("write");
        let out = relay_once(&mut l.browser, &mut l.node, "").await;
        match (what, out.result) {
            ("invalid UTF-8", Err(RelayError::Read(Error::Utf8))) => {}
            (_, Err(RelayError::Read(Error::Protocol(_)))) if what != "invalid UTF-8" => {}
            (what, other) => panic!("{what}: {other:?}"),
        }
        nothing_more(&mut l.node_raw).await;
        let out = relay_once(&mut l.browser, &mut l.node, "").await;
        assert!(
            matches!(out.result, Ok(Relayed::End)),
            "{what}: read no further"
        );
    }
}

#[tokio::test]
async fn an_oversized_message_is_refused_at_its_header() {
    let mut l = legs(1 << 16, 1 << 16);
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&(2_000_000u64).to_be_bytes());
    head.extend_from_slice(&KEY);
    l.browser_raw.write_all(&head).await.expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    assert!(matches!(
        out.result,
        Err(RelayError::Read(Error::TooBig {
            size: 2_000_000,
            max: MAX
        }))
    ));
}

#[tokio::test]
async fn a_close_is_answered_and_handed_to_the_caller() {
    let mut l = legs(1 << 16, 1 << 16);
    let mut payload = 4000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    l.browser_raw
        .write_all(&client_frame(true, 0x8, &payload))
        .await
        .expect("write");
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    match out.result {
        Ok(Relayed::Message(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::from(4000)),
        other => panic!("{other:?}"),
    }
    let reply = server_frame(true, 0x8, &payload);
    assert_eq!(read_exactly(&mut l.browser_raw, reply.len()).await, reply);
    nothing_more(&mut l.node_raw).await;
}

#[tokio::test]
async fn eof_between_frames_ends_and_inside_one_is_an_error() {
    let mut l = legs(1 << 16, 1 << 16);
    drop(l.browser_raw);
    assert!(matches!(
        relay_once(&mut l.browser, &mut l.node, "").await.result,
        Ok(Relayed::End)
    ));
    let mut l = legs(1 << 16, 1 << 16);
    l.browser_raw
        .write_all(&client_frame(true, 0x1, b"cut short")[..7])
        .await
        .expect("write");
    drop(l.browser_raw);
    match relay_once(&mut l.browser, &mut l.node, "").await.result {
        Err(RelayError::Read(Error::Io(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_node_that_stops_reading_holds_the_browser_and_not_the_gateways_memory() {
    // A 1 KiB pipe to the node, which reads nothing yet.
    let mut l = legs(1 << 20, 1024);
    let msg = client_frame(true, 0x1, &[b'x'; 10_000]);
    for _ in 0..10 {
        l.browser_raw.write_all(&msg).await.expect("write");
    }
    let out = relay_once(&mut l.browser, &mut l.node, "").await;
    assert!(matches!(out.result, Ok(Relayed::Frames)));
    // The node took 1 KiB; the rest of the first read waits in the node leg's buffer,
    // and the browser leg is not read again until it is gone.
    let held = l.browser.buffered_capacity() + l.node.buffered_capacity();
    assert!(held <= 2 * STACK_READ_BYTES, "{held} bytes held");
    let again = poll_fn(|cx| {
        Poll::Ready(
            l.browser
                .poll_relay(cx, &mut l.node, &mut |_| Pass::Forward)
                .is_pending(),
        )
    })
    .await;
    assert!(again, "no read while the node leg is full");
    // Once the node reads, everything arrives, in order and unchanged.
    let total = msg.len() * 10;
    let node_raw = l.node_raw;
    let reader = tokio::spawn(async move {
        let mut raw = node_raw;
        read_exactly(&mut raw, total).await
    });
    let mut relayed = out.seen.len();
    while relayed < 10 {
        let out = relay_once(&mut l.browser, &mut l.node, "").await;
        assert!(
            matches!(out.result, Ok(Relayed::Frames)),
            "{:?}",
            out.result
        );
        relayed += out.seen.len();
    }
    poll_fn(|cx| l.node.poll_flush_all(cx))
        .await
        .expect("flushed");
    assert_rekeyed(&reader.await.expect("reader"), &msg.repeat(10));
    assert_eq!(
        l.browser.buffered_capacity() + l.node.buffered_capacity(),
        0
    );
}

#[tokio::test]
async fn a_stream_of_control_frames_yields_the_thread_between_batches() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let mut l = legs(1 << 16, 1 << 16);
    let batches = 3;
    let mut wire = client_frame(true, 0xA, b"").repeat(batches * FRAMES_PER_POLL);
    wire.extend(client_frame(true, 0x1, b"after the pongs"));
    l.browser_raw.write_all(&wire).await.expect("write");
    let count = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(std::sync::Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    let mut seen = Vec::new();
    let mut polls = 0;
    let result = loop {
        polls += 1;
        assert!(polls <= 10 * batches, "no message after {polls} polls");
        let poll = l.browser.poll_relay(&mut cx, &mut l.node, &mut |data| {
            if let Data::Text(t) = data {
                seen.push(t.to_owned());
            }
            Pass::Forward
        });
        if let Poll::Ready(result) = poll {
            break result;
        }
    };
    assert!(matches!(result, Ok(Relayed::Frames)), "{result:?}");
    assert_eq!(seen, ["after the pongs"]);
    assert_eq!(polls, batches + 1, "one poll per {FRAMES_PER_POLL} frames");
    assert_eq!(
        count.0.load(std::sync::atomic::Ordering::Relaxed),
        batches,
        "each yield wakes itself"
    );
}

/// Random messages, some fragmented with pings between, cut into random writes: the
/// node receives every whole frame as it came (under a key of the gateway's) and every
/// fragmented message reassembled, in order; the inspector sees exactly the whole ones.
#[tokio::test]
async fn random_streams_cut_anywhere_arrive_in_order_and_unchanged() {
    let mut rng = StdRng::seed_from_u64(0x5eed_f4a3);
    for round in 0..40 {
        let mut l = legs(1 << 20, 1 << 22);
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        let mut fragmented = Vec::new();
        for i in 0..rng.random_range(1..30) {
            let len = match rng.random_range(0..10) {
                0 => rng.random_range(126..70_000),
                _ => rng.random_range(0..300),
            };
            let text: String = format!("{round}/{i}:")
                .chars()
                .chain(std::iter::repeat_n('é', len / 2))
                .collect();
            if rng.random_range(0..5) == 0 && text.len() > 3 {
                let cut = text.char_indices().nth(2).map_or(1, |(at, _)| at);
                wire.extend(client_frame(false, 0x1, &text.as_bytes()[..cut]));
                wire.extend(client_frame(true, 0x9, b"ping"));
                wire.extend(client_frame(true, 0x0, &text.as_bytes()[cut..]));
                fragmented.push(text);
            } else {
                let frame = frame_with(
                    true,
                    0x1,
                    text.as_bytes(),
                    Some(rng.random()),
                    shortest(text.len()),
                );
                expected.extend_from_slice(&frame);
                wire.extend(frame);
            }
        }
        let whole_bytes = expected.len();
        let mut raw = l.browser_raw;
        let writer = tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(round);
            let mut at = 0;
            while at < wire.len() {
                let n = rng.random_range(1..20_000).min(wire.len() - at);
                raw.write_all(&wire[at..at + n]).await.expect("write");
                at += n;
            }
            // The end of the stream, with the pipe kept open for the pongs.
            raw.shutdown().await.expect("shutdown");
            raw
        });
        let mut reassembled = Vec::new();
        loop {
            let out = relay_once(&mut l.browser, &mut l.node, "").await;
            match out.result {
                Ok(Relayed::Frames) => {}
                Ok(Relayed::Message(Message::Text(t))) => reassembled.push(t.as_str().to_owned()),
                Ok(Relayed::End) => break,
                other => panic!("round {round}: {other:?}"),
            }
        }
        l.browser_raw = writer.await.expect("writer");
        assert_eq!(reassembled, fragmented, "round {round}");
        assert_rekeyed(&read_exactly(&mut l.node_raw, whole_bytes).await, &expected);
        nothing_more(&mut l.node_raw).await;
    }
}
