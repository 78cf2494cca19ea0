//! The HTTP API (see API.md): JSON in and out, API-key or session auth.

mod auth;
pub(crate) mod budgets;
pub(crate) mod credits;
mod error;
mod fields;
mod json;
pub(crate) mod operator;
pub(crate) mod pools;
pub(crate) mod provisioning;
pub(crate) mod usage;

pub use auth::{Caller, Principal};
pub use error::{ApiError, ErrorAnswer, ErrorCode};

use crate::routing::RouteBook;
use crate::state::AppState;

/// The API's routes.
pub fn routes() -> RouteBook<AppState> {
    RouteBook::new()
        .get("/api/billing/credits", credits::get_credits)
        .get("/api/v1/budgets", budgets::list_budgets)
        .post("/api/v1/budgets", budgets::create_budget)
        .get("/api/v1/budgets/{budget_id}", budgets::get_budget)
        .post("/api/v1/budgets/{budget_id}", budgets::update_budget)
        .delete("/api/v1/budgets/{budget_id}", budgets::remove_budget)
        .get("/api/v1/pools", pools::list_pools)
        .post("/api/v1/pools", pools::create_pool)
        .post("/api/v1/pools/{pool_id}", pools::update_pool)
        .delete("/api/v1/pools/{pool_id}", pools::remove_pool)
        .post("/api/v1/usage", usage::charge)
        .post("/api/v1/usage/{transaction_id}/refund", usage::refund)
        .post("/api/v1/usage/reservations", usage::reserve)
        .post("/api/v1/usage/reservations/{id}/settle", usage::settle)
        .post("/api/v1/usage/reservations/{id}/release", usage::release)
        .post(
            "/api/operator/workspaces/{workspace_id}/grants",
            operator::grant,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}/api_keys",
            operator::create_api_key,
        )
        .post(
            "/api/operator/portal_sessions",
            operator::create_portal_session,
        )
        .post("/api/operator/workspaces", provisioning::create_workspace)
        .get("/api/operator/workspaces", provisioning::list_workspaces)
        .get(
            "/api/operator/workspaces/{workspace_id}",
            provisioning::get_workspace,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}",
            provisioning::update_workspace,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}/members",
            provisioning::put_member,
        )
        .get(
            "/api/operator/workspaces/{workspace_id}/members",
            provisioning::list_members,
        )
        .delete(
            "/api/operator/workspaces/{workspace_id}/members/{user_id}",
            provisioning::remove_member,
        )
        .get(
            "/api/operator/workspaces/{workspace_id}/api_keys",
            operator::list_api_keys,
        )
        .delete(
            "/api/operator/workspaces/{workspace_id}/api_keys/{key_id}",
            operator::revoke_api_key,
        )
        // The same budgets and pools, for the operator token, on the workspace in the path.
        .get(
            "/api/operator/workspaces/{workspace_id}/budgets",
            budgets::list_budgets,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}/budgets",
            budgets::create_budget,
        )
        .get(
            "/api/operator/workspaces/{workspace_id}/budgets/{budget_id}",
            budgets::get_budget,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}/budgets/{budget_id}",
            budgets::update_budget,
        )
        .delete(
            "/api/operator/workspaces/{workspace_id}/budgets/{budget_id}",
            budgets::remove_budget,
        )
        .get(
            "/api/operator/workspaces/{workspace_id}/pools",
            pools::list_pools,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}/pools",
            pools::create_pool,
        )
        .post(
            "/api/operator/workspaces/{workspace_id}/pools/{pool_id}",
            pools::update_pool,
        )
        .delete(
            "/api/operator/workspaces/{workspace_id}/pools/{pool_id}",
            pools::remove_pool,
        )
        // Unknown API paths answer in the API's JSON shape, not with the HTML 404 page.
        .any("/api/{*rest}", || async { ApiError::NotFound })
        // Usage bodies are small; a limit keeps a bad client from tying up memory.
        .body_limit(16 * 1024)
}
