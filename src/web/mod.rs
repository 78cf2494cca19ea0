//! Browser routes outside the Leptos app: sign-in and sign-out, the workspace switcher, the
//! CSV export, and the guard that sends signed-out people to the sign-in page.

mod export;
mod guard;
mod session;

pub use guard::page_guard;

use crate::startup::AppState;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(session::sign_in))
        .route("/logout", post(session::sign_out))
        .route("/session/workspace", post(session::switch_workspace))
        .route("/billing/history.csv", get(export::history_csv))
}
