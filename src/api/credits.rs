//! `GET /api/billing/credits`: the balance, buckets, totals and a page of history.

use super::{ApiError, Caller, Principal};
use crate::ledger::views::{credits_view, MAX_PAGE};
use crate::state::AppState;
use app::billing::CreditsView;
use axum::extract::{Query, State};
use axum::Json;
use std::collections::HashMap;

/// Rows per page when the client does not say.
const DEFAULT_LIMIT: u32 = 20;

#[tracing::instrument(skip_all)]
pub async fn get_credits(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<CreditsView>, ApiError> {
    caller.require_billing_reader()?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::Invalid(format!("limit must be a whole number from 1 to {MAX_PAGE}"))
            })?,
    };
    let cursor = params.get("cursor").map(String::as_str);
    // The card Auto-reload charges is for the product's server and billing managers.
    let with_card = match &caller.principal {
        Principal::ApiKey => true,
        Principal::Person { role, .. } => {
            role.can_manage_billing(caller.workspace.billing_managers)
        }
    };
    let view = credits_view(
        &state.store,
        &caller.workspace,
        state.clock.now_ms(),
        limit,
        cursor,
        with_card,
    )
    .await?;
    Ok(Json(view))
}
