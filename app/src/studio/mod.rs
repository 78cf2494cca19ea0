//! The Studio: try an AI action through the credit gate, and the insufficient-credits answer
//! with what each role can do about it.

mod server;
mod types;

pub use server::*;
pub use types::*;
