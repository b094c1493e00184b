//! `vertogw_probe_seconds{node,result}`: how long each probe took, kept across scrapes.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// Bucket bounds, seconds: a healthy probe on a LAN takes a few ms, a probe that times
/// out takes `timeout_ms` (1 s by default, at most 5 s is useful to tell apart).
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The labels of one series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// The node probed.
    pub node: String,
    /// `ok` or `error`.
    pub result: &'static str,
}

type Histograms = Family<ProbeLabels, Histogram, fn() -> Histogram>;

/// The probe durations, by node and result.
#[derive(Debug, Clone)]
pub struct ProbeSeconds(Histograms);

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for ProbeSeconds {
    fn default() -> ProbeSeconds {
        ProbeSeconds(Family::new_with_constructor(histogram as fn() -> Histogram))
    }
}

impl ProbeSeconds {
    /// Records one probe of `node`.
    pub fn observe(&self, node: &str, ok: bool, took: Duration) {
        let labels = ProbeLabels {
            node: node.to_owned(),
            result: if ok { "ok" } else { "error" },
        };
        self.0.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// The family, to register with a scrape's registry (shared, not copied).
    pub fn family(&self) -> Histograms {
        self.0.clone()
    }
}
