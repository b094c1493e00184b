//! RFC 6455 conformance of the browser leg, through the gateway: hand-built frames
//! written on the raw TLS stream, before and after login. One table, one loop; every
//! failing row is listed at the end, so one run shows the whole picture.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

const RSV1: u8 = 0b100;
const RSV2: u8 = 0b010;
const RSV3: u8 = 0b001;

/// The masking key of every client frame (any key will do; a fixed one keeps a failing
/// row reproducible byte for byte).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The message size the contract refuses before login (close 1009).
const PRE_LOGIN_OVERSIZE: usize = 20_000;

/// The gateway's default `max_message_bytes` (mod_verto's limit), which applies after
/// login.
const MAX_MESSAGE: usize = 999_999;

/// How many frames a row reads at most before its outcome must be clear.
const MAX_FRAMES: usize = 16;

/// The payload of the ping sent between fragments.
const PING_PAYLOAD: &[u8] = b"between-fragments";

/// The reason of every valid browser close: multi-byte UTF-8 on purpose.
const CLOSE_REASON: &str = "bye \u{2713}";

/// A client frame, field by field, so that rows can break any rule on purpose.
#[derive(Debug, Clone)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

impl Frame {
    /// A final, masked frame.
    fn new(opcode: u8, payload: impl AsRef<[u8]>) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            masked: true,
            payload: payload.as_ref().to_vec(),
        }
    }

    fn text(payload: impl AsRef<[u8]>) -> Frame {
        Frame::new(TEXT, payload)
    }

    /// A close frame with `code` and `reason` (raw bytes, so it can be invalid UTF-8).
    fn close(code: u16, reason: &[u8]) -> Frame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        Frame::new(CLOSE, payload)
    }

    /// Clears FIN: more fragments follow.
    fn more(mut self) -> Frame {
        self.fin = false;
        self
    }

    fn rsv(mut self, bits: u8) -> Frame {
        self.rsv = bits;
        self
    }

    fn unmasked(mut self) -> Frame {
        self.masked = false;
        self
    }

    /// The wire bytes, with the shortest length form (126 bytes take the 16-bit one).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 14);
        out.push(u8::from(self.fin) << 7 | (self.rsv & 0b111) << 4 | (self.opcode & 0x0f));
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        if let Ok(short @ 0..=125) = u8::try_from(len) {
            out.push(mask_bit | short);
        } else if let Ok(medium) = u16::try_from(len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&medium.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.masked {
            out.extend_from_slice(&MASK);
            out.extend(
                self.payload
                    .iter()
                    .zip(MASK.iter().cycle())
                    .map(|(b, m)| b ^ m),
            );
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// A frame from the gateway.
#[derive(Debug)]
struct ServerFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

impl ServerFrame {
    /// A short human-readable form for failure messages.
    fn describe(&self) -> String {
        let kind = match self.opcode {
            CONT => "continuation".to_owned(),
            TEXT => "text".to_owned(),
            0x2 => "binary".to_owned(),
            CLOSE => "close".to_owned(),
            PING => "ping".to_owned(),
            PONG => "pong".to_owned(),
            op => format!("opcode {op:#x}"),
        };
        let body: String = String::from_utf8_lossy(&self.payload)
            .chars()
            .take(120)
            .collect();
        format!("a {kind} frame ({} bytes): {body:?}", self.payload.len())
    }

    /// A close frame's code and reason; `Err` says why the payload is malformed.
    fn close_parts(&self) -> Result<Option<(u16, String)>, String> {
        match self.payload.as_slice() {
            [] => Ok(None),
            [_] => Err("a close frame with a 1-byte payload".to_owned()),
            [hi, lo, reason @ ..] => match std::str::from_utf8(reason) {
                Ok(r) => Ok(Some((u16::from_be_bytes([*hi, *lo]), r.to_owned()))),
                Err(_) => Err(format!(
                    "a close frame with a non-UTF-8 reason {reason:02x?}"
                )),
            },
        }
    }
}

/// Parses one frame off the front of `buf`: the frame and its length on the wire, or
/// `None` while it is incomplete.
fn decode(buf: &[u8]) -> Option<(ServerFrame, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let wide = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            (usize::try_from(wide).ok()?, 10)
        }
        short => (usize::from(short), 2),
    };
    let key: Option<[u8; 4]> = if masked {
        let key = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let end = at.checked_add(len)?;
    let body = buf.get(at..end)?;
    let payload = match key {
        Some(k) => body
            .iter()
            .zip(k.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect(),
        None => body.to_vec(),
    };
    let frame = ServerFrame {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0b111,
        opcode: b0 & 0x0f,
        masked,
        payload,
    };
    Some((frame, end))
}

/// What waiting for the gateway's next frame gave.
enum Next {
    Frame(ServerFrame),
    /// TCP (or TLS) ended; how.
    Ended(String),
    /// Nothing within [`TIMEOUT`].
    Hang,
}

/// A browser's TLS stream after the upgrade, spoken to in raw frames.
struct Raw {
    io: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Raw {
    /// Writes `frames` in one go; `Err` describes a failed or stalled write.
    async fn send(&mut self, frames: &[Frame]) -> Result<(), String> {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let write = async {
            self.io.write_all(&bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing the frames failed: {e}")),
            Err(_) => Err(format!("writing the frames stalled for {TIMEOUT:?}")),
        }
    }

    /// The gateway's next frame, bounded by [`TIMEOUT`].
    async fn next(&mut self) -> Next {
        let read = async {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                if let Some((frame, used)) = decode(&self.buf) {
                    self.buf.drain(..used);
                    return Next::Frame(frame);
                }
                match self.io.read(&mut chunk).await {
                    Ok(0) if self.buf.is_empty() => return Next::Ended("EOF".to_owned()),
                    Ok(0) => return Next::Ended(format!("EOF mid-frame {:02x?}", self.buf)),
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        let left = self.buf.len();
                        return Next::Ended(format!(
                            "EOF without TLS close_notify, {left} bytes of a frame left"
                        ));
                    }
                    Err(e) => return Next::Ended(format!("read error: {e}")),
                }
            }
        };
        tokio::time::timeout(TIMEOUT, read)
            .await
            .unwrap_or(Next::Hang)
    }

    /// The next frame that is not a pong, after checking its header is one a server
    /// may send; the pongs skipped are appended to `pongs`.
    async fn next_non_pong(&mut self, pongs: &mut Vec<Vec<u8>>) -> Result<ServerFrame, String> {
        for _ in 0..MAX_FRAMES {
            match self.next().await {
                Next::Frame(f) if f.masked || f.rsv != 0 => {
                    return Err(format!("the gateway sent a masked or RSV frame: {f:?}"))
                }
                Next::Frame(f) if f.opcode == PONG => pongs.push(f.payload),
                Next::Frame(f) => return Ok(f),
                Next::Ended(how) => {
                    return Err(format!(
                        "silent drop: TCP ended ({how}) without a close frame"
                    ))
                }
                Next::Hang => return Err(format!("hang: no frame within {TIMEOUT:?}")),
            }
        }
        Err(format!("{MAX_FRAMES} pongs and no other frame"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    BeforeLogin,
    AfterLogin,
}

/// What the gateway must do with a row's frames.
#[derive(Debug)]
enum Expect {
    /// The request `text` is answered: before login with -32000 "Authentication
    /// Required", after login by the node's echo (the node got it once, whole). With
    /// `pong`, exactly one pong with that payload comes first.
    Answer { text: String, pong: Option<Vec<u8>> },
    /// The next frame but pongs is a close with this code; then TCP ends.
    Close(u16),
    /// A close comes back (any code), TCP ends and the node's socket of the row's user
    /// closes.
    ClosePropagated,
}

/// One conformance case.
struct Row {
    phase: Phase,
    name: String,
    frames: Vec<Frame>,
    expect: Expect,
}

/// Builds the table, handing out request ids unique across rows (the node is shared).
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    last_id: u64,
}

impl Table {
    /// A fresh `echo` request with `params`.
    fn echo(&mut self, params: &str) -> String {
        self.last_id += 1;
        let id = self.last_id;
        format!(r#"{{"jsonrpc":"2.0","method":"echo","params":{params},"id":{id}}}"#)
    }

    /// A fresh `echo` request of exactly `size` bytes.
    fn echo_of_size(&mut self, size: usize) -> String {
        let short = self.echo(r#"{"pad":""}"#);
        let pad = "p".repeat(size - short.len());
        short.replacen(r#""pad":"""#, &format!(r#""pad":"{pad}""#), 1)
    }

    fn add(&mut self, phase: Phase, name: impl Into<String>, frames: Vec<Frame>, expect: Expect) {
        let name = name.into();
        self.rows.push(Row {
            phase,
            name,
            frames,
            expect,
        });
    }

    /// A row whose `frames` break a rule the gateway must answer with close `code`.
    /// A valid request follows them: a gateway that lets the violation pass answers
    /// it, which names the failure better than a timeout.
    fn violation(&mut self, phase: Phase, name: impl Into<String>, frames: Vec<Frame>, code: u16) {
        let mut frames = frames;
        frames.push(Frame::text(self.echo("{}")));
        self.add(phase, name, frames, Expect::Close(code));
    }
}

/// `text` as TEXT(FIN=0), CONT(FIN=0), CONT(FIN=1), with `ping` after the first.
fn three_fragments(text: &str, ping: Option<&[u8]>) -> Vec<Frame> {
    let bytes = text.as_bytes();
    let (a, b) = (bytes.len() / 3, 2 * bytes.len() / 3);
    let mut frames = vec![Frame::text(&bytes[..a]).more()];
    frames.extend(ping.map(|p| Frame::new(PING, p)));
    frames.push(Frame::new(CONT, &bytes[a..b]).more());
    frames.push(Frame::new(CONT, &bytes[b..]));
    frames
}

/// `text` as TEXT(FIN=0) and CONT(FIN=1), split at byte `at`.
fn two_fragments(text: &[u8], at: usize) -> Vec<Frame> {
    vec![
        Frame::text(&text[..at]).more(),
        Frame::new(CONT, &text[at..]),
    ]
}

fn answer(text: String) -> Expect {
    Expect::Answer { text, pong: None }
}

/// Rows 1–4: fragmentation and UTF-8.
fn fragmentation_rows(t: &mut Table, phase: Phase) {
    let req = t.echo("{}");
    t.add(
        phase,
        "1 text in 3 fragments is one message",
        three_fragments(&req, None),
        answer(req),
    );
    let req = t.echo("{}");
    let expect = Expect::Answer {
        text: req.clone(),
        pong: Some(PING_PAYLOAD.to_vec()),
    };
    t.add(
        phase,
        "2 ping between fragments: pong, message whole",
        three_fragments(&req, Some(PING_PAYLOAD)),
        expect,
    );
    let req = t.echo(r#"{"s":"é"}"#);
    let split = req.find('é').map_or(0, |at| at + 1);
    t.add(
        phase,
        "2b valid UTF-8 split inside a character is accepted",
        two_fragments(req.as_bytes(), split),
        answer(req),
    );
    t.violation(
        phase,
        "3 invalid UTF-8 text (c3 28)",
        vec![Frame::text([0xC3, 0x28])],
        1007,
    );
    let frames = two_fragments(&[b'"', 0xC3, 0x28, b'"'], 2);
    t.violation(
        phase,
        "4 invalid UTF-8 split across fragments",
        frames,
        1007,
    );
}

/// Rows 5–10: header and framing violations.
fn framing_rows(t: &mut Table, phase: Phase) {
    for (bit, name) in [(RSV1, "RSV1"), (RSV2, "RSV2"), (RSV3, "RSV3")] {
        let frame = Frame::text(t.echo("{}")).rsv(bit);
        t.violation(
            phase,
            format!("5 {name} set on a text frame"),
            vec![frame],
            1002,
        );
    }
    for op in [0x3, 0x7] {
        let frame = Frame::new(op, t.echo("{}"));
        t.violation(
            phase,
            format!("6 reserved data opcode {op:#x}"),
            vec![frame],
            1002,
        );
    }
    for op in [0xB, 0xF] {
        let frame = Frame::new(op, b"ctl");
        t.violation(
            phase,
            format!("6 reserved control opcode {op:#x}"),
            vec![frame],
            1002,
        );
    }
    let frame = Frame::text(t.echo("{}")).unmasked();
    t.violation(phase, "7 unmasked client frame", vec![frame], 1002);
    let frame = Frame::new(PING, [b'p'; 126]);
    t.violation(
        phase,
        "8 ping with 126 bytes (16-bit length)",
        vec![frame],
        1002,
    );
    let frame = Frame::new(PING, b"frag").more();
    t.violation(phase, "9 fragmented ping (FIN=0)", vec![frame], 1002);
    let frame = Frame::new(CONT, t.echo("{}"));
    t.violation(
        phase,
        "10 continuation with no message started",
        vec![frame],
        1002,
    );
    let frames = vec![
        Frame::text(b"{\"jsonrpc\":").more(),
        Frame::text(t.echo("{}")),
    ];
    t.add(
        phase,
        "10 new TEXT while a fragmented message is open",
        frames,
        Expect::Close(1002),
    );
}

/// Row 11: close frames.
fn close_rows(t: &mut Table, phase: Phase) {
    for code in [1000, 1001, 3000, 4000] {
        let expect = match phase {
            Phase::BeforeLogin => Expect::Close(code),
            Phase::AfterLogin => Expect::ClosePropagated,
        };
        let frame = Frame::close(code, CLOSE_REASON.as_bytes());
        t.add(
            phase,
            format!("11 close {code} with a UTF-8 reason"),
            vec![frame],
            expect,
        );
    }
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let frame = Frame::close(code, b"bad code");
        t.add(
            phase,
            format!("11 close with invalid code {code}"),
            vec![frame],
            Expect::Close(1002),
        );
    }
    let frame = Frame::new(CLOSE, [0x03]);
    t.add(
        phase,
        "11 close with a 1-byte payload",
        vec![frame],
        Expect::Close(1002),
    );
    let frame = Frame::close(1000, &[0xC3, 0x28]);
    t.add(
        phase,
        "11 close with a non-UTF-8 reason",
        vec![frame],
        Expect::Close(1007),
    );
}

/// Row 12: the message size limit, in one frame and in two fragments.
fn size_rows(t: &mut Table, phase: Phase) {
    let size = match phase {
        Phase::BeforeLogin => PRE_LOGIN_OVERSIZE,
        Phase::AfterLogin => MAX_MESSAGE + 2,
    };
    let text = t.echo_of_size(size);
    t.add(
        phase,
        format!("12 text of {size} bytes"),
        vec![Frame::text(&text)],
        Expect::Close(1009),
    );
    let text = t.echo_of_size(size);
    let frames = two_fragments(text.as_bytes(), size / 2);
    t.add(
        phase,
        format!("12 text of {size} bytes in 2 fragments"),
        frames,
        Expect::Close(1009),
    );
}

fn rows() -> Vec<Row> {
    let mut t = Table::default();
    for phase in [Phase::BeforeLogin, Phase::AfterLogin] {
        fragmentation_rows(&mut t, phase);
        framing_rows(&mut t, phase);
        close_rows(&mut t, phase);
        size_rows(&mut t, phase);
    }
    t.rows
}

/// Waits for the close the row expects (`want`: a code, or any) and then for TCP to
/// end; `Ok` says what was seen.
async fn expect_close(raw: &mut Raw, want: Option<u16>) -> Result<String, String> {
    let mut pongs = Vec::new();
    let frame = raw.next_non_pong(&mut pongs).await?;
    if frame.opcode != CLOSE {
        return Err(format!("{} instead of a close", frame.describe()));
    }
    let seen = match frame.close_parts()? {
        Some((code, reason)) => {
            if want.is_some_and(|w| w != code) {
                return Err(format!("close {code} {reason:?} instead of {want:?}"));
            }
            format!("close {code} {reason:?}")
        }
        None if want.is_some() => return Err("a close frame without a code".to_owned()),
        None => "close without a code".to_owned(),
    };
    match raw.next().await {
        Next::Ended(_) => Ok(format!("{seen}, then TCP ended")),
        Next::Frame(f) => Err(format!("{seen}, then {}", f.describe())),
        Next::Hang => Err(format!("{seen}, but TCP still open after {TIMEOUT:?}")),
    }
}

/// Whether `result` carries every member of `params` unchanged.
fn echoes(result: &Value, params: &Value) -> bool {
    match params.as_object() {
        Some(members) => members.iter().all(|(k, v)| result.get(k) == Some(v)),
        None => false,
    }
}

/// Waits for the answer to `text` (and the pong before it, if any).
async fn expect_answer(
    raw: &mut Raw,
    gw: &TestGateway,
    phase: Phase,
    text: &str,
    pong: Option<&[u8]>,
) -> Result<String, String> {
    let request: Value = serde_json::from_str(text).map_err(|e| format!("bad row: {e}"))?;
    let mut pongs = Vec::new();
    let frame = raw.next_non_pong(&mut pongs).await?;
    let reply: Value = match (frame.opcode, frame.fin) {
        (TEXT, true) => serde_json::from_slice(&frame.payload)
            .map_err(|e| format!("{} is not JSON: {e}", frame.describe()))?,
        _ => return Err(format!("{} instead of the answer", frame.describe())),
    };
    if reply["id"] != request["id"] {
        return Err(format!("an answer with another id: {reply}"));
    }
    let answered = match phase {
        Phase::BeforeLogin => {
            reply["error"]["code"] == -32000
                && reply["error"]["message"] == "Authentication Required"
        }
        // The node adds its `sessid` to what it echoes.
        Phase::AfterLogin => echoes(&reply["result"], &request["params"]),
    };
    if !answered {
        return Err(format!("the wrong answer: {reply}"));
    }
    if let Some(want) = pong {
        if pongs != [want] {
            let got: Vec<String> = pongs
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            return Err(format!(
                "pongs {got:?} instead of one with {:?}",
                String::from_utf8_lossy(want)
            ));
        }
    }
    if phase == Phase::AfterLogin {
        let copies = gw
            .node("fs1")
            .received()
            .iter()
            .filter(|m| *m == text)
            .count();
        if copies != 1 {
            return Err(format!(
                "answered, but the node received the message whole {copies} times"
            ));
        }
    }
    Ok(format!("answered: {reply}"))
}

/// Runs one row on a fresh connection (logged in as `user` after login).
async fn run_row(gw: &TestGateway, row: &Row, user: &str) -> Result<String, String> {
    let mut ws = gw.client().await;
    if row.phase == Phase::AfterLogin {
        login_ready(&mut ws, user, 1).await;
    }
    let mut raw = Raw {
        io: ws.into_inner(),
        buf: Vec::new(),
    };
    // A failed write is reported only with a wrong outcome: the gateway may rightly
    // close while the rest of the frames are still on their way.
    let written = raw.send(&row.frames).await;
    check(&mut raw, gw, row, user)
        .await
        .map_err(|e| match written {
            Err(w) => format!("{e} ({w})"),
            Ok(()) => e,
        })
}

/// Checks what the gateway does after the row's frames.
async fn check(raw: &mut Raw, gw: &TestGateway, row: &Row, user: &str) -> Result<String, String> {
    match &row.expect {
        Expect::Answer { text, pong } => {
            expect_answer(raw, gw, row.phase, text, pong.as_deref()).await
        }
        Expect::Close(code) => expect_close(raw, Some(*code)).await,
        Expect::ClosePropagated => {
            let seen = expect_close(raw, None).await?;
            // SimStats records no close codes: the node's socket closing is what the
            // harness can see of the browser's close reaching it.
            let gone = |s: &vertogw_sim::SimStats| !s.logged_in_users.iter().any(|u| u == user);
            if !gw.node("fs1").wait_for(gone, TIMEOUT).await {
                return Err(format!("{seen}; the node's socket stayed open"));
            }
            Ok(format!("{seen}; the node's socket closed"))
        }
    }
}

/// The text of a row task's panic.
fn panic_text(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic".to_owned()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn the_browser_leg_conforms_to_rfc6455_before_and_after_login() {
    let before = Arc::new(start(&one_node_map(), &["fs1"]).await);
    let after = Arc::new(start(&one_node_map(), &["fs1"]).await);
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (i, row) in rows().into_iter().enumerate() {
        let gw = match row.phase {
            Phase::BeforeLogin => Arc::clone(&before),
            Phase::AfterLogin => Arc::clone(&after),
        };
        // One user per row, so each row can tell its own node socket apart.
        let user = format!("{}@acme.test", 1000 + i);
        let label = format!("{:?} | {}", row.phase, row.name);
        // A task per row: a panic in one row is that row's failure, not the run's end.
        let outcome = tokio::spawn(async move { run_row(&gw, &row, &user).await })
            .await
            .unwrap_or_else(|e| Err(format!("panicked: {}", panic_text(e))));
        match outcome {
            Ok(seen) => report.push(format!("PASS | {label} | {seen}")),
            Err(why) => {
                report.push(format!("FAIL | {label} | {why}"));
                failures.push(format!("{label}: {why}"));
            }
        }
    }
    let contacted = before.node("fs1").stats().tcp_accepted;
    if contacted != 0 {
        failures.push(format!(
            "before login the node was contacted {contacted} times"
        ));
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} rows fail:\n{}",
        failures.len(),
        report.len(),
        failures.join("\n")
    );
}

#[test]
fn the_encoder_takes_the_16_bit_length_form_at_126_bytes_and_masks() {
    let wire = Frame::new(PING, [b'p'; 126]).encode();
    assert_eq!(wire[..4], [0x89, 0x80 | 126, 0x00, 126]);
    assert_eq!(wire[4..8], MASK);
    assert_eq!(wire.len(), 8 + 126);
    assert_eq!(wire[8], b'p' ^ MASK[0]);
}

#[test]
fn the_decoder_reads_back_every_length_form_and_waits_for_whole_frames() {
    for len in [0, 125, 126, 65_535, 65_536] {
        let sent = Frame::new(0x2, vec![7u8; len]).more().rsv(RSV2);
        let wire = sent.encode();
        assert!(
            decode(&wire[..wire.len() - 1]).is_none(),
            "{len}: incomplete"
        );
        let (got, used) = decode(&wire).unwrap_or_else(|| panic!("{len}: no frame"));
        assert_eq!(used, wire.len(), "{len}");
        assert_eq!((got.fin, got.rsv, got.opcode), (false, RSV2, 0x2), "{len}");
        assert!(got.masked, "{len}");
        assert_eq!(got.payload, sent.payload, "{len}: unmasked payload");
    }
    let close = Frame::close(4000, "bye".as_bytes()).unmasked().encode();
    let (frame, _) = decode(&close).unwrap_or_else(|| panic!("no close frame"));
    assert_eq!(frame.close_parts(), Ok(Some((4000, "bye".to_owned()))));
}
