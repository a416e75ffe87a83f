//! The in-memory aggregate every analytic view reads (ssr only, no I/O): per project, rows of
//! sums keyed by (hour, tag set, provider/model/agent), with dictionary-encoded integer ids,
//! grouped by hour. SQLite stays the durable store; this is rebuilt from it at start (`build`)
//! and updated with each committed batch (`apply`), after deletions (`remove_tag_sets`) and by
//! retention (`drop_before`). Depends on nothing but `std`.
//!
//! Rows are appended per batch and merged per hour when an hour's rows double (`compact`), so
//! memory follows the number of distinct keys, not the number of batches. Every number is an
//! integer sum, so spend and tokens are exact; distinct users are counted exactly from the tag
//! sets' users; traces are counted from per-event "first in its trace" flags (see `firsts`).

pub mod query;
pub mod rows;
pub mod snapshot;
pub mod traces;

use std::collections::{BTreeMap, HashMap};

/// No id (a tag set without a `userId`, a lookup that found nothing).
pub const NONE: u32 = u32::MAX;

/// Bits of an event's `firsts`: the event is its trace's first call to its provider, by its
/// agent, with both. Summed per row, a provider/agent filter counts each matching trace once.
pub const FIRST_PROVIDER: u8 = 1;
pub const FIRST_AGENT: u8 = 2;
pub const FIRST_PAIR: u8 = 4;
/// Bits of a tool's flag byte: the trace's first call using the tool, with it and the call's
/// provider, agent, both.
pub const FIRST_TOOL: u8 = 1;
pub const FIRST_TOOL_PROVIDER: u8 = 2;
pub const FIRST_TOOL_AGENT: u8 = 4;
pub const FIRST_TOOL_PAIR: u8 = 8;

/// Strings to dense ids.
#[derive(Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Takes the next id for a name that is gone (a deleted user's, in a saved aggregate): it
    /// reads as empty and no lookup finds it.
    pub fn push_gone(&mut self) {
        self.names.push(String::new());
    }
}

/// One distinct tags map.
pub struct TagSet {
    /// `tag_sets.id` in SQLite.
    pub db_id: i64,
    /// The `userId` value's id in `users`, or `NONE`.
    pub user: u32,
    /// (key id, value id) pairs.
    pub kv: Vec<(u32, u32)>,
    /// False once deleted (ids are never reused).
    pub live: bool,
}

/// Sums of some calls with one key. Rows with equal keys may coexist (until `compact`): every
/// reader sums them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Row {
    pub tag_set: u32,
    /// The tag set's user (copied here so a scan touches no other memory), or `NONE`.
    pub user: u32,
    pub combo: u32,
    pub calls: u32,
    pub errors: u32,
    pub unpriced: u32,
    /// Latest call, in ms after the start of the row's hour.
    pub last_ms: u32,
    /// Calls that were their trace's first with this provider / agent / both.
    pub firsts: [i32; 3],
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    /// nano-USD of the priced calls.
    pub cost: i64,
    /// Sum of latencies (calls without one count 0).
    pub latency: u64,
}

impl Row {
    /// The order of an hour's rows: by user (so per-user sums sweep their arrays in order),
    /// then tag set, then combination.
    pub fn order(&self) -> (u32, u32, u32) {
        (self.user, self.tag_set, self.combo)
    }

    /// Adds another row of the same key.
    pub(super) fn merge(&mut self, r: &Row) {
        self.calls += r.calls;
        self.errors += r.errors;
        self.unpriced += r.unpriced;
        self.last_ms = self.last_ms.max(r.last_ms);
        for (a, b) in self.firsts.iter_mut().zip(r.firsts) {
            *a += b;
        }
        self.input += r.input;
        self.output += r.output;
        self.cache_read += r.cache_read;
        self.cache_creation += r.cache_creation;
        self.cost = self.cost.saturating_add(r.cost);
        self.latency += r.latency;
    }
}

/// Calls with a latency in one histogram bucket: 12 bytes, the bucket (fewer than 256) and the
/// count (below 2^24) in one word. Counts past that take more rows with the same key; every
/// reader sums them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatRow {
    pub tag_set: u32,
    pub combo: u32,
    packed: u32,
}

impl LatRow {
    const MAX_N: u32 = (1 << 24) - 1;

    pub fn bucket(&self) -> u32 {
        self.packed >> 24
    }

    pub fn n(&self) -> u32 {
        self.packed & Self::MAX_N
    }

