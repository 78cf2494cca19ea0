//! The read side of Billing: turns ledger rows into the views the page and the API share.

use super::{EntryRecord, HistoryQuery, LedgerError};
use crate::clock::to_datetime;
use crate::clock::Millis;
use crate::db::Reads;
use crate::spend::{BudgetView, SpendError, Spender};
use app::billing::{AutoReloadView, Bucket, BudgetLine, CreditsView, HistoryFilter, PoolLine};
use app::billing::{ResourceRef, Transaction};
use app::billing::{UsageBreakdown, UsageDay, UsageReport};
use app::domain::{CreditUnit, Credits, WorkspaceId};
use chrono::{Days, NaiveTime};

/// The most rows one page may ask for.
pub const MAX_PAGE: u32 = 100;

/// Cursors are opaque to clients: `c` plus the hex sequence number of the last row shown.
pub fn encode_cursor(seq: i64) -> String {
    format!("c{seq:x}")
}

pub fn decode_cursor(cursor: &str) -> Result<i64, LedgerError> {
    cursor
        .strip_prefix('c')
        .filter(|hex| !hex.is_empty() && hex.len() <= 16)
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|seq| *seq > 0)
        .ok_or(LedgerError::BadCursor)
}

/// A filter's dates as a half-open range of milliseconds (whole UTC days).
pub fn history_query(filter: &HistoryFilter, before_seq: Option<i64>, limit: u32) -> HistoryQuery {
    let start_of =
        |date: chrono::NaiveDate| date.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
    HistoryQuery {
        entry_type: filter.entry_type,
        from: filter.from.map(start_of),
        until: filter
            .to
            .and_then(|d| d.checked_add_days(Days::new(1)))
            .map(start_of),
        before_seq,
        limit,
    }
}

/// One page of history and the cursor of the next, if there is one.
#[tracing::instrument(skip_all)]
pub async fn history(
    reads: &mut Reads,
    workspace: &WorkspaceId,
    filter: &HistoryFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<Transaction>, Option<String>), LedgerError> {
    let before_seq = cursor.map(decode_cursor).transpose()?;
    let limit = limit.clamp(1, MAX_PAGE);
    // One row more than asked tells whether another page exists.
    let mut rows = reads
        .history(workspace, &history_query(filter, before_seq, limit + 1))
        .await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|row| encode_cursor(row.seq))
    } else {
        None
    };
    Ok((rows.into_iter().map(transaction).collect(), next_cursor))
}

/// Who a Credits view is for.
pub struct Audience<'a> {
    /// Sees the card Auto-reload charges (billing managers and API keys).
    pub with_card: bool,
    /// Whose budgets concern them (theirs and the projects').
    pub whose: &'a Spender,
    /// The unit amounts are shown in.
    pub unit: &'a CreditUnit,
}

/// The Credits view: balance, buckets, totals, Auto-reload, a page of history and the budgets
/// that concern the audience.
#[tracing::instrument(skip_all)]
pub async fn credits_view(
    reads: &mut Reads,
    workspace: &WorkspaceId,
    now: Millis,
    limit: u32,
    cursor: Option<&str>,
    audience: &Audience<'_>,
) -> Result<CreditsView, LedgerError> {
    let Audience {
        with_card,
        whose,
        unit,
    } = *audience;
    let (transactions, next_cursor) =
        history(reads, workspace, &HistoryFilter::default(), cursor, limit).await?;
    let summary = reads.summary(workspace, now).await?;
    // The balance's statement said whether there are settings or budgets to read.
    let auto_reload = reads
        .auto_reload_view(
            workspace,
            summary.auto_reload_saved,
            summary.available,
            now,
            unit,
        )
        .await
        .map_err(LedgerError::from)?;
    let credits = |n: i64| Credits::new(n.max(0)).unwrap_or_default();
    let budgets = if summary.has_budgets {
        budgets_of(reads, workspace, now, whose).await?
    } else {
        Vec::new()
    };
    Ok(CreditsView {
        workspace_id: workspace.clone(),
        balance: credits(summary.available),
        balance_money: unit.money(credits(summary.available)),
        held: credits(summary.held),
        low_balance: summary.available <= summary.low_balance_threshold,
        low_balance_threshold: credits(summary.low_balance_threshold),
        lifetime_added: credits(summary.lifetime_added),
        lifetime_spent: credits(summary.lifetime_spent),
        buckets: summary
            .buckets
            .into_iter()
            .map(|b| Bucket {
                kind: b.kind,
                remaining: credits(b.available),
                expires_at: b.expires_at.map(to_datetime),
            })
            .collect(),
        auto_reload: if with_card {
            auto_reload
        } else {
            auto_reload.without_card()
        },
        transactions,
        next_cursor,
        budgets,
        pool: None,
    })
}

