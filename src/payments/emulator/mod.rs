//! The embedded Stripe test-mode emulator.
//!
//! With no `STRIPE_SECRET_KEY`, Tally serves the part of Stripe's HTTP API that its gateway
//! uses under `/_stripe/v1/`, a hosted checkout page under `/_stripe/checkout/`, and delivers
//! signed events to its own `/webhooks/stripe`. The gateway talks to it with the same
//! async-stripe client it uses for Stripe, so the demo, the tests and production share one
//! payment path. Objects are kept as JSON in the database, so they outlive restarts and every
//! instance on one database sees the same ones.
//!
//! It plays Stripe's published test cards (see [`super::cards`]); any other number is
//! refused, and no money moves.

mod objects;
mod page;
mod subscriptions;

use super::cards::{self, CardBehaviour};
use crate::clock::Clock;
use crate::db::{new_id, Store, StoreError};
use crate::routing::RouteBook;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::BTreeMap;
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
    PaymentIntent,
    PaymentMethod,
    Charge,
    Dispute,
    Event,
    Subscription,
    Invoice,
    /// The stored answer of an idempotent request.
    Idempotency,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::CheckoutSession => "checkout_session",
            Kind::PaymentIntent => "payment_intent",
            Kind::PaymentMethod => "payment_method",
            Kind::Charge => "charge",
            Kind::Dispute => "dispute",
            Kind::Event => "event",
            Kind::Subscription => "subscription",
            Kind::Invoice => "invoice",
            Kind::Idempotency => "idempotency",
        }
    }

    /// The object's name in Stripe's "No such …" messages.
    fn object_name(self) -> &'static str {
        match self {
            Kind::CheckoutSession => "checkout.session",
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

/// An error in Stripe's shape.
#[derive(Debug)]
pub(crate) struct EmuError {
    status: StatusCode,
    body: Value,
}

impl EmuError {
    fn invalid(message: impl Into<String>) -> Self {
        EmuError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": {"type": "invalid_request_error", "message": message.into()}}),
        }
    }

    fn missing(what: &str, id: &str) -> Self {
        EmuError {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                "message": format!("No such {what}: '{id}'")}}),
        }
    }

    fn card(code: &str, decline_code: &str, payment_intent: &Value) -> Self {
        EmuError {
            status: StatusCode::PAYMENT_REQUIRED,
            body: json!({"error": {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": cards::decline_message(decline_code),
                "payment_intent": payment_intent,
            }}),
        }
    }
}

impl From<StoreError> for EmuError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "test-mode emulator storage failed");
        EmuError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({"error": {"type": "api_error", "message": "The test-mode emulator could not store its data."}}),
        }
    }
}

impl From<sqlx::Error> for EmuError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err).into()
    }
}

impl IntoResponse for EmuError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A Stripe form body (`metadata[key]=value`, `line_items[0][quantity]=1`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> Result<&str, EmuError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| EmuError::invalid(format!("Missing required param: {key}.")))
    }

    fn int(&self, key: &str) -> Result<Option<i64>, EmuError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| EmuError::invalid(format!("Invalid integer: {key}")))
            })
            .transpose()
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    /// The map under `prefix[...]`, e.g. `metadata`.
    fn map(&self, prefix: &str) -> BTreeMap<String, String> {
        let start = format!("{prefix}[");
        self.0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&start)
                    .and_then(|rest| rest.strip_suffix(']'))
                    .filter(|key| !key.contains('['))
                    .map(|key| (key.to_owned(), v.clone()))
            })
            .collect()
    }

    /// Values of a list parameter such as `expand[]` or `expand[0]`.
    fn list(&self, name: &str) -> Vec<&str> {
        let bracket = format!("{name}[");
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.starts_with(&bracket))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

type Emu = Result<Json<Value>, EmuError>;

/// The emulator's routes, nested under `/_stripe` by the router.
pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .post("/v1/customers", create_customer)
        .get("/v1/customers/{id}", get_customer)
        .get(
            "/v1/customers/{id}/payment_methods",
            list_customer_payment_methods,
        )
        .post("/v1/checkout/sessions", create_checkout_session)
        .get("/v1/checkout/sessions/{id}", get_checkout_session)
        .post("/v1/checkout/sessions/{id}/expire", expire_checkout_session)
        .post("/v1/payment_intents", create_payment_intent)
        .get("/v1/payment_intents/{id}", get_payment_intent)
        .get("/v1/payment_methods", list_payment_methods)
        .get("/v1/events/{id}", get_event)
        .post("/v1/test_helpers/charges/{id}/dispute", dispute_charge)
        .get("/checkout/{id}", checkout_page)
        .post("/checkout/{id}", pay_checkout)
        .get("/receipts/{id}", receipt_page)
        .merge(subscriptions::routes())
}

