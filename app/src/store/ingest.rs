//! Writing a batch of events and traces: idempotent on ids, priced once, appended to `events` and
//! `traces` in one transaction; the in-memory aggregate gets the batch's facts right after the
//! commit, while this writer still holds the connection (so aggregate updates follow commit order).

use super::cube::traces::TraceFact;
use super::cube::{CallFact, Delta, TraceSeen, tool_facts};
use super::event_keys::{EventKeys, MAX_ROWID};
use super::{Store, StoreError, hour_of};
use crate::pricing::{Cost, Usage, cost_of};
use sqlx::{Connection, QueryBuilder, Sqlite};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The tag key whose value is the end user.
pub const USER_TAG: &str = super::cube::USER_TAG;

/// One validated event, ready to store.
#[derive(Clone, Debug, Default)]
pub struct EventIn {
    pub id: String,
    pub trace_id: Option<String>,
    pub ts_ms: i64,
    pub kind: String,
    pub provider: String,
    pub model: String,
    pub agent: String,
    pub route_tag: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub usage: Usage,
    pub cost_override_nano: Option<i64>,
    pub latency_ms: Option<i64>,
    pub is_error: bool,
    /// The caller stopped the call (status `cancelled`); never also an error.
    pub cancelled: bool,
    /// Usage beyond the four buckets (reasoning, audio, estimated), JSON text.
    pub usage_detail: Option<String>,
    pub error: Option<String>,
    pub tools: Vec<String>,
    /// JSON text, or `None` when absent or dropped by privacy settings.
    pub prompt: Option<String>,
    pub response: Option<String>,
}

/// One validated trace record (a `withTrace` block).
#[derive(Clone, Debug, Default)]
pub struct TraceIn {
    pub id: String,
    pub route_tag: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub status: Option<String>,
}

/// Most events and traces one group commit takes.
const MAX_GROUP_ITEMS: usize = 20_000;

/// Where a batch's result goes.
type Reply = tokio::sync::oneshot::Sender<Result<IngestOutcome, StoreError>>;

/// A batch waiting for the writer, with where its result goes.
pub(crate) struct Job {
    project_id: i64,
    traces: Vec<TraceIn>,
    events: Vec<EventIn>,
    reply: Reply,
}

/// What a committed batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events and traces stored for the first time.
    pub accepted: u64,
    /// Events and traces already stored (a re-sent batch): not counted again.
    pub duplicates: u64,
}

fn canonical(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).unwrap_or_default()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An event with its tag set, route tag (inherited when it has none) and cost resolved.
pub struct Resolved<'a> {
    pub event: &'a EventIn,
    pub tag_set: i64,
    pub route_tag: Option<String>,
    pub cost: Cost,
}

/// What the new calls of a batch write and add: each call's "first in its trace" flags, each
/// trace's totals, and the aggregate's facts. Pure: computed from the resolved events and what
/// their traces already hold, so it is testable without a database.
#[derive(Default)]
pub struct CallsPlan {
    /// Per new call (parallel to the `new` indices given): `firsts` and the tool flag bytes.
    pub flags: HashMap<usize, (u8, Vec<u8>)>,
    /// Per trace: its share of the batch.
    pub traces: HashMap<String, TraceDelta>,
    pub facts: Vec<CallFact>,
}

/// One trace's share of a batch.
#[derive(Default)]
pub struct TraceDelta {
    pub tag_set: i64,
    pub route_tag: Option<String>,
    pub first_ts: i64,
    pub last_ts: i64,
    pub calls: i64,
    pub errors: i64,
    pub unpriced: i64,
    pub tokens: i64,
    pub cost_nano: i64,
    /// Distinct providers and agents of the trace's new calls.
    pub providers: Vec<String>,
    pub agents: Vec<String>,
}

/// Plans the calls `new` (indices into `resolved`, each stored for the first time): the trace
/// flags go to the earliest call first (ties: batch order), after what `seen` says each trace
/// already has.
pub fn plan_calls(resolved: &[Resolved], new: &[usize], mut seen: HashMap<String, TraceSeen>) -> CallsPlan {
    let mut plan = CallsPlan::default();
    let mut order: Vec<usize> = new.to_vec();
    order.sort_by_key(|i| (resolved[*i].event.ts_ms, *i));
    for i in order {
        let r = &resolved[i];
        let e = r.event;
        let (firsts, tool_flags) = match &e.trace_id {
            Some(id) => seen.entry(id.clone()).or_default().see(&e.provider, &e.agent, &e.tools),
            None => (0, vec![0; e.tools.len()]),
        };
        if let Some(id) = &e.trace_id {
            // A trace starts with the providers and agents of the calls it already has: those a
            // deleted record left (see `orphan_calls`) belong to the record made for it now.
            let t = plan.traces.entry(id.clone()).or_insert_with(|| {
                let (providers, agents) =
                    seen.get(id).map(TraceSeen::providers_and_agents).unwrap_or_default();
                TraceDelta {
                    tag_set: r.tag_set,
                    route_tag: r.route_tag.clone(),
                    first_ts: e.ts_ms,
                    last_ts: e.ts_ms,
                    providers: providers.to_vec(),
                    agents: agents.to_vec(),
                    ..TraceDelta::default()
                }
            });
            t.first_ts = t.first_ts.min(e.ts_ms);
            t.last_ts = t.last_ts.max(e.ts_ms);
            t.calls += 1;
            t.errors += i64::from(e.is_error);
            t.unpriced += i64::from(r.cost.nano().is_none());
            t.tokens += to_i64(e.usage.total());
            t.cost_nano = t.cost_nano.saturating_add(r.cost.nano().unwrap_or(0));
            if !t.providers.contains(&e.provider) {
                t.providers.push(e.provider.clone());
            }
            if !t.agents.contains(&e.agent) {
                t.agents.push(e.agent.clone());
            }
        }
        plan.facts.push(CallFact {
            tag_set: r.tag_set,
            ts_ms: e.ts_ms,
            provider: e.provider.clone(),
            model: e.model.clone(),
            agent: e.agent.clone(),
            input: e.usage.input,
            output: e.usage.output,
            cache_read: e.usage.cache_read,
            cache_creation: e.usage.cache_creation,
            cost: r.cost.nano(),
            latency_ms: e.latency_ms,
            is_error: e.is_error,
            firsts,
            tools: tool_facts(&e.tools, &tool_flags),
            ..CallFact::default()
        });
        plan.flags.insert(i, (firsts, tool_flags));
    }
    plan
}

