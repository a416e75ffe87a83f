//! The Models view: per-model totals from the same hourly reads as the Overview, plus latency
//! percentiles and users per model.

use super::overview::{HourModel, narrowed, scoped, series_of, user_cond};
use super::users::{HourRanges, events_scan, tag_clauses};
use super::{Store, StoreError};
use crate::model::latency::{latency_bucket, percentile};
use crate::model::money::usd_decimal;
use crate::model::{ModelRow, Stack, UsersFilter};
use std::collections::{BTreeMap, HashMap, HashSet};

impl Store {
    /// Per-model totals in the filter's window, by spend.
    pub async fn list_models(
        &self,
        project_id: i64,
        filter: &UsersFilter,
    ) -> Result<crate::model::ModelsView, StoreError> {
        let r = HourRanges::of(filter);
        let rows = self.hour_models(project_id, filter, r.from_hour, r.to_hour).await?;
        let spend_by_model = series_of(&rows, r.from_hour, r.to_hour, Stack::Model);
        let mut models = models_of(&rows);
        let (hist, users) = tokio::try_join!(
            self.latency_histograms(project_id, filter, &r),
            self.users_per_model(project_id, filter, &r, &models)
        )?;
        let mut per: HashMap<(String, String), Vec<(i64, i64)>> = HashMap::new();
        for (provider, model, bucket, n) in hist {
            per.entry((provider, model)).or_default().push((bucket, n));
        }
        for m in &mut models {
            if let Some(h) = per.get(&(m.provider.clone(), m.model.clone())) {
                m.p50_latency_ms = percentile(h, 500);
                m.p95_latency_ms = percentile(h, 950);
            }
            m.users = Some(users.get(&(m.provider.clone(), m.model.clone())).copied().unwrap_or(0));
        }
        Ok(crate::model::ModelsView {
            models,
            chart_svg: crate::charts::spend_chart(&spend_by_model),
            spend_by_model,
        })
    }

    /// Latency histograms `(provider, model, bucket, calls)` of the window: from the hourly
    /// histograms, or, when a user or tag narrows the view, bucketed from the calls themselves.
    async fn latency_histograms(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        r: &HourRanges,
    ) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
        if !narrowed(filter) {
            return Ok(sqlx::query_as(
                "SELECT provider, model, bucket, SUM(n) FROM latency_hourly
                 WHERE project_id = ?1 AND hour >= ?2 AND hour < ?3
                   AND (?4 IS NULL OR provider = ?4) AND (?5 IS NULL OR agent = ?5)
                 GROUP BY provider, model, bucket",
            )
            .bind(project_id)
            .bind(r.from_hour)
            .bind(r.to_hour)
            .bind(&filter.provider)
            .bind(&filter.agent)
            .fetch_all(&self.read)
            .await?);
        }
        let tags = tag_clauses("e.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "e");
        let events = events_scan(filter, "e");
        let sql = format!(
            "SELECT e.provider, e.model, e.latency_ms, COUNT(*) FROM {events}
             WHERE e.project_id = ?1 AND e.ts >= ?2 * 3600000 AND e.ts < ?3 * 3600000
               AND e.latency_ms IS NOT NULL {user}
               AND (?5 IS NULL OR e.provider = ?5) AND (?6 IS NULL OR e.agent = ?6) {tags}
             GROUP BY e.provider, e.model, e.latency_ms"
        );
        let rows: Vec<(String, String, i64, i64)> =
            scoped(sql, project_id, filter, r.from_hour, r.to_hour).fetch_all(&self.read).await?;
        let mut hist: HashMap<(String, String, i64), i64> = HashMap::new();
        for (provider, model, ms, n) in rows {
            *hist.entry((provider, model, latency_bucket(ms))).or_default() += n;
        }
        Ok(hist.into_iter().map(|((p, m, b), n)| (p, m, b, n)).collect())
    }

