//! Provisioning over the operator API: the host product creates a workspace per customer,
//! sets its name and billing rules, and adds, changes and removes its people — what the
//! command line does, for servers.

use super::fields;
use super::json::ApiJson;
use super::operator::{authorise, known_workspace};
use super::{ApiError, ErrorAnswer};
use crate::accounts::{MemberPut, MemberRecord, WorkspaceRecord};
use crate::clock::to_datetime;
use crate::state::AppState;
use app::domain::{BillingManagers, MemberView, WorkspaceId};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A workspace as the operator API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceAnswer {
    #[schema(example = "ws_acmeai0demo0000001")]
    pub id: String,
    pub name: String,
    /// `admins` (owner, admins and billing admins buy credits) or `owner_only`.
    #[schema(example = "admins")]
    pub billing_managers: String,
    /// The Low Balance badge shows at or below this many credits.
    pub low_balance_threshold: i64,
    /// What a member who works in one project with an earmarked pool is shown: `balance` (the
    /// workspace's, the default) or `pool` (only that pool's figures).
    #[schema(example = "balance")]
    pub member_view: String,
}

impl From<WorkspaceRecord> for WorkspaceAnswer {
    fn from(w: WorkspaceRecord) -> Self {
        WorkspaceAnswer {
            id: w.id.to_string(),
            name: w.name,
            billing_managers: w.billing_managers.as_str().to_owned(),
            low_balance_threshold: w.low_balance_threshold,
            member_view: w.member_view.as_str().to_owned(),
        }
    }
}

/// A page of workspaces.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspacePage {
    pub data: Vec<WorkspaceAnswer>,
    /// More follow: ask again with `starting_after` = the last id.
    pub has_more: bool,
}

/// The body of a workspace's creation or change; what is left out stays as it is (or, on
/// creation, takes its default).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, example = "Acme AI")]
    name: Option<String>,
    /// `admins` or `owner_only`.
    #[serde(default)]
    billing_managers: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0)]
    low_balance_threshold: Option<i64>,
    /// `balance` or `pool`: whether a member who works in one pooled project (see the member's
    /// `project`) sees only that pool instead of the workspace's balance and history.
    #[serde(default)]
    member_view: Option<String>,
}

/// A member of a workspace.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberAnswer {
    #[schema(example = "usr_01j9z3k8q4")]
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    /// The host product's id for the person.
    pub external_id: Option<String>,
    pub role: String,
    /// The one project they work in, as usage calls name it in `resource.project`.
    #[schema(example = "launch")]
    pub project: Option<String>,
    pub member_since: chrono::DateTime<chrono::Utc>,
}

impl From<MemberRecord> for MemberAnswer {
    fn from(m: MemberRecord) -> Self {
        MemberAnswer {
            user_id: m.user_id,
            email: m.email,
            name: m.name,
            external_id: m.external_id,
            role: m.role,
            project: m.project,
            member_since: to_datetime(m.created_at),
        }
    }
}

/// The workspace's members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub data: Vec<MemberAnswer>,
}

/// The body of adding a person or changing their role.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    #[schema(example = "ada@acme.test", max_length = 254)]
    email: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
    /// The host product's id for the person; it decides who they are.
    #[serde(default)]
    #[schema(max_length = 200)]
    external_id: Option<String>,
    /// `owner`, `admin`, `billing_admin`, `member` or `guest`.
    #[schema(example = "member")]
    role: String,
    /// The one project they work in, by the name usage calls send in `resource.project`; an
    /// empty string clears it, and leaving it out keeps it. When the workspace's
    /// `member_view` is `pool` and the project has a pool, a member sees only that pool.
    #[serde(default)]
    #[schema(max_length = 200, example = "launch")]
    project: Option<String>,
}