impl Store {
    async fn tag_set_id(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        tags: &BTreeMap<String, String>,
        fresh: &mut HashMap<(i64, String), i64>,
    ) -> Result<i64, StoreError> {
        let canon = canonical(tags);
        let key = (project_id, canon);
        if let Some(id) = fresh.get(&key) {
            return Ok(*id);
        }
        if let Some(id) = self.tag_cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(id);
        }
        let existing: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM tag_sets WHERE project_id = ?1 AND canonical = ?2")
                .bind(project_id)
                .bind(&key.1)
                .fetch_optional(&mut *tx)
                .await?;
        let id = match existing {
            Some((id,)) => id,
            None => {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO tag_sets (project_id, canonical, user_id) VALUES (?1, ?2, ?3) RETURNING id",
                )
                .bind(project_id)
                .bind(&key.1)
                .bind(tags.get(USER_TAG))
                .fetch_one(&mut *tx)
                .await?;
                for (k, v) in tags {
                    sqlx::query("INSERT INTO tag_kv (key, value, tag_set_id) VALUES (?1, ?2, ?3)")
                        .bind(k)
                        .bind(v)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                id
            }
        };
        fresh.insert(key, id);
        Ok(id)
    }

    /// Finds or creates the tag sets of `maps` (into `fresh`): one lookup for those not cached,
    /// one insert for those not stored, one insert of their key/value pairs.
    async fn resolve_tag_sets<'m>(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        maps: impl Iterator<Item = &'m BTreeMap<String, String>>,
        fresh: &mut HashMap<(i64, String), i64>,
    ) -> Result<(), StoreError> {
        let mut wanted: HashMap<String, &BTreeMap<String, String>> = HashMap::new();
        {
            let mut cache = self.tag_cache.lock().unwrap_or_else(|e| e.into_inner());
            for m in maps {
                let key = (project_id, canonical(m));
                if fresh.contains_key(&key) {
                    continue;
                }
                match cache.get(&key) {
                    Some(id) => {
                        fresh.insert(key, id);
                    }
                    None => {
                        wanted.insert(key.1, m);
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let stored: Vec<(String, i64)> = rows_for_ids(
            tx,
            "SELECT canonical, id FROM tag_sets WHERE project_id = ",
            "canonical",
            project_id,
            wanted.keys().map(String::as_str),
        )
        .await?;
        for (canon, id) in stored {
            wanted.remove(&canon);
            fresh.insert((project_id, canon), id);
        }
        let new: Vec<(String, &BTreeMap<String, String>)> = wanted.into_iter().collect();
        for chunk in new.chunks(300) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO tag_sets (project_id, canonical, user_id) ");
            q.push_values(chunk, |mut b, (canon, tags)| {
                b.push_bind(project_id)
                    .push_bind(canon.as_str())
                    .push_bind(tags.get(USER_TAG).map(String::as_str));
            });
            q.push(" RETURNING id, canonical");
            let ids: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut *tx).await?;
            let by_canon: HashMap<&str, &BTreeMap<String, String>> =
                chunk.iter().map(|(c, t)| (c.as_str(), *t)).collect();
            let pairs: Vec<(&str, &str, i64)> = ids
                .iter()
                .filter_map(|(id, canon)| by_canon.get(canon.as_str()).map(|t| (t, *id)))
                .flat_map(|(t, id)| t.iter().map(move |(k, v)| (k.as_str(), v.as_str(), id)))
                .collect();
            for kv in pairs.chunks(300) {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO tag_kv (key, value, tag_set_id) ");
                q.push_values(kv, |mut b, (k, v, id)| {
                    b.push_bind(*k).push_bind(*v).push_bind(*id);
                });
                q.build().execute(&mut *tx).await?;
            }
            for (id, canon) in ids {
                fresh.insert((project_id, canon), id);
            }
        }
        Ok(())
    }

    /// Stores a batch durably and returns once it is committed. Events and traces whose id is
    /// already stored for the project are counted as duplicates and change nothing (a trace
    /// record completes the trace its events opened). An event without tags inherits the tags
    /// and route tag of its trace.
    ///
    /// Group commit: batches that arrive while the writer is busy wait in a queue, and the next
    /// writer takes them all into one transaction (one commit). If that transaction fails, each
    /// of its batches is retried alone, so one bad batch fails only itself.
    ///
    /// The commit appends to the WAL without waiting for the disk; the group's batches are
    /// answered once `sync_wal` has made the WAL durable, and the next group is written while
    /// that sync runs (so the writer never idles on the disk).
    pub async fn ingest(
        &self,
        project_id: i64,
        traces: &[TraceIn],
        events: &[EventIn],
    ) -> Result<IngestOutcome, StoreError> {
        if self.wal.failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(wal_failed());
        }
        let (reply, mut done) = tokio::sync::oneshot::channel();
        let job = Job { project_id, traces: traces.to_vec(), events: events.to_vec(), reply };
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push_back(job);
        loop {
            // The answer may come while this request waits for the writer (its batch went into
            // another request's group, which answers after its sync while the next group writes).
            let gate = tokio::select! {
                biased;
                answer = &mut done => return answer.unwrap_or_else(|_| Err(not_written())),
                gate = self.writer_gate.clone().lock_owned() => gate,
            };
            match done.try_recv() {
                Ok(result) => return result,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(not_written());
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
            let jobs: Vec<Job> = {
                let mut q = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let mut taken = Vec::new();
                let mut events = 0;
                while let Some(j) = q.front() {
                    if !taken.is_empty() && events + j.events.len() + j.traces.len() > MAX_GROUP_ITEMS {
                        break;
                    }
                    events += j.events.len() + j.traces.len();
                    taken.extend(q.pop_front());
                }
                taken
            };
            if jobs.is_empty() {
                // This batch is in a group that is committed and waiting for its sync.
                drop(gate);
                return done.await.unwrap_or_else(|_| Err(not_written()));
            }
            // A task of its own, holding the gate while it writes: a group once started is
            // finished (and answered) even if this request goes away.
            let store = self.clone();
            let _ = tokio::spawn(async move {
                let answers = store.commit_group(jobs).await;
                drop(gate);
                let synced = store.sync_wal().await;
                for (reply, result) in answers {
                    let result = match (&synced, result) {
                        (Err(e), Ok(_)) => Err(StoreError::Io(std::io::Error::new(e.kind(), e.to_string()))),
                        (_, result) => result,
                    };
                    let _ = reply.send(result);
                }
            })
            .await;
        }
    }

    /// Commits a group: its batches' answers, to send once the WAL is durable.
    async fn commit_group(&self, jobs: Vec<Job>) -> Vec<(Reply, Result<IngestOutcome, StoreError>)> {
        if jobs.len() > 1 {
            match self.write_jobs(&jobs).await {
                Ok(outcomes) => {
                    return jobs.into_iter().zip(outcomes).map(|(j, o)| (j.reply, Ok(o))).collect();
                }
                Err(e) => {
                    tracing::warn!(error = %e, batches = jobs.len(), "group commit failed; writing its batches one by one")
                }
            }
        }
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            let result = self.write_jobs(std::slice::from_ref(&job)).await.map(|o| o[0]);
            answers.push((job.reply, result));
        }
        answers
    }

    /// Makes every commit so far durable: fsync of the WAL file. Ingest's transactions commit
    /// with `synchronous = NORMAL` (the WAL is written, not synced; see `write_jobs`); the WAL
    /// is appended in commit order and SQLite recovers it up to the last intact commit, so once
    /// this returns, the groups committed before it survive a power cut as a FULL commit would.
    /// A failed sync is final for this process (see `Wal::failed`).
    async fn sync_wal(&self) -> std::io::Result<()> {
        if self.wal.failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(std::io::Error::other(WAL_FAILED));
        }
        let wal = self.wal.clone();
        let synced = tokio::task::spawn_blocking(move || {
            let file = {
                let mut held = wal.file.lock().unwrap_or_else(|e| e.into_inner());
                match &*held {
                    Some(file) => file.clone(),
                    None => held.insert(std::sync::Arc::new(std::fs::File::open(&wal.path)?)).clone(),
                }
            };
            file.sync_all()
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        if let Err(e) = &synced {
            self.wal.failed.store(true, std::sync::atomic::Ordering::Release);
            tracing::error!(error = %e, wal = %self.wal.path.display(), "{WAL_FAILED}");
        }
        synced
    }

    /// Writes batches in one transaction, then updates the aggregate (still holding the writer).
    /// The commit is not synced: the caller answers only after `sync_wal`.
    async fn write_jobs(&self, jobs: &[Job]) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut fresh_tags = HashMap::new();
        let mut fresh_texts = super::texts::TextIds::new();
        let started = std::time::Instant::now();
        let keys = self.event_keys().await?;
        let mut conn = self.write.acquire().await?;
        self.pace.ingest_wrote();
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
        // Every other write on this connection (keys, settings, deletions) commits synced: a
        // connection not set back (an error, a panic) is closed rather than reused.
        let mut unsynced = CloseUnlessReset { conn: &mut conn, reset: false };
        let fresh = (&mut fresh_tags, &mut fresh_texts);
        let result = self.write_tx(unsynced.conn, jobs, keys, fresh, started).await;
        unsynced.reset = sqlx::query("PRAGMA synchronous = FULL").execute(&mut **unsynced.conn).await.is_ok();
        drop(unsynced);
        let (done, written_keys, written) = result?;
        let committed = started.elapsed();
        {
            let mut index = keys.write().unwrap_or_else(|e| e.into_inner());
            for (h, rowids) in written_keys {
                for rowid in rowids {
                    index.insert(h, rowid);
                }
            }
        }
        for (j, (_, delta)) in jobs.iter().zip(&done) {
            if !delta.is_empty() {
                self.apply_delta(j.project_id, delta);
            }
        }
        // The cache gets the new tag sets before the writer is free: a deletion after that
        // clears them with the rest.
        self.tag_cache.lock().unwrap_or_else(|e| e.into_inner()).extend(fresh_tags);
        self.text_cache.lock().unwrap_or_else(|e| e.into_inner()).extend(fresh_texts);
        drop(conn);
        tracing::debug!(
            batches = jobs.len(),
            items = jobs.iter().map(|j| j.events.len() + j.traces.len()).sum::<usize>(),
            write_us = written.as_micros() as u64,
            commit_us = (committed - written).as_micros() as u64,
            apply_us = (started.elapsed() - committed).as_micros() as u64,
            "ingest group committed"
        );
        let stored: Vec<i64> =
            jobs.iter().zip(&done).filter(|(_, (o, _))| o.accepted > 0).map(|(j, _)| j.project_id).collect();
        if !stored.is_empty() {
            self.bump_version(stored);
        }
        Ok(done.into_iter().map(|(o, _)| o).collect())
    }

    /// The group's transaction: each batch's outcome and aggregate delta, the calls' keys, and
    /// the time from `started` to the commit (for the group's debug log).
    async fn write_tx(
        &self,
        conn: &mut sqlx::SqliteConnection,
        jobs: &[Job],
        keys: &std::sync::RwLock<EventKeys>,
        (fresh_tags, fresh_texts): (&mut HashMap<(i64, String), i64>, &mut super::texts::TextIds),
        started: std::time::Instant,
    ) -> Result<(Vec<(IngestOutcome, Delta)>, HashMap<u32, Vec<i64>>, std::time::Duration), StoreError> {
        let mut seqs = HashMap::new();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        catch_up_keys(&mut tx, keys).await?;
        let keys = GroupKeys { index: keys, written: HashMap::new() };
        let mut group = Group { fresh_tags, fresh_texts, seqs: &mut seqs, keys };
        let mut done = Vec::with_capacity(jobs.len());
        for j in jobs {
            let (p, t, e) = (j.project_id, &j.traces, &j.events);
            done.push(self.write_batch(&mut tx, p, t, e, &mut group).await?);
        }
        let written = started.elapsed();
        let written_keys = group.keys.written;
        tx.commit().await?;
        Ok((done, written_keys, written))
    }

    /// One batch's writes inside the group's transaction: its outcome and its aggregate delta.
    async fn write_batch(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        traces: &[TraceIn],
        events: &[EventIn],
        group: &mut Group<'_>,
    ) -> Result<(IngestOutcome, Delta), StoreError> {
        let Group { fresh_tags, fresh_texts, seqs, keys } = group;
        let mut out = IngestOutcome::default();
        let mut delta = Delta::default();
        let mut delta_tag_sets: HashSet<i64> = HashSet::new();
        // In privacy mode `minimal` prompts and responses are never bound, so never written.
        let (privacy,): (String,) = sqlx::query_as("SELECT privacy FROM projects WHERE id = ?1")
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await?;
        let keep_content = privacy != "minimal";

        // The stored traces this batch touches.
        let mut known = existing_traces(
            tx,
            project_id,
            traces.iter().map(|t| t.id.as_str()).chain(events.iter().filter_map(|e| e.trace_id.as_deref())),
        )
        .await?;

        // Every tags map the batch names, resolved to tag sets in a few multi-row statements.
        let maps = traces
            .iter()
            .map(|t| &t.tags)
            .chain(events.iter().filter(|e| !e.tags.is_empty()).map(|e| &e.tags));
        self.resolve_tag_sets(tx, project_id, maps, fresh_tags).await?;

        // Traces sent as records: new ones start a trace; an earlier start moves it.
        let mut batch_traces: HashMap<&str, (i64, Option<&str>)> = HashMap::new();
        let mut trace_rows = Vec::with_capacity(traces.len());
        // The traces this batch creates or changes (the aggregate gets each one's state).
        let mut changed: HashSet<&str> = HashSet::new();
        for t in traces {
            let tag_set = self.tag_set_id(tx, project_id, &t.tags, fresh_tags).await?;
            if delta_tag_sets.insert(tag_set) {
                delta.tag_sets.push((tag_set, t.tags.clone()));
            }
            batch_traces.entry(t.id.as_str()).or_insert((tag_set, t.route_tag.as_deref()));
            let seq = match known.get_mut(t.id.as_str()) {
                None => {
                    out.accepted += 1;
                    delta.starts.push((hour_of(t.started_ms), tag_set, 1));
                    let seq = self.next_trace_seq(tx, project_id, seqs).await?;
                    known.insert(
                        t.id.clone(),
                        Known { tag_set, route: t.route_tag.clone(), started: t.started_ms, seq, new: true },
                    );
                    seq
                }
                Some(k) => {
                    out.duplicates += 1;
                    if t.started_ms < k.started {
                        delta.starts.push((hour_of(k.started), k.tag_set, -1));
                        delta.starts.push((hour_of(t.started_ms), k.tag_set, 1));
                        k.started = t.started_ms;
                    }
                    if t.route_tag.is_some() {
                        k.route = t.route_tag.clone();
                    }
                    k.seq
                }
            };
            changed.insert(t.id.as_str());
            trace_rows.push((t, tag_set, seq));
        }
        for chunk in trace_rows.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO traces (project_id, id, route_tag, tag_set_id, started_at, ended_at, status, seq) ",
            );
            q.push_values(chunk, |mut b, (t, tag_set, seq)| {
                b.push_bind(project_id)
                    .push_bind(&t.id)
                    .push_bind(&t.route_tag)
                    .push_bind(*tag_set)
                    .push_bind(t.started_ms)
                    .push_bind(t.ended_ms)
                    .push_bind(&t.status)
                    .push_bind(i64::from(*seq));
            });
            // A trace first seen through its events keeps its tag set.
            q.push(
                " ON CONFLICT (project_id, id) DO UPDATE SET route_tag = COALESCE(excluded.route_tag, traces.route_tag),
                  ended_at = COALESCE(excluded.ended_at, traces.ended_at), status = COALESCE(excluded.status, traces.status),
                  started_at = MIN(traces.started_at, excluded.started_at)",
            );
            q.build().execute(&mut *tx).await?;
        }

        // Tags of events that carry none come from their trace (in this batch, or stored).
        let mut resolved = Vec::with_capacity(events.len());
        for e in events {
            let inherited = match (&e.trace_id, e.tags.is_empty()) {
                (Some(id), true) => batch_traces
                    .get(id.as_str())
                    .map(|(ts, rt)| (*ts, rt.map(str::to_string)))
                    .or_else(|| known.get(id.as_str()).map(|k| (k.tag_set, k.route.clone()))),
                _ => None,
            };
            let (tag_set, route_tag) = match inherited {
                Some((ts, rt)) => (ts, e.route_tag.clone().or(rt)),
                None => {
                    let ts = self.tag_set_id(tx, project_id, &e.tags, fresh_tags).await?;
                    if delta_tag_sets.insert(ts) {
                        delta.tag_sets.push((ts, e.tags.clone()));
                    }
                    (ts, e.route_tag.clone())
                }
            };
            let cost = cost_of(&e.provider, &e.model, &e.usage, e.cost_override_nano);
            resolved.push(Resolved { event: e, tag_set, route_tag, cost });
        }

        // Which events are new: not stored, and the first with their id in the batch.
        let hashes: HashMap<&str, u32> =
            events.iter().map(|e| (e.id.as_str(), self.key_hash(project_id, &e.id))).collect();
        let stored_events = keys.stored(tx, project_id, hashes.values().copied()).await?;
        let mut batch_ids: HashSet<&str> = HashSet::new();
        let new: Vec<usize> = (0..resolved.len())
            .filter(|i| {
                let id = resolved[*i].event.id.as_str();
                !stored_events.contains(id) && batch_ids.insert(id)
            })
            .collect();
        out.accepted += new.len() as u64;
        out.duplicates += (resolved.len() - new.len()) as u64;

        // What the traces' stored calls already have (their providers, agents and tools); asked
        // for every trace, as calls can outlive their trace's row (retention, deletion).
        let asked: HashSet<&str> =
            new.iter().filter_map(|i| resolved[*i].event.trace_id.as_deref()).collect();
        let seen = trace_calls(
            tx,
            project_id,
            asked.into_iter().map(|id| (id, known.get(id).map(|k| k.seq))).collect(),
        )
        .await?;
        let plan = plan_calls(&resolved, &new, seen);

        // Records are named for a start after a crash (see `derived::replay_tail`), which finds
        // the traces of calls stored after the saved aggregate by those calls: only a record
        // without a new call of its trace in this batch needs its own entry.
        let touched: Vec<&str> = trace_rows
            .iter()
            .map(|(t, _, _)| t.id.as_str())
            .filter(|id| !plan.traces.contains_key(*id))
            .collect();
        for chunk in touched.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO trace_touches (project_id, trace_id) ");
            q.push_values(chunk, |mut b, id| {
                b.push_bind(project_id).push_bind(*id);
            });
            q.build().execute(&mut *tx).await?;
        }

        // Traces not stored before (neither by an earlier batch nor as a record in this one)
        // start at their first call; all get their calls' totals added.
        let mut per_trace = Vec::with_capacity(plan.traces.len());
        for (id, t) in &plan.traces {
            let seq = match known.get(id.as_str()) {
                Some(k) => k.seq,
                None => {
                    delta.starts.push((hour_of(t.first_ts), t.tag_set, 1));
                    let seq = self.next_trace_seq(tx, project_id, seqs).await?;
                    let route = t.route_tag.clone();
                    let k = Known { tag_set: t.tag_set, route, started: t.first_ts, seq, new: true };
                    known.insert(id.clone(), k);
                    seq
                }
            };
            changed.insert(id.as_str());
            per_trace.push((id, t, seq));
        }
        let seq_of: HashMap<&str, u32> = per_trace.iter().map(|(id, _, seq)| (id.as_str(), *seq)).collect();
        // Prompts and responses as the numbers of their messages' rows (see `texts`).
        let texts: Vec<Option<&str>> = (new.iter().map(|i| resolved[*i].event.prompt.as_deref()))
            .chain(new.iter().map(|i| resolved[*i].event.response.as_deref()))
            .map(|text| text.filter(|_| keep_content))
            .collect();
        let mut prompts = super::texts::store(tx, &self.text_cache, fresh_texts, project_id, &texts).await?;
        let responses = prompts.split_off(new.len());
        let kept: HashMap<usize, (Option<String>, Option<String>)> =
            new.iter().copied().zip(prompts.into_iter().zip(responses)).collect();
        let rows: Vec<&usize> = new.iter().collect();
        for chunk in rows.chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (project_id, id, trace_id, ts, kind, provider, model, agent, route_tag,
                   tag_set_id, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                   cache_creation_1h_tokens, cost_nano, cost_source, latency_ms, status, error, tools,
                   prompt_texts, response_texts, firsts, tool_firsts, usage_detail, trace_seq) ",
            );
            q.push_values(chunk, |mut b, i| {
                let Resolved { event: e, tag_set, route_tag, cost } = &resolved[**i];
                let (firsts, tool_flags) = plan.flags.get(*i).cloned().unwrap_or_default();
                let tools =
                    (!e.tools.is_empty()).then(|| serde_json::to_string(&e.tools).unwrap_or_default());
                b.push_bind(project_id)
                    .push_bind(&e.id)
                    .push_bind(&e.trace_id)
                    .push_bind(e.ts_ms)
                    .push_bind(&e.kind)
                    .push_bind(&e.provider)
                    .push_bind(&e.model)
                    .push_bind(&e.agent)
                    .push_bind(route_tag)
                    .push_bind(*tag_set)
                    .push_bind(to_i64(e.usage.input))
                    .push_bind(to_i64(e.usage.output))
                    .push_bind(to_i64(e.usage.cache_read))
                    .push_bind(to_i64(e.usage.cache_creation))
                    .push_bind(to_i64(e.usage.cache_creation_1h))
                    .push_bind(cost.nano())
                    .push_bind(cost.source())
                    .push_bind(e.latency_ms)
                    .push_bind(match (e.is_error, e.cancelled) {
                        (true, _) => "error",
                        (false, true) => "cancelled",
                        (false, false) => "ok",
                    })
                    .push_bind(&e.error)
                    .push_bind(tools)
                    .push_bind(kept.get(*i).and_then(|k| k.0.clone()))
                    .push_bind(kept.get(*i).and_then(|k| k.1.clone()))
                    .push_bind(i64::from(firsts))
                    .push_bind((!tool_flags.is_empty()).then_some(tool_flags))
                    .push_bind(&e.usage_detail)
                    .push_bind(e.trace_id.as_deref().and_then(|t| seq_of.get(t)).map(|s| i64::from(*s)));
            });
            // One statement under the write lock: its rows take consecutive rowids in the order
            // of its VALUES (AUTOINCREMENT gives each one past the largest yet), ending at the last
            // insert rowid. No RETURNING: a row back per call crossed to this task one by one.
            let written = q.build().execute(&mut *tx).await?;
            if written.rows_affected() != chunk.len() as u64 {
                return Err(StoreError::Io(std::io::Error::other("a call of the batch was not stored")));
            }
            let first = written.last_insert_rowid() - chunk.len() as i64 + 1;
            let hash_of = |i: &usize| hashes.get(resolved[*i].event.id.as_str()).copied().unwrap_or(0);
            keys.add(tx, chunk.iter().zip(first..).map(|(i, rowid)| (hash_of(i), rowid))).await?;
        }

        for chunk in per_trace.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO traces (project_id, id, route_tag, tag_set_id, started_at, calls, errors, unpriced,
                   tokens, cost_nano, last_event_at, seq) ",
            );
            q.push_values(chunk, |mut b, (id, t, seq)| {
                b.push_bind(project_id)
                    .push_bind(id.as_str())
                    .push_bind(t.route_tag.as_deref())
                    .push_bind(t.tag_set)
                    .push_bind(t.first_ts)
                    .push_bind(t.calls)
                    .push_bind(t.errors)
                    .push_bind(t.unpriced)
                    .push_bind(t.tokens)
                    .push_bind(t.cost_nano)
                    .push_bind(t.last_ts)
                    .push_bind(i64::from(*seq));
            });
            q.push(
                " ON CONFLICT (project_id, id) DO UPDATE SET calls = calls + excluded.calls,
                   errors = errors + excluded.errors, unpriced = unpriced + excluded.unpriced,
                   tokens = CASE WHEN tokens > 9223372036854775807 - excluded.tokens THEN 9223372036854775807
                                 ELSE tokens + excluded.tokens END,
                   cost_nano = CASE WHEN cost_nano > 9223372036854775807 - excluded.cost_nano THEN 9223372036854775807
                                    ELSE cost_nano + excluded.cost_nano END,
                   last_event_at = MAX(COALESCE(last_event_at, excluded.last_event_at), excluded.last_event_at)",
            );
            q.build().execute(&mut *tx).await?;
        }
        delta.traces = changed
            .into_iter()
            .filter_map(|id| {
                let k = known.get(id)?;
                let t = plan.traces.get(id);
                Some(TraceFact {
                    seq: k.seq,
                    new: k.new,
                    tag_set: k.tag_set,
                    start_ms: k.started,
                    route: k.route.clone(),
                    calls: t.map_or(0, |t| t.calls),
                    tokens: t.map_or(0, |t| t.tokens),
                    cost: t.map_or(0, |t| t.cost_nano),
                    providers: t.map(|t| t.providers.clone()).unwrap_or_default(),
                    agents: t.map(|t| t.agents.clone()).unwrap_or_default(),
                })
            })
            .collect();
        delta.calls = plan.facts;
        Ok((out, delta))
    }

    /// The next `traces.seq` of a project within this transaction (`seqs`), first read from
    /// the table inside it (one index lookup): the transaction holds the write lock, so another
    /// process writing the same file (the CLI's `demo`) can't take the same numbers.
    async fn next_trace_seq(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        seqs: &mut HashMap<i64, u32>,
    ) -> Result<u32, StoreError> {
        let next = match seqs.get(&project_id) {
            Some(n) => *n,
            None => {
                let (n,): (i64,) =
                    sqlx::query_as("SELECT COALESCE(MAX(seq) + 1, 0) FROM traces WHERE project_id = ?1")
                        .bind(project_id)
                        .fetch_one(&mut *tx)
                        .await?;
                u32::try_from(n).map_err(|_| StoreError::Invalid("the project has too many traces".into()))?
            }
        };
        let after = next
            .checked_add(1)
            .ok_or_else(|| StoreError::Invalid("the project has too many traces".into()))?;
        seqs.insert(project_id, after);
        Ok(next)
    }
}

