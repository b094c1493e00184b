//! The relay's clock: when to ping an idle browser, when its silence means it is gone,
//! and when a direction has been unable to write for too long. Pure bookkeeping over
//! instants, so the relay needs one timer per session and the rules are unit-tested.

use std::time::Duration;

use tokio::time::Instant;

/// One direction of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Browser → node.
    Up,
    /// Node (or the gateway itself) → browser.
    Down,
}

/// What the clock says must happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// The browser has been silent for `browser_ping`: ping it.
    Ping,
    /// The ping went unanswered for another `browser_ping`: the browser is gone.
    PongMissing,
    /// A message could not be written for `stall_timeout`: that peer does not read.
    Stalled(Direction),
}

/// The deadlines of one session.
#[derive(Debug, Clone)]
pub struct Watchdog {
    ping_every: Duration,
    stall: Duration,
    last_heard: Instant,
    pinged_at: Option<Instant>,
    blocked_since: [Option<Instant>; 2],
}

fn index(direction: Direction) -> usize {
    match direction {
        Direction::Up => 0,
        Direction::Down => 1,
    }
}

impl Watchdog {
    /// A session that has just heard from its browser.
    pub fn new(ping_every: Duration, stall: Duration, now: Instant) -> Watchdog {
        Watchdog {
            ping_every,
            stall,
            last_heard: now,
            pinged_at: None,
            blocked_since: [None, None],
        }
    }

    /// The browser sent something (a pong included): it is alive.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged_at = None;
    }

    /// A ping went out.
    pub fn pinged(&mut self, now: Instant) {
        self.pinged_at = Some(now);
    }

    /// Whether `direction` holds a message it could not write yet; the clock starts at
    /// the first such report and stops when the direction is clear again.
    pub fn blocked(&mut self, direction: Direction, blocked: bool, now: Instant) {
        let since = &mut self.blocked_since[index(direction)];
        match (blocked, *since) {
            (true, None) => *since = Some(now),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    /// Whether `direction`'s stall clock is running.
    pub fn is_blocked(&self, direction: Direction) -> bool {
        self.blocked_since[index(direction)].is_some()
    }

    /// The earliest instant something may be due.
    pub fn next_deadline(&self) -> Instant {
        let liveness = match self.pinged_at {
            Some(at) => at + self.ping_every,
            None => self.last_heard + self.ping_every,
        };
        self.blocked_since
            .iter()
            .flatten()
            .map(|since| *since + self.stall)
            .fold(liveness, Instant::min)
    }

    /// What is due at `now`, the gravest first.
    pub fn check(&self, now: Instant) -> Option<Alarm> {
        for direction in [Direction::Down, Direction::Up] {
            if self.blocked_since[index(direction)].is_some_and(|since| now >= since + self.stall) {
                return Some(Alarm::Stalled(direction));
            }
        }
        match self.pinged_at {
            Some(at) if now >= at + self.ping_every => Some(Alarm::PongMissing),
            Some(_) => None,
            None if now >= self.last_heard + self.ping_every => Some(Alarm::Ping),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: Duration = Duration::from_secs(30);
    const STALL: Duration = Duration::from_secs(10);

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn an_idle_browser_is_pinged_then_given_up_on() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(PING, STALL, t0);
        assert_eq!(w.check(at(t0, 29)), None);
        assert_eq!(w.next_deadline(), at(t0, 30));
        assert_eq!(w.check(at(t0, 30)), Some(Alarm::Ping));
        w.pinged(at(t0, 30));
        assert_eq!(w.check(at(t0, 59)), None);
        assert_eq!(w.next_deadline(), at(t0, 60));
        assert_eq!(w.check(at(t0, 60)), Some(Alarm::PongMissing));
    }

    #[test]
    fn anything_heard_answers_the_ping_and_restarts_the_idle_clock() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(PING, STALL, t0);
        w.pinged(at(t0, 30));
        w.heard(at(t0, 31));
        assert_eq!(w.check(at(t0, 60)), None);
        assert_eq!(w.next_deadline(), at(t0, 61));
    }

    #[test]
    fn a_direction_blocked_for_the_stall_timeout_is_reported_and_clearing_resets_it() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(PING, STALL, t0);
        w.blocked(Direction::Down, true, at(t0, 1));
        w.blocked(Direction::Down, true, at(t0, 5));
        assert_eq!(w.next_deadline(), at(t0, 11));
        assert_eq!(w.check(at(t0, 10)), None);
        assert_eq!(w.check(at(t0, 11)), Some(Alarm::Stalled(Direction::Down)));
        assert!(w.is_blocked(Direction::Down) && !w.is_blocked(Direction::Up));
        w.blocked(Direction::Down, false, at(t0, 11));
        assert!(!w.is_blocked(Direction::Down));
        w.blocked(Direction::Up, true, at(t0, 12));
        assert_eq!(w.check(at(t0, 21)), None);
        assert_eq!(w.check(at(t0, 22)), Some(Alarm::Stalled(Direction::Up)));
    }
}
