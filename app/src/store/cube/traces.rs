//! The Traces list's facts in memory: per trace its start, tag set, route tag, totals and the
//! providers and agents of its calls, indexed by the trace's `seq` (a per-project number given
//! when the trace is first stored, kept in `traces.seq`). A list request is one pass over the
//! window's traces keeping the page's best `offset + limit` in a heap; SQLite then reads only
//! the page's rows by `seq`. Depends on nothing but `std` and the aggregate's dictionaries.

use super::query::{Scope, in_two};
use super::{Interner, NONE, ProjectCube};
use crate::model::{Dir, TraceSort};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Traces per chunk. Chunks are added one at a time (memory grows by a chunk, never doubles)
/// and each keeps the range of its traces' starts, so a window skips the chunks outside it.
pub const CHUNK: usize = 4096;

/// Bits per half of `TraceEntry::mask`; the last bit of a half stands for every id from
/// `MASK_BITS - 1` up, so a filter on such an id can't be answered from the mask.
const MASK_BITS: u32 = 16;

/// Where one user's share of the data is (see [`ProjectCube::share`]).
#[derive(Clone, Debug, Default)]
pub struct Share {
    /// `tag_sets.id` of the user's live tag sets.
    pub tag_sets: Vec<i64>,
    /// `traces.seq` of the traces stored under them.
    pub traces: Vec<u32>,
    /// (hour, calls stored under them in it), for the hours with any.
    pub hours: Vec<(i64, i64)>,
    /// The hours their traces started in.
    pub start_hours: Vec<i64>,
}

/// One trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    pub start_ms: i64,
    pub tokens: i64,
    /// nano-USD of the trace's priced calls.
    pub cost: i64,
    /// Dense tag set id; `NONE`: no trace has this `seq` (deleted, expired, never stored).
    pub tag_set: u32,
    pub calls: u32,
    /// Route tag id in `TraceIndex::routes`, or `NONE`.
    pub route: u32,
    /// Providers (low half) and agents (high half) of the trace's calls, one bit per id.
    pub mask: u32,
}

pub const EMPTY: TraceEntry =
    TraceEntry { start_ms: 0, tokens: 0, cost: 0, tag_set: NONE, calls: 0, route: NONE, mask: 0 };

/// `CHUNK` consecutive `seq`s.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub entries: Vec<TraceEntry>,
    /// Bounds of the starts of the traces ever put here (a trace removed leaves them as they
    /// were: they only need to contain every live start).
    pub min_start: i64,
    pub max_start: i64,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk { entries: vec![EMPTY; CHUNK], min_start: i64::MAX, max_start: i64::MIN }
    }

    fn live(&self) -> bool {
        self.entries.iter().any(|e| e.tag_set != NONE)
    }

    /// Widens the start bounds to a trace's start.
    fn note_start(&mut self, start_ms: i64) {
        self.min_start = self.min_start.min(start_ms);
        self.max_start = self.max_start.max(start_ms);
    }
}

/// One project's traces.
#[derive(Default)]
pub struct TraceIndex {
    /// `seq` of the first chunk's first entry (a multiple of `CHUNK`).
    pub base: u64,
    pub chunks: VecDeque<Chunk>,
    pub routes: Interner,
}

/// What a committed batch changes in one trace: where it is now (start, tag set, route) and
/// what its new calls add.
#[derive(Clone, Debug, Default)]
pub struct TraceFact {
    pub seq: u32,
    /// The trace was stored by this batch: whatever its `seq` held before (a number given
    /// again after the trace that had it was deleted) is replaced, not added to.
    pub new: bool,
    /// `tag_sets.id`.
    pub tag_set: i64,
    pub start_ms: i64,
    pub route: Option<String>,
    pub calls: i64,
    pub tokens: i64,
    pub cost: i64,
    /// Providers and agents of the new calls.
    pub providers: Vec<String>,
    pub agents: Vec<String>,
}

/// A trace's providers and agents re-derived from all its stored calls (after some were
/// removed): replaces its mask.
#[derive(Clone, Debug, Default)]
pub struct TraceMask {
    pub seq: u32,
    pub providers: Vec<String>,
    pub agents: Vec<String>,
}

fn bit(id: u32) -> u32 {
    1 << id.min(MASK_BITS - 1)
}

