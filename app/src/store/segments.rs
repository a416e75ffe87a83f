//! Segments: the aggregate's sums per tag set in the window, grouped by the value each tag set
//! has for the chosen key, so any key works without a structure of its own.

use super::cube::query::{Sums, segment_order};
use super::cube::{NONE, USER_TAG};
use super::window::{hours, rfc3339};
use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::{SegmentRow, SegmentsView, UsersFilter};

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
        let (by, keys, segments, total_cost, total_segments) = self
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
                            None => return (None, keys, Vec::new(), 0, 0),
                        }
                    }
                };
                let s = c.scope(&f, from_hour, to_hour);
                if let (true, Some(keep)) = (by == USER_TAG, limit) {
                    // A page of the biggest users: ranked on three columns, only they summed whole.
                    let (kept, total_cost, total) = c.top_user_segments(&s, keep);
                    let segments = kept
                        .into_iter()
                        .map(|(u, sums, traces)| {
                            let name = (u != NONE).then(|| c.users.name(u).to_string());
                            (name, sums, traces, i64::from(u != NONE))
                        })
                        .collect();
                    return (Some(by), keys, segments, total_cost, total);
                }
                let (values, sums, traces, users) = if by == USER_TAG {
                    // By user, a group is a user (numbered as the users are: the rows are in user
                    // order, so the sums are written in order), with one user when it had calls.
                    let values: Vec<u32> = (0..c.users.len() as u32)
                        .map(|u| c.values.get(c.users.name(u)).unwrap_or(NONE))
                        .collect();
                    let (sums, traces) = c.per_user(&s);
                    let mut users: Vec<i64> = sums.iter().map(|x| i64::from(x.calls > 0)).collect();
                    users[values.len()] = 0;
                    (values, sums, traces, users)
                } else {
                    // Each tag set's group: the position of its value for the key among the
                    // values.
                    let key = c.keys.get(&by);
                    let mut index = vec![NONE; c.values.len()];
                    let mut values: Vec<u32> = Vec::new();
                    let group_of: Vec<u32> = (0..c.tag_sets.len() as u32)
                        .map(|ts| match key.and_then(|k| c.value_of(ts, k)) {
                            None => NONE,
                            Some(v) => {
                                if index[v as usize] == NONE {
                                    index[v as usize] = values.len() as u32;
                                    values.push(v);
                                }
                                index[v as usize]
                            }
                        })
                        .collect();
                    let (sums, traces, seen) = c.per_group(&s, &group_of, values.len());
                    let users = c.users_per_group(&seen, &group_of, values.len());
                    (values, sums, traces, users)
                };
                // Ranked by spend, then calls, then value (no value last); only the kept ones
                // get their names copied.
                let total_cost: i64 = sums.iter().map(|s| s.cost).sum();
                let mut groups: Vec<usize> = (0..=values.len()).filter(|g| sums[*g].calls > 0).collect();
                let total_segments = groups.len() as i64;
                let name = |g: usize| values.get(g).map(|v| c.values.name(*v));
                let order = |a: &usize, b: &usize| {
                    segment_order(
                        (sums[*a].cost, sums[*a].calls, || name(*a)),
                        (sums[*b].cost, sums[*b].calls, || name(*b)),
                    )
                };
                // Only the kept ones need to be in order: select them, then sort them.
                let keep = limit.unwrap_or(usize::MAX);
                if keep < groups.len() {
                    groups.select_nth_unstable_by(keep, order);
                    groups.truncate(keep);
                }
                groups.sort_unstable_by(order);
                let segments: Vec<(Option<String>, Sums, i64, i64)> = groups
                    .into_iter()
                    .map(|g| (name(g).map(str::to_string), sums[g], traces[g], users[g]))
                    .collect();
                (Some(by), keys, segments, total_cost, total_segments)
            })
            .await?;
        let Some(by) = by else {
            return Ok(SegmentsView { keys, ..SegmentsView::default() });
        };
        let segments: Vec<SegmentRow> = segments
            .into_iter()
            .map(|(value, s, traces, users)| SegmentRow {
                value,
                spend_nano: s.cost,
                spend_usd: usd_decimal(s.cost),
                share_permille: if total_cost > 0 { s.cost * 1000 / total_cost } else { 0 },
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
