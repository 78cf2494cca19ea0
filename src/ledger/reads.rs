//! Reads: a workspace's standing, its history, its usage and which lots paid for an entry.

use super::rules::Millis;
use super::store::parse_kind;
use super::types::{AccountSummary, BucketRow, EntryRecord, HistoryQuery, TraceRow};
use super::LedgerError;
use crate::db::{Reads, Store};
use app::domain::{EntryType, WorkspaceId};
use sqlx::Row;

/// The workspace's account, its threshold and its spendable lots by kind and expiry ($1 the
/// workspace, $2 now).
///
/// One statement, so the account's totals, its lots and the threshold they are compared to
/// are read at the same instant (and a page pays one round trip, not three). A workspace with
/// nothing to spend gets one row with no bucket. `is_open` (`remaining > 0`) follows from
/// `remaining > held` (held is never negative) but neither planner knows that: said, it lets
/// both use the open lots' partial index instead of reading every workspace's lots.
///
/// It also says whether the workspace ever saved Auto-reload settings and whether it has live
/// budgets, so that a page reads neither where there is none (most workspaces): each
/// statement a page saves is a hand-off to a connection's thread and back on SQLite, a round
/// trip on PostgreSQL.
const SUMMARY: &str = r#"
    SELECT a.total, a.held, a.lifetime_added, a.lifetime_spent,
        w.low_balance_threshold, b.kind, b.expires_at, b.available,
        CAST(CASE WHEN EXISTS (SELECT 1 FROM auto_reload_settings r WHERE r.workspace_id = $1)
             THEN 1 ELSE 0 END AS BIGINT) AS auto_reload_saved,
        CAST(CASE WHEN EXISTS (SELECT 1 FROM budgets u
                               WHERE u.workspace_id = $1 AND u.removed_at IS NULL)
             THEN 1 ELSE 0 END AS BIGINT) AS has_budgets
    FROM credit_accounts a
    JOIN workspaces w ON w.id = a.workspace_id
    LEFT JOIN (
        SELECT kind, expires_at, CAST(SUM(remaining - held) AS BIGINT) AS available
        FROM credit_lots
        WHERE workspace_id = $1 AND is_open AND remaining > held
          AND (expires_at IS NULL OR expires_at > $2)
        GROUP BY kind, expires_at
    ) b ON 1 = 1
    WHERE a.workspace_id = $1
    "#;

impl Store {
    /// The workspace's balance, holds, lifetime totals and spendable buckets at `now`.
    pub async fn summary(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<AccountSummary, LedgerError> {
        self.reads().await?.summary(workspace, now).await
    }

    /// Which lots an entry of this workspace moved, and how much.
    #[tracing::instrument(skip_all)]
    pub async fn trace(
        &self,
        workspace: &WorkspaceId,
        entry_id: &str,
    ) -> Result<Vec<TraceRow>, LedgerError> {
        let rows = sqlx::query(
            r#"
            SELECT t.lot_id, l.kind, t.amount
            FROM ledger_entry_lots t
            JOIN credit_lots l ON l.id = t.lot_id
            WHERE t.entry_id = $1 AND l.workspace_id = $2
            ORDER BY t.lot_id
            "#,
        )
        .bind(entry_id)
        .bind(workspace.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TraceRow {
                    lot_id: row.try_get("lot_id")?,
                    kind: parse_kind(row.try_get("kind")?)?,
                    amount: row.try_get("amount")?,
                })
            })
            .collect()
    }
}

/// The reads a page makes on one connection.
impl Reads {
    /// The workspace's balance, holds, lifetime totals and spendable buckets at `now`.
    #[tracing::instrument(skip_all)]
    pub async fn summary(
        &mut self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<AccountSummary, LedgerError> {
        let rows = sqlx::query(SUMMARY)
            .bind(workspace.as_str())
            .bind(now)
            .fetch_all(self.conn())
            .await?;
        let account = rows.first().ok_or(LedgerError::UnknownWorkspace)?;
        let mut buckets = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(kind) = row.try_get::<Option<String>, _>("kind")? else {
                continue;
            };
            buckets.push(BucketRow {
                kind: parse_kind(kind)?,
                expires_at: row.try_get("expires_at")?,
                available: row.try_get("available")?,
            });
        }
        buckets.sort_by_key(|b| (b.expires_at.is_none(), b.expires_at, b.kind.drawdown_rank()));
        Ok(AccountSummary {
            available: buckets.iter().map(|b| b.available).sum(),
            held: account.try_get("held")?,
            total: account.try_get("total")?,
            lifetime_added: account.try_get("lifetime_added")?,
            lifetime_spent: account.try_get("lifetime_spent")?,
            low_balance_threshold: account.try_get("low_balance_threshold")?,
            auto_reload_saved: account.try_get::<i64, _>("auto_reload_saved")? != 0,
            has_budgets: account.try_get::<i64, _>("has_budgets")? != 0,
            buckets,
        })
    }

    /// Journal entries, newest first, after the filters and cursor in `query`.
    #[tracing::instrument(skip_all)]
    pub async fn history(
        &mut self,
        workspace: &WorkspaceId,
        query: &HistoryQuery,
    ) -> Result<Vec<EntryRecord>, LedgerError> {
        let rows = sqlx::query_as::<_, EntryRecord>(
            r#"
            SELECT id, seq, entry_type, amount, balance_after, actor, description, action, model, project,
                session_ref, payment_ref, created_at
            FROM ledger_entries
            WHERE workspace_id = $1 AND ($2 = '' OR entry_type = $2)
              AND created_at >= $3 AND created_at < $4 AND seq < $5
            ORDER BY seq DESC
            LIMIT $6
            "#,
        )
        .bind(workspace.as_str())
        .bind(query.entry_type.map_or("", EntryType::as_str))
        .bind(query.from.unwrap_or(i64::MIN))
        .bind(query.until.unwrap_or(i64::MAX))
        .bind(query.before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(query.limit))
        .fetch_all(self.conn())
        .await?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::SUMMARY;

    /// Every page view and every charge's Auto-reload check reads the balance: it must find the
    /// workspace's open lots through their index, never by reading every workspace's lots.
    #[tokio::test]
    async fn the_balance_reads_the_workspaces_open_lots_through_their_index() {
        let steps = crate::db::sqlite_plan(SUMMARY).await;
        assert!(
            steps
                .iter()
                .any(|step| step
                    == "SEARCH credit_lots USING INDEX credit_lots_open (workspace_id=?)"),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|s| s.starts_with("SCAN credit_lots")),
            "{steps:?}"
        );
    }
}