/// Closes the writer's connection when it goes back to the pool unless `reset` says its
/// `synchronous` is FULL again.
struct CloseUnlessReset<'a> {
    conn: &'a mut sqlx::pool::PoolConnection<Sqlite>,
    reset: bool,
}

impl Drop for CloseUnlessReset<'_> {
    fn drop(&mut self) {
        if !self.reset {
            self.conn.close_on_drop();
        }
    }
}

const WAL_FAILED: &str = "syncing the WAL failed: batches are refused until tokentally restarts";

fn wal_failed() -> StoreError {
    StoreError::Io(std::io::Error::other(WAL_FAILED))
}

/// A batch whose group ended without answering it (a panic): a server error, so the client
/// sends it again (ids make that safe).
fn not_written() -> StoreError {
    StoreError::Io(std::io::Error::other("the batch was not written"))
}

/// What the batches of one group commit share: tag sets and trace numbers taken so far, and
/// the calls written.
struct Group<'a> {
    fresh_tags: &'a mut HashMap<(i64, String), i64>,
    /// Messages stored in `texts` by this transaction (see `texts`).
    fresh_texts: &'a mut super::texts::TextIds,
    seqs: &'a mut HashMap<i64, u32>,
    keys: GroupKeys<'a>,
}

/// The event keys as one group commit sees them: the in-memory index (calls committed before)
/// and the calls this transaction wrote so far.
struct GroupKeys<'a> {
    index: &'a std::sync::RwLock<EventKeys>,
    written: HashMap<u32, Vec<i64>>,
}

