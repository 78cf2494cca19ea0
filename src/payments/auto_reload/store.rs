//! Auto-reload's rows: the settings, the attempts (which double as the durable queue), and
//! the view the Billing page and the API share.

use super::queue::{queue_in, AttemptStatus};
use crate::clock::Millis;
use crate::db::{Reads, Store, StoreError};
use crate::notifications::{self, Audience, Kind};
use crate::payments::PurchaseRecord;
use app::billing::{AutoReloadAttempt, AutoReloadView};
use app::domain::{
    month_start, AutoReloadSettings, Credits, Currency, DeclineState, Money, ReloadAmount,
    ReloadMode, SkipReason, WorkspaceId, PAUSE_AFTER_DECLINES,
};
use sqlx::Row;

/// A reload stuck in `charging` this long (its instance died mid-charge) is charged again
/// with the same idempotency key, which cannot charge twice.
const STUCK_AFTER_MS: Millis = 2 * 60_000;

/// Settings as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadSettingsRecord {
    pub settings: AutoReloadSettings,
    pub payment_method_id: Option<String>,
    pub payment_method_label: Option<String>,
    pub consecutive_declines: i64,
    pub paused: bool,
}

impl ReloadSettingsRecord {
    /// The decline state, given when the newest decline was.
    pub fn declines(&self, last_decline_at: Option<Millis>) -> DeclineState {
        DeclineState {
            declines: u32::try_from(self.consecutive_declines).unwrap_or(u32::MAX),
            paused: self.paused,
            last_decline_at: last_decline_at.filter(|_| self.consecutive_declines > 0),
        }
    }
}

/// One reload attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadAttempt {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub status: AttemptStatus,
    pub reason: Option<String>,
    pub purchase_id: Option<String>,
    pub credits: Option<i64>,
    pub amount_minor: Option<i64>,
    pub updated_at: Millis,
}

/// An attempt's row as stored.
#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: String,
    workspace_id: String,
    status: String,
    reason: Option<String>,
    purchase_id: Option<String>,
    credits: Option<i64>,
    amount_minor: Option<i64>,
    updated_at: Millis,
}

impl TryFrom<AttemptRow> for ReloadAttempt {
    type Error = StoreError;

    fn try_from(row: AttemptRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("reload attempt {}: {what}", row.id));
        Ok(ReloadAttempt {
            workspace_id: WorkspaceId::parse(&row.workspace_id)
                .map_err(|e| corrupt(e.to_string()))?,
            status: AttemptStatus::parse(&row.status)
                .ok_or_else(|| corrupt(format!("status {}", row.status)))?,
            reason: row.reason,
            purchase_id: row.purchase_id,
            credits: row.credits,
            amount_minor: row.amount_minor,
            updated_at: row.updated_at,
            id: row.id,
        })
    }
}

impl Store {
    /// A workspace's Auto-reload settings, if ever saved.
    pub async fn auto_reload_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<ReloadSettingsRecord>, StoreError> {
        self.reads().await?.auto_reload_settings(workspace).await
    }

