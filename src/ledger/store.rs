//! The books of a transaction: the account rows locked, the open lots read, the planned
//! entries collected, and everything written back in set-based statements. Every movement of
//! [`super::movements`] and the gate goes through here.
//!
//! Every movement runs in one transaction that first locks the workspace's account row, then
//! reads the open lots, plans with [`super::rules`], and writes lots, journal entry, per-lot
//! trace and account totals together. Lock contention is retried a bounded number of times.

use super::rules::{self, Draw, Lot, Millis};
use super::types::{EntryMeta, Receipt};
use super::LedgerError;
use crate::db::{
    is_postgres, new_ordered_id, param_list, param_rows, Guard, StoreError, Value, Writes,
};
use crate::payments::auto_reload::queue::{queue_in, AttemptStatus};
use app::domain::{EntryType, GrantKind, WorkspaceId};
use sqlx::{AnyConnection, FromRow, Row};
use std::collections::BTreeMap;

/// The locked state of one workspace's books inside a transaction.
pub(super) struct OpenBooks {
    pub(super) total: i64,
    pub(super) last_seq: i64,
    /// The account row's writes so far: each movement's save adds one (see
    /// [`save_unlocked`]).
    version: i64,
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
    /// Whether the workspace may have budgets or pools to read. False only where the read of
    /// its open lots said it had none (see [`lock_books`]), so a batch skips their two reads.
    pub(super) spend_controls: bool,
    /// The time of the movement.
    now: Millis,
    /// Draws taken in memory, written to the lots when the books are saved.
    lot_draws: Vec<Draw>,
    /// Journal entries written when the books are saved.
    pub(super) entries: Vec<PendingEntry>,
}

/// The account columns [`OpenBooks::read`] takes: totals, version, alert flags, and the Low
/// Balance and Auto-reload lines.
const ACCOUNT_LINES: &str = "total, last_seq, version, low_alerted, depleted_alerted, \
     (SELECT low_balance_threshold FROM workspaces WHERE id = credit_accounts.workspace_id) AS threshold, \
     (SELECT threshold FROM auto_reload_settings WHERE workspace_id = credit_accounts.workspace_id AND enabled = 1 AND paused = 0) AS reload_below";

impl OpenBooks {
    /// The books of an account row read with [`ACCOUNT_LINES`], before its lots.
    fn read(
        account: &sqlx::any::AnyRow,
        spend_controls: bool,
        now: Millis,
    ) -> Result<OpenBooks, LedgerError> {
        Ok(OpenBooks {
            total: account.try_get("total")?,
            last_seq: account.try_get("last_seq")?,
            version: account.try_get("version")?,
            lots: Vec::new(),
            added: 0,
            spent: 0,
            held_delta: 0,
            threshold: account.try_get("threshold")?,
            reload_below: account.try_get("reload_below")?,
            low_alerted: account.try_get::<i64, _>("low_alerted")? != 0,
            depleted_alerted: account.try_get::<i64, _>("depleted_alerted")? != 0,
            spend_controls,
            now,
            lot_draws: Vec::new(),
            entries: Vec::new(),
        })
    }
}

/// Each workspace once, in id order: the order their account rows are locked in.
fn in_lock_order<'a>(workspaces: &[&'a WorkspaceId]) -> Vec<&'a WorkspaceId> {
    let mut ids = workspaces.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Reads the books of several workspaces as [`lock_books`] does, but without locking anything
