//! The Users view: its query (window, tag filters, sort, page) and its rows.

use serde::{Deserialize, Serialize};

/// A fixed time window ending now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Window {
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[default]
    #[serde(rename = "28d")]
    Days28,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Days28];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "1d",
            Window::Week => "7d",
            Window::Days28 => "28d",
        }
    }

    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }

    pub fn hours(self) -> i64 {
        match self {
            Window::Day => 24,
            Window::Week => 7 * 24,
            Window::Days28 => 28 * 24,
        }
    }
}

/// Columns the Users table can be sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserSort {
    User,
    #[default]
    Spend,
    Traces,
    Events,
    Tokens,
    LastSeen,
    TopModel,
}

impl UserSort {
    pub const ALL: [UserSort; 7] = [
        UserSort::User,
        UserSort::Spend,
        UserSort::Traces,
        UserSort::Events,
        UserSort::Tokens,
        UserSort::LastSeen,
        UserSort::TopModel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserSort::User => "user",
            UserSort::Spend => "spend",
            UserSort::Traces => "traces",
            UserSort::Events => "events",
            UserSort::Tokens => "tokens",
            UserSort::LastSeen => "last_seen",
            UserSort::TopModel => "top_model",
        }
    }

    pub fn parse(s: &str) -> Option<UserSort> {
        UserSort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The direction a first click on the column sorts in: text ascending, numbers descending.
    pub fn natural_dir(self) -> Dir {
        match self {
            UserSort::User | UserSort::TopModel => Dir::Asc,
            _ => Dir::Desc,
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Asc,
    #[default]
    Desc,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    pub fn parse(s: &str) -> Option<Dir> {
        match s {
            "asc" => Some(Dir::Asc),
            "desc" => Some(Dir::Desc),
            _ => None,
        }
    }

    pub fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

/// What narrows the Users view: a time range (ms since the epoch, `from` inclusive, `to`
/// exclusive, aligned to whole hours) and tag filters AND-ed together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub tags: Vec<(String, String)>,
    /// Only this end user.
    pub user: Option<String>,
    /// Only calls to this provider / by this agent.
    pub provider: Option<String>,
    pub agent: Option<String>,
}

impl UsersFilter {
    /// True when a provider or agent narrows the calls (the per-user and per-trace totals, which
    /// sum all of a user's calls, can't answer then).
    pub fn narrows_calls(&self) -> bool {
        self.provider.is_some() || self.agent.is_some()
    }
}

/// One user's row in the Users view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserRow {
    pub user_id: String,
    /// `spend_nano` as an exact decimal string of dollars.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^-?[0-9]+(\.[0-9]+)?$"))]
    pub spend_usd: String,
    /// Sum of priced events' cost; unpriced events are counted in `unpriced_events`.
    pub spend_nano: i64,
    pub traces: i64,
    pub events: i64,
    /// input + output + cache_read + cache_creation.
    pub tokens: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub unpriced_events: i64,
    /// RFC 3339, UTC.
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub last_seen: String,
    /// The model this user spent most on (by events when nothing is priced).
    pub top_model: String,
}

/// One page of the Users view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsersPage {
    /// RFC 3339 bounds of the window actually read (hour-aligned).
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub from: String,
    #[cfg_attr(feature = "ssr", schema(format = DateTime))]
    pub to: String,
    pub users: Vec<UserRow>,
    /// Users in the whole window (all pages).
    pub total_users: i64,
    /// Offset of the next page, or `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Most rows one page may hold.
pub const MAX_PAGE: u32 = 500;
/// Rows per page when not asked.
pub const DEFAULT_PAGE: u32 = 50;