impl TraceIndex {
    /// The entry of `seq`, adding chunks (before or after) as needed.
    fn slot(&mut self, seq: u32) -> (&mut Chunk, usize) {
        let seq = u64::from(seq);
        let chunk = CHUNK as u64;
        if self.chunks.is_empty() {
            self.base = seq / chunk * chunk;
        }
        while seq < self.base {
            self.chunks.push_front(Chunk::new());
            self.base -= chunk;
        }
        let i = ((seq - self.base) / chunk) as usize;
        while self.chunks.len() <= i {
            self.chunks.push_back(Chunk::new());
        }
        (&mut self.chunks[i], ((seq - self.base) % chunk) as usize)
    }

    /// The entry of `seq`, if it is held.
    pub fn get(&self, seq: u32) -> Option<&TraceEntry> {
        let at = u64::from(seq).checked_sub(self.base)?;
        let c = self.chunks.get((at / CHUNK as u64) as usize)?;
        c.entries.get((at % CHUNK as u64) as usize).filter(|e| e.tag_set != NONE)
    }

    /// Sets a trace's entry (a rebuild, a snapshot).
    pub fn put(&mut self, seq: u32, e: TraceEntry) {
        let (c, i) = self.slot(seq);
        c.entries[i] = e;
        c.note_start(e.start_ms);
    }

    /// Removes the traces `gone` says, and the leading chunks left empty.
    /// Calls `f` with every stored trace's entry.
    pub fn each(&self, f: impl FnMut(&TraceEntry)) {
        self.chunks.iter().flat_map(|c| &c.entries).filter(|e| e.tag_set != NONE).for_each(f);
    }

    pub fn remove(&mut self, gone: impl Fn(&TraceEntry) -> bool) {
        for c in &mut self.chunks {
            for e in &mut c.entries {
                if e.tag_set != NONE && gone(e) {
                    *e = EMPTY;
                }
            }
        }
        self.drop_empty_front();
    }

    /// [`TraceIndex::remove`] looking at these seqs only.
    pub fn remove_seqs(&mut self, seqs: &[u32], gone: impl Fn(&TraceEntry) -> bool) {
        for seq in seqs {
            let Some(at) = u64::from(*seq).checked_sub(self.base) else { continue };
            let Some(c) = self.chunks.get_mut((at / CHUNK as u64) as usize) else { continue };
            let e = &mut c.entries[(at % CHUNK as u64) as usize];
            if e.tag_set != NONE && gone(e) {
                *e = EMPTY;
            }
        }
        self.drop_empty_front();
    }

    fn drop_empty_front(&mut self) {
        while self.chunks.front().is_some_and(|c| !c.live()) {
            self.chunks.pop_front();
            self.base += CHUNK as u64;
        }
        if self.chunks.is_empty() {
            self.base = 0;
        }
    }

    /// Traces held.
    pub fn len(&self) -> usize {
        self.chunks.iter().flat_map(|c| &c.entries).filter(|e| e.tag_set != NONE).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every held trace with its `seq`.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &TraceEntry)> + '_ {
        self.chunks.iter().enumerate().flat_map(move |(ci, c)| {
            c.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.tag_set != NONE)
                .map(move |(i, e)| ((self.base + (ci * CHUNK + i) as u64) as u32, e))
        })
    }
}

/// The mask bits a provider / agent filter needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskNeed {
    /// Traces with all these bits (0: no filter).
    Bits(u32),
    /// A name no call has: no trace matches.
    NoTrace,
    /// The masks can't tell: an id sharing the overflow bit, or both filters at once (which
    /// must hold for one call).
    CantTell,
}

/// A Traces list request resolved against the dictionaries.
pub struct TraceQuery<'a> {
    pub scope: &'a Scope,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Route tags matching the search (by id; the last entry is "no route tag"), or `None`.
    pub routes: Option<Vec<bool>>,
    /// Mask bits a trace must have all of.
    pub need: u32,
    pub sort: TraceSort,
    pub dir: Dir,
    /// `offset + limit`: how many of the best are kept.
    pub want: usize,
    /// Only traces after this one in list order (a key from [`order_key_at`]): keyset paging.
    pub before: Option<i128>,
}

/// Below this many chunks a list pass stays on one thread.
const PARALLEL_MIN_CHUNKS: usize = if cfg!(test) { 2 } else { 64 };

