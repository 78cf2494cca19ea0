//! The API keys page, for owners: the workspace's keys with their last use, a new key shown
//! once, and revoking a key.

mod server;
mod types;

pub use server::*;
pub use types::*;