/// What the emulator's routes carry: the emulator, when test mode is on.
pub type EmulatorState = Option<Arc<Emulator>>;

fn emulator(state: &EmulatorState) -> Result<Arc<Emulator>, EmuError> {
    state.clone().ok_or_else(|| EmuError {
        status: StatusCode::NOT_FOUND,
        body: json!({"error": {"type": "invalid_request_error", "message": "The test-mode emulator is off: Tally is using Stripe."}}),
    })
}

/// The emulator, for a request that carries its API key as `Authorization: Bearer …`; any
/// other key (or none) gets Stripe's 401.
fn authorised(state: &EmulatorState, headers: &HeaderMap) -> Result<Arc<Emulator>, EmuError> {
    let emu = emulator(state)?;
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let message = match given {
        Some(key) if crate::accounts::tokens::same_secret(key, &emu.config.api_key) => {
            return Ok(emu)
        }
        Some(_) => "Invalid API Key provided.",
        None => "You did not provide an API key. Provide it in the Authorization header as a Bearer token.",
    };
    Err(EmuError {
        status: StatusCode::UNAUTHORIZED,
        body: json!({"error": {"type": "invalid_request_error", "message": message}}),
    })
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|h| h.to_str().ok())
        .map(|k| format!("idem_{k}"))
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
            api_key: secret(store, "api_key", "sk_test_").await?,
            webhook_secret: secret(store, "webhook_secret", "whsec_").await?,
        })
    }

    fn now_secs(&self) -> i64 {
        self.clock.now_ms() / 1000
    }

    async fn load(&self, kind: Kind, id: &str) -> Result<Option<Value>, EmuError> {
        let row =
            sqlx::query("SELECT body FROM stripe_emulator_objects WHERE id = $1 AND kind = $2")
                .bind(id)
                .bind(kind.as_str())
                .fetch_optional(self.store.pool())
                .await?;
        Ok(match row {
            Some(row) => Some(
                serde_json::from_str(&row.try_get::<String, _>("body")?)
                    .map_err(|e| StoreError::Corrupt(format!("emulator object {id}: {e}")))?,
            ),
            None => None,
        })
    }

    async fn must_load(&self, kind: Kind, id: &str) -> Result<Value, EmuError> {
        self.load(kind, id)
            .await?
            .ok_or_else(|| EmuError::missing(kind.object_name(), id))
    }

    async fn save(
        &self,
        id: &str,
        kind: Kind,
        owner: Option<&str>,
        body: &Value,
    ) -> Result<(), EmuError> {
        sqlx::query(
            "INSERT INTO stripe_emulator_objects (id, kind, owner, body, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, owner = excluded.owner",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(owner)
        .bind(body.to_string())
        .bind(self.clock.now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    async fn list(&self, kind: Kind, owner: &str) -> Result<Vec<Value>, EmuError> {
        let rows = sqlx::query(
            "SELECT body FROM stripe_emulator_objects WHERE owner = $1 AND kind = $2 ORDER BY created_at DESC, id",
        )
        .bind(owner)
        .bind(kind.as_str())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let body: String = row.try_get("body")?;
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("emulator object: {e}")).into())
            })
            .collect()
    }

    /// Replays the stored answer of an idempotent request, or runs it and stores its answer.
    /// It runs under the emulator's write lock, so two requests racing with one key get one
    /// object, as at Stripe.
    async fn idempotent<F, Fut>(&self, key: Option<String>, run: F) -> Emu
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Emu>,
    {
        let _guard = self.writes.lock().await;
        if let Some(key) = &key {
            if let Some(stored) = self.load(Kind::Idempotency, key).await? {
                return Ok(Json(stored));
            }
        }
        let Json(answer) = run().await?;
        if let Some(key) = &key {
            self.save(key, Kind::Idempotency, None, &answer).await?;
        }
        Ok(Json(answer))
    }

    /// Records an event and delivers it, signed, after the configured delay.
    async fn emit(
        &self,
        event_type: &str,
        object: &Value,
        delay_steps: u32,
    ) -> Result<(), EmuError> {
        let event = objects::event(&new_id("evt"), event_type, object, self.now_secs());
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        self.save(&id, Kind::Event, None, &event).await?;
        let payload = event.to_string();
        let http = self.http.clone();
        let url = self.config.webhook_url.clone();
        let secret = self.config.webhook_secret.clone();
        let clock = self.clock.clone();
        let delay = self.config.delivery_delay * (delay_steps + 1);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            deliver(&http, &url, &secret, &payload, clock.as_ref()).await;
        });
        Ok(())
    }

    /// Charges a payment intent with a payment method, as a confirmation does. Returns the
    /// updated intent and, for a decline, the decline code.
    async fn confirm(
        &self,
        mut intent: Value,
        method: &Value,
        off_session: bool,
    ) -> Result<(Value, Option<&'static str>), EmuError> {
        let behaviour = method["tally_test_behaviour"]
            .as_str()
            .and_then(cards::test_card)
            .map(|c| c.behaviour)
            .unwrap_or(CardBehaviour::Declines("generic_decline"));
        let pi_id = intent["id"].as_str().unwrap_or_default().to_owned();
        intent["payment_method"] = method["id"].clone();
        let decline = match behaviour {
            CardBehaviour::Declines(code) => Some(code),
            CardBehaviour::AttachesThenDeclines => Some("generic_decline"),
            CardBehaviour::RequiresAuthentication if off_session => Some("authentication_required"),
            _ => None,
        };
        if let Some(code) = decline {
            intent["status"] = json!(if code == "authentication_required" {
                "requires_action"
            } else {
                "requires_payment_method"
            });
            intent["last_payment_error"] = objects::card_error(code, method);
            self.save(
                &pi_id,
                Kind::PaymentIntent,
                intent["customer"].as_str(),
                &intent,
            )
            .await?;
            self.emit("payment_intent.payment_failed", &intent, 0)
                .await?;
            return Ok((intent, Some(code)));
        }
        let charge_id = new_id("ch");
        let charge = objects::charge(
            &charge_id,
            &intent,
            method,
            &format!("{}/_stripe/receipts/{charge_id}", self.config.public_base),
            self.now_secs(),
        );
        self.save(
            &charge_id,
            Kind::Charge,
            intent["customer"].as_str(),
            &charge,
        )
        .await?;
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        intent["latest_charge"] = json!(charge_id);
        intent["last_payment_error"] = Value::Null;
        self.save(
            &pi_id,
            Kind::PaymentIntent,
            intent["customer"].as_str(),
            &intent,
        )
        .await?;
        self.emit("payment_intent.succeeded", &intent, 0).await?;
        if behaviour == CardBehaviour::Disputed {
            // The cardholder disputes the charge a little later, as they do (days later,
            // at Stripe).
            let emulator = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(emulator.config.delivery_delay * 5 + Duration::from_millis(200))
                    .await;
                if let Err(err) = emulator.open_dispute(&charge_id).await {
                    tracing::warn!(?err, "test-mode dispute could not be opened");
                }
            });
        }
        Ok((intent, None))
    }

    /// Marks a charge disputed and announces the dispute.
    async fn open_dispute(&self, charge_id: &str) -> Result<(), EmuError> {
        let _guard = self.writes.lock().await;
        let mut charge = self.must_load(Kind::Charge, charge_id).await?;
        charge["disputed"] = json!(true);
        self.save(
            charge_id,
            Kind::Charge,
            charge["customer"].as_str(),
            &charge,
        )
        .await?;
        let dispute = objects::dispute(&new_id("dp"), &charge, self.now_secs());
        self.save(
            dispute["id"].as_str().unwrap_or_default(),
            Kind::Dispute,
            None,
            &dispute,
        )
        .await?;
        self.emit("charge.dispute.created", &dispute, 0).await
    }

    /// Saves a card typed at the checkout page as a payment method.
    async fn new_card(
        &self,
        card: &cards::TestCard,
        expiry: (u32, u32),
        name: &str,
        customer: Option<&str>,
    ) -> Result<Value, EmuError> {
        let id = new_id("pm");
        let method = objects::payment_method(&id, card, expiry, name, customer, self.now_secs());
        self.save(&id, Kind::PaymentMethod, customer, &method)
            .await?;
        if let Some(customer_id) = customer {
            if let Some(mut customer) = self.load(Kind::Customer, customer_id).await? {
                if customer["invoice_settings"]["default_payment_method"].is_null() {
                    customer["invoice_settings"]["default_payment_method"] = json!(id);
                    self.save(customer_id, Kind::Customer, None, &customer)
                        .await?;
                }
            }
        }
        Ok(method)
    }
}

