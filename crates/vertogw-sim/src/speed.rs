//! The `#SP…` bandwidth test that mod_verto runs on raw (non-JSON) text frames.
//!
//! Client: `#SPU <bytes>`, a series of `#SPB <payload>`, then `#SPE`. Server: `#SPU <ms>`
//! (upload time), the volume back as 1024-byte `#SPB....` frames, then `#SPD <ms>`.
//! The real node sends the volume back ten times; the simulator sends it once
//! ([`ECHO_REPEATS`]) to keep tests cheap, and its `#SPD` time is the time to queue the
//! frames, not to write them.

use tokio::time::Instant;

/// The largest volume honoured (HEAD caps the test at 10 MiB).
pub const MAX_SPEED_TEST_BYTES: usize = 10 * 1024 * 1024;

/// How many times the volume is sent back (the real node: 10).
pub const ECHO_REPEATS: usize = 1;

const BLOCK: usize = 1024;

/// A test in progress: announced volume and start time.
#[derive(Debug)]
pub(crate) struct SpeedTest {
    bytes: usize,
    started: Instant,
}

/// Feeds one `#` frame (at least 4 bytes, socket authenticated); returns the frames to
/// send.
pub(crate) fn on_frame(state: &mut Option<SpeedTest>, frame: &[u8], now: Instant) -> Vec<String> {
    if frame.starts_with(b"#SPU") {
        let bytes = leading_number(&frame[4..]).min(MAX_SPEED_TEST_BYTES);
        *state = (bytes > 0).then_some(SpeedTest {
            bytes,
            started: now,
        });
        return Vec::new();
    }
    let Some(test) = state.take() else {
        return Vec::new();
    };
    if frame[3] == b'B' {
        *state = Some(test);
        return Vec::new();
    }
    let upload_ms = now.duration_since(test.started).as_millis();
    let mut out = vec![format!("#SPU {upload_ms}")];
    let block = format!("#SPB{}", ".".repeat(BLOCK - 4));
    for _ in 0..ECHO_REPEATS {
        out.extend(std::iter::repeat_n(block.clone(), test.bytes / BLOCK));
        let rem = test.bytes % BLOCK;
        if rem > 0 {
            out.push(block[..rem].to_owned());
        }
    }
    let download_ms = Instant::now().duration_since(now).as_millis();
    out.push(format!("#SPD {download_ms}"));
    out
}

/// `atoi`: leading spaces, then digits; anything else stops it.
fn leading_number(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |n, d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_echoes_the_announced_volume_between_spu_and_spd() {
        let now = Instant::now();
        let mut state = None;
        assert!(on_frame(&mut state, b"#SPU 2500", now).is_empty());
        assert!(on_frame(&mut state, b"#SPB xxxxxxxx", now).is_empty());
        let out = on_frame(&mut state, b"#SPE", now);
        assert!(out[0].starts_with("#SPU "));
        assert!(out.last().is_some_and(|l| l.starts_with("#SPD ")));
        let volume: usize = out[1..out.len() - 1].iter().map(String::len).sum();
        assert_eq!(volume, 2500 * ECHO_REPEATS);
        assert!(state.is_none());
    }

    #[test]
    fn frames_without_an_announced_test_are_ignored() {
        let mut state = None;
        assert!(on_frame(&mut state, b"#SPE", Instant::now()).is_empty());
        assert!(on_frame(&mut state, b"#SPU 0", Instant::now()).is_empty());
        assert!(state.is_none());
    }
}
