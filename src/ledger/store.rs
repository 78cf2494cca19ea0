//! Ledger movements and reads against the database.
//!
//! Every movement runs in one transaction that first locks the workspace's account row, then
//! reads the open lots, plans with [`super::rules`], and writes lots, journal entry, per-lot
//! trace and account totals together. Lock contention is retried a bounded number of times.

use super::rules::{self, Draw, Lot, Millis, Shortfall};
use crate::db::{new_id, Store, StoreError};
use crate::payments::auto_reload::queue::{queue_in, AttemptStatus};
use app::domain::{Credits, EntryType, GrantKind, WorkspaceId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// Errors of ledger operations.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient credits: {} available, {} held, {} required", .0.available, .0.held, .0.required)]
    Insufficient(Shortfall),
    #[error("unknown workspace")]
    UnknownWorkspace,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("this idempotency key was used with a different request")]
    IdempotencyConflict,
    #[error("no such reservation")]
    ReservationNotFound,
    #[error("the hold expired and was released by itself")]
    ReservationExpired,
    #[error("the reservation was already resolved")]
    ReservationResolved,
    #[error("no such transaction")]
    EntryNotFound,
    #[error("{0}")]
    NotRefundable(RefundRefusal),
    /// The gate's queue is full: nothing was charged; try again in a moment.
    #[error("the credit gate is busy")]
    Overloaded,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a movement cannot be refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// Only consumption is refunded (not grants, purchases or refunds).
    #[error("only a usage charge can be refunded")]
    NotACharge,
    /// A settled reservation charged the actual cost the product's server reported: final.
    #[error("a settled reservation is final; release a reservation whose work failed instead of settling it")]
    SettledReservation,
    /// Refunds are for work that failed just now, not for old usage.
    #[error("this charge is older than the refund window")]
    TooOld,
}

impl From<sqlx::Error> for LedgerError {
    fn from(err: sqlx::Error) -> Self {
        LedgerError::Store(StoreError::Database(err))
    }
}

impl crate::db::Retryable for LedgerError {
    /// Lock contention that another try may get past.
    fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::Store(e) if e.is_retryable())
    }
}

/// Who caused a movement and what it belongs to (shown in history and exports).
#[derive(Clone, Debug, Default)]
pub struct EntryMeta {
    pub actor: String,
    pub description: String,
    pub action: Option<String>,
    pub model: Option<String>,
    pub project: Option<String>,
    pub session: Option<String>,
    pub payment_ref: Option<String>,
}

/// A new lot of credits and the journal entry that records it.
#[derive(Clone, Debug)]
pub struct NewGrant {
    pub kind: GrantKind,
    pub credits: Credits,
    pub expires_at: Option<Millis>,
    /// `Grant` for free, promotional and subscription credits; `Purchase` or `AutoReload`
    /// for purchased ones.
    pub entry_type: EntryType,
    /// What created the lot (`operator`, `demo`, `purchase`, …) and its reference there.
    pub source: String,
    pub source_ref: Option<String>,
    pub note: Option<String>,
    pub meta: EntryMeta,
}

/// The outcome of a movement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub entry_id: String,
    pub seq: i64,
    /// Signed amount of the entry.
    pub amount: i64,
    /// Credits in all lots after the entry (the running balance of the journal).
    pub balance_after: i64,
    /// Credits spendable after the entry (live lots, holds excluded).
    pub available: i64,
}

/// A journal entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRecord {
    pub id: String,
    pub seq: i64,
    pub entry_type: EntryType,
    pub amount: i64,
    pub balance_after: i64,
    pub actor: String,
    pub description: String,
    pub action: Option<String>,
    pub model: Option<String>,
    pub project: Option<String>,
    pub session: Option<String>,
    pub payment_ref: Option<String>,
    pub created_at: Millis,
}

/// Which entries to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub entry_type: Option<EntryType>,
    /// Inclusive lower bound on `created_at`.
    pub from: Option<Millis>,
    /// Exclusive upper bound on `created_at`.
    pub until: Option<Millis>,
    /// Only entries older than this sequence number (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Spendable credits of one kind with one expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRow {
    pub kind: GrantKind,
    pub expires_at: Option<Millis>,
    pub available: i64,
}

