//! An hour's rows stored column by column. A scan reads only the columns its view needs: the
//! Users ranking by spend reads 16 bytes a row (user, calls, spend) instead of the whole 68, and
//! finding a page's users reads the 4-byte user column alone. `Row` stays the unit rows are
//! built, merged and saved in (64-bit sums); `get` puts one together again.
//!
//! Token and latency sums are stored in 32 bits: a row whose sums pass 2^32 - 1 is stored as
//! several rows with the same key, the first with its calls and spend, the others with calls 0
//! and the rest of the sums. Every reader sums rows of one key, so the totals stay exact.

use super::Row;

/// The columns scans seldom need, together (40 bytes a row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rest {
    pub errors: u32,
    pub unpriced: u32,
    pub firsts: [i32; 3],
    pub input: u32,
    pub output: u32,
    pub cache_read: u32,
    pub cache_creation: u32,
    pub latency: u32,
}

impl Rest {
    /// The four token buckets together.
    #[inline]
    pub fn tokens(&self) -> u64 {
        u64::from(self.input)
            + u64::from(self.output)
            + u64::from(self.cache_read)
            + u64::from(self.cache_creation)
    }
}

/// Rows, column by column (every column has one entry per row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub tag_set: Vec<u32>,
    pub user: Vec<u32>,
    pub combo: Vec<u32>,
    pub calls: Vec<u32>,
    pub last_ms: Vec<u32>,
    pub cost: Vec<i64>,
    pub rest: Vec<Rest>,
}

