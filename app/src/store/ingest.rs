//! Writing a batch of events and traces: idempotent on ids, priced once, rollups merged in
//! memory per batch and applied in the same transaction (so a committed batch is fully visible).

use super::{Store, StoreError, hour_of};
use crate::model::latency::latency_bucket;
use crate::pricing::{Usage, cost_of};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The tag key whose value is the end user.
pub const USER_TAG: &str = "userId";

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

/// What a committed batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Events and traces stored for the first time.
    pub accepted: u64,
    /// Events and traces already stored (a re-sent batch): not counted again.
    pub duplicates: u64,
}

#[derive(Default)]
struct RollupDelta {
    events: i64,
    errors: i64,
    unpriced: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    cost_nano: i64,
    latency_sum: i64,
    max_ts: i64,
}

type RollupKey = (i64, i64, String, String, String);

fn canonical(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).unwrap_or_default()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
        if let Some(id) = self.tag_cache.lock().ok().and_then(|c| c.get(&key).copied()) {
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

    /// Stores a batch in one transaction. Events and traces whose id is already stored for the
    /// project are counted as duplicates and change nothing (a trace record completes the trace
    /// its events opened). An event without tags inherits the tags and route tag of its trace.
    /// Every step is a multi-row statement: the cost of a batch is a handful of round trips to
    /// the SQLite thread, not several per event.
    pub async fn ingest(
        &self,
        project_id: i64,
        traces: &[TraceIn],
        events: &[EventIn],
    ) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        let mut fresh_tags = HashMap::new();
        let mut tx = self.write.begin().await?;
        // In privacy mode `minimal` prompts and responses are never bound, so never written.
        let (privacy,): (String,) = sqlx::query_as("SELECT privacy FROM projects WHERE id = ?1")
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await?;
        let keep_content = privacy != "minimal";

        // Traces sent as records.
        // tag set → its userId, for the per-user rollups.
        let mut tag_users: HashMap<i64, Option<String>> = HashMap::new();
        let mut batch_traces: HashMap<&str, (i64, Option<&str>)> = HashMap::new();
        let mut trace_rows = Vec::with_capacity(traces.len());
        for t in traces {
            let tag_set = self.tag_set_id(&mut tx, project_id, &t.tags, &mut fresh_tags).await?;
            tag_users.insert(tag_set, t.tags.get(USER_TAG).cloned());
            batch_traces.entry(t.id.as_str()).or_insert((tag_set, t.route_tag.as_deref()));
            trace_rows.push((t, tag_set));
        }
        let known = existing_traces(&mut tx, project_id, traces.iter().map(|t| t.id.as_str())).await?;
        let mut trace_counts: HashMap<(i64, i64), i64> = HashMap::new();
        let mut counted: HashSet<&str> = HashSet::new();
        for (t, tag_set) in &trace_rows {
            if !known.contains_key(t.id.as_str()) && counted.insert(t.id.as_str()) {
                out.accepted += 1;
                *trace_counts.entry((hour_of(t.started_ms), *tag_set)).or_default() += 1;
            } else {
                out.duplicates += 1;
            }
        }
        for chunk in trace_rows.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO traces (project_id, id, route_tag, tag_set_id, started_at, ended_at, status) ",
            );
            q.push_values(chunk, |mut b, (t, tag_set)| {
                b.push_bind(project_id)
                    .push_bind(&t.id)
                    .push_bind(&t.route_tag)
                    .push_bind(*tag_set)
                    .push_bind(t.started_ms)
                    .push_bind(t.ended_ms)
                    .push_bind(&t.status);
            });
            // A trace first seen through its events keeps its tag set and the hour it was counted in.
            q.push(
                " ON CONFLICT (project_id, id) DO UPDATE SET route_tag = COALESCE(excluded.route_tag, traces.route_tag),
                  ended_at = COALESCE(excluded.ended_at, traces.ended_at), status = COALESCE(excluded.status, traces.status),
                  started_at = MIN(traces.started_at, excluded.started_at)",
            );
            q.build().execute(&mut *tx).await?;
        }

        // Tags of events that carry none come from their trace (in this batch, or stored).
        let orphan_traces = events
            .iter()
            .filter(|e| e.tags.is_empty())
            .filter_map(|e| e.trace_id.as_deref())
            .filter(|id| !batch_traces.contains_key(id));
        let stored_traces = existing_traces(&mut tx, project_id, orphan_traces).await?;
        let mut resolved = Vec::with_capacity(events.len());
        for e in events {
            let inherited = match (&e.trace_id, e.tags.is_empty()) {
                (Some(id), true) => batch_traces
                    .get(id.as_str())
                    .map(|(ts, rt)| (*ts, rt.map(str::to_string)))
                    .or_else(|| {
                        stored_traces.get(id.as_str()).map(|(ts, rt, user)| {
                            tag_users.insert(*ts, user.clone());
                            (*ts, rt.clone())
                        })
                    }),
                _ => None,
            };
            let (tag_set, route_tag) = match inherited {
                Some((ts, rt)) => (ts, e.route_tag.clone().or(rt)),
                None => {
                    let ts = self.tag_set_id(&mut tx, project_id, &e.tags, &mut fresh_tags).await?;
                    tag_users.insert(ts, e.tags.get(USER_TAG).cloned());
                    (ts, e.route_tag.clone())
                }
            };
            let cost = cost_of(&e.provider, &e.model, &e.usage, e.cost_override_nano);
            resolved.push((e, tag_set, route_tag, cost));
        }

        // Events: the ids actually inserted come back; the rest were already stored.
        // The (trace, provider, agent) combinations already stored, before this batch's events
        // go in: a trace counts once per provider / agent / pair in `trace_dim_hourly`.
        let stored_dims = existing_trace_dims(
            &mut tx,
            project_id,
            resolved.iter().filter_map(|(e, ..)| e.trace_id.as_deref()),
        )
        .await?;
        let mut inserted: HashSet<String> = HashSet::new();
        for chunk in resolved.chunks(400) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (project_id, id, trace_id, ts, kind, provider, model, agent, route_tag,
                   tag_set_id, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                   cache_creation_1h_tokens, cost_nano, cost_source, latency_ms, status, error, tools,
                   prompt, response) ",
            );
            q.push_values(chunk, |mut b, (e, tag_set, route_tag, cost)| {
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
                    .push_bind(if e.is_error { "error" } else { "ok" })
                    .push_bind(&e.error)
                    .push_bind(tools)
                    .push_bind(e.prompt.as_ref().filter(|_| keep_content))
                    .push_bind(e.response.as_ref().filter(|_| keep_content));
            });
            q.push(" ON CONFLICT (project_id, id) DO NOTHING RETURNING id");
            let ids: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
            inserted.extend(ids.into_iter().map(|(id,)| id));
        }

        let mut rollups: HashMap<RollupKey, RollupDelta> = HashMap::new();
        let mut tool_rows: Vec<(&EventIn, &str, i64, Option<i64>)> = Vec::new();
        let mut latencies: HashMap<(i64, &str, &str, &str, i64), i64> = HashMap::new();
        // Each trace's share of the batch's new events.
        let mut per_trace: HashMap<&str, TraceDelta> = HashMap::new();
        // (trace, kind, provider, agent) first seen in this batch → (earliest call, its tag set).
        let mut new_dims: HashMap<(&str, &'static str, &str, &str), (i64, i64)> = HashMap::new();
        for (e, tag_set, route_tag, cost) in &resolved {
            // `remove`: only the first event with an id counts, as only it was inserted.
            if !inserted.remove(&e.id) {
                out.duplicates += 1;
                continue;
            }
            out.accepted += 1;
            if let Some(ms) = e.latency_ms {
                let key = (
                    hour_of(e.ts_ms),
                    e.provider.as_str(),
                    e.model.as_str(),
                    e.agent.as_str(),
                    latency_bucket(ms),
                );
                *latencies.entry(key).or_default() += 1;
            }
            let mut seen_tools: HashSet<&str> = HashSet::new();
            for tool in &e.tools {
                if seen_tools.insert(tool.as_str()) {
                    tool_rows.push((*e, tool.as_str(), *tag_set, cost.nano()));
                }
            }
            if let Some(trace_id) = &e.trace_id {
                for (kind, provider, agent) in [
                    ("p", e.provider.as_str(), ""),
                    ("a", "", e.agent.as_str()),
                    ("pa", e.provider.as_str(), e.agent.as_str()),
                ] {
                    let key = (trace_id.as_str(), kind, provider, agent);
                    let stored = stored_dims.get(trace_id.as_str()).is_some_and(|calls| {
                        calls.iter().any(|(p, a)| match kind {
                            "p" => p == provider,
                            "a" => a == agent,
                            _ => p == provider && a == agent,
                        })
                    });
                    if stored {
                        continue;
                    }
                    let first = new_dims.entry(key).or_insert((e.ts_ms, *tag_set));
                    if e.ts_ms < first.0 {
                        *first = (e.ts_ms, *tag_set);
                    }
                }
                let t = per_trace.entry(trace_id.as_str()).or_insert_with(|| TraceDelta {
                    tag_set: *tag_set,
                    route_tag: route_tag.as_deref(),
                    first_ts: e.ts_ms,
                    last_ts: e.ts_ms,
                    ..TraceDelta::default()
                });
                t.first_ts = t.first_ts.min(e.ts_ms);
                t.last_ts = t.last_ts.max(e.ts_ms);
                t.calls += 1;
                t.errors += i64::from(e.is_error);
                t.unpriced += i64::from(cost.nano().is_none());
                t.tokens += to_i64(e.usage.total());
                t.cost_nano += cost.nano().unwrap_or(0);
            }
            let d = rollups
                .entry((hour_of(e.ts_ms), *tag_set, e.provider.clone(), e.model.clone(), e.agent.clone()))
                .or_default();
            d.events += 1;
            d.errors += i64::from(e.is_error);
            d.unpriced += i64::from(cost.nano().is_none());
            d.input += to_i64(e.usage.input);
            d.output += to_i64(e.usage.output);
            d.cache_read += to_i64(e.usage.cache_read);
            d.cache_creation += to_i64(e.usage.cache_creation);
            d.cost_nano += cost.nano().unwrap_or(0);
            d.latency_sum += e.latency_ms.unwrap_or(0);
            d.max_ts = d.max_ts.max(e.ts_ms);
        }
        // Traces not stored before (neither by an earlier batch nor as a record in this one) are
        // counted in the hour of their first event; all get their events' totals added.
        let mut dim_counts: HashMap<(&'static str, &str, &str, i64, i64), i64> = HashMap::new();
        for ((_, kind, provider, agent), (ts, tag_set)) in &new_dims {
            *dim_counts.entry((kind, provider, agent, hour_of(*ts), *tag_set)).or_default() += 1;
        }
        let dim_counts: Vec<_> = dim_counts.into_iter().collect();
        for chunk in dim_counts.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO trace_dim_hourly (project_id, kind, provider, agent, hour, tag_set_id, traces) ",
            );
            q.push_values(chunk, |mut b, ((kind, provider, agent, hour, tag_set), n)| {
                b.push_bind(project_id)
                    .push_bind(*kind)
                    .push_bind(*provider)
                    .push_bind(*agent)
                    .push_bind(*hour)
                    .push_bind(*tag_set)
                    .push_bind(*n);
            });
            q.push(
                " ON CONFLICT (project_id, kind, provider, agent, hour, tag_set_id)
                  DO UPDATE SET traces = traces + excluded.traces",
            );
            q.build().execute(&mut *tx).await?;
        }
        let known = existing_traces(&mut tx, project_id, per_trace.keys().copied()).await?;
        for (id, t) in &per_trace {
            if !known.contains_key(*id) {
                *trace_counts.entry((hour_of(t.first_ts), t.tag_set)).or_default() += 1;
            }
        }
        let per_trace: Vec<_> = per_trace.into_iter().collect();
        for chunk in per_trace.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO traces (project_id, id, route_tag, tag_set_id, started_at, calls, errors, unpriced,
                   tokens, cost_nano, last_event_at) ",
            );
            q.push_values(chunk, |mut b, (id, t)| {
                b.push_bind(project_id)
                    .push_bind(*id)
                    .push_bind(t.route_tag)
                    .push_bind(t.tag_set)
                    .push_bind(t.first_ts)
                    .push_bind(t.calls)
                    .push_bind(t.errors)
                    .push_bind(t.unpriced)
                    .push_bind(t.tokens)
                    .push_bind(t.cost_nano)
                    .push_bind(t.last_ts);
            });
            q.push(
                " ON CONFLICT (project_id, id) DO UPDATE SET calls = calls + excluded.calls,
                   errors = errors + excluded.errors, unpriced = unpriced + excluded.unpriced,
                   tokens = tokens + excluded.tokens, cost_nano = cost_nano + excluded.cost_nano,
                   last_event_at = MAX(COALESCE(last_event_at, excluded.last_event_at), excluded.last_event_at)",
            );
            q.build().execute(&mut *tx).await?;
        }

        for chunk in tool_rows.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO event_tools (project_id, ts, event_id, tool, trace_id, tag_set_id, user_id, provider,
                   agent, cost_nano) ",
            );
            q.push_values(chunk, |mut b, (e, tool, tag_set, cost)| {
                b.push_bind(project_id)
                    .push_bind(e.ts_ms)
                    .push_bind(&e.id)
                    .push_bind(*tool)
                    .push_bind(&e.trace_id)
                    .push_bind(*tag_set)
                    .push_bind(tag_users.get(tag_set).cloned().flatten())
                    .push_bind(&e.provider)
                    .push_bind(&e.agent)
                    .push_bind(*cost);
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }

        let latencies: Vec<_> = latencies.into_iter().collect();
        for chunk in latencies.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO latency_hourly (project_id, hour, provider, model, agent, bucket, n) ",
            );
            q.push_values(chunk, |mut b, ((hour, provider, model, agent, bucket), n)| {
                b.push_bind(project_id)
                    .push_bind(*hour)
                    .push_bind(*provider)
                    .push_bind(*model)
                    .push_bind(*agent)
                    .push_bind(*bucket)
                    .push_bind(*n);
            });
            q.push(" ON CONFLICT (project_id, hour, provider, model, agent, bucket) DO UPDATE SET n = n + excluded.n");
            q.build().execute(&mut *tx).await?;
        }

        let user_deltas = per_user(&rollups, &trace_counts, &tag_users);
        upsert_user_rollups(&mut tx, project_id, "user_hourly", "hour", &user_deltas).await?;
        let mut daily: HashMap<(i64, &str), UserDelta> = HashMap::new();
        for ((hour, user), d) in &user_deltas {
            daily.entry((hour.div_euclid(24), user)).or_default().add(d);
        }
        upsert_user_rollups(&mut tx, project_id, "user_daily", "day", &daily).await?;
        upsert_user_models(&mut tx, project_id, &rollups, &tag_users).await?;
        upsert_project_totals(&mut tx, project_id, &rollups, &trace_counts).await?;

        let rollups: Vec<_> = rollups.into_iter().collect();
        for chunk in rollups.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO rollup_hourly (project_id, hour, tag_set_id, provider, model, agent, events,
                   errors, unpriced, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                   cost_nano, latency_ms_sum, max_ts) ",
            );
            q.push_values(chunk, |mut b, ((hour, tag_set, provider, model, agent), d)| {
                b.push_bind(project_id)
                    .push_bind(*hour)
                    .push_bind(*tag_set)
                    .push_bind(provider)
                    .push_bind(model)
                    .push_bind(agent)
                    .push_bind(d.events)
                    .push_bind(d.errors)
                    .push_bind(d.unpriced)
                    .push_bind(d.input)
                    .push_bind(d.output)
                    .push_bind(d.cache_read)
                    .push_bind(d.cache_creation)
                    .push_bind(d.cost_nano)
                    .push_bind(d.latency_sum)
                    .push_bind(d.max_ts);
            });
            q.push(
                " ON CONFLICT (project_id, hour, tag_set_id, provider, model, agent) DO UPDATE SET
                   events = events + excluded.events, errors = errors + excluded.errors,
                   unpriced = unpriced + excluded.unpriced, input_tokens = input_tokens + excluded.input_tokens,
                   output_tokens = output_tokens + excluded.output_tokens,
                   cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
                   cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
                   cost_nano = cost_nano + excluded.cost_nano,
                   latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
                   max_ts = MAX(max_ts, excluded.max_ts)",
            );
            q.build().execute(&mut *tx).await?;
        }
        let trace_counts: Vec<_> = trace_counts.into_iter().collect();
        for chunk in trace_counts.chunks(1_000) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO trace_hourly (project_id, hour, tag_set_id, traces) ",
            );
            q.push_values(chunk, |mut b, ((hour, tag_set), n)| {
                b.push_bind(project_id).push_bind(*hour).push_bind(*tag_set).push_bind(*n);
            });
            q.push(
                " ON CONFLICT (project_id, hour, tag_set_id) DO UPDATE SET traces = traces + excluded.traces",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if let Ok(mut cache) = self.tag_cache.lock() {
            cache.extend(fresh_tags);
        }
        if out.accepted > 0 {
            self.bump_version();
        }
        Ok(out)
    }
}

