//! The Overview, the Tools view and the filter menus, read from the in-memory aggregate; the
//! per-(hour, provider, model) sums here are shared with the Models view.

use super::cube::ProjectCube;
use super::cube::query::{HourScan, Sums};
use super::models::models_of;
use super::window::{hours, rfc3339};
use super::{Store, StoreError};
use crate::model::money::usd_decimal;
use crate::model::{Dir, Kpis, Overview, SpendSeries, Stack, UserSort, UsersFilter};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Users on the Overview.
const TOP_USERS: usize = 5;

/// How many users the filter bar's user menu offers.
const USER_MENU_SIZE: usize = 20;

/// Totals of one (hour, provider, model).
pub(super) struct HourModel {
    pub(super) hour: i64,
    pub(super) provider: String,
    pub(super) model: String,
    pub(super) sums: Sums,
}

/// Series kept by name in a chart; the rest are summed as "other".
const MAX_SERIES: usize = 6;

/// Sums per (hour, provider, model) of a scan (agents merged).
pub(super) fn hour_models(c: &ProjectCube, scan: &HourScan) -> Vec<HourModel> {
    scan.hours
        .iter()
        .map(|(hour, pair, sums)| {
            let (p, m) = scan.pairs[*pair as usize];
            HourModel {
                hour: *hour,
                provider: c.providers.name(p).to_string(),
                model: c.models.name(m).to_string(),
                sums: *sums,
            }
        })
        .collect()
}

fn kpis(scan: &HourScan) -> Kpis {
    Kpis {
        spend_nano: scan.sums.cost,
        traces: scan.traces,
        calls: scan.sums.calls,
        tokens: scan.sums.tokens(),
        active_users: scan.active_users,
        errors: scan.sums.errors,
        unpriced: scan.sums.unpriced,
    }
}

impl Store {
    /// Whether the project has any call of this end user (in any window).
    pub async fn has_user(&self, project_id: i64, user: &str) -> Result<bool, StoreError> {
        let user = user.to_string();
        self.read_cube(project_id, move |c| c.has_user(&user)).await
    }

