//! Accounts: workspaces, people and their roles, sign-in sessions and API keys.

mod email;
mod key_cache;
pub mod password;
pub mod portal;
mod store;
pub mod tokens;

pub use email::{Email, EmailError};
pub use key_cache::ApiKeyCache;
pub use store::{
    ApiKeyHolder, ApiKeyRecord, MemberPut, MemberRecord, Membership, SessionRecord, UserRecord,
    WorkspaceRecord,
};
