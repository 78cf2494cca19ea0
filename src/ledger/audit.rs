//! The audit: one workspace's books re-derived from its journal and compared.

use super::types::Audit;
use super::LedgerError;
use crate::db::Store;
use app::domain::WorkspaceId;
use sqlx::Row;

impl Store {
    /// Re-derives the books of one workspace from the journal and compares.
    #[tracing::instrument(skip_all)]
    pub async fn audit(&self, workspace: &WorkspaceId) -> Result<Audit, LedgerError> {
        let account_total: i64 =
            sqlx::query("SELECT total FROM credit_accounts WHERE workspace_id = $1")
                .bind(workspace.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(LedgerError::UnknownWorkspace)?
                .try_get("total")?;
        let lots_remaining: i64 = sqlx::query(
            r#"
            SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) AS s
            FROM credit_lots
            WHERE workspace_id = $1
            "#,
        )
        .bind(workspace.as_str())
        .fetch_one(self.pool())
        .await?
        .try_get("s")?;
        let entries = sqlx::query(
            r#"
            SELECT seq, amount, balance_after
            FROM ledger_entries
            WHERE workspace_id = $1
            ORDER BY seq
            "#,
        )
        .bind(workspace.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut running = 0;
        let mut sequence_consistent = true;
        for (index, row) in entries.iter().enumerate() {
            let seq: i64 = row.try_get("seq")?;
            running += row.try_get::<i64, _>("amount")?;
            let balance_after: i64 = row.try_get("balance_after")?;
            sequence_consistent &= seq == index as i64 + 1 && balance_after == running;
        }
        let mismatched: i64 = sqlx::query(
            r#"
            SELECT COUNT(*) AS n
            FROM ledger_entries e
            WHERE e.workspace_id = $1
              AND e.amount <> (SELECT CAST(COALESCE(SUM(t.amount), 0) AS BIGINT) FROM ledger_entry_lots t WHERE t.entry_id = e.id)
            "#,
        )
        .bind(workspace.as_str())
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        // The trace has no foreign key to its entry (migration 0022): a trace row of one of
        // the workspace's lots must belong to one of the workspace's entries.
        let orphaned: i64 = sqlx::query(
            r#"
            SELECT COUNT(*) AS n
            FROM ledger_entry_lots t
            JOIN credit_lots l ON l.id = t.lot_id
            WHERE l.workspace_id = $1
              AND NOT EXISTS (SELECT 1 FROM ledger_entries e
                              WHERE e.id = t.entry_id AND e.workspace_id = $1)
            "#,
        )
        .bind(workspace.as_str())
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let holds = sqlx::query(
            r#"
            SELECT a.held AS account,
                (SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM credit_lots WHERE workspace_id = $1) AS lots,
                (SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM reservations WHERE workspace_id = $1 AND status = 'held') AS reserved
            FROM credit_accounts a
            WHERE a.workspace_id = $1
            "#,
        )
        .bind(workspace.as_str())
        .fetch_one(self.pool())
        .await?;
        let (account_held, lots_held, reserved): (i64, i64, i64) = (
            holds.try_get("account")?,
            holds.try_get("lots")?,
            holds.try_get("reserved")?,
        );
        Ok(Audit {
            holds_consistent: account_held == lots_held && lots_held == reserved,
            account_total,
            lots_remaining,
            journal_sum: running,
            entries: entries.len() as i64,
            sequence_consistent,
            traces_consistent: mismatched == 0 && orphaned == 0,
        })
    }
}
