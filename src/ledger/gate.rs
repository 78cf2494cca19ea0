//! The credit gate's ledger side: charges and reservations that are safe to retry.
//!
//! Each call runs in one transaction that locks the workspace's account row first. The
//! idempotency key is looked up and stored inside that transaction, so the same key can never
//! charge twice, however many requests race with it, and a key reused with a different
//! request is refused. (On PostgreSQL a batch of charges first tries without a transaction:
//! it reads, then writes in one statement that locks the rows, checks that nothing moved
//! since the read, and stores the keys; see [`charge_batch_on`].) What the first request came to (charged, held, or refused with what
//! was missing) is stored with the key as a typed outcome and given back to every repeat; the
//! API decides what answer each outcome is.

use super::rules::{self, Draw, Millis, Shortfall};
use super::store::{
    expire_lapsed, lock_books, open_books, open_lots, peek_books, post, save_account,
    save_accounts, save_unlocked, take_from_lots, OpenBooks, IDS_PER_QUERY,
};
use super::{EntryMeta, LedgerError, Receipt, RefundRefusal};
use crate::db::{is_postgres, new_id, param_rows, Store, Value, Writes};
use crate::spend::{BudgetBook, LimitHit};
use app::domain::{Credits, EntryType, WorkspaceId};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Connection, Row};
use std::collections::{BTreeMap, HashMap};

/// A client's idempotency key for one endpoint, with the hash of its request.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    /// `usage` or `reservation`: keys of different endpoints never collide.
    pub scope: &'static str,
    pub key: String,
    pub request_hash: String,
}

/// Why the gate refused a charge or a hold (nothing was charged or held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The workspace's balance cannot cover it.
    Credits(Shortfall),
    /// A hard budget would pass its limit.
    Budget(LimitHit),
}

/// What a charge came to: the receipt, or why nothing was charged.
pub type ChargeOutcome = Result<Receipt, Refusal>;

/// What a reservation came to: the hold, or why nothing was held.
pub type HoldOutcome = Result<HoldReceipt, Refusal>;

/// The first outcome of an idempotency key, as stored with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Stored {
    Charged(Receipt),
    Held(HoldReceipt),
    Refused(Shortfall),
    OverBudget(LimitHit),
}

/// A row of a trace or hold table: how much one lot moved.
#[derive(sqlx::FromRow)]
struct DrawRow {
    lot_id: String,
    amount: i64,
}

impl DrawRow {
    fn negated(self) -> Draw {
        Draw {
            lot_id: self.lot_id,
            credits: -self.amount,
        }
    }
}

impl From<DrawRow> for Draw {
    fn from(row: DrawRow) -> Self {
        Draw {
            lot_id: row.lot_id,
            credits: row.amount,
        }
    }
}

impl Stored {
    fn refused(refusal: &Refusal) -> Stored {
        match refusal {
            Refusal::Credits(shortfall) => Stored::Refused(*shortfall),
            Refusal::Budget(hit) => Stored::OverBudget(hit.clone()),
        }
    }

    fn charge(outcome: &ChargeOutcome) -> Stored {
        match outcome {
            Ok(receipt) => Stored::Charged(receipt.clone()),
            Err(refusal) => Stored::refused(refusal),
        }
    }

    fn hold(outcome: &HoldOutcome) -> Stored {
        match outcome {
            Ok(receipt) => Stored::Held(receipt.clone()),
            Err(refusal) => Stored::refused(refusal),
        }
    }

    fn into_charge(self) -> Result<ChargeOutcome, LedgerError> {
        match self {
            Stored::Charged(receipt) => Ok(Ok(receipt)),
            Stored::Refused(shortfall) => Ok(Err(Refusal::Credits(shortfall))),
            Stored::OverBudget(hit) => Ok(Err(Refusal::Budget(hit))),
            Stored::Held(_) => Err(corrupt("a charge's key holds a reservation")),
        }
    }

    fn into_hold(self) -> Result<HoldOutcome, LedgerError> {
        match self {
            Stored::Held(receipt) => Ok(Ok(receipt)),
            Stored::Refused(shortfall) => Ok(Err(Refusal::Credits(shortfall))),
            Stored::OverBudget(hit) => Ok(Err(Refusal::Budget(hit))),
            Stored::Charged(_) => Err(corrupt("a reservation's key holds a charge")),
        }
    }

    fn to_json(&self) -> Result<String, LedgerError> {
        serde_json::to_string(self).map_err(|e| corrupt(&e.to_string()))
    }

