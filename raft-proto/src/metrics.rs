//! Metric primitives shared by every actor that reports to `/metrics`, so the consensus
//! actor, the storage actor and any swapped-in replacement measure latency the same way.
//!
//! A metric is written by one actor and read by the node (for `/metrics`) from any thread,
//! without a message: relaxed atomics, each value exact, a snapshot possibly mixing two
//! consecutive updates (fine for monitoring, never used for correctness).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in microseconds (the last bucket, `+Inf`,
/// is implicit). From 100 µs (page-cache write) to 1 s (a badly stalled fsync).
pub const LATENCY_BUCKET_BOUNDS_MICROSECONDS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A latency histogram with fixed buckets ([`LATENCY_BUCKET_BOUNDS_MICROSECONDS`]).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKET_BOUNDS_MICROSECONDS.len() + 1],
    sum_microseconds: AtomicU64,
    count: AtomicU64,
}

/// A copy of a histogram in the shape Prometheus wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// `(upper bound in microseconds, cumulative count)` for each finite bucket; the `+Inf`
    /// bucket's cumulative count is `count`.
    pub cumulative_buckets: Vec<(u64, u64)>,
    /// The sum of every observed latency, in microseconds.
    pub sum_microseconds: u64,
    /// The number of observations.
    pub count: u64,
}

impl LatencyHistogram {
    /// Records one latency, rounded down to whole microseconds.
    pub fn observe(&self, latency: Duration) {
        let microseconds = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKET_BOUNDS_MICROSECONDS
            .iter()
            .position(|bound| microseconds <= *bound)
            .unwrap_or(LATENCY_BUCKET_BOUNDS_MICROSECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_microseconds
            .fetch_add(microseconds, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counters out, buckets made cumulative.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let cumulative_buckets = LATENCY_BUCKET_BOUNDS_MICROSECONDS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, bucket)| {
                cumulative += bucket.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            cumulative_buckets,
            sum_microseconds: self.sum_microseconds.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}