/// Applies a body's changes to a workspace.
async fn apply(state: &AppState, id: &WorkspaceId, body: WorkspaceBody) -> Result<(), ApiError> {
    let current = state.store.workspace(id).await?.ok_or(ApiError::NotFound)?;
    if let Some(name) = body.name {
        let name = fields::text("name", Some(name), 100)?
            .ok_or_else(|| ApiError::Invalid("name must not be empty".into()))?;
        state.store.rename_workspace(id, &name).await?;
    }
    let policy = match body.billing_managers {
        Some(p) => BillingManagers::parse(p.trim()).map_err(|_| {
            ApiError::Invalid("billing_managers must be admins or owner_only".into())
        })?,
        None => current.billing_managers,
    };
    let threshold = match body.low_balance_threshold {
        Some(t) if !(0..=1_000_000_000_000).contains(&t) => {
            return Err(ApiError::Invalid(
                "low_balance_threshold must be from 0 to 1,000,000,000,000 credits".into(),
            ))
        }
        Some(t) => t,
        None => current.low_balance_threshold,
    };
    let view = match body.member_view {
        Some(view) => member_view(&view)?,
        None => current.member_view,
    };
    state
        .store
        .update_workspace_settings(id, threshold, policy, view)
        .await?;
    Ok(())
}

fn member_view(text: &str) -> Result<MemberView, ApiError> {
    MemberView::parse(text.trim())
        .map_err(|_| ApiError::Invalid("member_view must be balance or pool".into()))
}

/// Creates a workspace.
#[utoipa::path(post, path = "/api/operator/workspaces", tag = "operator", operation_id = "create_workspace",
    request_body = WorkspaceBody,
    responses(
        (status = 201, description = "Created.", body = WorkspaceAnswer),
        (status = 400, description = "No name, or a bad setting (`invalid_request`).", body = ErrorAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create_workspace(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<WorkspaceBody>,
) -> Result<Response, ApiError> {
    authorise(&state, &headers)?;
    let name = fields::text("name", body.name.clone(), 100)?
        .ok_or_else(|| ApiError::Invalid("name is required".into()))?;
    // Checked before anything is created, so a bad setting leaves no workspace behind.
    if let Some(p) = &body.billing_managers {
        BillingManagers::parse(p.trim()).map_err(|_| {
            ApiError::Invalid("billing_managers must be admins or owner_only".into())
        })?;
    }
    if let Some(view) = &body.member_view {
        member_view(view)?;
    }
    if body
        .low_balance_threshold
        .is_some_and(|t| !(0..=1_000_000_000_000).contains(&t))
    {
        return Err(ApiError::Invalid(
            "low_balance_threshold must be from 0 to 1,000,000,000,000 credits".into(),
        ));
    }
    let id = state
        .store
        .create_workspace(&name, state.clock.now_ms())
        .await?;
    apply(&state, &id, body).await?;
    let created = state
        .store
        .workspace(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(WorkspaceAnswer::from(created))).into_response())
}

/// Lists workspaces, a page at a time.
#[utoipa::path(get, path = "/api/operator/workspaces", tag = "operator", operation_id = "list_workspaces",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Workspaces per page (1 to 100, default 20)."),
        ("starting_after" = Option<String>, Query, description = "The last id of the page before."),
    ),
    responses(
        (status = 200, description = "A page of workspaces, in id order.", body = WorkspacePage),
        (status = 400, description = "A bad limit (`invalid_request`).", body = ErrorAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_workspaces(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(page): Query<HashMap<String, String>>,
) -> Result<Json<WorkspacePage>, ApiError> {
    authorise(&state, &headers)?;
    let limit = match page.get("limit") {
        None => 20,
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::Invalid("limit must be a whole number from 1 to 100".into())
            })?,
    };
    let after = match page
        .get("starting_after")
        .map(String::as_str)
        .filter(|a| !a.is_empty())
    {
        Some(a) => Some(
            WorkspaceId::parse(a)
                .map_err(|_| ApiError::Invalid("starting_after must be a workspace id".into()))?,
        ),
        None => None,
    };
    let (rows, has_more) = state.store.workspaces_page(after.as_ref(), limit).await?;
    Ok(Json(WorkspacePage {
        data: rows.into_iter().map(WorkspaceAnswer::from).collect(),
        has_more,
    }))
}

