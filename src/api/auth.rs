//! Who is calling the API: a workspace API key (`Authorization: Bearer …`) or a signed-in
//! person's session cookie, with that person's role in their current workspace.

use super::ApiError;
use crate::accounts::WorkspaceRecord;
use crate::startup::AppState;
use app::domain::Role;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a looked-up API key is trusted before it is read from the database again.
const API_KEY_TTL: Duration = Duration::from_secs(5);

/// Keys remembered at most; a full cache is emptied rather than grown.
const API_KEY_CACHE_SIZE: usize = 10_000;

/// The workspaces of recently used API keys, by the key's hash (never the key itself).
///
/// A service calling the gate many times a second would otherwise pay a database round trip
/// per request just to be recognised. Only keys found are kept, for [`API_KEY_TTL`]: a new key
/// works at once, an unknown one is always checked, and a change to a key or to its
/// workspace's settings is seen within five seconds on every instance.
#[derive(Clone, Debug)]
pub struct ApiKeyCache {
    entries: Arc<Mutex<HashMap<String, (WorkspaceRecord, Instant)>>>,
    ttl: Duration,
}

impl Default for ApiKeyCache {
    fn default() -> Self {
        ApiKeyCache {
            entries: Arc::default(),
            ttl: API_KEY_TTL,
        }
    }
}

impl ApiKeyCache {
    /// The workspace of the key with this hash, if it was looked up within the TTL.
    fn get(&self, hash: &str) -> Option<WorkspaceRecord> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(workspace, _)| workspace.clone())
    }

    fn put(&self, hash: String, workspace: WorkspaceRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= API_KEY_CACHE_SIZE {
            entries.clear();
        }
        entries.insert(hash, (workspace, Instant::now()));
    }
}

/// Who made the request.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A service or script holding a workspace API key.
    ApiKey,
    /// A person, with their role in the workspace.
    Person { email: String, role: Role },
}

/// An authenticated caller and the workspace the request acts on.
#[derive(Clone, Debug)]
pub struct Caller {
    pub workspace: WorkspaceRecord,
    pub principal: Principal,
}

impl Caller {
    /// May read the Billing data: API keys and every role but guest.
    pub fn require_billing_reader(&self) -> Result<(), ApiError> {
        match &self.principal {
            Principal::ApiKey => Ok(()),
            Principal::Person { role, .. } if role.can_view_billing() => Ok(()),
            Principal::Person { .. } => Err(ApiError::Forbidden),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

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
            let workspace = match state.api_keys.get(&hash) {
                Some(workspace) => workspace,
                None => {
                    let workspace = state
                        .store
                        .api_key_workspace(key)
                        .await?
                        .ok_or(ApiError::Unauthenticated)?;
                    state.api_keys.put(hash, workspace.clone());
                    workspace
                }
            };
            return Ok(Caller {
                workspace,
                principal: Principal::ApiKey,
            });
        }
        let token = app::services::read_cookie(&parts.headers, app::services::SESSION_COOKIE)
            .ok_or(ApiError::Unauthenticated)?;
        let now = state.clock.now_ms();
        let session = state
            .store
            .session(&token, now)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let memberships = state.store.memberships(&session.user_id).await?;
        let membership = memberships
            .into_iter()
            .find(|m| m.workspace.id == session.workspace_id)
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Caller {
            workspace: membership.workspace,
            principal: Principal::Person {
                email: session.email,
                role: membership.role,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::{BillingManagers, WorkspaceId};

    fn workspace(name: &str) -> WorkspaceRecord {
        WorkspaceRecord {
            id: WorkspaceId::parse("ws_cachedworkspace").unwrap(),
            name: name.into(),
            billing_managers: BillingManagers::Admins,
            low_balance_threshold: 100,
        }
    }

    #[test]
    fn a_found_key_is_remembered_until_its_time_is_up() {
        let cache = ApiKeyCache::default();
        assert_eq!(cache.get("hash"), None);
        cache.put("hash".into(), workspace("Acme"));
        assert_eq!(cache.get("hash").map(|w| w.name), Some("Acme".into()));
        assert_eq!(cache.get("other"), None);
        let expired = ApiKeyCache {
            ttl: Duration::ZERO,
            ..ApiKeyCache::default()
        };
        expired.put("hash".into(), workspace("Acme"));
        assert_eq!(
            expired.get("hash"),
            None,
            "an expired entry is looked up again"
        );
    }

    #[test]
    fn a_full_cache_starts_again_instead_of_growing() {
        let cache = ApiKeyCache::default();
        for i in 0..API_KEY_CACHE_SIZE {
            cache.put(format!("hash{i}"), workspace("Acme"));
        }
        cache.put("newest".into(), workspace("Newest"));
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
        assert!(cache.get("newest").is_some());
        assert!(cache.get("hash0").is_none());
    }
}
