//! The registry of derived data: everything computed from the stored calls lives in one
//! in-memory aggregate (`cube`), rebuilt from SQLite at start and kept in step by ingest
//! (`apply_delta`), user deletion (`forget_in_cube`) and retention (`drop_in_cube`). Trace totals
//! in `traces` are written with their calls, in the same transaction, and deleted with them.

use super::cube::traces::{Share, TraceFact, TraceMask};
use super::cube::{CallFact, Cube, Delta, ProjectCube, TraceSeen, tool_facts};
use super::{Store, StoreError};
use sqlx::{Connection, FromRow, QueryBuilder, Sqlite};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

/// Calls read per query while rebuilding, and readers reading at once.
const REBUILD_PAGE: i64 = 50_000;
const REBUILD_READERS: i64 = 2;
/// Traces read per query while filling in trace flags.
const BACKFILL_PAGE: i64 = 5_000;

static EMPTY: LazyLock<ProjectCube> = LazyLock::new(ProjectCube::default);

/// While `serve` runs, the aggregate is saved again once this many calls were committed since
/// the last save, or once any were and this long has passed, so a start after a crash reads
/// the file and then only what came after it.
const SAVE_AFTER_CALLS: u64 = 500_000;
const SAVE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);
const SAVE_CHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// Entries of a saved aggregate's mark that the database must still equal (the token, the
/// count of `store_meta` rows, the migrations run); the rest say how far the file reaches (the
/// last call's rowid, the last tag set's id, the last trace record's number) and may have grown.
const MARK_EQUAL: usize = 3;

/// The aggregate saved beside the database: whether the file on disk can still be used (false
/// after a rebuild, a user deletion or retention), and the calls committed since it was written.
#[derive(Default)]
pub(crate) struct Saved {
    valid: std::sync::atomic::AtomicBool,
    calls: std::sync::atomic::AtomicU64,
    /// Where it was last saved or read from.
    path: std::sync::Mutex<Option<std::path::PathBuf>>,
    /// The token of the file this process last saved or read (0: none).
    token: std::sync::atomic::AtomicI64,
    /// Another process wrote calls while this one served (it dropped the token): the aggregate
    /// lacks them, so it is not saved again and the next start rebuilds.
    foreign: std::sync::atomic::AtomicBool,
}

#[derive(FromRow)]
struct CallRow {
    rowid: i64,
    project_id: i64,
    tag_set_id: i64,
    ts: i64,
    provider: String,
    model: String,
    agent: String,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_creation_tokens: i64,
    cost_nano: Option<i64>,
    latency_ms: Option<i64>,
    status: String,
    tools: Option<String>,
    firsts: Option<i64>,
    tool_firsts: Option<Vec<u8>>,
    /// The call's trace's `seq` when the call is its trace's first with its provider or agent.
    trace_seq: Option<i64>,
}

#[derive(FromRow)]
struct TraceRow {
    project_id: i64,
    id: String,
    seq: i64,
    started_at: i64,
    tag_set_id: i64,
    calls: i64,
    tokens: i64,
    cost_nano: i64,
    route_tag: Option<String>,
}

impl TraceRow {
    fn fact(&self) -> TraceFact {
        TraceFact {
            seq: self.seq as u32,
            tag_set: self.tag_set_id,
            start_ms: self.started_at,
            route: self.route_tag.clone(),
            calls: self.calls,
            tokens: self.tokens,
            cost: self.cost_nano,
            ..TraceFact::default()
        }
    }
}

