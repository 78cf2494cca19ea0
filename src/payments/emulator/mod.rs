//! The embedded Stripe test-mode emulator.
//!
//! With no `STRIPE_SECRET_KEY`, Tally serves the part of Stripe's HTTP API that its gateway
//! uses under `/_stripe/v1/`, a hosted checkout page under `/_stripe/checkout/`, and delivers
//! signed events to its own `/webhooks/stripe` (and to any endpoint registered with
//! `POST /v1/webhook_endpoints`). The gateway talks to it with the same async-stripe client
//! it uses for Stripe, so the demo, the tests and production share one payment path. Objects
//! are kept as JSON in the database, so they outlive restarts and every instance on one
//! database sees the same ones.
//!
//! It plays Stripe's published test cards and test payment methods (see [`super::cards`]);
//! any other number is refused, and no money moves.
//!
//! One file per Stripe resource: [`customers`], [`payment_methods`], [`payment_intents`],
//! [`checkout`], [`subscriptions`] (with invoices), [`events`] (and their delivery), and
//! [`hosted`] (the pages a browser sees). Every API handler takes a [`request::Call`]: the
//! authorised, parsed and (when asked) idempotent request.

mod checkout;
mod customers;
mod error;
mod events;
mod hosted;
mod objects;
mod page;
mod payment_intents;
mod payment_methods;
mod request;
mod store;
mod subscriptions;

use crate::clock::Clock;
use crate::db::{Store, StoreError};
use crate::routing::RouteBook;
use error::EmuError;
use request::Call;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How the emulator reaches the outside world.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where browsers reach this server (`http://127.0.0.1:3000`), for checkout and receipt
    /// links.
    pub public_base: String,
    /// `TALLY_PUBLIC_URL`, when set: return addresses must be on it. Without it they must be
    /// on the host the browser used for the payment page.
    pub site_url: Option<String>,
    /// Where events are delivered.
    pub webhook_url: String,
    pub webhook_secret: String,
    /// The only API key the emulator accepts: Tally's own gateway holds it.
    pub api_key: String,
    /// How long after the change an event is sent (Stripe's are a little late too).
    pub delivery_delay: Duration,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key and the signing secret never reach a log.
        f.debug_struct("EmulatorConfig")
            .field("public_base", &self.public_base)
            .field("site_url", &self.site_url)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &"(hidden)")
            .field("api_key", &"(hidden)")
            .field("delivery_delay", &self.delivery_delay)
            .finish()
    }
}

/// Test mode's secrets, made once per database (see [`Emulator::secrets`]).
#[derive(Clone)]
pub struct TestModeSecrets {
    /// The emulator's API key (`sk_test_…`), for Tally's gateway only.
    pub api_key: String,
    /// The signing secret of the emulator's events (`whsec_…`).
    pub webhook_secret: String,
}

/// The kinds of object the emulator keeps. Every lookup names one, so an id of one kind (or
/// a stored idempotency answer) is never served as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Customer,
    CheckoutSession,
    /// A checkout session's line items (Stripe serves them apart, or under `expand[]`).
    LineItems,
    PaymentIntent,
    PaymentMethod,
    /// The emulator's own notes (which test card a payment method is, what a checkout's
    /// payment will carry): kept beside the objects, never served.
    Note,
    Charge,
    Dispute,
    Event,
    WebhookEndpoint,
    Subscription,
    Invoice,
    /// A pending or invoiced invoice item (a subscription's proration).
    InvoiceItem,
    /// The stored answer of an idempotent request.
    Idempotency,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::CheckoutSession => "checkout_session",
            Kind::LineItems => "line_items",
            Kind::PaymentIntent => "payment_intent",
            Kind::PaymentMethod => "payment_method",
            Kind::Note => "note",
            Kind::Charge => "charge",
            Kind::Dispute => "dispute",
            Kind::Event => "event",
            Kind::WebhookEndpoint => "webhook_endpoint",
            Kind::Subscription => "subscription",
            Kind::Invoice => "invoice",
            Kind::InvoiceItem => "invoiceitem",
            Kind::Idempotency => "idempotency",
        }
    }

    /// The object's name in Stripe's "No such …" messages.
    fn object_name(self) -> &'static str {
        match self {
            Kind::CheckoutSession => "checkout.session",
            Kind::PaymentMethod => "PaymentMethod",
            other => other.as_str(),
        }
    }
}

/// The emulator's state (cheap to clone: it shares its parts).
#[derive(Clone, Debug)]
pub struct Emulator {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EmulatorConfig,
    http: reqwest::Client,
    /// Serialises the emulator's read-modify-write of its objects within this process. The
    /// emulator is a test-mode stand-in; the ledger itself never relies on in-process locks.
    writes: Arc<tokio::sync::Mutex<()>>,
}

/// What an API handler answers: a Stripe object, or a Stripe error.
type Emu = Result<axum::Json<Value>, EmuError>;

/// The emulator's routes, nested under `/_stripe` by the router.
pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .merge(customers::routes())
        .merge(payment_methods::routes())
        .merge(payment_intents::routes())
        .merge(checkout::routes())
        .merge(subscriptions::routes())
        .merge(events::routes())
        .merge(hosted::routes())
        .any("/v1/{*rest}", unknown_url)
        .method_not_allowed(unknown_url)
}

/// What the emulator's routes carry: the emulator, when test mode is on.
pub type EmulatorState = Option<Arc<Emulator>>;

/// Stripe answers a URL it does not serve (or a method a URL does not take) with a JSON 404,
/// so a client raises its usual "invalid request" error rather than failing to read a page.
async fn unknown_url(call: Call) -> EmuError {
    EmuError::unknown_url(call.method(), call.path())
}

impl Emulator {
    /// An emulator on `store`, sending events as `config` says.
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: EmulatorConfig) -> Emulator {
        Emulator {
            store,
            clock,
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("a plain HTTP client builds"),
            writes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Test mode's API key and signing secret, made at the first start on a database (so
    /// every instance on it agrees) and read back afterwards.
    pub async fn secrets(store: &Store) -> Result<TestModeSecrets, StoreError> {
        Ok(TestModeSecrets {
            api_key: store::secret(store, "api_key", "sk_test_").await?,
            webhook_secret: store::secret(store, "webhook_secret", "whsec_").await?,
        })
    }

    fn now_secs(&self) -> i64 {
        self.clock.now_ms() / 1000
    }
}
