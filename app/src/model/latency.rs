//! Latency buckets: integer bounds growing by 15 %, so a percentile read from a histogram is
//! within 15 % of the exact value. Pure functions, integers only.

use std::sync::LazyLock;

/// Upper bounds (inclusive, ms) of the buckets, up to beyond a week.
static BOUNDS: LazyLock<Vec<i64>> = LazyLock::new(|| {
    let mut b = vec![0i64, 1];
    while *b.last().unwrap_or(&0) < 7 * 24 * 3_600_000 {
        let last = *b.last().unwrap_or(&1);
        b.push((last * 115 / 100).max(last + 1));
    }
    b
});

/// How many buckets there are (the last one holds everything beyond a week).
pub fn latency_bucket_count() -> usize {
    BOUNDS.len() + 1
}

/// The bucket of a latency in ms.
pub fn latency_bucket(ms: i64) -> i64 {
    BOUNDS.partition_point(|&upper| upper < ms.max(0)) as i64
}

/// The largest latency (ms) in bucket `b`.
pub fn latency_bucket_upper(b: i64) -> i64 {
    BOUNDS.get(b.max(0) as usize).copied().unwrap_or(i64::MAX)
}

/// The `per_mille`-th percentile (500 = median) of a histogram of `(bucket, count)` pairs, as the
/// upper bound of the bucket where it falls; `None` when empty.
pub fn percentile(hist: &[(i64, i64)], per_mille: i64) -> Option<i64> {
    let total: i64 = hist.iter().map(|(_, n)| n).sum();
    if total <= 0 {
        return None;
    }
    let mut sorted = hist.to_vec();
    sorted.sort_unstable();
    // The smallest bucket whose cumulative count reaches ceil(total × p).
    let rank = ((total * per_mille + 999) / 1000).max(1);
    let mut seen = 0;
    for (b, n) in sorted {
        seen += n;
        if seen >= rank {
            return Some(latency_bucket_upper(b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_latencies_within_15_percent() {
        for ms in [0, 1, 2, 7, 99, 100, 101, 1_234, 59_999, 3_600_000] {
            let upper = latency_bucket_upper(latency_bucket(ms));
            assert!(upper >= ms, "{ms} ≤ {upper}");
            assert!(upper <= ms * 115 / 100 + 1, "{ms}: {upper} within 15 %");
        }
    }

    #[test]
    fn percentiles_from_a_histogram() {
        // 90 calls at 100 ms, 10 at 2000 ms: p50 ≈ 100, p95 ≈ 2000.
        let h = [(latency_bucket(100), 90), (latency_bucket(2_000), 10)];
        assert_eq!(percentile(&h, 500), Some(latency_bucket_upper(latency_bucket(100))));
        assert_eq!(percentile(&h, 950), Some(latency_bucket_upper(latency_bucket(2_000))));
        assert_eq!(percentile(&h, 900), Some(latency_bucket_upper(latency_bucket(100))));
        assert_eq!(percentile(&[], 500), None);
    }
}
