//! Packs, Stripe customers and purchases in the database, and the one transaction that
//! applies what Stripe says about a payment.

use super::gateway::PaymentSnapshot;
use super::PaymentsError;
use crate::clock::Millis;
use crate::db::{new_id, Reads, Store, StoreError};
use crate::ledger::{EntryMeta, LedgerError, NewGrant};
use crate::notifications::{self, Audience, Kind};
use app::domain::{
    next_step, Credits, EntryType, GrantKind, PaymentObservation, PurchaseOrigin, PurchaseStatus,
    PurchaseStep, WorkspaceId,
};
use sqlx::{AnyConnection, FromRow, Row};

/// A pack of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackRecord {
    pub id: String,
    pub name: String,
    pub credits: i64,
    pub price_minor: i64,
    pub currency: String,
    pub active: bool,
    pub bonus_credits: i64,
    pub bonus_starts_at: Option<Millis>,
    pub bonus_ends_at: Option<Millis>,
    pub sort_order: i64,
}

/// A purchase as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PurchaseRecord {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub origin: PurchaseOrigin,
    pub pack_id: Option<String>,
    pub description: String,
    pub credits: i64,
    pub bonus_credits: i64,
    pub amount_minor: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: PurchaseStatus,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub payment_method: Option<String>,
    pub receipt_url: Option<String>,
    pub failure_reason: Option<String>,
    pub credited_entry_id: Option<String>,
    pub reversed_credits: i64,
    pub created_by: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A purchase about to be opened.
#[derive(Clone, Debug)]
pub struct NewPurchase {
    pub workspace_id: WorkspaceId,
    pub origin: PurchaseOrigin,
    pub pack_id: Option<String>,
    pub description: String,
    pub credits: Credits,
    pub bonus_credits: Credits,
    pub amount_minor: i64,
    pub currency: String,
    pub created_by: String,
}

/// What applying a snapshot did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The Stripe event was applied before; nothing changed.
    Duplicate,
    /// The step taken, and the purchase afterwards.
    Step(PurchaseStep, Box<PurchaseRecord>),
}

const PURCHASE_COLUMNS: &str = "id, workspace_id, origin, pack_id, description, credits, bonus_credits, amount_minor, currency, status, \
    checkout_session_id, payment_intent_id, payment_method, receipt_url, failure_reason, credited_entry_id, reversed_credits, \
    created_by, created_at, updated_at";

/// A `credit_packs` row; `active` is stored as 0 or 1.
#[derive(sqlx::FromRow)]
struct PackRow {
    id: String,
    name: String,
    credits: i64,
    price_minor: i64,
    currency: String,
    active: i64,
    bonus_credits: i64,
    bonus_starts_at: Option<Millis>,
    bonus_ends_at: Option<Millis>,
    sort_order: i64,
}

impl From<PackRow> for PackRecord {
    fn from(row: PackRow) -> Self {
        PackRecord {
            id: row.id,
            name: row.name,
            credits: row.credits,
            price_minor: row.price_minor,
            currency: row.currency,
            active: row.active != 0,
            bonus_credits: row.bonus_credits,
            bonus_starts_at: row.bonus_starts_at,
            bonus_ends_at: row.bonus_ends_at,
            sort_order: row.sort_order,
        }
    }
}