    /// Appends rows holding `n` calls in `bucket` (one row unless `n` passes 2^24 - 1).
    pub fn push(out: &mut Vec<LatRow>, tag_set: u32, combo: u32, bucket: u32, mut n: u64) {
        let bucket = bucket.min(255) << 24;
        while n > 0 {
            let part = n.min(u64::from(Self::MAX_N)) as u32;
            out.push(LatRow { tag_set, combo, packed: bucket | part });
            n -= u64::from(part);
        }
    }
}

/// Appends trace starts of a tag set as entries whose counts fit an `i32` (one entry unless
/// more than 2^31 traces start in one hour with one tag set).
pub fn push_starts(out: &mut Vec<(u32, i32)>, tag_set: u32, mut n: i64) {
    while n != 0 {
        let part = n.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        out.push((tag_set, part as i32));
        n -= part;
    }
}

/// Calls that used one tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolRow {
    pub tag_set: u32,
    pub combo: u32,
    pub tool: u32,
    pub calls: u32,
    /// nano-USD of the priced calls.
    pub cost: i64,
    /// Calls that were their trace's first with this tool / and provider / and agent / and both.
    pub firsts: [i32; 4],
}

/// Everything of one hour.
#[derive(Default)]
pub struct Hour {
    pub rows: rows::Rows,
    pub lat: Vec<LatRow>,
    pub tools: Vec<ToolRow>,
    /// Traces that started in this hour, per tag set (negative entries move a start elsewhere).
    pub starts: Vec<(u32, i32)>,
    /// The combinations with calls in this hour, sorted (what the filter menus offer).
    pub combos: Vec<u32>,
    /// How many of the first rows are in order (`Row::order`; see `compact`).
    pub sorted: usize,
    /// The user of every `FENCE`th sorted row: a page of users finds its rows through this
    /// instead of binary searches over the whole user column.
    pub fence: Vec<u32>,
    compacted: usize,
}

/// One project's aggregate.
#[derive(Default)]
pub struct ProjectCube {
    pub providers: Interner,
    pub models: Interner,
    pub agents: Interner,
    pub tools: Interner,
    pub users: Interner,
    pub keys: Interner,
    pub values: Interner,
    /// combo id → (provider, model, agent) ids.
    pub combos: Vec<(u32, u32, u32)>,
    combo_ids: HashMap<(u32, u32, u32), u32>,
    pub tag_sets: Vec<TagSet>,
    /// Each tag set's user (parallel to `tag_sets`), or `NONE`.
    pub user_of: Vec<u32>,
    tag_index: HashMap<i64, u32>,
    pub hours: BTreeMap<i64, Hour>,
    /// Each trace's facts for the Traces list (see `traces`).
    pub traces: traces::TraceIndex,
}

/// One stored call, as the aggregate needs it.
#[derive(Clone, Debug, Default)]
pub struct CallFact {
    pub tag_set: i64,
    pub ts_ms: i64,
    pub provider: String,
    pub model: String,
    pub agent: String,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub cost: Option<i64>,
    pub latency_ms: Option<i64>,
    pub is_error: bool,
    pub firsts: u8,
    /// Distinct tool names with their flag bytes.
    pub tools: Vec<(String, u8)>,
    /// Only the flags change: a stored call became (or stopped being) its trace's first with
    /// something after calls of its trace were removed. Its numbers are already counted.
    pub flags_only: bool,
    /// With `flags_only`: the `firsts` bits the call lost, and per tool the bits it lost.
    pub lost: u8,
    pub tools_lost: Vec<(String, u8)>,
}

/// What one committed batch (or one chunk of a rebuild) adds.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    /// Tag sets the batch may have created: db id → tags.
    pub tag_sets: Vec<(i64, BTreeMap<String, String>)>,
    pub calls: Vec<CallFact>,
    /// (hour, tag set db id, traces started): new traces, and moves of a start (−1 / +1).
    pub starts: Vec<(i64, i64, i64)>,
    /// The traces the batch created or changed.
    pub traces: Vec<traces::TraceFact>,
    /// Traces whose providers and agents were re-derived from their remaining calls.
    pub trace_masks: Vec<traces::TraceMask>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.starts.is_empty()
            && self.tag_sets.is_empty()
            && self.traces.is_empty()
            && self.trace_masks.is_empty()
    }
}

const HOUR_MS: i64 = 3_600_000;

