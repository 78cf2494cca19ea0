//! Earmarked pools over HTTP: `/api/v1/pools`, for the product's server (a workspace API
//! key) and for billing managers signed in.

use super::budgets::SpendManager;
use super::fields;
use super::json::ApiJson;
use super::{ApiError, ErrorAnswer};
use crate::clock::to_datetime;
use crate::ledger::NewPool;
use crate::spend::{PoolView, Scope};
use crate::state::AppState;
use app::domain::Credits;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// A pool: credits of the balance only its project or API key may spend.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolAnswer {
    #[schema(example = "pool_01j9z3k8q4")]
    pub id: String,
    /// `project` or `api_key`.
    pub scope: Scope,
    /// The project's name or the API key's id.
    #[schema(example = "launch")]
    pub target: String,
    /// The project, or the key's name.
    pub label: String,
    /// Credits the pool still keeps for its scope.
    pub remaining: i64,
    /// Whether its scope goes on with the shared balance once the pool is spent.
    pub overflow: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<PoolView> for PoolAnswer {
    fn from(p: PoolView) -> Self {
        PoolAnswer {
            id: p.id,
            scope: p.scope,
            target: p.target,
            label: p.label,
            remaining: p.remaining,
            overflow: p.overflow,
            created_at: to_datetime(p.created_at)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// The workspace's pools.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolList {
    pub data: Vec<PoolAnswer>,
}

/// The body of a new pool.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scope": "project", "target": "launch", "credits": 5000}))]
pub struct NewPoolBody {
    /// `project` or `api_key`.
    scope: Scope,
    /// The project's name as usage calls send it in `resource.project`, or an API key's id.
    #[schema(min_length = 1, max_length = 200)]
    target: String,
    /// Credits to carve out of the balance; they must fit in what no other pool keeps.
    #[schema(minimum = 1)]
    credits: i64,
    /// Once the pool is spent, may its scope go on with the shared balance? Default no.
    #[serde(default)]
    overflow: Option<bool>,
}

/// The body of a pool's change; what is left out stays as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolChangeBody {
    /// The pool's new claim, in credits (0 keeps the pool but lets it go dry).
    #[serde(default)]
    #[schema(minimum = 0)]
    credits: Option<i64>,
    #[serde(default)]
    overflow: Option<bool>,
}

/// A pool's path: its id (and, under the operator's routes, the workspace's).
#[derive(Deserialize)]
pub struct PoolPath {
    pool_id: String,
}

fn pool_id(id: &str) -> Result<&str, ApiError> {
    fields::id("pool", id)
}

/// `GET /api/v1/pools`: the workspace's pools with what each has left.
#[utoipa::path(get, path = "/api/v1/pools", tag = "budgets", operation_id = "list_pools",
    responses(
        (status = 200, description = "Every live pool of the workspace, oldest first.", body = PoolList),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_pools(
    State(state): State<AppState>,
    manager: SpendManager,
) -> Result<Json<PoolList>, ApiError> {
    let pools = state.store.pools(&manager.workspace).await?;
    Ok(Json(PoolList {
        data: pools.into_iter().map(PoolAnswer::from).collect(),
    }))
}

/// `POST /api/v1/pools`: carve credits out of the balance for one project or API key.
///
/// Only that scope spends them (first; then the shared balance if `overflow`), and nobody
/// else can. When lots expire beneath the pools, the shared balance absorbs the loss first;
/// past it, the pools shrink in proportion to what each has left.
#[utoipa::path(post, path = "/api/v1/pools", tag = "budgets", operation_id = "create_pool",
    request_body = NewPoolBody,
    responses(
        (status = 201, description = "Carved out.", body = PoolAnswer),
        (status = 400, description = "Malformed or out-of-range input, or a key that is not the workspace's (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer),
        (status = 409, description = "The credits do not fit in what no other pool keeps, or the scope has a pool already (`conflict`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create_pool(
    State(state): State<AppState>,
    manager: SpendManager,
    ApiJson(body): ApiJson<NewPoolBody>,
) -> Result<Response, ApiError> {
    let target = fields::text("target", Some(body.target), 200)?
        .ok_or_else(|| ApiError::Invalid("target is required".into()))?;
    let new = NewPool {
        scope: body.scope,
        target,
        credits: Credits::positive(body.credits)
            .map_err(|e| ApiError::Invalid(format!("credits: {e}")))?,
        overflow: body.overflow.unwrap_or(false),
    };
    let pool = state
        .store
        .create_pool(&manager.workspace, &new, state.clock.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(PoolAnswer::from(pool))).into_response())
}

/// `POST /api/v1/pools/{pool_id}`: change a pool's claim or whether it overflows.
#[utoipa::path(post, path = "/api/v1/pools/{pool_id}", tag = "budgets", operation_id = "update_pool",
    params(("pool_id" = String, Path, description = "The pool (`pool_…`).")),
    request_body = PoolChangeBody,
    responses(
        (status = 200, description = "Changed.", body = PoolAnswer),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
        (status = 409, description = "The credits do not fit beside the other pools (`conflict`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn update_pool(
    State(state): State<AppState>,
    manager: SpendManager,
    Path(path): Path<PoolPath>,
    ApiJson(body): ApiJson<PoolChangeBody>,
) -> Result<Json<PoolAnswer>, ApiError> {
    let credits = body
        .credits
        .map(|c| Credits::new(c).map_err(|e| ApiError::Invalid(format!("credits: {e}"))))
        .transpose()?;
    let pool = state
        .store
        .change_pool(
            &manager.workspace,
            pool_id(&path.pool_id)?,
            credits,
            body.overflow,
            state.clock.now_ms(),
        )
        .await?;
    Ok(Json(pool.into()))
}

/// `DELETE /api/v1/pools/{pool_id}`: remove a pool; what it kept goes back to the shared
/// balance.
#[utoipa::path(delete, path = "/api/v1/pools/{pool_id}", tag = "budgets", operation_id = "remove_pool",
    params(("pool_id" = String, Path, description = "The pool (`pool_…`).")),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn remove_pool(
    State(state): State<AppState>,
    manager: SpendManager,
    Path(path): Path<PoolPath>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .remove_pool(
            &manager.workspace,
            pool_id(&path.pool_id)?,
            state.clock.now_ms(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
