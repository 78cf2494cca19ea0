//! The payment gateway: the few things Tally asks of Stripe, behind one small trait.
//! [`super::stripe::StripeGateway`] is the only implementation; it talks to Stripe, to the
//! embedded test-mode emulator, or to any fake Stripe at `STRIPE_API_BASE`.

use crate::clock::Millis;
use app::domain::PaymentObservation;

/// A checkout to open for one purchase.
#[derive(Clone, Debug)]
pub struct CheckoutRequest {
    pub customer_id: String,
    pub purchase_id: String,
    pub workspace_id: String,
    /// The line item's name ("Growth pack: 25,000 AI credits").
    pub description: String,
    pub amount_minor: i64,
    pub currency: String,
    pub success_url: String,
    pub cancel_url: String,
    /// Makes a retried request open the same checkout.
    pub idempotency_key: String,
}

/// An open checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCheckout {
    pub session_id: String,
    /// The hosted payment page.
    pub url: String,
}

/// A charge of a saved card while the customer is away (Auto-reload).
#[derive(Clone, Debug)]
pub struct OffSessionCharge {
    pub customer_id: String,
    pub payment_method_id: String,
    pub purchase_id: String,
    pub workspace_id: String,
    pub description: String,
    pub amount_minor: i64,
    pub currency: String,
    /// The same key for every try of one reload, so it is charged at most once.
    pub idempotency_key: String,
}

/// What the provider says about a payment, read from the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentSnapshot {
    pub payment_intent_id: Option<String>,
    pub observation: PaymentObservation,
    /// The purchase the payment was made for (from its metadata).
    pub purchase_id: Option<String>,
    pub workspace_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// "Visa •••• 4242".
    pub payment_method: Option<String>,
    pub receipt_url: Option<String>,
    /// The bank wants the cardholder to authenticate this payment: Stripe says so with an
    /// `authentication_required` decline (off session, the intent back in
    /// `requires_payment_method`) or an intent in `requires_action`.
    pub needs_authentication: bool,
}

/// A card saved with the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardOnFile {
    pub id: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub is_default: bool,
}

/// A subscription as the provider reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub id: String,
    pub customer_id: String,
    /// The provider's status word (`trialing`, `active`, `past_due`, `canceled`, …).
    pub status: String,
    /// Tally's plan, from the price's `tally_plan` metadata or its lookup key.
    pub plan_id: Option<String>,
    pub seats: u32,
    /// `month` or `year`.
    pub interval: String,
    pub current_period_start: Millis,
    pub current_period_end: Millis,
    pub cancel_at_period_end: bool,
}

/// An invoice as the provider reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceSnapshot {
    pub id: String,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    /// The provider's status word (`draft`, `open`, `paid`, `void`, …).
    pub status: String,
    /// What the invoice charges for its seats' period, in minor units, before any customer
    /// balance pays part of it: zero for a trial.
    pub charged: i64,
    /// Seats the invoice charges for (its largest charged line's quantity).
    pub seats: u32,
    /// The service period its charged lines cover.
    pub period_start: Millis,
    pub period_end: Millis,
}

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused the request itself (bad parameters, unknown object, bad key).
    #[error("the payment provider refused the request: {0}")]
    Rejected(String),
    /// No such object at the provider.
    #[error("the payment provider has no such object: {0}")]
    NotFound(String),
    /// The provider could not be reached or answered with something unreadable; the same
    /// request may work later.
    #[error("the payment provider could not be reached: {0}")]
    Unavailable(String),
}

/// The payment provider, as Tally uses it.
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync + std::fmt::Debug {
    /// Payments are in test mode (no real money moves).
    fn test_mode(&self) -> bool;

    /// Creates the provider's customer for a workspace. The idempotency key makes a retry,
    /// or a second instance racing, get the same customer.
    async fn create_customer(
        &self,
        workspace_id: &str,
        workspace_name: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError>;

    /// Opens a hosted checkout that charges once and saves the card for later.
    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
    ) -> Result<OpenCheckout, GatewayError>;

    /// The current state of a checkout's payment.
    async fn checkout_payment(&self, session_id: &str) -> Result<PaymentSnapshot, GatewayError>;

    /// The payment page of a checkout that can still be paid; `None` once it is paid,
    /// expired or closed.
    async fn open_checkout(&self, session_id: &str) -> Result<Option<OpenCheckout>, GatewayError>;

    /// Closes an unpaid checkout so it can no longer be paid.
    async fn expire_checkout(&self, session_id: &str) -> Result<(), GatewayError>;

    /// The current state of a payment.
    async fn payment(&self, payment_intent_id: &str) -> Result<PaymentSnapshot, GatewayError>;

    /// Charges a saved card off-session. A decline is an `Ok` snapshot with a `Failed`
    /// observation; only a request the provider could not take is an error.
    async fn charge_off_session(
        &self,
        charge: &OffSessionCharge,
    ) -> Result<PaymentSnapshot, GatewayError>;

    /// The customer's saved cards, the default first.
    async fn cards(&self, customer_id: &str) -> Result<Vec<CardOnFile>, GatewayError>;

    /// The current state of a subscription.
    async fn subscription(&self, id: &str) -> Result<SubscriptionSnapshot, GatewayError>;

    /// The current state of an invoice.
    async fn invoice(&self, id: &str) -> Result<InvoiceSnapshot, GatewayError>;
}
