//! One page per file.

pub mod event_page;
pub mod models_page;
mod not_found_page;
pub mod overview_page;
pub mod segments_page;
mod settings_page;
pub mod tools_page;
pub mod trace_page;
pub mod traces_page;
mod user_page;
mod users_page;

pub use event_page::EventPage;
pub use models_page::ModelsPage;
pub use not_found_page::NotFoundPage;
pub use overview_page::OverviewPage;
pub use segments_page::SegmentsPage;
pub use settings_page::SettingsPage;
pub use tools_page::ToolsPage;
pub use trace_page::TracePage;
pub use traces_page::TracesPage;
pub use user_page::UserPage;
pub use users_page::UsersPage;

use crate::model::{SortKey, ViewParams};
use leptos::prelude::{Memo, With};
use leptos_router::hooks::use_query_map;

/// The page's URL query: the raw string (what server functions receive) and the parsed view
/// parameters (defaults where the URL has none or a bad value; the server function reports it).
pub(crate) fn use_view_query<S: SortKey + Send + Sync>() -> (Memo<String>, Memo<ViewParams<S>>) {
    let query = use_query_map();
    let raw = Memo::new(move |_| query.with(|q| q.to_query_string()));
    // Parsed from the raw string as the server parses it (every value of a repeated key, like
    // `tag=`), so the links the server renders and the controls here agree.
    let params = Memo::new(move |_| {
        raw.with(|r| ViewParams::<S>::parse_query(r.trim_start_matches('?')).unwrap_or_default())
    });
    (raw, params)
}