/// One of test mode's secrets: made with `prefix` and 32 random bytes the first time, then
/// read back. Two instances starting at once agree: the insert keeps the first.
async fn secret(store: &Store, name: &str, prefix: &str) -> Result<String, StoreError> {
    sqlx::query(
        "INSERT INTO test_mode_secrets (name, value, created_at) VALUES ($1, $2, 0) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(crate::accounts::tokens::new_secret(prefix))
    .execute(store.pool())
    .await?;
    Ok(
        sqlx::query("SELECT value FROM test_mode_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(store.pool())
            .await?
            .try_get("value")?,
    )
}

/// Posts one signed event, retrying with growing pauses as Stripe does (a few times here).
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    payload: &str,
    clock: &dyn Clock,
) {
    for attempt in 0..6u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt)).await;
        }
        let signature = stripe_webhook::Webhook::generate_test_header(
            payload,
            secret,
            Some(clock.now_ms() / 1000),
        );
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(payload.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(status = %response.status(), attempt, "test-mode event delivery refused")
            }
            Err(err) => tracing::warn!(error = %err, attempt, "test-mode event delivery failed"),
        }
    }
}

async fn create_customer(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let key = idempotency_key(&headers);
    emu.clone()
        .idempotent(key, || async move {
            let id = new_id("cus");
            let customer = objects::customer(
                &id,
                params.get("name"),
                params.get("email"),
                &params.map("metadata"),
                emu.now_secs(),
            );
            emu.save(&id, Kind::Customer, None, &customer).await?;
            Ok(Json(customer))
        })
        .await
}