/// and in one statement, every account with its open lots (PostgreSQL only): for a batch
/// written by [`save_unlocked`], which checks under its locks that no account moved since.
#[tracing::instrument(skip_all)]
pub(super) async fn peek_books(
    conn: &mut AnyConnection,
    workspaces: &[&WorkspaceId],
    now: Millis,
) -> Result<BTreeMap<WorkspaceId, OpenBooks>, LedgerError> {
    let ids = in_lock_order(workspaces);
    let mut books: BTreeMap<WorkspaceId, OpenBooks> = BTreeMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let sql = format!(
            r#"
            SELECT credit_accounts.workspace_id, {ACCOUNT_LINES},
                CASE WHEN EXISTS (SELECT 1 FROM budgets b
                                  WHERE b.workspace_id = credit_accounts.workspace_id
                                    AND b.removed_at IS NULL)
                       OR EXISTS (SELECT 1 FROM pools p
                                  WHERE p.workspace_id = credit_accounts.workspace_id
                                    AND p.removed_at IS NULL)
                     THEN 1 ELSE 0 END AS spend_controls,
                l.id, l.kind, l.remaining, l.held, l.expires_at, l.created_at
            FROM credit_accounts
            LEFT JOIN credit_lots l
              ON l.workspace_id = credit_accounts.workspace_id AND l.is_open
            WHERE credit_accounts.workspace_id IN ({})
            "#,
            param_list(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let workspace = parse_workspace(row.try_get("workspace_id")?)?;
            let open = match books.entry(workspace) {
                std::collections::btree_map::Entry::Occupied(open) => open.into_mut(),
                std::collections::btree_map::Entry::Vacant(place) => {
                    let controls = row.try_get::<i64, _>("spend_controls")? != 0;
                    place.insert(OpenBooks::read(&row, controls, now)?)
                }
            };
            // An account without open lots comes once, with no lot.
            if row.try_get::<Option<String>, _>("id")?.is_some() {
                open.lots.push(Lot::from_row(&row)?);
            }
        }
    }
    Ok(books)
}

/// At most this many ids in one `IN (…)` list, well inside both databases' parameter limits.
pub(super) const IDS_PER_QUERY: usize = 200;

/// Locks the account row of one workspace and reads its open lots.
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
pub(super) async fn lock_books(
    conn: &mut AnyConnection,
    workspaces: &[&WorkspaceId],
    now: Millis,
) -> Result<BTreeMap<WorkspaceId, OpenBooks>, LedgerError> {
    let ids = in_lock_order(workspaces);
    let lines = ACCOUNT_LINES;
    let mut books = BTreeMap::new();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let list = param_list(1, chunk.len());
        let sql = if is_postgres(conn) {
            format!(
                r#"
                SELECT workspace_id, {lines}
                FROM credit_accounts
                WHERE workspace_id IN ({list})
                ORDER BY workspace_id
                FOR UPDATE
                "#
            )
        } else {
            format!(
                r#"
                UPDATE credit_accounts
                SET last_seq = last_seq
                WHERE workspace_id IN ({list})
                RETURNING workspace_id, {lines}
                "#
            )
        };
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for account in query.fetch_all(&mut *conn).await? {
            let workspace = parse_workspace(account.try_get("workspace_id")?)?;
            // Until its lots say otherwise (below).
            books.insert(workspace, OpenBooks::read(&account, true, now)?);
        }
    }
    // Each open lot comes with whether its workspace has live budgets or pools, so that a
    // batch of workspaces without them skips their two reads (each a round trip, two of a
    // batch's twelve statements). Read here, after the account rows are locked, the answer
    // holds until the commit: a pool is created under that lock, and on PostgreSQL this
    // statement sees everything committed before it began (the lock statement's own snapshot
    // may predate a wait for the lock). A workspace without open lots keeps `true`.
    let locked: Vec<&WorkspaceId> = books.keys().collect();
    let mut lots: Vec<(WorkspaceId, Lot, bool)> = Vec::new();
    for chunk in locked.chunks(IDS_PER_QUERY) {
        let sql = format!(
            r#"
            SELECT l.workspace_id, l.id, l.kind, l.remaining, l.held, l.expires_at, l.created_at,
                CASE WHEN EXISTS (SELECT 1 FROM budgets b
                                  WHERE b.workspace_id = l.workspace_id AND b.removed_at IS NULL)
                       OR EXISTS (SELECT 1 FROM pools p
                                  WHERE p.workspace_id = l.workspace_id AND p.removed_at IS NULL)
                     THEN 1 ELSE 0 END AS spend_controls
            FROM credit_lots l
            WHERE l.workspace_id IN ({}) AND l.is_open
            "#,
            param_list(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&mut *conn).await? {
            lots.push((
                parse_workspace(row.try_get("workspace_id")?)?,
                Lot::from_row(&row)?,
                row.try_get::<i64, _>("spend_controls")? != 0,
            ));
        }
    }
    for (workspace, lot, spend_controls) in lots {
        if let Some(open) = books.get_mut(&workspace) {
            // Every row of a workspace says the same; the first one decides.
            if open.lots.is_empty() {
                open.spend_controls = spend_controls;
            }
            open.lots.push(lot);
        }
    }
    Ok(books)
}

