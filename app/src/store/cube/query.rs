//! Reading the aggregate: a filter resolved once to a `Scope` (an hour range, a bitmap of
//! matching tag sets, one of matching provider/model/agent combinations), then one pass over the
//! matching rows per view. Pure functions over `ProjectCube`.

use super::rows::Rows;
use super::{Hour, NONE, ProjectCube, Row};
use crate::model::latency::latency_bucket_count;
use crate::model::{Dir, UserSort, UsersFilter};
use std::collections::HashMap;
use std::ops::Range;

/// Which trace count a filter reads: traces started (no provider or agent filter), or the
/// traces with a call to the provider / by the agent / both (the calls' `firsts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    Starts,
    Provider,
    Agent,
    Pair,
}

/// A filter resolved against one project's dictionaries.
pub struct Scope {
    pub from_hour: i64,
    pub to_hour: i64,
    /// Matching tag sets (by dense id); `None`: all.
    tag_ok: Option<Vec<bool>>,
    /// Matching combinations; `None`: all.
    combo_ok: Option<Vec<bool>>,
    /// The matching (user, tag set) pairs in order, when there are few (a user, a rare tag):
    /// rows are then found by binary search in each hour's sorted rows instead of a scan.
    few: Option<Vec<(u32, u32)>>,
    pub kind: TraceKind,
}

/// Sums of one hour and (provider, model) pair id.
pub type HourPair = (i64, u32, Sums);

/// What `scan_hours` finds.
#[derive(Default)]
pub struct HourScan {
    pub sums: Sums,
    pub traces: i64,
    pub active_users: i64,
    pub hours: Vec<HourPair>,
    /// (provider id, model id) of each pair id.
    pub pairs: Vec<(u32, u32)>,
    /// Distinct users per pair id (when asked for).
    pub users_per_pair: Vec<i64>,
    /// Per user: spend and whether they had calls (`user_keys` for `UserSort::Spend`).
    pub user_spend: Vec<(i64, bool)>,
}

/// Totals of some calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    pub calls: i64,
    pub errors: i64,
    pub unpriced: i64,
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_creation: i64,
    pub cost: i64,
    pub latency: i64,
}

impl Sums {
    pub fn add(&mut self, r: &Row) {
        self.calls += i64::from(r.calls);
        self.errors += i64::from(r.errors);
        self.unpriced += i64::from(r.unpriced);
        self.input += r.input as i64;
        self.output += r.output as i64;
        self.cache_read += r.cache_read as i64;
        self.cache_creation += r.cache_creation as i64;
        self.cost = self.cost.saturating_add(r.cost);
        self.latency += r.latency as i64;
    }

    pub fn merge(&mut self, s: &Sums) {
        self.calls += s.calls;
        self.errors += s.errors;
        self.unpriced += s.unpriced;
        self.input += s.input;
        self.output += s.output;
        self.cache_read += s.cache_read;
        self.cache_creation += s.cache_creation;
        self.cost = self.cost.saturating_add(s.cost);
        self.latency += s.latency;
    }

    pub fn tokens(&self) -> i64 {
        self.input + self.output + self.cache_read + self.cache_creation
    }
}

/// One user's totals in a scope.
#[derive(Clone, Debug, Default)]
pub struct UserTotals {
    pub user: String,
    pub sums: Sums,
    pub traces: i64,
    pub last_ts: i64,
    pub top_model: String,
}

/// How segments rank: most spend, then most calls, then by value with no value last. Each side
/// is (spend, calls, its value's name); names are looked up only on ties.
pub fn segment_order<'a>(
    a: (i64, i64, impl Fn() -> Option<&'a str>),
    b: (i64, i64, impl Fn() -> Option<&'a str>),
) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then_with(|| {
        let (x, y) = (a.2(), b.2());
        x.is_none().cmp(&y.is_none()).then(x.cmp(&y))
    })
}

/// The largest tools × users bitmap the Tools scan keeps per thread (8 MB). Tests run both
/// ways: the aggregate tests' 2 tools take the bitmap, the equivalence corpus' 3 the pairs.
const MAX_TOOL_USER_BITS: usize = if cfg!(test) { 128 } else { 64_000_000 };

/// The largest pairs × users bitmap the Models scan keeps per thread (32 MB).
const MAX_PAIR_USER_CELLS: usize = 32_000_000;

/// Below this many rows a scan stays on one thread (tests split even small scans, so the
/// two-thread path is what they check).
const PARALLEL_MIN_ROWS: usize = if cfg!(test) { 64 } else { 100_000 };

/// At most this many matching tag sets are looked up by binary search rather than scanned for.
const FEW_TAG_SETS: usize = 64;

/// Kept per user while scanning.
#[derive(Clone, Copy, Default)]
struct Acc {
    sums: Sums,
    traces: i64,
    last_ts: i64,
}