impl GroupKeys<'_> {
    /// The ids of stored calls (in this project) among those whose hash is one of `hashes`:
    /// every candidate rowid is confirmed by reading its call.
    async fn stored(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        hashes: impl Iterator<Item = u32>,
    ) -> Result<HashSet<String>, StoreError> {
        let mut rowids: Vec<i64> = Vec::new();
        {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            for h in hashes {
                rowids.extend(index.candidates(h));
                rowids.extend(self.written.get(&h).into_iter().flatten());
            }
        }
        let found: Vec<(String,)> = rows_for_ids(
            tx,
            "SELECT id FROM events WHERE project_id = ",
            "rowid",
            project_id,
            rowids.into_iter(),
        )
        .await?;
        Ok(found.into_iter().map(|(id,)| id).collect())
    }

    /// Records calls just written: in `event_keys` (same transaction) and for the rest of the group.
    async fn add(
        &mut self,
        tx: &mut sqlx::SqliteConnection,
        calls: impl Iterator<Item = (u32, i64)>,
    ) -> Result<(), StoreError> {
        let calls: Vec<(u32, i64)> = calls.collect();
        if calls.iter().any(|(_, rowid)| *rowid > MAX_ROWID) {
            return Err(StoreError::Invalid("the database holds the most calls it can (2^32)".into()));
        }
        for chunk in calls.chunks(5_000) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO event_keys (event, h) ");
            q.push_values(chunk, |mut b, (h, rowid)| {
                b.push_bind(*rowid).push_bind(i64::from(*h));
            });
            q.build().execute(&mut *tx).await?;
        }
        for (h, rowid) in calls {
            self.written.entry(h).or_default().push(rowid);
        }
        Ok(())
    }
}

