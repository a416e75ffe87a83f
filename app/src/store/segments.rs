//! Segments: the window's rollups summed per tag set in SQL, then grouped by the value each tag
//! set has for the chosen key (a side lookup on `tag_kv`), so any key works without its own table.

use super::overview::{scoped, user_cond};
use super::users::{HourRanges, rfc3339, tag_clauses, trace_dim_cond};
use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::{SegmentRow, SegmentsView, UsersFilter};
use sqlx::FromRow;
use std::collections::{HashMap, HashSet};

#[derive(FromRow)]
struct TagSetSums {
    tag_set_id: i64,
    events: i64,
    errors: i64,
    unpriced: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    cost: i64,
}

impl Store {
    /// Spend, users, traces, calls and tokens per value of tag `by` in the filter's window.
    /// Without `by`, groups by `plan` when that key is in use, else by the first key other than
    /// `userId` (no segments at all when the project has no tags).
    pub async fn segments(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        by: Option<&str>,
    ) -> Result<SegmentsView, StoreError> {
        let (by, known_keys) = match by {
            Some(by) => (by.to_string(), None),
            None => {
                let keys = self.tag_keys(project_id).await?;
                let pick =
                    keys.iter().find(|k| *k == "plan").or_else(|| keys.iter().find(|k| *k != "userId"));
                match pick.or(keys.first()) {
                    Some(k) => (k.clone(), Some(keys)),
                    None => return Ok(SegmentsView { keys, ..SegmentsView::default() }),
                }
            }
        };
        let by = by.as_str();
        let r = HourRanges::of(filter);
        let tags = tag_clauses("r.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "r");
        let sql = format!(
            "SELECT r.tag_set_id AS tag_set_id, SUM(r.events) AS events, SUM(r.errors) AS errors,
               SUM(r.unpriced) AS unpriced, SUM(r.input_tokens) AS input, SUM(r.output_tokens) AS output,
               SUM(r.cache_read_tokens) AS cache_read, SUM(r.cache_creation_tokens) AS cache_creation,
               SUM(r.cost_nano) AS cost
             FROM rollup_hourly r
             WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 {user}
               AND (?5 IS NULL OR r.provider = ?5) AND (?6 IS NULL OR r.agent = ?6) {tags}
             GROUP BY r.tag_set_id"
        );
        // Four independent reads, run side by side on the read pool.
        let sums = async {
            Ok::<_, StoreError>(
                scoped::<TagSetSums>(sql, project_id, filter, r.from_hour, r.to_hour)
                    .fetch_all(&self.read)
                    .await?,
            )
        };
        let values = self.pairs(
            "SELECT kv.tag_set_id, kv.value FROM tag_kv kv JOIN tag_sets t ON t.id = kv.tag_set_id
             WHERE kv.key = ?2 AND t.project_id = ?1",
            project_id,
            Some(by),
        );
        let users = self.pairs(
            "SELECT id, user_id FROM tag_sets WHERE project_id = ?1 AND user_id IS NOT NULL AND ?2 IS NULL",
            project_id,
            None,
        );
        let traces = self.traces_per_tag_set(project_id, filter, &r);
        let keys = async {
            match known_keys {
                Some(keys) => Ok(keys),
                None => self.tag_keys(project_id).await,
            }
        };
        let (sums, values, users, traces, keys) = tokio::try_join!(sums, values, users, traces, keys)?;

        let mut rows: HashMap<Option<&str>, (SegmentRow, HashSet<&str>)> = HashMap::new();
        let mut total = 0i64;
        for s in &sums {
            let value = values.get(&s.tag_set_id).map(String::as_str);
            let (row, seen) = rows.entry(value).or_insert_with(|| {
                (SegmentRow { value: value.map(str::to_string), ..SegmentRow::default() }, HashSet::new())
            });
            row.spend_nano += s.cost;
            row.calls += s.events;
            row.errors += s.errors;
            row.unpriced_events += s.unpriced;
            row.input_tokens += s.input;
            row.output_tokens += s.output;
            row.cache_read_tokens += s.cache_read;
            row.cache_creation_tokens += s.cache_creation;
            row.traces += traces.get(&s.tag_set_id).copied().unwrap_or(0);
            seen.extend(users.get(&s.tag_set_id).map(String::as_str));
            total += s.cost;
        }
        let mut segments: Vec<SegmentRow> = rows
            .into_values()
            .map(|(mut row, seen)| {
                row.users = seen.len() as i64;
                row.tokens =
                    row.input_tokens + row.output_tokens + row.cache_read_tokens + row.cache_creation_tokens;
                row.spend_usd = usd_decimal(row.spend_nano);
                row.share_permille = if total > 0 { row.spend_nano * 1000 / total } else { 0 };
                row
            })
            .collect();
        segments.sort_by(|a, b| {
            b.spend_nano
                .cmp(&a.spend_nano)
                .then(b.calls.cmp(&a.calls))
                .then(a.value.is_none().cmp(&b.value.is_none()))
                .then(a.value.cmp(&b.value))
        });
        Ok(SegmentsView {
            from: rfc3339(r.from_hour * 3_600_000),
            to: rfc3339(r.to_hour * 3_600_000),
            by: by.to_string(),
            segments,
            keys,
        })
    }

    /// A tag-set-to-string map read by `sql` (?1 the project, ?2 `arg`).
    async fn pairs(
        &self,
        sql: &'static str,
        project_id: i64,
        arg: Option<&str>,
    ) -> Result<HashMap<i64, String>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as(sql).bind(project_id).bind(arg).fetch_all(&self.read).await?;
        Ok(rows.into_iter().collect())
    }

    /// Traces per tag set in the window: from the hourly trace counts, or, when a provider or
    /// agent narrows the calls, the traces with such a call (`trace_dim_hourly`).
    async fn traces_per_tag_set(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        r: &HourRanges,
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let tags = tag_clauses("h.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "h");
        let sql = if filter.narrows_calls() {
            let dims = trace_dim_cond(filter, "h", 5, 6);
            format!(
                "SELECT h.tag_set_id, SUM(h.traces) FROM trace_dim_hourly h
                 WHERE h.project_id = ?1 {dims} AND h.hour >= ?2 AND h.hour < ?3 {user} {tags}
                 GROUP BY h.tag_set_id"
            )
        } else {
            // Provider and agent are unset here; the clause only names ?5 and ?6.
            format!(
                "SELECT h.tag_set_id, SUM(h.traces) FROM trace_hourly h
                 WHERE h.project_id = ?1 AND h.hour >= ?2 AND h.hour < ?3 {user}
                   AND ?5 IS NULL AND ?6 IS NULL {tags}
                 GROUP BY h.tag_set_id"
            )
        };
        let rows: Vec<(i64, i64)> =
            scoped(sql, project_id, filter, r.from_hour, r.to_hour).fetch_all(&self.read).await?;
        Ok(rows.into_iter().collect())
    }

    /// Tag keys used in a project, alphabetically.
    pub async fn tag_keys(&self, project_id: i64) -> Result<Vec<String>, StoreError> {
        let keys: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT kv.key FROM tag_kv kv JOIN tag_sets t ON t.id = kv.tag_set_id
             WHERE t.project_id = ?1 ORDER BY kv.key",
        )
        .bind(project_id)
        .fetch_all(&self.read)
        .await?;
        Ok(keys.into_iter().map(|(k,)| k).collect())
    }
}
