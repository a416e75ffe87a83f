//! Reusable pieces of the dashboard.

mod account;
mod delete_user;
mod empty_state;
mod export_link;
mod live;
mod pagination;
mod section_tabs;
mod sortable_header;
mod spend_chart;
mod tag_pills;
pub mod users_table;
mod window_pills;

pub use account::{Account, provide_session};
pub use delete_user::DeleteUser;
pub use empty_state::EmptyState;
pub use export_link::ExportLink;
pub use live::refetch_on_new_data;
pub use pagination::Pagination;
pub use section_tabs::{SectionTabs, shared_filters};
pub use sortable_header::SortableHeader;
pub use spend_chart::SpendChart;
pub use tag_pills::TagPills;
pub use window_pills::WindowPills;
