//! The credit gate as people meet it: the Studio (try an AI action), the rates, the
//! insufficient-credits answer, notifications and the usage chart's data.

mod server;
mod types;

pub use server::*;
pub use types::*;
