//! The usage chart's sums: consumption per UTC day, action and model, kept for each workspace's
//! journal up to a mark (`usage_sums_through`) and summed live after it (migration 0021).
//!
//! Without them, every Billing page view summed every charge of the chart's thirty days: fine
//! for the demo's fifty, 143 ms a view for a workspace with 100,000. The journal is append-only
//! and a workspace's `seq` has no gaps and commits in order, so "every entry up to seq N" is a
//! fixed set: sums kept for it never go stale, and no clock of any instance is trusted. The
//! gate pays nothing: a page view that finds [`FOLD_AFTER`] charges or more after the mark
//! brings the sums up to date afterwards ([`Store::fold_usage`]).

use super::rules::Millis;
use super::types::Consumption;
use super::LedgerError;
use crate::db::{Reads, Store};
use app::domain::WorkspaceId;
use sqlx::Row;

/// Charges after the mark at which a page view has the kept sums brought up to date. Summing
/// charges live costs a view more than reading their kept rows even for a few dozen (on the
/// demo's data, 57 charges summed live take SQLite about twice as long as reading the 36 kept
/// rows they fold into), while a fold is one short write a view asks for afterwards; so the
/// live half stays small.
pub const FOLD_AFTER: i64 = 32;

/// Kept days older than this are deleted when the sums are brought up to date (the chart
/// shows thirty).
const KEEP_DAYS: i64 = 40;

const DAY_MS: i64 = 86_400_000;

/// The kept sums of the window ($2, a day's start, onwards), then the charges after the mark
/// summed the same way, with how many there were. One statement, so both halves are read at
/// one instant: a fold committing meanwhile is seen whole or not at all. The live half must
/// walk the journal's `(workspace_id, entry_type, seq)` index from the mark, not its index by
/// time, which would read every charge of the window again; the unary `+` keeps both
/// planners from searching on `created_at` (an expression, not the indexed column).
const CONSUMPTION: &str = r#"
    SELECT day, credits, action, model, CAST(0 AS BIGINT) AS entries
    FROM usage_day_sums
    WHERE workspace_id = $1 AND day >= $2
    UNION ALL
    SELECT (created_at / 86400000) * 86400000 AS day,
        CAST(-SUM(amount) AS BIGINT) AS credits,
        COALESCE(action, '') AS action, COALESCE(model, '') AS model,
        CAST(COUNT(*) AS BIGINT) AS entries
    FROM ledger_entries
    WHERE workspace_id = $1 AND entry_type = 'consumption' AND +created_at >= $2
      AND seq > COALESCE((SELECT seq FROM usage_sums_through WHERE workspace_id = $1), 0)
    GROUP BY (created_at / 86400000) * 86400000, COALESCE(action, ''), COALESCE(model, '')
"#;

/// Where the kept sums end and where the journal does.
const MARKS: &str = r#"
    SELECT COALESCE((SELECT seq FROM usage_sums_through WHERE workspace_id = $1), 0) AS kept,
        COALESCE((SELECT MAX(seq) FROM ledger_entries WHERE workspace_id = $1), 0) AS latest
"#;

/// Moves the mark from $2 to $3, or does nothing when another fold moved it first: on
/// PostgreSQL the second waits for the first's row and then finds its condition false; on
/// SQLite writers take turns.
const MOVE_MARK: &str = r#"
    INSERT INTO usage_sums_through (workspace_id, seq)
    VALUES ($1, $3)
    ON CONFLICT (workspace_id) DO UPDATE SET seq = excluded.seq
    WHERE usage_sums_through.seq = $2
"#;

/// Adds the charges of seq $2 (exclusive) to $3 (inclusive) to the kept sums.
const ADD_SUMS: &str = r#"
    INSERT INTO usage_day_sums (workspace_id, day, action, model, credits)
    SELECT $1, (created_at / 86400000) * 86400000,
        COALESCE(action, ''), COALESCE(model, ''), CAST(-SUM(amount) AS BIGINT)
    FROM ledger_entries
    WHERE workspace_id = $1 AND entry_type = 'consumption' AND seq > $2 AND seq <= $3
    GROUP BY (created_at / 86400000) * 86400000, COALESCE(action, ''), COALESCE(model, '')
    ON CONFLICT (workspace_id, day, action, model)
    DO UPDATE SET credits = usage_day_sums.credits + excluded.credits
"#;

/// The chart's consumption and how many charges were summed live (after the mark).
#[derive(Debug, Default)]
pub struct ConsumptionRead {
    /// (a day's start, credits, action, model); a day and key may appear twice, kept and live.
    pub rows: Vec<Consumption>,
    /// Charges after the mark: at [`FOLD_AFTER`] or more, the sums are due to be brought up to date.
    pub live_entries: i64,
}

impl ConsumptionRead {
    /// Whether a fold would spare the next views reading these charges one by one.
    pub fn fold_due(&self) -> bool {
        self.live_entries >= FOLD_AFTER
    }
}

impl Reads {
    /// Consumption since `since` (a UTC day's start), summed per day, action and model.
    #[tracing::instrument(skip_all)]
    pub async fn consumption_since(
        &mut self,
        workspace: &WorkspaceId,
        since: Millis,
    ) -> Result<ConsumptionRead, LedgerError> {
        let rows = sqlx::query(CONSUMPTION)
            .bind(workspace.as_str())
            .bind(since)
            .fetch_all(self.conn())
            .await?;
        let mut read = ConsumptionRead::default();
        read.rows.reserve(rows.len());
        for row in &rows {
            let key = |name: &str| -> Result<Option<String>, sqlx::Error> {
                let value: String = row.try_get(name)?;
                Ok((!value.is_empty()).then_some(value))
            };
            read.rows.push((
                row.try_get("day")?,
                row.try_get("credits")?,
                key("action")?,
                key("model")?,
            ));
            read.live_entries += row.try_get::<i64, _>("entries")?;
        }
        Ok(read)
    }
}

impl Store {
    /// Brings the workspace's kept usage sums up to its latest journal entry and forgets days
    /// the chart no longer shows. Returns whether this call moved the mark (false when there
    /// was nothing new, or another fold moved it first).
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn fold_usage(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<bool, LedgerError> {
        let marks = sqlx::query(MARKS)
            .bind(workspace.as_str())
            .fetch_one(self.pool())
            .await?;
        let kept: i64 = marks.try_get("kept")?;
        let latest: i64 = marks.try_get("latest")?;
        if latest <= kept {
            return Ok(false);
        }
        let mut tx = self.pool().begin().await?;
        // The mark first: it is what makes two folds of the same charges impossible.
        let moved = sqlx::query(MOVE_MARK)
            .bind(workspace.as_str())
            .bind(kept)
            .bind(latest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if moved == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(ADD_SUMS)
            .bind(workspace.as_str())
            .bind(kept)
            .bind(latest)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM usage_day_sums WHERE workspace_id = $1 AND day < $2")
            .bind(workspace.as_str())
            .bind((now / DAY_MS - KEEP_DAYS) * DAY_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::CONSUMPTION;

    /// The live half reads only the charges after the mark, through the journal's index by
    /// workspace, type and seq: a view never walks the window's kept charges again.
    #[tokio::test]
    async fn the_chart_reads_only_the_charges_after_the_mark() {
        let steps = crate::db::sqlite_plan(CONSUMPTION).await;
        assert!(
            steps.iter().any(|step| step
                == "SEARCH ledger_entries USING INDEX ledger_entries_by_type (workspace_id=? AND entry_type=? AND seq>?)"),
            "{steps:?}"
        );
    }
}
