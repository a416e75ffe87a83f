//! Tag-set ids by (project, canonical tags), for ingest: the recent ones only. Memory follows
//! the traffic, not every tag set ever stored (100,000 users on a few plans are ~10^5 sets, a
//! tag per request id would be one per call): the older generation is dropped when the newer
//! one reaches half of [`TAG_CACHE_BYTES`]; a miss costs one indexed lookup.

use std::collections::HashMap;

/// Most bytes of keys the two generations hold together (about).
pub const TAG_CACHE_BYTES: usize = 16 << 20;
/// What one entry costs besides its canonical text: the key's project and string header, the
/// id and the map's slot.
const ENTRY_OVERHEAD: usize = 64;

type Key = (i64, String);

#[derive(Default)]
pub(crate) struct TagCache {
    new: HashMap<Key, i64>,
    old: HashMap<Key, i64>,
    bytes: usize,
}

impl TagCache {
    /// The id of a cached tag set; a hit in the older generation moves it to the newer.
    pub(crate) fn get(&mut self, key: &Key) -> Option<i64> {
        if let Some(id) = self.new.get(key) {
            return Some(*id);
        }
        let (key, id) = self.old.remove_entry(key)?;
        self.insert(key, id);
        Some(id)
    }

    fn insert(&mut self, key: Key, id: i64) {
        self.bytes += key.1.len() + ENTRY_OVERHEAD;
        self.new.insert(key, id);
        if self.bytes > TAG_CACHE_BYTES / 2 {
            self.old = std::mem::take(&mut self.new);
            self.bytes = 0;
        }
    }

    /// Tag sets a committed transaction resolved.
    pub(crate) fn extend(&mut self, resolved: HashMap<Key, i64>) {
        for (key, id) in resolved {
            self.insert(key, id);
        }
    }

    /// Drops the entries of these ids (deleted tag sets: their ids must not be reused).
    pub(crate) fn forget(&mut self, ids: &std::collections::HashSet<i64>) {
        let mut freed = 0;
        self.new.retain(|key, id| {
            let gone = ids.contains(id);
            if gone {
                freed += key.1.len() + ENTRY_OVERHEAD;
            }
            !gone
        });
        // The newer generation's budget counts what it holds, so it doesn't rotate early.
        self.bytes = self.bytes.saturating_sub(freed);
        self.old.retain(|_, id| !ids.contains(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.new.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_tag_sets_give_their_bytes_back() {
        let mut c = TagCache::default();
        let key = |i: i64| (1, format!("{{\"plan\":\"plan-{i}\"}}"));
        c.extend((0..10).map(|i| (key(i), i)).collect());
        let full = c.bytes;
        c.forget(&[2, 3, 99].into_iter().collect());
        assert_eq!(c.bytes, full - 2 * (key(2).1.len() + ENTRY_OVERHEAD));
        assert_eq!((c.get(&key(2)), c.get(&key(4))), (None, Some(4)));
        c.forget(&(0..10).collect());
        assert_eq!((c.bytes, c.len()), (0, 0));
    }

    #[test]
    fn the_cache_keeps_recent_tag_sets_within_its_budget() {
        let mut c = TagCache::default();
        let key = |i: i64| (1, format!("{{\"userId\":\"user-{i:012}\"}}"));
        let per_entry = key(0).1.len() + ENTRY_OVERHEAD;
        let fits = TAG_CACHE_BYTES / per_entry;
        c.extend(HashMap::from([((2, "hot".to_string()), -1)]));
        for i in 0..3 * fits as i64 {
            c.extend(HashMap::from([(key(i), i)]));
            // A tag set in use stays however many others pass through.
            if i % 1000 == 0 {
                assert_eq!(c.get(&(2, "hot".to_string())), Some(-1), "after {i}");
            }
        }
        assert!(c.len() <= fits + 1, "{} entries held, budget {fits}", c.len());
        let last = 3 * fits as i64 - 1;
        assert_eq!(c.get(&key(last)), Some(last), "recent ones are kept");
        assert_eq!(c.get(&key(0)), None, "old ones went");
        c.forget(&std::collections::HashSet::from([last, -1]));
        assert_eq!(c.get(&key(last)), None, "a forgotten id is not answered");
        assert_eq!(c.get(&(2, "hot".to_string())), None);
        assert_eq!(c.get(&key(last - 1)), Some(last - 1), "others stay");
    }
}
