//! Account rows: workspaces, users, memberships, sessions, sign-in failures and API keys.

use super::tokens::{hash_secret, new_secret};
use crate::clock::Millis;
use crate::db::{new_id, Store, StoreError};
use app::domain::{BillingManagers, MemberView, Role, WorkspaceId};
use sqlx::{FromRow, Row};

/// A workspace and its billing settings.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WorkspaceRecord {
    #[sqlx(try_from = "String")]
    pub id: WorkspaceId,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub billing_managers: BillingManagers,
    pub low_balance_threshold: i64,
    /// What a member working in one pooled project is shown.
    #[sqlx(try_from = "String")]
    pub member_view: MemberView,
}

/// A live API key (its id, never its secret) and its workspace.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyHolder {
    pub key_id: String,
    #[sqlx(flatten)]
    pub workspace: WorkspaceRecord,
}

/// A person who can sign in.
#[derive(Clone)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "(hidden)"),
            )
            .finish()
    }
}

/// An API key as its workspace's people see it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// A person's place in one workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub workspace: WorkspaceRecord,
    pub role: Role,
    /// The one project the person works in, when the host product said so.
    pub project: Option<String>,
}

/// A live sign-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: String,
    pub email: String,
    pub workspace_id: WorkspaceId,
    /// Where a person signed in from the host product goes back to.
    pub return_url: Option<String>,
}

const WORKSPACE_COLUMNS: &str =
    "w.id, w.name, w.billing_managers, w.low_balance_threshold, w.member_view";

/// A membership from a row of [`WORKSPACE_COLUMNS`] with `m.role` and `m.project`.
fn membership(row: &sqlx::any::AnyRow) -> Result<Membership, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(Membership {
        workspace: WorkspaceRecord::from_row(row)?,
        role: Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        project: row.try_get("project")?,
    })
}

impl Store {
    /// Creates a workspace with an empty credit account.
    #[tracing::instrument(skip_all)]
    pub async fn create_workspace(
        &self,
        name: &str,
        now: Millis,
    ) -> Result<WorkspaceId, StoreError> {
        let id =
            WorkspaceId::parse(&new_id("ws")).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.create_workspace_with_id(&id, name, now).await?;
        Ok(id)
    }

    /// Creates a workspace with a chosen id unless it exists (the demo uses fixed ids).
    #[tracing::instrument(skip_all)]
    pub async fn create_workspace_with_id(
        &self,
        id: &WorkspaceId,
        name: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(StoreError::Conflict(
                "a workspace name has 1 to 100 characters".into(),
            ));
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            r#"
            INSERT INTO workspaces (id, name, created_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (id)
            DO NOTHING
            "#,
        )
        .bind(id.as_str())
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            r#"
            INSERT INTO credit_accounts (workspace_id)
            VALUES ($1)
            ON CONFLICT (workspace_id)
            DO NOTHING
            "#,
        )
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every workspace id (for audits).
    #[tracing::instrument(skip_all)]
    pub async fn workspace_ids(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM workspaces ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                WorkspaceId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    pub async fn workspace(&self, id: &WorkspaceId) -> Result<Option<WorkspaceRecord>, StoreError> {
        let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces w WHERE w.id = $1");
        let row = sqlx::query_as::<_, WorkspaceRecord>(&sql)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row)
    }