/// Runs `work` on `items[..cut]` here and on `items[cut..]` on a second thread; returns both
/// results in that order.
pub fn in_two<T: Sync, A: Send>(items: &[T], cut: usize, work: impl Fn(&[T]) -> A + Sync) -> Vec<A> {
    let (a, b) = items.split_at(cut);
    std::thread::scope(|sc| {
        let other = sc.spawn(|| work(b));
        let first = work(a);
        let second = other.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        vec![first, second]
    })
}

impl ProjectCube {
    /// Resolves `filter` for the hours `[from_hour, to_hour)`.
    pub fn scope(&self, filter: &UsersFilter, from_hour: i64, to_hour: i64) -> Scope {
        let tag_ok = (filter.user.is_some() || !filter.tags.is_empty()).then(|| {
            let user = filter.user.as_deref().map(|u| self.users.get(u));
            let pairs: Option<Vec<(u32, u32)>> =
                filter.tags.iter().map(|(k, v)| Some((self.keys.get(k)?, self.values.get(v)?))).collect();
            self.tag_sets
                .iter()
                .map(|t| {
                    t.live
                        && match user {
                            Some(Some(u)) => t.user == u,
                            Some(None) => false,
                            None => true,
                        }
                        && pairs.as_ref().is_some_and(|p| p.iter().all(|kv| t.kv.contains(kv)))
                })
                .collect()
        });
        let combo_ok = (filter.provider.is_some() || filter.agent.is_some()).then(|| {
            let provider = filter.provider.as_deref().map(|p| self.providers.get(p));
            let agent = filter.agent.as_deref().map(|a| self.agents.get(a));
            self.combos
                .iter()
                .map(|(p, _, a)| {
                    let p_ok = match provider {
                        Some(want) => want == Some(*p),
                        None => true,
                    };
                    let a_ok = match agent {
                        Some(want) => want == Some(*a),
                        None => true,
                    };
                    p_ok && a_ok
                })
                .collect()
        });
        let kind = match (filter.provider.is_some(), filter.agent.is_some()) {
            (false, false) => TraceKind::Starts,
            (true, false) => TraceKind::Provider,
            (false, true) => TraceKind::Agent,
            (true, true) => TraceKind::Pair,
        };
        let few = tag_ok.as_ref().and_then(|ok: &Vec<bool>| {
            let mut ids: Vec<(u32, u32)> = (0..ok.len() as u32)
                .filter(|i| ok[*i as usize])
                .take(FEW_TAG_SETS + 1)
                .map(|ts| (self.user_of[ts as usize], ts))
                .collect();
            ids.sort_unstable();
            (ids.len() <= FEW_TAG_SETS).then_some(ids)
        });
        Scope { from_hour, to_hour, tag_ok, combo_ok, few, kind }
    }

    /// The runs of an hour's rows that can be in the scope: with few tag sets, the sorted
    /// rows' runs of those tag sets and the unsorted tail; else all. (Callers still check
    /// `row_in`.)
    pub fn runs_of(s: &Scope, h: &Hour) -> Vec<Range<usize>> {
        let n = h.rows.len();
        let sorted = h.sorted.min(n);
        match &s.few {
            None => std::iter::once(0..n).collect(),
            Some(ids) => ids
                .iter()
                .map(|(user, ts)| h.rows.run_of(sorted, *user, *ts))
                .chain(std::iter::once(sorted..n))
                .collect(),
        }
    }

    /// The runs of an hour's rows that can be some users' (`users` in order) in the scope: each
    /// user's run of the sorted rows (found by binary search in the user column), and the tail.
    fn runs_of_users(s: &Scope, h: &Hour, users: &[u32]) -> Vec<Range<usize>> {
        if s.few.is_some() {
            return Self::runs_of(s, h);
        }
        let n = h.rows.len();
        let sorted = h.sorted.min(n);
        let mut from = 0;
        let mut runs = Vec::with_capacity(users.len() + 1);
        for u in users {
            let run = h.user_run(*u, from);
            from = run.end;
            if !run.is_empty() {
                runs.push(run);
            }
        }
        runs.push(sorted..n);
        runs
    }