impl Store {
    /// Adds or changes a pack of the catalog.
    #[tracing::instrument(skip_all)]
    pub async fn upsert_pack(&self, pack: &PackRecord, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            INSERT INTO credit_packs (id, name, credits, price_minor, currency, active, bonus_credits,
                bonus_starts_at, bonus_ends_at, sort_order, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (id)
            DO UPDATE SET name = excluded.name, credits = excluded.credits,
                price_minor = excluded.price_minor, currency = excluded.currency, active = excluded.active,
                bonus_credits = excluded.bonus_credits, bonus_starts_at = excluded.bonus_starts_at,
                bonus_ends_at = excluded.bonus_ends_at, sort_order = excluded.sort_order
            "#,
        )
        .bind(&pack.id)
        .bind(&pack.name)
        .bind(pack.credits)
        .bind(pack.price_minor)
        .bind(&pack.currency)
        .bind(i64::from(pack.active))
        .bind(pack.bonus_credits)
        .bind(pack.bonus_starts_at)
        .bind(pack.bonus_ends_at)
        .bind(pack.sort_order)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The packs on sale, in catalog order.
    pub async fn active_packs(&self) -> Result<Vec<PackRecord>, StoreError> {
        self.reads().await?.active_packs().await
    }

    /// One pack, on sale or not.
    #[tracing::instrument(skip_all)]
    pub async fn pack(&self, id: &str) -> Result<Option<PackRecord>, StoreError> {
        Ok(
            sqlx::query_as::<_, PackRow>("SELECT * FROM credit_packs WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .map(PackRecord::from),
        )
    }

    /// The workspace's Stripe customer, if created.
    #[tracing::instrument(skip_all)]
    pub async fn stripe_customer(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            r#"
            SELECT customer_id
            FROM stripe_customers
            WHERE workspace_id = $1
            "#,
        )
        .bind(workspace.as_str())
        .fetch_optional(self.pool())
        .await?
        .map(|row| row.try_get("customer_id"))
        .transpose()?)
    }

