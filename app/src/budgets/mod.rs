//! The Budgets page, for billing managers: spend limits below the workspace — per member,
//! API key or project — with this period's use, and adding, changing and removing them.

mod server;
mod types;

pub use server::*;
pub use types::*;
