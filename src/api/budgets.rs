//! Budgets below the workspace over HTTP: `/api/v1/budgets`, for the product's server (a
//! workspace API key) and for billing managers signed in.

use super::fields;
use super::json::ApiJson;
use super::{operator, ApiError, Caller, ErrorAnswer, ErrorCode, Principal};
use crate::clock::to_datetime;
use crate::spend::{BudgetChange, BudgetView, Enforcement, NewBudget, Period, Scope, SpendError};
use crate::state::AppState;
use app::domain::Credits;
use app::domain::WorkspaceId;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The share of the limit that announces a budget's threshold unless the body says otherwise.
const DEFAULT_THRESHOLD_PERCENT: i64 = 80;

/// A budget with this period's use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetAnswer {
    #[schema(example = "bud_01j9z3k8q4")]
    pub id: String,
    pub scope: Scope,
    /// The member's user id, the API key's id, the project's name, or the workspace's id.
    #[schema(example = "usr_01j9z3k8q4")]
    pub target: String,
    /// For a frequency cap: the action it counts (`limit`, `used`, `held` and `remaining` are
    /// then actions, not credits).
    #[schema(example = json!(null))]
    pub action: Option<String>,
    /// Who or what it is on, for people: the member's email, the key's name, the project.
    #[schema(example = "member@acme.test")]
    pub label: String,
    pub period: Period,
    pub limit: i64,
    pub enforcement: Enforcement,
    /// The share of the limit at which billing managers are told (1 to 100).
    pub threshold_percent: i64,
    /// Charged this period.
    pub used: i64,
    /// Held this period by actions in progress (counts against the limit).
    pub held: i64,
    /// What is left this period (0 once used up; a soft budget may be passed).
    pub remaining: i64,
    #[schema(format = DateTime)]
    pub period_start: String,
    /// When the period ends (absent for a lifetime budget).
    #[schema(format = DateTime)]
    pub resets_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn time(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl From<BudgetView> for BudgetAnswer {
    fn from(b: BudgetView) -> Self {
        BudgetAnswer {
            remaining: (b.limit - b.used - b.held).max(0),
            id: b.id,
            scope: b.scope,
            target: b.target,
            action: b.action,
            label: b.label,
            period: b.period,
            limit: b.limit,
            enforcement: b.enforcement,
            threshold_percent: b.threshold_percent,
            used: b.used,
            held: b.held,
            period_start: time(b.period_start),
            resets_at: b.resets_at.map(time),
            created_at: time(b.created_at),
        }
    }
}

/// The workspace's budgets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetList {
    pub data: Vec<BudgetAnswer>,
}

/// The body of a new budget.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scope": "member", "target": "member@acme.test", "period": "day", "limit": 500, "enforcement": "hard"}))]
pub struct NewBudgetBody {
    scope: Scope,
    /// A member's email or the host product's id for them; an API key's id (`key_…`); a
    /// project's name as usage calls send it in `resource.project`; for `workspace`, anything
    /// (the caller's workspace is meant, so it may be empty); every other scope needs one.
    #[schema(max_length = 200)]
    target: String,
    period: Period,
    /// Credits per period (for a frequency cap: actions per period).
    #[schema(minimum = 1)]
    limit: i64,
    /// Makes it a frequency cap: count the usage calls with this `action` (one each, held or
    /// charged) instead of credits; past the limit the gate answers 429 `rate_limited`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, example = "video.generate")]
    action: Option<String>,
    /// `hard` (the default) refuses past the limit; `soft` only announces it.
    #[serde(default)]
    enforcement: Option<Enforcement>,
    /// When billing managers are told, as a share of the limit (default 80).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    threshold_percent: Option<i64>,
}

/// The body of a budget's change; what is left out stays as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetChangeBody {
    #[serde(default)]
    #[schema(minimum = 1)]
    limit: Option<i64>,
    #[serde(default)]
    enforcement: Option<Enforcement>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    threshold_percent: Option<i64>,
}

impl From<SpendError> for ApiError {
    fn from(err: SpendError) -> Self {
        match err {
            SpendError::Invalid(message) => ApiError::Invalid(message),
            SpendError::NotFound => ApiError::NotFound,
            SpendError::Conflict(message) => ApiError::Conflict {
                code: ErrorCode::Conflict,
                message,
            },
            SpendError::Store(err) => err.into(),
        }
    }
}

/// The workspace whose budgets and pools a request manages.
///
/// Under `/api/v1/…` it is the caller's own, for the product's server (a workspace API key) or
/// the workspace's billing managers signed in. Under `/api/operator/workspaces/{workspace_id}/…`
/// it is the one in the path, for the operator token alone; an unknown workspace is a 404.
pub struct SpendManager {
    pub workspace: WorkspaceId,
}

/// The workspace part of an operator route's path; the routes' other parts are read by their
/// handlers.
#[derive(Deserialize)]
struct OperatorPath {
    workspace_id: String,
}

impl FromRequestParts<AppState> for SpendManager {
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.uri.path().starts_with("/api/operator/") {
            operator::authorise(state, &parts.headers)?;
            let Path(path) = Path::<OperatorPath>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
            let workspace =
                WorkspaceId::parse(&path.workspace_id).map_err(|_| ApiError::NotFound)?;
            state
                .store
                .workspace(&workspace)
                .await?
                .ok_or(ApiError::NotFound)?;
            return Ok(SpendManager { workspace });
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        match &caller.principal {
            Principal::ApiKey { .. } => {}
            Principal::Person { role, .. }
                if role.can_manage_billing(caller.workspace.billing_managers) => {}
            Principal::Person { .. } => return Err(ApiError::Forbidden),
        }
        Ok(SpendManager {
            workspace: caller.workspace.id,
        })
    }
}