/// Rows per entry of an hour's `fence` (tests use a small one so the fence is crossed).
pub const FENCE: usize = if cfg!(test) { 4 } else { 64 };

/// The user tag key.
pub const USER_TAG: &str = "userId";

impl ProjectCube {
    /// The dense id of a tag set, registering it (with its tags) when new.
    fn tag_set(&mut self, db_id: i64, tags: Option<&BTreeMap<String, String>>) -> u32 {
        if let Some(i) = self.tag_index.get(&db_id) {
            return *i;
        }
        let empty = BTreeMap::new();
        let tags = tags.unwrap_or(&empty);
        let user = tags.get(USER_TAG).map_or(NONE, |u| self.users.id(u));
        let kv = tags.iter().map(|(k, v)| (self.keys.id(k), self.values.id(v))).collect();
        let i = self.tag_sets.len() as u32;
        self.tag_sets.push(TagSet { db_id, user, kv, live: true });
        self.user_of.push(user);
        self.tag_index.insert(db_id, i);
        i
    }

    fn combo(&mut self, provider: &str, model: &str, agent: &str) -> u32 {
        let key = (self.providers.id(provider), self.models.id(model), self.agents.id(agent));
        if let Some(c) = self.combo_ids.get(&key) {
            return *c;
        }
        let c = self.combos.len() as u32;
        self.combos.push(key);
        self.combo_ids.insert(key, c);
        c
    }

    /// Adds a committed batch's calls and trace starts.
    pub fn apply(&mut self, delta: &Delta) {
        for (id, tags) in &delta.tag_sets {
            self.tag_set(*id, Some(tags));
        }
        // Group the batch's calls by key first, so a batch adds one row per key.
        let mut rows: HashMap<(i64, u32, u32), Row> = HashMap::new();
        let mut lat: HashMap<(i64, u32, u32, u32), u64> = HashMap::new();
        let mut tools: HashMap<(i64, u32, u32, u32), ToolRow> = HashMap::new();
        for c in &delta.calls {
            let hour = c.ts_ms.div_euclid(HOUR_MS);
            let tag_set = self.tag_set(c.tag_set, None);
            let combo = self.combo(&c.provider, &c.model, &c.agent);
            let user = self.user_of[tag_set as usize];
            let r = rows.entry((hour, tag_set, combo)).or_insert_with(|| Row {
                tag_set,
                user,
                combo,
                ..Row::default()
            });
            for (i, bit) in [FIRST_PROVIDER, FIRST_AGENT, FIRST_PAIR].into_iter().enumerate() {
                r.firsts[i] += i32::from(c.firsts & bit != 0) - i32::from(c.lost & bit != 0);
            }
            if c.flags_only {
                let changes = c.tools.iter().map(|t| (t, 1)).chain(c.tools_lost.iter().map(|t| (t, -1)));
                for ((name, flags), sign) in changes {
                    add_tool_flags(
                        tool_row(&mut tools, &mut self.tools, hour, tag_set, combo, name),
                        *flags,
                        sign,
                    );
                }
                continue;
            }
            r.calls += 1;
            r.errors += u32::from(c.is_error);
            r.unpriced += u32::from(c.cost.is_none());
            r.last_ms = r.last_ms.max(c.ts_ms.rem_euclid(HOUR_MS) as u32);
            r.input += c.input;
            r.output += c.output;
            r.cache_read += c.cache_read;
            r.cache_creation += c.cache_creation;
            r.cost = r.cost.saturating_add(c.cost.unwrap_or(0));
            r.latency += c.latency_ms.unwrap_or(0).max(0) as u64;
            if let Some(ms) = c.latency_ms {
                let bucket = crate::model::latency::latency_bucket(ms) as u32;
                *lat.entry((hour, tag_set, combo, bucket)).or_default() += 1;
            }
            for (name, flags) in &c.tools {
                let t = tool_row(&mut tools, &mut self.tools, hour, tag_set, combo, name);
                t.calls += 1;
                t.cost = t.cost.saturating_add(c.cost.unwrap_or(0));
                add_tool_flags(t, *flags, 1);
            }
        }
        let mut touched = Vec::new();
        for ((hour, ..), row) in rows {
            let h = self.hours.entry(hour).or_default();
            if row.calls > 0
                && let Err(at) = h.combos.binary_search(&row.combo)
            {
                h.combos.insert(at, row.combo);
            }
            h.rows.push(row);
            touched.push(hour);
        }
        for ((hour, tag_set, combo, bucket), n) in lat {
            LatRow::push(&mut self.hours.entry(hour).or_default().lat, tag_set, combo, bucket, n);
        }
        for ((hour, ..), t) in tools {
            self.hours.entry(hour).or_default().tools.push(t);
        }
        for (hour, tag_set, n) in &delta.starts {
            let ts = self.tag_set(*tag_set, None);
            push_starts(&mut self.hours.entry(*hour).or_default().starts, ts, *n);
            touched.push(*hour);
        }
        self.apply_traces(&delta.traces, &delta.trace_masks);
        touched.sort_unstable();
        touched.dedup();
        for hour in touched {
            if let Some(h) = self.hours.get_mut(&hour)
                && h.rows.len() + h.starts.len() >= 2 * h.compacted + 64
            {
                h.compact();
            }
        }
    }