async fn get_customer(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    Ok(Json(
        authorised(&state, &headers)?
            .must_load(Kind::Customer, &id)
            .await?,
    ))
}

async fn list_customer_payment_methods(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    emu.must_load(Kind::Customer, &id).await?;
    let data = emu.list(Kind::PaymentMethod, &id).await?;
    Ok(Json(objects::list(
        &format!("/v1/customers/{id}/payment_methods"),
        data,
    )))
}

async fn list_payment_methods(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let customer = params.required("customer")?;
    emu.must_load(Kind::Customer, customer).await?;
    let data = emu.list(Kind::PaymentMethod, customer).await?;
    Ok(Json(objects::list("/v1/payment_methods", data)))
}

async fn create_checkout_session(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let key = idempotency_key(&headers);
    emu.clone()
        .idempotent(key, || async move {
            if params.required("mode")? != "payment" {
                return Err(EmuError::invalid(
                    "The test-mode emulator supports mode=payment only.",
                ));
            }
            let amount = params
                .int("line_items[0][price_data][unit_amount]")?
                .filter(|a| *a > 0)
                .ok_or_else(|| {
                    EmuError::invalid(
                        "Missing required param: line_items[0][price_data][unit_amount].",
                    )
                })?;
            let quantity = params.int("line_items[0][quantity]")?.unwrap_or(1).max(1);
            let currency = params.required("line_items[0][price_data][currency]")?;
            let product = params.required("line_items[0][price_data][product_data][name]")?;
            let success_url = params.required("success_url")?;
            let cancel_url = params.get("cancel_url");
            for (name, url) in [
                ("success_url", Some(success_url)),
                ("cancel_url", cancel_url),
            ] {
                if let Some(url) = url {
                    emu.check_return_address(name, url)?;
                }
            }
            let customer = params.get("customer");
            if let Some(customer) = customer {
                emu.must_load(Kind::Customer, customer).await?;
            }
            let now = emu.now_secs();
            let pi_id = new_id("pi");
            let intent = objects::payment_intent(
                &pi_id,
                amount * quantity,
                currency,
                customer,
                &params.map("payment_intent_data[metadata]"),
                params.get("payment_intent_data[setup_future_usage]"),
                params
                    .get("payment_intent_data[description]")
                    .or(Some(product)),
                now,
            );
            emu.save(&pi_id, Kind::PaymentIntent, customer, &intent)
                .await?;
            let id = format!("cs_test_{}", &new_id("cs")[3..]);
            let session = objects::checkout_session(objects::SessionFields {
                id: &id,
                url: &format!("{}/_stripe/checkout/{id}", emu.config.public_base),
                amount: amount * quantity,
                currency,
                product,
                customer,
                client_reference_id: params.get("client_reference_id"),
                success_url,
                cancel_url,
                metadata: &params.map("metadata"),
                payment_intent: &pi_id,
                created: now,
                expires_at: params.int("expires_at")?.unwrap_or(now + 86_400),
            });
            emu.save(&id, Kind::CheckoutSession, customer, &session)
                .await?;
            Ok(Json(session))
        })
        .await
}