/// Reads the `event_keys` rows another process wrote since the index was read (the CLI's
/// `demo` into a file a server has open). Rowids are never given twice (migration 10), so the
/// rows past the last one read are all the new ones; ingest reads them inside its transaction.
pub(super) async fn catch_up_keys(
    tx: &mut sqlx::SqliteConnection,
    keys: &std::sync::RwLock<EventKeys>,
) -> Result<(), StoreError> {
    let after = keys.read().unwrap_or_else(|e| e.into_inner()).loaded_to;
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT event, h FROM event_keys WHERE event > ?1")
        .bind(after)
        .fetch_all(&mut *tx)
        .await?;
    if !rows.is_empty() {
        let mut index = keys.write().unwrap_or_else(|e| e.into_inner());
        for (rowid, h) in rows {
            index.insert(h as u32, rowid);
        }
    }
    Ok(())
}

/// A stored trace a batch touches.
struct Known {
    tag_set: i64,
    route: Option<String>,
    started: i64,
    seq: u32,
    /// Stored by this batch.
    new: bool,
}

/// Rows of `select` (which ends in `project_id = `) whose `column` is one of `ids` (text ids,
/// rowids, seqs), read with the ids bound in chunks of 1,000 (SQLite caps bound parameters per
/// statement).
pub(super) async fn rows_for_ids<'a, K, R>(
    tx: &mut sqlx::SqliteConnection,
    select: &'static str,
    column: &'static str,
    project_id: i64,
    ids: impl Iterator<Item = K>,
) -> Result<Vec<R>, StoreError>
where
    K: sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Copy + Eq + std::hash::Hash + Send + 'a,
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let ids: Vec<K> = ids.collect::<HashSet<_>>().into_iter().collect();
    let mut found = Vec::new();
    for chunk in ids.chunks(1_000) {
        let mut q = QueryBuilder::<Sqlite>::new(select);
        q.push_bind(project_id).push(" AND ").push(column).push(" IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        found.extend(q.build_query_as::<R>().fetch_all(&mut *tx).await?);
    }
    Ok(found)
}