/// The workspace's lots that still hold credits.
#[tracing::instrument(skip_all)]
pub(super) async fn open_lots(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
) -> Result<Vec<Lot>, LedgerError> {
    let rows = sqlx::query_as::<_, Lot>(
        r#"
        SELECT id, kind, remaining, held, expires_at, created_at
        FROM credit_lots
        WHERE workspace_id = $1 AND is_open
        "#,
    )
    .bind(workspace.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
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
        // The amount is the entry's own (shown in the deployment's unit beside it).
        description: "Credits expired".to_owned(),
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
    /// For a one-shot charge: what it counted against its budgets
    /// ([`crate::spend::BudgetBook::charge`]), for a refund to give back.
    pub(super) budget_counts: Option<String>,
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
    let id = new_ordered_id("txn", now);
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
        budget_counts: None,
    });
    Receipt {
        entry_id: id,
        seq: books.last_seq,
        amount,
        balance_after: books.total,
        available: rules::spendable(&books.lots, now),
    }
}

/// Rows per multi-row `INSERT`: a whole batch of the gate (`MAX_BATCH` charges) in one
/// statement, well inside both databases' parameter limits.
const ROWS_PER_INSERT: usize = 64;

/// Adds what a transaction changed, for every workspace it moved, to its closing writes:
/// each touched lot once, the journal entries and their traces, in set-based statements, so a
/// batch of charges over many workspaces costs a fixed number of statements.
fn flush_into(writes: &mut Writes, books: &mut [(&WorkspaceId, &mut OpenBooks)]) {
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
            r#"
            UPDATE credit_lots
            SET remaining = credit_lots.remaining - v.column3
            FROM (VALUES {}) AS v
            WHERE credit_lots.id = v.column2
              AND credit_lots.workspace_id = v.column1
              AND credit_lots.remaining - credit_lots.held >= v.column3
            "#,
            param_rows(chunk.len(), 3)
        );
        let mut values = Vec::with_capacity(chunk.len() * 3);
        for (workspace, draw) in chunk {
            values.extend([
                Value::from(workspace.as_str()),
                Value::from(draw.lot_id.as_str()),
                Value::from(draw.credits),
            ]);
        }
        let lots: Vec<&str> = chunk.iter().map(|(_, d)| d.lot_id.as_str()).collect();
        let what = format!(
            "one of the lots {} could not cover its draws",
            lots.join(", ")
        );
        writes.add(sql, values, Some((chunk.len() as u64, what)));
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
            r#"
            INSERT INTO ledger_entries (id, workspace_id, seq, entry_type, amount, balance_after, actor,
                description, action, model, project, session_ref, payment_ref, created_at, refund_of,
                budget_counts)
            VALUES {}
            "#,
            param_rows(chunk.len(), 16)
        );
        let mut values = Vec::with_capacity(chunk.len() * 16);
        for (workspace, e) in chunk {
            values.extend([
                Value::from(e.id.as_str()),
                Value::from(workspace.as_str()),
                Value::from(e.seq),
                Value::from(e.entry_type.as_str()),
                Value::from(e.amount),
                Value::from(e.balance_after),
                Value::from(e.meta.actor.as_str()),
                Value::from(e.meta.description.as_str()),
                Value::from(e.meta.action.as_deref()),
                Value::from(e.meta.model.as_deref()),
                Value::from(e.meta.project.as_deref()),
                Value::from(e.meta.session.as_deref()),
                Value::from(e.meta.payment_ref.as_deref()),
                Value::from(e.created_at),
                Value::from(e.refund_of.as_deref()),
                Value::from(e.budget_counts.as_deref()),
            ]);
        }
        writes.add(sql, values, None);
    }
    let traces: Vec<(&str, &Draw)> = entries
        .iter()
        .flat_map(|(_, e)| e.draws.iter().map(move |d| (e.id.as_str(), d)))
        .collect();
    for chunk in traces.chunks(ROWS_PER_INSERT * 4) {
        let sql = format!(
            r#"
            INSERT INTO ledger_entry_lots (entry_id, lot_id, amount)
            VALUES {}
            "#,
            param_rows(chunk.len(), 3)
        );
        let mut values = Vec::with_capacity(chunk.len() * 3);
        for (entry_id, draw) in chunk {
            values.extend([
                Value::from(*entry_id),
                Value::from(draw.lot_id.as_str()),
                Value::from(draw.credits),
            ]);
        }
        writes.add(sql, values, None);
    }
}

