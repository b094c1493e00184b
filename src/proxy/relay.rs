//! The relay pump after login: frames flow both ways untouched; the only inspection is
//! a byte scan for `"login"` so a login for another partition can be refused.
//!
//! Backpressure policy: nothing is queued between the legs. Each direction forwards one
//! message at a time and reads the next only when the previous one was handed to the
//! other leg's socket, so a slow reader stalls its own sender (through TCP flow
//! control) and never grows the gateway's memory beyond one message plus a bounded
//! write buffer per direction. The two directions are independent, so a peer blocked
//! on writing can never deadlock the other direction.

use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

use super::close::EndReason;
use super::session::{browser_read_end, BrowserSocket, SessionCtx, Summary};
use super::upstream::NodeSocket;
use crate::verto;

/// The browser's sending half, shared by both directions: the node's messages and the
/// gateway's own answers (to refused logins). An uncontended lock, not a channel, so an
/// idle session holds no queue.
type BrowserTx = Mutex<SplitSink<BrowserSocket, Message>>;

/// Relays until either side ends; returns why and both sockets for the close
/// handshake.
pub async fn run(
    browser: BrowserSocket,
    node: NodeSocket,
    ctx: &SessionCtx,
    partition: &str,
    summary: &mut Summary,
) -> (EndReason, Option<(BrowserSocket, NodeSocket)>) {
    let (b_tx, mut b_rx) = browser.split();
    let b_tx = Mutex::new(b_tx);
    let (mut n_tx, mut n_rx) = node.split();
    let up_bytes = AtomicU64::new(0);
    let down_bytes = AtomicU64::new(0);
    let reason = {
        let up = pump_up(&mut b_rx, &mut n_tx, &b_tx, ctx, partition, &up_bytes);
        let down = pump_down(&mut n_rx, &b_tx, &down_bytes);
        tokio::select! {
            r = up => r,
            r = down => r,
            _ = ctx.shutdown.cancelled() => EndReason::Shutdown,
        }
    };
    summary.bytes_up += up_bytes.load(Ordering::Relaxed);
    summary.bytes_down += down_bytes.load(Ordering::Relaxed);
    // Both halves come from the same socket, so reuniting cannot fail; should it
    // ever, dropping the halves still closes the TCP connections.
    match (b_rx.reunite(b_tx.into_inner()), n_rx.reunite(n_tx)) {
        (Ok(b), Ok(n)) => (reason, Some((b, n))),
        _ => (reason, None),
    }
}

async fn pump_up(
    from: &mut SplitStream<BrowserSocket>,
    to: &mut SplitSink<NodeSocket, Message>,
    browser: &BrowserTx,
    ctx: &SessionCtx,
    partition: &str,
    bytes: &AtomicU64,
) -> EndReason {
    loop {
        let msg = match from.next().await {
            None => return EndReason::BrowserGone,
            Some(Err(e)) => return browser_read_end(Some(e)),
            Some(Ok(Message::Close(frame))) => return EndReason::BrowserClosed(frame),
            Some(Ok(Message::Text(text))) => {
                if let Some(reply) = refuse_foreign_login(&text, ctx, partition) {
                    if browser
                        .lock()
                        .await
                        .send(Message::text(reply))
                        .await
                        .is_err()
                    {
                        return EndReason::BrowserGone;
                    }
                    continue;
                }
                Message::Text(text)
            }
            Some(Ok(m @ Message::Binary(_))) => m,
            // Browser pings are answered by tungstenite and never reach the node.
            Some(Ok(_)) => continue,
        };
        bytes.fetch_add(msg.len() as u64, Ordering::Relaxed);
        if to.send(msg).await.is_err() {
            return EndReason::NodeGone;
        }
    }
}

/// A login on an established session for a user of another partition is answered
/// locally with -32001; the session stays where it is.
fn refuse_foreign_login(text: &str, ctx: &SessionCtx, partition: &str) -> Option<String> {
    if !verto::mentions_login(text) {
        return None;
    }
    let req = verto::as_login_request(text)?;
    let router = ctx.gateway.router();
    let message = match router.route(&req.login) {
        Ok(route) if route.partition.name == partition => return None,
        Ok(route) => format!(
            "Already logged in through partition {partition}; {} belongs to partition {}: reconnect to log in as that user",
            req.login, route.partition.name
        ),
        Err(err) => format!("Login not routed by gateway: {err}"),
    };
    Some(verto::error_reply(&req.id, verto::AUTH_FAILED, &message))
}

async fn pump_down(
    from: &mut SplitStream<NodeSocket>,
    to: &BrowserTx,
    bytes: &AtomicU64,
) -> EndReason {
    loop {
        let msg = match from.next().await {
            None | Some(Err(_)) => return EndReason::NodeGone,
            Some(Ok(Message::Close(frame))) => return EndReason::NodeClosed(frame),
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => m,
            Some(Ok(_)) => continue,
        };
        bytes.fetch_add(msg.len() as u64, Ordering::Relaxed);
        if to.lock().await.send(msg).await.is_err() {
            return EndReason::BrowserGone;
        }
    }
}