/// A workspace's standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSummary {
    pub available: i64,
    pub held: i64,
    pub total: i64,
    pub lifetime_added: i64,
    pub lifetime_spent: i64,
    /// Soonest expiry first, never-expiring last.
    pub buckets: Vec<BucketRow>,
}

/// One lot an entry moved credits from or to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    pub lot_id: String,
    pub kind: GrantKind,
    pub amount: i64,
}

/// A check of the books of one workspace, re-derived from the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub account_total: i64,
    pub lots_remaining: i64,
    pub journal_sum: i64,
    pub entries: i64,
    /// Sequence numbers run 1..=entries and each `balance_after` is the running sum.
    pub sequence_consistent: bool,
    /// Every entry's per-lot trace adds up to its amount.
    pub traces_consistent: bool,
    /// The account's held credits equal the lots' holds and the open reservations.
    pub holds_consistent: bool,
}

impl Audit {
    /// Do the books balance?
    pub fn balanced(&self) -> bool {
        self.account_total == self.lots_remaining
            && self.lots_remaining == self.journal_sum
            && self.sequence_consistent
            && self.traces_consistent
            && self.holds_consistent
    }
}

/// The locked state of one workspace's books inside a transaction.
pub(super) struct OpenBooks {
    pub(super) total: i64,
    pub(super) last_seq: i64,
    pub(super) lots: Vec<Lot>,
    pub(super) added: i64,
    pub(super) spent: i64,
    /// Change of the account's held credits in this transaction.
    pub(super) held_delta: i64,
    /// The Low Balance line, and whether each alert was sent during the current dip.
    threshold: i64,
    /// Auto-reload's threshold when it is on (and not paused).
    reload_below: Option<i64>,
    low_alerted: bool,
    depleted_alerted: bool,
    /// The time of the movement.
    now: Millis,
    /// Draws taken in memory, written to the lots when the books are saved.
    lot_draws: Vec<Draw>,
    /// Journal entries written when the books are saved.
    pub(super) entries: Vec<PendingEntry>,
}

