//! The relay's two directions: the browser's frames to the node through the session's
//! policy, and the node's frames to the browser, each noting calls and counting bytes.

use std::task::{ready, Context, Poll};

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

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
    /// is progress (`n` messages moved), `Ready(Err)` ends the session.
    pub(super) fn relay_up(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, EndReason>> {
        let Pump {
            browser,
            node,
            policy,
            calls,
            counters,
            bytes_up,
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
        self.watch.heard(Instant::now());
        if noted {
            self.note_calls();
        }
        self.flush_node = true;
        let msg = match relayed {
            // At least one: the pump's own bound then holds whatever the frames were.
            Ok(Relayed::Frames) => return Poll::Ready(Ok(moved.max(1))),
            Ok(Relayed::Stopped) => {
                if let Some(verdict) = stopped {
                    self.follow(verdict, None);
                }
                return Poll::Ready(Ok(moved + 1));
            }
            Ok(Relayed::End) => return Poll::Ready(Err(EndReason::BrowserGone)),
            Err(RelayError::Read(e)) => return Poll::Ready(Err(browser_read_end(Some(e)))),
            Err(RelayError::Write(_)) => return Poll::Ready(Err(EndReason::NodeGone)),
            Ok(Relayed::Message(msg)) => msg,
        };
        match msg {
            Message::Close(frame) => return Poll::Ready(Err(EndReason::BrowserClosed(frame))),
            // A fragmented message, reassembled: checked whole and sent as one frame.
            Message::Text(text) => {
                let verdict = self.policy.check(&text);
                self.follow(verdict, Some(text));
            }
            Message::Binary(bytes) => {
                self.counters.to_node.count(bytes.len());
                self.bytes_up += bytes.len() as u64;
                self.to_node = Some(Message::Binary(bytes));
            }
            // Answered or consumed by the stream; never handed on.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Poll::Ready(Ok(moved + 1))
    }

    /// Acts on the policy's verdict about a browser text the relay did not pass on
    /// (`text`: the reassembled message, when it was fragmented).
    fn follow(&mut self, verdict: Verdict, text: Option<Utf8Bytes>) {
        match verdict {
            Verdict::Answer(reply) => self.local = Some(Message::text(reply)),
            Verdict::Forward => {
                if let Some(text) = text {
                    if self.calls.on_message(From::Browser, &text) {
                        self.note_calls();
                    }
                    self.counters.to_node.count(text.len());
                    self.bytes_up += text.len() as u64;
                    self.to_node = Some(Message::Text(text));
                }
            }
            Verdict::ForwardLogin(stamped) => {
                self.counters.to_node.count(stamped.len());
                self.bytes_up += stamped.len() as u64;
                self.to_node = Some(Message::text(stamped));
            }
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
        if noted {
            self.note_calls();
        }
        self.flush_browser = true;
        match relayed {
            Ok(Relayed::Frames | Relayed::Stopped) => Poll::Ready(Ok(moved.max(1))),
            Ok(Relayed::End) | Err(RelayError::Read(_)) => Poll::Ready(Err(EndReason::NodeGone)),
            Err(RelayError::Write(_)) => Poll::Ready(Err(EndReason::BrowserGone)),
            Ok(Relayed::Message(Message::Close(frame))) => {
                Poll::Ready(Err(EndReason::NodeClosed(frame)))
            }
            Ok(Relayed::Message(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                if let Message::Text(text) = &msg {
                    if self.calls.on_message(From::Node, text) {
                        self.note_calls();
                    }
                }
                self.counters.to_browser.count(msg.len());
                self.bytes_down += msg.len() as u64;
                self.to_browser = Some(msg);
                Poll::Ready(Ok(moved + 1))
            }
            Ok(Relayed::Message(_)) => Poll::Ready(Ok(moved)),
        }
    }
}