/// Writes one workspace's lots, entries and traces, its balance alerts and its account
/// totals. Called once, last, by every movement.
#[tracing::instrument(skip_all)]
pub(super) async fn save_account(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    books: &mut OpenBooks,
) -> Result<(), LedgerError> {
    save_accounts(conn, &mut [(workspace, books)], Writes::default()).await
}

/// What saving one workspace's books writes besides its rows: the balance alerts to record,
/// the alert flags afterwards, and whether a reload is queued.
struct Closing {
    alerts: Vec<crate::notifications::Kind>,
    low: bool,
    depleted: bool,
    queue_reload: bool,
    available: i64,
}

impl OpenBooks {
    fn closing(&self) -> Closing {
        // Low and depleted alerts, once per dip, decided on what a new charge could spend.
        let available = rules::spendable(&self.lots, self.now);
        let (alerts, low, depleted) = crate::notifications::balance_alerts(
            available,
            self.threshold,
            self.low_alerted,
            self.depleted_alerted,
        );
        // A spend that leaves the balance below Auto-reload's threshold queues one reload.
        let queue_reload =
            self.spent > 0 && self.reload_below.is_some_and(|below| available < below);
        Closing {
            alerts,
            low,
            depleted,
            queue_reload,
            available,
        }
    }
}

