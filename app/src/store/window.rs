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

/// The longest custom range a view accepts.
pub const MAX_RANGE_DAYS: i64 = 732;

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
    let (from_ms, to_ms) = match (p.pin, &p.from, &p.to) {
        (Some(pin), _, _) => pin,
        (None, Some(f), Some(t)) => (parse("from", f, 0)?, parse("to", t, 1)?),
        _ => (now_ms - p.window.hours() * 3_600_000, now_ms),
    };
    if to_ms <= from_ms {
        return Err(ParamError { param: "to".into(), message: "must be after from".into() });
    }
    if to_ms - from_ms > MAX_RANGE_DAYS * 86_400_000 {
        return Err(ParamError {
            param: "to".into(),
            message: format!("a range spans at most {MAX_RANGE_DAYS} days"),
        });
    }
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
        let f = resolve_filter(&p, 0).expect("resolves");
        assert_eq!(f.from_ms, 1_793_491_200_000); // 2026-11-01T00:00:00Z
        assert_eq!(f.to_ms - f.from_ms, 7 * 86_400_000);
        let p = crate::model::UsersParams::parse_query("from=2020-01-01&to=2026-01-01").expect("valid");
        assert_eq!(resolve_filter(&p, 0).map_err(|e| e.param), Err("to".into()));
        let p = crate::model::UsersParams::parse_query("from=yesterday&to=2026-01-01").expect("valid");
        assert_eq!(resolve_filter(&p, 0).map_err(|e| e.param), Err("from".into()));
    }
}