/// One workspace.
#[utoipa::path(get, path = "/api/operator/workspaces/{workspace_id}", tag = "operator", operation_id = "get_workspace",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    responses(
        (status = 200, description = "The workspace.", body = WorkspaceAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No such workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn get_workspace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
) -> Result<Json<WorkspaceAnswer>, ApiError> {
    authorise(&state, &headers)?;
    let id = known_workspace(&state, &workspace).await?;
    let record = state
        .store
        .workspace(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(record.into()))
}

/// Changes a workspace's name, billing managers policy or Low Balance threshold.
#[utoipa::path(post, path = "/api/operator/workspaces/{workspace_id}", tag = "operator", operation_id = "update_workspace",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    request_body = WorkspaceBody,
    responses(
        (status = 200, description = "The workspace as it is now.", body = WorkspaceAnswer),
        (status = 400, description = "A bad setting (`invalid_request`).", body = ErrorAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No such workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn update_workspace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
    ApiJson(body): ApiJson<WorkspaceBody>,
) -> Result<Json<WorkspaceAnswer>, ApiError> {
    authorise(&state, &headers)?;
    let id = known_workspace(&state, &workspace).await?;
    apply(&state, &id, body).await?;
    let record = state
        .store
        .workspace(&id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(record.into()))
}

/// Adds a person to the workspace, or changes their role there.
#[utoipa::path(post, path = "/api/operator/workspaces/{workspace_id}/members", tag = "operator", operation_id = "put_member",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    request_body = MemberBody,
    responses(
        (status = 200, description = "The member as they are now.", body = MemberAnswer),
        (status = 400, description = "A bad email, role or id (`invalid_request`).", body = ErrorAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No such workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
        (status = 409, description = "The id and the email name two different people (`conflict`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn put_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
    ApiJson(body): ApiJson<MemberBody>,
) -> Result<Json<MemberAnswer>, ApiError> {
    authorise(&state, &headers)?;
    let id = known_workspace(&state, &workspace).await?;
    let email = fields::email("email", &body.email)?;
    let role = fields::role(&body.role)?;
    let name = fields::text("name", body.name, 100)?;
    let external_id = fields::text("external_id", body.external_id, 200)?;
    // Left out keeps the project; an empty one clears it.
    let project = match body.project {
        None => None,
        Some(text) => Some(fields::text("project", Some(text), 200)?),
    };
    let member = state
        .store
        .put_member(
            &id,
            &MemberPut {
                email: &email,
                name: name.as_deref(),
                external_id: external_id.as_deref(),
                role,
                project: project.as_ref().map(Option::as_deref),
            },
            state.clock.now_ms(),
        )
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: super::ErrorCode::Conflict,
            message: "external_id and email name two different people here".into(),
        })?;
    Ok(Json(member.into()))
}

/// Lists the workspace's members.
#[utoipa::path(get, path = "/api/operator/workspaces/{workspace_id}/members", tag = "operator", operation_id = "list_members",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    responses(
        (status = 200, description = "The members, by email.", body = MemberList),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No such workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_members(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
) -> Result<Json<MemberList>, ApiError> {
    authorise(&state, &headers)?;
    let id = known_workspace(&state, &workspace).await?;
    let members = state.store.members(&id).await?;
    Ok(Json(MemberList {
        data: members.into_iter().map(MemberAnswer::from).collect(),
    }))
}

/// Removes a person from the workspace; they can no longer open it.
#[utoipa::path(delete, path = "/api/operator/workspaces/{workspace_id}/members/{user_id}", tag = "operator", operation_id = "remove_member",
    params(
        ("workspace_id" = String, Path, description = "The workspace (`ws_…`)."),
        ("user_id" = String, Path, description = "The person (`usr_…`), as the member list shows them."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "Not a member of this workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn remove_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((workspace, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorise(&state, &headers)?;
    let id = WorkspaceId::parse(&workspace).map_err(|_| ApiError::NotFound)?;
    if state.store.remove_member(&id, &user).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
