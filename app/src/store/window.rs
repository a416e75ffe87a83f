//! Time windows: a filter's hour range, RFC 3339 formatting, and resolving a view's `window` or
//! `from`/`to` into a filter. Pure functions.

use crate::model::{ParamError, UsersFilter};

/// RFC 3339 (UTC, seconds) of a millisecond timestamp.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Hour range of a filter: `from` floored, `to` ceiled to whole hours (`to` exclusive).
pub fn hours(filter: &UsersFilter) -> (i64, i64) {
    (super::hour_of(filter.from_ms), super::hour_of(filter.to_ms + 3_599_999))
}

/// How far past now a range reads (ingest refuses calls more than a day ahead).
pub const MAX_AHEAD_MS: i64 = 86_400_000;

/// The time range and tags a query reads: `from`/`to` (RFC 3339 or dates) when given, else the
/// window ending at `now_ms`.
pub fn resolve_filter<S: crate::model::SortKey>(
    p: &crate::model::ViewParams<S>,
    now_ms: i64,
) -> Result<UsersFilter, ParamError> {
    // A bound is an RFC 3339 instant, or a UTC date: `from` its start, `to` its end (the day
    // after's start), so `from=2026-11-01&to=2026-11-07` is those seven whole days.
    let parse = |name: &str, v: &str, day_offset: i64| {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
            return Ok(t.timestamp_millis());
        }
        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() + day_offset * 86_400_000)
            .ok_or_else(|| ParamError {
                param: name.into(),
                message: "must be an RFC 3339 timestamp or a YYYY-MM-DD date".into(),
            })
    };
    let from = p.from.as_deref().map(|f| parse("from", f, 0)).transpose()?;
    let to = p.to.as_deref().map(|t| parse("to", t, 1)).transpose()?;
    let (from_ms, to_ms) = match (p.pin, from, to) {
        (Some(pin), _, _) => pin,
        (None, Some(f), Some(t)) => (f, t),
        // One bound alone: from then to now, or the window before `to`.
        (None, Some(f), None) => (f, now_ms),
        (None, None, Some(t)) => (t.saturating_sub(p.window.hours() * 3_600_000), t),
        _ => (now_ms - p.window.hours() * 3_600_000, now_ms),
    };
    // No call is stored before 1970 or more than a day ahead (ingest refuses them), so a bound
    // outside that span reads the same as the span's end; a range that ends before it starts
    // is empty (its answer echoes both bounds).
    let latest = now_ms.saturating_add(MAX_AHEAD_MS);
    let from_ms = from_ms.clamp(0, latest);
    let to_ms = to_ms.clamp(0, latest).max(from_ms);
    Ok(UsersFilter {
        from_ms,
        to_ms,
        tags: p.tags.clone(),
        user: p.user.clone(),
        provider: p.provider.clone(),
        agent: p.agent.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_bound_whole_utc_days_and_ranges_are_capped() {
        let p = crate::model::UsersParams::parse_query("from=2026-11-01&to=2026-11-07").expect("valid");
        let now = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        let f = resolve_filter(&p, now).expect("resolves");
        assert_eq!(f.from_ms, 1_793_491_200_000); // 2026-11-01T00:00:00Z
        assert_eq!(f.to_ms - f.from_ms, 7 * 86_400_000);
        // Bounds are clamped to [1970, now + 1 day]; an inverted range is empty.
        let p = crate::model::UsersParams::parse_query("from=1960-01-01&to=2099-01-01").expect("valid");
        let f = resolve_filter(&p, now).expect("resolves");
        assert_eq!((f.from_ms, f.to_ms), (0, now + MAX_AHEAD_MS));
        let p = crate::model::UsersParams::parse_query("from=2026-11-07&to=2026-11-01").expect("valid");
        let f = resolve_filter(&p, now).expect("resolves");
        assert_eq!(f.to_ms, f.from_ms);
        // One bound alone: from it to now, or the window before it.
        let p = crate::model::UsersParams::parse_query("from=2026-10-01").expect("valid");
        assert_eq!(resolve_filter(&p, now).map(|f| f.to_ms), Ok(now));
        let p = crate::model::UsersParams::parse_query("to=2026-10-01&window=7d").expect("valid");
        let f = resolve_filter(&p, now).expect("resolves");
        assert_eq!(f.to_ms - f.from_ms, 7 * 86_400_000);
        let p = crate::model::UsersParams::parse_query("from=yesterday&to=2026-01-01").expect("valid");
        assert_eq!(resolve_filter(&p, 0).map_err(|e| e.param), Err("from".into()));
    }
}