async fn get_checkout_session(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let session = emu.must_load(Kind::CheckoutSession, &id).await?;
    // Stripe expires an unpaid checkout at its `expires_at`; here that happens when it is
    // next looked at.
    let lapsed = session["status"] == "open"
        && session["expires_at"]
            .as_i64()
            .is_some_and(|at| at <= emu.now_secs());
    if lapsed {
        let _guard = emu.writes.lock().await;
        return Ok(Json(emu.expire_session(&id).await?));
    }
    Ok(Json(session))
}

async fn expire_checkout_session(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let _guard = emu.writes.lock().await;
    Ok(Json(emu.expire_session(&id).await?))
}

impl Emulator {
    /// A checkout's return addresses must be web addresses on the site itself: the payment
    /// page is served from Tally's origin, so anything else would make it an open redirect
    /// (or run a `javascript:` link there).
    fn check_return_address(&self, name: &str, url: &str) -> Result<(), EmuError> {
        let web = crate::web::origin::is_web_address(&url.replace("{CHECKOUT_SESSION_ID}", "x"));
        let on_site = match &self.config.site_url {
            Some(site) => crate::web::origin::on_site(url, Some(site), &HeaderMap::new()),
            None => true,
        };
        if web && on_site {
            Ok(())
        } else {
            Err(EmuError::invalid(format!(
                "Invalid URL: {name} must be an http or https address on this site."
            )))
        }
    }

    /// A return address to send the browser of this page request to, if it is on the site.
    fn return_address(&self, url: Option<&str>, headers: &HeaderMap) -> Option<String> {
        url.filter(|u| crate::web::origin::on_site(u, self.config.site_url.as_deref(), headers))
            .map(str::to_owned)
    }

    /// Expires an open checkout session and cancels its payment intent.
    async fn expire_session(&self, id: &str) -> Result<Value, EmuError> {
        let mut session = self.must_load(Kind::CheckoutSession, id).await?;
        if session["status"] != "open" {
            return Err(EmuError::invalid(format!(
                "Only Checkout Sessions with a status of open can be expired. This one is {}.",
                session["status"].as_str().unwrap_or("unknown")
            )));
        }
        session["status"] = json!("expired");
        self.save(
            id,
            Kind::CheckoutSession,
            session["customer"].as_str(),
            &session,
        )
        .await?;
        if let Some(pi_id) = session["payment_intent"].as_str() {
            if let Some(mut intent) = self.load(Kind::PaymentIntent, pi_id).await? {
                intent["status"] = json!("canceled");
                intent["canceled_at"] = json!(self.now_secs());
                intent["cancellation_reason"] = json!("abandoned");
                self.save(
                    pi_id,
                    Kind::PaymentIntent,
                    intent["customer"].as_str(),
                    &intent,
                )
                .await?;
            }
        }
        self.emit("checkout.session.expired", &session, 0).await?;
        Ok(session)
    }
}

