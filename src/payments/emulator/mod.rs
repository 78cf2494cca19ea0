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

mod billing;
mod objects;
mod page;

use super::cards::{self, CardBehaviour};
use crate::clock::Clock;
use crate::startup::AppState;
use crate::store::{new_id, Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The secret key the gateway uses against the emulator.
pub const EMULATOR_SECRET_KEY: &str = "sk_test_tally_emulator";

/// How the emulator reaches the outside world.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where browsers reach this server (`http://127.0.0.1:3000`), for checkout and receipt
    /// links.
    pub public_base: String,
    /// Where events are delivered.
    pub webhook_url: String,
    pub webhook_secret: String,
    /// How long after the change an event is sent (Stripe's are a little late too).
    pub delivery_delay: Duration,
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
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(create_customer))
        .route("/v1/customers/{id}", get(get_customer))
        .route(
            "/v1/customers/{id}/payment_methods",
            get(list_customer_payment_methods),
        )
        .route("/v1/checkout/sessions", post(create_checkout_session))
        .route("/v1/checkout/sessions/{id}", get(get_checkout_session))
        .route(
            "/v1/checkout/sessions/{id}/expire",
            post(expire_checkout_session),
        )
        .route("/v1/payment_intents", post(create_payment_intent))
        .route("/v1/payment_intents/{id}", get(get_payment_intent))
        .route("/v1/payment_methods", get(list_payment_methods))
        .route("/v1/events/{id}", get(get_event))
        .route("/checkout/{id}", get(checkout_page).post(pay_checkout))
        .route("/receipts/{id}", get(receipt_page))
        .merge(billing::routes())
}

fn emulator(state: &AppState) -> Result<Arc<Emulator>, EmuError> {
    state.emulator.clone().ok_or_else(|| EmuError {
        status: StatusCode::NOT_FOUND,
        body: json!({"error": {"type": "invalid_request_error", "message": "The test-mode emulator is off: Tally is using Stripe."}}),
    })
}