    /// Reads a stored key: its outcome, or (for keys stored before outcomes were) the HTTP
    /// answer the API gave then, which says the same in JSON.
    fn read(
        scope: &str,
        outcome: Option<String>,
        status: i64,
        response: &str,
    ) -> Result<Stored, LedgerError> {
        if let Some(outcome) = outcome {
            return serde_json::from_str(&outcome).map_err(|e| corrupt(&e.to_string()));
        }
        let body: serde_json::Value =
            serde_json::from_str(response).map_err(|e| corrupt(&e.to_string()))?;
        let int = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        Ok(match (scope, status) {
            (_, 402) => Stored::Refused(Shortfall {
                available: int(&body["error"]["balance"]),
                held: int(&body["error"]["held"]),
                required: int(&body["error"]["required"]),
            }),
            ("reservation", _) => Stored::Held(HoldReceipt {
                reservation_id: text(&body["reservation_id"]),
                held: int(&body["held"]),
                expires_at: chrono::DateTime::parse_from_rfc3339(&text(&body["expires_at"]))
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(0),
                available: int(&body["balance"]),
            }),
            _ => Stored::Charged(Receipt {
                entry_id: text(&body["transaction_id"]),
                seq: 0,
                amount: -int(&body["charged"]),
                balance_after: 0,
                available: int(&body["balance"]),
            }),
        })
    }
}

/// What a spender was short of when pools kept part of the balance from it: `reach` credits
/// were theirs to spend.
fn reachable(lots: &[rules::Lot], reach: i64, required: i64, now: Millis) -> Shortfall {
    Shortfall {
        available: reach,
        held: lots.iter().filter(|l| l.is_live(now)).map(|l| l.held).sum(),
        required,
    }
}

fn corrupt(what: &str) -> LedgerError {
    LedgerError::Store(crate::db::StoreError::Corrupt(format!(
        "stored idempotent outcome: {what}"
    )))
}

/// A new hold.
#[derive(Clone, Debug)]
pub struct NewHold {
    pub credits: Credits,
    pub expires_at: Millis,
    pub meta: EntryMeta,
}

/// A hold that was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldReceipt {
    pub reservation_id: String,
    pub held: i64,
    pub expires_at: Millis,
    /// Credits spendable after the hold.
    pub available: i64,
}

/// How a reservation was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Settled at a cost (else released, or expired): a repeat of either call is answered as
    /// the first one was.
    #[serde(default)]
    pub settled: bool,
    pub charged: i64,
    pub released: i64,
    /// Credits spendable afterwards.
    pub available: i64,
    pub entry_id: Option<String>,
}

/// A refund of a one-shot charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub entry_id: String,
    pub refunded: i64,
    /// Credits spendable afterwards.
    pub available: i64,
}

