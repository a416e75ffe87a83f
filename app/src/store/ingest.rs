//! Writing a batch of events and traces: idempotent on ids, priced once, rollups merged in
//! memory per batch and applied in the same transaction (so a committed batch is fully visible).

use super::{Store, StoreError, hour_of};
use crate::pricing::{Usage, cost_of};
use std::collections::{BTreeMap, HashMap};

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
        if let Some(id) = self
            .tag_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
        {
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
    /// project are counted as duplicates and change nothing. An event without tags inherits the
    /// tags and route tag of its trace.
    pub async fn ingest(
        &self,
        project_id: i64,
        traces: &[TraceIn],
        events: &[EventIn],
    ) -> Result<IngestOutcome, StoreError> {
        let mut out = IngestOutcome::default();
        let mut fresh_tags = HashMap::new();
        let mut rollups: HashMap<RollupKey, RollupDelta> = HashMap::new();
        let mut trace_counts: HashMap<(i64, i64), i64> = HashMap::new();
        let mut tx = self.write.begin().await?;

        for t in traces {
            let tag_set = self
                .tag_set_id(&mut tx, project_id, &t.tags, &mut fresh_tags)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO traces (project_id, id, route_tag, tag_set_id, started_at, ended_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (project_id, id) DO NOTHING",
            )
            .bind(project_id)
            .bind(&t.id)
            .bind(&t.route_tag)
            .bind(tag_set)
            .bind(t.started_ms)
            .bind(t.ended_ms)
            .bind(&t.status)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                out.accepted += 1;
                *trace_counts
                    .entry((hour_of(t.started_ms), tag_set))
                    .or_default() += 1;
            } else {
                // The trace was first seen through one of its events (or sent before): complete
                // it. Its count stays in the hour it was first seen.
                out.duplicates += 1;
                sqlx::query(
                    "UPDATE traces SET route_tag = COALESCE(?3, route_tag), ended_at = COALESCE(?4, ended_at),
                     status = COALESCE(?5, status), started_at = MIN(started_at, ?6)
                     WHERE project_id = ?1 AND id = ?2",
                )
                .bind(project_id)
                .bind(&t.id)
                .bind(&t.route_tag)
                .bind(t.ended_ms)
                .bind(&t.status)
                .bind(t.started_ms)
                .execute(&mut *tx)
                .await?;
            }
        }

        for e in events {
            let (tag_set, route_tag) = match (&e.trace_id, e.tags.is_empty()) {
                (Some(trace_id), true) => {
                    let trace: Option<(i64, Option<String>)> = sqlx::query_as(
                        "SELECT tag_set_id, route_tag FROM traces WHERE project_id = ?1 AND id = ?2",
                    )
                    .bind(project_id)
                    .bind(trace_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match trace {
                        Some((ts, rt)) => (ts, e.route_tag.clone().or(rt)),
                        None => {
                            let ts = self
                                .tag_set_id(&mut tx, project_id, &e.tags, &mut fresh_tags)
                                .await?;
                            (ts, e.route_tag.clone())
                        }
                    }
                }
                _ => {
                    let ts = self
                        .tag_set_id(&mut tx, project_id, &e.tags, &mut fresh_tags)
                        .await?;
                    (ts, e.route_tag.clone())
                }
            };
            let cost = cost_of(&e.provider, &e.model, &e.usage, e.cost_override_nano);
            let tools =
                (!e.tools.is_empty()).then(|| serde_json::to_string(&e.tools).unwrap_or_default());
            let inserted = sqlx::query(
                "INSERT INTO events (project_id, id, trace_id, ts, kind, provider, model, agent, route_tag,
                   tag_set_id, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                   cache_creation_1h_tokens, cost_nano, cost_source, latency_ms, status, error, tools,
                   prompt, response)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                   ?19, ?20, ?21, ?22, ?23)
                 ON CONFLICT (project_id, id) DO NOTHING",
            )
            .bind(project_id)
            .bind(&e.id)
            .bind(&e.trace_id)
            .bind(e.ts_ms)
            .bind(&e.kind)
            .bind(&e.provider)
            .bind(&e.model)
            .bind(&e.agent)
            .bind(&route_tag)
            .bind(tag_set)
            .bind(to_i64(e.usage.input))
            .bind(to_i64(e.usage.output))
            .bind(to_i64(e.usage.cache_read))
            .bind(to_i64(e.usage.cache_creation))
            .bind(to_i64(e.usage.cache_creation_1h))
            .bind(cost.nano())
            .bind(cost.source())
            .bind(e.latency_ms)
            .bind(if e.is_error { "error" } else { "ok" })
            .bind(&e.error)
            .bind(tools)
            .bind(&e.prompt)
            .bind(&e.response)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                out.duplicates += 1;
                continue;
            }
            out.accepted += 1;
            if let Some(trace_id) = &e.trace_id {
                let new_trace = sqlx::query(
                    "INSERT INTO traces (project_id, id, route_tag, tag_set_id, started_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project_id, id) DO NOTHING",
                )
                .bind(project_id)
                .bind(trace_id)
                .bind(&route_tag)
                .bind(tag_set)
                .bind(e.ts_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if new_trace == 1 {
                    *trace_counts.entry((hour_of(e.ts_ms), tag_set)).or_default() += 1;
                }
            }
            let d = rollups
                .entry((
                    hour_of(e.ts_ms),
                    tag_set,
                    e.provider.clone(),
                    e.model.clone(),
                    e.agent.clone(),
                ))
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

        for ((hour, tag_set, provider, model, agent), d) in &rollups {
            sqlx::query(
                "INSERT INTO rollup_hourly (project_id, hour, tag_set_id, provider, model, agent, events,
                   errors, unpriced, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                   cost_nano, latency_ms_sum, max_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (project_id, hour, tag_set_id, provider, model, agent) DO UPDATE SET
                   events = events + excluded.events, errors = errors + excluded.errors,
                   unpriced = unpriced + excluded.unpriced, input_tokens = input_tokens + excluded.input_tokens,
                   output_tokens = output_tokens + excluded.output_tokens,
                   cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
                   cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
                   cost_nano = cost_nano + excluded.cost_nano,
                   latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum,
                   max_ts = MAX(max_ts, excluded.max_ts)",
            )
            .bind(project_id)
            .bind(hour)
            .bind(tag_set)
            .bind(provider)
            .bind(model)
            .bind(agent)
            .bind(d.events)
            .bind(d.errors)
            .bind(d.unpriced)
            .bind(d.input)
            .bind(d.output)
            .bind(d.cache_read)
            .bind(d.cache_creation)
            .bind(d.cost_nano)
            .bind(d.latency_sum)
            .bind(d.max_ts)
            .execute(&mut *tx)
            .await?;
        }
        for ((hour, tag_set), n) in &trace_counts {
            sqlx::query(
                "INSERT INTO trace_hourly (project_id, hour, tag_set_id, traces) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project_id, hour, tag_set_id) DO UPDATE SET traces = traces + excluded.traces",
            )
            .bind(project_id)
            .bind(hour)
            .bind(tag_set)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if let Ok(mut cache) = self.tag_cache.lock() {
            cache.extend(fresh_tags);
        }
        Ok(out)
    }
}