impl ProjectCube {
    /// The mask bits of these providers and agents (registering new names).
    fn mask_of<'a>(
        &mut self,
        providers: impl IntoIterator<Item = &'a str>,
        agents: impl IntoIterator<Item = &'a str>,
    ) -> u32 {
        let mut mask = 0;
        for p in providers {
            mask |= bit(self.providers.id(p));
        }
        for a in agents {
            mask |= bit(self.agents.id(a)) << MASK_BITS;
        }
        mask
    }

    /// Adds a batch's trace changes.
    pub(super) fn apply_traces(&mut self, facts: &[TraceFact], masks: &[TraceMask]) {
        for f in facts {
            let tag_set = self.tag_set(f.tag_set, None);
            let mask =
                self.mask_of(f.providers.iter().map(String::as_str), f.agents.iter().map(String::as_str));
            let route = f.route.as_deref().map_or(NONE, |r| self.traces.routes.id(r));
            let (c, i) = self.traces.slot(f.seq);
            let e = &mut c.entries[i];
            if f.new || e.tag_set == NONE {
                *e = EMPTY;
            }
            e.tag_set = tag_set;
            e.start_ms = f.start_ms;
            e.route = route;
            e.calls = e.calls.saturating_add(u32::try_from(f.calls).unwrap_or(u32::MAX));
            e.tokens = e.tokens.saturating_add(f.tokens);
            e.cost = e.cost.saturating_add(f.cost);
            e.mask |= mask;
            c.note_start(f.start_ms);
        }
        for m in masks {
            let mask =
                self.mask_of(m.providers.iter().map(String::as_str), m.agents.iter().map(String::as_str));
            let (c, i) = self.traces.slot(m.seq);
            if c.entries[i].tag_set != NONE {
                c.entries[i].mask = mask;
            }
        }
    }

    /// Adds a stored trace (a rebuild).
    pub fn load_trace(&mut self, f: &TraceFact) {
        self.apply_traces(std::slice::from_ref(f), &[]);
    }

    /// Sets a held trace to its stored row as read at a start after a crash (its totals, start,
    /// tag set and route replaced; the providers and agents of the calls already held kept), or
    /// adds it. Returns the hour and tag set (db id) it started in before, if it was held.
    pub fn reload_trace(&mut self, f: &TraceFact) -> Option<(i64, i64)> {
        let before = self.traces.get(f.seq).map(|e| {
            let db_id = self.tag_sets.get(e.tag_set as usize).map_or(-1, |t| t.db_id);
            (e.start_ms.div_euclid(3_600_000), db_id, e.mask)
        });
        self.apply_traces(&[TraceFact { new: true, ..f.clone() }], &[]);
        let (hour, tag_set, mask) = before?;
        let (c, i) = self.traces.slot(f.seq);
        c.entries[i].mask |= mask;
        Some((hour, tag_set))
    }

    /// Adds a stored call's provider and agent to its trace's mask (a rebuild).
    pub fn load_trace_call(&mut self, seq: u32, provider: Option<&str>, agent: Option<&str>) {
        let mask = self.mask_of(provider, agent);
        let (c, i) = self.traces.slot(seq);
        if c.entries[i].tag_set != NONE {
            c.entries[i].mask |= mask;
        }
    }

    /// Where a user's share is held, so deleting it needs no scan of the file: their live tag
    /// sets, the traces stored under them, and per hour the calls stored under them.
    pub fn share(&self, user: &str) -> Share {
        let Some(u) = self.users.get(user) else { return Share::default() };
        let mine: Vec<bool> = self.tag_sets.iter().map(|t| t.live && t.user == u).collect();
        let of = |ts: u32| mine.get(ts as usize).copied().unwrap_or(false);
        let tag_sets = self.tag_sets.iter().zip(&mine).filter(|(_, m)| **m).map(|(t, _)| t.db_id).collect();
        let hours = self
            .hours
            .iter()
            .map(|(hour, h)| {
                // The user's run of the hour's sorted rows, and the unsorted tail.
                let (n, sorted) = (h.rows.len(), h.sorted.min(h.rows.len()));
                let calls: i64 = h
                    .user_run(u, 0)
                    .chain(sorted..n)
                    .filter(|i| of(h.rows.tag_set[*i]))
                    .map(|i| i64::from(h.rows.calls[i]))
                    .sum();
                (*hour, calls)
            })
            .filter(|(_, calls)| *calls > 0)
            .collect();
        let mine: Vec<(u32, i64)> =
            self.traces.iter().filter(|(_, e)| of(e.tag_set)).map(|(seq, e)| (seq, e.start_ms)).collect();
        let mut start_hours: Vec<i64> = mine.iter().map(|(_, start)| start.div_euclid(3_600_000)).collect();
        start_hours.sort_unstable();
        start_hours.dedup();
        Share { tag_sets, traces: mine.into_iter().map(|(seq, _)| seq).collect(), hours, start_hours }
    }

    /// Sets a held trace's totals (calls of it were deleted).
    pub fn set_trace_totals(&mut self, seq: u32, calls: i64, tokens: i64, cost: i64) {
        if self.traces.get(seq).is_none() {
            return;
        }
        let (c, i) = self.traces.slot(seq);
        let e = &mut c.entries[i];
        if e.tag_set != NONE {
            e.calls = u32::try_from(calls.max(0)).unwrap_or(u32::MAX);
            e.tokens = tokens.max(0);
            e.cost = cost.max(0);
        }
    }

    /// Calls and traces stored under a user's tag sets (what deleting the user removes).
    pub fn footprint(&self, user: &str) -> (i64, i64) {
        let Some(u) = self.users.get(user) else { return (0, 0) };
        let mine: Vec<bool> = self.tag_sets.iter().map(|t| t.live && t.user == u).collect();
        let of = |ts: u32| mine.get(ts as usize).copied().unwrap_or(false);
        let calls = self
            .hours
            .values()
            .flat_map(|h| h.rows.tag_set.iter().zip(&h.rows.calls))
            .filter(|(ts, _)| of(**ts))
            .map(|(_, n)| i64::from(*n))
            .sum();
        let traces = self.traces.iter().filter(|(_, e)| of(e.tag_set)).count() as i64;
        (calls, traces)
    }

    /// What the masks say about a provider / agent filter.
    pub fn trace_mask_need(&self, provider: Option<&str>, agent: Option<&str>) -> MaskNeed {
        let (names, want, shift) = match (provider, agent) {
            (None, None) => return MaskNeed::Bits(0),
            (Some(_), Some(_)) => return MaskNeed::CantTell,
            (Some(p), None) => (&self.providers, p, 0),
            (None, Some(a)) => (&self.agents, a, MASK_BITS),
        };
        match names.get(want) {
            None => MaskNeed::NoTrace,
            Some(id) if id < MASK_BITS - 1 => MaskNeed::Bits(bit(id) << shift),
            Some(_) => MaskNeed::CantTell,
        }
    }

    /// The route tags whose lower-case text contains `search` (ASCII case folding, as SQLite's
    /// `lower`), the last entry standing for traces without one (matched by the empty search).
    pub fn routes_matching(&self, search: &str) -> Vec<bool> {
        let s = search.to_ascii_lowercase();
        let r = &self.traces.routes;
        (0..r.len() as u32)
            .map(|i| r.name(i).to_ascii_lowercase().contains(&s))
            .chain([s.is_empty()])
            .collect()
    }

    /// Traces matching `q` (how many) and the `seq`s of the best `q.want` in list order.
    pub fn trace_page(&self, q: &TraceQuery) -> (i64, Vec<u32>) {
        let (total, best) = self.trace_picks(q);
        (total, best.into_iter().map(|(_, seq)| seq).collect())
    }

    /// [`Self::trace_page`] with each trace's order key (the last one continues the list).
    pub fn trace_picks(&self, q: &TraceQuery) -> (i64, Vec<(i128, u32)>) {
        let chunks: Vec<(usize, &Chunk)> = self
            .traces
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.max_start >= q.from_ms && c.min_start < q.to_ms)
            .collect();
        let work = |part: &[(usize, &Chunk)]| self.trace_part(q, part);
        let parts = if chunks.len() < PARALLEL_MIN_CHUNKS {
            vec![work(&chunks)]
        } else {
            in_two(&chunks, chunks.len() / 2, work)
        };
        let mut total = 0;
        let mut best: Vec<Reverse<(i128, u32)>> = Vec::new();
        for (n, heap) in parts {
            total += n;
            best.extend(heap);
        }
        // Best first: the largest order key (see `order_key`).
        best.sort_unstable();
        best.truncate(q.want);
        (total, best.into_iter().map(|Reverse(pick)| pick).collect())
    }

    fn trace_part(&self, q: &TraceQuery, chunks: &[(usize, &Chunk)]) -> (i64, Vec<Reverse<(i128, u32)>>) {
        // Grown as matches come: `want` comes from the request's offset and may be far more than
        // there are traces.
        let mut heap: BinaryHeap<Reverse<(i128, u32)>> = BinaryHeap::with_capacity(q.want.min(1 << 12) + 1);
        let mut n = 0;
        let route_none = q.routes.as_ref().map_or(0, |r| r.len() - 1);
        let mut visit = |seq: u64, e: &TraceEntry| {
            if e.tag_set == NONE
                || e.start_ms < q.from_ms
                || e.start_ms >= q.to_ms
                || e.mask & q.need != q.need
                || !Self::tag_ok(q.scope, e.tag_set)
            {
                return;
            }
            if let Some(r) = &q.routes {
                let at = if e.route == NONE { route_none } else { e.route as usize };
                if !r.get(at).copied().unwrap_or(false) {
                    return;
                }
            }
            n += 1;
            if q.want == 0 {
                return;
            }
            let seq = seq as u32;
            let key = order_key(q.sort, q.dir, e, seq);
            if q.before.is_some_and(|b| key >= b) {
                return;
            }
            if heap.len() < q.want {
                heap.push(Reverse((key, seq)));
            } else if heap.peek().is_some_and(|Reverse((worst, _))| key > *worst) {
                heap.pop();
                heap.push(Reverse((key, seq)));
            }
        };
        // Newest first when the newest are the best: `seq` follows arrival, so the heap holds
        // the page early and later traces rarely get in (no push and pop per trace).
        if q.sort == TraceSort::Started && q.dir == Dir::Desc {
            for (ci, c) in chunks.iter().rev() {
                let first = self.traces.base + (ci * CHUNK) as u64;
                for (i, e) in c.entries.iter().enumerate().rev() {
                    visit(first + i as u64, e);
                }
            }
        } else {
            for (ci, c) in chunks {
                let first = self.traces.base + (ci * CHUNK) as u64;
                for (i, e) in c.entries.iter().enumerate() {
                    visit(first + i as u64, e);
                }
            }
        }
        // Sorted largest key first (the `Reverse`s ascending).
        let mut v = heap.into_vec();
        v.sort_unstable();
        (n, v)
    }
}