/// Writes what a transaction changed for each of its workspaces: lots, entries and traces,
/// balance alerts, Auto-reload's queue and the account totals, together with `writes` (the
/// caller's own, which must read nothing these write; see [`Writes`]).
#[tracing::instrument(skip_all)]
pub(super) async fn save_accounts(
    conn: &mut AnyConnection,
    books: &mut [(&WorkspaceId, &mut OpenBooks)],
    mut writes: Writes,
) -> Result<(), LedgerError> {
    let mut lines: Vec<(bool, bool)> = Vec::with_capacity(books.len());
    for (workspace, open) in books.iter() {
        let closing = open.closing();
        for kind in closing.alerts {
            let (title, body) =
                crate::notifications::alert_text(kind, closing.available, open.threshold);
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
        // The unique index on reloads in flight makes every other such spend a no-op, on any
        // number of instances.
        if closing.queue_reload {
            queue_in(conn, workspace, AttemptStatus::Queued, open.now).await?;
        }
        lines.push((closing.low, closing.depleted));
    }
    flush_into(&mut writes, books);
    account_writes(&mut writes, books, &lines);
    // The lots, entries, traces and accounts (and the caller's writes) in one round trip on
    // PostgreSQL: none of them reads what another writes.
    writes.run(conn).await?;
    Ok(())
}

/// Writes a batch's books, read by [`peek_books`] without locks, together with `writes`, as
/// one statement that the database commits by itself (PostgreSQL only): it first locks the
/// account rows, in workspace order as [`lock_books`] does, and finds each at the version
/// read, or it fails whole with a serialization failure and nothing is written. Every
/// movement of a workspace writes its account row last and counts the write in its version,
/// so an unchanged version means the books read are the books now.
///
/// Returns false, having written nothing, when a workspace's save also records a balance
/// alert or queues a reload: those are statements of their own, which only a transaction
/// with the locks held keeps together with the charge.
#[tracing::instrument(skip_all)]
pub(super) async fn save_unlocked(
    conn: &mut AnyConnection,
    books: &mut [(&WorkspaceId, &mut OpenBooks)],
    mut writes: Writes,
) -> Result<bool, LedgerError> {
    let mut lines: Vec<(bool, bool)> = Vec::with_capacity(books.len());
    for (_, open) in books.iter() {
        let closing = open.closing();
        if !closing.alerts.is_empty() || closing.queue_reload {
            return Ok(false);
        }
        lines.push((closing.low, closing.depleted));
    }
    let mut guard_values = Vec::with_capacity(books.len() * 2);
    for (workspace, open) in books.iter() {
        guard_values.extend([Value::from(workspace.as_str()), Value::from(open.version)]);
    }
    let guard = Guard {
        sql: format!(
            r#"
            SELECT a.workspace_id
            FROM credit_accounts a
            JOIN (VALUES {}) AS v (workspace_id, version)
              ON a.workspace_id = v.workspace_id
            WHERE a.version = v.version::BIGINT
            ORDER BY a.workspace_id
            FOR UPDATE OF a
            "#,
            param_rows(books.len(), 2)
        ),
        values: guard_values,
        wanted: books.len() as u64,
        what: "an account moved since its books were read".to_owned(),
    };
    flush_into(&mut writes, books);
    account_writes(&mut writes, books, &lines);
    writes.run_guarded(conn, guard).await?;
    Ok(true)
}

/// Adds each workspace's account row — its totals, its alert flags (`lines`) and one more
/// write in its version — to the closing writes.
fn account_writes(
    writes: &mut Writes,
    books: &[(&WorkspaceId, &mut OpenBooks)],
    lines: &[(bool, bool)],
) {
    for chunk in books
        .iter()
        .zip(lines)
        .collect::<Vec<_>>()
        .chunks(ROWS_PER_INSERT)
    {
        let sql = format!(
            r#"
            UPDATE credit_accounts
            SET total = v.column2, last_seq = v.column3,
                lifetime_added = credit_accounts.lifetime_added + v.column4,
                lifetime_spent = credit_accounts.lifetime_spent + v.column5,
                held = credit_accounts.held + v.column6, low_alerted = v.column7,
                depleted_alerted = v.column8, version = credit_accounts.version + 1
            FROM (VALUES {}) AS v
            WHERE credit_accounts.workspace_id = v.column1
            "#,
            param_rows(chunk.len(), 8)
        );
        let mut values = Vec::with_capacity(chunk.len() * 8);
        for ((workspace, open), (low, depleted)) in chunk {
            values.extend([
                Value::from(workspace.as_str()),
                Value::from(open.total),
                Value::from(open.last_seq),
                Value::from(open.added),
                Value::from(open.spent),
                Value::from(open.held_delta),
                Value::from(i64::from(*low)),
                Value::from(i64::from(*depleted)),
            ]);
        }
        let what = "an account row went missing".to_owned();
        writes.add(sql, values, Some((chunk.len() as u64, what)));
    }
}

pub(super) fn parse_kind(text: String) -> Result<GrantKind, LedgerError> {
    GrantKind::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

pub(super) fn parse_workspace(text: String) -> Result<WorkspaceId, LedgerError> {
    WorkspaceId::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}