    /// Distinct end users per `(provider, model)` in the window. Unnarrowed (or narrowed only by
    /// provider), whole days come from `user_model_daily` and the edge hours from the rollups;
    /// otherwise everything comes from the filtered rollups. `models` are the window's models as
    /// already read (under the filter), which give each model its provider.
    async fn users_per_model(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        r: &HourRanges,
        models: &[ModelRow],
    ) -> Result<HashMap<(String, String), i64>, StoreError> {
        if !narrowed(filter) && filter.agent.is_none() && r.first_day < r.end_day {
            // Whole days from user_model_daily, the edge hours from the rollups (each a plain
            // range on a primary key), merged here; user_model_daily has no provider, but a model
            // name belongs to one provider.
            let days = sqlx::query_as::<_, (String, String)>(
                "SELECT model, user_id FROM user_model_daily
                 WHERE project_id = ?1 AND day >= ?2 AND day < ?3 AND events > 0",
            )
            .bind(project_id)
            .bind(r.first_day)
            .bind(r.end_day)
            .fetch_all(&self.read);
            let edge = |from: i64, to: i64| {
                sqlx::query_as::<_, (String, String)>(
                    "SELECT DISTINCT r.model, t.user_id FROM rollup_hourly r JOIN tag_sets t ON t.id = r.tag_set_id
                     WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 AND t.user_id IS NOT NULL",
                )
                .bind(project_id)
                .bind(from)
                .bind(to)
                .fetch_all(&self.read)
            };
            let (days, head, tail) =
                tokio::try_join!(days, edge(r.from_hour, r.head_end), edge(r.tail_start, r.to_hour))?;
            let pairs: HashSet<(String, String)> = days.into_iter().chain(head).chain(tail).collect();
            let provider_of: HashMap<&str, &str> =
                models.iter().map(|m| (m.model.as_str(), m.provider.as_str())).collect();
            let mut out: HashMap<(String, String), i64> = HashMap::new();
            for (model, _) in pairs {
                if let Some(provider) = provider_of.get(model.as_str()) {
                    *out.entry((provider.to_string(), model)).or_default() += 1;
                }
            }
            return Ok(out);
        }
        let tags = tag_clauses("r.tag_set_id", filter.tags.len(), 7);
        let user = user_cond(filter, "r");
        let sql = format!(
            "SELECT r.provider, r.model, COUNT(DISTINCT t.user_id) FROM rollup_hourly r
             JOIN tag_sets t ON t.id = r.tag_set_id
             WHERE r.project_id = ?1 AND r.hour >= ?2 AND r.hour < ?3 AND t.user_id IS NOT NULL {user}
               AND (?5 IS NULL OR r.provider = ?5) AND (?6 IS NULL OR r.agent = ?6) {tags}
             GROUP BY r.provider, r.model"
        );
        let rows: Vec<(String, String, i64)> =
            scoped(sql, project_id, filter, r.from_hour, r.to_hour).fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(|(p, m, n)| ((p, m), n)).collect())
    }
}

pub(super) fn models_of(rows: &[HourModel]) -> Vec<ModelRow> {
    let mut by: BTreeMap<(&str, &str), (ModelRow, i64)> = BTreeMap::new();
    for r in rows {
        let (m, latency) = by.entry((&r.provider, &r.model)).or_insert_with(|| {
            (ModelRow { provider: r.provider.clone(), model: r.model.clone(), ..ModelRow::default() }, 0)
        });
        m.calls += r.events;
        m.errors += r.errors;
        m.unpriced += r.unpriced;
        m.input_tokens += r.input;
        m.output_tokens += r.output;
        m.cache_read_tokens += r.cache_read;
        m.cache_creation_tokens += r.cache_creation;
        m.spend_nano += r.cost;
        *latency += r.latency;
    }
    let mut out: Vec<ModelRow> = by
        .into_values()
        .map(|(mut m, latency)| {
            m.spend_usd = usd_decimal(m.spend_nano);
            m.avg_latency_ms = if m.calls > 0 { latency / m.calls } else { 0 };
            m
        })
        .collect();
    out.sort_by(|a, b| {
        b.spend_nano.cmp(&a.spend_nano).then(b.calls.cmp(&a.calls)).then(a.model.cmp(&b.model))
    });
    out
}
