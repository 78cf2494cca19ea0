//! Auto-reload: settings, the durable queue of reloads, and the job that charges them.
//!
//! A spend that leaves the balance below the threshold queues a reload in its own
//! transaction (see the ledger's `save_account`); a unique index allows one reload in flight
//! per workspace. The job claims queued reloads, decides with [`app::domain::decide`],
//! charges the saved card off-session with an idempotency key made from the reload's id (so a
//! retry after a crash charges at most once), and applies the answer like any payment.

pub(crate) mod queue;
mod store;

pub use queue::AttemptStatus;
pub use store::{ReloadAttempt, ReloadSettingsRecord};

use super::{
    Applied, CardOnFile, NewPurchase, OffSessionCharge, Payments, PaymentsError, PurchaseRecord,
};
use crate::notifications::Kind;
use app::domain::{
    decide, month_start, AutoReloadSettings, Credits, Currency, DeclineState, Money,
    PurchaseOrigin, PurchaseStatus, ReloadAmount, ReloadDecision, ReloadState, SkipReason,
    TryAgainError, WorkspaceId, PAUSE_AFTER_DECLINES,
};

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
        let pack = self.reload_pack(settings).await?;
        settings
            .validate(&self.storefront().custom, pack.as_ref())
            .map_err(|e| {
                let reason = e.explain(&self.storefront().unit);
                PaymentsError::Invalid(format!("{}.", app::format::capitalised(&reason)))
            })?;
        if settings.enabled {
            if let Some(why) = self.buying_refusal(workspace).await? {
                return Err(PaymentsError::PlanRequired(why));
            }
        }
        let store = self.store();
        // Read afresh: the card chosen must still be there.
        let cards = self.refresh_cards(workspace).await?;
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
            let Some(id) = store
                .queue_reload(workspace, AttemptStatus::Charging, now)
                .await?
            else {
                return Err(PaymentsError::Invalid(
                    "A reload is already in progress. Try again in a moment.".into(),
                ));
            };
            let attempt = ReloadAttempt {
                id,
                workspace_id: workspace.clone(),
                status: AttemptStatus::Charging,
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
        store
            .queue_reload(workspace, AttemptStatus::Queued, now)
            .await?;
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
    ///
    /// The steps: find the reload's purchase (resumed after a crash) or decide and create one,
    /// charge the chosen card off-session, then record what the card network answered.
    async fn reload_with(
        &self,
        attempt: &ReloadAttempt,
        unsaved: Option<ReloadSettingsRecord>,
    ) -> Result<ReloadOutcome, PaymentsError> {
        let record = match unsaved {
            Some(record) => Some(record),
            None => {
                self.store()
                    .auto_reload_settings(&attempt.workspace_id)
                    .await?
            }
        };
        let purchase = match self.resumed_purchase(attempt).await? {
            Some(purchase) => purchase,
            None => {
                let Some(record) = &record else {
                    return self.skip(attempt, SkipReason::Disabled).await;
                };
                match self.decide_reload(attempt, record).await? {
                    Ok(purchase) => purchase,
                    Err(reason) => return self.skip(attempt, reason).await,
                }
            }
        };
        let Some(card) = record.as_ref().and_then(|r| r.payment_method_id.clone()) else {
            return self.skip(attempt, SkipReason::NoPaymentMethod).await;
        };
        let label = record.and_then(|r| r.payment_method_label);
        let (after, needs_auth) = self.charge_reload(attempt, purchase, card, label).await?;
        if after.status == PurchaseStatus::Succeeded {
            return self.reload_credited(attempt, after).await;
        }
        let reason = after
            .failure_reason
            .clone()
            .unwrap_or_else(|| "The card was declined.".into());
        if needs_auth {
            self.reload_needs_confirmation(attempt, &after, &reason)
                .await?;
            Ok(ReloadOutcome::NeedsAuthentication(reason))
        } else {
            self.reload_declined(attempt, &after, &reason).await?;
            Ok(ReloadOutcome::Declined(reason))
        }
    }

    /// A reload that was charged before a crash resumes with its own purchase.
    async fn resumed_purchase(
        &self,
        attempt: &ReloadAttempt,
    ) -> Result<Option<PurchaseRecord>, PaymentsError> {
        match &attempt.purchase_id {
            Some(id) => Ok(self.store().purchase_by_id(id).await?),
            None => Ok(None),
        }
    }

    /// Records a reload that did not run, and why.
    async fn skip(
        &self,
        attempt: &ReloadAttempt,
        reason: SkipReason,
    ) -> Result<ReloadOutcome, PaymentsError> {
        self.store()
            .set_attempt(
                &attempt.id,
                AttemptStatus::Skipped,
                Some(reason.explain()),
                None,
                self.now(),
            )
            .await?;
        Ok(ReloadOutcome::Skipped(reason))
    }

    /// What the rules say about this reload now; when it should run, the purchase it charges
    /// (created and tied to the attempt before any card is touched).
    async fn decide_reload(
        &self,
        attempt: &ReloadAttempt,
        record: &ReloadSettingsRecord,
    ) -> Result<Result<PurchaseRecord, SkipReason>, PaymentsError> {
        let store = self.store();
        let now = self.now();
        let workspace = &attempt.workspace_id;
        let state = self.reload_state(workspace, record).await?;
        let pack = self.reload_pack(&record.settings).await?;
        let decision = decide(
            &record.settings,
            &state,
            &self.storefront().custom,
            pack.as_ref(),
        );
        let (credits, bonus, price) = match decision {
            ReloadDecision::Skip(reason) => return Ok(Err(reason)),
            ReloadDecision::Reload {
                credits,
                bonus,
                price,
            } => (credits, bonus, price),
        };
        let (pack_id, description) = match (&record.settings.amount, &pack) {
            (ReloadAmount::Pack(id), Some(p)) => (
                Some(id.clone()),
                format!(
                    "Auto-reload: {} pack, {}",
                    p.name,
                    self.storefront().unit.bought(credits)
                ),
            ),
            _ => (
                None,
                format!("Auto-reload: {}", self.storefront().unit.bought(credits)),
            ),
        };
        let purchase = store
            .create_purchase(
                &NewPurchase {
                    workspace_id: workspace.clone(),
                    origin: PurchaseOrigin::AutoReload,
                    pack_id,
                    description,
                    credits,
                    bonus_credits: bonus,
                    amount_minor: price.amount_minor(),
                    currency: price.currency().as_str().to_owned(),
                    created_by: "Auto-reload".into(),
                },
                now,
            )
            .await?;
        store
            .set_attempt(
                &attempt.id,
                AttemptStatus::Charging,
                None,
                Some(&purchase),
                now,
            )
            .await?;
        Ok(Ok(purchase))
    }

    /// The pack the settings buy, as it is on sale now (`None` in the other modes, or when it
    /// is no longer on sale).
    async fn reload_pack(
        &self,
        settings: &AutoReloadSettings,
    ) -> Result<Option<app::domain::PackDeal>, PaymentsError> {
        match &settings.amount {
            ReloadAmount::Pack(id) => self.pack_deal(id).await,
            _ => Ok(None),
        }
    }

    /// The facts [`decide`] weighs: balance, this month's reload spend, the card, declines.
    async fn reload_state(
        &self,
        workspace: &WorkspaceId,
        record: &ReloadSettingsRecord,
    ) -> Result<ReloadState, PaymentsError> {
        let store = self.store();
        let now = self.now();
        let summary = store.summary(workspace, now).await?;
        let spent = store
            .auto_reload_spent_since(workspace, month_start(now))
            .await?;
        let currency = record.settings.monthly_cap.currency().clone();
        let backing_off = if record.consecutive_declines > 0 {
            let last = store.last_declined_reload_at(workspace).await?;
            record.declines(last).retry_at(now).is_some()
        } else {
            false
        };
        Ok(ReloadState {
            balance: Credits::new(summary.available.max(0)).unwrap_or_default(),
            pending: Credits::ZERO,
            spent_this_month: Money::new(spent, currency.clone())
                .unwrap_or_else(|_| Money::zero(currency)),
            has_payment_method: record.payment_method_id.is_some(),
            paused: record.paused,
            backing_off,
            may_buy: self.buying_refusal(workspace).await?.is_none(),
        })
    }

    /// Charges the card off-session and applies the answer like any payment. The idempotency
    /// key is the reload's id, so a retry after a crash charges at most once. Returns the
    /// purchase as it now stands and whether the bank asked for the cardholder.
    async fn charge_reload(
        &self,
        attempt: &ReloadAttempt,
        purchase: PurchaseRecord,
        card: String,
        label: Option<String>,
    ) -> Result<(PurchaseRecord, bool), PaymentsError> {
        let store = self.store();
        let workspace = &attempt.workspace_id;
        let name = store
            .workspace(workspace)
            .await?
            .map(|w| w.name)
            .unwrap_or_default();
        let customer = self.customer(workspace, &name).await?;
        let mut snapshot = self
            .gateway()
            .charge_off_session(&OffSessionCharge {
                customer_id: customer,
                payment_method_id: card,
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
        let needs_auth = snapshot.needs_authentication;
        let after = match store
            .apply_payment(&purchase.id, None, &snapshot, self.now())
            .await?
        {
            Applied::Step(_, after) => *after,
            Applied::Duplicate => store
                .purchase_by_id(&purchase.id)
                .await?
                .unwrap_or(purchase),
        };
        Ok((after, needs_auth))
    }

    /// The card paid: the attempt succeeded, the decline count starts over, admins hear of it.
    async fn reload_credited(
        &self,
        attempt: &ReloadAttempt,
        after: PurchaseRecord,
    ) -> Result<ReloadOutcome, PaymentsError> {
        let store = self.store();
        let now = self.now();
        let workspace = &attempt.workspace_id;
        store
            .set_attempt(
                &attempt.id,
                AttemptStatus::Succeeded,
                None,
                Some(&after),
                now,
            )
            .await?;
        store.clear_declines(workspace).await?;
        let credits = self
            .storefront()
            .unit
            .amount(Credits::new(after.credits).unwrap_or_default());
        let paid = Money::new(
            after.amount_minor,
            Currency::parse(&after.currency).unwrap_or_else(|_| Currency::usd()),
        )
        .map(|m| m.to_string())
        .unwrap_or_default();
        store
            .notify(
                workspace,
                Kind::AutoReloaded,
                "Auto-reload added credits",
                &format!("{credits} were added for {paid}."),
                now,
            )
            .await?;
        Ok(ReloadOutcome::Credited(Box::new(after)))
    }

    /// The bank wants the cardholder: the attempt waits for Confirm payment on the page.
    async fn reload_needs_confirmation(
        &self,
        attempt: &ReloadAttempt,
        after: &PurchaseRecord,
        reason: &str,
    ) -> Result<(), PaymentsError> {
        let store = self.store();
        let now = self.now();
        store
            .set_attempt(
                &attempt.id,
                AttemptStatus::RequiresAction,
                Some(reason),
                Some(after),
                now,
            )
            .await?;
        store
            .notify(
                &attempt.workspace_id,
                Kind::PurchaseFailed,
                "Confirm an Auto-reload payment",
                "The bank wants the cardholder to confirm this reload. Open Billing and choose Confirm payment.",
                now,
            )
            .await?;
        Ok(())
    }

    /// The card was declined: one more decline counts toward the pause, and the pause itself
    /// is announced once.
    async fn reload_declined(
        &self,
        attempt: &ReloadAttempt,
        after: &PurchaseRecord,
        reason: &str,
    ) -> Result<(), PaymentsError> {
        let store = self.store();
        let now = self.now();
        let workspace = &attempt.workspace_id;
        store
            .set_attempt(
                &attempt.id,
                AttemptStatus::Failed,
                Some(reason),
                Some(after),
                now,
            )
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
        Ok(())
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
