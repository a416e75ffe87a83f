//! Traces (one row per `withTrace` block, totals kept at ingest), one trace's timeline, one event.

use super::cube::traces::{MaskNeed, TraceQuery, order_key_at, order_key_parts};
use super::window::rfc3339;
use super::{Store, StoreError, hour_of};
use crate::model::money::usd_decimal;
use crate::model::{
    Dir, EventDetail, EventSummary, TraceDetail, TraceRow, TraceSort, TracesPage, UsersFilter,
};
use sqlx::{AssertSqlSafe, FromRow};
use std::collections::{BTreeMap, HashMap};

#[derive(FromRow)]
struct TraceDbRow {
    id: String,
    seq: i64,
    started_at: i64,
    ended_at: Option<i64>,
    route_tag: Option<String>,
    user_id: Option<String>,
    canonical: String,
    calls: i64,
    tokens: i64,
    cost_nano: i64,
    unpriced: i64,
    errors: i64,
    status: Option<String>,
}

impl TraceDbRow {
    /// Where this trace stands in a list sorted by `sort`.
    fn position(&self, sort: TraceSort) -> TraceAfter {
        let col = match sort {
            TraceSort::Started => self.started_at,
            TraceSort::Spend => self.cost_nano,
            TraceSort::Calls => self.calls,
            TraceSort::Tokens => self.tokens,
        };
        TraceAfter { col, seq: self.seq as u32 }
    }

    fn row(&self) -> TraceRow {
        TraceRow {
            trace_id: self.id.clone(),
            started_at: rfc3339(self.started_at),
            route_tag: self.route_tag.clone(),
            user_id: self.user_id.clone(),
            calls: self.calls,
            tokens: self.tokens,
            spend_nano: self.cost_nano,
            spend_usd: usd_decimal(self.cost_nano),
            unpriced_events: self.unpriced,
            errors: self.errors,
            duration_ms: self.ended_at.map(|e| e - self.started_at),
            status: match (&self.status, self.errors) {
                (Some(s), _) => s.clone(),
                (None, 0) => "ok".into(),
                (None, _) => "error".into(),
            },
        }
    }
}

#[derive(FromRow)]
struct EventDbRow {
    id: String,
    trace_id: Option<String>,
    ts: i64,
    kind: String,
    provider: String,
    model: String,
    agent: String,
    route_tag: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_creation_tokens: i64,
    cache_creation_1h_tokens: i64,
    cost_nano: Option<i64>,
    cost_source: String,
    latency_ms: Option<i64>,
    status: String,
    error: Option<String>,
    tools: Option<String>,
    /// Inline (calls stored before migration 13), or as the ids of `texts` rows.
    prompt: Option<String>,
    response: Option<String>,
    prompt_texts: Option<String>,
    response_texts: Option<String>,
    usage_detail: Option<String>,
    canonical: String,
}

impl EventDbRow {
    fn summary(&self, trace_start: i64) -> EventSummary {
        EventSummary {
            event_id: self.id.clone(),
            timestamp: rfc3339(self.ts),
            offset_ms: self.ts - trace_start,
            kind: self.kind.clone(),
            provider: self.provider.clone(),
            model: self.model.clone(),
            agent: self.agent.clone(),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_creation_tokens: self.cache_creation_tokens,
            cost_nano: self.cost_nano,
            latency_ms: self.latency_ms,
            status: self.status.clone(),
            tools: self.tools.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default(),
        }
    }
}

const EVENT_COLUMNS: &str = "e.id, e.trace_id, e.ts, e.kind, e.provider, e.model, e.agent, e.route_tag,
    e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_creation_tokens, e.cache_creation_1h_tokens,
    e.cost_nano, e.cost_source, e.latency_ms, e.status, e.error, e.tools, e.usage_detail, ts.canonical";
/// A call's prompt and response, as its own page reads them.
const CONTENT_COLUMNS: &str = "e.prompt, e.response, e.prompt_texts, e.response_texts";
/// The same columns empty: a trace's list of calls shows no prompts.
const NO_CONTENT: &str = "NULL AS prompt, NULL AS response, NULL AS prompt_texts, NULL AS response_texts";

fn tags_of(canonical: &str) -> BTreeMap<String, String> {
    serde_json::from_str(canonical).unwrap_or_default()
}

/// The list's window: the filter's range widened to whole hours.
fn trace_window(filter: &UsersFilter) -> (i64, i64) {
    (hour_of(filter.from_ms) * 3_600_000, hour_of(filter.to_ms + 3_599_999) * 3_600_000)
}