async fn create_payment_intent(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Result<Json<Value>, EmuError> {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let key = idempotency_key(&headers);
    // A decline is an error answer but still the stored outcome of the key: a retry with
    // the same key must not charge again, so it gets the same error.
    if let Some(key) = &key {
        if let Some(stored) = emu.load(Kind::Idempotency, key).await? {
            return replay(stored);
        }
    }
    let _guard = emu.writes.lock().await;
    let amount = params
        .int("amount")?
        .filter(|a| *a > 0)
        .ok_or_else(|| EmuError::invalid("Missing required param: amount."))?;
    let currency = params.required("currency")?;
    let customer = params.get("customer");
    if let Some(customer) = customer {
        emu.must_load(Kind::Customer, customer).await?;
    }
    let id = new_id("pi");
    let intent = objects::payment_intent(
        &id,
        amount,
        currency,
        customer,
        &params.map("metadata"),
        params.get("setup_future_usage"),
        params.get("description"),
        emu.now_secs(),
    );
    emu.save(&id, Kind::PaymentIntent, customer, &intent)
        .await?;
    let outcome = if params.flag("confirm") {
        let method_id = params.required("payment_method")?;
        let method = emu.must_load(Kind::PaymentMethod, method_id).await?;
        if method["customer"].as_str() != customer {
            return Err(EmuError::invalid(format!(
                "The payment method {method_id} does not belong to this customer."
            )));
        }
        let (intent, decline) = emu
            .confirm(intent, &method, params.flag("off_session"))
            .await?;
        match decline {
            Some(code) => {
                let error_code = if code == "authentication_required" {
                    "authentication_required"
                } else {
                    "card_declined"
                };
                EmuError::card(error_code, code, &intent).body
            }
            None => intent,
        }
    } else {
        intent
    };
    if let Some(key) = &key {
        emu.save(key, Kind::Idempotency, None, &outcome).await?;
    }
    replay(outcome)
}

/// Answers with a stored outcome: an error body keeps its 402.
fn replay(stored: Value) -> Result<Json<Value>, EmuError> {
    if stored.get("error").is_some() {
        Err(EmuError {
            status: StatusCode::PAYMENT_REQUIRED,
            body: stored,
        })
    } else {
        Ok(Json(stored))
    }
}

/// Test helper: the cardholder disputes a charge now (the `…0259` card does it by itself,
/// right after paying; this lets a test spend some of the credits first).
async fn dispute_charge(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    emu.open_dispute(&id).await?;
    Ok(Json(emu.must_load(Kind::Charge, &id).await?))
}

async fn get_payment_intent(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let mut intent = emu.must_load(Kind::PaymentIntent, &id).await?;
    let params = Params(params);
    let expand = params.list("expand");
    if expand.contains(&"latest_charge") {
        if let Some(charge_id) = intent["latest_charge"].as_str().map(str::to_owned) {
            intent["latest_charge"] = emu.must_load(Kind::Charge, &charge_id).await?;
        }
    }
    if expand.contains(&"payment_method") {
        if let Some(pm) = intent["payment_method"].as_str().map(str::to_owned) {
            intent["payment_method"] = emu.must_load(Kind::PaymentMethod, &pm).await?;
        }
    }
    Ok(Json(intent))
}

async fn get_event(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    Ok(Json(
        authorised(&state, &headers)?
            .must_load(Kind::Event, &id)
            .await?,
    ))
}

/// The fields of the checkout page's form.
#[derive(Debug, serde::Deserialize)]
struct CardForm {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    cvc: String,
    #[serde(default)]
    name: String,
}

/// A page of the emulator, with a Content-Security-Policy that allows its one stylesheet
/// (by hash) and nothing else.
fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            page::content_security_policy(),
        )],
        Html(body),
    )
        .into_response()
}

/// Whether a checkout can still be paid: open, and not past its `expires_at`.
fn payable(session: &Value, now_secs: i64) -> bool {
    session["status"] == "open"
        && session["expires_at"]
            .as_i64()
            .is_none_or(|at| at > now_secs)
}