    /// The Overview of the filter's window: KPIs now and in the window before, spend by model
    /// over time, top users and models.
    pub async fn overview(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        stack: Stack,
    ) -> Result<Overview, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let len = to_hour - from_hour;
        let f = filter.clone();
        let (current, previous, rows, top) = self
            .read_cube(project_id, move |c| {
                let scope = c.scope(&f, from_hour, to_hour);
                let now = c.scan_hours(&scope, false);
                let before = c.scan_hours(&c.scope(&f, from_hour - len, from_hour), false);
                // The top users from the same scan's spend per user.
                let (top, _) = c.rank_users(&scope, &now.user_spend, Dir::Desc, 0, TOP_USERS);
                (kpis(&now), kpis(&before), hour_models(c, &now), top)
            })
            .await?;
        let top_users = top.into_iter().map(super::users::user_row).collect();
        let mut top_models = models_of(&rows);
        top_models.truncate(5);
        let spend_by_model = series_of(&rows, from_hour, to_hour, stack);
        Ok(Overview {
            from: rfc3339(from_hour * 3_600_000),
            to: rfc3339(to_hour * 3_600_000),
            current,
            previous,
            spend_by_model,
            top_users,
            top_models,
        })
    }

    /// Per tool name in the filter's window: calls, distinct users and traces, spend of those calls.
    pub async fn list_tools(
        &self,
        project_id: i64,
        filter: &UsersFilter,
    ) -> Result<Vec<crate::model::ToolRow>, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let f = filter.clone();
        let mut rows = self
            .read_cube(project_id, move |c| {
                let s = c.scope(&f, from_hour, to_hour);
                c.tools(&s)
                    .into_iter()
                    .map(|(tool, (calls, users, traces, spend))| crate::model::ToolRow {
                        tool: c.tools.name(tool).to_string(),
                        calls,
                        users,
                        traces,
                        spend_nano: spend,
                        spend_usd: usd_decimal(spend),
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        rows.sort_by(|a, b| {
            b.spend_nano.cmp(&a.spend_nano).then(b.calls.cmp(&a.calls)).then(a.tool.cmp(&b.tool))
        });
        Ok(rows)
    }

    /// Providers and agents with calls in the filter's window (all of them, whatever else is
    /// filtered, so a menu never offers only the current choice), and the window's biggest
    /// spenders.
    pub async fn filter_values(
        &self,
        project_id: i64,
        filter: &UsersFilter,
    ) -> Result<crate::model::FilterValues, StoreError> {
        let (from_hour, to_hour) = hours(filter);
        let (mut providers, agents) = self
            .read_cube(project_id, move |c| {
                let mut used = vec![false; c.combos.len()];
                for h in c.hours.range(from_hour..to_hour).map(|(_, h)| h) {
                    for combo in &h.combos {
                        used[*combo as usize] = true;
                    }
                }
                let used = |i: &usize| used[*i];
                let providers =
                    (0..c.combos.len()).filter(used).map(|i| c.providers.name(c.combos[i].0).to_string());
                let agents =
                    (0..c.combos.len()).filter(used).map(|i| c.agents.name(c.combos[i].2).to_string());
                (providers.collect::<Vec<_>>(), agents.collect::<Vec<_>>())
            })
            .await?;
        let mut agents: Vec<String> = agents.into_iter().filter(|a| !a.is_empty()).collect();
        providers.sort();
        providers.dedup();
        agents.sort();
        agents.dedup();
        let users = self.user_menu(project_id, filter, (from_hour, to_hour)).await?;
        Ok(crate::model::FilterValues { providers, agents, users })
    }

    /// The window's biggest spenders, for the user menu: recomputed when the data changed,
    /// except that a menu that took long to compute (a big project) is reused for up to
    /// `MENU_REUSE` after a change. Deletion and retention drop the project's menus at once.
    async fn user_menu(
        &self,
        project_id: i64,
        filter: &UsersFilter,
        (from_hour, to_hour): (i64, i64),
    ) -> Result<Vec<String>, StoreError> {
        let all = UsersFilter { from_ms: filter.from_ms, to_ms: filter.to_ms, ..UsersFilter::default() };
        let key = (project_id, from_hour, to_hour);
        let version = self.project_version(project_id);
        let (reuse, forgotten) = {
            let menus = self.user_menus.lock().unwrap_or_else(|e| e.into_inner());
            let reuse = menus
                .menus
                .get(&key)
                .filter(|m| m.version == version || (m.took >= MENU_SLOW && m.at.elapsed() < MENU_REUSE))
                .map(|m| m.users.clone());
            (reuse, menus.forgotten)
        };
        if let Some(users) = reuse {
            return Ok(users);
        }
        let started = Instant::now();
        let users: Vec<String> = self
            .list_users(project_id, &all, UserSort::Spend, Dir::Desc, 0, USER_MENU_SIZE as u32)
            .await?
            .users
            .into_iter()
            .map(|u| u.user_id)
            .collect();
        let took = started.elapsed();
        let mut menus = self.user_menus.lock().unwrap_or_else(|e| e.into_inner());
        // A deletion or retention step while this was computed may have removed a user it
        // lists: answer it this once, but don't keep it.
        if menus.forgotten == forgotten {
            if menus.menus.len() >= MAX_MENUS {
                menus.menus.clear();
            }
            menus.menus.insert(key, UserMenu { version, at: Instant::now(), took, users: users.clone() });
        }
        Ok(users)
    }

    /// Drops a project's user menus (its users changed other than by new calls).
    pub(crate) fn forget_user_menus(&self, project_id: i64) {
        let mut menus = self.user_menus.lock().unwrap_or_else(|e| e.into_inner());
        menus.menus.retain(|(p, ..), _| *p != project_id);
        menus.forgotten += 1;
    }
}

/// One computed user menu.
pub(crate) struct UserMenu {
    version: u64,
    at: Instant,
    took: Duration,
    users: Vec<String>,
}

/// User menus by (project, first hour, end hour), and how many times menus were dropped.
#[derive(Default)]
pub(crate) struct UserMenus {
    menus: HashMap<(i64, i64, i64), UserMenu>,
    forgotten: u64,
}

/// A menu that took at least this long is reused for up to `MENU_REUSE` after the data changed.
const MENU_SLOW: Duration = Duration::from_millis(50);
const MENU_REUSE: Duration = Duration::from_secs(30);
/// User menus kept at most (windows differ per hour and per custom range).
const MAX_MENUS: usize = 256;

/// Most buckets of a spend series.
const MAX_BUCKETS: i64 = 732;

/// Spend per bucket (hours for windows up to two days, else UTC days, or runs of days) per model or provider, the biggest
/// `MAX_SERIES` by name and the rest as "other".
pub(super) fn series_of(rows: &[HourModel], from_hour: i64, to_hour: i64, stack: Stack) -> SpendSeries {
    fn by(stack: Stack) -> fn(&HourModel) -> &str {
        match stack {
            Stack::Model => |r| &r.model,
            Stack::Provider => |r| &r.provider,
        }
    }
    let key = by(stack);
    let per_bucket_hours = if to_hour - from_hour <= 48 {
        1
    } else {
        // Days, or several days a bucket so that a long range has at most MAX_BUCKETS.
        24 * ((to_hour - from_hour + 24 * MAX_BUCKETS - 1) / (24 * MAX_BUCKETS)).max(1)
    };
    let first = from_hour.div_euclid(per_bucket_hours);
    let last = (to_hour - 1).div_euclid(per_bucket_hours);
    let n = (last - first + 1).max(0) as usize;
    let mut totals: HashMap<&str, i64> = HashMap::new();
    for r in rows {
        let total = totals.entry(key(r)).or_default();
        *total = total.saturating_add(r.sums.cost);
    }
    let mut names: Vec<(&str, i64)> = totals.into_iter().filter(|(_, c)| *c > 0).collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: Vec<&str> = names.iter().take(MAX_SERIES).map(|(m, _)| *m).collect();
    let has_other = names.len() > MAX_SERIES;
    let mut series: Vec<(String, Vec<i64>)> = kept.iter().map(|m| (m.to_string(), vec![0; n])).collect();
    if has_other {
        series.push(("other".into(), vec![0; n]));
    }
    for r in rows {
        let i = (r.hour.div_euclid(per_bucket_hours) - first) as usize;
        if i >= n || r.sums.cost == 0 {
            continue;
        }
        let s = kept.iter().position(|m| *m == key(r)).unwrap_or(kept.len());
        if s < series.len() {
            series[s].1[i] = series[s].1[i].saturating_add(r.sums.cost);
        }
    }
    SpendSeries {
        bucket_ms: per_bucket_hours * 3_600_000,
        buckets: (0..n as i64).map(|i| (first + i) * per_bucket_hours * 3_600_000).collect(),
        series,
    }
}
