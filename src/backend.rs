//! The server's implementation of what the UI's server functions need.

use crate::clock::Clock;
use crate::db::{Reads, Store, StoreError};
use crate::ledger::{views, LedgerError};
use crate::ledger::{EntryMeta, IdempotencyKey, NewHold, NewPool, Refusal};
use crate::payments::auto_reload::ReloadOutcome;
use crate::payments::subscriptions::SubscriptionRecord;
use crate::payments::{CardOnFile, GatewayError, Payments, PaymentsError, PurchaseRecord};
use crate::spend::{BudgetChange, Enforcement, NewBudget, Period, Scope, SpendError};
use app::api_keys::{ApiKeyView, NewApiKey};
use app::backend::Backend;
use app::billing::{
    BillingOverview, BudgetLine, CreditsView, HistoryFilter, PlanView, Transaction, Viewer,
    WorkspaceChoice,
};
use app::billing::{UsageBreakdown, UsageReport};
use app::budgets::{BudgetForm, BudgetsPage, PoolForm, PoolLine, TargetChoice};
use app::domain::{
    AutoReloadSettings, Credits, Currency, CustomAmountTerms, Money, Rate, WorkspaceId,
};
use app::error::AppError;
use app::notifications::NotificationView;
use app::purchases::{
    CheckoutStarted, PackOffer, PurchaseChoice, PurchaseDetail, PurchaseSection, PurchaseView,
    SavedCard,
};
use app::studio::{ActionResult, Insufficient};
use std::sync::Arc;
use std::time::Duration;

/// The ledger, accounts and payments, behind the UI's [`Backend`] trait.
#[derive(Clone, Debug)]
pub struct TallyBackend {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// How long the Studio's simulated provider work takes.
    pub studio_work: Duration,
    pub payments: Payments,
    /// The site's public address when configured (links back from the payment page).
    pub public_url: Option<String>,
    /// Where notification endpoints may point.
    pub outbound_policy: crate::outbound::AddressPolicy,
    /// The API keys this instance remembers, which a revocation here forgets.
    pub api_key_cache: crate::accounts::ApiKeyCache,
}

fn internal(err: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %err, "server function failed");
    AppError::Internal
}

impl From<LedgerError> for AppError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::BadCursor => AppError::Invalid(err.to_string()),
            other => internal(other),
        }
    }
}

impl TallyBackend {
    #[tracing::instrument(skip_all)]
    async fn workspace(
        &self,
        id: &WorkspaceId,
    ) -> Result<crate::accounts::WorkspaceRecord, AppError> {
        self.store
            .workspace(id)
            .await
            .map_err(internal)?
            .ok_or(AppError::NotFound)
    }

    /// The Credits card for `viewer`, read on `reads`.
    async fn credits_in(
        &self,
        reads: &mut Reads,
        viewer: &Viewer,
        limit: u32,
    ) -> Result<CreditsView, AppError> {
        // The viewer's membership already proved the workspace exists.
        let workspace = &viewer.workspace.id;
        let spender = crate::spend::Spender {
            member: Some(viewer.user_id.clone()),
            project: viewer.pool.as_ref().map(|p| p.project.clone()),
            ..Default::default()
        };
        if let Some(pool) = &viewer.pool {
            return Ok(views::pool_credits_view(
                reads,
                workspace,
                pool.clone(),
                self.clock.now_ms(),
                &spender,
                &viewer.unit,
            )
            .await?);
        }
        Ok(views::credits_view(
            reads,
            workspace,
            self.clock.now_ms(),
            limit,
            None,
            &views::Audience {
                with_card: viewer.can_manage_billing,
                whose: &spender,
                unit: &viewer.unit,
            },
        )
        .await?)
    }

    /// Brings the workspace's kept usage sums up to date after this view has answered, so
    /// that the page never waits on a write. Several views may ask at once: the database lets
    /// one fold the charges and the others find nothing left to do.
    fn fold_usage_later(&self, workspace: &WorkspaceId, now: i64) {
        let store = self.store.clone();
        let workspace = workspace.clone();
        tokio::spawn(async move {
            if let Err(err) = store.fold_usage(&workspace, now).await {
                // Nothing is lost: the charges stay summed live until a later view folds them.
                tracing::warn!(error = %err, "keeping the usage chart's sums failed");
            }
        });
    }
}

