//! Buying credits: the pack catalog, checkout through the payment gateway, and turning each
//! confirmed payment into credits exactly once.
//!
//! The browser never grants credits: a purchase is credited only when Stripe says, through a
//! signed webhook or when Tally re-reads the payment from Stripe, that it was paid, and then
//! in the one transaction that also records the event and locks the purchase.

pub mod auto_reload;
pub mod cards;
pub mod emulator;
pub mod gateway;
pub mod saved_cards;
mod store;
pub mod stripe;
pub mod subscriptions;

pub use gateway::{
    CardOnFile, CheckoutRequest, GatewayError, InvoiceSnapshot, OffSessionCharge, OpenCheckout,
    PaymentGateway, PaymentSnapshot, SubscriptionSnapshot,
};
pub use store::{Applied, NewPurchase, PackRecord, PurchaseRecord};

use crate::clock::Clock;
use crate::clock::Millis;
use crate::db::{Reads, Store, StoreError};
use crate::ledger::LedgerError;
use app::domain::{
    best_value, bonus_at, price_per_thousand, Credits, Currency, Money, PurchaseOrigin, Storefront,
    WorkspaceId,
};
use std::sync::Arc;

/// Errors of the payments layer.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("no such pack")]
    UnknownPack,
    #[error("no such purchase")]
    UnknownPurchase,
    #[error("{0}")]
    Invalid(String),
    /// The deployment sells credits to workspaces on a paid plan only; the sentence says so.
    #[error("{0}")]
    PlanRequired(&'static str),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<StoreError> for PaymentsError {
    fn from(err: StoreError) -> Self {
        PaymentsError::Ledger(LedgerError::Store(err))
    }
}

/// Buying credits, for one Tally instance.
#[derive(Clone)]
pub struct Payments {
    store: Store,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
    webhook_secret: Arc<str>,
    /// How this deployment sells credits.
    storefront: Arc<Storefront>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The webhook signing secret is left out.
        f.debug_struct("Payments")
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// What to buy, resolved against the catalog.
#[derive(Clone, Debug)]
pub struct Offer {
    pub origin: PurchaseOrigin,
    pub pack_id: Option<String>,
    pub description: String,
    pub credits: Credits,
    pub bonus: Credits,
    pub price: Money,
}

impl Payments {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
        webhook_secret: &str,
    ) -> Payments {
        Payments {
            store,
            clock,
            gateway,
            webhook_secret: webhook_secret.into(),
            storefront: Arc::new(Storefront::default()),
        }
    }

    /// The same, selling on `storefront`'s terms.
    pub fn with_storefront(self, storefront: Storefront) -> Payments {
        Payments {
            storefront: Arc::new(storefront),
            ..self
        }
    }

    /// How this deployment sells credits.
    pub fn storefront(&self) -> &Storefront {
        &self.storefront
    }

    /// Why the workspace may not buy credits now, under the deployment's buying policy;
    /// `None` when it may.
    pub async fn buying_refusal(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<&'static str>, PaymentsError> {
        if self.storefront.buying == app::domain::BuyingPolicy::AnyWorkspace {
            // Nothing to look up.
            return Ok(None);
        }
        self.buying_refusal_in(&mut self.store.reads().await?, workspace)
            .await
    }

