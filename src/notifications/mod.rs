//! Notifications: the low and depleted balance alerts, credit requests from members, and
//! later purchase and Auto-reload events. Each is stored for the in-app list and queued in an
//! outbox, in the same transaction as its cause.

pub mod outbox;

use crate::clock::Millis;
use crate::db::{new_id, Store, StoreError};
use app::domain::{CreditUnit, Credits, WorkspaceId};
use sqlx::{AnyConnection, Row};

/// The kinds Tally sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    BalanceLow,
    BalanceDepleted,
    CreditRequest,
    PurchaseFailed,
    /// An Auto-reload top-up landed (sent as `credit_auto_recharge_triggered`).
    AutoReloaded,
    /// A budget's use reached its threshold share of the limit.
    BudgetThreshold,
    /// A budget's use reached its limit.
    BudgetExhausted,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::BalanceLow => "credit_balance_low",
            Kind::BalanceDepleted => "credit_balance_depleted",
            Kind::CreditRequest => "credit_request",
            Kind::PurchaseFailed => "credit_purchase_failed",
            Kind::AutoReloaded => "credit_auto_recharge_triggered",
            Kind::BudgetThreshold => "budget_threshold_reached",
            Kind::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// Who sees a notification in the app.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Everyone in the workspace but guests.
    Members,
    BillingManagers,
}

impl Audience {
    const fn as_str(self) -> &'static str {
        match self {
            Audience::Members => "members",
            Audience::BillingManagers => "billing_managers",
        }
    }
}

/// A notification as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub actor: Option<String>,
    pub created_at: Millis,
}

/// A notification waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub payload: String,
}

/// Notifications that people's own actions cause (a credit request, a checkout left unpaid)
/// kept per workspace per hour; past it they are dropped, so nobody can fill the outbox and
/// the endpoint by repeating an action. Balance, payment and Auto-reload events are never
/// dropped.
pub const PEOPLE_PER_HOUR: i64 = 20;