/// The budgets of the workspace that concern `whose`, with this period's use.
async fn budgets_of(
    reads: &mut Reads,
    workspace: &WorkspaceId,
    now: Millis,
    whose: &Spender,
) -> Result<Vec<BudgetLine>, LedgerError> {
    Ok(reads
        .budgets(workspace, now)
        .await
        .map_err(|e| match e {
            SpendError::Store(e) => LedgerError::Store(e),
            other => LedgerError::Store(crate::db::StoreError::Corrupt(other.to_string())),
        })?
        .into_iter()
        .filter(|b| b.concerns(whose))
        .map(|b| budget_line(&b))
        .collect())
}

/// The Credits view of a member shown only their project's pool: the pool's figures and
/// their budgets, and nothing of the workspace's balance, totals, Auto-reload or history.
#[tracing::instrument(skip_all)]
pub async fn pool_credits_view(
    reads: &mut Reads,
    workspace: &WorkspaceId,
    pool: PoolLine,
    now: Millis,
    whose: &Spender,
    unit: &CreditUnit,
) -> Result<CreditsView, LedgerError> {
    let budgets = budgets_of(reads, workspace, now, whose).await?;
    let overflow = if pool.overflow {
        " Once it is spent, the project goes on with the workspace's shared credits."
    } else {
        ""
    };
    Ok(CreditsView {
        workspace_id: workspace.clone(),
        balance: pool.remaining,
        balance_money: unit.money(pool.remaining),
        held: Credits::default(),
        low_balance: false,
        low_balance_threshold: Credits::default(),
        lifetime_added: Credits::default(),
        lifetime_spent: Credits::default(),
        buckets: Vec::new(),
        auto_reload: AutoReloadView::hidden(format!(
            "Your workspace keeps credits for {} apart; its billing managers top them up.{overflow}",
            pool.project
        )),
        transactions: Vec::new(),
        next_cursor: None,
        budgets,
        pool: Some(pool),
    })
}

/// A pool as the member who works in its project sees it.
pub fn pool_line(pool: &crate::spend::PoolView) -> PoolLine {
    PoolLine {
        project: pool.target.clone(),
        remaining: Credits::new(pool.remaining.max(0)).unwrap_or_default(),
        overflow: pool.overflow,
    }
}

/// A budget as the people and servers it applies to see it.
pub fn budget_line(b: &BudgetView) -> BudgetLine {
    let credits = |n: i64| Credits::new(n.max(0)).unwrap_or_default();
    BudgetLine {
        id: b.id.clone(),
        scope: b.scope.as_str().to_owned(),
        label: b.label.clone(),
        action: b.action.clone(),
        period: b.period.as_str().to_owned(),
        limit: credits(b.limit),
        enforcement: b.enforcement.as_str().to_owned(),
        used: credits(b.used),
        held: credits(b.held),
        remaining: credits(b.limit - b.used - b.held),
        resets_at: b.resets_at.map(to_datetime),
    }
}

/// A journal row as people and the API see it.
pub fn transaction(row: EntryRecord) -> Transaction {
    Transaction {
        id: row.id,
        entry_type: row.entry_type,
        amount: row.amount,
        balance_after: Credits::new(row.balance_after).unwrap_or_default(),
        created_at: to_datetime(row.created_at),
        description: row.description,
        resource: ResourceRef {
            action: row.action,
            model: row.model,
            project: row.project,
            session: row.session,
        },
    }
}

/// Days the usage chart covers, today included.
pub const USAGE_DAYS: i64 = 30;
/// Actions or models shown by name; the rest are added up as "Other".
const USAGE_KEYS: usize = 5;

