//! Projects, keys, sessions and deletions as the dashboard's settings and user pages see them.

use serde::{Deserialize, Serialize};

/// What a project keeps of each call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Privacy {
    /// Prompts and responses are kept.
    #[default]
    Full,
    /// Prompts and responses are dropped at ingest; tokens, cost and tags are kept.
    Minimal,
}

impl Privacy {
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Full => "full",
            Privacy::Minimal => "minimal",
        }
    }

    pub fn parse(s: &str) -> Option<Privacy> {
        [Privacy::Full, Privacy::Minimal].into_iter().find(|p| p.as_str() == s)
    }
}

/// A project and its settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInfo {
    pub id: i64,
    pub name: String,
    pub privacy: Privacy,
    /// Days of data kept; `None` keeps everything.
    pub retention_days: Option<i64>,
    pub created_at: i64,
    /// When the privacy mode last changed (it applies to events ingested after).
    pub privacy_changed_at: Option<i64>,
}

/// A key as listed: its prefix only, never the secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: i64,
    pub project: String,
    pub scope: String,
    /// The first characters of the key (`tt_read_1a2b3`), enough to recognise it.
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// What a user deletion removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Removed {
    pub events: i64,
    pub traces: i64,
}

/// One logged deletion: who, when and which user (as an HMAC under the install's secret; the
/// id itself is not kept; empty for deletions logged before the HMAC).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRecord {
    pub at: i64,
    pub actor: String,
    pub user_id_hmac: String,
    pub events: i64,
    pub traces: i64,
}

/// Who is looking, at which project, and the token their forms send back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub login_required: bool,
    pub user: Option<String>,
    pub csrf: String,
    pub project: i64,
    /// `(id, name)` of every project, for the switcher.
    pub projects: Vec<(i64, String)>,
}

/// The settings page of the current project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub project: ProjectInfo,
    pub keys: Vec<KeyInfo>,
    pub deletions: Vec<DeletionRecord>,
    pub csrf: String,
}

/// `YYYY-MM-DD HH:MM UTC` of a millisecond timestamp (no date library in the browser bundle).
pub fn utc_minute(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_minutes() {
        assert_eq!(super::utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_minute(1_793_491_200_000 + 3_723_000), "2026-11-01 01:02 UTC");
        assert_eq!(super::utc_minute(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