/// The hosted payment page: only for a checkout that can still be paid.
async fn checkout_page(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(emu) = emulator(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match emu.load(Kind::CheckoutSession, &id).await {
        Ok(Some(session)) if payable(&session, emu.now_secs()) => {
            let cancel = emu.return_address(session["cancel_url"].as_str(), &headers);
            html(
                StatusCode::OK,
                page::checkout(&session, cancel.as_deref(), None, None),
            )
        }
        Ok(Some(session)) => html(StatusCode::GONE, page::closed(&session)),
        Ok(None) => html(StatusCode::NOT_FOUND, page::missing()),
        Err(err) => err.into_response(),
    }
}

async fn pay_checkout(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let Ok(emu) = emulator(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match pay(&emu, &id, &form, &headers).await {
        Ok(PayOutcome::Redirect(url)) => Redirect::to(&url).into_response(),
        Ok(PayOutcome::Page(status, body)) => html(status, body),
        Err(err) => err.into_response(),
    }
}

enum PayOutcome {
    Redirect(String),
    Page(StatusCode, String),
}

async fn pay(
    emu: &Emulator,
    id: &str,
    form: &CardForm,
    headers: &HeaderMap,
) -> Result<PayOutcome, EmuError> {
    let _guard = emu.writes.lock().await;
    let Some(mut session) = emu.load(Kind::CheckoutSession, id).await? else {
        return Ok(PayOutcome::Page(StatusCode::NOT_FOUND, page::missing()));
    };
    if !payable(&session, emu.now_secs()) {
        return Ok(PayOutcome::Page(StatusCode::GONE, page::closed(&session)));
    }
    // Where the buyer goes afterwards is checked before any money moves.
    let success = session["success_url"]
        .as_str()
        .map(|u| u.replace("{CHECKOUT_SESSION_ID}", id));
    let Some(success) = emu.return_address(success.as_deref(), headers) else {
        return Ok(PayOutcome::Page(
            StatusCode::BAD_REQUEST,
            page::closed_because(
                "This checkout's return address is not on this site, so it cannot be paid here.",
            ),
        ));
    };
    let cancel = emu.return_address(session["cancel_url"].as_str(), headers);
    let refuse = |message: &str| {
        Ok(PayOutcome::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::checkout(
                &session,
                cancel.as_deref(),
                Some(message),
                Some(form_echo(form)),
            ),
        ))
    };
    let Some(card) = cards::test_card(&form.card_number) else {
        return refuse("Use one of the test cards listed below. This is test mode: real card numbers are not accepted.");
    };
    let Some(expiry) = cards::parse_expiry(&form.expiry) else {
        return refuse("Enter the expiry date as MM/YY.");
    };
    let today = crate::clock::to_datetime(emu.clock.now_ms());
    let (year, month) = (
        chrono::Datelike::year(&today) as u32,
        chrono::Datelike::month(&today),
    );
    if (expiry.1, expiry.0) < (year, month) {
        return refuse("Your card's expiration date is in the past.");
    }
    let cvc = form.cvc.trim();
    if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
        return refuse("Your card's security code is incomplete.");
    }
    let pi_id = session["payment_intent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let intent = emu.must_load(Kind::PaymentIntent, &pi_id).await?;
    // A card is kept for later when the checkout asks for it, unless the bank refuses it
    // outright (a card that only fails when charged, like `…0341`, is kept).
    let saves = intent["setup_future_usage"].is_string()
        && !matches!(card.behaviour, CardBehaviour::Declines(_));
    let customer = session["customer"].as_str().map(str::to_owned);
    let method = emu
        .new_card(
            card,
            expiry,
            form.name.trim(),
            customer.as_deref().filter(|_| saves),
        )
        .await?;
    let (_, decline) = emu.confirm(intent, &method, false).await?;
    if let Some(code) = decline {
        return refuse(cards::decline_message(code));
    }
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    emu.save(id, Kind::CheckoutSession, customer.as_deref(), &session)
        .await?;
    emu.emit("checkout.session.completed", &session, 1).await?;
    Ok(PayOutcome::Redirect(success))
}

/// What the buyer typed, minus the card number's middle, to refill the form after an error.
fn form_echo(form: &CardForm) -> page::Echo {
    page::Echo {
        card_number: form.card_number.clone(),
        expiry: form.expiry.clone(),
        name: form.name.clone(),
    }
}

async fn receipt_page(State(state): State<EmulatorState>, Path(id): Path<String>) -> Response {
    let Ok(emu) = emulator(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match emu.load(Kind::Charge, &id).await {
        Ok(Some(charge)) => html(StatusCode::OK, page::receipt(&charge)),
        Ok(_) => html(StatusCode::NOT_FOUND, page::missing()),
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_form_keys_are_read_as_maps_and_lists() {
        let params = Params(vec![
            ("metadata[purchase_id]".into(), "pur_1".into()),
            ("metadata[workspace_id]".into(), "ws_1".into()),
            (
                "payment_intent_data[metadata][purchase_id]".into(),
                "pur_1".into(),
            ),
            ("expand[0]".into(), "latest_charge".into()),
            ("expand[]".into(), "payment_method".into()),
            ("amount".into(), "1200".into()),
        ]);
        let metadata = params.map("metadata");
        assert_eq!(metadata.len(), 2);
        assert_eq!(metadata["purchase_id"], "pur_1");
        assert_eq!(
            params.map("payment_intent_data[metadata]")["purchase_id"],
            "pur_1"
        );
        assert_eq!(
            params.list("expand"),
            vec!["latest_charge", "payment_method"]
        );
        assert_eq!(params.int("amount").unwrap(), Some(1200));
        assert!(params.int("metadata[purchase_id]").is_err());
    }
}