/// The stored outcome of one key; a conflict when it was used with another request.
#[tracing::instrument(skip_all)]
async fn replay(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    key: &IdempotencyKey,
) -> Result<Option<Stored>, LedgerError> {
    let row = sqlx::query(
        r#"
        SELECT request_hash, outcome, status_code, response FROM idempotency_keys
        WHERE workspace_id = $1 AND scope = $2 AND idem_key = $3
        "#,
    )
    .bind(workspace.as_str())
    .bind(key.scope)
    .bind(&key.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("request_hash")?;
    if hash != key.request_hash {
        return Err(LedgerError::IdempotencyConflict);
    }
    Stored::read(
        key.scope,
        row.try_get("outcome")?,
        row.try_get("status_code")?,
        &row.try_get::<String, _>("response")?,
    )
    .map(Some)
}

/// Stores the first outcome of one key.
#[tracing::instrument(skip_all)]
async fn remember(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    key: &IdempotencyKey,
    stored: &Stored,
    now: Millis,
) -> Result<(), LedgerError> {
    remember_all(conn, &[(workspace, key, stored.clone())], now).await
}

/// A stored key: its workspace, scope and key.
type KeyId = (WorkspaceId, &'static str, String);

/// The stored outcomes of a batch's keys, across its workspaces: (request hash, outcome) by
/// key.
#[tracing::instrument(skip_all)]
async fn stored_outcomes(
    conn: &mut AnyConnection,
    items: &[BatchCharge<'_>],
) -> Result<HashMap<KeyId, (String, Stored)>, LedgerError> {
    let mut found = HashMap::new();
    for chunk in items.chunks(IDS_PER_QUERY) {
        let mut wanted: Vec<(&str, &str, &str)> = chunk
            .iter()
            .map(|i| (i.workspace.as_str(), i.key.scope, i.key.key.as_str()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Each key is looked up whole, as a row joined on the table's primary key. (Lists per
        // column — `idem_key IN (…)` beside the workspace and scope — let PostgreSQL plan an
        // index scan over all of a workspace's keys with the key list as a filter whenever its
        // statistics lag behind the table: a hot workspace's charges then slowed with every
        // key it had stored, to a quarter of their rate within a minute.)
        let rows = (0..wanted.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            r#"
            WITH wanted (workspace_id, scope, idem_key) AS (VALUES {rows})
            SELECT k.workspace_id, k.scope, k.idem_key, k.request_hash, k.outcome,
                   k.status_code, k.response
            FROM wanted
            JOIN idempotency_keys k
              ON k.workspace_id = wanted.workspace_id
             AND k.scope = wanted.scope
             AND k.idem_key = wanted.idem_key
            "#
        );
        let mut query = sqlx::query(&sql);
        for (workspace, scope, key) in &wanted {
            query = query.bind(*workspace).bind(*scope).bind(*key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let workspace: String = row.try_get("workspace_id")?;
            let scope: String = row.try_get("scope")?;
            let key: String = row.try_get("idem_key")?;
            let Some(item) = chunk.iter().find(|i| {
                i.workspace.as_str() == workspace && i.key.scope == scope && i.key.key == key
            }) else {
                continue;
            };
            let stored = Stored::read(
                item.key.scope,
                row.try_get("outcome")?,
                row.try_get("status_code")?,
                &row.try_get::<String, _>("response")?,
            )?;
            found.insert(
                (item.workspace.clone(), item.key.scope, key),
                (row.try_get::<String, _>("request_hash")?, stored),
            );
        }
    }
    Ok(found)
}

/// Stores the first outcomes of new keys, in multi-row inserts.
#[tracing::instrument(skip_all)]
async fn remember_all(
    conn: &mut AnyConnection,
    fresh: &[(&WorkspaceId, &IdempotencyKey, Stored)],
    now: Millis,
) -> Result<(), LedgerError> {
    let mut writes = Writes::default();
    remember_into(&mut writes, fresh, Unseen::Known, now)?;
    writes.run(conn).await?;
    Ok(())
}

/// Whether the keys given to [`remember_into`] are known to be new.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unseen {
    /// Looked up under the locks: an insert of a stored key would be a bug, and fails.
    Known,
    /// Not looked up: the insert skips a stored key and its count says so, to undo the
    /// writes ([`Writes::run_guarded`]).
    Checked,
}

/// Adds the first outcomes of new keys to a transaction's closing writes.
fn remember_into(
    writes: &mut Writes,
    fresh: &[(&WorkspaceId, &IdempotencyKey, Stored)],
    unseen: Unseen,
    now: Millis,
) -> Result<(), LedgerError> {
    for chunk in fresh.chunks(50) {
        // status_code and response are the columns of keys stored before outcomes were.
        let sql = format!(
            r#"
            INSERT INTO idempotency_keys (workspace_id, scope, idem_key, request_hash, outcome, status_code,
                response, created_at)
            VALUES {} {}
            "#,
            param_rows(chunk.len(), 8),
            if unseen == Unseen::Checked {
                "ON CONFLICT DO NOTHING"
            } else {
                ""
            }
        );
        let mut values = Vec::with_capacity(chunk.len() * 8);
        for (workspace, key, stored) in chunk {
            values.extend([
                Value::from(workspace.as_str()),
                Value::from(key.scope),
                Value::from(key.key.as_str()),
                Value::from(key.request_hash.as_str()),
                Value::Text(stored.to_json()?),
                Value::from(0_i64),
                Value::from(""),
                Value::from(now),
            ]);
        }
        let expect = (unseen == Unseen::Checked).then(|| {
            (
                chunk.len() as u64,
                "a key of the batch was used before".to_owned(),
            )
        });
        writes.add(sql, values, expect);
    }
    Ok(())
}

/// One charge of a batch (see [`crate::ledger::ChargeBatcher`]).
pub struct BatchCharge<'a> {
    pub workspace: &'a WorkspaceId,
    pub key: &'a IdempotencyKey,
    pub credits: Credits,
    pub meta: &'a EntryMeta,
}

impl Store {
    /// Applies several charges, of one workspace or many, in one transaction and in arrival
    /// order, each exactly once per idempotency key: one set of row locks, a fixed number of
    /// statements and one commit for the lot. Each charge gets its own outcome (charged,
    /// refused, the first outcome of a repeated key, an idempotency conflict, or an unknown
    /// workspace). A database error fails the whole batch, and nothing of it is kept.
    #[tracing::instrument(skip_all)]
    pub async fn charge_batch(
        &self,
        items: &[BatchCharge<'_>],
        now: Millis,
    ) -> Result<Vec<Result<ChargeOutcome, LedgerError>>, LedgerError> {
        let mut conn = self.pool().acquire().await?;
        charge_batch_on(&mut conn, items, now).await
    }
}

/// [`Store::charge_batch`] on a connection the caller holds: the gate's batcher keeps one
/// for as long as charges keep coming (see [`crate::ledger::ChargeBatcher`]).
///
/// On PostgreSQL a batch first goes without a transaction ([`charge_batch_unlocked`]): one
/// read and one write that commits itself, two round trips where the transaction takes six
/// (its `BEGIN`, the lock, the lots, the keys, the writes, its `COMMIT`), with the batch's
/// accounts locked for one statement instead of all six. Whenever that cannot be done, a key
/// was seen before, or an account moved meanwhile, the batch goes again in a transaction
/// under the accounts' row locks.
#[tracing::instrument(skip_all)]
pub(super) async fn charge_batch_on(
    conn: &mut AnyConnection,
    items: &[BatchCharge<'_>],
    now: Millis,
) -> Result<Answers, LedgerError> {
    if is_postgres(conn) {
        match charge_batch_unlocked(conn, items, now).await {
            Ok(Some(out)) => return Ok(out),
            Ok(None) => {}
            // Nothing of it was kept: the statement that writes is the one that failed.
            Err(err) => tracing::debug!(error = %err, "unlocked batch undone; locking"),
        }
    }
    charge_batch_locked(conn, items, now).await
}

/// The batch in one transaction that locks its accounts first, on either database.
#[tracing::instrument(skip_all)]
async fn charge_batch_locked(
    conn: &mut AnyConnection,
    items: &[BatchCharge<'_>],
    now: Millis,
) -> Result<Answers, LedgerError> {
    let mut tx = conn.begin().await?;
    let workspaces: Vec<&WorkspaceId> = items.iter().map(|i| i.workspace).collect();
    let mut books = lock_books(&mut tx, &workspaces, now).await?;
    for open in books.values_mut() {
        expire_lapsed(open, now)?;
    }
    // Budgets are read after the account rows are locked: nothing moves them meanwhile.
    // Workspaces the lock saw without budgets or pools have none to read.
    let locked: Vec<WorkspaceId> = books
        .iter()
        .filter(|(_, open)| open.spend_controls)
        .map(|(workspace, _)| workspace.clone())
        .collect();
    let locked: Vec<&WorkspaceId> = locked.iter().collect();
    let mut budgets = BudgetBook::open(&mut tx, &locked, now).await?;
    for (workspace, open) in &books {
        budgets.fit_pools(workspace, rules::spendable(&open.lots, now));
    }
    // Every key of the batch is looked up at once; keys first seen in this batch join
    // them, so a repeat inside the batch replays like a stored key.
    let known = stored_outcomes(&mut tx, items).await?;
    let (out, fresh) = plan_batch(items, &mut books, &mut budgets, known, now)?;
    // The new keys go with the books' own writes: on PostgreSQL one statement for all of
    // them (see `Writes`).
    let mut keys = Writes::default();
    remember_into(&mut keys, &fresh, Unseen::Known, now)?;
    let mut moved: Vec<(&WorkspaceId, &mut OpenBooks)> = books.iter_mut().collect();
    save_accounts(&mut tx, &mut moved, keys).await?;
    budgets.save(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// The batch without a transaction (PostgreSQL): its books read without locks in one
/// statement, the charges planned on them as if every key were new, and everything written by
/// one statement that checks, under the accounts' locks, that none of them moved since
/// ([`save_unlocked`]) and stores the keys. `None`, with nothing written, when the batch needs
/// the locked way: a workspace with budgets or pools, whose counters only the locks keep
/// still, or a save that records an alert or queues a reload.
#[tracing::instrument(skip_all)]
async fn charge_batch_unlocked(
    conn: &mut AnyConnection,
    items: &[BatchCharge<'_>],
    now: Millis,
) -> Result<Option<Answers>, LedgerError> {
    let workspaces: Vec<&WorkspaceId> = items.iter().map(|i| i.workspace).collect();
    let mut books = peek_books(conn, &workspaces, now).await?;
    if books.is_empty() || books.values().any(|open| open.spend_controls) {
        return Ok(None);
    }
    for open in books.values_mut() {
        expire_lapsed(open, now)?;
    }
    // Keys are not read: a batch's keys are almost always new, and a stored one makes the
    // write's insert of the same key fail, undoing it whole; the batch then goes again under
    // the locks, which read the keys and answer a repeat with its first outcome.
    let known = HashMap::new();
    let mut budgets = BudgetBook::none(now);
    let (out, fresh) = plan_batch(items, &mut books, &mut budgets, known, now)?;
    let mut keys = Writes::default();
    remember_into(&mut keys, &fresh, Unseen::Checked, now)?;
    let mut moved: Vec<(&WorkspaceId, &mut OpenBooks)> = books.iter_mut().collect();
    Ok(save_unlocked(conn, &mut moved, keys).await?.then_some(out))
}

/// A charge's first outcome, to store under its key.
type Fresh<'a> = (&'a WorkspaceId, &'a IdempotencyKey, Stored);

/// Each charge's answer, in the batch's order.
type Answers = Vec<Result<ChargeOutcome, LedgerError>>;

/// Plans a batch's charges in arrival order against its books and budgets: each charge's
/// outcome, and the keys seen for the first time with the outcomes to store under them.
fn plan_batch<'a>(
    items: &[BatchCharge<'a>],
    books: &mut BTreeMap<WorkspaceId, OpenBooks>,
    budgets: &mut BudgetBook,
    mut known: HashMap<KeyId, (String, Stored)>,
    now: Millis,
) -> Result<(Answers, Vec<Fresh<'a>>), LedgerError> {
    let mut fresh: Vec<Fresh<'a>> = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(open) = books.get_mut(item.workspace) else {
            out.push(Err(LedgerError::UnknownWorkspace));
            continue;
        };
        let id: KeyId = (item.workspace.clone(), item.key.scope, item.key.key.clone());
        if let Some((hash, stored)) = known.get(&id) {
            out.push(if *hash == item.key.request_hash {
                stored.clone().into_charge()
            } else {
                Err(LedgerError::IdempotencyConflict)
            });
            continue;
        }
        let spender = item.meta.spender();
        let meeting = budgets.meeting(item.workspace, &spender);
        let cost = item.credits.get();
        let spendable = rules::spendable(&open.lots, now);
        let outcome = if let Some(hit) = budgets.refusal(&meeting, cost) {
            Err(Refusal::Budget(hit))
        } else {
            match budgets.pool_plan(item.workspace, &spender, cost, spendable) {
                // Other scopes' pools keep their credits: only the rest is reachable.
                Err(reach) => Err(Refusal::Credits(reachable(&open.lots, reach, cost, now))),
                Ok((pool, pooled)) => match rules::plan_charge(&open.lots, now, item.credits) {
                    Ok(draws) => {
                        take_from_lots(open, &draws)?;
                        open.spent += cost;
                        let receipt =
                            post(open, EntryType::Consumption, -cost, &draws, item.meta, now);
                        // What it counted against its budgets rides on its own entry.
                        if let Some(entry) = open.entries.last_mut() {
                            entry.budget_counts = budgets.charge(&meeting, cost);
                        }
                        budgets.take_from_pool(pool, pooled, &receipt.entry_id);
                        Ok(receipt)
                    }
                    Err(shortfall) => Err(Refusal::Credits(shortfall)),
                },
            }
        };
        let stored = Stored::charge(&outcome);
        known.insert(id, (item.key.request_hash.clone(), stored.clone()));
        fresh.push((item.workspace, item.key, stored));
        out.push(Ok(outcome));
    }
    Ok((out, fresh))
}

impl Store {
    /// Charges at once, exactly once per idempotency key: a batch of one, retried on lock
    /// contention.
    #[tracing::instrument(skip_all)]
    pub async fn charge_once(
        &self,
        workspace: &WorkspaceId,
        key: &IdempotencyKey,
        credits: Credits,
        meta: &EntryMeta,
        now: Millis,
    ) -> Result<ChargeOutcome, LedgerError> {
        let item = [BatchCharge {
            workspace,
            key,
            credits,
            meta,
        }];
        self.retrying(|| async {
            let mut answers = self.charge_batch(&item, now).await?;
            answers
                .pop()
                .unwrap_or(Err(LedgerError::Invalid("a batch answers every charge")))
        })
        .await
    }

    /// Holds credits for an action in progress, exactly once per idempotency key.
    #[tracing::instrument(skip_all)]
    pub async fn reserve_once(
        &self,
        workspace: &WorkspaceId,
        key: &IdempotencyKey,
        hold: &NewHold,
        now: Millis,
    ) -> Result<HoldOutcome, LedgerError> {
        if hold.expires_at <= now {
            return Err(LedgerError::Invalid("a hold must expire in the future"));
        }
        self.retrying(|| async {
            let mut tx = self.pool().begin().await?;
            let mut books = open_books(&mut tx, workspace, now).await?;
            if let Some(stored) = replay(&mut tx, workspace, key).await? {
                return stored.into_hold();
            }
            expire_lapsed(&mut books, now)?;
            let mut budgets = BudgetBook::open(&mut tx, &[workspace], now).await?;
            let spendable = rules::spendable(&books.lots, now);
            budgets.fit_pools(workspace, spendable);
            let spender = hold.meta.spender();
            let meeting = budgets.meeting(workspace, &spender);
            let cost = hold.credits.get();
            let outcome = if let Some(hit) = budgets.refusal(&meeting, cost) {
                Err(Refusal::Budget(hit))
            } else {
                match budgets.pool_plan(workspace, &spender, cost, spendable) {
                    Err(reach) => Err(Refusal::Credits(reachable(&books.lots, reach, cost, now))),
                    Ok((pool, pooled)) => {
                        match rules::plan_charge(&books.lots, now, hold.credits) {
                            Ok(draws) => {
                                let receipt =
                                    place_hold(&mut tx, workspace, &mut books, &draws, hold, now)
                                        .await?;
                                budgets.hold(&meeting, cost, &receipt.reservation_id);
                                budgets.take_from_pool(pool, pooled, &receipt.reservation_id);
                                Ok(receipt)
                            }
                            Err(shortfall) => Err(Refusal::Credits(shortfall)),
                        }
                    }
                }
            };
            remember(&mut tx, workspace, key, &Stored::hold(&outcome), now).await?;
            save_account(&mut tx, workspace, &mut books).await?;
            budgets.save(&mut tx).await?;
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// Settles a reservation at its actual cost. A second settle or release returns the first
    /// resolution.
    #[tracing::instrument(skip_all)]
    pub async fn settle(
        &self,
        workspace: &WorkspaceId,
        reservation_id: &str,
        actual: Credits,
        now: Millis,
    ) -> Result<Resolution, LedgerError> {
        self.retrying(|| self.resolve(workspace, reservation_id, Some(actual), "settled", now))
            .await
    }

    /// Releases a reservation whose provider work failed: nothing is charged.
    #[tracing::instrument(skip_all)]
    pub async fn release(
        &self,
        workspace: &WorkspaceId,
        reservation_id: &str,
        now: Millis,
    ) -> Result<Resolution, LedgerError> {
        self.retrying(|| self.resolve(workspace, reservation_id, None, "released", now))
            .await
    }

    /// Refunds a one-shot charge whose AI operation failed: a `refund` entry gives the credits
    /// back to the lots that paid for them (credits of a lot that lapsed meanwhile expire again
    /// at once). A charge is refunded at most once; asking again returns the same refund.
    /// Only charges made at `not_before` or later are refunded, and never a settled
    /// reservation's charge (its cost was reported by the product's server and is final).
    #[tracing::instrument(skip_all)]
    pub async fn refund(
        &self,
        workspace: &WorkspaceId,
        entry_id: &str,
        actor: &str,
        now: Millis,
        not_before: Millis,
    ) -> Result<Refund, LedgerError> {
        self.retrying(|| async {
            let mut tx = self.pool().begin().await?;
            let mut books = open_books(&mut tx, workspace, now).await?;
            let charge = sqlx::query(
                r#"
                SELECT e.entry_type, e.amount, e.description, e.action, e.model, e.project,
                       e.session_ref, e.created_at, e.budget_counts,
                       CAST(CASE WHEN EXISTS (SELECT 1 FROM reservations r WHERE r.entry_id = e.id)
                            THEN 1 ELSE 0 END AS BIGINT) AS settled
                FROM ledger_entries e
                WHERE e.id = $1 AND e.workspace_id = $2
                "#,
            )
            .bind(entry_id)
            .bind(workspace.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(LedgerError::EntryNotFound)?;
            if charge.try_get::<String, _>("entry_type")? != EntryType::Consumption.as_str() {
                return Err(LedgerError::NotRefundable(RefundRefusal::NotACharge));
            }
            if charge.try_get::<i64, _>("settled")? == 1 {
                return Err(LedgerError::NotRefundable(
                    RefundRefusal::SettledReservation,
                ));
            }
            let earlier = sqlx::query("SELECT id, amount FROM ledger_entries WHERE refund_of = $1")
                .bind(entry_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(earlier) = earlier {
                return Ok(Refund {
                    entry_id: earlier.try_get("id")?,
                    refunded: earlier.try_get("amount")?,
                    available: rules::spendable(&books.lots, now),
                });
            }
            if charge.try_get::<Millis, _>("created_at")? < not_before {
                return Err(LedgerError::NotRefundable(RefundRefusal::TooOld));
            }
            let trace: Vec<Draw> = sqlx::query_as::<_, DrawRow>(
                r#"
                SELECT lot_id, amount
                FROM ledger_entry_lots
                WHERE entry_id = $1
                ORDER BY lot_id
                "#,
            )
            .bind(entry_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            // A charge's trace rows are negative: what each lot gave.
            .map(|row| row.negated())
            .collect();
            for back in &trace {
                let updated = sqlx::query(
                    r#"
                    UPDATE credit_lots
                    SET remaining = remaining + $1
                    WHERE id = $2 AND workspace_id = $3 AND remaining + $1 <= original
                    "#,
                )
                .bind(back.credits)
                .bind(&back.lot_id)
                .bind(workspace.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(crate::db::StoreError::Corrupt(format!(
                        "lot {} cannot take its refund",
                        back.lot_id
                    ))
                    .into());
                }
            }
            // The refunded lots, as they are now, for the expiry and balance below.
            books.lots = open_lots(&mut tx, workspace).await?;
            let refunded: i64 = -charge.try_get::<i64, _>("amount")?;
            books.spent -= refunded;
            let meta = EntryMeta {
                actor: actor.to_owned(),
                description: format!("Refund: {}", charge.try_get::<String, _>("description")?),
                action: charge.try_get("action")?,
                model: charge.try_get("model")?,
                project: charge.try_get("project")?,
                session: charge.try_get("session_ref")?,
                payment_ref: None,
                member_id: None,
                api_key_id: None,
            };
            let receipt = post(&mut books, EntryType::Refund, refunded, &trace, &meta, now);
            if let Some(entry) = books.entries.last_mut() {
                entry.refund_of = Some(entry_id.to_owned());
            }
            expire_lapsed(&mut books, now)?;
            let available = rules::spendable(&books.lots, now);
            // The budget periods the charge counted in get it back.
            let mut budgets = BudgetBook::open(&mut tx, &[workspace], now).await?;
            let counts: Option<String> = charge.try_get("budget_counts")?;
            budgets.refund(&mut tx, entry_id, counts.as_deref()).await?;
            budgets.give_back_to_pool(&mut tx, entry_id, 0).await?;
            budgets.fit_pools(workspace, available);
            save_account(&mut tx, workspace, &mut books).await?;
            budgets.save(&mut tx).await?;
            tx.commit().await?;
            Ok(Refund {
                entry_id: receipt.entry_id,
                refunded,
                available,
            })
        })
        .await
    }

    /// Releases every hold that expired by `now`; returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn expire_holds(&self, now: Millis, limit: u32) -> Result<usize, LedgerError> {
        let rows = sqlx::query(
            r#"
            SELECT id, workspace_id
            FROM reservations
            WHERE status = 'held' AND expires_at <= $1
            ORDER BY expires_at
            LIMIT $2
            "#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut released = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            let workspace: String = row.try_get("workspace_id")?;
            let workspace = WorkspaceId::parse(&workspace)
                .map_err(|e| crate::db::StoreError::Corrupt(e.to_string()))?;
            let done = self
                .retrying(|| self.resolve(&workspace, &id, None, "expired", now))
                .await;
            match done {
                Ok(_) => released += 1,
                // Settled or released meanwhile by its caller: nothing to do.
                Err(LedgerError::ReservationResolved | LedgerError::ReservationExpired) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(released)
    }

    /// Forgets idempotency keys older than `older_than`.
    #[tracing::instrument(skip_all)]
    pub async fn prune_idempotency_keys(&self, older_than: Millis) -> Result<u64, LedgerError> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(older_than)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    /// Settles (`actual` given), releases, or expires a held reservation.
    #[tracing::instrument(skip_all)]
    async fn resolve(
        &self,
        workspace: &WorkspaceId,
        reservation_id: &str,
        actual: Option<Credits>,
        status: &'static str,
        now: Millis,
    ) -> Result<Resolution, LedgerError> {
        let mut tx = self.pool().begin().await?;
        let mut books = open_books(&mut tx, workspace, now).await?;
        let row = sqlx::query(
            r#"
            SELECT status, held, actor, action, model, project, session_ref, entry_id, outcome,
                   answer_status, answer
            FROM reservations WHERE id = $1 AND workspace_id = $2
            "#,
        )
        .bind(reservation_id)
        .bind(workspace.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(LedgerError::ReservationNotFound)?;
        let current: String = row.try_get("status")?;
        match current.as_str() {
            "held" => {}
            "expired" => return Err(LedgerError::ReservationExpired),
            _ => return first_resolution(&row),
        }
        let held: i64 = row.try_get("held")?;
        let holds: Vec<Draw> = sqlx::query_as::<_, DrawRow>(
            r#"
            SELECT lot_id, amount
            FROM reservation_lots
            WHERE reservation_id = $1
            ORDER BY lot_id
            "#,
        )
        .bind(reservation_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(Draw::from)
        .collect();
        let plan = match actual {
            Some(actual) => rules::plan_settle(&books.lots, &holds, now, actual),
            None => rules::SettlePlan {
                released: holds.clone(),
                consumed: Vec::new(),
                extra: Vec::new(),
                charged: 0,
            },
        };
        // Release the hold and consume the settled part from the same lots in one statement.
        for hold in &plan.released {
            let consumed = plan
                .consumed
                .iter()
                .find(|d| d.lot_id == hold.lot_id)
                .map_or(0, |d| d.credits);
            let updated = sqlx::query(
                r#"
                UPDATE credit_lots
                SET held = held - $1, remaining = remaining - $2
                WHERE id = $3 AND workspace_id = $4 AND held >= $1
                "#,
            )
            .bind(hold.credits)
            .bind(consumed)
            .bind(&hold.lot_id)
            .bind(workspace.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(crate::db::StoreError::Corrupt(format!(
                    "lot {} lost its hold",
                    hold.lot_id
                ))
                .into());
            }
            if let Some(lot) = books.lots.iter_mut().find(|l| l.id == hold.lot_id) {
                lot.held -= hold.credits;
                lot.remaining -= consumed;
            }
        }
        books.held_delta -= held;
        take_from_lots(&mut books, &plan.extra)?;
        let mut entry_id = None;
        if plan.charged > 0 {
            let meta = EntryMeta {
                actor: row.try_get("actor")?,
                description: row
                    .try_get::<Option<String>, _>("action")?
                    .unwrap_or_default(),
                action: row.try_get("action")?,
                model: row.try_get("model")?,
                project: row.try_get("project")?,
                session: row.try_get("session_ref")?,
                payment_ref: None,
                member_id: None,
                api_key_id: None,
            };
            let draws = rules::merge_draws(
                plan.consumed
                    .iter()
                    .cloned()
                    .chain(plan.extra.iter().cloned()),
            );
            books.spent += plan.charged;
            let receipt = post(
                &mut books,
                EntryType::Consumption,
                -plan.charged,
                &draws,
                &meta,
                now,
            );
            entry_id = Some(receipt.entry_id);
        }
        // Held credits of lots that lapsed during the action expire now.
        expire_lapsed(&mut books, now)?;
        let resolution = Resolution {
            settled: actual.is_some(),
            charged: plan.charged,
            released: held - plan.consumed.iter().map(|d| d.credits).sum::<i64>(),
            available: rules::spendable(&books.lots, now),
            entry_id: entry_id.clone(),
        };
        let mut budgets = BudgetBook::open(&mut tx, &[workspace], now).await?;
        budgets
            .resolve_hold(&mut tx, reservation_id, actual.is_some(), plan.charged)
            .await?;
        budgets
            .give_back_to_pool(&mut tx, reservation_id, plan.charged)
            .await?;
        budgets.fit_pools(workspace, resolution.available);
        // The books first: the reservation row refers to the journal entry they write.
        save_account(&mut tx, workspace, &mut books).await?;
        budgets.save(&mut tx).await?;
        let outcome = serde_json::to_string(&resolution).map_err(|e| corrupt(&e.to_string()))?;
        sqlx::query(
            r#"
            UPDATE reservations
            SET status = $1, charged = $2, entry_id = $3, outcome = $4, resolved_at = $5
            WHERE id = $6
            "#,
        )
        .bind(status)
        .bind(plan.charged)
        .bind(entry_id.as_deref())
        .bind(outcome)
        .bind(now)
        .bind(reservation_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(resolution)
    }
}

/// The first resolution of a reservation that was settled or released already: its stored
/// outcome, or for reservations resolved before outcomes were, the answer the API gave then.
fn first_resolution(row: &sqlx::any::AnyRow) -> Result<Resolution, LedgerError> {
    if let Some(outcome) = row.try_get::<Option<String>, _>("outcome")? {
        return serde_json::from_str(&outcome).map_err(|e| corrupt(&e.to_string()));
    }
    let status: Option<i64> = row.try_get("answer_status")?;
    let answer: Option<String> = row.try_get("answer")?;
    match (status, answer) {
        (Some(code), Some(answer)) if code > 0 => {
            let body: serde_json::Value =
                serde_json::from_str(&answer).map_err(|e| corrupt(&e.to_string()))?;
            Ok(Resolution {
                settled: body.get("charged").is_some(),
                charged: body["charged"].as_i64().unwrap_or(0),
                released: body["released"].as_i64().unwrap_or(0),
                available: body["balance"].as_i64().unwrap_or(0),
                entry_id: row.try_get("entry_id")?,
            })
        }
        _ => Err(LedgerError::ReservationResolved),
    }
}

/// Marks the planned draws as held and records the reservation.
#[tracing::instrument(skip_all)]
async fn place_hold(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    books: &mut OpenBooks,
    draws: &[Draw],
    hold: &NewHold,
    now: Millis,
) -> Result<HoldReceipt, LedgerError> {
    let id = new_id("rsv");
    sqlx::query(
        r#"
        INSERT INTO reservations (id, workspace_id, status, held, actor, action, model, project,
            session_ref, expires_at, created_at)
        VALUES ($1, $2, 'held', $3, $4, $5, $6, $7, $8, $9, $10)
        "#,
    )
    .bind(&id)
    .bind(workspace.as_str())
    .bind(hold.credits.get())
    .bind(&hold.meta.actor)
    .bind(hold.meta.action.as_deref().unwrap_or(""))
    .bind(hold.meta.model.as_deref())
    .bind(hold.meta.project.as_deref())
    .bind(hold.meta.session.as_deref())
    .bind(hold.expires_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for draw in draws {
        let updated = sqlx::query(
            r#"
            UPDATE credit_lots
            SET held = held + $1
            WHERE id = $2 AND workspace_id = $3 AND remaining - held >= $1
            "#,
        )
        .bind(draw.credits)
        .bind(&draw.lot_id)
        .bind(workspace.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(crate::db::StoreError::Corrupt(format!(
                "lot {} could not cover its hold",
                draw.lot_id
            ))
            .into());
        }
        sqlx::query(
            r#"
            INSERT INTO reservation_lots (reservation_id, lot_id, amount)
            VALUES ($1, $2, $3)
            "#,
        )
        .bind(&id)
        .bind(&draw.lot_id)
        .bind(draw.credits)
        .execute(&mut *conn)
        .await?;
        if let Some(lot) = books.lots.iter_mut().find(|l| l.id == draw.lot_id) {
            lot.held += draw.credits;
        }
    }
    books.held_delta += hold.credits.get();
    Ok(HoldReceipt {
        reservation_id: id,
        held: hold.credits.get(),
        expires_at: hold.expires_at,
        available: rules::spendable(&books.lots, now),
    })
}