/// A trace's place in the list as one number, larger first: the sort column, then `seq`
/// (the later stored first when descending), both negated for ascending.
fn order_key(sort: TraceSort, dir: Dir, e: &TraceEntry, seq: u32) -> i128 {
    let col = match sort {
        TraceSort::Started => e.start_ms,
        TraceSort::Spend => e.cost,
        TraceSort::Calls => i64::from(e.calls),
        TraceSort::Tokens => e.tokens,
    };
    order_key_at(dir, col, seq)
}

/// The order key of a trace whose sort column holds `col`.
pub fn order_key_at(dir: Dir, col: i64, seq: u32) -> i128 {
    let k = (i128::from(col) << 32) | i128::from(seq);
    match dir {
        Dir::Desc => k,
        Dir::Asc => -k,
    }
}

/// The sort column's value and the `seq` an order key was made of.
pub fn order_key_parts(dir: Dir, key: i128) -> (i64, u32) {
    let k = match dir {
        Dir::Desc => key,
        Dir::Asc => -key,
    };
    ((k >> 32) as i64, (k & 0xffff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start_ms: i64, cost: i64) -> TraceEntry {
        TraceEntry { start_ms, cost, tag_set: 0, calls: 1, ..EMPTY }
    }

    #[test]
    fn slots_grow_both_ways_and_empty_leading_chunks_go() {
        let mut t = TraceIndex::default();
        t.put(10_000, entry(5, 1));
        assert_eq!(t.base, 8192);
        t.put(3, entry(1, 1));
        assert_eq!(t.base, 0);
        assert_eq!(t.chunks.len(), 3);
        assert_eq!(t.iter().map(|(s, _)| s).collect::<Vec<_>>(), vec![3, 10_000]);
        t.remove(|e| e.start_ms < 2);
        assert_eq!(t.base, 8192, "the two leading chunks had nothing left");
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(10_000).map(|e| e.cost), Some(1));
        assert!(t.get(3).is_none());
    }

    #[test]
    fn order_keys_put_ties_in_seq_order_and_reverse_for_ascending() {
        let (a, b) = (entry(1, 7), entry(2, 7));
        assert!(
            order_key(TraceSort::Spend, Dir::Desc, &a, 2) > order_key(TraceSort::Spend, Dir::Desc, &b, 1)
        );
        assert!(order_key(TraceSort::Spend, Dir::Asc, &a, 1) > order_key(TraceSort::Spend, Dir::Asc, &b, 2));
        for (dir, col, seq) in
            [(Dir::Desc, -5, 9), (Dir::Asc, 7, u32::MAX), (Dir::Asc, i64::MIN, 0), (Dir::Desc, i64::MAX, 3)]
        {
            assert_eq!(order_key_parts(dir, order_key_at(dir, col, seq)), (col, seq), "{dir:?} {col} {seq}");
        }
        let neg = entry(-5, -3);
        assert!(
            order_key(TraceSort::Spend, Dir::Desc, &a, 0) > order_key(TraceSort::Spend, Dir::Desc, &neg, 9)
        );
        assert!(
            order_key(TraceSort::Started, Dir::Asc, &neg, 9) > order_key(TraceSort::Started, Dir::Asc, &a, 0)
        );
    }
}