    /// Saves settings. The declines and the pause are kept (the reload job may be counting
    /// one right now, so they are never written from what was read) unless `new_card` says
    /// the card changed: a different card starts clean.
    #[tracing::instrument(skip_all)]
    pub async fn save_auto_reload_settings(
        &self,
        workspace: &WorkspaceId,
        settings: &AutoReloadSettings,
        card: Option<(&str, &str)>,
        new_card: bool,
        by: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            INSERT INTO auto_reload_settings (workspace_id, enabled, threshold, target,
                monthly_cap_minor, currency, payment_method_id, payment_method_label,
                consecutive_declines, paused, updated_by, updated_at, mode, fixed_credits,
                pack_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $10, $12, $13, $14)
            ON CONFLICT (workspace_id) DO UPDATE SET
                enabled = excluded.enabled, threshold = excluded.threshold,
                target = excluded.target, mode = excluded.mode,
                fixed_credits = excluded.fixed_credits, pack_id = excluded.pack_id,
                monthly_cap_minor = excluded.monthly_cap_minor,
                currency = excluded.currency, payment_method_id = excluded.payment_method_id,
                payment_method_label = excluded.payment_method_label,
                consecutive_declines = CASE WHEN $11 = 1 THEN 0
                    ELSE auto_reload_settings.consecutive_declines END,
                paused = CASE WHEN $11 = 1 THEN 0 ELSE auto_reload_settings.paused END,
                updated_by = excluded.updated_by, updated_at = excluded.updated_at
            "#,
        )
        .bind(workspace.as_str())
        .bind(i64::from(settings.enabled))
        .bind(settings.threshold.get())
        .bind(match &settings.amount {
            ReloadAmount::Target(target) => Some(target.get()),
            _ => None,
        })
        .bind(settings.monthly_cap.amount_minor())
        .bind(settings.monthly_cap.currency().as_str())
        .bind(card.map(|c| c.0))
        .bind(card.map(|c| c.1))
        .bind(by)
        .bind(now)
        .bind(i64::from(new_card))
        .bind(settings.amount.mode().as_str())
        .bind(match &settings.amount {
            ReloadAmount::Fixed(credits) => Some(credits.get()),
            _ => None,
        })
        .bind(match &settings.amount {
            ReloadAmount::Pack(id) => Some(id.as_str()),
            _ => None,
        })
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Lifts a pause for "Try again", unless a decline was counted since `declines` was read.
    #[tracing::instrument(skip_all)]
    pub(super) async fn lift_pause(
        &self,
        workspace: &WorkspaceId,
        declines: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            r#"
            UPDATE auto_reload_settings
            SET paused = 0, updated_at = $1
            WHERE workspace_id = $2 AND consecutive_declines = $3
            "#,
        )
        .bind(now)
        .bind(workspace.as_str())
        .bind(i64::from(declines))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// What Auto-reload spent since `since`: its purchases that were paid or may still be.
    pub async fn auto_reload_spent_since(
        &self,
        workspace: &WorkspaceId,
        since: Millis,
    ) -> Result<i64, StoreError> {
        self.reads()
            .await?
            .auto_reload_spent_since(workspace, since)
            .await
    }