    /// Whether any stored call carries this `userId` (a deleted user's tag sets are gone).
    pub fn has_user(&self, user: &str) -> bool {
        self.users.get(user).is_some_and(|u| {
            self.user_of.iter().zip(&self.tag_sets).any(|(owner, ts)| *owner == u && ts.live)
        })
    }

    /// Takes out every row of these tag sets (a deleted user's). Hours without any are left
    /// as they are (a deletion rewrites only the hours the user had calls in).
    pub fn remove_tag_sets(&mut self, db_ids: &[i64]) {
        self.remove_tag_sets_in(db_ids, None);
    }

    /// [`ProjectCube::remove_tag_sets`] where `share` (taken while the writer was held, so
    /// nothing of these tag sets was added since) says their rows and traces are: only those
    /// hours and traces are looked at (a deletion doesn't scan the whole aggregate).
    pub fn remove_tag_sets_in(&mut self, db_ids: &[i64], share: Option<&traces::Share>) {
        let mut gone = vec![false; self.tag_sets.len()];
        for id in db_ids {
            if let Some(i) = self.tag_index.remove(id) {
                gone[i as usize] = true;
                self.tag_sets[i as usize].live = false;
                self.tag_sets[i as usize].kv.clear();
            }
        }
        let gone = |ts: u32| gone.get(ts as usize).copied().unwrap_or(false);
        let Some(share) = share else {
            self.hours.retain(|_, h| {
                h.take_out(&gone, true);
                !(h.rows.is_empty() && h.starts.is_empty())
            });
            self.traces.remove(|e| gone(e.tag_set));
            return;
        };
        for hour in share.hours.iter().map(|(h, _)| h).chain(&share.start_hours) {
            if let Some(h) = self.hours.get_mut(hour) {
                h.take_out(&gone, true);
                if h.rows.is_empty() && h.starts.is_empty() {
                    self.hours.remove(hour);
                }
            }
        }
        self.traces.remove_seqs(&share.traces, |e| gone(e.tag_set));
    }

    /// Takes out the calls of some tag sets in some hours, as (hour, `tag_sets.id`), keeping
    /// their trace starts: the caller adds back those of their calls that stay.
    pub fn remove_calls(&mut self, pairs: &[(i64, i64)]) {
        let mut by_hour: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (hour, db_id) in pairs {
            if let Some(i) = self.tag_index.get(db_id) {
                by_hour.entry(*hour).or_default().push(*i);
            }
        }
        for (hour, sets) in by_hour {
            if let Some(h) = self.hours.get_mut(&hour) {
                h.take_out(&|ts| sets.contains(&ts), false);
            }
        }
        self.hours.retain(|_, h| !(h.rows.is_empty() && h.starts.is_empty()));
    }

    /// The database ids of live tag sets no call or trace of the aggregate names any more
    /// (retention took their last): what retention deletes with their tags.
    pub fn unused_tag_sets(&self) -> Vec<i64> {
        let mut used = vec![false; self.tag_sets.len()];
        let mut mark = |ts: u32| {
            if let Some(u) = used.get_mut(ts as usize) {
                *u = true;
            }
        };
        for h in self.hours.values() {
            h.rows.tag_set.iter().for_each(|ts| mark(*ts));
            h.starts.iter().for_each(|(ts, _)| mark(*ts));
        }
        self.traces.each(|e| mark(e.tag_set));
        self.tag_sets.iter().zip(used).filter(|(t, used)| t.live && !used).map(|(t, _)| t.db_id).collect()
    }

