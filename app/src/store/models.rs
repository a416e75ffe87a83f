//! The Models view: per-model totals from the same per-hour sums as the Overview, plus latency
//! percentiles (from the aggregate's latency histograms) and distinct users per model.

use super::cube::query::Sums;
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
        Ok(crate::model::ModelsView { models, spend_by_model })
    }
}

pub(super) fn models_of(rows: &[HourModel]) -> Vec<ModelRow> {
    let mut by: BTreeMap<(&str, &str), Sums> = BTreeMap::new();
    for r in rows {
        by.entry((&r.provider, &r.model)).or_default().merge(&r.sums);
    }
    let mut out: Vec<ModelRow> = by
        .into_iter()
        .map(|((provider, model), s)| ModelRow {
            provider: provider.to_string(),
            model: model.to_string(),
            calls: s.calls,
            errors: s.errors,
            unpriced: s.unpriced,
            input_tokens: s.input,
            output_tokens: s.output,
            cache_read_tokens: s.cache_read,
            cache_creation_tokens: s.cache_creation,
            spend_nano: s.cost,
            spend_usd: usd_decimal(s.cost),
            avg_latency_ms: if s.calls > 0 { s.latency / s.calls } else { 0 },
            ..ModelRow::default()
        })
        .collect();
    out.sort_by(|a, b| {
        b.spend_nano.cmp(&a.spend_nano).then(b.calls.cmp(&a.calls)).then(a.model.cmp(&b.model))
    });
    out
}