    /// [`Payments::buying_refusal`], read on a page's connection.
    pub async fn buying_refusal_in(
        &self,
        reads: &mut Reads,
        workspace: &WorkspaceId,
    ) -> Result<Option<&'static str>, PaymentsError> {
        if self.storefront.buying == app::domain::BuyingPolicy::AnyWorkspace {
            return Ok(None);
        }
        let plan = reads.subscription_of(workspace).await?;
        Ok(self.storefront.refusal(plan.map(|s| s.status)))
    }

    pub fn gateway(&self) -> &dyn PaymentGateway {
        self.gateway.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The secret webhook signatures are checked with.
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The packs on sale now, with their current bonus, price per 1,000 credits and the best
    /// value marked (per currency).
    pub async fn offers(
        &self,
        reads: &mut Reads,
    ) -> Result<Vec<(PackRecord, Offer, Money, bool)>, PaymentsError> {
        let now = self.now();
        let packs = reads.active_packs().await?;
        let mut offers = Vec::new();
        for pack in packs {
            let offer = self.pack_offer(&pack, now)?;
            let per = price_per_thousand(
                &offer.price,
                offer
                    .credits
                    .checked_add(offer.bonus)
                    .unwrap_or(offer.credits),
            );
            offers.push((pack, offer, per, false));
        }
        let mut currencies: Vec<Currency> = offers
            .iter()
            .map(|o| o.1.price.currency().clone())
            .collect();
        currencies.dedup();
        for currency in currencies {
            let indexes: Vec<usize> = (0..offers.len())
                .filter(|&i| offers[i].1.price.currency() == &currency)
                .collect();
            let priced: Vec<(Money, Credits)> = indexes
                .iter()
                .map(|&i| {
                    let o = &offers[i].1;
                    (
                        o.price.clone(),
                        o.credits.checked_add(o.bonus).unwrap_or(o.credits),
                    )
                })
                .collect();
            if let Some(best) = best_value(&priced) {
                offers[indexes[best]].3 = true;
            }
        }
        Ok(offers)
    }

    /// A pack on sale as an Auto-reload buys it now; `None` when it is not on sale.
    pub async fn pack_deal(
        &self,
        id: &str,
    ) -> Result<Option<app::domain::PackDeal>, PaymentsError> {
        let Some(pack) = self.store.pack(id).await?.filter(|p| p.active) else {
            return Ok(None);
        };
        let offer = self.pack_offer(&pack, self.now())?;
        Ok(Some(app::domain::PackDeal {
            name: pack.name.clone(),
            credits: offer.credits,
            bonus: offer.bonus,
            price: offer.price,
        }))
    }

    fn pack_offer(&self, pack: &PackRecord, now: Millis) -> Result<Offer, PaymentsError> {
        let corrupt = |what: &str| {
            PaymentsError::from(StoreError::Corrupt(format!("pack {}: {what}", pack.id)))
        };
        let credits = Credits::positive(pack.credits).map_err(|_| corrupt("credits"))?;
        let bonus = bonus_at(
            Credits::new(pack.bonus_credits).map_err(|_| corrupt("bonus"))?,
            pack.bonus_starts_at,
            pack.bonus_ends_at,
            now,
        );
        let price = Money::new(
            pack.price_minor,
            Currency::parse(&pack.currency).map_err(|_| corrupt("currency"))?,
        )
        .map_err(|_| corrupt("price"))?;
        Ok(Offer {
            origin: PurchaseOrigin::Pack,
            pack_id: Some(pack.id.clone()),
            description: format!(
                "{} pack: {}",
                pack.name,
                self.storefront.unit.bought(credits)
            ),
            credits,
            bonus,
            price,
        })
    }

    /// Resolves a choice against the catalog (an inactive pack cannot be bought).
    pub async fn offer(
        &self,
        choice: &app::purchases::PurchaseChoice,
    ) -> Result<Offer, PaymentsError> {
        match choice {
            app::purchases::PurchaseChoice::Pack(id) => {
                let pack = self
                    .store
                    .pack(id)
                    .await?
                    .filter(|p| p.active)
                    .ok_or(PaymentsError::UnknownPack)?;
                self.pack_offer(&pack, self.now())
            }
            app::purchases::PurchaseChoice::Custom(credits) => {
                let terms = &self.storefront.custom;
                let price = terms.price(*credits).map_err(|e| {
                    let reason = e.explain(&self.storefront.unit);
                    PaymentsError::Invalid(format!("Custom amount: {reason}."))
                })?;
                Ok(Offer {
                    origin: PurchaseOrigin::Custom,
                    pack_id: None,
                    description: format!(
                        "Custom amount: {}",
                        self.storefront.unit.bought(*credits)
                    ),
                    credits: *credits,
                    bonus: Credits::ZERO,
                    price,
                })
            }
        }
    }

    /// The workspace's Stripe customer, created on first use. The idempotency key is the
    /// workspace id, so two instances creating it at once get one customer from Stripe.
    pub async fn customer(
        &self,
        workspace: &WorkspaceId,
        name: &str,
    ) -> Result<String, PaymentsError> {
        if let Some(id) = self.store.stripe_customer(workspace).await? {
            return Ok(id);
        }
        let created = self
            .gateway
            .create_customer(
                workspace.as_str(),
                name,
                &format!("tally-customer-{workspace}"),
            )
            .await?;
        Ok(self
            .store
            .save_stripe_customer(workspace, &created, self.now())
            .await?)
    }

    /// Opens a checkout for an offer. The purchase is recorded first (as `open`), so a
    /// checkout is never without its purchase.
    pub async fn start_checkout(
        &self,
        workspace: &WorkspaceId,
        workspace_name: &str,
        buyer: &str,
        offer: &Offer,
        origin: &str,
    ) -> Result<(PurchaseRecord, OpenCheckout), PaymentsError> {
        if let Some(why) = self.buying_refusal(workspace).await? {
            return Err(PaymentsError::PlanRequired(why));
        }
        let customer = self.customer(workspace, workspace_name).await?;
        let purchase = self
            .store
            .create_purchase(
                &NewPurchase {
                    workspace_id: workspace.clone(),
                    origin: offer.origin,
                    pack_id: offer.pack_id.clone(),
                    description: offer.description.clone(),
                    credits: offer.credits,
                    bonus_credits: offer.bonus,
                    amount_minor: offer.price.amount_minor(),
                    currency: offer.price.currency().as_str().to_owned(),
                    created_by: buyer.to_owned(),
                },
                self.now(),
            )
            .await?;
        let open = self
            .open_checkout(
                &purchase,
                customer,
                origin,
                &format!("tally-checkout-{}", purchase.id),
            )
            .await?;
        Ok((purchase, open))
    }

    /// Opens a checkout for an existing purchase; if it cannot be opened, an unpaid purchase
    /// is marked failed.
    async fn open_checkout(
        &self,
        purchase: &PurchaseRecord,
        customer: String,
        origin: &str,
        idempotency_key: &str,
    ) -> Result<OpenCheckout, PaymentsError> {
        let page = format!("{origin}/billing/purchases/{}", purchase.id);
        let request = CheckoutRequest {
            customer_id: customer,
            purchase_id: purchase.id.clone(),
            workspace_id: purchase.workspace_id.to_string(),
            description: purchase.description.clone(),
            amount_minor: purchase.amount_minor,
            currency: purchase.currency.clone(),
            success_url: format!("{page}?session_id={{CHECKOUT_SESSION_ID}}"),
            cancel_url: format!("{page}?canceled=1"),
            idempotency_key: idempotency_key.to_owned(),
        };
        match self.gateway.create_checkout(&request).await {
            Ok(open) => {
                self.store
                    .set_checkout_session(&purchase.id, &open.session_id, self.now())
                    .await?;
                Ok(open)
            }
            Err(err) => {
                self.store
                    .fail_unopened_purchase(
                        &purchase.id,
                        "The checkout could not be opened. Nothing was charged.",
                        self.now(),
                    )
                    .await?;
                Err(err.into())
            }
        }
    }

    /// Opens a checkout where a billing manager confirms a reload that the bank wanted the
    /// cardholder to authenticate. Paying it credits the reload's purchase, once. A checkout
    /// already open for it is handed out again, so two clicks (or two people) never open two
    /// payments for one reload; a new one is opened only when the last one closed unpaid.
    pub async fn confirm_reload(
        &self,
        workspace: &WorkspaceId,
        workspace_name: &str,
        origin: &str,
    ) -> Result<(PurchaseRecord, OpenCheckout), PaymentsError> {
        let attempt = self
            .store
            .last_reload_attempt(workspace)
            .await?
            .filter(|a| a.status == auto_reload::AttemptStatus::RequiresAction)
            .ok_or_else(|| {
                PaymentsError::Invalid("No Auto-reload payment is waiting for confirmation.".into())
            })?;
        let purchase = match &attempt.purchase_id {
            Some(id) => self.store.purchase(workspace, id).await?,
            None => None,
        }
        .ok_or(PaymentsError::UnknownPurchase)?;
        // Only a reload still waiting for its money may be paid again: a paid one (even one
        // reversed since) would be charged twice.
        if !matches!(
            purchase.status,
            app::domain::PurchaseStatus::Open
                | app::domain::PurchaseStatus::Failed
                | app::domain::PurchaseStatus::Canceled
        ) {
            return Err(PaymentsError::Invalid(
                "That reload is already paid.".into(),
            ));
        }
        if let Some(session) = &purchase.checkout_session_id {
            if let Some(open) = self.gateway.open_checkout(session).await? {
                return Ok((purchase, open));
            }
        }
        let customer = self.customer(workspace, workspace_name).await?;
        // The key names the checkout it replaces: two requests racing here open one.
        let key = format!(
            "tally-confirm-{}-after-{}",
            purchase.id,
            purchase.checkout_session_id.as_deref().unwrap_or("none")
        );
        let open = self
            .open_checkout(&purchase, customer, origin, &key)
            .await?;
        Ok((purchase, open))
    }

    /// Re-reads a purchase's payment from Stripe and applies it (no event involved). Used by
    /// the reconciliation job and after an abandoned checkout.
    pub async fn sync(&self, purchase: &PurchaseRecord) -> Result<Applied, PaymentsError> {
        let snapshot = match (&purchase.payment_intent_id, &purchase.checkout_session_id) {
            (_, Some(session)) => self.gateway.checkout_payment(session).await?,
            (Some(intent), None) => self.gateway.payment(intent).await?,
            (None, None) => {
                return Err(PaymentsError::Invalid("the purchase has no payment".into()))
            }
        };
        self.store
            .apply_payment(&purchase.id, None, &snapshot, self.now())
            .await
    }

    /// Closes an unpaid checkout and records the outcome. A checkout paid in the meantime is
    /// credited instead.
    pub async fn abandon(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<PurchaseRecord, PaymentsError> {
        let purchase = self
            .store
            .purchase(workspace, id)
            .await?
            .ok_or(PaymentsError::UnknownPurchase)?;
        if purchase.status == app::domain::PurchaseStatus::Open {
            if let Some(session) = &purchase.checkout_session_id {
                // Refused when the session was paid or expired already; the sync below reads
                // whichever it is.
                if let Err(err) = self.gateway.expire_checkout(session).await {
                    tracing::info!(error = %err, purchase = %purchase.id, "checkout not expired");
                }
            }
        }
        if purchase.status.is_pending() {
            if let Err(err) = self.sync(&purchase).await {
                tracing::warn!(error = %err, purchase = %purchase.id, "could not re-read an abandoned checkout");
            }
        }
        self.store
            .purchase(workspace, id)
            .await?
            .ok_or(PaymentsError::UnknownPurchase)
    }

    /// Re-reads purchases still waiting for a payment after a quiet while, so a lost webhook
    /// never leaves a paid purchase uncredited. Returns how many changed.
    pub async fn reconcile(&self, quiet_for: Millis) -> Result<usize, PaymentsError> {
        let stale = self
            .store
            .unsettled_purchases(self.now() - quiet_for, 50)
            .await?;
        let mut changed = 0;
        for purchase in stale {
            match self.sync(&purchase).await {
                Ok(Applied::Step(app::domain::PurchaseStep::Nothing, _)) => {
                    // Touch it so the next round looks at others first.
                    self.store.touch_purchase(&purchase.id, self.now()).await?;
                }
                Ok(_) => changed += 1,
                Err(err) => {
                    tracing::warn!(error = %err, purchase = %purchase.id, "reconciliation could not read a payment")
                }
            }
        }
        Ok(changed)
    }
}