/// Stored traces among `ids`.
async fn existing_traces<'a>(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Known>, StoreError> {
    let rows: Vec<(String, i64, Option<String>, i64, i64)> = rows_for_ids(
        tx,
        "SELECT id, tag_set_id, route_tag, started_at, seq FROM traces WHERE project_id = ",
        "id",
        project_id,
        ids,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, tag_set, route, started, seq)| {
            (id, Known { tag_set, route, started, seq: seq as u32, new: false })
        })
        .collect())
}

/// Calls whose trace record was deleted (retention, user deletion) give up its seq: the seq
/// may be taken again, and the calls stay findable by their trace id (see migration 11).
pub(super) async fn orphan_calls(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    seqs: &[i64],
) -> Result<(), StoreError> {
    for chunk in seqs.chunks(1_000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "UPDATE events SET trace_seq = NULL WHERE trace_seq IS NOT NULL AND project_id = ",
        );
        q.push_bind(project_id).push(" AND trace_seq IN (");
        let mut list = q.separated(", ");
        for seq in chunk {
            list.push_bind(*seq);
        }
        q.push(")");
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// What the stored calls of these traces (ids, with the seq of those that have a record) already
/// have: providers, agents, tools. Calls are found by the trace's seq, and by its id among the
/// calls stored without a seq (see migration 11).
async fn trace_calls(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    traces: Vec<(&str, Option<u32>)>,
) -> Result<HashMap<String, TraceSeen>, StoreError> {
    let mut rows: Vec<(String, String, String, Option<String>)> = rows_for_ids(
        tx,
        // No `trace_id IS NOT NULL` term: with it SQLite reads the IN list as a range.
        "SELECT trace_id, provider, agent, tools FROM events INDEXED BY events_trace
          WHERE trace_seq IS NULL AND project_id = ",
        "trace_id",
        project_id,
        traces.iter().map(|(id, _)| *id),
    )
    .await?;
    let by_seq: Vec<(String, String, String, Option<String>)> = rows_for_ids(
        tx,
        "SELECT trace_id, provider, agent, tools FROM events INDEXED BY events_trace_seq
          WHERE trace_seq IS NOT NULL AND project_id = ",
        "trace_seq",
        project_id,
        traces.iter().filter_map(|(_, seq)| seq.map(i64::from)),
    )
    .await?;
    rows.extend(by_seq);
    let mut seen: HashMap<String, TraceSeen> = HashMap::new();
    for (trace, provider, agent, tools) in rows {
        let tools: Vec<String> = tools.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        seen.entry(trace).or_default().see(&provider, &agent, &tools);
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> EventIn {
        EventIn {
            id: id.into(),
            ts_ms: 1_800_000_000_000,
            kind: "llm".into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            tags: BTreeMap::from([("userId".to_string(), "u1".to_string())]),
            ..EventIn::default()
        }
    }

    /// Batches queued behind a busy writer go into one transaction; when one of them fails
    /// (here: a project that does not exist), the others are still committed, each once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_fails_alone_in_a_group_commit() {
        let dir = super::super::scratch_dir("group");
        let store = Store::open(&dir.join("t.db")).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        let gate = store.writer_gate.lock().await;
        let mut waiting = Vec::new();
        for i in 0..8 {
            let (store, target) = (store.clone(), if i % 2 == 0 { project } else { 999_999 });
            waiting.push(tokio::spawn(
                async move { store.ingest(target, &[], &[call(&format!("e{i}"))]).await },
            ));
        }
        // Every batch is queued before the writer is free again.
        while store.pending.lock().map(|q| q.len()).unwrap_or(0) < 8 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(gate);
        for (i, w) in waiting.into_iter().enumerate() {
            let result = w.await.expect("task");
            if i % 2 == 0 {
                assert_eq!(result.expect("a good batch commits").accepted, 1, "batch {i}");
            } else {
                assert!(result.is_err(), "batch {i} names no project");
            }
        }
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&store.read).await.expect("count");
        assert_eq!(n, 4);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A batch is answered only once the WAL holding its commit is synced: with nothing at the
    /// WAL's path when the sync first opens it, the batch is refused (its commit stands: after a
    /// restart a resend counts it once), every later batch is refused without being written
    /// until that restart, and the writer's other writes are back to synced commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_answered_only_after_its_wal_is_synced() {
        let dir = super::super::scratch_dir("sync");
        let path = dir.join("t.db");
        let store = Store::open(&path).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        let (wal, moved) = (super::super::beside(&path, "-wal"), super::super::beside(&path, "-wal-moved"));
        // SQLite keeps writing the open file (no new connection opens meanwhile: the event keys
        // are read first); only the sync, which opens the path at its first use, finds nothing.
        store.event_keys().await.expect("event keys");
        std::fs::rename(&wal, &moved).expect("move the WAL");
        let refused = store.ingest(project, &[], &[call("a")]).await.expect_err("nothing to sync");
        assert!(matches!(refused, StoreError::Io(_)), "{refused}");
        std::fs::rename(&moved, &wal).expect("put the WAL back");
        let refused = store.ingest(project, &[], &[call("b")]).await.expect_err("refused until a restart");
        assert!(matches!(refused, StoreError::Io(_)), "{refused}");
        let (calls,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(&store.read).await.expect("count");
        assert_eq!(calls, 1, "the first batch's commit stands, the second was not written");
        let (synchronous,): (i64,) =
            sqlx::query_as("PRAGMA synchronous").fetch_one(&store.write).await.expect("pragma");
        assert_eq!(synchronous, 2, "FULL again after the group");
        store.close().await;
        let store = Store::open(&path).await.expect("reopen");
        let resent = store.ingest(project, &[], &[call("a"), call("b")]).await.expect("ingest");
        assert_eq!(resent, IngestOutcome { accepted: 1, duplicates: 1 });
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A database opened through a symlink keeps its WAL beside the real file, and that is
    /// the file ingest syncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingest_syncs_the_wal_beside_the_real_file() {
        let dir = super::super::scratch_dir("link");
        std::fs::create_dir_all(dir.join("real")).expect("temp dir");
        let link = dir.join("link.db");
        std::os::unix::fs::symlink(dir.join("real").join("t.db"), &link).expect("symlink");
        let store = Store::open(&link).await.expect("open through the link");
        let project = store.ensure_project("p").await.expect("project");
        assert_eq!(store.ingest(project, &[], &[call("a")]).await.expect("ingest").accepted, 1);
        assert!(dir.join("real").join("t.db-wal").exists() && !super::super::beside(&link, "-wal").exists());
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Event ids are found without a key on them in SQLite: a re-sent id counts once in the
    /// same group, after a restart, after another process wrote it, and after the upgrade that
    /// hashes calls stored before; a deleted call's id is new again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_id_counts_once_however_it_comes_back() {
        let dir = super::super::scratch_dir("keys");
        let path = dir.join("t.db");
        let store = Store::open(&path).await.expect("open");
        let project = store.ensure_project("p").await.expect("project");
        let other = store.ensure_project("q").await.expect("project");
        let sent = |ids: &[&str]| ids.iter().map(|id| call(id)).collect::<Vec<_>>();
        let outcome = |accepted, duplicates| IngestOutcome { accepted, duplicates };

        // Twice in one batch, and in two batches of one group commit.
        assert_eq!(store.ingest(project, &[], &sent(&["a", "b", "a"])).await.expect("ingest"), outcome(2, 1));
        let gate = store.writer_gate.lock().await;
        let waiting: Vec<_> = ["c", "c"]
            .into_iter()
            .map(|id| {
                let (store, batch) = (store.clone(), sent(&[id]));
                tokio::spawn(async move { store.ingest(project, &[], &batch).await })
            })
            .collect();
        while store.pending.lock().map(|q| q.len()).unwrap_or(0) < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(gate);
        let mut accepted = 0;
        for w in waiting {
            accepted += w.await.expect("task").expect("ingest").accepted;
        }
        assert_eq!(accepted, 1, "the same id in two batches of one group");
        // The same id in another project is another call.
        assert_eq!(store.ingest(other, &[], &sent(&["a"])).await.expect("ingest"), outcome(1, 0));
        assert!(store.get_event(project, "b").await.expect("read").is_some());
        assert!(store.get_event(other, "b").await.expect("read").is_none());
        assert!(store.get_event(project, "zz").await.expect("read").is_none());

        // Another process writes "d" while this one has its keys in memory.
        let second = Store::open(&path).await.expect("open again");
        assert_eq!(second.ingest(project, &[], &sent(&["d"])).await.expect("ingest"), outcome(1, 0));
        second.close().await;
        assert_eq!(store.ingest(project, &[], &sent(&["d", "e"])).await.expect("ingest"), outcome(1, 1));
        assert!(store.get_event(project, "e").await.expect("read").is_some());
        store.close().await;

        // A restart reads the keys from the file; calls without one (stored before the upgrade)
        // are hashed at open.
        let store = Store::open(&path).await.expect("reopen");
        assert_eq!(store.ingest(project, &[], &sent(&["a", "f"])).await.expect("ingest"), outcome(1, 1));
        sqlx::query("DELETE FROM event_keys WHERE event > 2").execute(&store.write).await.expect("unkey");
        store.close().await;
        let store = Store::open(&path).await.expect("reopen");
        let (keys,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM event_keys").fetch_one(&store.read).await.expect("count");
        assert_eq!(keys, 7, "a, b, c, a (q), d, e, f");
        assert_eq!(
            store.ingest(project, &[], &sent(&["c", "d", "f", "g"])).await.expect("ingest"),
            outcome(1, 3)
        );
        assert!(store.get_event(project, "f").await.expect("read").is_some());

        // A deleted call's key goes with it, in the file and in memory.
        let removed = store.delete_user(project, "u1", "test").await.expect("delete");
        assert_eq!(removed.events, 7);
        let (keys,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM event_keys").fetch_one(&store.read).await.expect("count");
        assert_eq!(keys, 1, "only project q's call is left");
        assert!(store.get_event(project, "a").await.expect("read").is_none());
        assert_eq!(store.ingest(project, &[], &sent(&["a"])).await.expect("ingest"), outcome(1, 0));
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