/// Rows of `select` (which ends in `project_id = `) whose `column` is one of `ids`, read with the
/// ids bound in chunks of 1,000 (SQLite caps bound parameters per statement).
async fn rows_for_ids<'a, R>(
    tx: &mut sqlx::SqliteConnection,
    select: &'static str,
    column: &'static str,
    project_id: i64,
    ids: impl Iterator<Item = &'a str>,
) -> Result<Vec<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let ids: Vec<&str> = ids.collect::<HashSet<_>>().into_iter().collect();
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

/// Stored traces among `ids`: id → (tag set, route tag, user).
async fn existing_traces<'a>(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, (i64, Option<String>, Option<String>)>, StoreError> {
    let rows: Vec<(String, i64, Option<String>, Option<String>)> = rows_for_ids(
        tx,
        "SELECT tr.id, tr.tag_set_id, tr.route_tag, ts.user_id FROM traces tr
         JOIN tag_sets ts ON ts.id = tr.tag_set_id WHERE tr.project_id = ",
        "tr.id",
        project_id,
        ids,
    )
    .await?;
    Ok(rows.into_iter().map(|(id, ts, rt, user)| (id, (ts, rt, user))).collect())
}

/// The distinct `(provider, agent)` of each of these traces' stored calls: what is already
/// counted for them in `trace_dim_hourly`.
async fn existing_trace_dims<'a>(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Vec<(String, String)>>, StoreError> {
    let rows: Vec<(String, String, String)> = rows_for_ids(
        tx,
        "SELECT DISTINCT trace_id, provider, agent FROM events WHERE project_id = ",
        "trace_id",
        project_id,
        ids,
    )
    .await?;
    let mut found: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (trace, provider, agent) in rows {
        found.entry(trace).or_default().push((provider, agent));
    }
    Ok(found)
}