/// The plan card's figures for a workspace's subscription.
fn plan_view(subscription: Option<SubscriptionRecord>) -> Option<PlanView> {
    let s = subscription?;
    let per_invoice = s
        .plan
        .terms
        .credits_per_seat
        .get()
        .saturating_mul(i64::from(s.seats))
        .saturating_mul(s.interval.months());
    Some(PlanView {
        name: s.plan.name,
        status: s.status,
        seats: s.seats,
        interval: s.interval,
        credits_per_seat: s.plan.terms.credits_per_seat,
        credits_per_invoice: Credits::new(per_invoice).unwrap_or_default(),
        rollover: s.plan.terms.rollover,
        period_end: crate::clock::to_datetime(s.current_period_end),
        cancel_at_period_end: s.cancel_at_period_end,
    })
}

#[async_trait::async_trait]
impl Backend for TallyBackend {
    #[tracing::instrument(skip_all)]
    async fn viewer(&self, session_token: &str) -> Result<Option<Viewer>, AppError> {
        viewer_of(
            &self.store,
            session_token,
            self.clock.now_ms(),
            &self.payments.storefront().unit,
        )
        .await
        .map_err(internal)
    }

    #[tracing::instrument(skip_all)]
    async fn credits(&self, viewer: &Viewer, limit: u32) -> Result<CreditsView, AppError> {
        if !viewer.role.can_view_billing() {
            return Err(AppError::Forbidden);
        }
        self.credits_in(&mut self.store.reads().await?, viewer, limit)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn billing_overview(
        &self,
        viewer: Viewer,
        limit: u32,
        by: UsageBreakdown,
    ) -> Result<BillingOverview, AppError> {
        if !viewer.role.can_view_billing() {
            return Err(AppError::Forbidden);
        }
        // The page's reads on one connection (see `Reads`).
        let mut reads = self.store.reads().await?;
        let credits = self.credits_in(&mut reads, &viewer, limit).await?;
        // A member shown only their project's pool gets nothing of the workspace's use or plan.
        let (usage, plan) = if viewer.pool.is_some() {
            (UsageReport::empty(by), None)
        } else {
            let workspace = &viewer.workspace.id;
            let now = self.clock.now_ms();
            let (usage, fold_due) = views::usage(&mut reads, workspace, now, by).await?;
            if fold_due {
                self.fold_usage_later(workspace, now);
            }
            (usage, plan_view(reads.subscription_of(workspace).await?))
        };
        Ok(BillingOverview {
            viewer,
            credits,
            usage,
            plan,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn history(
        &self,
        workspace: &WorkspaceId,
        filter: &HistoryFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Transaction>, Option<String>), AppError> {
        // The viewer's membership already proved the workspace exists.
        let mut reads = self.store.reads().await?;
        Ok(views::history(&mut reads, workspace, filter, cursor, limit).await?)
    }

    #[tracing::instrument(skip_all)]
    async fn rates(&self) -> Result<Vec<Rate>, AppError> {
        Ok(self.store.rates().await?)
    }

    #[tracing::instrument(skip_all)]
    async fn run_action(
        &self,
        viewer: &Viewer,
        model: &str,
        units: i64,
    ) -> Result<ActionResult, AppError> {
        if !viewer.role.can_spend_credits() {
            return Err(AppError::Forbidden);
        }
        let workspace = self.workspace(&viewer.workspace.id).await?;
        let rate = self
            .store
            .rate(model)
            .await?
            .ok_or_else(|| AppError::Invalid("Pick a model from the list.".into()))?;
        let estimate = rate
            .price(units)
            .map_err(|e| AppError::Invalid(format!("That size can't be priced: {e}.")))?;
        let meta = EntryMeta {
            actor: viewer.email.clone(),
            description: format!("Studio: {}", rate.label),
            action: Some(format!("studio.{}", rate.modality.as_str())),
            model: Some(rate.model.clone()),
            // A member who works in one pooled project acts in it, so its pool pays.
            project: Some(
                viewer
                    .pool
                    .as_ref()
                    .map_or_else(|| "Studio".to_owned(), |p| p.project.clone()),
            ),
            session: None,
            payment_ref: None,
            member_id: Some(viewer.user_id.clone()),
            api_key_id: None,
        };
        let now = self.clock.now_ms();
        let key = IdempotencyKey {
            scope: "reservation",
            key: crate::db::new_id("studio"),
            request_hash: String::new(),
        };
        let hold = NewHold {
            credits: estimate,
            expires_at: now + 5 * 60_000,
            meta,
        };
        // The same typed gate the API calls: hold the estimate, then settle the real cost.
        let outcome = self
            .store
            .reserve_once(&workspace.id, &key, &hold, now)
            .await
            .map_err(internal)?;
        let receipt = match outcome {
            Ok(receipt) => receipt,
            Err(Refusal::Budget(hit)) => {
                // Nothing was held; say which limit fired and who can lift it.
                return Err(AppError::OverBudget(app::studio::OverBudget {
                    message: hit.sentence(&viewer.unit),
                    actions: viewer
                        .role
                        .budget_recovery(workspace.billing_managers)
                        .to_vec(),
                }));
            }
            Err(Refusal::Credits(shortfall)) => {
                return Err(AppError::InsufficientCredits(Insufficient {
                    balance: shortfall.available,
                    held: shortfall.held,
                    required: shortfall.required,
                    held_back: shortfall.available + shortfall.held >= shortfall.required,
                    role: viewer.role,
                    actions: viewer
                        .role
                        .recovery_actions(workspace.billing_managers)
                        .to_vec(),
                }))
            }
        };
        // The simulated provider work. Its real cost follows the compute it used: here a
        // deterministic 85-100 % of the estimate, never below one credit.
        tokio::time::sleep(self.studio_work).await;
        let spread = receipt.reservation_id.bytes().map(u64::from).sum::<u64>() % 16;
        let actual = ((estimate.get() * (85 + spread as i64) + 99) / 100).max(1);
        let actual = app::domain::Credits::new(actual).map_err(internal)?;
        let resolution = self
            .store
            .settle(
                &workspace.id,
                &receipt.reservation_id,
                actual,
                self.clock.now_ms(),
            )
            .await
            .map_err(internal)?;
        // A member shown only their project's pool sees what the pool has left.
        let balance = match &viewer.pool {
            Some(pool) => self
                .store
                .pool_seen_by(
                    &workspace.id,
                    workspace.member_view,
                    viewer.role,
                    Some(&pool.project),
                )
                .await?
                .map_or(0, |p| p.remaining),
            None => resolution.available,
        };
        Ok(ActionResult {
            model_label: rate.label.clone(),
            units,
            unit_name: rate.modality.unit_name().to_owned(),
            estimate: estimate.get(),
            charged: resolution.charged,
            balance,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn request_credits(&self, viewer: &Viewer) -> Result<bool, AppError> {
        if viewer.can_manage_billing || !viewer.role.can_view_billing() {
            return Err(AppError::Forbidden);
        }
        Ok(self
            .store
            .request_credits(&viewer.workspace.id, &viewer.email, self.clock.now_ms())
            .await?)
    }

    #[tracing::instrument(skip_all)]
    async fn notifications(&self, viewer: &Viewer) -> Result<Vec<NotificationView>, AppError> {
        // The workspace's notifications speak of its balance; a member shown only their
        // project's pool has none of them.
        if viewer.pool.is_some() {
            return Ok(Vec::new());
        }
        let records = self
            .store
            .notifications(&viewer.workspace.id, viewer.can_manage_billing, 50)
            .await?;
        Ok(records
            .into_iter()
            .map(|n| NotificationView {
                kind: n.kind,
                title: viewer.unit.render(&n.title),
                body: viewer.unit.render(&n.body),
                created_at: crate::clock::to_datetime(n.created_at),
            })
            .collect())
    }

    #[tracing::instrument(skip_all)]
    async fn notification_endpoint(
        &self,
        viewer: &Viewer,
    ) -> Result<app::notifications::EndpointView, AppError> {
        let workspace = &viewer.workspace.id;
        Ok(app::notifications::EndpointView {
            url: self.store.webhook_endpoint(workspace).await?,
            deliveries: self
                .store
                .recent_deliveries(workspace, 10)
                .await?
                .into_iter()
                .map(|d| app::notifications::DeliveryView {
                    kind: d.kind,
                    outcome: d.outcome,
                    attempts: d.attempts,
                    at: crate::clock::to_datetime(d.at),
                    last_error: d.last_error,
                })
                .collect(),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn save_notification_endpoint(
        &self,
        viewer: &Viewer,
        url: Option<String>,
    ) -> Result<app::notifications::EndpointSaved, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let workspace = &viewer.workspace.id;
        match url {
            None => {
                self.store.remove_webhook_endpoint(workspace).await?;
                Ok(app::notifications::EndpointSaved {
                    url: None,
                    secret: None,
                })
            }
            Some(url) => {
                let url = self
                    .outbound_policy
                    .check_endpoint(&url)
                    .await
                    .map_err(|e| {
                        AppError::Invalid(format!("{}.", app::format::capitalised(&e.0)))
                    })?;
                let endpoint = self
                    .store
                    .set_webhook_endpoint(workspace, url.as_str(), self.clock.now_ms())
                    .await?;
                Ok(app::notifications::EndpointSaved {
                    url: Some(endpoint.url),
                    secret: Some(endpoint.secret),
                })
            }
        }
    }

    fn custom_terms(&self) -> CustomAmountTerms {
        self.payments.storefront().custom.clone()
    }

    #[tracing::instrument(skip_all)]
    async fn purchase_section(&self, viewer: &Viewer) -> Result<PurchaseSection, AppError> {
        let workspace = &viewer.workspace.id;
        // The catalog and the purchases on one connection, given back before the cards are
        // read: a workspace whose cards were never read asks the provider and saves them.
        let mut reads = self.store.reads().await?;
        let upgrade = self
            .payments
            .buying_refusal_in(&mut reads, workspace)
            .await
            .map_err(payment_error)?
            .map(|why| app::purchases::UpgradeNote {
                message: why.to_owned(),
                url: self.payments.storefront().upgrade_url.clone(),
            });
        let offers = self
            .payments
            .offers(&mut reads)
            .await
            .map_err(payment_error)?;
        let packs = offers
            .into_iter()
            .map(|(pack, offer, per_thousand, best)| PackOffer {
                id: pack.id,
                name: pack.name,
                credits: offer.credits,
                bonus: offer.bonus,
                bonus_ends_at: (!offer.bonus.is_zero())
                    .then_some(pack.bonus_ends_at)
                    .flatten()
                    .map(crate::clock::to_datetime),
                price: offer.price,
                per_thousand,
                best_value: best,
            })
            .collect();
        if !viewer.can_manage_billing {
            // The catalog alone: cards and purchases are for the people who buy.
            return Ok(PurchaseSection {
                workspace_id: workspace.clone(),
                workspace_name: viewer.workspace.name.clone(),
                test_mode: self.payments.gateway().test_mode(),
                can_buy: false,
                who_can_buy: viewer.who_can_buy.clone(),
                packs,
                custom: self.custom_terms(),
                cards: Vec::new(),
                cards_error: None,
                purchases: Vec::new(),
                upgrade,
            });
        }
        let purchases = reads
            .purchases(workspace, 20)
            .await?
            .into_iter()
            .map(purchase_view)
            .collect::<Result<_, _>>()?;
        let stored_cards = reads.stored_cards_of(workspace).await?;
        drop(reads);
        // Saved cards are read from the database; only a workspace whose cards were never
        // read asks the payment provider, and the page still works when it is away.
        let (cards, cards_error) = match self.payments.cards_from(stored_cards).await {
            Ok(cards) => (cards.into_iter().map(saved_card).collect(), None),
            Err(err) => {
                tracing::warn!(error = %err, "saved cards could not be read");
                (
                    Vec::new(),
                    Some(
                        "Saved cards could not be loaded from the payment provider right now."
                            .to_owned(),
                    ),
                )
            }
        };
        Ok(PurchaseSection {
            workspace_id: workspace.clone(),
            workspace_name: viewer.workspace.name.clone(),
            test_mode: self.payments.gateway().test_mode(),
            can_buy: true,
            who_can_buy: viewer.who_can_buy.clone(),
            packs,
            custom: self.custom_terms(),
            cards,
            cards_error,
            purchases,
            upgrade,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn start_checkout(
        &self,
        viewer: &Viewer,
        choice: PurchaseChoice,
        origin: &str,
    ) -> Result<CheckoutStarted, AppError> {
        // Checked here too, so no caller can skip it.
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let offer = self.payments.offer(&choice).await.map_err(payment_error)?;
        let origin = self.public_url.as_deref().unwrap_or(origin);
        let (purchase, open) = self
            .payments
            .start_checkout(
                &viewer.workspace.id,
                &viewer.workspace.name,
                &viewer.email,
                &offer,
                origin,
            )
            .await
            .map_err(payment_error)?;
        Ok(CheckoutStarted {
            purchase_id: purchase.id,
            url: open.url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn purchase(&self, viewer: &Viewer, id: &str) -> Result<PurchaseDetail, AppError> {
        // The return page is the buyer's: its card and receipt are for billing managers.
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let record = self
            .store
            .purchase(&viewer.workspace.id, id)
            .await?
            .ok_or(AppError::NotFound)?;
        let available = self
            .store
            .summary(&viewer.workspace.id, self.clock.now_ms())
            .await
            .map_err(internal)?
            .available;
        Ok(PurchaseDetail {
            purchase: purchase_view(record)?,
            balance: Credits::new(available.max(0)).unwrap_or_default(),
            test_mode: self.payments.gateway().test_mode(),
            workspace_id: viewer.workspace.id.clone(),
            workspace_name: viewer.workspace.name.clone(),
            unit: viewer.unit.clone(),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn save_auto_reload(
        &self,
        viewer: &Viewer,
        settings: AutoReloadSettings,
        card: Option<String>,
    ) -> Result<String, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let first = self
            .payments
            .save_auto_reload(
                &viewer.workspace.id,
                &viewer.email,
                &settings,
                card.as_deref(),
            )
            .await
            .map_err(payment_error)?;
        Ok(match (settings.enabled, first) {
            (true, Some(ReloadOutcome::Credited(purchase))) => format!(
                "Auto-reload is on. The balance was below the threshold, so it added {} first.",
                viewer.unit.amount(
                    Credits::new(purchase.credits + purchase.bonus_credits).unwrap_or_default()
                )
            ),
            (true, Some(ReloadOutcome::Skipped(reason))) => format!(
                "Saved. Auto-reload did not top up now: {}",
                reason.explain()
            ),
            (true, _) => {
                let pack = match &settings.amount {
                    app::domain::ReloadAmount::Pack(id) => {
                        self.payments.pack_deal(id).await.map_err(payment_error)?
                    }
                    _ => None,
                };
                format!(
                    "Auto-reload is on. {}",
                    settings.preview(
                        &self.payments.storefront().custom,
                        pack.as_ref(),
                        &viewer.unit
                    )
                )
            }
            (false, _) => "Auto-reload is off. Reloads already charged still land.".to_owned(),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_reload(
        &self,
        viewer: &Viewer,
        origin: &str,
    ) -> Result<CheckoutStarted, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let origin = self.public_url.as_deref().unwrap_or(origin);
        let (purchase, open) = self
            .payments
            .confirm_reload(&viewer.workspace.id, &viewer.workspace.name, origin)
            .await
            .map_err(payment_error)?;
        Ok(CheckoutStarted {
            purchase_id: purchase.id,
            url: open.url,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn try_again_auto_reload(&self, viewer: &Viewer) -> Result<String, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        self.payments
            .try_again_auto_reload(&viewer.workspace.id)
            .await
            .map_err(payment_error)?;
        Ok("Trying the card again now. The outcome shows here in a few seconds.".to_owned())
    }

    #[tracing::instrument(skip_all)]
    async fn abandon_checkout(&self, viewer: &Viewer, id: &str) -> Result<PurchaseView, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let record = self
            .payments
            .abandon(&viewer.workspace.id, id)
            .await
            .map_err(payment_error)?;
        purchase_view(record)
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_cards(&self, viewer: &Viewer) -> Result<Vec<SavedCard>, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let cards = self
            .payments
            .refresh_cards(&viewer.workspace.id)
            .await
            .map_err(|err| match err {
                PaymentsError::Gateway(GatewayError::Unavailable(detail)) => {
                    tracing::warn!(%detail, "payment provider unavailable");
                    AppError::Invalid(
                        "The payment provider could not be reached. Try again in a minute.".into(),
                    )
                }
                other => payment_error(other),
            })?;
        Ok(cards.into_iter().map(saved_card).collect())
    }

    #[tracing::instrument(skip_all)]
    async fn api_keys(&self, viewer: &Viewer) -> Result<Vec<ApiKeyView>, AppError> {
        if !viewer.role.can_manage_api_keys() {
            return Err(AppError::Forbidden);
        }
        let keys = self
            .store
            .api_keys(&viewer.workspace.id)
            .await
            .map_err(internal)?;
        Ok(keys.into_iter().map(api_key_view).collect())
    }

    #[tracing::instrument(skip_all)]
    async fn create_api_key(&self, viewer: &Viewer, name: &str) -> Result<NewApiKey, AppError> {
        if !viewer.role.can_manage_api_keys() {
            return Err(AppError::Forbidden);
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AppError::Invalid(
                "Give the key a name of 1 to 100 characters, such as “Production backend”.".into(),
            ));
        }
        let (key, secret) = self
            .store
            .create_named_api_key(&viewer.workspace.id, name, self.clock.now_ms())
            .await
            .map_err(internal)?;
        Ok(NewApiKey {
            key: api_key_view(key),
            secret,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_api_key(&self, viewer: &Viewer, id: &str) -> Result<ApiKeyView, AppError> {
        if !viewer.role.can_manage_api_keys() {
            return Err(AppError::Forbidden);
        }
        let (key, hash) = self
            .store
            .revoke_api_key(&viewer.workspace.id, id, self.clock.now_ms())
            .await
            .map_err(internal)?
            .ok_or(AppError::NotFound)?;
        self.api_key_cache.forget(&hash);
        Ok(api_key_view(key))
    }

    #[tracing::instrument(skip_all)]
    async fn budgets(&self, viewer: &Viewer) -> Result<BudgetsPage, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let workspace = &viewer.workspace.id;
        let now = self.clock.now_ms();
        let budgets = self
            .store
            .budgets(workspace, now)
            .await
            .map_err(spend_error)?;
        let choice = |value: String, label: String| TargetChoice { value, label };
        let members = self
            .store
            .members(workspace)
            .await?
            .into_iter()
            .map(|m| choice(m.email.clone(), m.email))
            .collect();
        // Keys are the owners' to see (the API keys page): others budget a key by its id.
        let api_keys = if viewer.role.can_manage_api_keys() {
            self.store
                .api_keys(workspace)
                .await?
                .into_iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| choice(k.id, k.name))
                .collect()
        } else {
            Vec::new()
        };
        let projects = self
            .store
            .recent_projects(workspace, now)
            .await
            .map_err(spend_error)?
            .into_iter()
            .map(|p| choice(p.clone(), p))
            .collect();
        let pools = self
            .store
            .pools(workspace)
            .await
            .map_err(spend_error)?
            .into_iter()
            .map(pool_line)
            .collect();
        Ok(BudgetsPage {
            viewer: viewer.clone(),
            budgets: budgets.iter().map(views::budget_line).collect(),
            pools,
            members,
            api_keys,
            projects,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn add_budget(&self, viewer: &Viewer, form: &BudgetForm) -> Result<BudgetLine, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let scope = Scope::parse(form.scope.trim())
            .ok_or_else(|| AppError::Invalid("Choose a member, an API key or a project.".into()))?;
        let period = Period::parse(form.period.trim())
            .ok_or_else(|| AppError::Invalid("Choose a day, a week, a month or ever.".into()))?;
        let given = form.target.trim();
        let needs_target = scope != Scope::Workspace;
        if (needs_target && given.is_empty())
            || given.chars().count() > 200
            || given.chars().any(char::is_control)
        {
            return Err(AppError::Invalid(
                "Say who or what the budget is on (up to 200 characters).".into(),
            ));
        }
        let workspace = &viewer.workspace.id;
        let target = self
            .store
            .budget_target(workspace, scope, given)
            .await
            .map_err(spend_error)?;
        // With an action it is a frequency cap, whose limit counts actions.
        let action = form
            .action
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        if action
            .as_ref()
            .is_some_and(|a| a.chars().count() > 200 || a.chars().any(char::is_control))
        {
            return Err(AppError::Invalid(
                "Name the action as your product sends it (up to 200 characters).".into(),
            ));
        }
        let new = NewBudget {
            scope,
            target,
            limit: budget_limit(&form.limit, &viewer.unit, action.is_some())?,
            action,
            period,
            enforcement: enforcement(&form.enforcement)?,
            threshold_percent: 80,
        };
        let made = self
            .store
            .create_budget(workspace, &new, self.clock.now_ms())
            .await
            .map_err(spend_error)?;
        Ok(views::budget_line(&made))
    }

    #[tracing::instrument(skip_all)]
    async fn change_budget(
        &self,
        viewer: &Viewer,
        id: &str,
        limit: &str,
        enforcement_text: &str,
    ) -> Result<BudgetLine, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        // A frequency cap's limit counts actions; a budget's, credits in the unit shown.
        let current = self
            .store
            .budget(&viewer.workspace.id, id, self.clock.now_ms())
            .await
            .map_err(spend_error)?;
        let change = BudgetChange {
            limit: Some(budget_limit(limit, &viewer.unit, current.action.is_some())?),
            enforcement: Some(enforcement(enforcement_text)?),
            threshold_percent: None,
        };
        let changed = self
            .store
            .update_budget(&viewer.workspace.id, id, &change, self.clock.now_ms())
            .await
            .map_err(spend_error)?;
        Ok(views::budget_line(&changed))
    }

    #[tracing::instrument(skip_all)]
    async fn remove_budget(&self, viewer: &Viewer, id: &str) -> Result<String, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let workspace = &viewer.workspace.id;
        let now = self.clock.now_ms();
        let budget = self
            .store
            .budget(workspace, id, now)
            .await
            .map_err(spend_error)?;
        self.store
            .remove_budget(workspace, id, now)
            .await
            .map_err(spend_error)?;
        Ok(budget.label)
    }

    #[tracing::instrument(skip_all)]
    async fn add_pool(&self, viewer: &Viewer, form: &PoolForm) -> Result<PoolLine, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let scope = match Scope::parse(form.scope.trim()) {
            Some(scope @ (Scope::Project | Scope::ApiKey)) => scope,
            _ => return Err(AppError::Invalid("Choose a project or an API key.".into())),
        };
        let target = form.target.trim();
        if target.is_empty() || target.chars().count() > 200 || target.chars().any(char::is_control)
        {
            return Err(AppError::Invalid(
                "Say which project or API key the credits are for (up to 200 characters).".into(),
            ));
        }
        let new = NewPool {
            scope,
            target: target.to_owned(),
            credits: pool_credits(&form.credits, &viewer.unit)?,
            overflow: form.overflow,
        };
        let made = self
            .store
            .create_pool(&viewer.workspace.id, &new, self.clock.now_ms())
            .await
            .map_err(spend_error)?;
        Ok(pool_line(made))
    }

    #[tracing::instrument(skip_all)]
    async fn change_pool(
        &self,
        viewer: &Viewer,
        id: &str,
        credits: &str,
        overflow: bool,
    ) -> Result<PoolLine, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let credits = pool_credits(credits, &viewer.unit)?;
        let changed = self
            .store
            .change_pool(
                &viewer.workspace.id,
                id,
                Some(credits),
                Some(overflow),
                self.clock.now_ms(),
            )
            .await
            .map_err(spend_error)?;
        Ok(pool_line(changed))
    }

    #[tracing::instrument(skip_all)]
    async fn remove_pool(&self, viewer: &Viewer, id: &str) -> Result<String, AppError> {
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let workspace = &viewer.workspace.id;
        let label = self
            .store
            .pools(workspace)
            .await
            .map_err(spend_error)?
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.label)
            .ok_or(AppError::NotFound)?;
        self.store
            .remove_pool(workspace, id, self.clock.now_ms())
            .await
            .map_err(spend_error)?;
        Ok(label)
    }
}

/// A pool as the Budgets page shows it.
fn pool_line(p: crate::spend::PoolView) -> PoolLine {
    PoolLine {
        id: p.id,
        scope: p.scope.as_str().to_owned(),
        label: p.label,
        remaining: app::domain::Credits::new(p.remaining.max(0)).unwrap_or_default(),
        overflow: p.overflow,
    }
}

/// What a pool keeps, as typed in the deployment's unit: at least one credit.
fn pool_credits(
    text: &str,
    unit: &app::domain::CreditUnit,
) -> Result<app::domain::Credits, AppError> {
    match unit.parse_amount(text) {
        Ok(credits) if !credits.is_zero() => Ok(credits),
        Ok(_) => Err(AppError::Invalid("Credits: keep more than zero.".into())),
        Err(e) => Err(AppError::Invalid(format!("Credits: {e}."))),
    }
}

/// A budget's limit as typed: credits in the deployment's unit, or for a frequency cap a
/// count of actions.
fn budget_limit(
    text: &str,
    unit: &app::domain::CreditUnit,
    counts_actions: bool,
) -> Result<app::domain::Credits, AppError> {
    let parsed = if counts_actions {
        app::domain::Credits::parse(text).map_err(|_| "enter a whole number of actions".to_owned())
    } else {
        unit.parse_amount(text)
    };
    match parsed {
        Ok(limit) if !limit.is_zero() => Ok(limit),
        Ok(_) => Err(AppError::Invalid("Limit: enter a limit above zero.".into())),
        Err(e) => Err(AppError::Invalid(format!("Limit: {e}."))),
    }
}

fn enforcement(text: &str) -> Result<Enforcement, AppError> {
    Enforcement::parse(text.trim()).ok_or_else(|| AppError::Invalid("Choose hard or soft.".into()))
}

/// Maps budget failures to what a person can act on.
fn spend_error(err: SpendError) -> AppError {
    match err {
        SpendError::Invalid(message) | SpendError::Conflict(message) => {
            AppError::Invalid(app::format::capitalised(&message))
        }
        SpendError::NotFound => AppError::NotFound,
        SpendError::Store(err) => internal(err),
    }
}

fn api_key_view(key: crate::accounts::ApiKeyRecord) -> ApiKeyView {
    ApiKeyView {
        id: key.id,
        name: key.name,
        created_at: crate::clock::to_datetime(key.created_at),
        last_used_at: key.last_used_at.map(crate::clock::to_datetime),
        revoked_at: key.revoked_at.map(crate::clock::to_datetime),
    }
}

/// The signed-in person of a session token, with the workspace the session is in and
/// every workspace they belong to; `None` for an unknown or expired session, or one whose
/// membership was removed since it began. (The page guard resolves it once per page
/// request; the page's server functions reuse that.)
#[tracing::instrument(skip_all)]
pub async fn viewer_of(
    store: &Store,
    session_token: &str,
    now: crate::clock::Millis,
    unit: &app::domain::CreditUnit,
) -> Result<Option<Viewer>, StoreError> {
    let Some((session, memberships)) = store.signed_in(session_token, now).await? else {
        return Ok(None);
    };
    let Some(current) = memberships
        .iter()
        .find(|m| m.workspace.id == session.workspace_id)
        .cloned()
    else {
        // The membership was removed since the session began.
        return Ok(None);
    };
    let pool = store
        .pool_seen_by(
            &current.workspace.id,
            current.workspace.member_view,
            current.role,
            current.project.as_deref(),
        )
        .await?
        .map(|p| views::pool_line(&p));
    let choice = |m: &crate::accounts::Membership| WorkspaceChoice {
        id: m.workspace.id.clone(),
        name: m.workspace.name.clone(),
        role: m.role,
    };
    Ok(Some(Viewer {
        user_id: session.user_id,
        email: session.email,
        role: current.role,
        workspace: choice(&current),
        workspaces: memberships.iter().map(choice).collect(),
        can_manage_billing: current
            .role
            .can_manage_billing(current.workspace.billing_managers),
        who_can_buy: current.workspace.billing_managers.who_can_buy().to_owned(),
        back_to: session.return_url.and_then(|u| {
            let label = url::Url::parse(&u).ok()?.host_str()?.to_owned();
            Some(app::billing::BackLink { url: u, label })
        }),
        pool,
        unit: unit.clone(),
    }))
}

/// Maps payment failures to what a person can act on.
fn payment_error(err: PaymentsError) -> AppError {
    match err {
        PaymentsError::UnknownPack => {
            AppError::Invalid("That pack is no longer on sale. Choose another one.".into())
        }
        PaymentsError::UnknownPurchase => AppError::NotFound,
        PaymentsError::Invalid(message) => AppError::Invalid(message),
        PaymentsError::PlanRequired(why) => AppError::Invalid(why.to_owned()),
        PaymentsError::Gateway(GatewayError::Unavailable(detail)) => {
            tracing::warn!(%detail, "payment provider unavailable");
            AppError::Invalid(
                "The payment provider could not be reached. Nothing was charged; please try again in a minute.".into(),
            )
        }
        other => internal(other),
    }
}

fn saved_card(card: CardOnFile) -> SavedCard {
    SavedCard {
        id: card.id,
        brand: card.brand,
        last4: card.last4,
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        is_default: card.is_default,
    }
}

fn purchase_view(p: PurchaseRecord) -> Result<PurchaseView, AppError> {
    let amount = Currency::parse(&p.currency)
        .ok()
        .and_then(|c| Money::new(p.amount_minor, c).ok())
        .ok_or_else(|| internal(format!("purchase {} has a bad amount", p.id)))?;
    let credits = |n: i64| Credits::new(n).map_err(|e| internal(format!("purchase {}: {e}", p.id)));
    Ok(PurchaseView {
        created_at: crate::clock::to_datetime(p.created_at),
        origin: p.origin,
        description: p.description.clone(),
        credits: credits(p.credits)?,
        bonus: credits(p.bonus_credits)?,
        amount,
        status: p.status,
        payment_method: p.payment_method.clone(),
        receipt_url: p.receipt_url.clone(),
        failure_reason: p.failure_reason.clone(),
        reversed_credits: credits(p.reversed_credits)?,
        id: p.id,
    })
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        internal(err)
    }
}
