//! A fixed-size log-linear histogram of nanosecond durations (RTT, dwell time).
//!
//! Values below 2^`SUB_BITS` are stored exactly; above that, each power of two is
//! split into 2^`SUB_BITS` buckets, so any reported percentile is within 1/128
//! (< 0.8 %) of a recorded value. Recording is one index computation and one add, with
//! no allocation after construction.

use serde::{Deserialize, Serialize};

/// Bits of mantissa per power of two (public so kernel twins can bucket the same way).
pub const SUB_BITS: u32 = 7;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Number of buckets.
pub const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB_BUCKETS;

#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    min: u64,
    max: u64,
}

/// The usual summary of a histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Upper bounds (ns) of the buckets a [`Buckets`] report carries: 1-2.5-5 steps from
/// 250 ns to 1 s, wide enough for dwell times and round trips alike. Fixed, so every
/// report (and every Prometheus series) has the same `le` values.
pub const REPORT_BOUNDS_NS: [u64; 19] = [
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// A histogram reduced to cumulative counts at [`REPORT_BOUNDS_NS`], the shape of a
/// Prometheus histogram. A sample counts at the first bound at or above the low end of
/// its fine bucket: exact for values at a bound, and a value up to one fine bucket
/// (< 0.8 %) above a bound may count at it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Buckets {
    /// The upper bounds, ns ([`REPORT_BOUNDS_NS`]), so a reader needs no copy of them;
    /// empty when nothing was recorded.
    pub bounds_ns: Vec<u64>,
    /// Samples at or below each of `bounds_ns`, same order.
    pub le: Vec<u64>,
    /// All samples (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the samples in ns, each taken at the middle of its fine bucket
    /// (within 0.4 % of the true sum).
    pub sum_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Record `count` samples of the same value (every frame of a batch shares one
    /// receive and one transmit time).
    #[inline]
    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.counts[bucket_of(value)] += count;
        self.total += count;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The smallest recorded-bucket value at or below which `quantile` (0..=1) of the
    /// samples lie; exact at the extremes.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_low(index).clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.total == 0 {
            return Percentiles::default();
        }
        Percentiles {
            count: self.total,
            min: self.min,
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.max,
        }
    }

    /// Cumulative counts at [`REPORT_BOUNDS_NS`] (one pass over the fine buckets).
    pub fn buckets(&self) -> Buckets {
        if self.total == 0 {
            return Buckets::default();
        }
        let mut le = vec![0u64; REPORT_BOUNDS_NS.len()];
        let mut sum: u128 = 0;
        let mut bound = 0;
        for (index, &count) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let low = bucket_low(index);
            let high = bucket_high(index);
            sum += u128::from(count) * u128::from(low + (high - low) / 2);
            // Bucket lows grow with the index, so the first bound at or above this
            // one's only moves forward.
            while bound < le.len() && REPORT_BOUNDS_NS[bound] < low {
                bound += 1;
            }
            if let Some(slot) = le.get_mut(bound) {
                *slot += count;
            }
        }
        for i in 1..le.len() {
            le[i] += le[i - 1];
        }
        Buckets {
            bounds_ns: REPORT_BOUNDS_NS.to_vec(),
            le,
            count: self.total,
            sum_ns: u64::try_from(sum).unwrap_or(u64::MAX),
        }
    }

    /// Add `count` samples to bucket `index`, as computed by a twin of the bucketing
    /// elsewhere (the probe's XDP program fills a per-CPU array of these buckets).
    pub fn record_bucket(&mut self, index: usize, count: u64) {
        if index < BUCKETS {
            self.record_n(bucket_low(index), count);
        }
    }

    /// Add another histogram's samples (e.g. merging per-worker histograms).
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

#[inline(always)]
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros() - SUB_BITS; // >= 0
    let mantissa = (value >> exponent) as usize & (SUB_BUCKETS - 1);
    (exponent as usize + 1) * SUB_BUCKETS + mantissa
}

fn bucket_low(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let exponent = (index / SUB_BUCKETS - 1) as u32;
    let mantissa = (index % SUB_BUCKETS) as u64;
    (SUB_BUCKETS as u64 + mantissa) << exponent
}

/// The highest value bucket `index` holds.
fn bucket_high(index: usize) -> u64 {
    if index + 1 < BUCKETS {
        bucket_low(index + 1) - 1
    } else {
        u64::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_buckets_are_cumulative_at_fixed_bounds() {
        assert_eq!(Histogram::default().buckets(), Buckets::default());
        let mut h = Histogram::default();
        // Fine buckets are exact below 256 ns.
        h.record_n(100, 3);
        h.record(240);
        h.record(1_000);
        h.record_n(30_000, 2);
        h.record(2_000_000_000);
        let b = h.buckets();
        assert_eq!(b.count, 8);
        assert_eq!(b.bounds_ns, REPORT_BOUNDS_NS);
        assert_eq!(b.le.len(), REPORT_BOUNDS_NS.len());
        let at = |bound: u64| b.le[REPORT_BOUNDS_NS.iter().position(|&x| x == bound).unwrap()];
        assert_eq!((at(250), at(500)), (4, 4));
        // A value at a bound counts there.
        assert_eq!((at(1_000), at(2_500)), (5, 5));
        assert_eq!((at(25_000), at(50_000)), (5, 7));
        assert_eq!(at(1_000_000_000), 7, "2 s is only in +Inf");
        let exact = 300 + 240 + 1_000 + 60_000 + 2_000_000_000u64;
        let error = b.sum_ns.abs_diff(exact) as f64 / exact as f64;
        assert!(error < 0.004, "{} vs {exact}", b.sum_ns);
    }

    #[test]
    fn a_bucket_index_records_its_lowest_value() {
        for value in [0, 127, 128, 1000, 19_000, 475_000, u64::MAX / 3] {
            let mut by_index = Histogram::default();
            by_index.record_bucket(bucket_of(value), 1);
            let mut by_value = Histogram::default();
            by_value.record(value);
            assert_eq!(by_index.quantile(0.5), bucket_low(bucket_of(value)));
            assert_eq!(by_index.counts, by_value.counts);
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 0..100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 49);
        assert_eq!(h.percentiles().min, 0);
        assert_eq!(h.percentiles().max, 99);
    }

    #[test]
    fn large_values_within_one_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, exact) in [
            (0.5, 50_000_000u64),
            (0.99, 99_000_000),
            (0.999, 99_900_000),
        ] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - exact as f64).abs() / exact as f64 <= 0.01,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.percentiles().max, 100_000_000);
    }

    #[test]
    fn bucket_bounds_are_monotonic_and_cover_u64() {
        let mut previous = 0;
        for index in 1..BUCKETS {
            assert!(bucket_low(index) > previous, "bucket {index}");
            previous = bucket_low(index);
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
        for v in [127u64, 128, 129, 255, 256, 1 << 40, u64::MAX] {
            assert!(bucket_low(bucket_of(v)) <= v);
        }
    }

    #[test]
    fn record_n_counts_every_sample() {
        let mut h = Histogram::default();
        h.record_n(5, 0);
        assert_eq!(h.count(), 0);
        h.record_n(1000, 9);
        h.record(1);
        assert_eq!(h.count(), 10);
        assert_eq!(h.quantile(0.5), 1000);
        assert_eq!(h.percentiles().min, 1);
    }

    #[test]
    fn merge_adds_samples() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.record(10);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.percentiles().max, 1_000_000);
        assert_eq!(a.percentiles().min, 10);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        assert_eq!(Histogram::default().percentiles(), Percentiles::default());
    }
}
