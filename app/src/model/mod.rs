//! Wire types shared by the server and the browser (serde only, no I/O).

pub mod admin;
pub mod latency;
pub mod money;
pub mod overview;
pub mod query;
pub mod segments;
pub mod traces;
pub mod users;

pub use money::format_usd;
pub use overview::*;
pub use query::{ParamError, SortKey, Stack, UsersParams, ViewParams};
pub use segments::*;
pub use traces::*;
pub use users::*;