impl Rows {
    pub fn with_capacity(n: usize) -> Rows {
        Rows {
            tag_set: Vec::with_capacity(n),
            user: Vec::with_capacity(n),
            combo: Vec::with_capacity(n),
            calls: Vec::with_capacity(n),
            last_ms: Vec::with_capacity(n),
            cost: Vec::with_capacity(n),
            rest: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.tag_set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tag_set.is_empty()
    }

    /// Appends a row: several when a sum doesn't fit in 32 bits (see the module's note).
    pub fn push(&mut self, mut r: Row) {
        loop {
            let take = |left: &mut u64| {
                let part = (*left).min(u64::from(u32::MAX));
                *left -= part;
                part as u32
            };
            let rest = Rest {
                errors: r.errors,
                unpriced: r.unpriced,
                firsts: r.firsts,
                input: take(&mut r.input),
                output: take(&mut r.output),
                cache_read: take(&mut r.cache_read),
                cache_creation: take(&mut r.cache_creation),
                latency: take(&mut r.latency),
            };
            self.tag_set.push(r.tag_set);
            self.user.push(r.user);
            self.combo.push(r.combo);
            self.calls.push(r.calls);
            self.last_ms.push(r.last_ms);
            self.cost.push(r.cost);
            self.rest.push(rest);
            if r.input == 0 && r.output == 0 && r.cache_read == 0 && r.cache_creation == 0 && r.latency == 0 {
                return;
            }
            // What is left goes into a row of the same key that adds no calls, flags or spend.
            r = Row { calls: 0, errors: 0, unpriced: 0, firsts: [0; 3], cost: 0, ..r };
        }
    }

    /// Row `i`, whole. (Inlined into a scan, the columns the scan leaves unused are not read.)
    #[inline]
    pub fn get(&self, i: usize) -> Row {
        let x = &self.rest[i];
        Row {
            tag_set: self.tag_set[i],
            user: self.user[i],
            combo: self.combo[i],
            calls: self.calls[i],
            errors: x.errors,
            unpriced: x.unpriced,
            last_ms: self.last_ms[i],
            firsts: x.firsts,
            input: x.input.into(),
            output: x.output.into(),
            cache_read: x.cache_read.into(),
            cache_creation: x.cache_creation.into(),
            cost: self.cost[i],
            latency: x.latency.into(),
        }
    }

    /// Row `i`'s place in the order (`Row::order`).
    #[inline]
    pub fn order(&self, i: usize) -> (u32, u32, u32) {
        (self.user[i], self.tag_set[i], self.combo[i])
    }

    /// The rows of (user, tag set) among the first `sorted` rows, which are in order.
    pub fn run_of(&self, sorted: usize, user: u32, tag_set: u32) -> std::ops::Range<usize> {
        let first = |want: (u32, u32)| {
            let (mut lo, mut hi) = (0, sorted);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if (self.user[mid], self.tag_set[mid]) < want {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        };
        let from = first((user, tag_set));
        let to = match tag_set.checked_add(1) {
            Some(next) => first((user, next)),
            None => match user.checked_add(1) {
                Some(u) => first((u, 0)),
                None => sorted,
            },
        };
        from..to.max(from)
    }

    pub fn iter(&self) -> impl Iterator<Item = Row> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Keeps the rows whose tag set `keep` accepts, in order.
    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        let mask: Vec<bool> = self.tag_set.iter().map(|t| keep(*t)).collect();
        fn by<T>(column: &mut Vec<T>, mask: &[bool]) {
            let mut i = 0;
            column.retain(|_| {
                i += 1;
                mask[i - 1]
            });
        }
        by(&mut self.tag_set, &mask);
        by(&mut self.user, &mask);
        by(&mut self.combo, &mask);
        by(&mut self.calls, &mask);
        by(&mut self.last_ms, &mask);
        by(&mut self.cost, &mask);
        by(&mut self.rest, &mask);
        self.shrink_to_fit();
    }

    pub fn shrink_to_fit(&mut self) {
        self.tag_set.shrink_to_fit();
        self.user.shrink_to_fit();
        self.combo.shrink_to_fit();
        self.calls.shrink_to_fit();
        self.last_ms.shrink_to_fit();
        self.cost.shrink_to_fit();
        self.rest.shrink_to_fit();
    }
}

impl FromIterator<Row> for Rows {
    fn from_iter<I: IntoIterator<Item = Row>>(iter: I) -> Rows {
        let iter = iter.into_iter();
        let mut rows = Rows::with_capacity(iter.size_hint().0);
        for r in iter {
            rows.push(r);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_comes_back_whole_and_retain_keeps_order() {
        let row = |tag_set: u32, k: u64| Row {
            tag_set,
            user: tag_set + 100,
            combo: 3,
            calls: k as u32,
            errors: 1,
            unpriced: 2,
            last_ms: 77,
            firsts: [1, -1, 2],
            input: k,
            output: k + 1,
            cache_read: k + 2,
            cache_creation: k + 3,
            cost: -(k as i64),
            latency: k * 9,
        };
        let all: Vec<Row> = (0..5).map(|i| row(i % 3, u64::from(i) + 10)).collect();
        let mut rows: Rows = all.iter().copied().collect();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows.iter().collect::<Vec<_>>(), all);
        rows.retain(|ts| ts != 1);
        let kept: Vec<Row> = all.iter().copied().filter(|r| r.tag_set != 1).collect();
        assert_eq!(rows.iter().collect::<Vec<_>>(), kept);
        assert_eq!(rows.rest.len(), kept.len());
    }

    #[test]
    fn sums_past_32_bits_take_more_rows_and_add_up_exactly() {
        let big = Row {
            tag_set: 4,
            user: 9,
            combo: 2,
            calls: 3,
            errors: 1,
            unpriced: 1,
            last_ms: 500,
            firsts: [1, 0, 1],
            input: 3 * u64::from(u32::MAX) + 7,
            output: 12,
            cache_read: u64::from(u32::MAX),
            cache_creation: u64::from(u32::MAX) + 1,
            cost: 1_000_000_000_000,
            latency: 10,
        };
        let mut rows = Rows::default();
        rows.push(big);
        assert_eq!(rows.len(), 4, "input needs four 32-bit parts");
        let mut sum = Row { tag_set: 4, user: 9, combo: 2, last_ms: 0, ..Row::default() };
        for r in rows.iter() {
            assert_eq!(r.order(), big.order());
            sum.merge(&r);
        }
        assert_eq!(sum, big);
        assert_eq!(rows.calls.iter().filter(|c| **c > 0).count(), 1, "calls are counted once");
        assert_eq!(
            rows.rest.iter().map(Rest::tokens).sum::<u64>(),
            big.input + 12 + big.cache_read + big.cache_creation
        );
    }
}