/// One trace's share of a batch.
#[derive(Default)]
struct TraceDelta<'a> {
    tag_set: i64,
    route_tag: Option<&'a str>,
    first_ts: i64,
    last_ts: i64,
    calls: i64,
    errors: i64,
    unpriced: i64,
    tokens: i64,
    cost_nano: i64,
}

/// One user's totals in one hour or day.
#[derive(Default)]
struct UserDelta {
    events: i64,
    unpriced: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    cost_nano: i64,
    max_ts: i64,
    traces: i64,
}

impl UserDelta {
    fn add(&mut self, d: &UserDelta) {
        self.events += d.events;
        self.unpriced += d.unpriced;
        self.input += d.input;
        self.output += d.output;
        self.cache_read += d.cache_read;
        self.cache_creation += d.cache_creation;
        self.cost_nano += d.cost_nano;
        self.max_ts = self.max_ts.max(d.max_ts);
        self.traces += d.traces;
    }
}

/// The batch's rollup and trace deltas summed per (hour, user), for tag sets that have a user.
fn per_user<'a>(
    rollups: &HashMap<RollupKey, RollupDelta>,
    trace_counts: &HashMap<(i64, i64), i64>,
    tag_users: &'a HashMap<i64, Option<String>>,
) -> HashMap<(i64, &'a str), UserDelta> {
    let mut out: HashMap<(i64, &str), UserDelta> = HashMap::new();
    for ((hour, tag_set, ..), d) in rollups {
        if let Some(Some(user)) = tag_users.get(tag_set) {
            out.entry((*hour, user.as_str())).or_default().add(&UserDelta {
                events: d.events,
                unpriced: d.unpriced,
                input: d.input,
                output: d.output,
                cache_read: d.cache_read,
                cache_creation: d.cache_creation,
                cost_nano: d.cost_nano,
                max_ts: d.max_ts,
                traces: 0,
            });
        }
    }
    for ((hour, tag_set), n) in trace_counts {
        if let Some(Some(user)) = tag_users.get(tag_set) {
            out.entry((*hour, user.as_str())).or_default().traces += n;
        }
    }
    out
}

