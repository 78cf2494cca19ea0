//! Queueing a reload: the one place that writes a reload attempt row.
//!
//! A leaf, so the ledger can queue a reload inside the transaction of the spend that crossed
//! the threshold without depending on the rest of Auto-reload (which depends on the ledger).

use crate::clock::Millis;
use crate::db::{new_id, StoreError};
use app::domain::WorkspaceId;
use sqlx::AnyConnection;

/// Where a reload attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Waiting for the job.
    Queued,
    /// Being charged (by the job, or by the first top-up of turning Auto-reload on).
    Charging,
    Succeeded,
    /// Declined.
    Failed,
    /// The rules said no; the reason is kept.
    Skipped,
    /// The bank wants the cardholder to confirm; a billing manager is asked to.
    RequiresAction,
}

impl AttemptStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Queued => "queued",
            AttemptStatus::Charging => "charging",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Skipped => "skipped",
            AttemptStatus::RequiresAction => "requires_action",
        }
    }

    /// Reads a stored status.
    pub fn parse(text: &str) -> Option<AttemptStatus> {
        [
            AttemptStatus::Queued,
            AttemptStatus::Charging,
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
            AttemptStatus::Skipped,
            AttemptStatus::RequiresAction,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Writes a reload attempt in `status` (queued for the job, or charging when the caller
/// charges it itself) unless one is in flight for the workspace: a unique index allows one,
/// on any number of instances. Returns the new attempt's id, if it was written.
#[tracing::instrument(skip_all)]
pub(crate) async fn queue_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    status: AttemptStatus,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    let id = new_id("arl");
    let inserted = sqlx::query(
        r#"
        INSERT INTO auto_reload_attempts (id, workspace_id, status, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $4)
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind(&id)
    .bind(workspace.as_str())
    .bind(status.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(id))
}
