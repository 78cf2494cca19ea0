//! The Notifications page: what happened, for this person, and (for billing managers) the
//! endpoint notifications are sent to, with its latest deliveries.

mod server;
mod types;

pub use server::*;
pub use types::*;