    /// Sets the Low Balance threshold, the billing managers policy and what members working in
    /// one pooled project are shown.
    #[tracing::instrument(skip_all)]
    pub async fn update_workspace_settings(
        &self,
        id: &WorkspaceId,
        threshold: i64,
        policy: BillingManagers,
        view: MemberView,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            r#"
            UPDATE workspaces
            SET low_balance_threshold = $1, billing_managers = $2, member_view = $3
            WHERE id = $4
            "#,
        )
        .bind(threshold)
        .bind(policy.as_str())
        .bind(view.as_str())
        .bind(id.as_str())
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Creates a user, or updates the password of an existing one when a hash is given.
    #[tracing::instrument(skip_all)]
    pub async fn upsert_user(
        &self,
        email: &super::Email,
        password_hash: Option<&str>,
        now: Millis,
    ) -> Result<String, StoreError> {
        let row = sqlx::query(
            r#"
            INSERT INTO users (id, email, password_hash, created_at)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (email)
            DO UPDATE SET password_hash = COALESCE(excluded.password_hash, users.password_hash)
            RETURNING id
            "#,
        )
        .bind(new_id("usr"))
        .bind(email.as_str())
        .bind(password_hash)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("id")?)
    }

    #[tracing::instrument(skip_all)]
    pub async fn user_by_email(
        &self,
        email: &super::Email,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT id, email, password_hash FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(UserRecord {
                id: row.try_get("id")?,
                email: row.try_get("email")?,
                password_hash: row.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Gives a user a role in a workspace (replacing any earlier role there).
    #[tracing::instrument(skip_all)]
    pub async fn set_membership(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        role: Role,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        upsert_membership(&mut conn, workspace, user_id, role, now)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db)
                    if db.message().to_lowercase().contains("foreign key") =>
                {
                    StoreError::NotFound
                }
                _ => StoreError::Database(e),
            })?;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the one project a member works in.
    #[tracing::instrument(skip_all)]
    pub async fn set_member_project(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
        project: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        set_project_in(&mut conn, workspace, user_id, project).await?;
        Ok(())
    }

    /// Every workspace a user belongs to, by name.
    #[tracing::instrument(skip_all)]
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>, StoreError> {
        let sql = format!(
            r#"
            SELECT {WORKSPACE_COLUMNS}, m.role, m.project
            FROM memberships m
            JOIN workspaces w ON w.id = m.workspace_id
            WHERE m.user_id = $1
            ORDER BY w.name, w.id
            "#
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(membership).collect()
    }

    /// The role of the person with this email in a workspace, if they belong to it.
    #[tracing::instrument(skip_all)]
    pub async fn role_for_email(
        &self,
        workspace: &WorkspaceId,
        email: &str,
    ) -> Result<Option<Role>, StoreError> {
        Ok(self
            .actor_member(workspace, email)
            .await?
            .map(|(_, role)| role))
    }

    /// The member of the workspace a usage call's `actor` names — by email, or by the host
    /// product's id for them — with their user id and role.
    #[tracing::instrument(skip_all)]
    pub async fn actor_member(
        &self,
        workspace: &WorkspaceId,
        actor: &str,
    ) -> Result<Option<(String, Role)>, StoreError> {
        let row = sqlx::query(
            r#"
            SELECT u.id, m.role
            FROM memberships m
            JOIN users u ON u.id = m.user_id
            WHERE m.workspace_id = $1 AND (u.email = $2 OR u.external_id = $3)
            ORDER BY u.email = $2 DESC
            LIMIT 1
            "#,
        )
        .bind(workspace.as_str())
        .bind(actor.trim().to_lowercase())
        .bind(actor.trim())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let role: String = row.try_get("role")?;
            Ok((
                row.try_get("id")?,
                Role::parse(&role).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ))
        })
        .transpose()
    }

    /// Starts a session and returns its secret token (for the cookie; only its hash is kept).
    #[tracing::instrument(skip_all)]
    pub async fn create_session(
        &self,
        user_id: &str,
        workspace: &WorkspaceId,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<String, StoreError> {
        let token = new_secret("");
        sqlx::query(
            r#"
            INSERT INTO sessions (token_hash, user_id, workspace_id, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5)
            "#,
        )
        .bind(hash_secret(&token))
        .bind(user_id)
        .bind(workspace.as_str())
        .bind(now)
        .bind(now + ttl_ms)
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The live session for a token and every workspace its person belongs to (by name), in
    /// one statement: each signed-in request starts here. `None` for an unknown or expired
    /// token, or a person left in no workspace.
    #[tracing::instrument(skip_all)]
    pub async fn signed_in(
        &self,
        token: &str,
        now: Millis,
    ) -> Result<Option<(SessionRecord, Vec<Membership>)>, StoreError> {
        let sql = format!(
            r#"
            SELECT s.user_id, u.email, s.workspace_id AS session_workspace, s.return_url,
                {WORKSPACE_COLUMNS}, m.role, m.project
            FROM sessions s
            JOIN users u ON u.id = s.user_id
            JOIN memberships m ON m.user_id = s.user_id
            JOIN workspaces w ON w.id = m.workspace_id
            WHERE s.token_hash = $1 AND s.expires_at > $2
            ORDER BY w.name, w.id
            "#
        );
        let rows = sqlx::query(&sql)
            .bind(hash_secret(token))
            .bind(now)
            .fetch_all(self.read_pool())
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let workspace: String = first.try_get("session_workspace")?;
        let session = SessionRecord {
            user_id: first.try_get("user_id")?,
            email: first.try_get("email")?,
            workspace_id: WorkspaceId::parse(&workspace)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            return_url: first.try_get("return_url")?,
        };
        let memberships = rows
            .iter()
            .map(membership)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((session, memberships)))
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(hash_secret(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Points a session at another workspace. The caller checks the membership first.
    #[tracing::instrument(skip_all)]
    pub async fn switch_session_workspace(
        &self,
        token: &str,
        workspace: &WorkspaceId,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET workspace_id = $1 WHERE token_hash = $2")
            .bind(workspace.as_str())
            .bind(hash_secret(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Writes one sign-in attempt against each of `subjects` (an email, a client address) and
    /// returns how many attempts each has had since `since`, this one included. Written
    /// first, counted after: of any number of concurrent tries, the k-th to land counts at
    /// least k, so no more than the limit get past it.
    #[tracing::instrument(skip_all)]
    pub async fn count_sign_in_attempt(
        &self,
        attempt: &str,
        subjects: &[&str],
        since: Millis,
        now: Millis,
    ) -> Result<Vec<i64>, StoreError> {
        let mut counts = Vec::with_capacity(subjects.len());
        for subject in subjects {
            sqlx::query(
                r#"
                INSERT INTO login_failures (subject, at, attempt_id)
                VALUES ($1, $2, $3)
                "#,
            )
            .bind(*subject)
            .bind(now)
            .bind(attempt)
            .execute(self.pool())
            .await?;
            let row = sqlx::query(
                r#"
                SELECT COUNT(*) AS n
                FROM login_failures
                WHERE subject = $1 AND at >= $2
                "#,
            )
            .bind(*subject)
            .bind(since)
            .fetch_one(self.pool())
            .await?;
            counts.push(row.try_get("n")?);
        }
        Ok(counts)
    }

    /// Takes back an attempt that did not fail (it signed in, or was refused before its
    /// password was checked).
    #[tracing::instrument(skip_all)]
    pub async fn forget_sign_in_attempt(&self, attempt: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE attempt_id = $1")
            .bind(attempt)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets sign-in failures and sessions that no longer matter.
    #[tracing::instrument(skip_all)]
    pub async fn prune_sign_in_records(&self, older_than: Millis) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(older_than)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(older_than)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Creates an API key for a workspace and returns its secret, which is never stored.
    #[tracing::instrument(skip_all)]
    pub async fn create_api_key(
        &self,
        workspace: &WorkspaceId,
        name: &str,
        now: Millis,
    ) -> Result<String, StoreError> {
        Ok(self.create_named_api_key(workspace, name, now).await?.1)
    }

    /// Creates an API key and returns it with its secret (shown once, never stored).
    #[tracing::instrument(skip_all)]
    pub async fn create_named_api_key(
        &self,
        workspace: &WorkspaceId,
        name: &str,
        now: Millis,
    ) -> Result<(ApiKeyRecord, String), StoreError> {
        let secret = new_secret("tly_");
        let id = new_id("key");
        sqlx::query(
            r#"
            INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at)
            VALUES ($1, $2, $3, $4, $5)
            "#,
        )
        .bind(&id)
        .bind(workspace.as_str())
        .bind(name)
        .bind(hash_secret(&secret))
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.message().to_lowercase().contains("foreign key") => {
                StoreError::NotFound
            }
            _ => StoreError::Database(e),
        })?;
        let record = ApiKeyRecord {
            id,
            name: name.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        Ok((record, secret))
    }

    /// The workspace's API keys, newest first, revoked ones included.
    #[tracing::instrument(skip_all)]
    pub async fn api_keys(&self, workspace: &WorkspaceId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(sqlx::query_as(
            r#"
            SELECT id, name, created_at, last_used_at, revoked_at
            FROM api_keys
            WHERE workspace_id = $1
            ORDER BY created_at DESC, id DESC
            "#,
        )
        .bind(workspace.as_str())
        .fetch_all(self.pool())
        .await?)
    }

    /// Revokes one of the workspace's API keys (a key already revoked keeps its first
    /// revocation) and returns it with its hash, so caches can forget it; `None` when the
    /// workspace has no such key.
    #[tracing::instrument(skip_all)]
    pub async fn revoke_api_key(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> Result<Option<(ApiKeyRecord, String)>, StoreError> {
        sqlx::query(
            r#"
            UPDATE api_keys SET revoked_at = $1
            WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL
            "#,
        )
        .bind(now)
        .bind(workspace.as_str())
        .bind(id)
        .execute(self.pool())
        .await?;
        let row = sqlx::query(
            r#"
            SELECT id, name, created_at, last_used_at, revoked_at, key_hash
            FROM api_keys
            WHERE workspace_id = $1 AND id = $2
            "#,
        )
        .bind(workspace.as_str())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key = ApiKeyRecord::from_row(&row)?;
        let hash: String = row.try_get("key_hash")?;
        // Every instance forgets the key as this arrives (see accounts::key_cache).
        if self.backend() == crate::db::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::key_cache::REVOCATION_CHANNEL)
                .bind(&hash)
                .execute(self.pool())
                .await?;
        }
        Ok(Some((key, hash)))
    }

    /// Notes that the keys with these hashes were used now (a key whose use was written in
    /// the last minute is left as it is): one statement per 500 keys.
    #[tracing::instrument(skip_all)]
    pub async fn note_api_key_uses(
        &self,
        key_hashes: &[String],
        now: Millis,
    ) -> Result<(), StoreError> {
        for chunk in key_hashes.chunks(500) {
            let list = crate::db::param_list(3, chunk.len());
            let sql = format!(
                r#"
                UPDATE api_keys SET last_used_at = $1
                WHERE key_hash IN ({list}) AND (last_used_at IS NULL OR last_used_at < $2)
                "#
            );
            let mut query = sqlx::query(&sql).bind(now).bind(now - 60_000);
            for hash in chunk {
                query = query.bind(hash);
            }
            query.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// The workspace an unrevoked API key belongs to.
    #[tracing::instrument(skip_all)]
    pub async fn api_key_workspace(
        &self,
        secret: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        Ok(self.api_key_holder(secret).await?.map(|h| h.workspace))
    }

    /// The live API key with this secret and its workspace.
    #[tracing::instrument(skip_all)]
    pub async fn api_key_holder(&self, secret: &str) -> Result<Option<ApiKeyHolder>, StoreError> {
        let sql = format!(
            r#"
            SELECT k.id AS key_id, {WORKSPACE_COLUMNS}
            FROM api_keys k
            JOIN workspaces w ON w.id = k.workspace_id
            WHERE k.key_hash = $1 AND k.revoked_at IS NULL
            "#
        );
        let row = sqlx::query_as::<_, ApiKeyHolder>(&sql)
            .bind(hash_secret(secret))
            .fetch_optional(self.pool())
            .await?;
        Ok(row)
    }
}

/// Gives `user_id` `role` in `workspace` (replacing any earlier role there), on `conn`.
pub(super) async fn upsert_membership(
    conn: &mut sqlx::AnyConnection,
    workspace: &WorkspaceId,
    user_id: &str,
    role: Role,
    now: Millis,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        INSERT INTO memberships (workspace_id, user_id, role, created_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (workspace_id, user_id)
        DO UPDATE SET role = excluded.role
        "#,
    )
    .bind(workspace.as_str())
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets or clears the one project a member works in, on the caller's connection.
async fn set_project_in(
    conn: &mut sqlx::AnyConnection,
    workspace: &WorkspaceId,
    user_id: &str,
    project: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        UPDATE memberships SET project = $1
        WHERE workspace_id = $2 AND user_id = $3
        "#,
    )
    .bind(project)
    .bind(workspace.as_str())
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A person to add to a workspace, or whose membership to change.
#[derive(Clone, Debug)]
pub struct MemberPut<'a> {
    pub email: &'a super::Email,
    pub name: Option<&'a str>,
    /// The host product's id for them; it decides who they are.
    pub external_id: Option<&'a str>,
    pub role: Role,
    /// Sets (`Some(Some(_))`) or clears (`Some(None)`) the one project they work in; `None`
    /// leaves it as it is.
    pub project: Option<Option<&'a str>>,
}

/// A member of a workspace as the operator API lists them.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRecord {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub role: String,
    /// The one project they work in, as usage calls name it.
    pub project: Option<String>,
    pub created_at: Millis,
}

impl Store {
    /// A page of workspaces in id order, after `after` when given; and whether more follow.
    #[tracing::instrument(skip_all)]
    pub async fn workspaces_page(
        &self,
        after: Option<&WorkspaceId>,
        limit: u32,
    ) -> Result<(Vec<WorkspaceRecord>, bool), StoreError> {
        let sql = format!(
            r#"
            SELECT {WORKSPACE_COLUMNS}
            FROM workspaces w
            WHERE ($1 IS NULL OR w.id > $1)
            ORDER BY w.id
            LIMIT $2
            "#
        );
        let mut rows: Vec<WorkspaceRecord> = sqlx::query_as(&sql)
            .bind(after.map(WorkspaceId::as_str))
            .bind(i64::from(limit) + 1)
            .fetch_all(self.pool())
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// Renames a workspace.
    #[tracing::instrument(skip_all)]
    pub async fn rename_workspace(&self, id: &WorkspaceId, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Adds a person to a workspace with their role, or changes it there; the person is
    /// matched as the sign-in handoff matches them. `None` when the host product's id and
    /// the email name two different people.
    #[tracing::instrument(skip_all)]
    pub async fn put_member(
        &self,
        workspace: &WorkspaceId,
        member: &MemberPut<'_>,
        now: Millis,
    ) -> Result<Option<MemberRecord>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let Some(user_id) = match_person(
            &mut tx,
            member.email.as_str(),
            member.name,
            member.external_id,
            now,
        )
        .await?
        else {
            return Ok(None);
        };
        upsert_membership(&mut tx, workspace, &user_id, member.role, now).await?;
        if let Some(project) = member.project {
            set_project_in(&mut tx, workspace, &user_id, project).await?;
        }
        tx.commit().await?;
        Ok(self
            .members(workspace)
            .await?
            .into_iter()
            .find(|m| m.user_id == user_id))
    }

    /// The workspace's members, by email.
    #[tracing::instrument(skip_all)]
    pub async fn members(&self, workspace: &WorkspaceId) -> Result<Vec<MemberRecord>, StoreError> {
        Ok(sqlx::query_as(
            r#"
            SELECT u.id AS user_id, u.email, u.name, u.external_id, m.role, m.project,
                   m.created_at
            FROM memberships m
            JOIN users u ON u.id = m.user_id
            WHERE m.workspace_id = $1
            ORDER BY u.email
            "#,
        )
        .bind(workspace.as_str())
        .fetch_all(self.pool())
        .await?)
    }

    /// Removes a person from a workspace (their sessions there end with it); false when they
    /// were not a member.
    #[tracing::instrument(skip_all)]
    pub async fn remove_member(
        &self,
        workspace: &WorkspaceId,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let removed =
            sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(workspace.as_str())
                .bind(user_id)
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(removed > 0)
    }
}

/// The person with the host product's id `external_id` (their email updated to `email`), else
/// the one with `email` (given that id), else a new one; `None` when the id and the email
/// name two different people here. Runs inside the caller's transaction.
pub(crate) async fn match_person(
    conn: &mut sqlx::AnyConnection,
    email: &str,
    name: Option<&str>,
    external_id: Option<&str>,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    let by_external = match external_id {
        Some(external) => sqlx::query("SELECT id FROM users WHERE external_id = $1")
            .bind(external)
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| row.try_get::<String, _>("id"))
            .transpose()?,
        None => None,
    };
    let by_email = sqlx::query("SELECT id, external_id FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| -> Result<(String, Option<String>), StoreError> {
            Ok((row.try_get("id")?, row.try_get("external_id")?))
        })
        .transpose()?;
    let id = match (by_external, by_email) {
        // The host product's id decides; its email follows the product's, unless that email
        // is another person's here.
        (Some(id), Some((other, _))) if other != id => return Ok(None),
        (Some(id), _) => {
            sqlx::query("UPDATE users SET email = $1, name = COALESCE($2, name) WHERE id = $3")
                .bind(email)
                .bind(name)
                .bind(&id)
                .execute(&mut *conn)
                .await?;
            id
        }
        (None, Some((_, Some(known)))) if external_id.is_some_and(|e| e != known) => {
            return Ok(None)
        }
        (None, Some((id, _))) => {
            sqlx::query(
                r#"
                UPDATE users SET external_id = COALESCE($1, external_id), name = COALESCE($2, name)
                WHERE id = $3
                "#,
            )
            .bind(external_id)
            .bind(name)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
            id
        }
        (None, None) => {
            let id = new_id("usr");
            sqlx::query(
                r#"
                INSERT INTO users (id, email, password_hash, external_id, name, created_at)
                VALUES ($1, $2, NULL, $3, $4, $5)
                "#,
            )
            .bind(&id)
            .bind(email)
            .bind(external_id)
            .bind(name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            id
        }
    };
    Ok(Some(id))
}
