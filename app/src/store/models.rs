//! The Models view: per-model totals from the same per-hour sums as the Overview, plus latency
//! percentiles (from the aggregate's latency histograms) and distinct users per model.

use super::overview::{HourModel, hour_models, series_of};
use super::window::hours;
use super::{Store, StoreError};
use crate::model::latency::percentile;
use crate::model::money::usd_decimal;
use crate::model::{ModelRow, Stack, UsersFilter};
use std::collections::{BTreeMap, HashMap};

impl Store {
    /// Per-model totals in the filter's window, by spend.
    pub async fn list_models(
        &self,
        project_id: i64,
        filter: &UsersFilter,
    ) -> Result<crate::model::ModelsView, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let f = filter.clone();
        let (rows, hist, users) = self
            .read_cube(project_id, move |c| {
                let s = c.scope(&f, from_hour, to_hour);
                let name =
                    |(p, m): (u32, u32)| (c.providers.name(p).to_string(), c.models.name(m).to_string());
                let hist: HashMap<(String, String), Vec<(i64, i64)>> =
                    c.latency(&s).into_iter().map(|(k, h)| (name(k), h)).collect();
                let scan = c.scan_hours(&s, true);
                let users: HashMap<(String, String), i64> =
                    scan.pairs.iter().zip(&scan.users_per_pair).map(|(k, n)| (name(*k), *n)).collect();
                (hour_models(c, &scan), hist, users)
            })
            .await?;
        let spend_by_model = series_of(&rows, from_hour, to_hour, Stack::Model);
        let mut models = models_of(&rows);
        for m in &mut models {
            let key = (m.provider.clone(), m.model.clone());
            if let Some(h) = hist.get(&key) {
                m.p50_latency_ms = percentile(h, 500);
                m.p95_latency_ms = percentile(h, 950);
            }
            m.users = Some(users.get(&key).copied().unwrap_or(0));
        }
        Ok(crate::model::ModelsView {
            models,
            chart_svg: crate::charts::spend_chart(&spend_by_model),
            spend_by_model,
        })
    }
}

pub(super) fn models_of(rows: &[HourModel]) -> Vec<ModelRow> {
    let mut by: BTreeMap<(&str, &str), (ModelRow, i64)> = BTreeMap::new();
    for r in rows {
        let (m, latency) = by.entry((&r.provider, &r.model)).or_insert_with(|| {
            (ModelRow { provider: r.provider.clone(), model: r.model.clone(), ..ModelRow::default() }, 0)
        });
        let s = &r.sums;
        m.calls += s.calls;
        m.errors += s.errors;
        m.unpriced += s.unpriced;
        m.input_tokens += s.input;
        m.output_tokens += s.output;
        m.cache_read_tokens += s.cache_read;
        m.cache_creation_tokens += s.cache_creation;
        m.spend_nano += s.cost;
        *latency += s.latency;
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
