//! The operator API: what the people who run Tally do over HTTP, authorised by the operator
//! token (`TALLY_OPERATOR_TOKEN`), never by a workspace's key or a person's session. Without
//! a token configured, these routes do not exist (404).

use super::json::ApiJson;
use super::ApiError;
use crate::clock::to_datetime;
use crate::grants::{operator_grant, GrantRequest};
use crate::ledger::LedgerError;
use crate::state::AppState;
use app::domain::WorkspaceId;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// The body of `POST /api/operator/workspaces/{id}/grants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    kind: String,
    credits: i64,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Checks the operator token in constant time.
fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.operator_token.as_deref() else {
        return Err(ApiError::NotFound);
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthenticated)?;
    let same = crate::accounts::tokens::same_secret(given.trim(), expected);
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

/// Grants free or promotional credits: 201 with the grant, or 200 with the first answer when
/// the idempotency key was used before.
#[tracing::instrument(skip_all)]
pub async fn grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Response, ApiError> {
    authorise(&state, &headers)?;
    let workspace = WorkspaceId::parse(&workspace).map_err(|_| ApiError::NotFound)?;
    let now = state.clock.now_ms();
    let request = GrantRequest::parse(
        &body.kind,
        body.credits,
        body.expires_at.as_deref(),
        body.note.as_deref(),
        body.idempotency_key.as_deref(),
        now,
    )
    .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let granted = operator_grant(&state.store, &workspace, &request, "operator", now)
        .await
        .map_err(|e| match e {
            LedgerError::UnknownWorkspace => ApiError::NotFound,
            other => ApiError::from(other),
        })?;
    let balance = state
        .store
        .summary(&workspace, now)
        .await
        .map_err(ApiError::from)?
        .available;
    let status = if granted.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "entry_id": granted.entry_id,
            "lot_id": granted.lot_id,
            "workspace_id": workspace.as_str(),
            "kind": granted.kind.as_str(),
            "credits": granted.credits,
            "expires_at": granted.expires_at.map(to_datetime),
            "balance": balance,
        })),
    )
        .into_response())
}
