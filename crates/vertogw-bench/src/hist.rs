//! Latency recording: HDR histograms in microseconds, sharded so thousands of session
//! tasks record without contending on one lock, merged into one summary at the end.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded exactly (60 s); larger samples are clamped to it.
pub const MAX_RECORDED_US: u64 = 60_000_000;

/// Significant decimal digits the histograms keep (0.1 % resolution).
const SIGNIFICANT_DIGITS: u8 = 3;

/// Shards per recorder: enough that two sessions rarely share a lock at once.
const SHARDS: usize = 16;

/// A new empty histogram with the bench's bounds.
pub fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: creation cannot fail.
    Histogram::new_with_bounds(1, MAX_RECORDED_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A sharded latency recorder shared by many session tasks.
pub struct Recorder {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            shards: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    /// Records one latency; `session` picks the shard.
    pub fn record(&self, session: usize, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut shard = self.shards[session % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shard.saturating_record(us.clamp(1, MAX_RECORDED_US));
    }

    /// All shards merged into one histogram.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            merge(&mut all, &shard);
        }
        all
    }
}

/// Adds `from` into `into` (samples beyond the bounds are clamped, never lost).
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            let value = v.value_iterated_to().clamp(1, MAX_RECORDED_US);
            into.saturating_record_n(value, v.count_at_value());
        }
    }
}

/// Round-trip percentiles in microseconds (`rtt_us`, `background_rtt_us`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RttSummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl RttSummary {
    /// The summary of `h`, or `None` when it holds no sample.
    pub fn of(h: &Histogram<u64>) -> Option<RttSummary> {
        if h.is_empty() {
            return None;
        }
        Some(RttSummary {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Login latency percentiles in milliseconds (`login_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoginSummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest login.
    pub max: f64,
}

impl LoginSummary {
    /// The summary of a microsecond histogram, in ms, or `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<LoginSummary> {
        let ms = |us: u64| us as f64 / 1000.0;
        (!h.is_empty()).then(|| LoginSummary {
            p50: ms(h.value_at_quantile(0.50)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_into_one_distribution() {
        let rec = Recorder::new();
        for i in 1..=1000u64 {
            rec.record(i as usize, Duration::from_micros(i));
        }
        let s = RttSummary::of(&rec.merged()).unwrap();
        assert_eq!(s.count, 1000);
        assert!((499..=501).contains(&s.p50), "{s:?}");
        assert!((899..=901).contains(&s.p90), "{s:?}");
        assert!((989..=991).contains(&s.p99), "{s:?}");
        assert!((998..=1000).contains(&s.p999), "{s:?}");
        assert_eq!(s.max, 1000);
    }

    #[test]
    fn an_empty_histogram_has_no_summary() {
        assert!(RttSummary::of(&Recorder::new().merged()).is_none());
        assert!(LoginSummary::of(&histogram()).is_none());
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        let rec = Recorder::new();
        rec.record(0, Duration::from_secs(3600));
        rec.record(0, Duration::ZERO);
        let h = rec.merged();
        assert_eq!(h.len(), 2);
        assert!(h.max() >= MAX_RECORDED_US - MAX_RECORDED_US / 1000);
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn login_summary_is_in_milliseconds() {
        let mut h = histogram();
        h.saturating_record(1500);
        h.saturating_record(2500);
        let s = LoginSummary::of(&h).unwrap();
        assert!((s.max - 2.5).abs() < 0.01, "{s:?}");
        assert!((s.p50 - 1.5).abs() < 0.01, "{s:?}");
    }
}
