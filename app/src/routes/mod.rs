//! One page per file.

mod event_page;
mod models_page;
mod not_found_page;
mod overview_page;
mod tools_page;
mod trace_page;
mod traces_page;
mod user_page;
mod users_page;

pub use event_page::EventPage;
pub use models_page::ModelsPage;
pub use not_found_page::NotFoundPage;
pub use overview_page::OverviewPage;
pub use tools_page::ToolsPage;
pub use trace_page::TracePage;
pub use traces_page::TracesPage;
pub use user_page::UserPage;
pub use users_page::UsersPage;
