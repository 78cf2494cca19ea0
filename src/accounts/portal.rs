//! Sign-in handoff from the host product: a link that works once, within minutes, and turns
//! into a session for the person it names, in the workspace and role it names.
//!
//! The host product (with the operator token) asks for a link for a person it has signed in
//! itself; Tally keeps only the link's hash. Opening it claims it in one transaction — a link
//! opened twice, late, or never issued starts no session — and creates or updates the person
//! (matched by the host product's own id for them when it sends one, else by email) and their
//! membership before the session starts. Such people need no Tally password.

use super::tokens::{hash_secret, new_secret};
use super::Email;
use crate::clock::Millis;
use crate::db::{Store, StoreError};
use app::domain::{Role, WorkspaceId};
use sqlx::Row;

/// How long a link works.
pub const PORTAL_LINK_TTL_MS: Millis = 5 * 60 * 1000;

/// Who a link signs in, where, and where they go back to.
#[derive(Clone, Debug)]
pub struct PortalPerson {
    pub workspace: WorkspaceId,
    pub email: Email,
    pub name: Option<String>,
    /// The host product's id for the person.
    pub external_id: Option<String>,
    pub role: Role,
    pub return_url: Option<String>,
}

/// What opening a link came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PortalOpened {
    /// A session began: its cookie token.
    SignedIn { session_token: String },
    /// The link was opened before.
    Used,
    /// The link's minutes are over.
    Expired,
    /// No such link was issued.
    Unknown,
    /// The host product's id and the email name two different people here.
    Mismatch,
}

impl Store {
    /// Issues a link for `person`; returns its secret token and when it stops working.
    #[tracing::instrument(skip_all)]
    pub async fn create_portal_link(
        &self,
        person: &PortalPerson,
        now: Millis,
    ) -> Result<(String, Millis), StoreError> {
        let token = new_secret("ptl_");
        let expires_at = now + PORTAL_LINK_TTL_MS;
        sqlx::query(
            r#"
            INSERT INTO portal_links (token_hash, workspace_id, email, name, external_id, role,
                return_url, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            "#,
        )
        .bind(hash_secret(&token))
        .bind(person.workspace.as_str())
        .bind(person.email.as_str())
        .bind(&person.name)
        .bind(&person.external_id)
        .bind(person.role.as_str())
        .bind(&person.return_url)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok((token, expires_at))
    }

    /// Opens a link: claims it, sets up the person and their membership, and starts a
    /// session of `session_ttl_ms`, all in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn open_portal_link(
        &self,
        token: &str,
        now: Millis,
        session_ttl_ms: i64,
    ) -> Result<PortalOpened, StoreError> {
        let hash = hash_secret(token);
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            r#"
            UPDATE portal_links SET used_at = $1
            WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
            "#,
        )
        .bind(now)
        .bind(&hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let link = sqlx::query(
            r#"
            SELECT workspace_id, email, name, external_id, role, return_url, used_at, expires_at
            FROM portal_links
            WHERE token_hash = $1
            "#,
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(link) = link else {
            return Ok(PortalOpened::Unknown);
        };
        if claimed == 0 {
            let used: Option<Millis> = link.try_get("used_at")?;
            return Ok(if used.is_some() {
                PortalOpened::Used
            } else {
                PortalOpened::Expired
            });
        }
        let workspace: String = link.try_get("workspace_id")?;
        let email: String = link.try_get("email")?;
        let name: Option<String> = link.try_get("name")?;
        let external_id: Option<String> = link.try_get("external_id")?;
        let role: String = link.try_get("role")?;
        let return_url: Option<String> = link.try_get("return_url")?;

        let Some(user_id) = super::store::match_person(
            &mut tx,
            &email,
            name.as_deref(),
            external_id.as_deref(),
            now,
        )
        .await?
        else {
            tx.commit().await?;
            return Ok(PortalOpened::Mismatch);
        };
        let workspace =
            WorkspaceId::parse(&workspace).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let role = Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        super::store::upsert_membership(&mut tx, &workspace, &user_id, role, now).await?;
        let session_token = new_secret("");
        sqlx::query(
            r#"
            INSERT INTO sessions (token_hash, user_id, workspace_id, created_at, expires_at,
                return_url)
            VALUES ($1, $2, $3, $4, $5, $6)
            "#,
        )
        .bind(hash_secret(&session_token))
        .bind(&user_id)
        .bind(workspace.as_str())
        .bind(now)
        .bind(now + session_ttl_ms)
        .bind(&return_url)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PortalOpened::SignedIn { session_token })
    }
}