    /// The hours of a scope, with their start hour.
    pub fn hours_of<'a>(&'a self, s: &Scope) -> impl Iterator<Item = (i64, &'a Hour)> + 'a {
        let range = if s.from_hour < s.to_hour { s.from_hour..s.to_hour } else { 0..0 };
        self.hours.range(range).map(|(h, hour)| (*h, hour))
    }

    pub(super) fn tag_ok(s: &Scope, tag_set: u32) -> bool {
        s.tag_ok.as_ref().is_none_or(|ok| ok.get(tag_set as usize).copied().unwrap_or(false))
    }

    fn combo_ok(s: &Scope, combo: u32) -> bool {
        s.combo_ok.as_ref().is_none_or(|ok| ok.get(combo as usize).copied().unwrap_or(false))
    }

    /// Whether row `i` is in the scope (its hour aside), reading only the columns a filter needs.
    #[inline]
    fn row_in(s: &Scope, rows: &Rows, i: usize) -> bool {
        (s.tag_ok.is_none() || Self::tag_ok(s, rows.tag_set[i]))
            && (s.combo_ok.is_none() || Self::combo_ok(s, rows.combo[i]))
    }

    /// Whether a row is in the scope (its hour aside).
    pub fn row_ok(&self, s: &Scope, tag_set: u32, combo: u32) -> bool {
        Self::tag_ok(s, tag_set) && Self::combo_ok(s, combo)
    }

    /// The traces a row counts for in this scope's kind (not `Starts`).
    fn row_traces(s: &Scope, firsts: &[i32; 3]) -> i64 {
        i64::from(match s.kind {
            TraceKind::Starts => 0,
            TraceKind::Provider => firsts[0],
            TraceKind::Agent => firsts[1],
            TraceKind::Pair => firsts[2],
        })
    }

    /// Runs `work` over the scope's hours: on two threads (each a contiguous half of the rows)
    /// when there are many rows, else on this one. Returns each part's result.
    pub fn par_hours<A: Send>(&self, s: &Scope, work: impl Fn(&[(i64, &Hour)]) -> A + Sync) -> Vec<A> {
        let hours: Vec<(i64, &Hour)> = self.hours_of(s).collect();
        let total: usize = hours.iter().map(|(_, h)| h.rows.len()).sum();
        if total < PARALLEL_MIN_ROWS {
            return vec![work(&hours)];
        }
        let mut seen = 0;
        let cut = hours
            .iter()
            .position(|(_, h)| {
                seen += h.rows.len();
                seen * 2 >= total
            })
            .map_or(hours.len(), |i| i + 1);
        in_two(&hours, cut, work)
    }

    /// Folds the scope's rows (`f(acc, hour, rows, i)` for row `i` of an hour's `rows`: each
    /// view reads only the columns it needs), in parallel parts merged with `merge`.
    pub fn fold<A: Send>(
        &self,
        s: &Scope,
        init: impl Fn() -> A + Sync,
        f: impl Fn(&mut A, i64, &Rows, usize) + Sync,
        merge: impl Fn(&mut A, A),
    ) -> A {
        self.fold_runs(s, |h| Self::runs_of(s, h), init, f, merge)
    }

    /// `fold` over the runs `runs` picks from each hour (a subset of `runs_of`).
    fn fold_runs<A: Send>(
        &self,
        s: &Scope,
        runs: impl Fn(&Hour) -> Vec<Range<usize>> + Sync,
        init: impl Fn() -> A + Sync,
        f: impl Fn(&mut A, i64, &Rows, usize) + Sync,
        merge: impl Fn(&mut A, A),
    ) -> A {
        let mut parts = self.par_hours(s, |hours| {
            let mut acc = init();
            for (hour, h) in hours {
                for i in runs(h).into_iter().flatten() {
                    if Self::row_in(s, &h.rows, i) {
                        f(&mut acc, *hour, &h.rows, i);
                    }
                }
            }
            acc
        });
        let mut first = parts.remove(0);
        for p in parts {
            merge(&mut first, p);
        }
        first
    }

    /// Calls `f(tag set, traces)` for each trace start in the scope (kind `Starts` only).
    pub fn each_start(&self, s: &Scope, mut f: impl FnMut(u32, i64)) {
        if s.kind != TraceKind::Starts {
            return;
        }
        for (_, h) in self.hours_of(s) {
            for (ts, n) in &h.starts {
                if Self::tag_ok(s, *ts) {
                    f(*ts, i64::from(*n));
                }
            }
        }
    }

    /// Trace starts in the scope per slot (`slot` of a start's tag set, below `slots`), on two
    /// threads when the scope has many rows (kind `Starts` only, else all zero).
    pub fn starts_per(&self, s: &Scope, slots: usize, slot: impl Fn(u32) -> usize + Sync) -> Vec<i64> {
        if s.kind != TraceKind::Starts {
            return vec![0; slots];
        }
        let parts = self.par_hours(s, |hours| {
            let mut out = vec![0i64; slots];
            for (_, h) in hours {
                for (ts, n) in &h.starts {
                    if Self::tag_ok(s, *ts) {
                        out[slot(*ts)] += i64::from(*n);
                    }
                }
            }
            out
        });
        let mut parts = parts.into_iter();
        let mut out = parts.next().unwrap_or_else(|| vec![0; slots]);
        for p in parts {
            for (x, y) in out.iter_mut().zip(p) {
                *x += y;
            }
        }
        out
    }

    /// Distinct users per group (`group_of` each tag set's group, `NONE` for the last group)
    /// among the tag sets `seen` says had calls: the tag sets counted out by group, then each
    /// group's users marked in one bitmap that is cleared again after the group.
    pub fn users_per_group(&self, seen: &[bool], group_of: &[u32], groups: usize) -> Vec<i64> {
        let slot = |ts: usize| match group_of[ts] {
            NONE => groups,
            g => g as usize,
        };
        let with_user = || (0..seen.len()).filter(|ts| seen[*ts] && self.user_of[*ts] != NONE);
        let mut start = vec![0usize; groups + 2];
        for ts in with_user() {
            start[slot(ts) + 1] += 1;
        }
        for g in 1..start.len() {
            start[g] += start[g - 1];
        }
        let mut at = start.clone();
        let mut order = vec![0u32; start[groups + 1]];
        for ts in with_user() {
            let g = slot(ts);
            order[at[g]] = ts as u32;
            at[g] += 1;
        }
        let mut bits = vec![0u64; self.users.len().div_ceil(64)];
        let mut users = vec![0i64; groups + 1];
        for g in 0..=groups {
            let members = &order[start[g]..start[g + 1]];
            for ts in members {
                let u = self.user_of[*ts as usize] as usize;
                let (word, bit) = (u / 64, 1u64 << (u % 64));
                if bits[word] & bit == 0 {
                    bits[word] |= bit;
                    users[g] += 1;
                }
            }
            for ts in members {
                bits[self.user_of[*ts as usize] as usize / 64] = 0;
            }
        }
        users
    }

    /// One pass for the Overview and Models views: totals, traces, distinct users, sums per
    /// (hour, provider/model pair), and (`per_pair_users`) distinct users per pair.
    pub fn scan_hours(&self, s: &Scope, per_pair_users: bool) -> HourScan {
        let (pair_of, pairs) = self.pairs();
        let n = self.users.len();
        let np = pairs.len();
        // Distinct users per pair from a bitmap per pair when that is of a sane size, else from
        // deduplicated (pair, user) pairs in a second pass.
        let dense = np.saturating_mul(n) <= MAX_PAIR_USER_CELLS;
        let per_pair_bits = per_pair_users && dense;
        struct Part {
            sums: Sums,
            traces: i64,
            users: Vec<(i64, bool)>,
            pair_users: Vec<bool>,
            hours: Vec<HourPair>,
        }
        let parts = self.par_hours(s, |hours| {
            let mut p = Part {
                sums: Sums::default(),
                traces: 0,
                users: vec![(0, false); n],
                pair_users: vec![false; if per_pair_bits { np * n } else { 0 }],
                hours: Vec::new(),
            };
            let mut dense = vec![Sums::default(); np];
            for (hour, h) in hours {
                for i in Self::runs_of(s, h).into_iter().flatten() {
                    if !Self::row_in(s, &h.rows, i) {
                        continue;
                    }
                    let r = &h.rows.get(i);
                    let pair = pair_of[r.combo as usize] as usize;
                    dense[pair].add(r);
                    p.traces += Self::row_traces(s, &r.firsts);
                    if r.user != NONE {
                        let u = &mut p.users[r.user as usize];
                        u.0 = u.0.saturating_add(r.cost);
                        u.1 |= r.calls > 0;
                    }
                    if per_pair_bits && r.user != NONE && r.calls > 0 {
                        p.pair_users[pair * n + r.user as usize] = true;
                    }
                }
                for (i, d) in dense.iter_mut().enumerate() {
                    if *d != Sums::default() {
                        p.sums.merge(d);
                        p.hours.push((*hour, i as u32, std::mem::take(d)));
                    }
                }
            }
            p
        });
        let mut out = HourScan { pairs, ..HourScan::default() };
        let mut users = vec![(0i64, false); n];
        let mut pair_users = vec![false; if per_pair_bits { np * n } else { 0 }];
        for p in parts {
            out.sums.merge(&p.sums);
            out.traces += p.traces;
            out.hours.extend(p.hours);
            for (x, y) in users.iter_mut().zip(p.users) {
                x.0 += y.0;
                x.1 |= y.1;
            }
            for (x, y) in pair_users.iter_mut().zip(p.pair_users) {
                *x |= y;
            }
        }
        self.each_start(s, |_, k| out.traces += k);
        out.active_users = users.iter().filter(|u| u.1).count() as i64;
        out.user_spend = users;
        if per_pair_users {
            out.users_per_pair = (0..np)
                .map(|i| pair_users[i * n..(i + 1) * n].iter().filter(|b| **b).count() as i64)
                .collect();
        }
        out
    }

    /// Dense ids of the (provider, model) pairs: each combo's pair, and the pairs.
    pub fn pairs(&self) -> (Vec<u32>, Vec<(u32, u32)>) {
        let mut ids: HashMap<(u32, u32), u32> = HashMap::new();
        let mut pairs = Vec::new();
        let of = self
            .combos
            .iter()
            .map(|(p, m, _)| {
                *ids.entry((*p, *m)).or_insert_with(|| {
                    pairs.push((*p, *m));
                    pairs.len() as u32 - 1
                })
            })
            .collect();
        (of, pairs)
    }

    /// Per-user totals of the scope, ranked by `sort`/`dir` (ties by user id in the same
    /// direction), with the total number of users. Two passes with small working sets: one
    /// keeps only each user's sort key, the second sums everything (and the top model) for the
    /// page's users alone.
    pub fn users(
        &self,
        s: &Scope,
        sort: UserSort,
        dir: Dir,
        offset: usize,
        limit: usize,
    ) -> (Vec<UserTotals>, i64) {
        let keys = if sort == UserSort::TopModel {
            // Ranked by the top model's name: its place among the names, as the key.
            let mut by_name: Vec<u32> = (0..self.models.len() as u32).collect();
            by_name.sort_unstable_by(|a, b| self.models.name(*a).cmp(self.models.name(*b)));
            let mut place = vec![0i64; by_name.len()];
            for (i, m) in by_name.into_iter().enumerate() {
                place[m as usize] = i as i64;
            }
            self.top_models(s)
                .into_iter()
                .map(|m| if m == NONE { (0, false) } else { (place[m as usize], true) })
                .collect()
        } else {
            self.user_keys(s, sort)
        };
        self.rank_users(s, &keys, dir, offset, limit)
    }

    /// Each user's sort key in the scope (`User` keeps none; `TopModel` is `top_models`) and
    /// whether they had calls in it.
    pub fn user_keys(&self, s: &Scope, sort: UserSort) -> Vec<(i64, bool)> {
        let n = self.users.len();
        let last = sort == UserSort::LastSeen;
        let mut keys = self.fold(
            s,
            || vec![(0i64, false); n],
            |k, hour, rows, i| {
                let user = rows.user[i];
                if user == NONE {
                    return;
                }
                let e = &mut k[user as usize];
                // A row of flags alone (calls 0) doesn't make a user appear.
                e.1 |= rows.calls[i] > 0;
                match sort {
                    UserSort::Spend => e.0 = e.0.saturating_add(rows.cost[i]),
                    UserSort::Events => e.0 += i64::from(rows.calls[i]),
                    UserSort::Tokens => {
                        e.0 += rows.rest[i].tokens() as i64;
                    }
                    UserSort::Traces => e.0 += Self::row_traces(s, &rows.rest[i].firsts),
                    UserSort::LastSeen => e.0 = e.0.max(hour * 3_600_000 + i64::from(rows.last_ms[i])),
                    UserSort::User | UserSort::TopModel => {}
                }
            },
            |a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.0 = if last { x.0.max(y.0) } else { x.0 + y.0 };
                    x.1 |= y.1;
                }
            },
        );
        if sort == UserSort::Traces {
            self.each_start(s, |ts, k| {
                let u = self.user_of[ts as usize];
                if u != NONE {
                    keys[u as usize].0 += k;
                }
            });
        }
        keys
    }

    /// One page of users ranked by their `keys` (each user's sort key and whether they had
    /// calls), ties by name, with the number of users that had calls.
    pub fn rank_users(
        &self,
        s: &Scope,
        keys: &[(i64, bool)],
        dir: Dir,
        offset: usize,
        limit: usize,
    ) -> (Vec<UserTotals>, i64) {
        let mut ids: Vec<(i64, u32)> =
            keys.iter().enumerate().filter(|(_, k)| k.1).map(|(u, k)| (k.0, u as u32)).collect();
        let total = ids.len() as i64;
        if offset >= ids.len() {
            return (Vec::new(), total);
        }
        let cmp = |x: &(i64, u32), y: &(i64, u32)| {
            x.0.cmp(&y.0).then_with(|| self.users.name(x.1).cmp(self.users.name(y.1)))
        };
        let end = offset.saturating_add(limit).min(ids.len());
        // Only the page needs to be in order: select it, then sort it.
        let ord = |x: &(i64, u32), y: &(i64, u32)| match dir {
            Dir::Asc => cmp(x, y),
            Dir::Desc => cmp(y, x),
        };
        if end < ids.len() {
            ids.select_nth_unstable_by(end, ord);
            ids.truncate(end);
        }
        ids.sort_unstable_by(ord);
        let page: Vec<u32> = ids[offset..end].iter().map(|(_, u)| *u).collect();
        (self.user_page(s, &page), total)
    }

    /// Full totals, traces, latest call and top model of some users (in their order).
    fn user_page(&self, s: &Scope, page: &[u32]) -> Vec<UserTotals> {
        let mut slot = vec![NONE; self.users.len()];
        for (i, u) in page.iter().enumerate() {
            slot[*u as usize] = i as u32;
        }
        let models = self.models.len().max(1);
        let model_of: Vec<u32> = self.combos.iter().map(|(_, m, _)| *m).collect();
        let mut in_order = page.to_vec();
        in_order.sort_unstable();
        let (mut acc, per_model) = self.fold_runs(
            s,
            |h| Self::runs_of_users(s, h, &in_order),
            || (vec![Acc::default(); page.len()], vec![(0i64, 0i64); page.len() * models]),
            |(acc, pm), hour, rows, row| {
                let user = rows.user[row];
                if user == NONE || slot[user as usize] == NONE {
                    return;
                }
                let r = &rows.get(row);
                let i = slot[user as usize] as usize;
                let a = &mut acc[i];
                a.sums.add(r);
                a.traces += Self::row_traces(s, &r.firsts);
                a.last_ts = a.last_ts.max(hour * 3_600_000 + i64::from(r.last_ms));
                let e = &mut pm[i * models + model_of[r.combo as usize] as usize];
                e.0 = e.0.saturating_add(r.cost);
                e.1 += i64::from(r.calls);
            },
            |(a, pa), (b, pb)| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.sums.merge(&y.sums);
                    x.traces += y.traces;
                    x.last_ts = x.last_ts.max(y.last_ts);
                }
                for (x, y) in pa.iter_mut().zip(pb) {
                    x.0 += y.0;
                    x.1 += y.1;
                }
            },
        );
        self.each_start(s, |ts, k| {
            let u = self.user_of[ts as usize];
            if u != NONE && slot[u as usize] != NONE {
                acc[slot[u as usize] as usize].traces += k;
            }
        });
        page.iter()
            .enumerate()
            .map(|(i, u)| {
                let a = &acc[i];
                UserTotals {
                    user: self.users.name(*u).to_string(),
                    sums: a.sums,
                    traces: a.traces,
                    last_ts: a.last_ts,
                    top_model: self
                        .best_model(&per_model[i * models..(i + 1) * models])
                        .map_or(String::new(), |m| self.models.name(m).to_string()),
                }
            })
            .collect()
    }

    /// The model each user spent most on in the scope (most spend, then most calls, then the
    /// smallest model name), `NONE` for users without calls in it. Only the TopModel sort needs
    /// it for every user.
    fn top_models(&self, s: &Scope) -> Vec<u32> {
        let models = self.models.len().max(1);
        let model_of: Vec<u32> = self.combos.iter().map(|(_, m, _)| *m).collect();
        let hours: Vec<(i64, &Hour)> = self.hours_of(s).collect();
        // Two threads split the users, not the hours: each sums only its users' rows (a stretch
        // of each hour's sorted rows, and the tail's), so neither needs the other's sums.
        let part = |users: &[(u32, u32)]| -> Vec<u32> {
            let Some(&(lo, hi)) = users.first() else { return Vec::new() };
            let mut acc = vec![(0i64, 0i64); (hi - lo) as usize * models];
            for (_, h) in &hours {
                let rows = &h.rows;
                let sorted = h.sorted.min(rows.len());
                let head = &rows.user[..sorted];
                let (from, to) = (head.partition_point(|u| *u < lo), head.partition_point(|u| *u < hi));
                for run in Self::runs_of(s, h) {
                    let run = if run.end <= sorted { run.start.max(from)..run.end.min(to) } else { run };
                    for i in run {
                        let user = rows.user[i];
                        if user < lo || user >= hi || !Self::row_in(s, rows, i) {
                            continue;
                        }
                        let e = &mut acc
                            [(user - lo) as usize * models + model_of[rows.combo[i] as usize] as usize];
                        e.0 = e.0.saturating_add(rows.cost[i]);
                        e.1 += i64::from(rows.calls[i]);
                    }
                }
            }
            acc.chunks(models).map(|per| self.best_model(per).unwrap_or(NONE)).collect()
        };
        let n = self.users.len() as u32;
        let rows: usize = hours.iter().map(|(_, h)| h.rows.len()).sum();
        if rows < PARALLEL_MIN_ROWS {
            return part(&[(0, n)]);
        }
        in_two(&[(0, n / 2), (n / 2, n)], 1, part).concat()
    }

    /// The model with the most spend in `(spend, calls)` per model id, then the most calls, then
    /// the smallest name; `None` without calls.
    fn best_model(&self, per_model: &[(i64, i64)]) -> Option<u32> {
        let mut top: Option<(i64, i64, u32)> = None;
        for (m, (cost, calls)) in per_model.iter().enumerate() {
            if *calls == 0 {
                continue;
            }
            let better = match top {
                None => true,
                Some((c, n, bm)) => {
                    (*cost, *calls, std::cmp::Reverse(self.models.name(m as u32)))
                        > (c, n, std::cmp::Reverse(self.models.name(bm)))
                }
            };
            if better {
                top = Some((*cost, *calls, m as u32));
            }
        }
        top.map(|(_, _, m)| m)
    }

    /// Latency histograms per (provider id, model id): (bucket, calls).
    pub fn latency(&self, s: &Scope) -> HashMap<(u32, u32), Vec<(i64, i64)>> {
        let (pair_of, pairs) = self.pairs();
        let nb = latency_bucket_count();
        // Each combination's first cell in `dense`, or `usize::MAX` when the filter leaves it out.
        let cell: Vec<usize> = (0..self.combos.len())
            .map(|c| if Self::combo_ok(s, c as u32) { pair_of[c] as usize * nb } else { usize::MAX })
            .collect();
        let parts = self.par_hours(s, |hours| {
            let mut dense = vec![0i64; pairs.len() * nb];
            for (_, h) in hours {
                for l in &h.lat {
                    let at = cell.get(l.combo as usize).copied().unwrap_or(usize::MAX);
                    if at != usize::MAX && Self::tag_ok(s, l.tag_set) {
                        dense[at + (l.bucket() as usize).min(nb - 1)] += i64::from(l.n());
                    }
                }
            }
            dense
        });
        let mut out: HashMap<(u32, u32), Vec<(i64, i64)>> = HashMap::new();
        for (i, pair) in pairs.iter().enumerate() {
            let hist: Vec<(i64, i64)> = (0..nb)
                .map(|b| (b as i64, parts.iter().map(|p| p[i * nb + b]).sum::<i64>()))
                .filter(|(_, n)| *n > 0)
                .collect();
            if !hist.is_empty() {
                out.insert(*pair, hist);
            }
        }
        out
    }

    /// Per tool id: (calls, distinct users, traces, spend). Two threads, each with dense sums per
    /// tool and a users bitmap per tool (or, past `MAX_TOOL_USER_BITS`, (tool, user) pairs
    /// deduplicated at the end).
    pub fn tools(&self, s: &Scope) -> HashMap<u32, (i64, i64, i64, i64)> {
        let k = match s.kind {
            TraceKind::Starts => 0,
            TraceKind::Provider => 1,
            TraceKind::Agent => 2,
            TraceKind::Pair => 3,
        };
        let (nt, words) = (self.tools.len(), self.users.len().div_ceil(64));
        let bitmap = nt * words * 64 <= MAX_TOOL_USER_BITS;
        let parts = self.par_hours(s, |hours| {
            let mut sums = vec![(0i64, 0i64, 0i64, 0i64); nt];
            let mut bits = vec![0u64; if bitmap { nt * words } else { 0 }];
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            for (_, h) in hours {
                for t in &h.tools {
                    if !self.row_ok(s, t.tag_set, t.combo) {
                        continue;
                    }
                    let e = &mut sums[t.tool as usize];
                    e.0 += i64::from(t.calls);
                    e.1 += i64::from(t.firsts[k]);
                    e.2 = e.2.saturating_add(t.cost);
                    e.3 += 1;
                    let u = self.user_of[t.tag_set as usize];
                    if u != NONE && t.calls > 0 {
                        if bitmap {
                            bits[t.tool as usize * words + u as usize / 64] |= 1 << (u % 64);
                        } else {
                            pairs.push((t.tool, u));
                        }
                    }
                }
            }
            (sums, bits, pairs)
        });
        let mut sums = vec![(0i64, 0i64, 0i64, 0i64); nt];
        let mut bits = vec![0u64; if bitmap { nt * words } else { 0 }];
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (ps, pb, pp) in parts {
            for (a, b) in sums.iter_mut().zip(ps) {
                a.0 += b.0;
                a.1 += b.1;
                a.2 += b.2;
                a.3 += b.3;
            }
            for (a, b) in bits.iter_mut().zip(pb) {
                *a |= b;
            }
            pairs.extend(pp);
        }
        let mut users = vec![0i64; nt];
        if bitmap {
            for (tool, n) in users.iter_mut().enumerate() {
                *n = bits[tool * words..(tool + 1) * words].iter().map(|w| i64::from(w.count_ones())).sum();
            }
        } else {
            pairs.sort_unstable();
            pairs.dedup();
            for (tool, _) in pairs {
                users[tool as usize] += 1;
            }
        }
        (0..nt)
            .filter(|i| sums[*i].3 > 0)
            .map(|i| (i as u32, (sums[i].0, users[i], sums[i].1, sums[i].2)))
            .collect()
    }

    /// Per group (`group_of` each tag set's group, `NONE` for the last group): sums, traces,
    /// and which tag sets had calls.
    pub fn per_group(&self, s: &Scope, group_of: &[u32], groups: usize) -> (Vec<Sums>, Vec<i64>, Vec<bool>) {
        let g = |ts: u32| match group_of[ts as usize] {
            NONE => groups,
            v => v as usize,
        };
        let (sums, mut traces, seen) = self.group_sums(s, groups, |rows, i| g(rows.tag_set[i]), true);
        for (t, k) in traces.iter_mut().zip(self.starts_per(s, groups + 1, g)) {
            *t += k;
        }
        (sums, traces, seen)
    }

    /// Per user (the last group: no user): sums and traces.
    pub fn per_user(&self, s: &Scope) -> (Vec<Sums>, Vec<i64>) {
        let n = self.users.len();
        let group = |u: u32| if u == NONE { n } else { u as usize };
        let (sums, mut traces, _) = self.group_sums(s, n, |rows, i| group(rows.user[i]), false);
        for (t, k) in traces.iter_mut().zip(self.starts_per(s, n + 1, |ts| group(self.user_of[ts as usize])))
        {
            *t += k;
        }
        (sums, traces)
    }

    /// Segments by user, the biggest `keep` only: ranked by spend, then calls, then name (rows
    /// without a user last among equals), as `(user or NONE, sums, traces)`, with the spend of
    /// all and the number of groups with calls. Ranking reads three columns (user, calls, spend)
    /// of every row; only the kept users' rows are read whole, found through each hour's fence.
    pub fn top_user_segments(&self, s: &Scope, keep: usize) -> (Vec<(u32, Sums, i64)>, i64, i64) {
        let n = self.users.len();
        let slot = |u: u32| if u == NONE { n } else { u as usize };
        let keys = self.fold(
            s,
            || vec![(0i64, 0i64); n + 1],
            |k, _, rows, i| {
                let e = &mut k[slot(rows.user[i])];
                e.0 = e.0.saturating_add(rows.cost[i]);
                e.1 += i64::from(rows.calls[i]);
            },
            |a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.0 += y.0;
                    x.1 += y.1;
                }
            },
        );
        let total_cost: i64 = keys.iter().map(|k| k.0).sum();
        let mut groups: Vec<usize> = (0..=n).filter(|g| keys[*g].1 > 0).collect();
        let total = groups.len() as i64;
        let name = |g: usize| (g < n).then(|| self.users.name(g as u32));
        let order = |a: &usize, b: &usize| {
            segment_order((keys[*a].0, keys[*a].1, || name(*a)), (keys[*b].0, keys[*b].1, || name(*b)))
        };
        if keep < groups.len() {
            groups.select_nth_unstable_by(keep, order);
            groups.truncate(keep);
        }
        groups.sort_unstable_by(order);
        let mut place = vec![NONE; n + 1];
        for (i, g) in groups.iter().enumerate() {
            place[*g] = i as u32;
        }
        let mut in_order: Vec<u32> = groups.iter().map(|g| if *g == n { NONE } else { *g as u32 }).collect();
        in_order.sort_unstable();
        let mut acc = self.fold_runs(
            s,
            |h| Self::runs_of_users(s, h, &in_order),
            || vec![(Sums::default(), 0i64); groups.len()],
            |acc, _, rows, row| {
                let p = place[slot(rows.user[row])];
                if p != NONE {
                    let r = &rows.get(row);
                    let a = &mut acc[p as usize];
                    a.0.add(r);
                    a.1 += Self::row_traces(s, &r.firsts);
                }
            },
            |a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.0.merge(&y.0);
                    x.1 += y.1;
                }
            },
        );
        self.each_start(s, |ts, k| {
            let p = place[slot(self.user_of[ts as usize])];
            if p != NONE {
                acc[p as usize].1 += k;
            }
        });
        let kept = groups
            .iter()
            .zip(acc)
            .map(|(g, (sums, traces))| (if *g == n { NONE } else { *g as u32 }, sums, traces))
            .collect();
        (kept, total_cost, total)
    }

    /// Sums and traces per group (`group` of a row; `groups` is the last, for rows in none) and,
    /// with `seen`, which tag sets had calls.
    fn group_sums(
        &self,
        s: &Scope,
        groups: usize,
        group: impl Fn(&Rows, usize) -> usize + Sync,
        seen: bool,
    ) -> (Vec<Sums>, Vec<i64>, Vec<bool>) {
        self.fold(
            s,
            || {
                (
                    vec![Sums::default(); groups + 1],
                    vec![0i64; groups + 1],
                    vec![false; if seen { self.tag_sets.len() } else { 0 }],
                )
            },
            |(sums, traces, had), _, rows, row| {
                let i = group(rows, row);
                let r = &rows.get(row);
                sums[i].add(r);
                traces[i] += Self::row_traces(s, &r.firsts);
                if seen {
                    had[r.tag_set as usize] |= r.calls > 0;
                }
            },
            |(sa, ta, xa), (sb, tb, xb)| {
                for (x, y) in sa.iter_mut().zip(&sb) {
                    x.merge(y);
                }
                for (x, y) in ta.iter_mut().zip(tb) {
                    *x += y;
                }
                for (x, y) in xa.iter_mut().zip(xb) {
                    *x |= y;
                }
            },
        )
    }

    /// The value id a tag set has for key id `key`.
    pub fn value_of(&self, tag_set: u32, key: u32) -> Option<u32> {
        self.tag_sets[tag_set as usize].kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// Tag keys of the live tag sets, alphabetically.
    pub fn tag_keys(&self) -> Vec<String> {
        let mut used = vec![false; self.keys.len()];
        for t in self.tag_sets.iter().filter(|t| t.live) {
            for (k, _) in &t.kv {
                used[*k as usize] = true;
            }
        }
        let mut keys: Vec<String> =
            (0..used.len()).filter(|k| used[*k]).map(|k| self.keys.name(k as u32).to_string()).collect();
        keys.sort();
        keys
    }
}
