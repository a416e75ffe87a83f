//! One page per file.

mod not_found_page;
mod users_page;

pub use not_found_page::NotFoundPage;
pub use users_page::UsersPage;