/// Checks the `Authorization: Bearer sk_test_…` header as Stripe does.
fn authorise(headers: &HeaderMap) -> Result<(), EmuError> {
    let ok = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|key| key.starts_with("sk_test_"));
    if ok {
        Ok(())
    } else {
        Err(EmuError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}),
        })
    }
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

    /// The signing secret the emulator and the webhook share, made once per database so
    /// every instance on it agrees.
    pub async fn shared_secret(store: &Store) -> Result<String, StoreError> {
        let candidate = format!("whsec_{}", &new_id("x")[2..]);
        sqlx::query(
            "INSERT INTO stripe_emulator_objects (id, kind, owner, body, created_at) VALUES ('tally_webhook_secret', 'config', NULL, $1, 0) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(serde_json::Value::String(candidate).to_string())
        .execute(store.pool())
        .await?;
        let body: String = sqlx::query(
            "SELECT body FROM stripe_emulator_objects WHERE id = 'tally_webhook_secret'",
        )
        .fetch_one(store.pool())
        .await?
        .try_get("body")?;
        serde_json::from_str::<String>(&body)
            .map_err(|e| StoreError::Corrupt(format!("emulator webhook secret: {e}")))
    }

    /// The secret events are signed with.
    pub fn webhook_secret(&self) -> &str {
        &self.config.webhook_secret
    }

    fn now_secs(&self) -> i64 {
        self.clock.now_ms() / 1000
    }

    async fn load(&self, id: &str) -> Result<Option<Value>, EmuError> {
        let row = sqlx::query("SELECT body FROM stripe_emulator_objects WHERE id = $1")
            .bind(id)
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

    async fn must_load(&self, what: &str, id: &str) -> Result<Value, EmuError> {
        self.load(id)
            .await?
            .ok_or_else(|| EmuError::missing(what, id))
    }

    async fn save(
        &self,
        id: &str,
        kind: &str,
        owner: Option<&str>,
        body: &Value,
    ) -> Result<(), EmuError> {
        sqlx::query(
            "INSERT INTO stripe_emulator_objects (id, kind, owner, body, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, owner = excluded.owner",
        )
        .bind(id)
        .bind(kind)
        .bind(owner)
        .bind(body.to_string())
        .bind(self.clock.now_ms())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    async fn list(&self, kind: &str, owner: &str) -> Result<Vec<Value>, EmuError> {
        let rows = sqlx::query(
            "SELECT body FROM stripe_emulator_objects WHERE owner = $1 AND kind = $2 ORDER BY created_at DESC, id",
        )
        .bind(owner)
        .bind(kind)
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
    async fn idempotent<F, Fut>(&self, key: Option<String>, run: F) -> Emu
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Emu>,
    {
        if let Some(key) = &key {
            if let Some(stored) = self.load(key).await? {
                return Ok(Json(stored));
            }
        }
        let Json(answer) = run().await?;
        if let Some(key) = &key {
            self.save(key, "idempotency", None, &answer).await?;
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
        self.save(&id, "event", None, &event).await?;
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
                "payment_intent",
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
        self.save(&charge_id, "charge", intent["customer"].as_str(), &charge)
            .await?;
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        intent["latest_charge"] = json!(charge_id);
        intent["last_payment_error"] = Value::Null;
        self.save(
            &pi_id,
            "payment_intent",
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
        let mut charge = self.must_load("charge", charge_id).await?;
        charge["disputed"] = json!(true);
        self.save(charge_id, "charge", charge["customer"].as_str(), &charge)
            .await?;
        let dispute = objects::dispute(&new_id("dp"), &charge, self.now_secs());
        self.save(
            dispute["id"].as_str().unwrap_or_default(),
            "dispute",
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
        self.save(&id, "payment_method", customer, &method).await?;
        if let Some(customer_id) = customer {
            if let Some(mut customer) = self.load(customer_id).await? {
                if customer["invoice_settings"]["default_payment_method"].is_null() {
                    customer["invoice_settings"]["default_payment_method"] = json!(id);
                    self.save(customer_id, "customer", None, &customer).await?;
                }
            }
        }
        Ok(method)
    }
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
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    let params = Params(params);
    let key = idempotency_key(&headers);
    emu.clone()
        .idempotent(key, || async move {
            let _guard = emu.writes.lock().await;
            let id = new_id("cus");
            let customer = objects::customer(
                &id,
                params.get("name"),
                params.get("email"),
                &params.map("metadata"),
                emu.now_secs(),
            );
            emu.save(&id, "customer", None, &customer).await?;
            Ok(Json(customer))
        })
        .await
}

async fn get_customer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    authorise(&headers)?;
    Ok(Json(emulator(&state)?.must_load("customer", &id).await?))
}

async fn list_customer_payment_methods(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    emu.must_load("customer", &id).await?;
    let data = emu.list("payment_method", &id).await?;
    Ok(Json(objects::list(
        &format!("/v1/customers/{id}/payment_methods"),
        data,
    )))
}

async fn list_payment_methods(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    let params = Params(params);
    let customer = params.required("customer")?;
    emu.must_load("customer", customer).await?;
    let data = emu.list("payment_method", customer).await?;
    Ok(Json(objects::list("/v1/payment_methods", data)))
}

async fn create_checkout_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
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
            let customer = params.get("customer");
            if let Some(customer) = customer {
                emu.must_load("customer", customer).await?;
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
            emu.save(&pi_id, "payment_intent", customer, &intent)
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
            emu.save(&id, "checkout_session", customer, &session)
                .await?;
            Ok(Json(session))
        })
        .await
}

async fn get_checkout_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    let session = emu.must_load("checkout session", &id).await?;
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
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    let _guard = emu.writes.lock().await;
    Ok(Json(emu.expire_session(&id).await?))
}

impl Emulator {
    /// Expires an open checkout session and cancels its payment intent.
    async fn expire_session(&self, id: &str) -> Result<Value, EmuError> {
        let mut session = self.must_load("checkout session", id).await?;
        if session["status"] != "open" {
            return Err(EmuError::invalid(format!(
                "Only Checkout Sessions with a status of open can be expired. This one is {}.",
                session["status"].as_str().unwrap_or("unknown")
            )));
        }
        session["status"] = json!("expired");
        self.save(
            id,
            "checkout_session",
            session["customer"].as_str(),
            &session,
        )
        .await?;
        if let Some(pi_id) = session["payment_intent"].as_str() {
            if let Some(mut intent) = self.load(pi_id).await? {
                intent["status"] = json!("canceled");
                intent["canceled_at"] = json!(self.now_secs());
                intent["cancellation_reason"] = json!("abandoned");
                self.save(
                    pi_id,
                    "payment_intent",
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
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Result<Json<Value>, EmuError> {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    let params = Params(params);
    let key = idempotency_key(&headers);
    // A decline is an error answer but still the stored outcome of the key: a retry with
    // the same key must not charge again, so it gets the same error.
    if let Some(key) = &key {
        if let Some(stored) = emu.load(key).await? {
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
        emu.must_load("customer", customer).await?;
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
    emu.save(&id, "payment_intent", customer, &intent).await?;
    let outcome = if params.flag("confirm") {
        let method_id = params.required("payment_method")?;
        let method = emu.must_load("payment method", method_id).await?;
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
        emu.save(key, "idempotency", None, &outcome).await?;
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

async fn get_payment_intent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Emu {
    authorise(&headers)?;
    let emu = emulator(&state)?;
    let mut intent = emu.must_load("payment_intent", &id).await?;
    let params = Params(params);
    let expand = params.list("expand");
    if expand.contains(&"latest_charge") {
        if let Some(charge_id) = intent["latest_charge"].as_str().map(str::to_owned) {
            intent["latest_charge"] = emu.must_load("charge", &charge_id).await?;
        }
    }
    if expand.contains(&"payment_method") {
        if let Some(pm) = intent["payment_method"].as_str().map(str::to_owned) {
            intent["payment_method"] = emu.must_load("payment method", &pm).await?;
        }
    }
    Ok(Json(intent))
}

async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    authorise(&headers)?;
    Ok(Json(emulator(&state)?.must_load("event", &id).await?))
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

async fn checkout_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(emu) = emulator(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match emu.load(&id).await {
        Ok(Some(session)) => Html(page::checkout(&session, None, None)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Html(page::missing())).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn pay_checkout(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let Ok(emu) = emulator(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match pay(&emu, &id, &form).await {
        Ok(PayOutcome::Redirect(url)) => Redirect::to(&url).into_response(),
        Ok(PayOutcome::Page(status, html)) => (status, Html(html)).into_response(),
        Err(err) => err.into_response(),
    }
}

enum PayOutcome {
    Redirect(String),
    Page(StatusCode, String),
}

async fn pay(emu: &Emulator, id: &str, form: &CardForm) -> Result<PayOutcome, EmuError> {
    let _guard = emu.writes.lock().await;
    let Some(mut session) = emu.load(id).await? else {
        return Ok(PayOutcome::Page(StatusCode::NOT_FOUND, page::missing()));
    };
    let refuse = |message: &str| {
        Ok(PayOutcome::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::checkout(&session, Some(message), Some(form_echo(form))),
        ))
    };
    if session["status"] != "open" {
        return Ok(PayOutcome::Page(
            StatusCode::CONFLICT,
            page::checkout(&session, None, None),
        ));
    }
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
    let intent = emu.must_load("payment intent", &pi_id).await?;
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
    emu.save(id, "checkout_session", customer.as_deref(), &session)
        .await?;
    emu.emit("checkout.session.completed", &session, 1).await?;
    let success = session["success_url"]
        .as_str()
        .unwrap_or("/")
        .replace("{CHECKOUT_SESSION_ID}", id);
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

async fn receipt_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(emu) = emulator(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match emu.load(&id).await {
        Ok(Some(charge)) if charge["object"] == "charge" => {
            Html(page::receipt(&charge)).into_response()
        }
        Ok(_) => (StatusCode::NOT_FOUND, Html(page::missing())).into_response(),
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
