//! The HTTP API (see API.md): JSON in and out, API-key or session auth.

mod auth;
mod credits;
mod error;

pub use auth::{Caller, Principal};
pub use error::ApiError;

use crate::startup::AppState;
use axum::routing::{any, get};
use axum::Router;

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/billing/credits", get(credits::get_credits))
        // Unknown API paths answer in the API's JSON shape, not with the HTML 404 page.
        .route("/api/{*rest}", any(|| async { ApiError::NotFound }))
}
