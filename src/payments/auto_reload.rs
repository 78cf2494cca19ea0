//! Auto-reload: settings, the durable queue of reloads, and the job that charges them.
//!
//! A spend that leaves the balance below the threshold queues a reload in its own
//! transaction (see the ledger's `save_account`); a unique index allows one reload in flight
//! per workspace. The job claims queued reloads, decides with [`app::domain::decide`],
//! charges the saved card off-session with an idempotency key made from the reload's id (so a
//! retry after a crash charges at most once), and applies the answer like any payment.

use super::{
    Applied, CardOnFile, NewPurchase, OffSessionCharge, Payments, PaymentsError, PurchaseRecord,
};
use crate::ledger::rules::Millis;
use crate::notifications::{self, Audience, Kind};
use crate::store::{new_id, Store, StoreError};
use app::billing::{AutoReloadAttempt, AutoReloadView};
use app::domain::{
    decide, month_start, AutoReloadSettings, Credits, Currency, CustomAmountTerms, DeclineState,
    Money, PaymentObservation, PurchaseOrigin, PurchaseStatus, ReloadDecision, ReloadState,
    SkipReason, TryAgainError, WorkspaceId, PAUSE_AFTER_DECLINES,
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
    pub status: String,
    pub reason: Option<String>,
    pub purchase_id: Option<String>,
    pub credits: Option<i64>,
    pub amount_minor: Option<i64>,
    pub updated_at: Millis,
}