/// Which traces a list holds and in what order: the filter, a route-tag search, the sort.
#[derive(Clone, Copy, Debug)]
pub struct TraceList<'a> {
    pub filter: &'a UsersFilter,
    pub search: Option<&'a str>,
    pub sort: TraceSort,
    pub dir: Dir,
}

/// A place in a trace list: the sort column's value and the `seq` of the trace there (the
/// position an export's next page starts after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceAfter {
    pub col: i64,
    pub seq: u32,
}

/// Which rows of a list [`Store::traces_sql`] reads, and whether it counts them all.
#[derive(Clone, Copy)]
struct SqlPage {
    offset: u32,
    limit: u32,
    after: Option<TraceAfter>,
    count: bool,
}

fn traces_page(
    from_ms: i64,
    to_ms: i64,
    total: i64,
    offset: u32,
    limit: u32,
    rows: &[TraceDbRow],
) -> TracesPage {
    let next = i64::from(offset) + rows.len() as i64;
    TracesPage {
        from: rfc3339(from_ms),
        to: rfc3339(to_ms),
        total_traces: total,
        next_cursor: (rows.len() as u32 == limit && next < total)
            .then(|| crate::model::query::cursor(next as u32, from_ms, to_ms)),
        traces: rows.iter().map(TraceDbRow::row).collect(),
    }
}

fn order_column(sort: TraceSort) -> &'static str {
    match sort {
        TraceSort::Started => "tr.started_at",
        TraceSort::Spend => "tr.cost_nano",
        TraceSort::Calls => "tr.calls",
        TraceSort::Tokens => "tr.tokens",
    }
}

/// The columns of a trace row (with `tr` the trace and `ts` its tag set).
const TRACE_COLUMNS: &str =
    "tr.id, tr.seq, tr.started_at, tr.ended_at, tr.route_tag, ts.user_id, ts.canonical,
    tr.calls, tr.tokens, tr.cost_nano, tr.unpriced, tr.errors, tr.status";

impl Store {
    /// Traces that started in the filter's window (whole hours, like the Users view), narrowed by
    /// user, tags, provider, agent and a route-tag substring, one page in `sort` order (ties:
    /// the trace stored later first when descending).
    ///
    /// The aggregate's trace index picks the page and counts the matches; SQLite reads the
    /// page's rows. A provider and an agent filter together (which must hold for one call), or
    /// a provider or agent past the index's 15 distinct bits, go to SQL (`list_traces_sql`).
    #[expect(clippy::too_many_arguments, reason = "the list query's parameters, each distinct")]
    pub async fn list_traces(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        search: Option<&str>,
        sort: TraceSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<TracesPage, StoreError> {
        let (from_ms, to_ms) = trace_window(filter);
        let want = offset as usize + limit as usize;
        let list = TraceList { filter, search, sort, dir };
        let Some((total, picks)) = self.pick_traces(project_id, &list, want, None).await? else {
            let page = SqlPage { offset, limit, after: None, count: true };
            let (rows, total) = self.traces_sql(project_id, &list, page).await?;
            return Ok(traces_page(from_ms, to_ms, total.unwrap_or_default(), offset, limit, &rows));
        };
        let rows = self.traces_in_order(project_id, picks.get(offset as usize..).unwrap_or_default()).await?;
        Ok(traces_page(from_ms, to_ms, total, offset, limit, &rows))
    }

    /// A page of a trace list for an export: after `after` (where the previous page ended), or
    /// on the first page after `offset` traces; and where the next page starts (`None` at the
    /// end). Keyset paging: each page costs the same wherever it is in the list. A trace whose
    /// totals change during an export may move in a list sorted by them.
    pub async fn export_traces_page(
        &self,
        project_id: i64,
        list: &TraceList<'_>,
        offset: u32,
        after: Option<TraceAfter>,
        limit: u32,
    ) -> Result<(Vec<TraceRow>, Option<TraceAfter>), StoreError> {
        let (sort, dir) = (list.sort, list.dir);
        let offset = if after.is_some() { 0 } else { offset };
        let want = offset as usize + limit as usize;
        let before = after.map(|a| order_key_at(dir, a.col, a.seq));
        match self.pick_traces(project_id, list, want, before).await? {
            Some((_, picks)) => {
                let page = picks.get(offset as usize..).unwrap_or_default();
                let rows = self.traces_in_order(project_id, page).await?;
                // From the index's last pick, not the last row: that row may have been deleted.
                let next = page.last().filter(|_| picks.len() == want).map(|(key, _)| {
                    let (col, seq) = order_key_parts(dir, *key);
                    TraceAfter { col, seq }
                });
                Ok((rows.iter().map(TraceDbRow::row).collect(), next))
            }
            None => {
                let page = SqlPage { offset, limit, after, count: false };
                let (rows, _) = self.traces_sql(project_id, list, page).await?;
                let next = rows.last().filter(|_| rows.len() == limit as usize).map(|r| r.position(sort));
                Ok((rows.iter().map(TraceDbRow::row).collect(), next))
            }
        }
    }

    /// The trace index's best `want` traces (after `before`, an order key) and how many match
    /// in all; `None` when the index can't answer the filter (see [`Self::list_traces`]).
    async fn pick_traces(
        &self,
        project_id: i64,
        list: &TraceList<'_>,
        want: usize,
        before: Option<i128>,
    ) -> Result<Option<(i64, Vec<(i128, u32)>)>, StoreError> {
        if !self.aggregate_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(None);
        }
        let (from_ms, to_ms) = trace_window(list.filter);
        let (f, search, sort, dir) =
            (list.filter.clone(), list.search.map(str::to_string), list.sort, list.dir);
        self.read_cube(project_id, move |c| {
            let need = match c.trace_mask_need(f.provider.as_deref(), f.agent.as_deref()) {
                MaskNeed::Bits(b) => b,
                MaskNeed::NoTrace => return Some((0, Vec::new())),
                MaskNeed::CantTell => return None,
            };
            let scope = c.scope(&f, hour_of(from_ms), hour_of(to_ms));
            let routes = search.as_deref().map(|s| c.routes_matching(s));
            Some(c.trace_picks(&TraceQuery {
                scope: &scope,
                from_ms,
                to_ms,
                routes,
                need,
                sort,
                dir,
                want,
                before,
            }))
        })
        .await
    }

