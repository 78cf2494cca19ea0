//! Who is calling the API: a workspace API key (`Authorization: Bearer …`) or a signed-in
//! person's session cookie, with that person's role in their current workspace.

use super::ApiError;
use crate::accounts::WorkspaceRecord;
use crate::spend::PoolView;
use crate::state::AppState;
use app::domain::Role;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// Who made the request.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A service or script holding a workspace API key (its id, never its secret).
    ApiKey { key_id: String },
    /// A person, with their role in the workspace.
    Person {
        user_id: String,
        email: String,
        role: Role,
    },
}

/// An authenticated caller and the workspace the request acts on.
#[derive(Clone, Debug)]
pub struct Caller {
    pub workspace: WorkspaceRecord,
    pub principal: Principal,
    /// For a member the workspace shows only their project's pool: that pool.
    pub pool: Option<PoolView>,
}

impl Caller {
    /// May read the Billing data: API keys and every role but guest.
    pub fn require_billing_reader(&self) -> Result<(), ApiError> {
        match &self.principal {
            Principal::ApiKey { .. } => Ok(()),
            Principal::Person { role, .. } if role.can_view_billing() => Ok(()),
            Principal::Person { .. } => Err(ApiError::Forbidden),
        }
    }

    /// May read the workspace's whole balance and history: billing readers who are not
    /// shown only their project's pool.
    pub fn require_whole_balance(&self) -> Result<(), ApiError> {
        self.require_billing_reader()?;
        match self.pool {
            Some(_) => Err(ApiError::Forbidden),
            None => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let key = header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or(ApiError::Unauthenticated)?;
            let hash = crate::accounts::tokens::hash_secret(key);
            let holder = match state.api_keys.get(&hash) {
                Some(holder) => holder,
                None => {
                    let holder = state
                        .store
                        .api_key_holder(key)
                        .await?
                        .ok_or(ApiError::Unauthenticated)?;
                    state.api_keys.put(hash.clone(), holder.clone());
                    holder
                }
            };
            state.api_keys.note_use(&hash);
            return Ok(Caller {
                workspace: holder.workspace,
                principal: Principal::ApiKey {
                    key_id: holder.key_id,
                },
                pool: None,
            });
        }
        let token = app::request::read_cookie(&parts.headers, app::request::SESSION_COOKIE)
            .ok_or(ApiError::Unauthenticated)?;
        let now = state.clock.now_ms();
        let (session, memberships) = state
            .store
            .signed_in(&token, now)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let membership = memberships
            .into_iter()
            .find(|m| m.workspace.id == session.workspace_id)
            .ok_or(ApiError::Unauthenticated)?;
        let pool = state
            .store
            .pool_seen_by(
                &membership.workspace.id,
                membership.workspace.member_view,
                membership.role,
                membership.project.as_deref(),
            )
            .await?;
        Ok(Caller {
            pool,
            workspace: membership.workspace,
            principal: Principal::Person {
                user_id: session.user_id,
                email: session.email,
                role: membership.role,
            },
        })
    }
}
