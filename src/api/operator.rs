//! The operator API: what the people who run Tally do over HTTP, authorised by the operator
//! token (`TALLY_OPERATOR_TOKEN`), never by a workspace's key or a person's session. Without
//! a token configured, these routes do not exist (404).

use super::fields;
use super::json::ApiJson;
use super::{ApiError, ErrorAnswer};
use crate::accounts::ApiKeyRecord;
use crate::clock::to_datetime;
use crate::grants::{operator_grant, GrantRequest};
use crate::ledger::LedgerError;
use crate::state::AppState;
use app::domain::GrantKind;
use app::domain::WorkspaceId;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The body of `POST /api/operator/workspaces/{id}/grants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "promotional", "credits": 5000, "expires_at": "2027-01-31T00:00:00Z", "note": "Launch offer", "idempotency_key": "launch-acme"}))]
pub struct GrantBody {
    /// `free` or `promotional`.
    #[schema(example = "promotional")]
    kind: String,
    #[schema(minimum = 1)]
    credits: i64,
    /// When the credits lapse (RFC 3339); none for credits that never expire.
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Shown in the workspace's history.
    #[serde(default)]
    note: Option<String>,
    /// The same key grants once; a repeat answers the first grant with 200.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// A grant made (201), or the first one for a repeated key (200).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantAnswer {
    pub entry_id: String,
    pub lot_id: String,
    pub workspace_id: String,
    pub kind: GrantKind,
    pub credits: i64,
    /// When they lapse (RFC 3339); null for credits that never expire.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Spendable credits after the grant.
    pub balance: i64,
    /// The balance in money where the deployment shows amounts in money; `null` otherwise.
    #[schema(required = true)]
    pub balance_money: Option<app::domain::Money>,
}

/// Checks the operator token in constant time.
pub(super) fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
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
#[utoipa::path(post, path = "/api/operator/workspaces/{workspace_id}/grants", tag = "operator", operation_id = "grant_credits",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    request_body = GrantBody,
    responses(
        (status = 201, description = "Granted.", body = GrantAnswer),
        (status = 200, description = "The first grant of this idempotency key; nothing granted now.", body = GrantAnswer),
        (status = 400, description = "Malformed or out-of-range input (`invalid_request`).", body = ErrorAnswer), (status = 401, description = "No or bad credentials (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "Unknown workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn grant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Response, ApiError> {
    authorise(&state, &headers)?;
    let workspace = WorkspaceId::parse(&workspace).map_err(|_| ApiError::NotFound)?;
    // Left out means "never expires"; an empty time is a mistake, not that.
    if body
        .expires_at
        .as_deref()
        .is_some_and(|e| e.trim().is_empty())
    {
        return Err(ApiError::Invalid(
            "expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z, or left out".into(),
        ));
    }
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
        Json(GrantAnswer {
            entry_id: granted.entry_id,
            lot_id: granted.lot_id,
            workspace_id: workspace.as_str().to_owned(),
            kind: granted.kind,
            credits: granted.credits,
            expires_at: granted.expires_at.map(to_datetime),
            balance,
            balance_money: super::usage::money(&state.config.storefront.unit, balance),
        }),
    )
        .into_response())
}

/// The body of `POST /api/operator/workspaces/{workspace_id}/api_keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    /// What the key is for ("Production backend"), shown in lists.
    #[schema(min_length = 1, max_length = 100, example = "Production backend")]
    name: String,
}

/// An API key as lists show it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyAnswer {
    #[schema(example = "key_01j9z3k8q4")]
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The last use, to the minute; null if never used.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Null while the key works.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<ApiKeyRecord> for ApiKeyAnswer {
    fn from(key: ApiKeyRecord) -> Self {
        ApiKeyAnswer {
            id: key.id,
            name: key.name,
            created_at: to_datetime(key.created_at),
            last_used_at: key.last_used_at.map(to_datetime),
            revoked_at: key.revoked_at.map(to_datetime),
        }
    }
}

/// A new key with its secret, which is shown this once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKeyAnswer {
    #[serde(flatten)]
    pub key: ApiKeyAnswer,
    /// The secret (`tly_…`): send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// The workspace's API keys, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyAnswer>,
}

/// The workspace named in the path, which must exist.
pub(super) async fn known_workspace(state: &AppState, id: &str) -> Result<WorkspaceId, ApiError> {
    let workspace = WorkspaceId::parse(id).map_err(|_| ApiError::NotFound)?;
    state
        .store
        .workspace(&workspace)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(workspace)
}

/// Creates an API key for the workspace; its secret is in this answer only.
#[utoipa::path(post, path = "/api/operator/workspaces/{workspace_id}/api_keys", tag = "operator", operation_id = "create_api_key",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    request_body = NewApiKeyBody,
    responses(
        (status = 201, description = "Created; the secret is shown this once.", body = CreatedApiKeyAnswer),
        (status = 400, description = "No name, or one too long (`invalid_request`).", body = ErrorAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "Unknown workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create_api_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
    ApiJson(body): ApiJson<NewApiKeyBody>,
) -> Result<Response, ApiError> {
    authorise(&state, &headers)?;
    let workspace = known_workspace(&state, &workspace).await?;
    let name = fields::text("name", Some(body.name), 100)?
        .ok_or_else(|| ApiError::Invalid("name is required".into()))?;
    let name = name.as_str();
    let (key, secret) = state
        .store
        .create_named_api_key(&workspace, name, state.clock.now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyAnswer {
            key: key.into(),
            secret,
        }),
    )
        .into_response())
}