/// Adds per-user deltas into `user_hourly` or `user_daily` (`bucket` is `hour` or `day`).
async fn upsert_user_rollups(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    table: &'static str,
    bucket: &'static str,
    deltas: &HashMap<(i64, &str), UserDelta>,
) -> Result<(), StoreError> {
    let rows: Vec<_> = deltas.iter().collect();
    for chunk in rows.chunks(500) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "INSERT INTO {table} (project_id, {bucket}, user_id, events, unpriced, input_tokens, output_tokens,
               cache_read_tokens, cache_creation_tokens, cost_nano, max_ts, traces) "
        ));
        q.push_values(chunk, |mut b, ((at, user), d)| {
            b.push_bind(project_id)
                .push_bind(*at)
                .push_bind(*user)
                .push_bind(d.events)
                .push_bind(d.unpriced)
                .push_bind(d.input)
                .push_bind(d.output)
                .push_bind(d.cache_read)
                .push_bind(d.cache_creation)
                .push_bind(d.cost_nano)
                .push_bind(d.max_ts)
                .push_bind(d.traces);
        });
        q.push(format!(
            " ON CONFLICT (project_id, {bucket}, user_id) DO UPDATE SET
               events = events + excluded.events, unpriced = unpriced + excluded.unpriced,
               input_tokens = input_tokens + excluded.input_tokens,
               output_tokens = output_tokens + excluded.output_tokens,
               cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
               cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
               cost_nano = cost_nano + excluded.cost_nano, max_ts = MAX(max_ts, excluded.max_ts),
               traces = traces + excluded.traces"
        ));
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Adds the batch's spend and events per (user, day, model) into `user_model_daily`.
async fn upsert_user_models(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    rollups: &HashMap<RollupKey, RollupDelta>,
    tag_users: &HashMap<i64, Option<String>>,
) -> Result<(), StoreError> {
    let mut per: HashMap<(&str, i64, &str), (i64, i64)> = HashMap::new();
    for ((hour, tag_set, _, model, _), d) in rollups {
        if let Some(Some(user)) = tag_users.get(tag_set) {
            let e = per.entry((user.as_str(), hour.div_euclid(24), model.as_str())).or_default();
            e.0 += d.cost_nano;
            e.1 += d.events;
        }
    }
    let rows: Vec<_> = per.into_iter().collect();
    for chunk in rows.chunks(1_000) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO user_model_daily (project_id, user_id, day, model, cost_nano, events) ",
        );
        q.push_values(chunk, |mut b, ((user, day, model), (cost, events))| {
            b.push_bind(project_id)
                .push_bind(*user)
                .push_bind(*day)
                .push_bind(*model)
                .push_bind(*cost)
                .push_bind(*events);
        });
        q.push(
            " ON CONFLICT (project_id, user_id, day, model) DO UPDATE SET
               cost_nano = cost_nano + excluded.cost_nano, events = events + excluded.events",
        );
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Adds the batch's rollups into the project-wide `model_hourly`, and its new traces into
/// `project_trace_hourly`.
async fn upsert_project_totals(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    rollups: &HashMap<RollupKey, RollupDelta>,
    trace_counts: &HashMap<(i64, i64), i64>,
) -> Result<(), StoreError> {
    let mut per: HashMap<(i64, &str, &str, &str), RollupDelta> = HashMap::new();
    for ((hour, _, provider, model, agent), d) in rollups {
        let m = per.entry((*hour, provider.as_str(), model.as_str(), agent.as_str())).or_default();
        m.events += d.events;
        m.errors += d.errors;
        m.unpriced += d.unpriced;
        m.input += d.input;
        m.output += d.output;
        m.cache_read += d.cache_read;
        m.cache_creation += d.cache_creation;
        m.cost_nano += d.cost_nano;
        m.latency_sum += d.latency_sum;
    }
    let rows: Vec<_> = per.into_iter().collect();
    for chunk in rows.chunks(500) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO model_hourly (project_id, hour, provider, model, agent, events, errors, unpriced,
               input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost_nano, latency_ms_sum) ",
        );
        q.push_values(chunk, |mut b, ((hour, provider, model, agent), d)| {
            b.push_bind(project_id)
                .push_bind(*hour)
                .push_bind(*provider)
                .push_bind(*model)
                .push_bind(*agent)
                .push_bind(d.events)
                .push_bind(d.errors)
                .push_bind(d.unpriced)
                .push_bind(d.input)
                .push_bind(d.output)
                .push_bind(d.cache_read)
                .push_bind(d.cache_creation)
                .push_bind(d.cost_nano)
                .push_bind(d.latency_sum);
        });
        q.push(
            " ON CONFLICT (project_id, hour, provider, model, agent) DO UPDATE SET
               events = events + excluded.events, errors = errors + excluded.errors,
               unpriced = unpriced + excluded.unpriced, input_tokens = input_tokens + excluded.input_tokens,
               output_tokens = output_tokens + excluded.output_tokens,
               cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
               cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
               cost_nano = cost_nano + excluded.cost_nano, latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum",
        );
        q.build().execute(&mut *tx).await?;
    }
    let mut traces: HashMap<i64, i64> = HashMap::new();
    for ((hour, _), n) in trace_counts {
        *traces.entry(*hour).or_default() += n;
    }
    let rows: Vec<_> = traces.into_iter().collect();
    for chunk in rows.chunks(1_000) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO project_trace_hourly (project_id, hour, traces) ");
        q.push_values(chunk, |mut b, (hour, n)| {
            b.push_bind(project_id).push_bind(*hour).push_bind(*n);
        });
        q.push(" ON CONFLICT (project_id, hour) DO UPDATE SET traces = traces + excluded.traces");
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}