impl Store {
    /// Adds a lot of credits to a workspace and journals it.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn grant(
        &self,
        workspace: &WorkspaceId,
        grant: &NewGrant,
        now: Millis,
    ) -> Result<Receipt, LedgerError> {
        check_grant(grant, now)?;
        self.retrying(|| async {
            let mut tx = self.pool().begin().await?;
            let receipt = grant_in(&mut tx, workspace, grant, now).await?;
            tx.commit().await?;
            Ok(receipt)
        })
        .await
    }

    /// Spends `credits` at once, drawing from lots in the drawdown order, or changes nothing
    /// and reports the shortfall.
    #[tracing::instrument(skip_all, fields(workspace = %workspace, credits = credits.get()))]
    pub async fn charge(
        &self,
        workspace: &WorkspaceId,
        credits: Credits,
        meta: &EntryMeta,
        now: Millis,
    ) -> Result<Receipt, LedgerError> {
        if credits.is_zero() {
            return Err(LedgerError::Invalid(
                "a charge must spend at least one credit",
            ));
        }
        self.retrying(|| self.try_charge(workspace, credits, meta, now))
            .await
    }

    async fn try_charge(
        &self,
        workspace: &WorkspaceId,
        credits: Credits,
        meta: &EntryMeta,
        now: Millis,
    ) -> Result<Receipt, LedgerError> {
        let mut tx = self.pool().begin().await?;
        let mut books = open_books(&mut tx, workspace, now).await?;
        // Lapsed lots are written off first so the journal shows them before the charge.
        expire_lapsed(&mut books, now)?;
        let draws = match rules::plan_charge(&books.lots, now, credits) {
            Ok(draws) => draws,
            Err(shortfall) => {
                // Keep the expiry entries written above: they are true whatever happens next.
                save_account(&mut tx, workspace, &mut books).await?;
                tx.commit().await?;
                return Err(LedgerError::Insufficient(shortfall));
            }
        };
        take_from_lots(&mut books, &draws)?;
        books.spent += credits.get();
        let receipt = post(
            &mut books,
            EntryType::Consumption,
            -credits.get(),
            &draws,
            meta,
            now,
        );
        save_account(&mut tx, workspace, &mut books).await?;
        tx.commit().await?;
        Ok(receipt)
    }

    /// Writes `expiry` entries for a workspace's lapsed lots; returns the credits expired.
    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn expire(&self, workspace: &WorkspaceId, now: Millis) -> Result<i64, LedgerError> {
        self.retrying(|| async {
            let mut tx = self.pool().begin().await?;
            let mut books = open_books(&mut tx, workspace, now).await?;
            let expired = expire_lapsed(&mut books, now)?;
            save_account(&mut tx, workspace, &mut books).await?;
            tx.commit().await?;
            Ok(expired)
        })
        .await
    }

    /// Workspaces that hold at least one lapsed lot with credits left (for the expiry job).
    pub async fn workspaces_with_lapsed_lots(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<WorkspaceId>, LedgerError> {
        let rows = sqlx::query(
            "SELECT DISTINCT workspace_id FROM credit_lots WHERE remaining > held AND expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| parse_workspace(row.try_get("workspace_id")?))
            .collect()
    }

    /// The workspace's balance, holds, lifetime totals and spendable buckets at `now`.
    pub async fn summary(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<AccountSummary, LedgerError> {
        let account = sqlx::query("SELECT total, held, lifetime_added, lifetime_spent FROM credit_accounts WHERE workspace_id = $1")
            .bind(workspace.as_str())
            .fetch_optional(self.pool())
            .await?
            .ok_or(LedgerError::UnknownWorkspace)?;
        let rows = sqlx::query(
            "SELECT kind, expires_at, CAST(SUM(remaining - held) AS BIGINT) AS available FROM credit_lots \
             WHERE workspace_id = $1 AND remaining > held AND (expires_at IS NULL OR expires_at > $2) \
             GROUP BY kind, expires_at",
        )
        .bind(workspace.as_str())
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut buckets = rows
            .iter()
            .map(|row| {
                Ok(BucketRow {
                    kind: parse_kind(row.try_get("kind")?)?,
                    expires_at: row.try_get("expires_at")?,
                    available: row.try_get("available")?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        buckets.sort_by_key(|b| (b.expires_at.is_none(), b.expires_at, b.kind.drawdown_rank()));
        Ok(AccountSummary {
            available: buckets.iter().map(|b| b.available).sum(),
            held: account.try_get("held")?,
            total: account.try_get("total")?,
            lifetime_added: account.try_get("lifetime_added")?,
            lifetime_spent: account.try_get("lifetime_spent")?,
            buckets,
        })
    }

    /// Journal entries, newest first, after the filters and cursor in `query`.
    pub async fn history(
        &self,
        workspace: &WorkspaceId,
        query: &HistoryQuery,
    ) -> Result<Vec<EntryRecord>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, seq, entry_type, amount, balance_after, actor, description, action, model, project, session_ref, payment_ref, created_at \
             FROM ledger_entries WHERE workspace_id = $1 AND ($2 = '' OR entry_type = $2) \
             AND created_at >= $3 AND created_at < $4 AND seq < $5 ORDER BY seq DESC LIMIT $6",
        )
        .bind(workspace.as_str())
        .bind(query.entry_type.map_or("", EntryType::as_str))
        .bind(query.from.unwrap_or(i64::MIN))
        .bind(query.until.unwrap_or(i64::MAX))
        .bind(query.before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(query.limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Consumption since `since`: (time, credits, action, model) per entry, for the usage chart.
    pub async fn consumption_since(
        &self,
        workspace: &WorkspaceId,
        since: Millis,
    ) -> Result<Vec<(Millis, i64, Option<String>, Option<String>)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT created_at, amount, action, model FROM ledger_entries WHERE workspace_id = $1 AND entry_type = 'consumption' AND created_at >= $2 ORDER BY seq",
        )
        .bind(workspace.as_str())
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("created_at")?,
                    -row.try_get::<i64, _>("amount")?,
                    row.try_get("action")?,
                    row.try_get("model")?,
                ))
            })
            .collect()
    }

    /// Which lots an entry of this workspace moved, and how much.
    pub async fn trace(
        &self,
        workspace: &WorkspaceId,
        entry_id: &str,
    ) -> Result<Vec<TraceRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT t.lot_id, l.kind, t.amount FROM ledger_entry_lots t JOIN credit_lots l ON l.id = t.lot_id \
             WHERE t.entry_id = $1 AND l.workspace_id = $2 ORDER BY t.lot_id",
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

    /// Re-derives the books of one workspace from the journal and compares.
    pub async fn audit(&self, workspace: &WorkspaceId) -> Result<Audit, LedgerError> {
        let account_total: i64 =
            sqlx::query("SELECT total FROM credit_accounts WHERE workspace_id = $1")
                .bind(workspace.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or(LedgerError::UnknownWorkspace)?
                .try_get("total")?;
        let lots_remaining: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) AS s FROM credit_lots WHERE workspace_id = $1")
            .bind(workspace.as_str())
            .fetch_one(self.pool())
            .await?
            .try_get("s")?;
        let entries = sqlx::query("SELECT seq, amount, balance_after FROM ledger_entries WHERE workspace_id = $1 ORDER BY seq")
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
            "SELECT COUNT(*) AS n FROM ledger_entries e WHERE e.workspace_id = $1 AND e.amount <> \
             (SELECT CAST(COALESCE(SUM(t.amount), 0) AS BIGINT) FROM ledger_entry_lots t WHERE t.entry_id = e.id)",
        )
        .bind(workspace.as_str())
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let holds = sqlx::query(
            "SELECT a.held AS account, \
             (SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM credit_lots WHERE workspace_id = $1) AS lots, \
             (SELECT CAST(COALESCE(SUM(held), 0) AS BIGINT) FROM reservations WHERE workspace_id = $1 AND status = 'held') AS reserved \
             FROM credit_accounts a WHERE a.workspace_id = $1",
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
            traces_consistent: mismatched == 0,
        })
    }
}