    /// Drops every hour, and every trace started, before `hour` (retention).
    pub fn drop_before(&mut self, hour: i64) {
        self.hours = self.hours.split_off(&hour);
        self.traces.remove(|e| e.start_ms < hour * HOUR_MS);
    }

    /// Merges every hour's equal keys (after a rebuild).
    pub fn compact_all(&mut self) {
        for h in self.hours.values_mut() {
            h.compact();
        }
    }

    /// Merges the equal keys of the hours that got rows or starts since their last merge (after
    /// a saved aggregate is brought up to date: the other hours were merged when it was saved).
    pub fn compact_changed(&mut self) {
        for h in self.hours.values_mut() {
            if h.sorted < h.rows.len() || h.compacted != h.rows.len() + h.starts.len() {
                h.compact();
            }
        }
    }

    /// Rows held, for logs and benchmarks.
    pub fn row_count(&self) -> usize {
        self.hours.values().map(|h| h.rows.len() + h.lat.len() + h.tools.len() + h.starts.len()).sum()
    }

    /// Bytes the largest parts hold (vector capacities; strings and maps estimated), for logs
    /// and benchmarks: (rows, latency rows, tool rows, starts, trace index, tag sets and names).
    pub fn heap_bytes(&self) -> [usize; 6] {
        fn cap<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let mut out = [0usize; 6];
        for h in self.hours.values() {
            let r = &h.rows;
            out[0] += cap(&r.tag_set) + cap(&r.user) + cap(&r.combo) + cap(&r.calls) + cap(&r.last_ms);
            out[0] += cap(&r.cost) + cap(&r.rest) + cap(&h.fence) + cap(&h.combos);
            out[1] += cap(&h.lat);
            out[2] += cap(&h.tools);
            out[3] += cap(&h.starts);
        }
        out[4] = self.traces.chunks.iter().map(|c| cap(&c.entries)).sum();
        let names =
            [&self.providers, &self.models, &self.agents, &self.tools, &self.users, &self.keys, &self.values]
                .iter()
                .map(|i| i.names.iter().map(|n| 2 * n.len() + 48).sum::<usize>())
                .sum::<usize>();
        out[5] = cap(&self.tag_sets)
            + self.tag_sets.iter().map(|t| t.kv.capacity() * 8).sum::<usize>()
            + cap(&self.user_of)
            + self.tag_index.capacity() * 17
            + names;
        out
    }
}

impl Hour {
    /// User `u`'s run of the sorted rows, searched from row `from` on: the last fence entry
    /// below `u` starts the stretch of at most `FENCE` rows where the run can begin.
    pub fn user_run(&self, u: u32, from: usize) -> std::ops::Range<usize> {
        let sorted = self.sorted.min(self.rows.len());
        let head = &self.rows.user[..sorted];
        let block = self.fence.partition_point(|x| *x < u).saturating_sub(1);
        let mut from = from.max(block * FENCE).min(sorted);
        while from < sorted && head[from] < u {
            from += 1;
        }
        let mut to = from;
        while to < sorted && head[to] == u {
            to += 1;
        }
        from..to
    }

    /// Drops the rows (and trace starts, with `starts`) of the tag sets `gone` accepts; an
    /// hour with none of them is not rewritten.
    fn take_out(&mut self, gone: &dyn Fn(u32) -> bool, starts: bool) {
        let hit = self.rows.tag_set.iter().any(|ts| gone(*ts))
            || self.lat.iter().any(|r| gone(r.tag_set))
            || self.tools.iter().any(|r| gone(r.tag_set))
            || (starts && self.starts.iter().any(|(ts, _)| gone(*ts)));
        if !hit {
            return;
        }
        self.rows.retain(|ts| !gone(ts));
        self.lat.retain(|r| !gone(r.tag_set));
        self.tools.retain(|r| !gone(r.tag_set));
        if starts {
            self.starts.retain(|(ts, _)| !gone(*ts));
        }
        self.compacted = self.compacted.min(self.rows.len());
        self.note_combos();
        self.note_sorted();
    }

    /// Recomputes `sorted`: the length of the rows' ordered prefix.
    pub fn note_sorted(&mut self) {
        let r = &self.rows;
        let sorted = (1..r.len()).position(|i| r.order(i - 1) > r.order(i)).map_or(r.len(), |i| i + 1);
        self.set_sorted(sorted);
    }

