//! The relay's two directions: the browser's frames to the node through the session's
//! policy, and the node's frames to the browser, each noting calls and counting bytes.

use std::task::{ready, Context, Poll};

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::Pump;
use crate::proxy::close::EndReason;
use crate::proxy::context::browser_read_end;
use crate::proxy::policy::Verdict;
use crate::verto::calls::From;
use crate::websocket::{Data, Pass, RelayError, Relayed};

impl Pump<'_> {
    /// Tells the registry what the calls tracker knows, after a message it read.
    fn note_calls(&self) {
        if let Some(live) = &self.live {
            live.update(self.calls.ids(), self.calls.client_ready());
        }
    }

    /// Relays the browser's frames to the node as they come, until one needs the
    /// pump (a message stopped by the policy, a reassembled one, a close); `Ready(n)`
    /// is progress (`n` messages moved, at least one so that the pump's own bound holds
    /// whatever the frames were), `Ready(Err)` ends the session.
    pub(super) fn relay_up(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, EndReason>> {
        let Pump {
            browser,
            node,
            policy,
            calls,
            counters,
            bytes_up,
            to_node,
            ..
        } = self;
        let (mut moved, mut noted, mut stopped) = (0, false, None);
        let mut inspect = |data: Data<'_>| {
            let len = match data {
                Data::Text(text) => match policy.check(text) {
                    Verdict::Forward => {
                        noted |= calls.on_message(From::Browser, text);
                        text.len()
                    }
                    verdict => {
                        stopped = Some(verdict);
                        return Pass::Stop;
                    }
                },
                Data::Binary(len) => len,
            };
            counters.to_node.count(len);
            *bytes_up += len as u64;
            moved += 1;
            Pass::Forward
        };
        let relayed = ready!(browser.poll_relay(cx, &mut **node, &mut inspect));
        let end = match relayed {
            Ok(Relayed::Frames | Relayed::Stopped) => None,
            Ok(Relayed::Message(msg)) => handed_back(msg, &mut inspect, to_node)
                .err()
                .map(EndReason::BrowserClosed),
            Ok(Relayed::End) => Some(EndReason::BrowserGone),
            Err(RelayError::Read(e)) => Some(browser_read_end(Some(e))),
            Err(RelayError::Write(_)) => Some(EndReason::NodeGone),
        };
        self.watch.heard(Instant::now());
        if noted {
            self.note_calls();
        }
        self.flush_node = true;
        if let Some(verdict) = stopped {
            self.follow(verdict);
            moved += 1;
        }
        Poll::Ready(match end {
            Some(reason) => Err(reason),
            None => Ok(moved.max(1)),
        })
    }

    /// Acts on the policy's verdict about a browser text the relay kept from the node.
    fn follow(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Answer(reply) => self.local = Some(Message::text(reply)),
            Verdict::ForwardLogin(stamped) => {
                self.counters.to_node.count(stamped.len());
                self.bytes_up += stamped.len() as u64;
                self.to_node = Some(Message::text(stamped));
            }
            // Passed on by the relay itself.
            Verdict::Forward => {}
        }
    }

    /// Relays the node's frames to the browser as they come; as [`Pump::relay_up`].
    pub(super) fn relay_down(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, EndReason>> {
        let Pump {
            browser,
            node,
            calls,
            counters,
            bytes_down,
            to_browser,
            ..
        } = self;
        let (mut moved, mut noted) = (0, false);
        let mut inspect = |data: Data<'_>| {
            let len = match data {
                Data::Text(text) => {
                    noted |= calls.on_message(From::Node, text);
                    text.len()
                }
                Data::Binary(len) => len,
            };
            counters.to_browser.count(len);
            *bytes_down += len as u64;
            moved += 1;
            Pass::Forward
        };
        let relayed = ready!(node.poll_relay(cx, &mut **browser, &mut inspect));
        let end = match relayed {
            Ok(Relayed::Frames | Relayed::Stopped) => None,
            Ok(Relayed::Message(msg)) => handed_back(msg, &mut inspect, to_browser)
                .err()
                .map(EndReason::NodeClosed),
            Ok(Relayed::End) | Err(RelayError::Read(_)) => Some(EndReason::NodeGone),
            Err(RelayError::Write(_)) => Some(EndReason::BrowserGone),
        };
        if noted {
            self.note_calls();
        }
        self.flush_browser = true;
        Poll::Ready(match end {
            Some(reason) => Err(reason),
            None => Ok(moved.max(1)),
        })
    }
}

/// A message the frame relay handed back rather than passed on. A fragmented one comes
/// reassembled: the same inspection as a relayed one, then into `slot` to go out whole,
/// as one frame. A close is the `Err`. Pings and pongs were answered or consumed by the
/// stream and are never handed on.
fn handed_back(
    msg: Message,
    inspect: &mut impl FnMut(Data<'_>) -> Pass,
    slot: &mut Option<Message>,
) -> Result<(), Option<CloseFrame>> {
    if let Message::Close(frame) = msg {
        return Err(frame);
    }
    let pass = match &msg {
        Message::Text(text) => inspect(Data::Text(text)),
        Message::Binary(bytes) => inspect(Data::Binary(bytes.len())),
        _ => return Ok(()),
    };
    if pass == Pass::Forward {
        *slot = Some(msg);
    }
    Ok(())
}