/// Checks a grant before any database work.
fn check_grant(grant: &NewGrant, now: Millis) -> Result<(), LedgerError> {
    if grant.credits.is_zero() {
        return Err(LedgerError::Invalid("a grant must add at least one credit"));
    }
    let purchased_entry = matches!(
        grant.entry_type,
        EntryType::Purchase | EntryType::AutoReload
    );
    if purchased_entry != (grant.kind == GrantKind::Purchased) {
        return Err(LedgerError::Invalid(
            "purchases and Auto-reload add purchased credits; grants add the other kinds",
        ));
    }
    if grant.kind == GrantKind::Purchased && grant.expires_at.is_some() {
        return Err(LedgerError::Invalid("purchased credits never expire"));
    }
    if grant.expires_at.is_some_and(|at| at <= now) {
        return Err(LedgerError::Invalid("the expiry must be in the future"));
    }
    if !matches!(
        grant.entry_type,
        EntryType::Grant | EntryType::Purchase | EntryType::AutoReload
    ) {
        return Err(LedgerError::Invalid(
            "a grant is journaled as grant, purchase or auto_reload",
        ));
    }
    Ok(())
}

/// Adds a lot inside the caller's transaction, so a payment's event record, its purchase and
/// its credits commit together (or not at all).
pub(crate) async fn grant_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    grant: &NewGrant,
    now: Millis,
) -> Result<Receipt, LedgerError> {
    check_grant(grant, now)?;
    let mut books = open_books(conn, workspace, now).await?;
    expire_lapsed(&mut books, now)?;
    let lot_id = new_id("lot");
    sqlx::query(
        "INSERT INTO credit_lots (id, workspace_id, kind, original, remaining, held, expires_at, source, source_ref, note, created_at) \
         VALUES ($1, $2, $3, $4, $4, 0, $5, $6, $7, $8, $9)",
    )
    .bind(&lot_id)
    .bind(workspace.as_str())
    .bind(grant.kind.as_str())
    .bind(grant.credits.get())
    .bind(grant.expires_at)
    .bind(&grant.source)
    .bind(grant.source_ref.as_deref())
    .bind(grant.note.as_deref())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    books.lots.push(Lot {
        id: lot_id.clone(),
        kind: grant.kind,
        remaining: grant.credits.get(),
        held: 0,
        expires_at: grant.expires_at,
        created_at: now,
    });
    books.added += grant.credits.get();
    let draws = [Draw {
        lot_id,
        credits: grant.credits.get(),
    }];
    let receipt = post(
        &mut books,
        grant.entry_type,
        grant.credits.get(),
        &draws,
        &grant.meta,
        now,
    );
    save_account(conn, workspace, &mut books).await?;
    Ok(receipt)
}