    /// Sets `sorted` and the `fence` over those rows.
    fn set_sorted(&mut self, sorted: usize) {
        self.sorted = sorted;
        self.fence = self.rows.user[..sorted].iter().step_by(FENCE).copied().collect();
    }

    /// Puts every row in order (an hour read from a file saved in another order).
    pub fn sort_rows(&mut self) {
        let mut rows: Vec<Row> = self.rows.iter().collect();
        rows.sort_unstable_by_key(Row::order);
        self.rows = rows.into_iter().collect();
        self.set_sorted(self.rows.len());
    }

    /// Recomputes `combos` from the rows.
    pub fn note_combos(&mut self) {
        self.combos =
            self.rows.calls.iter().zip(&self.rows.combo).filter(|(n, _)| **n > 0).map(|(_, c)| *c).collect();
        self.combos.sort_unstable();
        self.combos.dedup();
        self.combos.shrink_to_fit();
    }

    /// Sums rows with equal keys into one.
    fn compact(&mut self) {
        let mut rows: HashMap<(u32, u32), Row> = HashMap::with_capacity(self.rows.len());
        for r in self.rows.iter() {
            rows.entry((r.tag_set, r.combo)).and_modify(|a| a.merge(&r)).or_insert(r);
        }
        let mut merged: Vec<Row> = rows.into_values().collect();
        merged.sort_unstable_by_key(Row::order);
        self.rows = merged.into_iter().collect();
        let mut lat: HashMap<(u32, u32, u32), u64> = HashMap::new();
        for r in self.lat.drain(..) {
            *lat.entry((r.tag_set, r.combo, r.bucket())).or_default() += u64::from(r.n());
        }
        for ((tag_set, combo, bucket), n) in lat {
            LatRow::push(&mut self.lat, tag_set, combo, bucket, n);
        }
        self.lat.shrink_to_fit();
        let mut tools: HashMap<(u32, u32, u32), ToolRow> = HashMap::new();
        for t in self.tools.drain(..) {
            tools
                .entry((t.tag_set, t.combo, t.tool))
                .and_modify(|a| {
                    a.calls += t.calls;
                    a.cost = a.cost.saturating_add(t.cost);
                    for i in 0..4 {
                        a.firsts[i] += t.firsts[i];
                    }
                })
                .or_insert(t);
        }
        self.tools = tools.into_values().collect();
        self.tools.shrink_to_fit();
        let mut starts: HashMap<u32, i64> = HashMap::new();
        for (ts, n) in self.starts.drain(..) {
            *starts.entry(ts).or_default() += i64::from(n);
        }
        for (ts, n) in starts {
            push_starts(&mut self.starts, ts, n);
        }
        self.starts.shrink_to_fit();
        self.compacted = self.rows.len() + self.starts.len();
        // Merging rows keeps the set of combinations with calls (`apply` keeps `combos`).
        self.set_sorted(self.rows.len());
    }
}

/// The batch's tool row for a key, created on first use.
fn tool_row<'a>(
    rows: &'a mut HashMap<(i64, u32, u32, u32), ToolRow>,
    names: &mut Interner,
    hour: i64,
    tag_set: u32,
    combo: u32,
    name: &str,
) -> &'a mut ToolRow {
    let tool = names.id(name);
    rows.entry((hour, tag_set, combo, tool)).or_insert_with(|| ToolRow {
        tag_set,
        combo,
        tool,
        ..ToolRow::default()
    })
}

fn add_tool_flags(t: &mut ToolRow, flags: u8, sign: i32) {
    for (i, bit) in
        [FIRST_TOOL, FIRST_TOOL_PROVIDER, FIRST_TOOL_AGENT, FIRST_TOOL_PAIR].into_iter().enumerate()
    {
        t.firsts[i] += sign * i32::from(flags & bit != 0);
    }
}

/// Every project's aggregate.
#[derive(Default)]
pub struct Cube {
    pub projects: HashMap<i64, ProjectCube>,
}

impl Cube {
    pub fn project(&mut self, id: i64) -> &mut ProjectCube {
        self.projects.entry(id).or_default()
    }
}

/// Which of a trace's keys a call is the first with, given what the trace already has (`seen`,
/// updated): the `firsts` bits and one flag byte per distinct tool (in order).
#[derive(Default)]
pub struct TraceSeen {
    providers: Vec<String>,
    agents: Vec<String>,
    pairs: Vec<(String, String)>,
    tools: Vec<String>,
    tool_providers: Vec<(String, String)>,
    tool_agents: Vec<(String, String)>,
    tool_pairs: Vec<(String, String, String)>,
}

