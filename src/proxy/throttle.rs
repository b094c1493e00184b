//! Log lines about refusals and violations, at most one a second per cause, each with
//! how many it stands for: a flood of hostile connections must not become a flood of
//! log lines (nor of disk writes).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a [`Throttle`] lets a line through.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

/// One cause's counter.
#[derive(Debug, Default)]
pub struct Throttle {
    since_last: u64,
    last: Option<Instant>,
}

impl Throttle {
    /// Counts one event; `Some(count)` when a line is due, for `count` events.
    pub fn note(&mut self) -> Option<u64> {
        self.note_at(Instant::now())
    }

    fn note_at(&mut self, now: Instant) -> Option<u64> {
        self.since_last += 1;
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

/// Counters for any number of causes, shared by every shard.
#[derive(Debug, Default)]
pub struct Throttles {
    causes: Mutex<HashMap<&'static str, Throttle>>,
}

impl Throttles {
    /// Counts one event of `cause`; `Some(count)` when a line is due.
    pub fn note(&self, cause: &'static str) -> Option<u64> {
        let mut causes = self.causes.lock().unwrap_or_else(PoisonError::into_inner);
        causes.entry(cause).or_default().note()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_carries_the_count_of_what_it_stands_for() {
        let (mut t, t0) = (Throttle::default(), Instant::now());
        assert_eq!(t.note_at(t0), Some(1));
        for i in 1..100 {
            assert_eq!(t.note_at(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(t.note_at(t0 + LOG_EVERY), Some(100));
    }

    #[test]
    fn causes_are_counted_apart() {
        let t = Throttles::default();
        assert_eq!(t.note("a"), Some(1));
        assert_eq!(t.note("b"), Some(1));
        assert_eq!(t.note("a"), None);
    }
}