/// A budget's path: its id (and, under the operator's routes, the workspace's).
#[derive(Deserialize)]
pub struct BudgetPath {
    budget_id: String,
}

fn limit(value: i64) -> Result<Credits, ApiError> {
    Credits::positive(value).map_err(|e| ApiError::Invalid(format!("limit: {e}")))
}

/// `GET /api/v1/budgets`: the workspace's budgets with this period's use.
#[utoipa::path(get, path = "/api/v1/budgets", tag = "budgets", operation_id = "list_budgets",
    responses(
        (status = 200, description = "Every live budget of the workspace, oldest first.", body = BudgetList),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_budgets(
    State(state): State<AppState>,
    manager: SpendManager,
) -> Result<Json<BudgetList>, ApiError> {
    let budgets = state
        .store
        .budgets(&manager.workspace, state.clock.now_ms())
        .await?;
    Ok(Json(BudgetList {
        data: budgets.into_iter().map(BudgetAnswer::from).collect(),
    }))
}

/// `POST /api/v1/budgets`: a budget on a member, an API key or a project.
///
/// One live budget per scope, target and period; it counts from the current period's start
/// with what that period has charged from now on.
#[utoipa::path(post, path = "/api/v1/budgets", tag = "budgets", operation_id = "create_budget",
    request_body = NewBudgetBody,
    responses(
        (status = 201, description = "Created.", body = BudgetAnswer),
        (status = 400, description = "Malformed or out-of-range input, or a target that is not in the workspace (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer),
        (status = 409, description = "The target has a budget of this period already (`conflict`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create_budget(
    State(state): State<AppState>,
    manager: SpendManager,
    ApiJson(body): ApiJson<NewBudgetBody>,
) -> Result<Response, ApiError> {
    let given = match fields::text("target", Some(body.target), 200)? {
        Some(given) => given,
        // The workspace is the caller's; nothing else needs naming.
        None if body.scope == Scope::Workspace => String::new(),
        None => return Err(ApiError::Invalid("target is required".into())),
    };
    let workspace = &manager.workspace;
    let target = state
        .store
        .budget_target(workspace, body.scope, &given)
        .await?;
    let new = NewBudget {
        scope: body.scope,
        target,
        action: fields::nonempty("action", body.action, 200)?,
        period: body.period,
        limit: limit(body.limit)?,
        enforcement: body.enforcement.unwrap_or(Enforcement::Hard),
        threshold_percent: body.threshold_percent.unwrap_or(DEFAULT_THRESHOLD_PERCENT),
    };
    let created = state
        .store
        .create_budget(workspace, &new, state.clock.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(BudgetAnswer::from(created))).into_response())
}

fn budget_id(id: &str) -> Result<&str, ApiError> {
    fields::id("bud", id)
}

/// `GET /api/v1/budgets/{budget_id}`: one budget with this period's use.
#[utoipa::path(get, path = "/api/v1/budgets/{budget_id}", tag = "budgets", operation_id = "get_budget",
    params(("budget_id" = String, Path, description = "The budget (`bud_…`).")),
    responses(
        (status = 200, description = "The budget.", body = BudgetAnswer),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn get_budget(
    State(state): State<AppState>,
    manager: SpendManager,
    Path(path): Path<BudgetPath>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let budget = state
        .store
        .budget(
            &manager.workspace,
            budget_id(&path.budget_id)?,
            state.clock.now_ms(),
        )
        .await?;
    Ok(Json(budget.into()))
}

/// `POST /api/v1/budgets/{budget_id}`: change a budget's limit, enforcement or threshold.
///
/// The change applies from the next charge; this period's use stays.
#[utoipa::path(post, path = "/api/v1/budgets/{budget_id}", tag = "budgets", operation_id = "update_budget",
    params(("budget_id" = String, Path, description = "The budget (`bud_…`).")),
    request_body = BudgetChangeBody,
    responses(
        (status = 200, description = "Changed.", body = BudgetAnswer),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn update_budget(
    State(state): State<AppState>,
    manager: SpendManager,
    Path(path): Path<BudgetPath>,
    ApiJson(body): ApiJson<BudgetChangeBody>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let change = BudgetChange {
        limit: body.limit.map(limit).transpose()?,
        enforcement: body.enforcement,
        threshold_percent: body.threshold_percent,
    };
    let budget = state
        .store
        .update_budget(
            &manager.workspace,
            budget_id(&path.budget_id)?,
            &change,
            state.clock.now_ms(),
        )
        .await?;
    Ok(Json(budget.into()))
}

/// `DELETE /api/v1/budgets/{budget_id}`: remove a budget; charges stop counting against it.
#[utoipa::path(delete, path = "/api/v1/budgets/{budget_id}", tag = "budgets", operation_id = "remove_budget",
    params(("budget_id" = String, Path, description = "The budget (`bud_…`).")),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer), (status = 403, description = "The caller may not do this (`forbidden`).", body = ErrorAnswer), (status = 404, description = "Unknown id, or an id of another workspace (`not_found`).", body = ErrorAnswer),
    ),
    security(("api_key" = []), ("session" = [])))]
#[tracing::instrument(skip_all)]
pub async fn remove_budget(
    State(state): State<AppState>,
    manager: SpendManager,
    Path(path): Path<BudgetPath>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .remove_budget(
            &manager.workspace,
            budget_id(&path.budget_id)?,
            state.clock.now_ms(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
