//! Buying credits: the purchase section's data, checkout, and the purchase return page.

mod server;
mod types;

pub use server::*;
pub use types::*;