/// Takes back up to `credits` from the lots a source created (a purchase that was disputed
/// or refunded), inside the caller's transaction, as one `adjustment` entry. Credits already
/// spent or held stay spent or held: the balance never goes below zero, so what was used is
/// not recovered here. Returns the entry, or `None` when nothing was left to take.
pub(crate) async fn take_back_in(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    source_ref: &str,
    credits: i64,
    meta: &EntryMeta,
    now: Millis,
) -> Result<Option<Receipt>, LedgerError> {
    let lot_ids: Vec<String> = sqlx::query(
        "SELECT id FROM credit_lots WHERE workspace_id = $1 AND source_ref = $2 ORDER BY created_at, id",
    )
    .bind(workspace.as_str())
    .bind(source_ref)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut books = open_books(conn, workspace, now).await?;
    expire_lapsed(&mut books, now)?;
    let mut left = credits;
    let mut draws = Vec::new();
    for lot in books.lots.iter().filter(|l| lot_ids.contains(&l.id)) {
        let take = (lot.remaining - lot.held).min(left);
        if take > 0 {
            draws.push(Draw {
                lot_id: lot.id.clone(),
                credits: take,
            });
            left -= take;
        }
    }
    let taken: i64 = draws.iter().map(|d| d.credits).sum();
    if taken == 0 {
        save_account(conn, workspace, &mut books).await?;
        return Ok(None);
    }
    take_from_lots(&mut books, &draws)?;
    let receipt = post(&mut books, EntryType::Adjustment, -taken, &draws, meta, now);
    save_account(conn, workspace, &mut books).await?;
    Ok(Some(receipt))
}

/// At most this many ids in one `IN (…)` list, well inside both databases' parameter limits.
pub(super) const IDS_PER_QUERY: usize = 200;

/// `$first, $first + 1, …` for `count` parameters.
pub(super) fn param_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the connection talks to PostgreSQL (else SQLite).
fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().starts_with("Postgre")
}

/// Locks the account row of one workspace and reads its open lots.
pub(super) async fn open_books(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    now: Millis,
) -> Result<OpenBooks, LedgerError> {
    lock_books(conn, &[workspace], now)
        .await?
        .remove(workspace)
        .ok_or(LedgerError::UnknownWorkspace)
}

/// Locks the account rows of several workspaces and reads their totals, their Low Balance
/// and Auto-reload lines and their open lots, in a fixed number of statements however many
/// workspaces there are. Workspaces without an account are left out of the answer.
///
/// The rows are locked before anything is read, so two movements of one workspace never plan
/// from the same snapshot: on PostgreSQL by `SELECT … ORDER BY workspace_id FOR UPDATE`, which
/// takes the row locks in id order (two transactions locking overlapping sets of workspaces
/// therefore never deadlock); on SQLite by an `UPDATE`, which takes the database's write lock
/// before any read.
pub(super) async fn lock_books(
    conn: &mut AnyConnection,
    workspaces: &[&WorkspaceId],
    now: Millis,
) -> Result<BTreeMap<WorkspaceId, OpenBooks>, LedgerError> {
    let mut ids: Vec<&WorkspaceId> = workspaces.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let lines = "total, last_seq, low_alerted, depleted_alerted, \
         (SELECT low_balance_threshold FROM workspaces WHERE id = credit_accounts.workspace_id) AS threshold, \
         (SELECT threshold FROM auto_reload_settings WHERE workspace_id = credit_accounts.workspace_id AND enabled = 1 AND paused = 0) AS reload_below";
    let mut books = BTreeMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let list = param_list(1, chunk.len());
        let sql = if is_postgres(conn) {
            format!("SELECT workspace_id, {lines} FROM credit_accounts WHERE workspace_id IN ({list}) ORDER BY workspace_id FOR UPDATE")
        } else {
            format!("UPDATE credit_accounts SET last_seq = last_seq WHERE workspace_id IN ({list}) RETURNING workspace_id, {lines}")
        };
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for account in query.fetch_all(&mut *conn).await? {
            let workspace = parse_workspace(account.try_get("workspace_id")?)?;
            let open = OpenBooks {
                total: account.try_get("total")?,
                last_seq: account.try_get("last_seq")?,
                lots: Vec::new(),
                added: 0,
                spent: 0,
                held_delta: 0,
                threshold: account.try_get("threshold")?,
                reload_below: account.try_get("reload_below")?,
                low_alerted: account.try_get::<i64, _>("low_alerted")? != 0,
                depleted_alerted: account.try_get::<i64, _>("depleted_alerted")? != 0,
                now,
                lot_draws: Vec::new(),
                entries: Vec::new(),
            };
            books.insert(workspace, open);
        }
    }
    let locked: Vec<&WorkspaceId> = books.keys().collect();
    let mut lots: Vec<(WorkspaceId, Lot)> = Vec::new();
    for chunk in locked.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT workspace_id, id, kind, remaining, held, expires_at, created_at FROM credit_lots WHERE workspace_id IN ({}) AND remaining > 0",
            param_list(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            lots.push((
                parse_workspace(row.try_get("workspace_id")?)?,
                lot_from_row(&row)?,
            ));
        }
    }
    for (workspace, lot) in lots {
        if let Some(open) = books.get_mut(&workspace) {
            open.lots.push(lot);
        }
    }
    Ok(books)
}

