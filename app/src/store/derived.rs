//! The registry of derived data: everything computed from the stored calls lives in one
//! in-memory aggregate (`cube`), rebuilt from SQLite at start and kept in step by ingest
//! (`apply_delta`), user deletion (`forget_in_cube`) and retention (`drop_in_cube`). Trace totals
//! in `traces` are written with their calls, in the same transaction, and deleted with them.

use super::cube::traces::{TraceFact, TraceMask};
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
    /// Adds a committed batch to the aggregate.
    pub(crate) fn apply_delta(&self, project_id: i64, delta: &Delta) {
        if !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        cube.project(project_id).apply(delta);
    }

    /// Takes deleted tag sets out of the aggregate.
    pub(crate) fn forget_in_cube(&self, project_id: i64, tag_sets: &[i64]) {
        let mut cube = self.cube.write().unwrap_or_else(|e| e.into_inner());
        cube.project(project_id).remove_tag_sets(tag_sets);
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

    /// Rows held by the aggregate (all projects).
    pub fn aggregate_rows(&self) -> usize {
        let c = self.cube.read().unwrap_or_else(|e| e.into_inner());
        c.projects.values().map(ProjectCube::row_count).sum()
    }

    /// Builds the aggregate from the stored tag sets, calls and traces.
    pub(crate) async fn rebuild_cube(&self) -> Result<(), StoreError> {
        self.backfill_firsts().await?;
        let mut cube = Cube::default();
        let tag_sets: Vec<(i64, i64, String)> =
            sqlx::query_as("SELECT project_id, id, canonical FROM tag_sets").fetch_all(&self.read).await?;
        let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
        for (project, id, canonical) in tag_sets {
            let tags: BTreeMap<String, String> = serde_json::from_str(&canonical).unwrap_or_default();
            per.entry(project).or_default().tag_sets.push((id, tags));
        }
        for (project, d) in &per {
            cube.project(*project).apply(d);
        }
        // The traces (their list facts and the starts per hour and tag set), a page at a time in
        // key order.
        let mut starts: BTreeMap<(i64, i64, i64), i64> = BTreeMap::new();
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
            for t in rows {
                *starts
                    .entry((t.project_id, t.started_at.div_euclid(3_600_000), t.tag_set_id))
                    .or_default() += 1;
                cube.project(t.project_id).load_trace(&TraceFact {
                    seq: t.seq as u32,
                    tag_set: t.tag_set_id,
                    start_ms: t.started_at,
                    route: t.route_tag,
                    calls: t.calls,
                    tokens: t.tokens,
                    cost: t.cost_nano,
                    ..TraceFact::default()
                });
            }
        }
        // The calls, in rowid order, by two readers over halves of the rowid range (decoding
        // on two cores) into one channel; this task folds them into the aggregate.
        let (max,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(rowid) FROM events").fetch_one(&self.read).await?;
        let max = max.unwrap_or(0);
        type Facts = Vec<(i64, Option<i64>, CallFact)>;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Facts, StoreError>>(4);
        for part in 0..REBUILD_READERS {
            let (pool, tx) = (self.read.clone(), tx.clone());
            let (mut after, last) = (max * part / REBUILD_READERS, max * (part + 1) / REBUILD_READERS);
            tokio::spawn(async move {
                while after < last {
                    let rows: Result<Vec<CallRow>, sqlx::Error> = sqlx::query_as(
                        "SELECT rowid, project_id, tag_set_id, ts, provider, model, agent, input_tokens,
                           output_tokens, cache_read_tokens, cache_creation_tokens, cost_nano, latency_ms,
                           status, tools, firsts, tool_firsts,
                           CASE WHEN firsts & 3 != 0 THEN (SELECT seq FROM traces t
                             WHERE t.project_id = events.project_id AND t.id = events.trace_id) END AS trace_seq
                         FROM events WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3",
                    )
                    .bind(after)
                    .bind(last)
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
                    after = end;
                    let facts = rows.into_iter().map(|r| (r.project_id, r.trace_seq, r.fact())).collect();
                    if tx.send(Ok(facts)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(facts) = rx.recv().await {
            let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
            for (project, trace_seq, fact) in facts? {
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
        let mut per: BTreeMap<i64, Delta> = BTreeMap::new();
        for ((project, hour, tag_set), n) in starts {
            per.entry(project).or_default().starts.push((hour, tag_set, n));
        }
        for (project, d) in &per {
            cube.project(*project).apply(d);
        }
        for p in cube.projects.values_mut() {
            p.compact_all();
        }
        *self.cube.write().unwrap_or_else(|e| e.into_inner()) = cube;
        self.aggregate_loaded.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
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
                    "SELECT DISTINCT trace_id FROM events
                     WHERE project_id = ?1 AND trace_id IS NOT NULL AND trace_id > ?2
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
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT rowid, trace_id, tag_set_id, ts, provider, model, agent, tools, firsts, tool_firsts
                 FROM events WHERE project_id = ",
            );
            q.push_bind(project_id).push(" AND trace_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            q.push(") ORDER BY trace_id, ts, rowid");
            type FlagRow =
                (i64, String, i64, i64, String, String, String, Option<String>, Option<i64>, Option<Vec<u8>>);
            let rows: Vec<FlagRow> = q.build_query_as().fetch_all(&mut *tx).await?;
            let mut delta = Delta::default();
            // Each stored trace's providers and agents, from its remaining calls.
            let seqs: Vec<(String, i64)> = super::ingest::rows_for_ids(
                &mut tx,
                "SELECT id, seq FROM traces WHERE project_id = ",
                "id",
                project_id,
                chunk.iter().map(String::as_str),
            )
            .await?;
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

    /// What a saved aggregate must match to be used: the token written with it (dropped by
    /// every later opening of the database, see `Store::open`), the calls' and tag sets' last
    /// ids, the store's pending upgrade steps and the migrations run. Index lookups only: no
    /// count of millions of rows at start.
    async fn mark(&self) -> Result<Vec<i64>, StoreError> {
        let (token, a, b, c, d): (Option<String>, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT value FROM store_meta WHERE key = 'aggregate_token'),
                    (SELECT COALESCE(MAX(rowid), 0) FROM events), (SELECT COALESCE(MAX(id), 0) FROM tag_sets),
                    (SELECT COUNT(*) FROM store_meta), (SELECT COUNT(*) FROM _sqlx_migrations)",
        )
        .fetch_one(&self.read)
        .await?;
        let token = token.and_then(|t| t.parse().ok()).unwrap_or(0);
        Ok(vec![token, a, b, c, d])
    }

    /// Drops the saved aggregate's token: whatever this process writes from now on is not in
    /// that file.
    pub(crate) async fn drop_aggregate_token(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM store_meta WHERE key = 'aggregate_token'").execute(&self.write).await?;
        Ok(())
    }

    /// Saves the aggregate to `path` (through a temporary file, renamed into place), for the
    /// next start. Called at a clean shutdown, when no more writes come.
    pub async fn save_aggregate(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        // Hold the writer: no commit, deletion or retention step between the mark and the file.
        let _gate = self.writer_gate.lock().await;
        let mut conn = self.write.acquire().await?;
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Invalid(format!("no randomness: {e}")))?;
        let token = (i64::from_le_bytes(raw) & i64::MAX).max(1);
        sqlx::query("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('aggregate_token', ?1)")
            .bind(token.to_string())
            .execute(&mut *conn)
            .await?;
        let mark = self.mark().await?;
        let (cube, path) = (self.cube.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = path.with_extension("aggregate-tmp");
            let file = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            {
                let c = cube.read().unwrap_or_else(|e| e.into_inner());
                super::cube::snapshot::write(&c, &mark, &mut w)?;
            }
            std::io::Write::flush(&mut w)?;
            w.get_ref().sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("saving the aggregate failed: {e}")))?
        .map_err(|e| StoreError::Invalid(format!("saving the aggregate failed: {e}")))
    }

    /// Loads the aggregate saved at `path` if it matches the database, and removes the file
    /// either way (a crash later must not leave a stale one). Returns whether it was used.
    pub(crate) async fn load_aggregate(&self, path: &std::path::Path) -> Result<bool, StoreError> {
        if !path.exists() {
            return Ok(false);
        }
        // Taken out of place before it is parsed: a file that can't be read is never tried twice.
        let file = path.with_extension("aggregate-loading");
        std::fs::rename(path, &file).map_err(|e| StoreError::Invalid(format!("saved aggregate: {e}")))?;
        let read = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&file)?;
            let r = super::cube::snapshot::read(&mut std::io::BufReader::with_capacity(1 << 20, f));
            let _ = std::fs::remove_file(&file);
            r
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("reading the aggregate failed: {e}")))?;
        let (cube, mark) = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "the saved aggregate is unreadable; rebuilding");
                return Ok(false);
            }
        };
        if mark.first().is_none_or(|t| *t == 0) || mark != self.mark().await? {
            tracing::info!("the saved aggregate is older than the database; rebuilding");
            return Ok(false);
        }
        *self.cube.write().unwrap_or_else(|e| e.into_inner()) = cube;
        self.aggregate_loaded.store(true, std::sync::atomic::Ordering::Release);
        Ok(true)
    }
}