    /// The rows of the picked traces in the picks' order; rows deleted since the index was
    /// read are left out.
    async fn traces_in_order(
        &self,
        project_id: i64,
        picks: &[(i128, u32)],
    ) -> Result<Vec<TraceDbRow>, StoreError> {
        let seqs: Vec<u32> = picks.iter().map(|(_, seq)| *seq).collect();
        let mut rows = self.traces_by_seq(project_id, &seqs).await?;
        let at: HashMap<u32, usize> = seqs.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        rows.sort_by_key(|r| at.get(&(r.seq as u32)).copied().unwrap_or(usize::MAX));
        Ok(rows)
    }

    /// The rows of these traces (any order). Through `traces_seq` by name: without statistics
    /// the planner would walk the project's whole primary key.
    async fn traces_by_seq(&self, project_id: i64, seqs: &[u32]) -> Result<Vec<TraceDbRow>, StoreError> {
        let mut rows = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT {TRACE_COLUMNS} FROM traces tr INDEXED BY traces_seq
                 JOIN tag_sets ts ON ts.id = tr.tag_set_id WHERE tr.project_id = "
            ));
            q.push_bind(project_id).push(" AND tr.seq IN (");
            let mut list = q.separated(", ");
            for s in chunk {
                list.push_bind(i64::from(*s));
            }
            q.push(")");
            rows.extend(q.build_query_as::<TraceDbRow>().fetch_all(&self.read).await?);
        }
        Ok(rows)
    }

    /// `list_traces` in SQL alone: the tests' reference.
    #[cfg(test)]
    #[expect(clippy::too_many_arguments, reason = "the list query's parameters, each distinct")]
    pub(crate) async fn list_traces_sql(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        search: Option<&str>,
        sort: TraceSort,
        dir: Dir,
        offset: u32,
        limit: u32,
    ) -> Result<TracesPage, StoreError> {
        let (from_ms, to_ms) = trace_window(filter);
        let page = SqlPage { offset, limit, after: None, count: true };
        let (rows, total) =
            self.traces_sql(project_id, &TraceList { filter, search, sort, dir }, page).await?;
        Ok(traces_page(from_ms, to_ms, total.unwrap_or_default(), offset, limit, &rows))
    }

    /// A page of a trace list in SQL alone (and how many match, when `page.count`): for the
    /// filters the trace index can't answer and before the aggregate is loaded.
    async fn traces_sql(
        &self,
        project_id: i64,
        list: &TraceList<'_>,
        page: SqlPage,
    ) -> Result<(Vec<TraceDbRow>, Option<i64>), StoreError> {
        let TraceList { filter, search, sort, dir } = *list;
        let SqlPage { offset, limit, after, count: counted } = page;
        let (from_ms, to_ms) = trace_window(filter);
        let tags = super::sql::tag_clauses("tr.tag_set_id", filter.tags.len(), 8);
        let (col, dir_sql) = (order_column(sort), dir.as_str());
        let n = 8 + 2 * filter.tags.len();
        // Through the (tag set, start) index when a user is given: one user's traces, not a walk
        // over everyone's.
        let user_cond = if filter.user.is_some() {
            "AND tr.tag_set_id IN (SELECT id FROM tag_sets WHERE project_id = ?1 AND user_id = ?4)"
        } else {
            "AND ?4 IS NULL"
        };
        let conditions = format!(
            "tr.project_id = ?1 AND (tr.started_at >> 16) BETWEEN (?2 >> 16) AND (?3 >> 16)
             AND tr.started_at >= ?2 AND tr.started_at < ?3 {user_cond}
               AND (?5 IS NULL OR instr(lower(COALESCE(tr.route_tag, '')), lower(?5)) > 0)
               AND ((?6 IS NULL AND ?7 IS NULL) OR EXISTS (
                 SELECT 1 FROM events e WHERE e.project_id = tr.project_id AND e.trace_seq IS NOT NULL
                   AND e.trace_seq = tr.seq AND (?6 IS NULL OR e.provider = ?6) AND (?7 IS NULL OR e.agent = ?7)
                 UNION ALL
                 SELECT 1 FROM events e WHERE e.project_id = tr.project_id AND e.trace_seq IS NULL
                   AND e.trace_id = tr.id
                   AND (?6 IS NULL OR e.provider = ?6) AND (?7 IS NULL OR e.agent = ?7))) {tags}"
        );
        let count_sql = format!("SELECT COUNT(*) FROM traces tr WHERE {conditions}");
        // After a position: the rows past it in list order.
        let keyset = match (after, dir) {
            (None, _) => String::new(),
            (Some(_), Dir::Desc) => format!("AND ({col}, tr.seq) < (?{}, ?{})", n + 2, n + 3),
            (Some(_), Dir::Asc) => format!("AND ({col}, tr.seq) > (?{}, ?{})", n + 2, n + 3),
        };
        let sql = format!(
            "SELECT {TRACE_COLUMNS}
             FROM traces tr JOIN tag_sets ts ON ts.id = tr.tag_set_id
             WHERE {conditions} {keyset}
             ORDER BY {col} {dir_sql}, tr.seq {dir_sql}
             LIMIT ?{n} OFFSET ?{}",
            n + 1
        );
        let mut q = sqlx::query_as::<_, TraceDbRow>(AssertSqlSafe(sql))
            .bind(project_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(&filter.user)
            .bind(search)
            .bind(&filter.provider)
            .bind(&filter.agent);
        let mut count = sqlx::query_as::<_, (i64,)>(AssertSqlSafe(count_sql))
            .bind(project_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(&filter.user)
            .bind(search)
            .bind(&filter.provider)
            .bind(&filter.agent);
        for (k, v) in &filter.tags {
            q = q.bind(k).bind(v);
            count = count.bind(k).bind(v);
        }
        let mut q = q.bind(i64::from(limit)).bind(i64::from(offset));
        if let Some(a) = after {
            q = q.bind(a.col).bind(i64::from(a.seq));
        }
        let rows = q.fetch_all(&self.read).await?;
        let total = if counted { Some(count.fetch_one(&self.read).await?.0) } else { None };
        Ok((rows, total))
    }

    /// One trace with its tags and the first page of its events in time order, or `None`.
    pub async fn get_trace(
        &self,
        project_id: i64,
        trace_id: &str,
    ) -> Result<Option<TraceDetail>, StoreError> {
        self.get_trace_page(project_id, trace_id, None, crate::model::traces::TRACE_CALLS_PAGE).await
    }

    /// One trace with its tags and at most `limit` of its events in time order after `after`
    /// (a call's time and id, from [`crate::model::traces::parse_calls_cursor`]), or `None`.
    /// Only the page is read into memory, however many calls the trace has.
    pub async fn get_trace_page(
        &self,
        project_id: i64,
        trace_id: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Option<TraceDetail>, StoreError> {
        let row: Option<TraceDbRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {TRACE_COLUMNS} FROM traces tr JOIN tag_sets ts ON ts.id = tr.tag_set_id
             WHERE tr.project_id = ?1 AND tr.id = ?2"
        )))
        .bind(project_id)
        .bind(trace_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        // By the trace's seq, and by its id among calls stored without one (see migration 11).
        // The indexes are named: to sort by time SQLite would otherwise walk the time index.
        // Keyset paging: the calls after the cursor's (time, id), one more than the page to
        // know whether another follows.
        const AFTER: &str = "AND (e.ts > ?4 OR (e.ts = ?4 AND e.id > ?5))";
        let (after_ts, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let mut events: Vec<EventDbRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT * FROM (
               SELECT {EVENT_COLUMNS}, {NO_CONTENT} FROM events e INDEXED BY events_trace_seq
                 JOIN tag_sets ts ON ts.id = e.tag_set_id
                WHERE e.project_id = ?1 AND e.trace_seq IS NOT NULL AND e.trace_seq = ?3 {AFTER}
               UNION ALL
               SELECT {EVENT_COLUMNS}, {NO_CONTENT} FROM events e INDEXED BY events_trace
                 JOIN tag_sets ts ON ts.id = e.tag_set_id
                WHERE e.project_id = ?1 AND e.trace_seq IS NULL AND e.trace_id = ?2 {AFTER})
             ORDER BY ts, id LIMIT ?6"
        )))
        .bind(project_id)
        .bind(trace_id)
        .bind(row.seq)
        .bind(after_ts)
        .bind(&after_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let more = events.len() > limit as usize;
        events.truncate(limit as usize);
        let next_cursor =
            events.last().filter(|_| more).map(|e| crate::model::traces::calls_cursor(e.ts, &e.id));
        Ok(Some(TraceDetail {
            trace: row.row(),
            tags: tags_of(&row.canonical),
            ended_at: row.ended_at.map(rfc3339),
            events: events.iter().map(|e| e.summary(row.started_at)).collect(),
            next_cursor,
        }))
    }

    /// One event in full, or `None`.
    pub async fn get_event(
        &self,
        project_id: i64,
        event_id: &str,
    ) -> Result<Option<EventDetail>, StoreError> {
        // The calls whose id hashes the same (see `event_keys`), then the one with this id.
        // Keys another process wrote since are read first.
        let keys = self.event_keys().await?;
        super::ingest::catch_up_keys(&mut *self.read.acquire().await?, keys).await?;
        let rowids =
            keys.read().unwrap_or_else(|e| e.into_inner()).candidates(self.key_hash(project_id, event_id));
        if rowids.is_empty() {
            return Ok(None);
        }
        let list = rowids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let row: Option<EventDbRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS}, {CONTENT_COLUMNS} FROM events e JOIN tag_sets ts ON ts.id = e.tag_set_id
             WHERE e.rowid IN ({list}) AND e.project_id = ?1 AND e.id = ?2"
        )))
        .bind(project_id)
        .bind(event_id)
        .fetch_optional(&self.read)
        .await?;
        let Some(mut e) = row else { return Ok(None) };
        for (inline, kept) in [(&mut e.prompt, &e.prompt_texts), (&mut e.response, &e.response_texts)] {
            if let Some(kept) = kept {
                *inline = super::texts::load(&self.read, project_id, kept).await?;
            }
        }
        let detail: serde_json::Value =
            e.usage_detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        let part = |k: &str| detail.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
        Ok(Some(EventDetail {
            summary: e.summary(e.ts),
            trace_id: e.trace_id.clone(),
            route_tag: e.route_tag.clone(),
            tags: tags_of(&e.canonical),
            cache_creation_1h_tokens: e.cache_creation_1h_tokens,
            reasoning_tokens: part("reasoning_tokens"),
            audio_input_tokens: part("audio_input_tokens"),
            audio_output_tokens: part("audio_output_tokens"),
            usage_estimated: detail.get("estimated").and_then(serde_json::Value::as_bool).unwrap_or(false),
            cost_source: e.cost_source.clone(),
            reported_cost_usd: detail.get("reported_cost_usd").and_then(|c| c.as_str()).map(str::to_string),
            error: e.error.clone(),
            prompt: e.prompt.clone(),
            response: e.response.clone(),
        }))
    }
}
