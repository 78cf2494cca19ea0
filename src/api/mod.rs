//! The HTTP API (see API.md): JSON in and out, API-key or session auth.

mod auth;
mod credits;
mod error;
mod json;
mod operator;
mod usage;

pub use auth::{ApiKeyCache, Caller, Principal};
pub use error::ApiError;

use crate::startup::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/billing/credits", get(credits::get_credits))
        .route("/api/v1/usage", post(usage::charge))
        .route("/api/v1/usage/{transaction_id}/refund", post(usage::refund))
        .route("/api/v1/usage/reservations", post(usage::reserve))
        .route(
            "/api/v1/usage/reservations/{id}/settle",
            post(usage::settle),
        )
        .route(
            "/api/v1/usage/reservations/{id}/release",
            post(usage::release),
        )
        .route(
            "/api/operator/workspaces/{workspace_id}/grants",
            post(operator::grant),
        )
        // Unknown API paths answer in the API's JSON shape, not with the HTML 404 page.
        .route("/api/{*rest}", any(|| async { ApiError::NotFound }))
        // Usage bodies are small; a limit keeps a bad client from tying up memory.
        .layer(DefaultBodyLimit::max(16 * 1024))
}