/// Stores a notification and queues it for delivery, inside the caller's transaction.
/// Returns its id, or `None` when it was caused by a person (an `actor` with an email) and the
/// workspace had [`PEOPLE_PER_HOUR`] of those in the last hour already.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all)]
pub(crate) async fn record(
    conn: &mut AnyConnection,
    workspace: &WorkspaceId,
    kind: Kind,
    audience: Audience,
    title: &str,
    body: &str,
    actor: Option<&str>,
    now: Millis,
) -> Result<Option<String>, StoreError> {
    if actor.is_some_and(|a| a.contains('@')) {
        let recent: i64 = sqlx::query(
            r#"
            SELECT COUNT(*) AS n
            FROM notifications
            WHERE workspace_id = $1 AND actor LIKE '%@%' AND created_at > $2
            "#,
        )
        .bind(workspace.as_str())
        .bind(now - 3_600_000)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
        if recent >= PEOPLE_PER_HOUR {
            tracing::info!(workspace = %workspace, kind = kind.as_str(), "a notification people caused was dropped: too many this hour");
            return Ok(None);
        }
    }
    let id = new_id("ntf");
    sqlx::query(
        r#"
        INSERT INTO notifications (id, workspace_id, kind, audience, title, body, actor, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        "#,
    )
    .bind(&id)
    .bind(workspace.as_str())
    .bind(kind.as_str())
    .bind(audience.as_str())
    .bind(title)
    .bind(body)
    .bind(actor)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let payload = serde_json::to_value(NotificationPayload {
        id: id.clone(),
        kind: kind.as_str(),
        workspace_id: workspace.as_str().to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
        actor: actor.map(str::to_owned),
        created_at: crate::clock::to_datetime(now).to_rfc3339(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        r#"
        INSERT INTO notification_outbox (id, notification_id, workspace_id, kind, payload, created_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        "#,
    )
    .bind(new_id("obx"))
    .bind(&id)
    .bind(workspace.as_str())
    .bind(kind.as_str())
    .bind(payload.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(id))
}

/// What the outbox posts to a workspace's endpoint for each notification (signed in
/// `Tally-Signature`; `Tally-Delivery` is the same on every retry of one notification).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationPayload {
    #[schema(example = "ntf_01j9z3k8q4")]
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(credit_balance_low|credit_balance_depleted|credit_request|credit_purchase_failed|credit_auto_recharge_triggered|budget_threshold_reached|budget_exhausted)$", example = "credit_balance_low")]
    pub kind: &'static str,
    pub workspace_id: String,
    /// A sentence to show, and the detail.
    pub title: String,
    pub body: String,
    /// Who caused it (a person's email), when someone did.
    pub actor: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The alerts a balance change calls for, given whether each was already sent during this dip.
/// Returns the alerts to send and the new (low, depleted) flags.
pub fn balance_alerts(
    available: i64,
    threshold: i64,
    low_alerted: bool,
    depleted_alerted: bool,
) -> (Vec<Kind>, bool, bool) {
    let mut send = Vec::new();
    let low = available <= threshold;
    if low && !low_alerted {
        send.push(Kind::BalanceLow);
    }
    let depleted = available == 0;
    if depleted && !depleted_alerted {
        send.push(Kind::BalanceDepleted);
    }
    (send, low, depleted)
}

/// The title and body of a balance alert.
///
/// Amounts are placeholders, written in the deployment's unit when the notification is shown
/// or sent ([`app::domain::CreditUnit::render`]).
pub fn alert_text(kind: Kind, available: i64, threshold: i64) -> (String, String) {
    let credits = |n: i64| Credits::new(n.max(0)).unwrap_or_default();
    let amount = |n: i64| CreditUnit::placeholder(credits(n), true);
    let figure = |n: i64| CreditUnit::placeholder(credits(n), false);
    match kind {
        Kind::BalanceDepleted => (
            "AI credits are used up".into(),
            "The workspace has no AI credits left, so AI actions will stop until credits are added.".into(),
        ),
        _ => (
            "AI credits are running low".into(),
            format!("{} left, at or below the low-balance line of {}.", amount(available), figure(threshold)),
        ),
    }
}

impl Store {
    /// The newest notifications a person sees: all of the workspace's when they manage billing,
    /// otherwise those for every member.
    #[tracing::instrument(skip_all)]
    pub async fn notifications(
        &self,
        workspace: &WorkspaceId,
        billing_manager: bool,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows = sqlx::query(
            r#"
            SELECT id, kind, title, body, actor, created_at
            FROM notifications
            WHERE workspace_id = $1 AND (audience = 'members' OR $2 = 1)
            ORDER BY created_at DESC, id DESC
            LIMIT $3
            "#,
        )
        .bind(workspace.as_str())
        .bind(i64::from(billing_manager))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NotificationRecord {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    title: row.try_get("title")?,
                    body: row.try_get("body")?,
                    actor: row.try_get("actor")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// A member asks the billing managers for credits. At most one request per person per
    /// hour reaches them; returns whether this one was sent.
    #[tracing::instrument(skip_all)]
    pub async fn request_credits(
        &self,
        workspace: &WorkspaceId,
        email: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        // Serialise requests of one workspace, like ledger movements.
        sqlx::query(
            r#"
            UPDATE credit_accounts
            SET last_seq = last_seq
            WHERE workspace_id = $1
            "#,
        )
        .bind(workspace.as_str())
        .execute(&mut *tx)
        .await?;
        let recent: i64 = sqlx::query(
            r#"
            SELECT COUNT(*) AS n
            FROM notifications
            WHERE workspace_id = $1 AND kind = 'credit_request' AND actor = $2
              AND created_at > $3
            "#,
        )
        .bind(workspace.as_str())
        .bind(email)
        .bind(now - 3_600_000)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if recent > 0 {
            return Ok(false);
        }
        let sent = record(
            &mut tx,
            workspace,
            Kind::CreditRequest,
            Audience::BillingManagers,
            "More AI credits requested",
            &format!(
                "{email} ran out of AI credits and asks you to buy credits or turn on Auto-reload."
            ),
            Some(email),
            now,
        )
        .await?
        .is_some();
        tx.commit().await?;
        Ok(sent)
    }

    /// Notifications not yet delivered, oldest first.
    #[tracing::instrument(skip_all)]
    pub async fn pending_outbox(&self, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query(
            r#"
            SELECT id, workspace_id, kind, payload
            FROM notification_outbox
            WHERE delivered_at IS NULL
            ORDER BY created_at, id
            LIMIT $1
            "#,
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxItem {
                    id: row.try_get("id")?,
                    workspace_id: row.try_get("workspace_id")?,
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect()
    }

    /// Marks an outbox item delivered.
    #[tracing::instrument(skip_all)]
    pub async fn mark_delivered(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            UPDATE notification_outbox
            SET delivered_at = $1, attempts = attempts + 1
            WHERE id = $2
            "#,
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dip_alerts_once_and_recovery_re_arms() {
        // Crossing the line alerts.
        let (send, low, depleted) = balance_alerts(400, 500, false, false);
        assert_eq!((send, low, depleted), (vec![Kind::BalanceLow], true, false));
        // Staying below does not alert again.
        let (send, low, _) = balance_alerts(300, 500, true, false);
        assert!(send.is_empty() && low);
        // Reaching zero alerts depletion, once.
        let (send, _, depleted) = balance_alerts(0, 500, true, false);
        assert_eq!((send, depleted), (vec![Kind::BalanceDepleted], true));
        assert!(balance_alerts(0, 500, true, true).0.is_empty());
        // Recovering above the line re-arms both.
        let (send, low, depleted) = balance_alerts(501, 500, true, true);
        assert!(send.is_empty() && !low && !depleted);
        assert_eq!(
            balance_alerts(499, 500, low, depleted).0,
            vec![Kind::BalanceLow]
        );
    }

    #[test]
    fn the_line_itself_counts_as_low() {
        assert_eq!(
            balance_alerts(500, 500, false, false).0,
            vec![Kind::BalanceLow]
        );
    }
}
