//! One page per file.

mod event_page;
mod not_found_page;
mod trace_page;
mod traces_page;
mod users_page;

pub use event_page::EventPage;
pub use not_found_page::NotFoundPage;
pub use trace_page::TracePage;
pub use traces_page::TracesPage;
pub use users_page::UsersPage;
