//! Which stored calls may hold a client's event id, answered from memory (see migration 10):
//! a keyed 32-bit hash of (project, id) per call, packed with the call's rowid. Pure data; the
//! store reads `event_keys` into it and confirms every candidate by reading the call.

use std::collections::BTreeSet;

/// Calls whose rowid passes this can't be packed; the store refuses to grow past it.
pub const MAX_ROWID: i64 = u32::MAX as i64;

/// The hash of an event id within a project, keyed with the installation's secret.
pub fn key_hash(secret: &[u8; 16], project_id: i64, id: &str) -> u32 {
    use std::hash::Hasher;
    let (k0, k1) = secret.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
    // SipHash-2-4 as the standard library has always computed it: the value is stored in the
    // file, so it must not change between builds (unlike `DefaultHasher`).
    #[expect(deprecated, reason = "std's SipHasher is the one stable keyed hash in std")]
    let mut h = std::hash::SipHasher::new_with_keys(word(k0), word(k1));
    h.write(&project_id.to_le_bytes());
    h.write(id.as_bytes());
    h.finish() as u32
}

/// (hash, rowid) pairs, each packed as `hash << 32 | rowid`: sorted in `base`, and the latest
/// in `recent` until there are enough of them to merge (a merge copies `base`, so it waits for
/// 1/16 of its size). 8 bytes per call.
#[derive(Default)]
pub struct EventKeys {
    base: Vec<u64>,
    /// Where each of the `2^DIR_BITS` ranges of hashes (by their top bits) starts in `base`:
    /// a lookup searches ~n/2^16 keys (a few cache lines), not all of `base` (13M keys, 100 MB,
    /// a cache miss per step).
    dir: Vec<u32>,
    recent: BTreeSet<u64>,
    /// Rowids of deleted calls still in `base`: a removal rewrites `base` (100 MB at 13M calls)
    /// only once these reach 1/16 of it, so a run of user deletions doesn't copy it each time.
    dead: std::collections::HashSet<u32>,
    /// The highest `event_keys` rowid read into memory (rows past it were written by another
    /// process, and are read before the next write).
    pub loaded_to: i64,
}

fn pack(h: u32, rowid: i64) -> u64 {
    (u64::from(h) << 32) | (rowid as u64 & 0xffff_ffff)
}

const DIR_BITS: u32 = 16;

/// `dir` of a sorted `base`: entry `b` is the index of its first key whose top bits are ≥ `b`.
fn directory(base: &[u64]) -> Vec<u32> {
    let mut dir = Vec::with_capacity((1 << DIR_BITS) + 1);
    let mut i = 0;
    for b in 0..=(1u64 << DIR_BITS) {
        while i < base.len() && base[i] >> (64 - DIR_BITS) < b {
            i += 1;
        }
        dir.push(i as u32);
    }
    dir
}

/// The directory entry of hash `h`.
fn bucket(h: u32) -> usize {
    (h >> (32 - DIR_BITS)) as usize
}

impl EventKeys {
    /// From packed pairs (`hash << 32 | rowid`) in any order.
    pub fn from_packed(mut base: Vec<u64>) -> EventKeys {
        base.sort_unstable();
        let loaded_to = base.iter().map(|k| (k & 0xffff_ffff) as i64).max().unwrap_or(0);
        let dir = directory(&base);
        EventKeys { base, dir, recent: BTreeSet::new(), dead: Default::default(), loaded_to }
    }

