//! What a simulated node has seen: counters tests assert on, and a bounded log of
//! received messages.

use std::collections::VecDeque;

/// How many received messages [`ReceivedLog`] keeps at most.
pub const RECEIVED_LOG_MESSAGES: usize = 256;

/// How many bytes of received messages [`ReceivedLog`] keeps at most (a few
/// 999,999-byte messages fit, so "arrived intact" stays checkable).
pub const RECEIVED_LOG_BYTES: usize = 4 * 1024 * 1024;

/// A snapshot of a node's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// TCP connections accepted.
    pub tcp_accepted: u64,
    /// Completed WebSocket upgrades.
    pub upgrades: u64,
    /// Handshakes answered with 400 (or abandoned).
    pub handshakes_rejected: u64,
    /// Successful authentications (first logins and re-logins).
    pub logins_ok: u64,
    /// Refused credentials (-32001 replies, including "Session in use").
    pub logins_failed: u64,
    /// WebSocket PING frames received (the gateway should never send any).
    pub pings_received: u64,
    /// WebSocket PONG frames received.
    pub pongs_received: u64,
    /// Complete text/binary messages received.
    pub messages_received: u64,
    /// `verto.punt`s sent to displaced sockets.
    pub punts: u64,
    /// Sockets closed because a message reached 1,000,000 bytes.
    pub oversize_closes: u64,
    /// WebSocket sockets currently open.
    pub open_sockets: u64,
    /// Status codes of the close frames peers sent, oldest first (the last
    /// [`CLOSE_CODES_KEPT`]).
    pub close_codes: Vec<u16>,
    /// `id@domain` of every authenticated open socket, sorted (a user appears once per
    /// socket).
    pub logged_in_users: Vec<String>,
    /// Live calls: ringing, active, being reattached or detached.
    pub calls: u64,
    /// `verto.invite`s the node sent (calls it placed: [`crate::SimNode::call`] and the
    /// callback rule).
    pub calls_placed: u64,
    /// Calls placed by the node that a browser answered (`verto.answer` with its SDP).
    pub calls_answered: u64,
    /// Calls placed by the node that a browser declined (`verto.bye` before answering).
    pub calls_declined: u64,
    /// Answered calls kept after their socket went away without `verto.bye`.
    pub calls_detached: u64,
    /// Detached calls a browser took back (its `verto.attach` answering the node's).
    pub calls_reattached: u64,
    /// Detached calls ended because no socket came back within the detach timeout.
    pub calls_expired: u64,
    /// The last DTMF digits received with `verto.info` for a live call, oldest first
    /// (at most [`DTMF_DIGITS_KEPT`]).
    pub dtmf_digits: String,
}

/// How many characters [`SimStats::dtmf_digits`] keeps.
pub const DTMF_DIGITS_KEPT: usize = 64;

/// How many close codes [`SimStats::close_codes`] keeps.
pub const CLOSE_CODES_KEPT: usize = 64;

impl SimStats {
    pub(crate) fn record_dtmf(&mut self, digits: &str) {
        self.dtmf_digits.push_str(digits);
        let excess = self
            .dtmf_digits
            .chars()
            .count()
            .saturating_sub(DTMF_DIGITS_KEPT);
        if excess > 0 {
            self.dtmf_digits = self.dtmf_digits.chars().skip(excess).collect();
        }
    }

    pub(crate) fn record_close_code(&mut self, code: u16) {
        if self.close_codes.len() >= CLOSE_CODES_KEPT {
            self.close_codes.remove(0);
        }
        self.close_codes.push(code);
    }
}

/// The last received messages, bounded by count and total size.
#[derive(Debug, Default)]
pub(crate) struct ReceivedLog {
    messages: VecDeque<String>,
    bytes: usize,
}

impl ReceivedLog {
    /// Records a message, evicting the oldest ones beyond the bounds.
    pub(crate) fn push(&mut self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload).into_owned();
        self.bytes += text.len();
        self.messages.push_back(text);
        while self.messages.len() > RECEIVED_LOG_MESSAGES
            || (self.bytes > RECEIVED_LOG_BYTES && self.messages.len() > 1)
        {
            if let Some(old) = self.messages.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// A copy of the retained messages, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<String> {
        self.messages.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_digits_keep_the_newest_ones() {
        let mut stats = SimStats::default();
        stats.record_dtmf("1");
        stats.record_dtmf("23#");
        assert_eq!(stats.dtmf_digits, "123#");
        stats.record_dtmf(&"9".repeat(DTMF_DIGITS_KEPT));
        assert_eq!(stats.dtmf_digits, "9".repeat(DTMF_DIGITS_KEPT));
    }

    #[test]
    fn the_log_keeps_the_newest_messages_within_its_byte_budget() {
        let mut log = ReceivedLog::default();
        let big = vec![b'x'; RECEIVED_LOG_BYTES / 2];
        for _ in 0..3 {
            log.push(&big);
        }
        log.push(b"last");
        let kept = log.snapshot();
        assert_eq!(kept.last().map(String::as_str), Some("last"));
        assert!(kept.iter().map(String::len).sum::<usize>() <= RECEIVED_LOG_BYTES);
    }
}