    /// Remembers the workspace's Stripe customer; the first one stored wins, and is returned.
    #[tracing::instrument(skip_all)]
    pub async fn save_stripe_customer(
        &self,
        workspace: &WorkspaceId,
        customer_id: &str,
        now: Millis,
    ) -> Result<String, StoreError> {
        sqlx::query(
            r#"
            INSERT INTO stripe_customers (workspace_id, customer_id, created_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (workspace_id)
            DO NOTHING
            "#,
        )
        .bind(workspace.as_str())
        .bind(customer_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.stripe_customer(workspace)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a stored customer vanished".into()))
    }

    /// Records a new purchase in the `open` state.
    #[tracing::instrument(skip_all)]
    pub async fn create_purchase(
        &self,
        purchase: &NewPurchase,
        now: Millis,
    ) -> Result<PurchaseRecord, StoreError> {
        let id = new_id("pur");
        sqlx::query(
            r#"
            INSERT INTO purchases (id, workspace_id, origin, pack_id, description, credits, bonus_credits,
                amount_minor, currency, status, created_by, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $11)
            "#,
        )
        .bind(&id)
        .bind(purchase.workspace_id.as_str())
        .bind(purchase.origin.as_str())
        .bind(purchase.pack_id.as_deref())
        .bind(&purchase.description)
        .bind(purchase.credits.get())
        .bind(purchase.bonus_credits.get())
        .bind(purchase.amount_minor)
        .bind(&purchase.currency)
        .bind(&purchase.created_by)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.purchase_by_id(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a new purchase vanished".into()))
    }

    /// Links a purchase to its checkout session.
    #[tracing::instrument(skip_all)]
    pub async fn set_checkout_session(
        &self,
        purchase_id: &str,
        session_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            UPDATE purchases
            SET checkout_session_id = $1, updated_at = $2
            WHERE id = $3
            "#,
        )
        .bind(session_id)
        .bind(now)
        .bind(purchase_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks a purchase whose checkout could not be opened as failed.
    #[tracing::instrument(skip_all)]
    pub async fn fail_unopened_purchase(
        &self,
        purchase_id: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            UPDATE purchases
            SET status = 'failed', failure_reason = $1, updated_at = $2
            WHERE id = $3 AND status = 'open'
            "#,
        )
        .bind(reason)
        .bind(now)
        .bind(purchase_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn purchase_by_id(&self, id: &str) -> Result<Option<PurchaseRecord>, StoreError> {
        self.purchase_where("id = $1", id).await
    }

    /// A purchase of one workspace; another workspace's is `None`.
    #[tracing::instrument(skip_all)]
    pub async fn purchase(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<PurchaseRecord>, StoreError> {
        Ok(self
            .purchase_by_id(id)
            .await?
            .filter(|p| &p.workspace_id == workspace))
    }

    #[tracing::instrument(skip_all)]
    pub async fn purchase_by_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PurchaseRecord>, StoreError> {
        self.purchase_where("checkout_session_id = $1", session_id)
            .await
    }

    /// The purchase a PaymentIntent paid or tried to pay: its first one, or any later one
    /// (such as the payment that confirmed an Auto-reload the bank wanted authenticated).
    #[tracing::instrument(skip_all)]
    pub async fn purchase_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<PurchaseRecord>, StoreError> {
        self.purchase_where(
            "id = (SELECT purchase_id FROM purchase_payments WHERE payment_intent_id = $1) \
             OR payment_intent_id = $1",
            payment_intent_id,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn purchase_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Option<PurchaseRecord>, StoreError> {
        sqlx::query_as::<_, PurchaseRecord>(&format!(
            "SELECT {PURCHASE_COLUMNS} FROM purchases WHERE {condition}"
        ))
        .bind(value)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::from)
    }

    /// Purchases still waiting for a payment that were last touched before `before`, for the
    /// reconciliation job.
    #[tracing::instrument(skip_all)]
    pub async fn unsettled_purchases(
        &self,
        before: Millis,
        limit: u32,
    ) -> Result<Vec<PurchaseRecord>, StoreError> {
        sqlx::query_as::<_, PurchaseRecord>(&format!(
            r#"
            SELECT {PURCHASE_COLUMNS}
            FROM purchases
            WHERE status IN ('open', 'processing') AND updated_at < $1
            ORDER BY updated_at
            LIMIT $2
            "#
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::from)
    }

    /// Marks a purchase as looked at now (for the reconciliation job's order).
    #[tracing::instrument(skip_all)]
    pub async fn touch_purchase(&self, purchase_id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE purchases SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(purchase_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a Stripe event that concerns no purchase; false if it was seen before.
    #[tracing::instrument(skip_all)]
    pub async fn record_ignored_event(
        &self,
        event_id: &str,
        event_type: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.record_event(event_id, event_type, "ignored", now)
            .await
    }

    /// Records a Stripe event that concerns no purchase with what came of it (`ignored`,
    /// `cards_read`); false if it was seen before.
    #[tracing::instrument(skip_all)]
    pub async fn record_event(
        &self,
        event_id: &str,
        event_type: &str,
        outcome: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            r#"
            INSERT INTO stripe_events (id, event_type, purchase_id, outcome, received_at)
            VALUES ($1, $2, NULL, $3, $4)
            ON CONFLICT (id)
            DO NOTHING
            "#,
        )
        .bind(event_id)
        .bind(event_type)
        .bind(outcome)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Was this Stripe event applied already?
    #[tracing::instrument(skip_all)]
    pub async fn event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 AS seen FROM stripe_events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }

    /// Applies what Stripe says about a purchase's payment, in one transaction: the purchase
    /// row is locked, the event (if any) is recorded, and the step of
    /// [`app::domain::next_step`] is taken: credits granted, a failure noted, or credits
    /// taken back. A Stripe event is applied once however often it arrives; a purchase is
    /// credited once however many events say it was paid.
    #[tracing::instrument(skip_all)]
    pub async fn apply_payment(
        &self,
        purchase_id: &str,
        event: Option<(&str, &str)>,
        snapshot: &PaymentSnapshot,
        now: Millis,
    ) -> Result<Applied, PaymentsError> {
        self.retrying::<_, LedgerError, _, _>(|| async {
            let mut tx = self.pool().begin().await?;
            let applied = apply_in(&mut tx, purchase_id, event, snapshot, now).await?;
            tx.commit().await?;
            Ok(applied)
        })
        .await
        .map_err(PaymentsError::from)
    }
}

#[tracing::instrument(skip_all)]
async fn apply_in(
    conn: &mut AnyConnection,
    purchase_id: &str,
    event: Option<(&str, &str)>,
    snapshot: &PaymentSnapshot,
    now: Millis,
) -> Result<Applied, LedgerError> {
    // The purchase row is locked first, so two deliveries of one payment take turns.
    let row = sqlx::query(&format!(
        r#"
        UPDATE purchases
        SET updated_at = updated_at
        WHERE id = $1
        RETURNING {PURCHASE_COLUMNS}
        "#
    ))
    .bind(purchase_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("purchase {purchase_id} vanished")))?;
    let purchase = PurchaseRecord::from_row(&row)?;
    let mut observation = snapshot.observation.clone();
    // A payment for another amount than the purchase's is never credited as this purchase.
    if observation == PaymentObservation::Paid
        && (snapshot.amount_minor != purchase.amount_minor
            || !snapshot.currency.eq_ignore_ascii_case(&purchase.currency))
    {
        tracing::error!(purchase = %purchase.id, paid = snapshot.amount_minor, expected = purchase.amount_minor,
            "a payment's amount does not match its purchase; not crediting");
        observation = PaymentObservation::Failed(
            "The amount paid does not match the purchase. Contact support.".into(),
        );
    }
    let step = next_step(purchase.status, &observation);
    if let Some((event_id, event_type)) = event {
        let inserted = sqlx::query(
            r#"
            INSERT INTO stripe_events (id, event_type, purchase_id, outcome, received_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (id)
            DO NOTHING
            "#,
        )
        .bind(event_id)
        .bind(event_type)
        .bind(&purchase.id)
        .bind(step_name(&step))
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(Applied::Duplicate);
        }
    }
    let workspace = purchase.workspace_id.clone();
    // Every payment seen for the purchase is kept, so a dispute of any of them finds it.
    if let Some(intent) = &snapshot.payment_intent_id {
        sqlx::query(
            r#"
            INSERT INTO purchase_payments (payment_intent_id, purchase_id, created_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (payment_intent_id)
            DO NOTHING
            "#,
        )
        .bind(intent)
        .bind(&purchase.id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    let pi = snapshot
        .payment_intent_id
        .as_deref()
        .or(purchase.payment_intent_id.as_deref());
    let method = snapshot
        .payment_method
        .as_deref()
        .or(purchase.payment_method.as_deref());
    let receipt = snapshot
        .receipt_url
        .as_deref()
        .or(purchase.receipt_url.as_deref());
    match &step {
        PurchaseStep::Nothing => {}
        PurchaseStep::Processing => {
            set_status(
                conn,
                &purchase.id,
                PurchaseStatus::Processing,
                None,
                pi,
                method,
                receipt,
                now,
            )
            .await?;
        }
        PurchaseStep::Grant => {
            let total = purchase.credits + purchase.bonus_credits;
            let credits = Credits::positive(total)
                .map_err(|_| LedgerError::Invalid("a purchase adds at least one credit"))?;
            let entry_type = if purchase.origin == PurchaseOrigin::AutoReload {
                EntryType::AutoReload
            } else {
                EntryType::Purchase
            };
            let grant = NewGrant {
                kind: GrantKind::Purchased,
                credits,
                expires_at: None,
                entry_type,
                source: "purchase".into(),
                source_ref: Some(purchase.id.clone()),
                note: None,
                meta: EntryMeta {
                    actor: purchase.created_by.clone(),
                    description: purchase.description.clone(),
                    payment_ref: pi.map(str::to_owned),
                    ..EntryMeta::default()
                },
            };
            let receipt_entry = crate::ledger::grant_in(conn, &workspace, &grant, now).await?;
            set_status(
                conn,
                &purchase.id,
                PurchaseStatus::Succeeded,
                None,
                pi,
                method,
                receipt,
                now,
            )
            .await?;
            sqlx::query("UPDATE purchases SET credited_entry_id = $1 WHERE id = $2")
                .bind(&receipt_entry.entry_id)
                .bind(&purchase.id)
                .execute(&mut *conn)
                .await?;
        }
        PurchaseStep::Fail(_) | PurchaseStep::Cancel => {
            let status = if matches!(step, PurchaseStep::Cancel) {
                PurchaseStatus::Canceled
            } else {
                PurchaseStatus::Failed
            };
            let reason = reason_text(&step);
            set_status(
                conn,
                &purchase.id,
                status,
                Some(&reason),
                pi,
                method,
                receipt,
                now,
            )
            .await?;
            let body = format!(
                "{} ({}) was not paid: {reason} No credits were added.",
                purchase.description,
                money_text(purchase.amount_minor, &purchase.currency),
            );
            notifications::record(
                conn,
                &workspace,
                Kind::PurchaseFailed,
                Audience::BillingManagers,
                "A credit purchase did not go through",
                &body,
                Some(&purchase.created_by),
                now,
            )
            .await?;
        }
        PurchaseStep::Reverse(reason) => {
            let meta = EntryMeta {
                actor: "system".into(),
                description: format!("{} reversed: {reason}", purchase.description),
                payment_ref: pi.map(str::to_owned),
                ..EntryMeta::default()
            };
            let total = purchase.credits + purchase.bonus_credits;
            let taken =
                crate::ledger::take_back_in(conn, &workspace, &purchase.id, total, &meta, now)
                    .await?;
            let taken_credits = taken.as_ref().map(|r| -r.amount).unwrap_or(0);
            sqlx::query(r#"
            UPDATE purchases
            SET status = 'reversed', failure_reason = $1, reversed_credits = $2, reversal_entry_id = $3,
                updated_at = $4
            WHERE id = $5
            "#)
                .bind(reason)
                .bind(taken_credits)
                .bind(taken.as_ref().map(|r| r.entry_id.clone()))
                .bind(now)
                .bind(&purchase.id)
                .execute(&mut *conn)
                .await?;
        }
    }
    let after = sqlx::query(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM purchases WHERE id = $1"
    ))
    .bind(&purchase.id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Applied::Step(
        step,
        Box::new(PurchaseRecord::from_row(&after)?),
    ))
}

fn reason_text(step: &PurchaseStep) -> String {
    match step {
        PurchaseStep::Fail(reason) => reason.clone(),
        PurchaseStep::Cancel => "The checkout was closed before payment.".into(),
        _ => String::new(),
    }
}

fn money_text(amount_minor: i64, currency: &str) -> String {
    app::domain::Currency::parse(currency)
        .ok()
        .and_then(|c| app::domain::Money::new(amount_minor, c).ok())
        .map(|m| m.to_string())
        .unwrap_or_else(|| format!("{amount_minor} {currency}"))
}

fn step_name(step: &PurchaseStep) -> &'static str {
    match step {
        PurchaseStep::Nothing => "nothing",
        PurchaseStep::Processing => "processing",
        PurchaseStep::Grant => "granted",
        PurchaseStep::Fail(_) => "failed",
        PurchaseStep::Cancel => "canceled",
        PurchaseStep::Reverse(_) => "reversed",
    }
}

#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all)]
async fn set_status(
    conn: &mut AnyConnection,
    purchase_id: &str,
    status: PurchaseStatus,
    failure_reason: Option<&str>,
    payment_intent_id: Option<&str>,
    payment_method: Option<&str>,
    receipt_url: Option<&str>,
    now: Millis,
) -> Result<(), LedgerError> {
    sqlx::query(
        r#"
        UPDATE purchases
        SET status = $1, failure_reason = $2, payment_intent_id = COALESCE(payment_intent_id, $3),
            payment_method = COALESCE($4, payment_method), receipt_url = COALESCE($5, receipt_url),
            updated_at = $6
        WHERE id = $7
        "#,
    )
    .bind(status.as_str())
    .bind(failure_reason)
    .bind(payment_intent_id)
    .bind(payment_method)
    .bind(receipt_url)
    .bind(now)
    .bind(purchase_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The reads a page makes on one connection.
impl Reads {
    /// The packs on sale, in catalog order.
    #[tracing::instrument(skip_all)]
    pub async fn active_packs(&mut self) -> Result<Vec<PackRecord>, StoreError> {
        let rows = sqlx::query_as::<_, PackRow>(
            r#"
            SELECT *
            FROM credit_packs
            WHERE active = 1
            ORDER BY sort_order, credits, id
            "#,
        )
        .fetch_all(self.conn())
        .await?;
        Ok(rows.into_iter().map(PackRecord::from).collect())
    }

    /// The workspace's newest purchases.
    #[tracing::instrument(skip_all)]
    pub async fn purchases(
        &mut self,
        workspace: &WorkspaceId,
        limit: u32,
    ) -> Result<Vec<PurchaseRecord>, StoreError> {
        sqlx::query_as::<_, PurchaseRecord>(&format!(
            r#"
            SELECT {PURCHASE_COLUMNS}
            FROM purchases
            WHERE workspace_id = $1
            ORDER BY created_at DESC, id DESC
            LIMIT $2
            "#
        ))
        .bind(workspace.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(StoreError::from)
    }
}