    /// When the workspace's newest declined reload was declined.
    pub async fn last_declined_reload_at(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<Millis>, StoreError> {
        self.reads().await?.last_declined_reload_at(workspace).await
    }

    /// The newest reload attempt of a workspace.
    pub async fn last_reload_attempt(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<ReloadAttempt>, StoreError> {
        self.reads().await?.last_reload_attempt(workspace).await
    }

    /// Writes a reload attempt in `status` unless one is in flight; the id of the new one.
    #[tracing::instrument(skip_all)]
    pub async fn queue_reload(
        &self,
        workspace: &WorkspaceId,
        status: AttemptStatus,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        queue_in(&mut conn, workspace, status, now).await
    }

    /// Claims queued reloads (and ones stuck mid-charge) for this instance. Each is claimed
    /// by one instance only: the claim is a guarded update.
    #[tracing::instrument(skip_all)]
    pub async fn claim_reloads(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ReloadAttempt>, StoreError> {
        let candidates = sqlx::query_as::<_, AttemptRow>(
            r#"
            SELECT * FROM auto_reload_attempts
            WHERE status = 'queued' OR (status = 'charging' AND updated_at < $1)
            ORDER BY updated_at LIMIT $2
            "#,
        )
        .bind(now - STUCK_AFTER_MS)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let attempt = ReloadAttempt::try_from(row)?;
            let won = sqlx::query(
                r#"
                UPDATE auto_reload_attempts
                SET status = 'charging', updated_at = $1
                WHERE id = $2 AND status = $3 AND updated_at = $4
                "#,
            )
            .bind(now)
            .bind(&attempt.id)
            .bind(attempt.status.as_str())
            .bind(attempt.updated_at)
            .execute(self.pool())
            .await?
            .rows_affected();
            if won == 1 {
                claimed.push(attempt);
            }
        }
        Ok(claimed)
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn set_attempt(
        &self,
        id: &str,
        status: AttemptStatus,
        reason: Option<&str>,
        purchase: Option<&PurchaseRecord>,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(r#"
        UPDATE auto_reload_attempts
        SET status = $1, reason = $2, purchase_id = COALESCE($3, purchase_id), credits = COALESCE($4,
            credits), amount_minor = COALESCE($5, amount_minor), updated_at = $6
        WHERE id = $7
        "#)
            .bind(status.as_str())
            .bind(reason)
            .bind(purchase.map(|p| p.id.clone()))
            .bind(purchase.map(|p| p.credits))
            .bind(purchase.map(|p| p.amount_minor))
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends reloads that waited for a billing manager's confirmation: paid ones succeeded;
    /// ones left a day unconfirmed failed, so the next dip may try again.
    #[tracing::instrument(skip_all)]
    pub async fn settle_confirmed_reloads(&self, now: Millis) -> Result<(), StoreError> {
        let rows = sqlx::query(
            r#"
            SELECT a.id AS id, p.status AS purchase_status, a.updated_at AS updated_at
            FROM auto_reload_attempts a
            JOIN purchases p ON p.id = a.purchase_id
            WHERE a.status = 'requires_action'
            "#,
        )
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("purchase_status")?;
            let updated_at: Millis = row.try_get("updated_at")?;
            if status == "succeeded" {
                self.set_attempt(&id, AttemptStatus::Succeeded, None, None, now)
                    .await?;
            } else if now - updated_at > 86_400_000 {
                self.set_attempt(
                    &id,
                    AttemptStatus::Failed,
                    Some("Not confirmed within a day."),
                    None,
                    now,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Counts a decline; pauses Auto-reload at the third in a row (and at every one after a
    /// "Try again"). Returns whether it is paused now.
    #[tracing::instrument(skip_all)]
    pub(super) async fn count_decline(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            r#"
            UPDATE auto_reload_settings
            SET consecutive_declines = consecutive_declines + 1,
                paused = CASE WHEN consecutive_declines + 1 >= $1 THEN 1 ELSE paused END, updated_at = $2
            WHERE workspace_id = $3
            RETURNING paused, consecutive_declines
            "#,
        )
        .bind(i64::from(PAUSE_AFTER_DECLINES))
        .bind(now)
        .bind(workspace.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) => row.try_get::<i64, _>("paused")? == 1,
            None => false,
        })
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn clear_declines(&self, workspace: &WorkspaceId) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            UPDATE auto_reload_settings
            SET consecutive_declines = 0
            WHERE workspace_id = $1
            "#,
        )
        .bind(workspace.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records an Auto-reload notification outside a movement.
    #[tracing::instrument(skip_all)]
    pub(super) async fn notify(
        &self,
        workspace: &WorkspaceId,
        kind: Kind,
        title: &str,
        body: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        notifications::record(
            &mut tx,
            workspace,
            kind,
            Audience::BillingManagers,
            title,
            body,
            Some("Auto-reload"),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The reads a page makes on one connection.
impl Reads {
    /// A workspace's Auto-reload settings, if ever saved.
    #[tracing::instrument(skip_all)]
    pub async fn auto_reload_settings(
        &mut self,
        workspace: &WorkspaceId,
    ) -> Result<Option<ReloadSettingsRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM auto_reload_settings WHERE workspace_id = $1")
            .bind(workspace.as_str())
            .fetch_optional(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("auto-reload settings: {what}"));
        let currency = Currency::parse(&row.try_get::<String, _>("currency")?)
            .map_err(|_| corrupt("currency"))?;
        Ok(Some(ReloadSettingsRecord {
            settings: AutoReloadSettings {
                enabled: row.try_get::<i64, _>("enabled")? != 0,
                threshold: Credits::new(row.try_get("threshold")?)
                    .map_err(|_| corrupt("threshold"))?,
                amount: {
                    let mode: String = row.try_get("mode")?;
                    match ReloadMode::parse(&mode).map_err(|_| corrupt("mode"))? {
                        ReloadMode::Target => ReloadAmount::Target(
                            row.try_get::<Option<i64>, _>("target")?
                                .and_then(|t| Credits::new(t).ok())
                                .ok_or_else(|| corrupt("target"))?,
                        ),
                        ReloadMode::Fixed => ReloadAmount::Fixed(
                            row.try_get::<Option<i64>, _>("fixed_credits")?
                                .and_then(|c| Credits::new(c).ok())
                                .ok_or_else(|| corrupt("fixed credits"))?,
                        ),
                        ReloadMode::Pack => ReloadAmount::Pack(
                            row.try_get::<Option<String>, _>("pack_id")?
                                .ok_or_else(|| corrupt("pack"))?,
                        ),
                    }
                },
                monthly_cap: Money::new(row.try_get("monthly_cap_minor")?, currency)
                    .map_err(|_| corrupt("cap"))?,
            },
            payment_method_id: row.try_get("payment_method_id")?,
            payment_method_label: row.try_get("payment_method_label")?,
            consecutive_declines: row.try_get("consecutive_declines")?,
            paused: row.try_get::<i64, _>("paused")? != 0,
        }))
    }

    /// What Auto-reload spent since `since`: its purchases that were paid or may still be.
    #[tracing::instrument(skip_all)]
    pub async fn auto_reload_spent_since(
        &mut self,
        workspace: &WorkspaceId,
        since: Millis,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            r#"
            SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS spent
            FROM purchases
            WHERE workspace_id = $1 AND origin = 'auto_reload'
              AND created_at >= $2 AND status IN ('open', 'processing', 'succeeded')
            "#,
        )
        .bind(workspace.as_str())
        .bind(since)
        .fetch_one(self.conn())
        .await?
        .try_get("spent")?)
    }

    /// When the workspace's newest declined reload was declined.
    #[tracing::instrument(skip_all)]
    pub async fn last_declined_reload_at(
        &mut self,
        workspace: &WorkspaceId,
    ) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query(
            r#"
            SELECT MAX(updated_at) AS at
            FROM auto_reload_attempts
            WHERE workspace_id = $1 AND status = 'failed'
            "#,
        )
        .bind(workspace.as_str())
        .fetch_one(self.conn())
        .await?
        .try_get("at")?)
    }

    /// The newest reload attempt of a workspace.
    #[tracing::instrument(skip_all)]
    pub async fn last_reload_attempt(
        &mut self,
        workspace: &WorkspaceId,
    ) -> Result<Option<ReloadAttempt>, StoreError> {
        sqlx::query_as::<_, AttemptRow>(
            r#"
            SELECT * FROM auto_reload_attempts WHERE workspace_id = $1
            ORDER BY created_at DESC, id DESC LIMIT 1
            "#,
        )
        .bind(workspace.as_str())
        .fetch_optional(self.conn())
        .await?
        .map(ReloadAttempt::try_from)
        .transpose()
    }

    /// Auto-reload's settings and state for the Billing page and the API, with the card; the
    /// caller drops the card for people who cannot manage billing. `available` is the
    /// workspace's spendable balance now; `saved` whether it ever saved settings (read with
    /// the balance), so that a workspace that never did reads nothing more.
    #[tracing::instrument(skip_all)]
    pub async fn auto_reload_view(
        &mut self,
        workspace: &WorkspaceId,
        saved: bool,
        available: i64,
        now: Millis,
        unit: &app::domain::CreditUnit,
    ) -> Result<AutoReloadView, StoreError> {
        let record = if saved {
            self.auto_reload_settings(workspace).await?
        } else {
            None
        };
        // A workspace that never saved settings never reloaded: nothing more to read.
        let (spent, last) = match record {
            None => (0, None),
            Some(_) => (
                self.auto_reload_spent_since(workspace, month_start(now))
                    .await?,
                self.last_reload_attempt(workspace).await?,
            ),
        };
        let declines = match &record {
            Some(r) if r.consecutive_declines > 0 || r.paused => {
                r.declines(self.last_declined_reload_at(workspace).await?)
            }
            _ => DeclineState::default(),
        };
        let retry_at = declines.retry_at(now);
        let enabled = record.as_ref().is_some_and(|r| r.settings.enabled);
        let wait = retry_at
            .map(|at| {
                format!(
                    " The card can be tried again after {} UTC.",
                    crate::clock::to_datetime(at).format("%Y-%m-%d %H:%M")
                )
            })
            .unwrap_or_default();
        let status_line = match (&record, &last) {
            (None, _) => SkipReason::Disabled.explain().to_owned(),
            (Some(r), _) if !r.settings.enabled => SkipReason::Disabled.explain().to_owned(),
            (Some(r), _) if r.paused => format!("{}{wait}", SkipReason::Paused.explain()),
            (Some(_), Some(a)) if a.status == AttemptStatus::Failed => format!(
                "Payment failed on the last reload: {}{wait}",
                a.reason.clone().unwrap_or_default()
            ),
            (Some(_), Some(a)) if a.status == AttemptStatus::RequiresAction => {
                "The bank asked the cardholder to confirm the last reload: choose Confirm payment."
                    .to_owned()
            }
            (Some(_), Some(a)) if a.status == AttemptStatus::Skipped => format!(
                "The last reload did not run: {}",
                a.reason.clone().unwrap_or_default()
            ),
            (Some(r), _) if available >= r.settings.threshold.get() => format!(
                "On. {} The next reload fires when a spend leaves the balance below {}.",
                SkipReason::NotBelowThreshold.explain(),
                unit.amount(r.settings.threshold)
            ),
            (Some(r), _) => format!(
                "On. The balance is below {}; a reload follows the next spend.",
                unit.amount(r.settings.threshold)
            ),
        };
        let currency = record
            .as_ref()
            .map(|r| r.settings.monthly_cap.currency().clone())
            .unwrap_or_else(Currency::usd);
        let money = |minor: i64| Money::new(minor, currency.clone()).ok();
        Ok(AutoReloadView {
            enabled,
            threshold: record.as_ref().map(|r| r.settings.threshold),
            mode: record
                .as_ref()
                .map_or(ReloadMode::Target, |r| r.settings.amount.mode()),
            target_balance: record.as_ref().and_then(|r| match r.settings.amount {
                ReloadAmount::Target(target) => Some(target),
                _ => None,
            }),
            fixed_credits: record.as_ref().and_then(|r| match r.settings.amount {
                ReloadAmount::Fixed(credits) => Some(credits),
                _ => None,
            }),
            pack_id: record.as_ref().and_then(|r| match &r.settings.amount {
                ReloadAmount::Pack(id) => Some(id.clone()),
                _ => None,
            }),

            monthly_cap: record.as_ref().map(|r| r.settings.monthly_cap.clone()),
            spent_this_month: money(spent).unwrap_or_else(|| Money::zero(currency.clone())),
            last_attempt: last.map(|a| AutoReloadAttempt {
                at: crate::clock::to_datetime(a.updated_at),
                credits: a.credits.and_then(|c| Credits::new(c).ok()),
                amount: a.amount_minor.and_then(money),
                status: a.status.as_str().to_owned(),
                reason: a.reason,
            }),
            paused: declines.paused,
            retry_at: retry_at.map(crate::clock::to_datetime),
            can_try_again: enabled
                && (declines.declines > 0 || declines.paused)
                && retry_at.is_none(),
            card: record.as_ref().and_then(|r| r.payment_method_label.clone()),
            card_id: record.and_then(|r| r.payment_method_id),
            status_line,
        })
    }
}