fn attempt_from_row(row: &sqlx::any::AnyRow) -> Result<ReloadAttempt, StoreError> {
    Ok(ReloadAttempt {
        id: row.try_get("id")?,
        workspace_id: WorkspaceId::parse(&row.try_get::<String, _>("workspace_id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        purchase_id: row.try_get("purchase_id")?,
        credits: row.try_get("credits")?,
        amount_minor: row.try_get("amount_minor")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// A workspace's Auto-reload settings, if ever saved.
    pub async fn auto_reload_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<ReloadSettingsRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM auto_reload_settings WHERE workspace_id = $1")
            .bind(workspace.as_str())
            .fetch_optional(self.pool())
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
                target: Credits::new(row.try_get("target")?).map_err(|_| corrupt("target"))?,
                monthly_cap: Money::new(row.try_get("monthly_cap_minor")?, currency)
                    .map_err(|_| corrupt("cap"))?,
            },
            payment_method_id: row.try_get("payment_method_id")?,
            payment_method_label: row.try_get("payment_method_label")?,
            consecutive_declines: row.try_get("consecutive_declines")?,
            paused: row.try_get::<i64, _>("paused")? != 0,
        }))
    }

    /// Saves settings. The declines and the pause are kept (the reload job may be counting
    /// one right now, so they are never written from what was read) unless `new_card` says
    /// the card changed: a different card starts clean.
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
                consecutive_declines, paused, updated_by, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $10)
            ON CONFLICT (workspace_id) DO UPDATE SET
                enabled = excluded.enabled, threshold = excluded.threshold,
                target = excluded.target, monthly_cap_minor = excluded.monthly_cap_minor,
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
        .bind(settings.target.get())
        .bind(settings.monthly_cap.amount_minor())
        .bind(settings.monthly_cap.currency().as_str())
        .bind(card.map(|c| c.0))
        .bind(card.map(|c| c.1))
        .bind(by)
        .bind(now)
        .bind(i64::from(new_card))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Lifts a pause for "Try again", unless a decline was counted since `declines` was read.
    async fn lift_pause(
        &self,
        workspace: &WorkspaceId,
        declines: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE auto_reload_settings SET paused = 0, updated_at = $1 WHERE workspace_id = $2 AND consecutive_declines = $3",
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
        Ok(sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS spent FROM purchases \
             WHERE workspace_id = $1 AND origin = 'auto_reload' AND created_at >= $2 AND status IN ('open', 'processing', 'succeeded')",
        )
        .bind(workspace.as_str())
        .bind(since)
        .fetch_one(self.pool())
        .await?
        .try_get("spent")?)
    }

    /// When the workspace's newest declined reload was declined.
    pub async fn last_declined_reload_at(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<Millis>, StoreError> {
        Ok(sqlx::query("SELECT MAX(updated_at) AS at FROM auto_reload_attempts WHERE workspace_id = $1 AND status = 'failed'")
            .bind(workspace.as_str())
            .fetch_one(self.pool())
            .await?
            .try_get("at")?)
    }

    /// The newest reload attempt of a workspace.
    pub async fn last_reload_attempt(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<ReloadAttempt>, StoreError> {
        sqlx::query("SELECT * FROM auto_reload_attempts WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1")
            .bind(workspace.as_str())
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(attempt_from_row)
            .transpose()
    }

    /// Queues a reload unless one is in flight; the id of the queued one, if new.
    pub async fn queue_reload(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        let id = new_id("arl");
        let inserted = sqlx::query("INSERT INTO auto_reload_attempts (id, workspace_id, status, created_at, updated_at) VALUES ($1, $2, 'queued', $3, $3) ON CONFLICT DO NOTHING")
            .bind(&id)
            .bind(workspace.as_str())
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok((inserted == 1).then_some(id))
    }

    /// Claims queued reloads (and ones stuck mid-charge) for this instance. Each is claimed
    /// by one instance only: the claim is a guarded update.
    pub async fn claim_reloads(
        &self,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<ReloadAttempt>, StoreError> {
        let candidates = sqlx::query(
            "SELECT * FROM auto_reload_attempts WHERE status = 'queued' OR (status = 'charging' AND updated_at < $1) ORDER BY updated_at LIMIT $2",
        )
        .bind(now - STUCK_AFTER_MS)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in &candidates {
            let attempt = attempt_from_row(row)?;
            let won = sqlx::query("UPDATE auto_reload_attempts SET status = 'charging', updated_at = $1 WHERE id = $2 AND status = $3 AND updated_at = $4")
                .bind(now)
                .bind(&attempt.id)
                .bind(&attempt.status)
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

    async fn set_attempt(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
        purchase: Option<&PurchaseRecord>,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE auto_reload_attempts SET status = $1, reason = $2, purchase_id = COALESCE($3, purchase_id), credits = COALESCE($4, credits), amount_minor = COALESCE($5, amount_minor), updated_at = $6 WHERE id = $7")
            .bind(status)
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
    pub async fn settle_confirmed_reloads(&self, now: Millis) -> Result<(), StoreError> {
        let rows = sqlx::query(
            "SELECT a.id AS id, p.status AS purchase_status, a.updated_at AS updated_at FROM auto_reload_attempts a \
             JOIN purchases p ON p.id = a.purchase_id WHERE a.status = 'requires_action'",
        )
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("purchase_status")?;
            let updated_at: Millis = row.try_get("updated_at")?;
            if status == "succeeded" {
                self.set_attempt(&id, "succeeded", None, None, now).await?;
            } else if now - updated_at > 86_400_000 {
                self.set_attempt(
                    &id,
                    "failed",
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
    async fn count_decline(
        &self,
        workspace: &WorkspaceId,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "UPDATE auto_reload_settings SET consecutive_declines = consecutive_declines + 1, \
             paused = CASE WHEN consecutive_declines + 1 >= $1 THEN 1 ELSE paused END, updated_at = $2 \
             WHERE workspace_id = $3 RETURNING paused, consecutive_declines",
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

    async fn clear_declines(&self, workspace: &WorkspaceId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE auto_reload_settings SET consecutive_declines = 0 WHERE workspace_id = $1",
        )
        .bind(workspace.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records an Auto-reload notification outside a movement.
    async fn notify(
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

impl Store {
    /// Auto-reload's settings and state for the Billing page and the API, with the card; the
    /// caller drops the card for people who cannot manage billing. `available` is the
    /// workspace's spendable balance now.
    pub async fn auto_reload_view(
        &self,
        workspace: &WorkspaceId,
        available: i64,
        now: Millis,
    ) -> Result<AutoReloadView, StoreError> {
        let record = self.auto_reload_settings(workspace).await?;
        let spent = self
            .auto_reload_spent_since(workspace, month_start(now))
            .await?;
        let last = self.last_reload_attempt(workspace).await?;
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
            (Some(_), Some(a)) if a.status == "failed" => format!(
                "Payment failed on the last reload: {}{wait}",
                a.reason.clone().unwrap_or_default()
            ),
            (Some(_), Some(a)) if a.status == "requires_action" => {
                "The bank asked the cardholder to confirm the last reload: choose Confirm payment."
                    .to_owned()
            }
            (Some(_), Some(a)) if a.status == "skipped" => format!(
                "The last reload did not run: {}",
                a.reason.clone().unwrap_or_default()
            ),
            (Some(r), _) if available >= r.settings.threshold.get() => format!(
                "On. {} The next reload fires when a spend leaves the balance below {} credits.",
                SkipReason::NotBelowThreshold.explain(),
                r.settings.threshold
            ),
            (Some(r), _) => format!(
                "On. The balance is below {} credits; a reload follows the next spend.",
                r.settings.threshold
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
            target_balance: record.as_ref().map(|r| r.settings.target),
            monthly_cap: record.as_ref().map(|r| r.settings.monthly_cap.clone()),
            spent_this_month: money(spent).unwrap_or_else(|| Money::zero(currency.clone())),
            last_attempt: last.map(|a| AutoReloadAttempt {
                at: crate::clock::to_datetime(a.updated_at),
                credits: a.credits.and_then(|c| Credits::new(c).ok()),
                amount: a.amount_minor.and_then(money),
                status: a.status,
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

/// How a reload ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    Credited(Box<PurchaseRecord>),
    Declined(String),
    NeedsAuthentication(String),
    Skipped(SkipReason),
}

impl Payments {
    /// Works through the queue: every claimed reload is decided, charged and applied.
    pub async fn process_reloads(&self) -> Result<usize, PaymentsError> {
        self.store().settle_confirmed_reloads(self.now()).await?;
        let claimed = self.store().claim_reloads(self.now(), 20).await?;
        let count = claimed.len();
        for attempt in claimed {
            if let Err(err) = self.run_reload(&attempt).await {
                tracing::warn!(error = %err, attempt = %attempt.id, "an Auto-reload attempt failed; it will be retried");
            }
        }
        Ok(count)
    }

    /// Saves Auto-reload settings. Turning it on while the balance is already below the
    /// threshold charges the first top-up first, and saves nothing if that charge fails.
    pub async fn save_auto_reload(
        &self,
        workspace: &WorkspaceId,
        by: &str,
        settings: &AutoReloadSettings,
        chosen_card: Option<&str>,
    ) -> Result<Option<ReloadOutcome>, PaymentsError> {
        settings
            .validate(&CustomAmountTerms::standard())
            .map_err(|e| {
                PaymentsError::Invalid(format!("{}.", app::format::capitalised(&e.to_string())))
            })?;
        let store = self.store();
        let cards = match store.stripe_customer(workspace).await? {
            Some(customer) => self.gateway().cards(&customer).await?,
            None => Vec::new(),
        };
        let previous = store.auto_reload_settings(workspace).await?;
        let saved = previous.as_ref().and_then(|r| r.payment_method_id.clone());
        let card = pick_card(cards, chosen_card, saved.as_deref())?;
        let card = card.map(|c| {
            let label = app::purchases::SavedCard {
                id: c.id.clone(),
                brand: c.brand.clone(),
                last4: c.last4.clone(),
                exp_month: c.exp_month,
                exp_year: c.exp_year,
                is_default: c.is_default,
            }
            .label();
            (c.id, label)
        });
        if settings.enabled && card.is_none() {
            return Err(PaymentsError::Invalid(
                "Auto-reload needs a saved card. Buy credits once with a card: it is kept for Auto-reload.".into(),
            ));
        }
        let card_ref = card
            .as_ref()
            .map(|(id, label)| (id.as_str(), label.as_str()));
        let now = self.now();
        let new_card = card.as_ref().map(|c| c.0.as_str()) != saved.as_deref();
        let declines = match &previous {
            Some(record) => record
                .declines(store.last_declined_reload_at(workspace).await?)
                .after_save(new_card),
            None => DeclineState::default(),
        };
        let available = store.summary(workspace, now).await?.available;
        let was_on = previous.as_ref().is_some_and(|r| r.settings.enabled);
        let mut first = None;
        if settings.enabled && !was_on && available < settings.threshold.get() {
            // Saving is no way around a decline: the card waits out its back-off or pause.
            if declines.paused {
                first = Some(ReloadOutcome::Skipped(SkipReason::Paused));
            } else if declines.retry_at(now).is_some() {
                first = Some(ReloadOutcome::Skipped(SkipReason::BackingOff));
            }
        }
        if settings.enabled && !was_on && available < settings.threshold.get() && first.is_none() {
            // The first top-up runs before anything is saved, as its own reload (in flight,
            // so the job leaves it alone).
            let id = new_id("arl");
            let inserted = sqlx::query("INSERT INTO auto_reload_attempts (id, workspace_id, status, created_at, updated_at) VALUES ($1, $2, 'charging', $3, $3) ON CONFLICT DO NOTHING")
                .bind(&id)
                .bind(workspace.as_str())
                .bind(now)
                .execute(store.pool())
                .await
                .map_err(StoreError::from)?
                .rows_affected();
            if inserted == 0 {
                return Err(PaymentsError::Invalid(
                    "A reload is already in progress. Try again in a moment.".into(),
                ));
            }
            let attempt = ReloadAttempt {
                id,
                workspace_id: workspace.clone(),
                status: "charging".into(),
                reason: None,
                purchase_id: None,
                credits: None,
                amount_minor: None,
                updated_at: now,
            };
            let record = ReloadSettingsRecord {
                settings: settings.clone(),
                payment_method_id: card.as_ref().map(|c| c.0.clone()),
                payment_method_label: card.as_ref().map(|c| c.1.clone()),
                consecutive_declines: i64::from(declines.declines),
                paused: declines.paused,
            };
            let outcome = self.reload_with(&attempt, Some(record)).await?;
            match &outcome {
                ReloadOutcome::Credited(_) => first = Some(outcome),
                ReloadOutcome::Declined(reason) | ReloadOutcome::NeedsAuthentication(reason) => {
                    return Err(PaymentsError::Invalid(format!(
                        "The first top-up failed, so Auto-reload was not turned on: {reason}"
                    )))
                }
                ReloadOutcome::Skipped(reason) => {
                    return Err(PaymentsError::Invalid(format!(
                        "The first top-up did not run, so Auto-reload was not turned on: {}",
                        reason.explain()
                    )))
                }
            }
        }
        store
            .save_auto_reload_settings(workspace, settings, card_ref, new_card, by, self.now())
            .await?;
        Ok(first)
    }

    /// "Try again" after declines: once the back-off allows, lifts the pause and queues a
    /// reload, which the job charges if the balance is still below the threshold.
    pub async fn try_again_auto_reload(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<(), PaymentsError> {
        let store = self.store();
        let record = store
            .auto_reload_settings(workspace)
            .await?
            .filter(|r| r.settings.enabled)
            .ok_or_else(|| {
                PaymentsError::Invalid("Auto-reload is off; turn it on first.".into())
            })?;
        let now = self.now();
        let state = record.declines(store.last_declined_reload_at(workspace).await?);
        let next = state.try_again(now).map_err(|err| match err {
            TryAgainError::NothingFailed => {
                PaymentsError::Invalid("No Auto-reload payment failed, so there is nothing to try again.".into())
            }
            TryAgainError::TooSoon { until } => PaymentsError::Invalid(format!(
                "The card was declined recently. Card networks limit retries, so it can be tried again after {} UTC.",
                crate::clock::to_datetime(until).format("%Y-%m-%d %H:%M")
            )),
        })?;
        if !store.lift_pause(workspace, next.declines, now).await? {
            return Err(PaymentsError::Invalid(
                "A reload was just tried; look at its outcome before trying again.".into(),
            ));
        }
        store.queue_reload(workspace, now).await?;
        Ok(())
    }

    /// Decides and charges one claimed reload.
    pub async fn run_reload(
        &self,
        attempt: &ReloadAttempt,
    ) -> Result<ReloadOutcome, PaymentsError> {
        self.reload_with(attempt, None).await
    }

    /// Like [`Payments::run_reload`], with settings not yet saved (the first top-up).
    async fn reload_with(
        &self,
        attempt: &ReloadAttempt,
        unsaved: Option<ReloadSettingsRecord>,
    ) -> Result<ReloadOutcome, PaymentsError> {
        let store = self.store();
        let now = self.now();
        let workspace = &attempt.workspace_id;
        // A reload that was charged before a crash resumes with its own purchase.
        let purchase = match &attempt.purchase_id {
            Some(id) => store.purchase_by_id(id).await?,
            None => None,
        };
        let purchase = match purchase {
            Some(p) => p,
            None => {
                let saved = match &unsaved {
                    Some(record) => Some(record.clone()),
                    None => store.auto_reload_settings(workspace).await?,
                };
                let Some(record) = saved else {
                    store
                        .set_attempt(
                            &attempt.id,
                            "skipped",
                            Some(SkipReason::Disabled.explain()),
                            None,
                            now,
                        )
                        .await?;
                    return Ok(ReloadOutcome::Skipped(SkipReason::Disabled));
                };
                let summary = store.summary(workspace, now).await?;
                let spent = store
                    .auto_reload_spent_since(workspace, month_start(now))
                    .await?;
                let state = ReloadState {
                    balance: Credits::new(summary.available.max(0)).unwrap_or_default(),
                    pending: Credits::ZERO,
                    spent_this_month: Money::new(
                        spent,
                        record.settings.monthly_cap.currency().clone(),
                    )
                    .unwrap_or_else(|_| {
                        Money::zero(record.settings.monthly_cap.currency().clone())
                    }),
                    has_payment_method: record.payment_method_id.is_some(),
                    paused: record.paused,
                    backing_off: false,
                };
                let terms = CustomAmountTerms::standard();
                let mut state = state;
                if record.consecutive_declines > 0 {
                    let last = store.last_declined_reload_at(workspace).await?;
                    state.backing_off = record.declines(last).retry_at(now).is_some();
                }
                let (credits, price) = match decide(&record.settings, &state, &terms) {
                    ReloadDecision::Skip(reason) => {
                        store
                            .set_attempt(&attempt.id, "skipped", Some(reason.explain()), None, now)
                            .await?;
                        return Ok(ReloadOutcome::Skipped(reason));
                    }
                    ReloadDecision::Reload { credits, price } => (credits, price),
                };
                let purchase = store
                    .create_purchase(
                        &NewPurchase {
                            workspace_id: workspace.clone(),
                            origin: PurchaseOrigin::AutoReload,
                            pack_id: None,
                            description: format!("Auto-reload: {credits} AI credits"),
                            credits,
                            bonus_credits: Credits::ZERO,
                            amount_minor: price.amount_minor(),
                            currency: price.currency().as_str().to_owned(),
                            created_by: "Auto-reload".into(),
                        },
                        now,
                    )
                    .await?;
                store
                    .set_attempt(&attempt.id, "charging", None, Some(&purchase), now)
                    .await?;
                purchase
            }
        };
        let record = match unsaved {
            Some(record) => Some(record),
            None => store.auto_reload_settings(workspace).await?,
        };
        let method = record.as_ref().and_then(|r| r.payment_method_id.clone());
        let Some(method) = method else {
            store
                .set_attempt(
                    &attempt.id,
                    "skipped",
                    Some(SkipReason::NoPaymentMethod.explain()),
                    None,
                    now,
                )
                .await?;
            return Ok(ReloadOutcome::Skipped(SkipReason::NoPaymentMethod));
        };
        let name = store
            .workspace(workspace)
            .await?
            .map(|w| w.name)
            .unwrap_or_default();
        let customer = self.customer(workspace, &name).await?;
        let label = record.as_ref().and_then(|r| r.payment_method_label.clone());
        let mut snapshot = self
            .gateway()
            .charge_off_session(&OffSessionCharge {
                customer_id: customer,
                payment_method_id: method,
                purchase_id: purchase.id.clone(),
                workspace_id: workspace.to_string(),
                description: purchase.description.clone(),
                amount_minor: purchase.amount_minor,
                currency: purchase.currency.clone(),
                idempotency_key: format!("tally-reload-{}", attempt.id),
            })
            .await?;
        // The answer to a charge does not always carry the card's details; the card charged
        // is the one chosen in the settings.
        if snapshot.payment_method.is_none() {
            snapshot.payment_method = label;
        }
        let needs_auth = matches!(&snapshot.observation, PaymentObservation::Failed(r) if r.contains("authentication"));
        let applied = store
            .apply_payment(&purchase.id, None, &snapshot, self.now())
            .await?;
        let after = match applied {
            Applied::Step(_, after) => *after,
            Applied::Duplicate => store
                .purchase_by_id(&purchase.id)
                .await?
                .unwrap_or(purchase),
        };
        let now = self.now();
        match after.status {
            PurchaseStatus::Succeeded => {
                store
                    .set_attempt(&attempt.id, "succeeded", None, Some(&after), now)
                    .await?;
                store.clear_declines(workspace).await?;
                store
                    .notify(
                        workspace,
                        Kind::AutoRechargeTriggered,
                        "Auto-reload added credits",
                        &format!(
                            "{} were added for {}.",
                            app::format::credits_phrase(
                                Credits::new(after.credits).unwrap_or_default()
                            ),
                            Money::new(
                                after.amount_minor,
                                Currency::parse(&after.currency)
                                    .unwrap_or_else(|_| Currency::usd())
                            )
                            .map(|m| m.to_string())
                            .unwrap_or_default()
                        ),
                        now,
                    )
                    .await?;
                Ok(ReloadOutcome::Credited(Box::new(after)))
            }
            _ => {
                let reason = after
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| "The card was declined.".into());
                if needs_auth {
                    store
                        .set_attempt(
                            &attempt.id,
                            "requires_action",
                            Some(&reason),
                            Some(&after),
                            now,
                        )
                        .await?;
                    store
                        .notify(
                            workspace,
                            Kind::PurchaseFailed,
                            "Confirm an Auto-reload payment",
                            "The bank wants the cardholder to confirm this reload. Open Billing and choose Confirm payment.",
                            now,
                        )
                        .await?;
                    return Ok(ReloadOutcome::NeedsAuthentication(reason));
                }
                store
                    .set_attempt(&attempt.id, "failed", Some(&reason), Some(&after), now)
                    .await?;
                if store.count_decline(workspace, now).await? {
                    store
                        .notify(
                            workspace,
                            Kind::PurchaseFailed,
                            "Auto-reload is paused",
                            &format!("The card was declined {PAUSE_AFTER_DECLINES} times in a row, so Auto-reload stopped trying. Choose another card, or use Try again on the Billing page once the waiting time has passed."),
                            now,
                        )
                        .await?;
                }
                Ok(ReloadOutcome::Declined(reason))
            }
        }
    }
}

/// The card Auto-reload will charge: the one chosen on the form (it must be one of the
/// workspace's saved cards: an id from anywhere else is refused), else the card already in use
/// while it is still saved, else the default card.
fn pick_card(
    cards: Vec<CardOnFile>,
    chosen: Option<&str>,
    in_use: Option<&str>,
) -> Result<Option<CardOnFile>, PaymentsError> {
    let chosen = chosen.map(str::trim).filter(|id| !id.is_empty());
    if let Some(id) = chosen {
        return match cards.into_iter().find(|c| c.id == id) {
            Some(card) => Ok(Some(card)),
            None => Err(PaymentsError::Invalid(
                "That card is not saved for this workspace. Choose one of the saved cards.".into(),
            )),
        };
    }
    let position = in_use
        .and_then(|id| cards.iter().position(|c| c.id == id))
        .or_else(|| cards.iter().position(|c| c.is_default));
    Ok(position.map(|i| cards.into_iter().nth(i).expect("position is in range")))
}
