//! `GET /api/billing/credits`: the balance, buckets, totals and a page of history.

use super::{ApiError, Caller, ErrorAnswer, Principal};
use crate::ledger::views::{credits_view, pool_credits_view, pool_line, Audience, MAX_PAGE};
use crate::spend::Spender;
use crate::state::AppState;
use app::billing::CreditsView;
use axum::extract::{Query, State};
use axum::Json;
use std::collections::HashMap;

/// Rows per page when the client does not say.
const DEFAULT_LIMIT: u32 = 20;

/// The workspace's credits: balance, buckets, totals, Auto-reload and a page of history.
///
/// For the product's server (API key) and people who may see billing. The Auto-reload card
/// is named only for API keys and billing managers.
#[utoipa::path(get, path = "/api/billing/credits", tag = "billing", operation_id = "get_credits",
    params(
        ("limit" = Option<u32>, Query, description = "History rows per page (1 to 100, default 20).", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the page before."),
    ),
    responses(
        (status = 200, description = "The credits of the caller's workspace.", body = CreditsView),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
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
    // An empty cursor is the first page, as no cursor is.
    let cursor = params
        .get("cursor")
        .map(String::as_str)
        .filter(|c| !c.is_empty());
    // The card Auto-reload charges is for the product's server and billing managers.
    let with_card = match &caller.principal {
        Principal::ApiKey { .. } => true,
        Principal::Person { role, .. } => {
            role.can_manage_billing(caller.workspace.billing_managers)
        }
    };
    let spender = match &caller.principal {
        Principal::ApiKey { key_id } => Spender {
            api_key: Some(key_id.clone()),
            ..Spender::default()
        },
        Principal::Person { user_id, .. } => Spender {
            member: Some(user_id.clone()),
            ..Spender::default()
        },
    };
    if let Some(pool) = &caller.pool {
        let view = pool_credits_view(
            &mut state.store.reads().await?,
            &caller.workspace.id,
            pool_line(pool),
            state.clock.now_ms(),
            &spender,
            &state.config.storefront.unit,
        )
        .await?;
        return Ok(Json(view));
    }
    let view = credits_view(
        &mut state.store.reads().await?,
        &caller.workspace.id,
        state.clock.now_ms(),
        limit,
        cursor,
        &Audience {
            with_card,
            whose: &spender,
            unit: &state.config.storefront.unit,
        },
    )
    .await?;
    Ok(Json(view))
}