fn tools_of(json: Option<&str>) -> Vec<String> {
    json.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

impl CallRow {
    fn fact(self) -> CallFact {
        let tools = tools_of(self.tools.as_deref());
        CallFact {
            tag_set: self.tag_set_id,
            ts_ms: self.ts,
            input: self.input_tokens.max(0) as u64,
            output: self.output_tokens.max(0) as u64,
            cache_read: self.cache_read_tokens.max(0) as u64,
            cache_creation: self.cache_creation_tokens.max(0) as u64,
            cost: self.cost_nano,
            latency_ms: self.latency_ms,
            is_error: self.status == "error",
            firsts: self.firsts.unwrap_or(0) as u8,
            tools: tool_facts(&tools, self.tool_firsts.as_deref().unwrap_or(&[])),
            provider: self.provider,
            model: self.model,
            agent: self.agent,
            ..CallFact::default()
        }
    }
}

impl Store {
    /// Whether the aggregate holds every committed call (loaded, and no other process wrote
    /// to the file since): then it can say where a user's rows are.
    pub(crate) fn aggregate_complete(&self) -> bool {
        self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire)
            && !self.saved.foreign.load(std::sync::atomic::Ordering::Acquire)
    }

    /// [`Store::aggregate_complete`], and no call in the file past the newest this process has
    /// seen (another process wrote since, and the saver hasn't noticed yet). Asked on the
    /// writer connection the caller holds, so it stays true until the caller lets it go.
    pub(crate) async fn aggregate_holds_every_call(
        &self,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<bool, StoreError> {
        if !self.aggregate_complete() {
            return Ok(false);
        }
        let newest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM events").fetch_one(&mut *conn).await?;
        Ok(self.seen_calls_to().is_some_and(|seen| newest <= seen))
    }

    /// Some calls were deleted from these (hour, tag set) pairs without their whole tag set:
    /// the calls they still hold, read in the caller's transaction by time bucket, for the
    /// aggregate to count again once it commits ([`Store::recount_in_cube`]).
    pub(crate) async fn recount_facts(
        &self,
        tx: &mut sqlx::SqliteConnection,
        project_id: i64,
        pairs: &[(i64, i64)],
    ) -> Result<Vec<CallFact>, StoreError> {
        if pairs.is_empty() || !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let mut calls = Vec::new();
        for (hour, tag_set) in pairs {
            let from = hour.saturating_mul(3_600_000);
            let rows: Vec<CallRow> = sqlx::query_as(
                "SELECT rowid AS rowid, project_id, tag_set_id, ts, provider, model, agent, input_tokens,
                   output_tokens, cache_read_tokens, cache_creation_tokens, cost_nano, latency_ms,
                   status, tools, firsts, tool_firsts, NULL AS trace_seq
                 FROM events WHERE project_id = ?1 AND (ts >> 16) BETWEEN (?2 >> 16) AND (?3 >> 16)
                   AND ts >= ?2 AND ts < ?3 AND tag_set_id = ?4",
            )
            .bind(project_id)
            .bind(from)
            .bind(from.saturating_add(3_600_000))
            .bind(tag_set)
            .fetch_all(&mut *tx)
            .await?;
            calls.extend(rows.into_iter().map(CallRow::fact));
        }
        Ok(calls)
    }

    /// After the commit: the pairs' rows replaced by the calls [`Store::recount_facts`] read.
    pub(crate) fn recount_in_cube(&self, project_id: i64, pairs: &[(i64, i64)], calls: Vec<CallFact>) {
        if pairs.is_empty() || !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        let c = cube.project(project_id);
        c.remove_calls(pairs);
        c.apply(&Delta { calls, ..Delta::default() });
    }

    /// Sets the totals of traces some of whose calls were deleted: (seq, calls, tokens, cost).
    pub(crate) fn retotal_in_cube(&self, project_id: i64, totals: &[(i64, i64, i64, i64)]) {
        if totals.is_empty() || !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        let c = cube.project(project_id);
        for (seq, calls, tokens, cost) in totals {
            c.set_trace_totals(*seq as u32, *calls, *tokens, *cost);
        }
    }

    /// Adds a committed batch to the aggregate.
    pub(crate) fn apply_delta(&self, project_id: i64, delta: &Delta) {
        if !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        cube.project(project_id).apply(delta);
        let calls = delta.calls.iter().filter(|c| !c.flags_only).count() as u64;
        self.saved.calls.fetch_add(calls, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes deleted tag sets out of the aggregate.
    pub(crate) fn forget_in_cube(&self, project_id: i64, tag_sets: &[i64], share: Option<&Share>) {
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        cube.project(project_id).remove_tag_sets_in(tag_sets, share);
        self.forget_user_menus(project_id);
    }

    /// Drops the hours retention removed.
    pub(crate) fn drop_in_cube(&self, project_id: i64, before_hour: i64) {
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        cube.project(project_id).drop_before(before_hour);
        self.forget_user_menus(project_id);
    }

    /// Runs `f` on a project's aggregate on the blocking pool (a scan of millions of rows must
    /// not hold an async worker).
    pub(crate) async fn read_cube<R, F>(&self, project_id: i64, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&ProjectCube) -> R + Send + 'static,
    {
        let cube = self.cube.clone();
        tokio::task::spawn_blocking(move || {
            let c = cube.read().unwrap_or_else(|e| e.into_inner());
            f(c.projects.get(&project_id).unwrap_or(&EMPTY))
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("aggregate read failed: {e}")))
    }

    /// Megabytes (10^6) the aggregate's largest parts hold (all projects): rows, latency rows,
    /// tool rows, trace starts, the trace index, tag sets and names.
    pub fn aggregate_megabytes(&self) -> [usize; 6] {
        let c = self.cube.read().unwrap_or_else(|e| e.into_inner());
        let mut out = [0usize; 6];
        for p in c.projects.values() {
            for (o, b) in out.iter_mut().zip(p.heap_bytes()) {
                *o += b;
            }
        }
        out.map(|b| b / 1_000_000)
    }

    /// Rows held by the aggregate (all projects).
    pub fn aggregate_rows(&self) -> usize {
        let c = self.cube.read().unwrap_or_else(|e| e.into_inner());
        c.projects.values().map(ProjectCube::row_count).sum()
    }

    /// Builds the aggregate from the stored tag sets, calls and traces.
    pub(crate) async fn rebuild_cube(&self) -> Result<(), StoreError> {
        self.backfill_firsts().await?;
        let mut cube = Cube::default();
        self.fold_tag_sets(&mut cube, 0).await?;
        // The traces (their list facts and the starts per hour and tag set), a page at a time in
        // key order. Each page's starts go into the aggregate at once, which merges equal keys
        // as it goes, rather than into a map of every (hour, tag set) held until the end.
        let mut after = (i64::MIN, String::new());
        loop {
            let rows: Vec<TraceRow> = sqlx::query_as(
                "SELECT project_id, id, seq, started_at, tag_set_id, calls, tokens, cost_nano, route_tag
                 FROM traces WHERE (project_id, id) > (?1, ?2) ORDER BY project_id, id LIMIT ?3",
            )
            .bind(after.0)
            .bind(&after.1)
            .bind(REBUILD_PAGE)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = rows.last() else { break };
            after = (last.project_id, last.id.clone());
            let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
            for t in rows {
                let start = (super::hour_of(t.started_at), t.tag_set_id, 1);
                per.entry(t.project_id).or_default().starts.push(start);
                cube.project(t.project_id).load_trace(&t.fact());
            }
            for (project, d) in &per {
                cube.project(*project).apply(d);
            }
        }
        // The calls, in rowid order.
        let (max,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(rowid) FROM events").fetch_one(&self.read).await?;
        self.fold_calls(&mut cube, 0, max.unwrap_or(0)).await?;
        for p in cube.projects.values_mut() {
            p.compact_all();
        }
        *self.cube.write().unwrap_or_else(|e| e.into_inner()) = cube;
        self.aggregate_loaded.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Adds the stored calls with a rowid in `(after, last]` to `cube`, read by two readers over
    /// halves of the range (decoding on two cores) into one channel that this task folds; a
    /// call that is its trace's first with its provider or agent adds them to its trace's mask
    /// (the trace must be held already). Returns the calls read.
    async fn fold_calls(&self, cube: &mut Cube, after: i64, last: i64) -> Result<u64, StoreError> {
        type Facts = Vec<(i64, Option<i64>, CallFact)>;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Facts, StoreError>>(4);
        let span = last.saturating_sub(after).max(0);
        for part in 0..REBUILD_READERS {
            let (pool, tx) = (self.read.clone(), tx.clone());
            let mut from = after + span * part / REBUILD_READERS;
            let to = after + span * (part + 1) / REBUILD_READERS;
            tokio::spawn(async move {
                while from < to {
                    let rows: Result<Vec<CallRow>, sqlx::Error> = sqlx::query_as(
                        "SELECT rowid AS rowid, project_id, tag_set_id, ts, provider, model, agent, input_tokens,
                           output_tokens, cache_read_tokens, cache_creation_tokens, cost_nano, latency_ms,
                           status, tools, firsts, tool_firsts,
                           CASE WHEN firsts & 3 != 0 THEN COALESCE(events.trace_seq, (SELECT seq FROM traces t
                             WHERE t.project_id = events.project_id AND t.id = events.trace_id)) END AS trace_seq
                         FROM events WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3",
                    )
                    .bind(from)
                    .bind(to)
                    .bind(REBUILD_PAGE)
                    .fetch_all(&pool)
                    .await;
                    let rows = match rows {
                        Ok(rows) => rows,
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    };
                    let Some(end) = rows.last().map(|r| r.rowid) else { break };
                    from = end;
                    let facts = rows.into_iter().map(|r| (r.project_id, r.trace_seq, r.fact())).collect();
                    if tx.send(Ok(facts)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut read = 0;
        while let Some(facts) = rx.recv().await {
            let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
            for (project, trace_seq, fact) in facts? {
                read += 1;
                if let Some(seq) = trace_seq {
                    let provider =
                        (fact.firsts & super::cube::FIRST_PROVIDER != 0).then_some(fact.provider.as_str());
                    let agent = (fact.firsts & super::cube::FIRST_AGENT != 0).then_some(fact.agent.as_str());
                    cube.project(project).load_trace_call(seq as u32, provider, agent);
                }
                per.entry(project).or_default().calls.push(fact);
            }
            for (project, d) in &per {
                cube.project(*project).apply(d);
            }
        }
        Ok(read)
    }

    /// Adds the stored tag sets with an id above `after` to `cube`, in id order.
    async fn fold_tag_sets(&self, cube: &mut Cube, after: i64) -> Result<(), StoreError> {
        let tag_sets: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT project_id, id, canonical FROM tag_sets WHERE id > ?1 ORDER BY id")
                .bind(after)
                .fetch_all(&self.read)
                .await?;
        let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
        for (project, id, canonical) in tag_sets {
            let tags: BTreeMap<String, String> = serde_json::from_str(&canonical).unwrap_or_default();
            per.entry(project).or_default().tag_sets.push((id, tags));
        }
        for (project, d) in &per {
            cube.project(*project).apply(d);
        }
        Ok(())
    }

    /// Brings an aggregate saved when the database stood at `from` (the last call's rowid, tag
    /// set's id and trace record's number it holds) up to the database as it is now: the tag
    /// sets stored since, the traces that calls or records stored since name (each set to its
    /// stored row; a start it moved is moved in the starts per hour), then the calls. Reads what
    /// a rebuild reads, for the tail only. Returns the calls read.
    async fn replay_tail(&self, cube: &mut Cube, from: &[i64]) -> Result<u64, StoreError> {
        let &[after_call, after_tag_set, after_record] = from else {
            return Err(StoreError::Invalid("saved aggregate: bad mark".into()));
        };
        self.fold_tag_sets(cube, after_tag_set).await?;
        let named: Vec<(i64, String)> = sqlx::query_as(
            "SELECT project_id, trace_id FROM events WHERE rowid > ?1 AND trace_id IS NOT NULL
             UNION SELECT project_id, trace_id FROM trace_touches WHERE seq > ?2",
        )
        .bind(after_call)
        .bind(after_record)
        .fetch_all(&self.read)
        .await?;
        let mut by_project: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (project, id) in named {
            by_project.entry(project).or_default().push(id);
        }
        let mut conn = self.read.acquire().await?;
        let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
        for (project, ids) in &by_project {
            let rows: Vec<TraceRow> = super::ingest::rows_for_ids(
                &mut conn,
                "SELECT project_id, id, seq, started_at, tag_set_id, calls, tokens, cost_nano, route_tag
                 FROM traces WHERE project_id = ",
                "id",
                *project,
                ids.iter().map(String::as_str),
            )
            .await?;
            let p = cube.project(*project);
            let starts = &mut per.entry(*project).or_default().starts;
            for t in rows {
                let now = (super::hour_of(t.started_at), t.tag_set_id);
                let before = p.reload_trace(&t.fact());
                if before != Some(now) {
                    if let Some((hour, tag_set)) = before {
                        starts.push((hour, tag_set, -1));
                    }
                    starts.push((now.0, now.1, 1));
                }
            }
        }
        drop(conn);
        for (project, d) in &per {
            cube.project(*project).apply(d);
        }
        let (last,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(rowid) FROM events").fetch_one(&self.read).await?;
        self.fold_calls(cube, after_call, last.unwrap_or(0)).await
    }

    /// Fills in `firsts` and `tool_firsts` of calls stored before they existed (migration
    /// 0004), walking each trace's calls in time order.
    async fn backfill_firsts(&self) -> Result<(), StoreError> {
        let pending: Option<(String,)> =
            sqlx::query_as("SELECT value FROM store_meta WHERE key = 'backfill_firsts'")
                .fetch_optional(&self.write)
                .await?;
        if pending.is_none() {
            return Ok(());
        }
        tracing::info!("filling in trace flags of the stored calls (once, after an upgrade)");
        // The same derivation as after retention, a page of traces at a time; calls whose flags
        // are all clear stay NULL until the update below (and read as 0 meanwhile).
        let projects: Vec<(i64,)> = sqlx::query_as("SELECT id FROM projects").fetch_all(&self.write).await?;
        for (project,) in projects {
            let mut after = String::new();
            loop {
                let page: Vec<(String,)> = sqlx::query_as(
                    // Calls without flags were stored before migration 4, so before trace seqs.
                    "SELECT DISTINCT trace_id FROM events
                     WHERE project_id = ?1 AND trace_seq IS NULL AND trace_id IS NOT NULL AND trace_id > ?2
                     ORDER BY trace_id LIMIT ?3",
                )
                .bind(project)
                .bind(&after)
                .bind(BACKFILL_PAGE)
                .fetch_all(&self.write)
                .await?;
                let Some((last,)) = page.last() else { break };
                after = last.clone();
                let ids: Vec<String> = page.into_iter().map(|(t,)| t).collect();
                self.reflag_traces(project, &ids).await?;
            }
        }
        sqlx::query("UPDATE events SET firsts = 0 WHERE firsts IS NULL").execute(&self.write).await?;
        sqlx::query("DELETE FROM store_meta WHERE key = 'backfill_firsts'").execute(&self.write).await?;
        Ok(())
    }

    /// Re-derives the trace flags of the stored calls of `traces` after some of their calls were
    /// removed (retention), or before they had any (the upgrade backfill): a remaining call may
    /// now be its trace's first with its provider,
    /// agent or tool, in time order (which may also move a flag that arrival order had put on a
    /// later call). Changed flags are written, and the aggregate gets the gained and lost ones,
    /// while this writer holds the connection.
    pub(crate) async fn reflag_traces(&self, project_id: i64, traces: &[String]) -> Result<(), StoreError> {
        for chunk in traces.chunks(500) {
            let mut conn = self.write.acquire().await?;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            // Each stored trace's seq: its calls are those with the seq, and those with its id
            // and no seq (see migration 11).
            let seqs: Vec<(String, i64)> = super::ingest::rows_for_ids(
                &mut tx,
                "SELECT id, seq FROM traces WHERE project_id = ",
                "id",
                project_id,
                chunk.iter().map(String::as_str),
            )
            .await?;
            const COLUMNS: &str =
                "rowid AS r, trace_id, tag_set_id, ts, provider, model, agent, tools, firsts, tool_firsts";
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM events INDEXED BY events_trace
                  WHERE trace_seq IS NULL AND project_id = "
            ));
            q.push_bind(project_id).push(" AND trace_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            q.push(format!(
                ") UNION ALL SELECT {COLUMNS} FROM events INDEXED BY events_trace_seq
                   WHERE trace_seq IS NOT NULL AND project_id = "
            ));
            q.push_bind(project_id).push(" AND trace_seq IN (");
            let mut list = q.separated(", ");
            list.push("-1");
            for (_, seq) in &seqs {
                list.push_bind(*seq);
            }
            q.push(")) ORDER BY trace_id, ts, r");
            type FlagRow =
                (i64, String, i64, i64, String, String, String, Option<String>, Option<i64>, Option<Vec<u8>>);
            let rows: Vec<FlagRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            let mut delta = Delta::default();
            let mut masks: HashMap<String, TraceMask> = seqs
                .into_iter()
                .map(|(id, seq)| (id, TraceMask { seq: seq as u32, ..TraceMask::default() }))
                .collect();
            let mut seen: Option<(String, TraceSeen)> = None;
            for (rowid, trace, tag_set, ts, provider, model, agent, tools, firsts, tool_firsts) in rows {
                if let Some(m) = masks.get_mut(&trace) {
                    if !m.providers.contains(&provider) {
                        m.providers.push(provider.clone());
                    }
                    if !m.agents.contains(&agent) {
                        m.agents.push(agent.clone());
                    }
                }
                if seen.as_ref().is_none_or(|(t, _)| *t != trace) {
                    seen = Some((trace, TraceSeen::default()));
                }
                let Some((_, s)) = seen.as_mut() else { continue };
                let tool_names = tools_of(tools.as_deref());
                let (f, tf) = s.see(&provider, &agent, &tool_names);
                let old_f = firsts.unwrap_or(0) as u8;
                let old_tf = tool_firsts.unwrap_or_default();
                if f == old_f && tf.iter().enumerate().all(|(i, b)| old_tf.get(i).copied().unwrap_or(0) == *b)
                {
                    continue;
                }
                sqlx::query("UPDATE events SET firsts = ?1, tool_firsts = ?2 WHERE rowid = ?3")
                    .bind(i64::from(f))
                    .bind((!tf.is_empty()).then_some(tf.clone()))
                    .bind(rowid)
                    .execute(&mut *tx)
                    .await?;
                let old = |i: usize| old_tf.get(i).copied().unwrap_or(0);
                let gained: Vec<u8> = tf.iter().enumerate().map(|(i, b)| b & !old(i)).collect();
                let lost: Vec<u8> = tf.iter().enumerate().map(|(i, b)| old(i) & !b).collect();
                delta.calls.push(CallFact {
                    tag_set,
                    ts_ms: ts,
                    provider,
                    model,
                    agent,
                    firsts: f & !old_f,
                    lost: old_f & !f,
                    tools: tool_facts(&tool_names, &gained),
                    tools_lost: tool_facts(&tool_names, &lost),
                    flags_only: true,
                    ..CallFact::default()
                });
            }
            delta.trace_masks = masks.into_values().collect();
            tx.commit().await?;
            if !delta.is_empty() {
                self.apply_delta(project_id, &delta);
            }
            drop(conn);
        }
        Ok(())
    }

    /// A saved aggregate's mark: what the database must still equal for the file to be used
    /// (the token written with it, dropped before every user deletion and retention step, and
    /// by every opening of the database by a release before this one; the count of `store_meta`
    /// rows, which holds pending upgrade steps; the migrations run), then how far the file
    /// reaches (the last call's rowid, tag set's id and trace record's number). Index lookups
    /// only: no count of millions of rows at start.
    /// Migrations that change nothing the aggregate holds are not counted, so an upgrade that
    /// only adds them keeps the saved file (a 10M-call database restarts in seconds, not minutes):
    /// 9 adds the OpenTelemetry waiting area; 10 moves the calls to a table without a key on
    /// their ids, keeping their rowids; 11 finds a trace's calls by its seq; 12 indexes time in
    /// buckets.
    async fn mark(&self) -> Result<Vec<i64>, StoreError> {
        let (token, meta, migrations, call, tag_set, record): (Option<String>, i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT (SELECT value FROM store_meta WHERE key = 'aggregate_token'),
                    (SELECT COUNT(*) FROM store_meta),
                    (SELECT COUNT(*) FROM _sqlx_migrations WHERE version NOT IN (9, 10, 11, 12)),
                    (SELECT COALESCE(MAX(rowid), 0) FROM events), (SELECT COALESCE(MAX(id), 0) FROM tag_sets),
                    (SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'trace_touches')",
            )
            .fetch_one(&self.read)
            .await?;
        let token = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        Ok(vec![token, meta, migrations, call, tag_set, record])
    }

    /// Drops the saved aggregate's token: what this process changes from now on other than by
    /// appending is not in that file.
    pub async fn drop_aggregate_token(&self) -> Result<(), StoreError> {
        let mut conn = self.write.acquire().await?;
        self.drop_aggregate_token_on(&mut conn).await
    }

    /// [`Store::drop_aggregate_token`] on the writer connection the caller holds, and removes
    /// the saved file: a user deletion or retention must not leave their data in it (the next
    /// save writes a new one).
    pub(crate) async fn drop_aggregate_token_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
    ) -> Result<(), StoreError> {
        self.saved.valid.store(false, std::sync::atomic::Ordering::Release);
        self.saved.token.store(0, std::sync::atomic::Ordering::Release);
        sqlx::query("DELETE FROM store_meta WHERE key = 'aggregate_token'").execute(&mut *conn).await?;
        // Trace records named for a replay of that file are of no use without it (and may name a
        // deleted user's traces).
        sqlx::query("DELETE FROM trace_touches").execute(&mut *conn).await?;
        let path = self.saved.path.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(path) = path {
            for p in Self::aggregate_files(&path) {
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StoreError::Invalid(format!("removing the saved aggregate: {e}")));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The saved aggregate at `path` and the files it passes through while it is written or read.
    pub(crate) fn aggregate_files(path: &std::path::Path) -> [std::path::PathBuf; 3] {
        [path.to_path_buf(), path.with_extension("aggregate-loading"), path.with_extension("aggregate-tmp")]
    }

    /// Writes a new random token into `store_meta` and returns it.
    async fn write_token(conn: &mut sqlx::SqliteConnection) -> Result<i64, StoreError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
        let token = (i64::from_le_bytes(raw) & i64::MAX).max(1);
        sqlx::query("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('aggregate_token', ?1)")
            .bind(token.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(token)
    }

    /// After a rebuild: a token of this process's own, so a save notices when another process
    /// writes calls meanwhile (it drops the token). No file matches it yet.
    pub(crate) async fn claim_token(&self) -> Result<(), StoreError> {
        let mut conn = self.write.acquire().await?;
        let token = Self::write_token(&mut conn).await?;
        self.saved.token.store(token, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn note_saved_path(&self, path: &std::path::Path) {
        *self.saved.path.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
    }

    /// Saves the aggregate to `path` (through a temporary file, renamed into place), for the
    /// next start: at a clean shutdown, and from time to time while serving (see
    /// [`Store::spawn_aggregate_saver`]). Holds the writer meanwhile.
    pub async fn save_aggregate(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        // Hold the writer: no commit, deletion or retention step between the mark and the file.
        let _maintenance = self.maintenance.lock().await;
        let _gate = self.writer_gate.lock().await;
        let mut conn = self.write.acquire().await?;
        // The token this process saved or read is gone though nothing here dropped it: another
        // process (`tokentally demo`) wrote calls this aggregate lacks. Not saved from now on.
        let ours = self.saved.token.load(std::sync::atomic::Ordering::Acquire);
        let now = self.mark().await?[0];
        if self.saved.foreign.load(std::sync::atomic::Ordering::Acquire) || (ours != 0 && now != ours) {
            self.saved.foreign.store(true, std::sync::atomic::Ordering::Release);
            self.drop_aggregate_token_on(&mut conn).await?;
            return Err(StoreError::Invalid(
                "another process wrote calls to the database while the server ran; the aggregate is not saved and the next start rebuilds it".into(),
            ));
        }
        // The token changes before the file does: a crash in between leaves a file that is not
        // used (a rebuild), never one used against the wrong database.
        let token = Self::write_token(&mut conn).await?;
        let mark = self.mark().await?;
        let last_record = mark[MARK_EQUAL + 2];
        let (cube, file) = (self.cube.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = file.with_extension("aggregate-tmp");
            let out = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
            {
                let c = cube.read().unwrap_or_else(|e| e.into_inner());
                super::cube::snapshot::write(&c, &mark, &mut w)?;
            }
            std::io::Write::flush(&mut w)?;
            w.get_ref().sync_all()?;
            std::fs::rename(&tmp, &file)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("saving the aggregate failed: {e}")))?
        .map_err(|e| StoreError::Invalid(format!("saving the aggregate failed: {e}")))?;
        // The trace records the file holds are not needed to replay it.
        sqlx::query("DELETE FROM trace_touches WHERE seq <= ?1")
            .bind(last_record)
            .execute(&mut *conn)
            .await?;
        self.saved.calls.store(0, std::sync::atomic::Ordering::Relaxed);
        self.saved.valid.store(true, std::sync::atomic::Ordering::Release);
        self.saved.token.store(token, std::sync::atomic::Ordering::Release);
        self.note_saved_path(path);
        Ok(())
    }

    /// Saves the aggregate beside the database at `path` while `serve` runs: once, soon, when
    /// the file on disk can't be used (after a rebuild, a user deletion, retention), and again
    /// after `SAVE_AFTER_CALLS` calls or `SAVE_AFTER` with any. A start after a crash then reads
    /// the file and replays the calls stored after it.
    pub fn spawn_aggregate_saver(&self, path: &std::path::Path) {
        let (store, path) = (self.clone(), path.to_path_buf());
        tokio::spawn(async move {
            let mut last = std::time::Instant::now();
            loop {
                tokio::time::sleep(SAVE_CHECK).await;
                let calls = store.saved.calls.load(std::sync::atomic::Ordering::Relaxed);
                let valid = store.saved.valid.load(std::sync::atomic::Ordering::Acquire);
                let due = !valid || calls >= SAVE_AFTER_CALLS || (calls > 0 && last.elapsed() >= SAVE_AFTER);
                let foreign = store.saved.foreign.load(std::sync::atomic::Ordering::Acquire);
                // Each deletion drops the saved file: during a run of them, a save would be
                // thrown away at once (and hold the next deletion up while it writes).
                if !due
                    || foreign
                    || store.deleted_lately()
                    || !store.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire)
                {
                    continue;
                }
                let started = std::time::Instant::now();
                match store.save_aggregate(&path).await {
                    Ok(()) => {
                        last = std::time::Instant::now();
                        let ms = started.elapsed().as_millis() as u64;
                        tracing::info!(calls, ms, "aggregate saved for a start after a crash");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the aggregate was not saved");
                        // Not again at once: the next check is one period away.
                        store.saved.valid.store(true, std::sync::atomic::Ordering::Release);
                        last = std::time::Instant::now();
                    }
                }
            }
        });
    }

    /// Loads the aggregate saved at `path` if it matches the database, and brings it up to date
    /// with what was stored after it was saved (a stop without a save: a crash, a kill). A file
    /// that doesn't match, can't be read or can't be brought up to date is removed. Returns
    /// whether it was used.
    pub(crate) async fn load_aggregate(&self, path: &std::path::Path) -> Result<bool, StoreError> {
        if !path.exists() {
            return Ok(false);
        }
        // Taken out of place while it is read: a file that makes this process fail is never
        // tried twice.
        let file = path.with_extension("aggregate-loading");
        // One left by a start that failed while reading it is not tried again.
        let _ = std::fs::remove_file(&file);
        std::fs::rename(path, &file).map_err(|e| StoreError::Invalid(format!("saved aggregate: {e}")))?;
        let reading = file.clone();
        let read = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&reading)?;
            super::cube::snapshot::read(&mut std::io::BufReader::with_capacity(1 << 20, f))
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("reading the aggregate failed: {e}")))?;
        let used = match read {
            Ok((cube, mark)) => self.bring_up_to_date(cube, &mark).await,
            Err(e) => {
                tracing::warn!(error = %e, "the saved aggregate is unreadable; rebuilding");
                false
            }
        };
        if used {
            std::fs::rename(&file, path).map_err(|e| StoreError::Invalid(format!("saved aggregate: {e}")))?;
            self.note_saved_path(path);
        } else {
            let _ = std::fs::remove_file(&file);
        }
        Ok(used)
    }

    /// Installs a saved aggregate taken at `mark` after replaying what was stored since, when
    /// the database still matches the mark.
    async fn bring_up_to_date(&self, mut cube: Cube, mark: &[i64]) -> bool {
        let now = match self.mark().await {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, "the database's mark is unreadable; rebuilding");
                return false;
            }
        };
        let matches = mark.len() == now.len()
            && mark[0] != 0
            && mark[..MARK_EQUAL] == now[..MARK_EQUAL]
            && mark[MARK_EQUAL..].iter().zip(&now[MARK_EQUAL..]).all(|(saved, db)| saved <= db);
        if !matches {
            tracing::info!("the saved aggregate is older than the database; rebuilding");
            return false;
        }
        match self.replay_tail(&mut cube, &mark[MARK_EQUAL..]).await {
            Ok(calls) => {
                if calls > 0 {
                    tracing::info!(calls, "calls stored after the aggregate was saved are added");
                }
                for p in cube.projects.values_mut() {
                    p.compact_changed();
                }
                *self.cube.write().unwrap_or_else(|e| e.into_inner()) = cube;
                self.aggregate_loaded.store(true, std::sync::atomic::Ordering::Release);
                self.saved.calls.store(calls, std::sync::atomic::Ordering::Relaxed);
                self.saved.valid.store(true, std::sync::atomic::Ordering::Release);
                self.saved.token.store(mark[0], std::sync::atomic::Ordering::Release);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the saved aggregate could not be brought up to date; rebuilding");
                false
            }
        }
    }
}
