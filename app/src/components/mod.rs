//! Reusable pieces of the dashboard. Those marked `ssr` are parts of views the server renders
//! (see `crate::api::Rendered`): the browser bundle has none of them.

mod account;
mod delete_user;
#[cfg(feature = "ssr")]
mod empty_state;
mod export_link;
mod live;
#[cfg(feature = "ssr")]
mod pagination;
mod section_tabs;
#[cfg(feature = "ssr")]
mod sortable_header;
#[cfg(feature = "ssr")]
mod spend_chart;
mod tag_pills;
pub mod users_table;
mod window_pills;

pub use account::{Account, provide_session};
pub use delete_user::DeleteUser;
#[cfg(feature = "ssr")]
pub use empty_state::EmptyState;
pub use export_link::ExportLink;
pub use live::refetch_on_new_data;
#[cfg(feature = "ssr")]
pub use pagination::Pagination;
pub use section_tabs::{SectionTabs, shared_filters};
#[cfg(feature = "ssr")]
pub use sortable_header::SortableHeader;
#[cfg(feature = "ssr")]
pub use spend_chart::SpendChart;
pub use tag_pills::TagPills;
pub use window_pills::WindowPills;