fn first_of<T: PartialEq>(seen: &mut Vec<T>, item: T) -> bool {
    if seen.contains(&item) {
        false
    } else {
        seen.push(item);
        true
    }
}

impl TraceSeen {
    /// The providers and agents of the calls seen so far.
    pub fn providers_and_agents(&self) -> (&[String], &[String]) {
        (&self.providers, &self.agents)
    }

    /// Records a call and returns its flags.
    pub fn see(&mut self, provider: &str, agent: &str, tools: &[String]) -> (u8, Vec<u8>) {
        let mut f = 0;
        if first_of(&mut self.providers, provider.to_string()) {
            f |= FIRST_PROVIDER;
        }
        if first_of(&mut self.agents, agent.to_string()) {
            f |= FIRST_AGENT;
        }
        if first_of(&mut self.pairs, (provider.to_string(), agent.to_string())) {
            f |= FIRST_PAIR;
        }
        let mut tf = Vec::with_capacity(tools.len());
        let mut distinct: Vec<&str> = Vec::new();
        for t in tools {
            if distinct.contains(&t.as_str()) {
                tf.push(0);
                continue;
            }
            distinct.push(t);
            let mut b = 0;
            if first_of(&mut self.tools, t.clone()) {
                b |= FIRST_TOOL;
            }
            if first_of(&mut self.tool_providers, (t.clone(), provider.to_string())) {
                b |= FIRST_TOOL_PROVIDER;
            }
            if first_of(&mut self.tool_agents, (t.clone(), agent.to_string())) {
                b |= FIRST_TOOL_AGENT;
            }
            if first_of(&mut self.tool_pairs, (t.clone(), provider.to_string(), agent.to_string())) {
                b |= FIRST_TOOL_PAIR;
            }
            tf.push(b);
        }
        (f, tf)
    }
}

/// The distinct tools of a call with their flag bytes (`flags` parallel to `tools`, duplicates 0).
pub fn tool_facts(tools: &[String], flags: &[u8]) -> Vec<(String, u8)> {
    let mut out: Vec<(String, u8)> = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        if out.iter().any(|(n, _)| n == t) {
            continue;
        }
        out.push((t.clone(), flags.get(i).copied().unwrap_or(0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_past_a_packed_field_take_more_rows_and_sum_exactly() {
        let mut lat = Vec::new();
        let n = 3 * u64::from(LatRow::MAX_N) + 5;
        LatRow::push(&mut lat, 7, 2, 140, n);
        LatRow::push(&mut lat, 7, 2, 3, 0);
        assert_eq!(lat.len(), 4);
        assert!(lat.iter().all(|l| l.tag_set == 7 && l.combo == 2 && l.bucket() == 140));
        assert_eq!(lat.iter().map(|l| u64::from(l.n())).sum::<u64>(), n);

        let mut starts = Vec::new();
        push_starts(&mut starts, 4, 5_000_000_000);
        push_starts(&mut starts, 5, -3);
        push_starts(&mut starts, 6, 0);
        assert_eq!(
            starts.iter().filter(|(t, _)| *t == 4).map(|(_, n)| i64::from(*n)).sum::<i64>(),
            5_000_000_000
        );
        assert_eq!(starts.iter().filter(|(t, _)| *t != 4).copied().collect::<Vec<_>>(), vec![(5, -3)]);
    }

    #[test]
    fn spend_sums_saturate_instead_of_wrapping() {
        let big = Row { cost: i64::MAX / 2 + 1, calls: 1, ..Row::default() };
        let mut row = big;
        row.merge(&big);
        assert_eq!(row.cost, i64::MAX);
        let mut sums = query::Sums::default();
        sums.add(&big);
        sums.add(&big);
        assert_eq!((sums.cost, sums.calls), (i64::MAX, 2));
        let mut twice = sums;
        twice.merge(&sums);
        assert_eq!(twice.cost, i64::MAX);
    }

    #[test]
    fn compaction_sums_latency_counts_without_wrapping() {
        let mut h = Hour::default();
        for _ in 0..3 {
            LatRow::push(&mut h.lat, 1, 0, 9, u64::from(LatRow::MAX_N));
        }
        h.compact();
        assert_eq!(h.lat.iter().map(|l| u64::from(l.n())).sum::<u64>(), 3 * u64::from(LatRow::MAX_N));
    }
}
