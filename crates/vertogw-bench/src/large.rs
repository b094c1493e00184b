//! The `large` mode: every session sends one echo request as large as allowed and reads
//! its (larger) reply, a bounded number at a time, then all stay idle for the hold; the
//! watched processes' memory after that is compared with their memory once every
//! session had logged in.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::hist::RttSummary;
use super::modes::{
    base_report, echo_prefix, finish_deadline, log_in_all, sink, spawn, Watch, JOIN_SLACK,
};
use super::report::Report;
use super::run::Work;
use super::scan::Kind;
use super::session::{LoadOutcome, Proto, Session, Sink};
use super::{BenchConfig, ErrorKind};

/// Bound on one large round trip: sending the request and receiving its whole reply.
pub const LARGE_REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The large request's id (the logins use 1 and 2).
const LARGE_REQUEST_ID: u64 = 3;

/// The size of the large request with an empty `pad`: the smallest `large_bytes`.
pub fn smallest_request() -> usize {
    echo_prefix(0).len() + LARGE_REQUEST_ID.to_string().len() + 1
}

/// The large echo request of exactly `bytes` bytes (at least [`smallest_request`]).
fn request_text(bytes: usize) -> String {
    // ASCII by construction: the lossy conversion copies it unchanged.
    let prefix = echo_prefix(bytes.saturating_sub(smallest_request()));
    let mut text = String::from_utf8_lossy(&prefix).into_owned();
    text.push_str(&format!("{LARGE_REQUEST_ID}}}"));
    text
}

/// What the sessions of a large run share: the request, the slots for sending it, and
/// where each session says its round trip is over.
pub struct Exchange {
    request: Utf8Bytes,
    in_flight: Semaphore,
    /// One message per session once its round trip ended: the size of its `result`
    /// reply, or `None` (error reply or failure).
    done: mpsc::UnboundedSender<Option<usize>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("request_bytes", &self.request.len())
            .field("free_slots", &self.in_flight.available_permits())
            .finish_non_exhaustive()
    }
}

/// A session's part once started: waits for a slot (answering pings meanwhile), sends
/// the large request and reads its reply within [`LARGE_REPLY_TIMEOUT`], says so, then
/// stays connected and silent until `stop`.
pub async fn session_work(
    session: &mut Session,
    index: usize,
    exchange: &Exchange,
    sink: &Sink,
    stop: &CancellationToken,
) -> LoadOutcome {
    let mut out = LoadOutcome::default();
    let reply = round_trip(session, index, exchange, sink, &mut out).await;
    let _ = exchange.done.send(reply.as_ref().ok().copied().flatten());
    let held = match reply {
        Ok(_) => session.idle_until(stop.cancelled()).await,
        Err(kind) => Err(kind),
    };
    out.error = held.err();
    out
}

/// One large round trip; `Ok(Some(bytes))` for a `result` reply, `Ok(None)` for an
/// error reply.
async fn round_trip(
    session: &mut Session,
    index: usize,
    exchange: &Exchange,
    sink: &Sink,
    out: &mut LoadOutcome,
) -> Result<Option<usize>, ErrorKind> {
    let _slot = session
        .idle_until(exchange.in_flight.acquire())
        .await?
        .map_err(|_| ErrorKind::Closed)?;
    let sent = Instant::now();
    let exchanged = timeout(LARGE_REPLY_TIMEOUT, async {
        session.send_text(exchange.request.clone()).await?;
        out.sent += 1;
        session.reply_size(LARGE_REQUEST_ID).await
    })
    .await;
    let (kind, bytes) = exchanged.unwrap_or(Err(ErrorKind::Timeout))?;
    sink.rtt.record(index, sent.elapsed());
    out.replies += 1;
    if kind == Kind::Error {
        out.rpc_errors += 1;
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// The large mode: sample, log everyone in, sample ("after"), one large round trip per
/// session, hold idle, sample ("end").
pub async fn large(config: &BenchConfig, proto: &Arc<Proto>) -> Report {
    let hold = Duration::from_secs_f64(config.hold_s);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let exchange = Exchange {
        request: Utf8Bytes::from(request_text(config.large_bytes)),
        in_flight: Semaphore::new(config.large_in_flight),
        done: done_tx,
    };
    let sink = sink(false);
    let work = Work::Large(Arc::new(exchange));
    let before = Watch::sample(&config.watch);
    let began = Instant::now();
    let (mut group, stop) = spawn(proto, config, 0, config.sessions, work, sink.clone());
    let logins = log_in_all(&mut group, config, began).await;
    let after = Watch::sample(&config.watch);
    let start = Instant::now();
    group.start(start);
    let waves = logins.ok.div_ceil(config.large_in_flight) as u32;
    let deadline = start + LARGE_REPLY_TIMEOUT.saturating_mul(waves.saturating_add(1)) + JOIN_SLACK;
    let (ended, smallest) = collect(&mut done, logins.ok, deadline).await;
    let exchanged = Instant::now();
    tracing::info!(
        ended,
        of = logins.ok,
        ms = (exchanged - start).as_millis() as u64,
        "bench: large round trips done; holding idle"
    );
    sleep_until(exchanged + hold).await;
    let end = Watch::sample(&config.watch);
    stop.cancel();
    let totals = group.finish(finish_deadline(Instant::now())).await;
    let mut report = base_report(config, &logins, began, &totals, exchanged - start);
    report.payload_bytes = config.large_bytes.saturating_sub(smallest_request());
    report.large_request_bytes = Some(config.large_bytes);
    report.large_reply_bytes_min = smallest;
    report.rtt_us = RttSummary::of(&sink.rtt.merged());
    report.watch = before.compare(&after, Some(&end), logins.ok, 0);
    for w in &mut report.watch {
        w.rss_kib_retained_per_session = w.retained_per_session(logins.ok as u64);
    }
    report
}

/// Waits (until `deadline`) for `sessions` round trips to end; returns how many did and
/// the smallest `result` reply among them.
async fn collect(
    done: &mut mpsc::UnboundedReceiver<Option<usize>>,
    sessions: usize,
    deadline: Instant,
) -> (usize, Option<usize>) {
    let mut smallest: Option<usize> = None;
    let mut ended = 0;
    while ended < sessions {
        let Ok(Some(reply)) = timeout_at(deadline, done.recv()).await else {
            break;
        };
        ended += 1;
        if let Some(bytes) = reply {
            smallest = Some(smallest.map_or(bytes, |s| s.min(bytes)));
        }
    }
    (ended, smallest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_large_request_is_exactly_the_message_limit_and_valid_json() {
        let text = request_text(crate::MAX_LARGE_BYTES);
        assert_eq!(text.len(), 999_999);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["method"], "echo");
        assert_eq!(v["id"], LARGE_REQUEST_ID);
        let pad = v["params"]["pad"].as_str().unwrap();
        assert_eq!(pad.len(), 999_999 - smallest_request());
    }

    #[test]
    fn the_smallest_large_request_has_an_empty_pad() {
        let text = request_text(smallest_request());
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","method":"echo","params":{"pad":""},"id":3}"#
        );
    }
}
