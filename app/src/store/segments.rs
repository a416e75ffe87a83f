//! Segments: the aggregate's sums per tag set in the window, grouped by the value each tag set
//! has for the chosen key, so any key works without a structure of its own.

use super::cube::NONE;
use super::cube::query::Sums;
use super::window::{hours, rfc3339};
use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::{SegmentRow, SegmentsView, UsersFilter};
use std::collections::HashMap;

impl Store {
    /// Spend, users, traces, calls and tokens per value of tag `by` in the filter's window.
    /// Without `by`, groups by `plan` when that key is in use, else by the first key other than
    /// `userId` (no segments at all when the project has no tags). With `limit`, only the
    /// biggest that many (`total_segments` still counts them all).
    pub async fn segments(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        by: Option<&str>,
        limit: Option<usize>,
    ) -> Result<SegmentsView, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let f = filter.clone();
        let by = by.map(str::to_string);
        let (by, keys, segments) = self
            .read_cube(project_id, move |c| {
                let keys = c.tag_keys();
                let by = match by {
                    Some(by) => by,
                    None => {
                        let pick = keys
                            .iter()
                            .find(|k| *k == "plan")
                            .or_else(|| keys.iter().find(|k| *k != "userId"))
                            .or(keys.first());
                        match pick {
                            Some(k) => k.clone(),
                            None => return (None, keys, Vec::new()),
                        }
                    }
                };
                // Each tag set's group: the position of its value for the key among the values.
                let key = c.keys.get(&by);
                let mut index: HashMap<u32, u32> = HashMap::new();
                let mut values: Vec<u32> = Vec::new();
                let group_of: Vec<u32> = (0..c.tag_sets.len() as u32)
                    .map(|ts| match key.and_then(|k| c.value_of(ts, k)) {
                        None => NONE,
                        Some(v) => *index.entry(v).or_insert_with(|| {
                            values.push(v);
                            values.len() as u32 - 1
                        }),
                    })
                    .collect();
                let s = c.scope(&f, from_hour, to_hour);
                let (sums, traces, seen) = c.per_group(&s, &group_of, values.len());
                // Distinct users per group, from the tag sets that had calls.
                let mut pairs: Vec<(u32, u32)> = seen
                    .iter()
                    .enumerate()
                    .filter(|(ts, had)| **had && c.user_of[*ts] != NONE)
                    .map(|(ts, _)| (group_of[ts], c.user_of[ts]))
                    .collect();
                pairs.sort_unstable();
                pairs.dedup();
                let mut users: HashMap<u32, i64> = HashMap::new();
                for (g, _) in pairs {
                    *users.entry(g).or_default() += 1;
                }
                let segments: Vec<(Option<String>, Sums, i64, i64)> = (0..=values.len())
                    .filter(|g| sums[*g].calls > 0)
                    .map(|g| {
                        let (value, id) = match values.get(g) {
                            Some(v) => (Some(c.values.name(*v).to_string()), g as u32),
                            None => (None, NONE),
                        };
                        (value, sums[g], traces[g], users.get(&id).copied().unwrap_or(0))
                    })
                    .collect();
                (Some(by), keys, segments)
            })
            .await?;
        let Some(by) = by else {
            return Ok(SegmentsView { keys, ..SegmentsView::default() });
        };
        let total: i64 = segments.iter().map(|(_, s, ..)| s.cost).sum();
        let mut segments: Vec<SegmentRow> = segments
            .into_iter()
            .map(|(value, s, traces, users)| SegmentRow {
                value,
                spend_nano: s.cost,
                spend_usd: usd_decimal(s.cost),
                share_permille: if total > 0 { s.cost * 1000 / total } else { 0 },
                users,
                traces,
                calls: s.calls,
                errors: s.errors,
                unpriced_events: s.unpriced,
                tokens: s.tokens(),
                input_tokens: s.input,
                output_tokens: s.output,
                cache_read_tokens: s.cache_read,
                cache_creation_tokens: s.cache_creation,
            })
            .collect();
        segments.sort_by(|a, b| {
            b.spend_nano
                .cmp(&a.spend_nano)
                .then(b.calls.cmp(&a.calls))
                .then(a.value.is_none().cmp(&b.value.is_none()))
                .then(a.value.cmp(&b.value))
        });
        let total_segments = segments.len() as i64;
        segments.truncate(limit.unwrap_or(usize::MAX));
        Ok(SegmentsView {
            from: rfc3339(from_hour * 3_600_000),
            to: rfc3339(to_hour * 3_600_000),
            by,
            segments,
            total_segments,
            keys,
        })
    }

    /// Tag keys used in a project, alphabetically.
    pub async fn tag_keys(&self, project_id: i64) -> Result<Vec<String>, StoreError> {
        self.read_cube(project_id, |c| c.tag_keys()).await
    }
}
