//! Subscriptions and the credits their paid invoices grant.
//!
//! Stripe's subscription and invoice events are hints: each names an object that is re-read
//! from Stripe, and what Stripe says now is applied in one transaction that records the event
//! id, locks the subscription's row, and grants through the ledger. An invoice is keyed by its
//! id, and the seats already granted for its period are counted under that lock, so repeated,
//! late or reordered events never grant twice. The rules are in
//! [`app::domain::invoice_grant`].

use super::gateway::{InvoiceSnapshot, SubscriptionSnapshot};
use super::{Payments, PaymentsError};
use crate::clock::Millis;
use crate::db::{Reads, Store, StoreError};
use crate::ledger::{grant_in, EntryMeta, LedgerError, NewGrant};
use app::domain::{
    invoice_grant, BillingInterval, Credits, EntryType, GrantKind, NoGrant, PaidInvoice, PlanTerms,
    SubscriptionStatus, WorkspaceId,
};
use sqlx::{AnyConnection, Row};

/// A plan and the credits it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRecord {
    pub id: String,
    pub name: String,
    pub terms: PlanTerms,
}

/// A workspace's subscription as Stripe last reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub plan: PlanRecord,
    pub status: SubscriptionStatus,
    pub seats: u32,
    pub interval: BillingInterval,
    pub current_period_start: Millis,
    pub current_period_end: Millis,
    pub cancel_at_period_end: bool,
}

/// What applying an event or a re-read did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionApplied {
    /// The Stripe event was applied before; nothing changed.
    DuplicateEvent,
    /// The subscription's state was stored.
    Updated,
    /// The invoice granted credits.
    Granted { credits: Credits, entry_id: String },
    /// The invoice was considered before; nothing granted again.
    InvoiceSeen,
    /// The invoice grants nothing, for this reason.
    NoCredits(NoGrant),
    /// Nothing Tally acts on (unknown customer or plan, unpaid invoice, …).
    Ignored(String),
}

const SUBSCRIPTION_COLUMNS: &str =
    "s.id, s.workspace_id, s.plan_id, s.status, s.seats, s.billing_interval, \
     s.current_period_start, s.current_period_end, s.cancel_at_period_end, p.name AS plan_name, \
     p.credits_per_seat, p.rollover";

/// A `plans` row; `rollover` is stored as 0 or 1.
#[derive(sqlx::FromRow)]
struct PlanRow {
    id: String,
    name: String,
    credits_per_seat: i64,
    rollover: i64,
}

impl TryFrom<PlanRow> for PlanRecord {
    type Error = StoreError;

    fn try_from(row: PlanRow) -> Result<Self, StoreError> {
        Ok(PlanRecord {
            id: row.id,
            name: row.name,
            terms: PlanTerms {
                credits_per_seat: Credits::new(row.credits_per_seat)
                    .map_err(|e| StoreError::Corrupt(format!("plan credits: {e}")))?,
                rollover: row.rollover == 1,
            },
        })
    }
}

/// A `subscriptions` row joined with its plan (see [`SUBSCRIPTION_COLUMNS`]).
#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: String,
    #[sqlx(try_from = "String")]
    workspace_id: WorkspaceId,
    plan_id: String,
    plan_name: String,
    credits_per_seat: i64,
    rollover: i64,
    #[sqlx(try_from = "String")]
    status: SubscriptionStatus,
    seats: i64,
    #[sqlx(try_from = "String")]
    billing_interval: BillingInterval,
    current_period_start: Millis,
    current_period_end: Millis,
    cancel_at_period_end: i64,
}

impl TryFrom<SubscriptionRow> for SubscriptionRecord {
    type Error = StoreError;

    fn try_from(row: SubscriptionRow) -> Result<Self, StoreError> {
        let plan = PlanRow {
            id: row.plan_id,
            name: row.plan_name,
            credits_per_seat: row.credits_per_seat,
            rollover: row.rollover,
        };
        Ok(SubscriptionRecord {
            id: row.id,
            workspace_id: row.workspace_id,
            plan: plan.try_into()?,
            status: row.status,
            seats: u32::try_from(row.seats).unwrap_or(0),
            interval: row.billing_interval,
            current_period_start: row.current_period_start,
            current_period_end: row.current_period_end,
            cancel_at_period_end: row.cancel_at_period_end == 1,
        })
    }
}

