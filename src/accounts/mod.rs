//! Accounts: workspaces, people and their roles, sign-in sessions and API keys.

mod email;
pub mod password;
mod records;
pub mod tokens;

pub use email::{Email, EmailError};
pub use records::{Membership, SessionRecord, UserRecord, WorkspaceRecord};