    pub fn len(&self) -> usize {
        self.base.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rowids stored with hash `h` (calls whose id may be the one hashed).
    pub fn candidates(&self, h: u32) -> Vec<i64> {
        let (lo, hi) = (pack(h, 0), pack(h, MAX_ROWID));
        let range = match (self.dir.get(bucket(h)), self.dir.get(bucket(h) + 1)) {
            (Some(from), Some(to)) => &self.base[*from as usize..*to as usize],
            _ => &self.base[..],
        };
        let start = range.partition_point(|k| *k < lo);
        range[start..]
            .iter()
            .take_while(|k| **k <= hi)
            .chain(self.recent.range(lo..=hi))
            .map(|k| (k & 0xffff_ffff) as u32)
            .filter(|r| !self.dead.contains(r))
            .map(i64::from)
            .collect()
    }

    pub fn insert(&mut self, h: u32, rowid: i64) {
        self.recent.insert(pack(h, rowid));
        self.loaded_to = self.loaded_to.max(rowid);
        if self.recent.len() > 4_096.max(self.base.len() / 16) {
            self.merge();
        }
    }

    fn merge(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        let mut merged = Vec::with_capacity(self.base.len() + recent.len());
        let mut old = std::mem::take(&mut self.base).into_iter().peekable();
        for k in recent {
            while let Some(o) = old.next_if(|o| *o < k) {
                merged.push(o);
            }
            merged.push(k);
        }
        merged.extend(old);
        merged.dedup();
        self.dir = directory(&merged);
        self.base = merged;
    }

    /// Forgets the calls with these rowids (deleted).
    pub fn remove_rowids(&mut self, rowids: &[i64]) {
        if rowids.is_empty() {
            return;
        }
        // `recent` too is left as it is (up to 1/16 of `base`): `candidates` skips the dead.
        self.dead.extend(rowids.iter().filter_map(|r| u32::try_from(*r).ok()));
        if self.dead.len() * 16 < self.base.len() {
            return;
        }
        let dead = std::mem::take(&mut self.dead);
        let kept = |k: &u64| !dead.contains(&((k & 0xffff_ffff) as u32));
        self.recent.retain(kept);
        self.base.retain(kept);
        self.base.shrink_to_fit();
        self.dir = directory(&self.base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_rowid_of_a_hash_across_merges_and_removals() {
        let mut keys = EventKeys::from_packed(vec![pack(7, 5), pack(7, 1), pack(9, 2)]);
        assert_eq!(keys.candidates(7), vec![1, 5]);
        for rowid in 6..20_000 {
            keys.insert((rowid % 3) as u32 + 7, rowid);
        }
        // Merged at least once on the way (recent holds at most 4,096).
        assert!(keys.recent.len() <= 4_096, "{}", keys.recent.len());
        let sevens = keys.candidates(7);
        assert_eq!(sevens.len(), 2 + (6..20_000).filter(|r| r % 3 == 0).count());
        assert!(sevens.contains(&5) && sevens.contains(&19_998));
        assert_eq!(keys.candidates(10), Vec::<i64>::new());
        keys.remove_rowids(&[5, 19_998, 2]);
        assert!(!keys.candidates(7).contains(&5));
        assert!(!keys.candidates(7).contains(&19_998));
        assert!(keys.candidates(7).contains(&1));
        assert_eq!(keys.candidates(9).len(), (6..20_000).filter(|r| r % 3 == 2).count());
        assert_eq!(keys.loaded_to, 19_999);
        // A few removals leave `base` as it is; enough of them rewrite it without the dead.
        let held = keys.base.len();
        assert_eq!(keys.len(), held + keys.recent.len());
        let many: Vec<i64> = (6..20_000).filter(|r| r % 3 == 1).take(held / 16).collect();
        keys.remove_rowids(&many);
        assert!(keys.base.len() < held && keys.dead.is_empty(), "{} of {held}", keys.base.len());
        assert!(keys.candidates(8).iter().all(|r| !many.contains(r)));
        assert!(!keys.candidates(7).contains(&5), "earlier removals stay removed");
    }

    #[test]
    fn the_directory_finds_the_same_rowids_as_a_scan() {
        // Hashes over the whole range (the ends too), shared by a few calls each.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut pairs: Vec<(u32, i64)> = vec![(0, 1), (u32::MAX, 2), (u32::MAX, 3), (1 << 16, 4)];
        for rowid in 5..60_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let h = if rowid % 7 == 0 { pairs[x as usize % pairs.len()].0 } else { x as u32 };
            pairs.push((h, rowid));
        }
        let (first, later) = pairs.split_at(30_000);
        let mut keys = EventKeys::from_packed(first.iter().map(|(h, r)| pack(*h, *r)).collect());
        for (h, r) in later {
            keys.insert(*h, *r);
        }
        keys.remove_rowids(&[3, 10_001]);
        let scan = |h: u32| {
            let mut want: Vec<i64> = pairs
                .iter()
                .filter(|(ph, r)| *ph == h && ![3, 10_001].contains(r))
                .map(|(_, r)| *r)
                .collect();
            want.sort_unstable();
            want
        };
        for (h, _) in pairs.iter().step_by(97).chain(&pairs[..4]) {
            let mut got = keys.candidates(*h);
            got.sort_unstable();
            assert_eq!(got, scan(*h), "hash {h:#x}");
        }
        let top = keys.candidates(u32::MAX);
        assert!(top.contains(&2) && !top.contains(&3), "{top:?}");
    }

    #[test]
    fn the_hash_depends_on_key_project_and_id() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let h = key_hash(&a, 1, "evt-1");
        assert_eq!(h, key_hash(&a, 1, "evt-1"));
        assert_ne!(h, key_hash(&b, 1, "evt-1"));
        assert_ne!(h, key_hash(&a, 2, "evt-1"));
        assert_ne!(h, key_hash(&a, 1, "evt-2"));
    }
}