/// Builds the usage chart's data from consumption rows: every day of the window, the largest
/// actions or models by name and the rest as "Other".
pub fn usage_report(
    rows: &[(Millis, i64, Option<String>, Option<String>)],
    today: chrono::NaiveDate,
    by: UsageBreakdown,
) -> UsageReport {
    let first = today - chrono::Days::new(USAGE_DAYS as u64 - 1);
    let key_of = |row: &(Millis, i64, Option<String>, Option<String>)| {
        let key = match by {
            UsageBreakdown::Action => row.2.clone(),
            UsageBreakdown::Model => row.3.clone(),
        };
        key.unwrap_or_else(|| "unspecified".to_owned())
    };
    // Only rows inside the window count, for the ranking as for the bars.
    let rows: Vec<_> = rows
        .iter()
        .filter(|row| {
            let date = to_datetime(row.0).date_naive();
            date >= first && date <= today
        })
        .collect();
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    for row in &rows {
        *totals.entry(key_of(row)).or_default() += row.1;
    }
    let mut ranked: Vec<(String, i64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keys: Vec<String> = ranked
        .iter()
        .take(USAGE_KEYS)
        .map(|(k, _)| k.clone())
        .collect();
    let other = ranked.len() > USAGE_KEYS;
    if other {
        keys.push("Other".to_owned());
    }
    let mut days: Vec<UsageDay> = (0..USAGE_DAYS)
        .map(|i| UsageDay {
            date: first + chrono::Days::new(i as u64),
            total: 0,
            parts: vec![0; keys.len()],
        })
        .collect();
    for row in &rows {
        let date = to_datetime(row.0).date_naive();
        let Some(day) = days.iter_mut().find(|d| d.date == date) else {
            continue;
        };
        let key = key_of(row);
        let index = keys
            .iter()
            .position(|k| *k == key)
            .unwrap_or(keys.len() - 1);
        day.parts[index] += row.1;
        day.total += row.1;
    }
    let total = days.iter().map(|d| d.total).sum();
    UsageReport {
        by,
        keys,
        days,
        total,
    }
}

/// The usage chart of a workspace at `now`, and whether its kept sums are due to be brought
/// up to date ([`crate::db::Store::fold_usage`]; not on this read-only connection).
#[tracing::instrument(skip_all)]
pub async fn usage(
    reads: &mut Reads,
    workspace: &WorkspaceId,
    now: Millis,
    by: UsageBreakdown,
) -> Result<(UsageReport, bool), LedgerError> {
    let today = to_datetime(now).date_naive();
    let since = (today - chrono::Days::new(USAGE_DAYS as u64 - 1))
        .and_time(NaiveTime::MIN)
        .and_utc()
        .timestamp_millis();
    let read = reads.consumption_since(workspace, since).await?;
    Ok((usage_report(&read.rows, today, by), read.fold_due()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usage_is_split_by_day_and_the_largest_keys() {
        let day = |d: u32, h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 11, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        let row = |at: Millis, n: i64, action: &str| {
            (at, n, Some(action.to_owned()), Some("m".to_owned()))
        };
        let mut rows = vec![
            row(day(21, 9), 10, "a"),
            row(day(21, 10), 5, "b"),
            row(day(20, 23), 7, "a"),
            row(
                chrono::NaiveDate::from_ymd_opt(2026, 10, 22)
                    .unwrap()
                    .and_hms_opt(23, 0, 0)
                    .unwrap()
                    .and_utc()
                    .timestamp_millis(),
                99,
                "too-old",
            ),
        ];
        for (i, name) in ["c", "d", "e", "f"].iter().enumerate() {
            rows.push(row(day(19, 0), 1 + i as i64, name));
        }
        let report = usage_report(
            &rows,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
            UsageBreakdown::Action,
        );
        assert_eq!(report.days.len(), 30);
        assert_eq!(
            report.days[0].date,
            chrono::NaiveDate::from_ymd_opt(2026, 10, 23).unwrap()
        );
        assert_eq!(report.keys, ["a", "b", "f", "e", "d", "Other"]);
        let today = report.days.last().unwrap();
        assert_eq!((today.total, today.parts[0], today.parts[1]), (15, 10, 5));
        assert_eq!(report.days[28].total, 7);
        assert_eq!(
            report.days[27].parts[5], 1,
            "the smallest key is counted as Other"
        );
        assert_eq!(
            report.total,
            15 + 7 + 10,
            "rows outside the window are left out"
        );
        let by_model = usage_report(
            &rows,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
            UsageBreakdown::Model,
        );
        assert_eq!(by_model.keys, ["m"]);
    }

    #[test]
    fn cursors_of_very_large_sequences_round_trip() {
        // Sixteen hex digits: once found by the property test below.
        let seq = 1_152_921_504_606_846_976;
        assert_eq!(decode_cursor(&encode_cursor(seq)).unwrap(), seq);
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for bad in ["", "c", "x10", "c-1", "c0", "czz", "c1234567890abcdef01"] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_day_filter_covers_the_whole_utc_day() {
        let filter =
            HistoryFilter::from_query(None, Some("2026-11-01"), Some("2026-11-01")).unwrap();
        let q = history_query(&filter, None, 10);
        // 2026-11-01T00:00:00Z up to (not including) 2026-11-02T00:00:00Z.
        assert_eq!(q.from, Some(1_793_491_200_000));
        assert_eq!(q.until, Some(1_793_577_600_000));
        // A range of days runs from the first midnight to the midnight after the last day.
        let week = HistoryFilter::from_query(None, Some("2026-11-01"), Some("2026-11-07")).unwrap();
        let q = history_query(&week, Some(42), 10);
        assert_eq!(q.from, Some(1_793_491_200_000));
        assert_eq!(q.until, Some(1_794_096_000_000));
        assert_eq!(q.before_seq, Some(42));
        // Open ends stay open.
        let open = HistoryFilter::from_query(None, None, None).unwrap();
        let q = history_query(&open, None, 10);
        assert_eq!((q.from, q.until), (None, None));
    }

    proptest! {
        #[test]
        fn cursors_round_trip(seq in 1..i64::MAX) {
            prop_assert_eq!(decode_cursor(&encode_cursor(seq)).unwrap(), seq);
        }
    }
}
