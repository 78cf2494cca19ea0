//! Browser routes outside the Leptos app: sign-in and sign-out, the workspace switcher, the
//! CSV export, and the guard that sends signed-out people to the sign-in page.

pub mod client_addr;
pub(crate) mod export;
mod guard;
pub mod headers;
pub mod origin;
mod portal;
mod refusal;
mod session;

pub use guard::{page_guard, same_origin_guard};
pub use refusal::carry_refusal;

use crate::routing::RouteBook;
use crate::state::AppState;

pub fn routes() -> RouteBook<AppState> {
    RouteBook::new()
        .post("/login", session::sign_in)
        .post("/logout", session::sign_out)
        .post("/session/workspace", session::switch_workspace)
        .get("/billing/history.csv", export::history_csv)
        .get("/portal/{token}", portal::open)
}