/// Lists the workspace's API keys, revoked ones included.
#[utoipa::path(get, path = "/api/operator/workspaces/{workspace_id}/api_keys", tag = "operator", operation_id = "list_api_keys",
    params(("workspace_id" = String, Path, description = "The workspace (`ws_…`).")),
    responses(
        (status = 200, description = "The keys, newest first.", body = ApiKeyList),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "Unknown workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(workspace): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    authorise(&state, &headers)?;
    let workspace = known_workspace(&state, &workspace).await?;
    let keys = state.store.api_keys(&workspace).await?;
    Ok(Json(ApiKeyList {
        data: keys.into_iter().map(ApiKeyAnswer::from).collect(),
    }))
}

/// Revokes an API key: it stops working at once. Revoking it again answers the first
/// revocation.
#[utoipa::path(delete, path = "/api/operator/workspaces/{workspace_id}/api_keys/{key_id}", tag = "operator", operation_id = "revoke_api_key",
    params(
        ("workspace_id" = String, Path, description = "The workspace (`ws_…`)."),
        ("key_id" = String, Path, description = "The key (`key_…`)."),
    ),
    responses(
        (status = 200, description = "Revoked (now or before).", body = ApiKeyAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "No such key in this workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((workspace, key)): Path<(String, String)>,
) -> Result<Json<ApiKeyAnswer>, ApiError> {
    authorise(&state, &headers)?;
    let workspace = WorkspaceId::parse(&workspace).map_err(|_| ApiError::NotFound)?;
    let (record, hash) = state
        .store
        .revoke_api_key(&workspace, &key, state.clock.now_ms())
        .await?
        .ok_or(ApiError::NotFound)?;
    state.api_keys.forget(&hash);
    Ok(Json(record.into()))
}

/// Who a sign-in link is for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalUser {
    #[schema(example = "ada@acme.test", max_length = 254)]
    email: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
    /// The host product's own id for the person: it decides who they are, so a changed email
    /// follows them.
    #[serde(default)]
    #[schema(max_length = 200, example = "user_8841")]
    external_id: Option<String>,
}

/// The body of `POST /api/operator/portal_sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"workspace_id": "ws_acmeai0demo0000001", "user": {"email": "ada@acme.test", "name": "Ada", "external_id": "user_8841"}, "role": "billing_admin", "return_url": "https://app.example.com/settings"}))]
pub struct PortalSessionBody {
    workspace_id: String,
    user: PortalUser,
    /// `owner`, `admin`, `billing_admin`, `member` or `guest`.
    #[schema(example = "member")]
    role: String,
    /// Where "Back to …" leads: https (or, in test mode, this machine over http).
    #[serde(default)]
    #[schema(max_length = 2000)]
    return_url: Option<String>,
}

/// A sign-in link: send the person's browser to `url` within five minutes; it works once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalSessionAnswer {
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The return address, if it is one a person may be sent back to.
fn return_url(text: &str, test_mode: bool) -> Result<String, ApiError> {
    let bad = || {
        ApiError::Invalid(
            "return_url must be an https address (or, in test mode, http on this machine)".into(),
        )
    };
    if text.len() > 2_000 {
        return Err(bad());
    }
    let parsed = url::Url::parse(text).map_err(|_| bad())?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let allowed = match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => test_mode && loopback,
        _ => false,
    };
    if allowed && parsed.username().is_empty() && parsed.password().is_none() {
        Ok(parsed.to_string())
    } else {
        Err(bad())
    }
}

/// Hands a person signed in to the host product over to Tally: a link that signs them in
/// (creating or updating them and their membership) and lands on Billing.
#[utoipa::path(post, path = "/api/operator/portal_sessions", tag = "operator", operation_id = "create_portal_session",
    request_body = PortalSessionBody,
    responses(
        (status = 201, description = "The link, working once for five minutes.", body = PortalSessionAnswer),
        (status = 400, description = "A bad email, role, id or return address (`invalid_request`).", body = ErrorAnswer),
        (status = 401, description = "No or bad operator token (`unauthenticated`).", body = ErrorAnswer),
        (status = 404, description = "Unknown workspace, or no operator token configured (`not_found`).", body = ErrorAnswer),
    ),
    security(("operator" = [])))]
#[tracing::instrument(skip_all)]
pub async fn create_portal_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PortalSessionBody>,
) -> Result<Response, ApiError> {
    authorise(&state, &headers)?;
    let workspace = known_workspace(&state, &body.workspace_id).await?;
    let email = fields::email("user.email", &body.user.email)?;
    let role = fields::role(&body.role)?;
    let name = fields::text("user.name", body.user.name, 100)?;
    let external_id = fields::text("user.external_id", body.user.external_id, 200)?;
    let test_mode = state.payments.gateway().test_mode();
    let back = body
        .return_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .map(|u| return_url(u.trim(), test_mode))
        .transpose()?;
    let person = crate::accounts::portal::PortalPerson {
        workspace,
        email,
        name,
        external_id,
        role,
        return_url: back,
    };
    let (token, expires_at) = state
        .store
        .create_portal_link(&person, state.clock.now_ms())
        .await?;
    let base = match &state.config.public_url {
        Some(public) => public.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| state.config.site_addr.to_string());
            format!("http://{host}")
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(PortalSessionAnswer {
            url: format!("{base}/portal/{token}"),
            expires_at: to_datetime(expires_at),
        }),
    )
        .into_response())
}
