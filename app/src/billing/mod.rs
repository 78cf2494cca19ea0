//! The Billing → AI credits view: the types its server functions return, and the functions.

mod server;
mod types;

pub use server::*;
pub use types::*;