/// The workspace's lots that still hold credits.
pub(super) async fn open_lots(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
) -> Result<Vec<Lot>, LedgerError> {
    let rows = sqlx::query("SELECT id, kind, remaining, held, expires_at, created_at FROM credit_lots WHERE workspace_id = $1 AND remaining > 0")
        .bind(workspace.as_str())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(lot_from_row).collect()
}

fn lot_from_row(row: &AnyRow) -> Result<Lot, LedgerError> {
    Ok(Lot {
        id: row.try_get("id")?,
        kind: parse_kind(row.try_get("kind")?)?,
        remaining: row.try_get("remaining")?,
        held: row.try_get("held")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Writes one `expiry` entry covering every lapsed lot, if any.
pub(super) fn expire_lapsed(books: &mut OpenBooks, now: Millis) -> Result<i64, LedgerError> {
    let draws = rules::plan_expiry(&books.lots, now);
    if draws.is_empty() {
        return Ok(0);
    }
    let expired: i64 = draws.iter().map(|d| d.credits).sum();
    take_from_lots(books, &draws)?;
    let meta = EntryMeta {
        actor: "system".into(),
        description: format!(
            "{} credits expired",
            app::domain::Credits::new(expired)
                .map(|c| c.to_string())
                .unwrap_or_default()
        ),
        ..EntryMeta::default()
    };
    post(books, EntryType::Expiry, -expired, &draws, &meta, now);
    Ok(expired)
}

/// Takes planned draws out of their lots. The lots change in memory now and in the database
/// when the books are saved, where each lot's total is guarded again in SQL, so a draw can
/// never take held or missing credits even if a plan were wrong.
pub(super) fn take_from_lots(books: &mut OpenBooks, draws: &[Draw]) -> Result<(), LedgerError> {
    for draw in draws {
        let covered = books
            .lots
            .iter()
            .any(|lot| lot.id == draw.lot_id && lot.remaining - lot.held >= draw.credits);
        if !covered || draw.credits <= 0 {
            return Err(StoreError::Corrupt(format!(
                "lot {} could not cover its draw",
                draw.lot_id
            ))
            .into());
        }
    }
    rules::apply_draws(&mut books.lots, draws);
    books.lot_draws.extend(draws.iter().cloned());
    Ok(())
}

/// A journal entry waiting to be written when the books are saved.
pub(super) struct PendingEntry {
    id: String,
    seq: i64,
    entry_type: EntryType,
    amount: i64,
    balance_after: i64,
    meta: EntryMeta,
    draws: Vec<Draw>,
    created_at: Millis,
    /// For a refund: the charge it gives back.
    pub(super) refund_of: Option<String>,
}

/// Appends one journal entry and its per-lot trace (written when the books are saved).
pub(super) fn post(
    books: &mut OpenBooks,
    entry_type: EntryType,
    amount: i64,
    draws: &[Draw],
    meta: &EntryMeta,
    now: Millis,
) -> Receipt {
    books.total += amount;
    books.last_seq += 1;
    // The books can never go below zero: every draw was checked against its lot.
    assert!(
        books.total >= 0,
        "a movement would leave a negative balance"
    );
    let id = new_id("txn");
    let sign = if amount < 0 { -1 } else { 1 };
    books.entries.push(PendingEntry {
        id: id.clone(),
        seq: books.last_seq,
        entry_type,
        amount,
        balance_after: books.total,
        meta: meta.clone(),
        draws: draws
            .iter()
            .map(|d| Draw {
                lot_id: d.lot_id.clone(),
                credits: sign * d.credits,
            })
            .collect(),
        created_at: now,
        refund_of: None,
    });
    Receipt {
        entry_id: id,
        seq: books.last_seq,
        amount,
        balance_after: books.total,
        available: rules::spendable(&books.lots, now),
    }
}

/// Rows per multi-row `INSERT`, well inside both databases' parameter limits.
const ROWS_PER_INSERT: usize = 40;

/// `($1, $2, …), ($n, …)` for `rows` rows of `columns` parameters.
pub(super) fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes what a transaction changed, for every workspace it moved: each touched lot once,
/// the journal entries and their traces, in set-based statements, so a batch of charges over
/// many workspaces costs a fixed number of statements.
async fn flush(
    conn: &mut AnyConnection,
    books: &mut [(&WorkspaceId, &mut OpenBooks)],
) -> Result<(), LedgerError> {
    let draws: Vec<(&WorkspaceId, Draw)> = books
        .iter_mut()
        .flat_map(|(workspace, open)| {
            let workspace: &WorkspaceId = workspace;
            rules::merge_draws(open.lot_draws.drain(..))
                .into_iter()
                .map(move |draw| (workspace, draw))
        })
        .collect();
    for chunk in draws.chunks(ROWS_PER_INSERT) {
        // Each lot's total is guarded again here: a draw never takes held or missing credits.
        let sql = format!(
            "UPDATE credit_lots SET remaining = credit_lots.remaining - v.column3 FROM (VALUES {}) AS v \
             WHERE credit_lots.id = v.column2 AND credit_lots.workspace_id = v.column1 AND credit_lots.remaining - credit_lots.held >= v.column3",
            placeholders(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for (workspace, draw) in chunk {
            query = query
                .bind(workspace.as_str())
                .bind(&draw.lot_id)
                .bind(draw.credits);
        }
        let updated = query.execute(&mut *conn).await?.rows_affected();
        if updated != chunk.len() as u64 {
            let lots: Vec<&str> = chunk.iter().map(|(_, d)| d.lot_id.as_str()).collect();
            return Err(StoreError::Corrupt(format!(
                "one of the lots {} could not cover its draws",
                lots.join(", ")
            ))
            .into());
        }
    }
    let entries: Vec<(&WorkspaceId, PendingEntry)> = books
        .iter_mut()
        .flat_map(|(workspace, open)| {
            let workspace: &WorkspaceId = workspace;
            std::mem::take(&mut open.entries)
                .into_iter()
                .map(move |entry| (workspace, entry))
        })
        .collect();
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO ledger_entries (id, workspace_id, seq, entry_type, amount, balance_after, actor, description, action, model, project, session_ref, payment_ref, created_at, refund_of) VALUES {}",
            placeholders(chunk.len(), 15)
        );
        let mut query = sqlx::query(&sql);
        for (workspace, e) in chunk {
            query = query
                .bind(&e.id)
                .bind(workspace.as_str())
                .bind(e.seq)
                .bind(e.entry_type.as_str())
                .bind(e.amount)
                .bind(e.balance_after)
                .bind(&e.meta.actor)
                .bind(&e.meta.description)
                .bind(e.meta.action.as_deref())
                .bind(e.meta.model.as_deref())
                .bind(e.meta.project.as_deref())
                .bind(e.meta.session.as_deref())
                .bind(e.meta.payment_ref.as_deref())
                .bind(e.created_at)
                .bind(e.refund_of.as_deref());
        }
        query.execute(&mut *conn).await?;
    }
    let traces: Vec<(&str, &Draw)> = entries
        .iter()
        .flat_map(|(_, e)| e.draws.iter().map(move |d| (e.id.as_str(), d)))
        .collect();
    for chunk in traces.chunks(ROWS_PER_INSERT * 4) {
        let sql = format!(
            "INSERT INTO ledger_entry_lots (entry_id, lot_id, amount) VALUES {}",
            placeholders(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for (entry_id, draw) in chunk {
            query = query.bind(*entry_id).bind(&draw.lot_id).bind(draw.credits);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes one workspace's lots, entries and traces, its balance alerts and its account
/// totals. Called once, last, by every movement.
pub(super) async fn save_account(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    books: &mut OpenBooks,
) -> Result<(), LedgerError> {
    save_accounts(conn, &mut [(workspace, books)]).await
}

/// Writes what a transaction changed for each of its workspaces: lots, entries and traces,
/// balance alerts, Auto-reload's queue and the account totals.
pub(super) async fn save_accounts(
    conn: &mut AnyConnection,
    books: &mut [(&WorkspaceId, &mut OpenBooks)],
) -> Result<(), LedgerError> {
    flush(conn, books).await?;
    let mut lines: Vec<(bool, bool)> = Vec::with_capacity(books.len());
    for (workspace, open) in books.iter() {
        // Low and depleted alerts, once per dip, decided on what a new charge could spend.
        let available = rules::spendable(&open.lots, open.now);
        let (alerts, low, depleted) = crate::notifications::balance_alerts(
            available,
            open.threshold,
            open.low_alerted,
            open.depleted_alerted,
        );
        for kind in alerts {
            let (title, body) = crate::notifications::alert_text(kind, available, open.threshold);
            crate::notifications::record(
                conn,
                workspace,
                kind,
                crate::notifications::Audience::Members,
                &title,
                &body,
                None,
                open.now,
            )
            .await?;
        }
        // A spend that leaves the balance below Auto-reload's threshold queues one reload; the
        // unique index on reloads in flight makes every other such spend a no-op, on any number
        // of instances.
        if open.spent > 0 && open.reload_below.is_some_and(|below| available < below) {
            queue_in(conn, workspace, AttemptStatus::Queued, open.now).await?;
        }
        lines.push((low, depleted));
    }
    for chunk in books
        .iter()
        .zip(&lines)
        .collect::<Vec<_>>()
        .chunks(ROWS_PER_INSERT)
    {
        let sql = format!(
            "UPDATE credit_accounts SET total = v.column2, last_seq = v.column3, \
             lifetime_added = credit_accounts.lifetime_added + v.column4, lifetime_spent = credit_accounts.lifetime_spent + v.column5, \
             held = credit_accounts.held + v.column6, low_alerted = v.column7, depleted_alerted = v.column8 \
             FROM (VALUES {}) AS v WHERE credit_accounts.workspace_id = v.column1",
            placeholders(chunk.len(), 8)
        );
        let mut query = sqlx::query(&sql);
        for ((workspace, open), (low, depleted)) in chunk {
            query = query
                .bind(workspace.as_str())
                .bind(open.total)
                .bind(open.last_seq)
                .bind(open.added)
                .bind(open.spent)
                .bind(open.held_delta)
                .bind(i64::from(*low))
                .bind(i64::from(*depleted));
        }
        let updated = query.execute(&mut *conn).await?.rows_affected();
        if updated != chunk.len() as u64 {
            return Err(StoreError::Corrupt("an account row went missing".into()).into());
        }
    }
    Ok(())
}

pub(super) fn parse_kind(text: String) -> Result<GrantKind, LedgerError> {
    GrantKind::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

fn parse_workspace(text: String) -> Result<WorkspaceId, LedgerError> {
    WorkspaceId::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

fn entry_from_row(row: &AnyRow) -> Result<EntryRecord, LedgerError> {
    let entry_type: String = row.try_get("entry_type")?;
    Ok(EntryRecord {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        entry_type: EntryType::parse(&entry_type)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        amount: row.try_get("amount")?,
        balance_after: row.try_get("balance_after")?,
        actor: row.try_get("actor")?,
        description: row.try_get("description")?,
        action: row.try_get("action")?,
        model: row.try_get("model")?,
        project: row.try_get("project")?,
        session: row.try_get("session_ref")?,
        payment_ref: row.try_get("payment_ref")?,
        created_at: row.try_get("created_at")?,
    })
}