impl Store {
    /// Adds a plan or changes one (operators, the demo).
    #[tracing::instrument(skip_all)]
    pub async fn upsert_plan(&self, plan: &PlanRecord, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            INSERT INTO plans (id, name, credits_per_seat, rollover, created_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (id)
            DO UPDATE SET name = excluded.name, credits_per_seat = excluded.credits_per_seat,
                rollover = excluded.rollover
            "#,
        )
        .bind(&plan.id)
        .bind(&plan.name)
        .bind(plan.terms.credits_per_seat.get())
        .bind(i64::from(plan.terms.rollover))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One plan.
    #[tracing::instrument(skip_all)]
    pub async fn plan(&self, id: &str) -> Result<Option<PlanRecord>, StoreError> {
        sqlx::query_as::<_, PlanRow>(
            r#"
            SELECT id, name, credits_per_seat, rollover
            FROM plans
            WHERE id = $1
            "#,
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(PlanRecord::try_from)
        .transpose()
    }

    /// Every plan, by name.
    #[tracing::instrument(skip_all)]
    pub async fn plans(&self) -> Result<Vec<PlanRecord>, StoreError> {
        sqlx::query_as::<_, PlanRow>(
            r#"
            SELECT id, name, credits_per_seat, rollover
            FROM plans
            ORDER BY name, id
            "#,
        )
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(PlanRecord::try_from)
        .collect()
    }

    /// The workspace a Stripe customer belongs to.
    #[tracing::instrument(skip_all)]
    pub async fn workspace_for_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let row = sqlx::query(
            r#"
            SELECT workspace_id
            FROM stripe_customers
            WHERE customer_id = $1
            "#,
        )
        .bind(customer_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            WorkspaceId::parse(&row.try_get::<String, _>("workspace_id")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    /// Stores a subscription's state (and records the event, once).
    #[tracing::instrument(skip_all)]
    pub async fn apply_subscription(
        &self,
        subscription: &SubscriptionRecord,
        event: Option<(&str, &str)>,
        now: Millis,
    ) -> Result<SubscriptionApplied, PaymentsError> {
        self.retrying::<_, LedgerError, _, _>(|| async {
            let mut tx = self.pool().begin().await?;
            if !record_event(&mut tx, event, now).await? {
                return Ok(SubscriptionApplied::DuplicateEvent);
            }
            save_subscription(&mut tx, subscription, now).await?;
            tx.commit().await?;
            Ok(SubscriptionApplied::Updated)
        })
        .await
        .map_err(PaymentsError::from)
    }

    /// Applies a paid invoice of `subscription`: stores the subscription's state and grants
    /// the invoice's credits once, in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn apply_invoice(
        &self,
        subscription: &SubscriptionRecord,
        invoice: &InvoiceSnapshot,
        event: Option<(&str, &str)>,
        now: Millis,
    ) -> Result<SubscriptionApplied, PaymentsError> {
        self.retrying::<_, LedgerError, _, _>(|| async {
            let mut tx = self.pool().begin().await?;
            if !record_event(&mut tx, event, now).await? {
                return Ok(SubscriptionApplied::DuplicateEvent);
            }
            // Saving the subscription's row locks it: invoices of one subscription take turns.
            save_subscription(&mut tx, subscription, now).await?;
            let applied = grant_for_invoice(&mut tx, subscription, invoice, now).await?;
            tx.commit().await?;
            Ok(applied)
        })
        .await
        .map_err(PaymentsError::from)
    }
}

/// Records a Stripe event id; `false` when it was recorded before (the caller stops).
#[tracing::instrument(skip_all)]
async fn record_event(
    conn: &mut AnyConnection,
    event: Option<(&str, &str)>,
    now: Millis,
) -> Result<bool, LedgerError> {
    let Some((id, event_type)) = event else {
        return Ok(true);
    };
    let inserted = sqlx::query(
        r#"
        INSERT INTO stripe_events (id, event_type, purchase_id, outcome, received_at)
        VALUES ($1, $2, NULL, 'subscription', $3)
        ON CONFLICT (id)
        DO NOTHING
        "#,
    )
    .bind(id)
    .bind(event_type)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[tracing::instrument(skip_all)]
async fn save_subscription(
    conn: &mut AnyConnection,
    s: &SubscriptionRecord,
    now: Millis,
) -> Result<(), LedgerError> {
    sqlx::query(
        r#"
        INSERT INTO subscriptions (id, workspace_id, plan_id, status, seats, billing_interval,
            current_period_start, current_period_end, cancel_at_period_end, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (id)
        DO UPDATE SET plan_id = excluded.plan_id, status = excluded.status, seats = excluded.seats,
            billing_interval = excluded.billing_interval,
            current_period_start = excluded.current_period_start,
            current_period_end = excluded.current_period_end,
            cancel_at_period_end = excluded.cancel_at_period_end, updated_at = excluded.updated_at
        "#,
    )
    .bind(&s.id)
    .bind(s.workspace_id.as_str())
    .bind(&s.plan.id)
    .bind(s.status.as_str())
    .bind(i64::from(s.seats))
    .bind(s.interval.as_str())
    .bind(s.current_period_start)
    .bind(s.current_period_end)
    .bind(i64::from(s.cancel_at_period_end))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
async fn grant_for_invoice(
    conn: &mut AnyConnection,
    subscription: &SubscriptionRecord,
    invoice: &InvoiceSnapshot,
    now: Millis,
) -> Result<SubscriptionApplied, LedgerError> {
    let seen = sqlx::query("SELECT 1 AS seen FROM subscription_invoices WHERE id = $1")
        .bind(&invoice.id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    if seen {
        return Ok(SubscriptionApplied::InvoiceSeen);
    }
    let already: i64 = sqlx::query(
        r#"
        SELECT CAST(COALESCE(SUM(seats), 0) AS BIGINT) AS seats
        FROM subscription_invoices
        WHERE subscription_id = $1 AND period_end = $2
        "#,
    )
    .bind(&subscription.id)
    .bind(invoice.period_end)
    .fetch_one(&mut *conn)
    .await?
    .try_get("seats")?;
    let paid = PaidInvoice {
        charged: invoice.charged,
        seats: invoice.seats,
        interval: subscription.interval,
        period_start: invoice.period_start,
        period_end: invoice.period_end,
    };
    let decided = invoice_grant(
        &subscription.plan.terms,
        &paid,
        u32::try_from(already).unwrap_or(u32::MAX),
        now,
    );
    let (seats, credits, outcome, entry_id, applied) = match decided {
        Ok(grant) => {
            let seats_text = if grant.seats == 1 {
                "1 seat".to_owned()
            } else {
                format!("{} seats", grant.seats)
            };
            let description = format!(
                "{} plan: {} credits for {seats_text} ({})",
                subscription.plan.name,
                grant.credits,
                subscription.interval.adjective()
            );
            let receipt = grant_in(
                conn,
                &subscription.workspace_id,
                &NewGrant {
                    kind: GrantKind::Subscription,
                    credits: grant.credits,
                    expires_at: grant.expires_at,
                    entry_type: EntryType::Grant,
                    source: "subscription".into(),
                    source_ref: Some(invoice.id.clone()),
                    note: Some(format!("Invoice {}", invoice.id)),
                    meta: EntryMeta {
                        actor: "Stripe".into(),
                        description,
                        payment_ref: Some(invoice.id.clone()),
                        ..EntryMeta::default()
                    },
                },
                now,
            )
            .await?;
            (
                grant.seats,
                grant.credits.get(),
                "granted",
                Some(receipt.entry_id.clone()),
                SubscriptionApplied::Granted {
                    credits: grant.credits,
                    entry_id: receipt.entry_id,
                },
            )
        }
        Err(reason) => (
            0,
            0,
            match reason {
                NoGrant::Trial => "trial",
                NoGrant::AlreadyGranted => "already_granted",
                NoGrant::PeriodOver => "period_over",
                NoGrant::NoCredits => "no_credits",
            },
            None,
            SubscriptionApplied::NoCredits(reason),
        ),
    };
    sqlx::query(
        r#"
        INSERT INTO subscription_invoices (id, subscription_id, workspace_id, period_start, period_end,
            seats, credits, outcome, entry_id, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        "#,
    )
    .bind(&invoice.id)
    .bind(&subscription.id)
    .bind(subscription.workspace_id.as_str())
    .bind(invoice.period_start)
    .bind(invoice.period_end)
    .bind(i64::from(seats))
    .bind(credits)
    .bind(outcome)
    .bind(entry_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(applied)
}

impl Payments {
    /// Re-reads a subscription from Stripe and stores its state.
    #[tracing::instrument(skip_all)]
    pub async fn sync_subscription(
        &self,
        id: &str,
        event: Option<(&str, &str)>,
    ) -> Result<SubscriptionApplied, PaymentsError> {
        let snapshot = self.gateway().subscription(id).await?;
        match self.subscription_record(&snapshot).await? {
            Ok(record) => {
                self.store()
                    .apply_subscription(&record, event, self.now())
                    .await
            }
            Err(why) => self.ignore(event, why).await,
        }
    }

    /// Re-reads an invoice (and its subscription) from Stripe and grants its credits once.
    #[tracing::instrument(skip_all)]
    pub async fn sync_invoice(
        &self,
        id: &str,
        event: Option<(&str, &str)>,
    ) -> Result<SubscriptionApplied, PaymentsError> {
        let invoice = self.gateway().invoice(id).await?;
        let Some(subscription_id) = invoice.subscription_id.clone() else {
            return self
                .ignore(event, "the invoice is not for a subscription".into())
                .await;
        };
        if invoice.status != "paid" {
            return self
                .ignore(event, format!("the invoice is {}", invoice.status))
                .await;
        }
        let snapshot = self.gateway().subscription(&subscription_id).await?;
        if snapshot.customer_id != invoice.customer_id {
            tracing::error!(invoice = %invoice.id, "an invoice names another customer than its subscription; ignored");
            return self.ignore(event, "customer mismatch".into()).await;
        }
        match self.subscription_record(&snapshot).await? {
            Ok(record) => {
                self.store()
                    .apply_invoice(&record, &invoice, event, self.now())
                    .await
            }
            Err(why) => self.ignore(event, why).await,
        }
    }

    #[tracing::instrument(skip_all)]
    async fn ignore(
        &self,
        event: Option<(&str, &str)>,
        why: String,
    ) -> Result<SubscriptionApplied, PaymentsError> {
        tracing::info!(reason = %why, "a subscription event changes nothing in Tally");
        if let Some((id, event_type)) = event {
            if !self
                .store()
                .record_ignored_event(id, event_type, self.now())
                .await?
            {
                return Ok(SubscriptionApplied::DuplicateEvent);
            }
        }
        Ok(SubscriptionApplied::Ignored(why))
    }

    /// Reads Stripe's subscription into Tally's terms, or says why it is none of Tally's.
    #[tracing::instrument(skip_all)]
    async fn subscription_record(
        &self,
        s: &SubscriptionSnapshot,
    ) -> Result<Result<SubscriptionRecord, String>, PaymentsError> {
        let Some(workspace_id) = self.store().workspace_for_customer(&s.customer_id).await? else {
            return Ok(Err(format!("no workspace has customer {}", s.customer_id)));
        };
        let Some(plan_id) = s.plan_id.as_deref() else {
            return Ok(Err("the subscription's price names no plan".into()));
        };
        let Some(plan) = self.store().plan(plan_id).await? else {
            return Ok(Err(format!("no plan {plan_id}")));
        };
        let Some(status) = SubscriptionStatus::from_stripe(&s.status) else {
            return Ok(Err(format!("unknown status {}", s.status)));
        };
        let Ok(interval) = BillingInterval::parse(&s.interval) else {
            return Ok(Err(format!("unsupported interval {}", s.interval)));
        };
        Ok(Ok(SubscriptionRecord {
            id: s.id.clone(),
            workspace_id,
            plan,
            status,
            seats: s.seats,
            interval,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
        }))
    }
}

/// The reads a page makes on one connection.
impl Reads {
    /// The workspace's subscription: the one not canceled, else the latest.
    #[tracing::instrument(skip_all)]
    pub async fn subscription_of(
        &mut self,
        workspace: &WorkspaceId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        sqlx::query_as::<_, SubscriptionRow>(&format!(
            r#"
            SELECT {SUBSCRIPTION_COLUMNS}
            FROM subscriptions s
            JOIN plans p ON p.id = s.plan_id
            WHERE s.workspace_id = $1
            ORDER BY CASE WHEN s.status = 'canceled' THEN 1 ELSE 0 END, s.updated_at DESC, s.id
            LIMIT 1
            "#
        ))
        .bind(workspace.as_str())
        .fetch_optional(self.conn())
        .await?
        .map(SubscriptionRecord::try_from)
        .transpose()
    }
}
