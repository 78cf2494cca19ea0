//! Payment intents and their charges: create (and confirm at once), confirm, capture, cancel,
//! retrieve (with `expand[]`), list; charges and the test helper that disputes one.
//!
//! As at Stripe: an off-session charge the bank wants authenticated fails with
//! `authentication_required` and leaves the intent in `requires_payment_method`; on session
//! it waits in `requires_action`. A decline is a 402 `card_error` with the intent inside.

use super::error::EmuError;
use super::request::Call;
use super::{objects, Emu, Emulator, EmulatorState, Kind};
use crate::db::new_id;
use crate::payments::cards::{self, CardBehaviour};
use crate::routing::RouteBook;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .post("/v1/payment_intents", create_payment_intent)
        .get("/v1/payment_intents", list_payment_intents)
        .get("/v1/payment_intents/{id}", get_payment_intent)
        .post("/v1/payment_intents/{id}/confirm", confirm_payment_intent)
        .post("/v1/payment_intents/{id}/capture", capture_payment_intent)
        .post("/v1/payment_intents/{id}/cancel", cancel_payment_intent)
        .get("/v1/charges/{id}", get_charge)
        .post("/v1/test_helpers/charges/{id}/dispute", dispute_charge)
}

/// How a confirmation happens.
#[derive(Clone, Copy, Debug)]
pub(super) struct Confirmation {
    /// The cardholder is not there (Auto-reload): nobody can authenticate.
    pub off_session: bool,
    /// The cardholder authenticated already (the hosted page plays that step).
    pub authenticated: bool,
}

/// What confirming an intent came to.
pub(super) enum Confirmed {
    /// Paid, or authorised for a manual capture.
    Done(Value),
    /// The bank wants the cardholder to authenticate first.
    NeedsAction(Value),
    /// Declined with this decline code.
    Declined(Value, &'static str),
}

impl Confirmed {
    /// The API's answer: the intent, or a 402 card error with the intent inside.
    fn answer(self) -> Emu {
        match self {
            Confirmed::Done(intent) | Confirmed::NeedsAction(intent) => Ok(Json(intent)),
            Confirmed::Declined(intent, code) => {
                Err(EmuError::card(cards::error_code(code), code, &intent))
            }
        }
    }
}

impl Emulator {
    async fn save_intent(&self, intent: &Value) -> Result<(), EmuError> {
        self.save(
            intent["id"].as_str().unwrap_or_default(),
            Kind::PaymentIntent,
            intent["customer"].as_str(),
            intent,
        )
        .await
    }

    /// Charges a payment intent with a payment method, as a confirmation does.
    pub(super) async fn confirm(
        &self,
        mut intent: Value,
        method: &Value,
        how: Confirmation,
    ) -> Result<Confirmed, EmuError> {
        let behaviour = self.card_of(method).await?.behaviour;
        intent["payment_method"] = method["id"].clone();
        let decline = match behaviour {
            CardBehaviour::Declines(code) => Some(code),
            CardBehaviour::AttachesThenDeclines => Some("generic_decline"),
            CardBehaviour::RequiresAuthentication if how.off_session => {
                Some("authentication_required")
            }
            _ => None,
        };
        let now = self.now_secs();
        if behaviour == CardBehaviour::RequiresAuthentication
            && !how.off_session
            && !how.authenticated
        {
            intent["status"] = json!("requires_action");
            intent["next_action"] = json!({"type": "use_stripe_sdk", "use_stripe_sdk": {}});
            self.save_intent(&intent).await?;
            self.emit("payment_intent.requires_action", &intent, None)
                .await?;
            return Ok(Confirmed::NeedsAction(intent));
        }
        let charge_id = new_id("ch");
        let receipt = format!("{}/_stripe/receipts/{charge_id}", self.config.public_base);
        let manual = intent["capture_method"] == "manual";
        let charge = objects::charge(objects::ChargeFields {
            id: &charge_id,
            intent: &intent,
            method,
            receipt_url: &receipt,
            created: now,
            failure: decline,
            captured: !manual,
        });
        self.save(
            &charge_id,
            Kind::Charge,
            intent["customer"].as_str(),
            &charge,
        )
        .await?;
        intent["latest_charge"] = json!(charge_id);
        intent["next_action"] = Value::Null;
        if let Some(code) = decline {
            // Stripe leaves a declined intent waiting for another payment method, the
            // off-session authentication case included.
            intent["status"] = json!("requires_payment_method");
            intent["last_payment_error"] = objects::card_error(code, method);
            self.save_intent(&intent).await?;
            self.emit("charge.failed", &charge, None).await?;
            self.emit("payment_intent.payment_failed", &intent, None)
                .await?;
            return Ok(Confirmed::Declined(intent, code));
        }
        intent["last_payment_error"] = Value::Null;
        if manual {
            intent["status"] = json!("requires_capture");
            intent["amount_capturable"] = intent["amount"].clone();
            self.save_intent(&intent).await?;
            self.emit("charge.succeeded", &charge, None).await?;
            self.emit("payment_intent.amount_capturable_updated", &intent, None)
                .await?;
            return Ok(Confirmed::Done(intent));
        }
        intent["status"] = json!("succeeded");
        intent["amount_received"] = intent["amount"].clone();
        self.save_intent(&intent).await?;
        self.emit("charge.succeeded", &charge, None).await?;
        self.emit("payment_intent.succeeded", &intent, None).await?;
        if behaviour == CardBehaviour::Disputed {
            // The cardholder disputes the charge a little later, as they do (days later,
            // at Stripe).
            let emulator = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(emulator.config.delivery_delay * 5 + Duration::from_millis(200))
                    .await;
                let _guard = emulator.writes.lock().await;
                if let Err(err) = emulator.open_dispute(&charge_id).await {
                    tracing::warn!(?err, "test-mode dispute could not be opened");
                }
            });
        }
        Ok(Confirmed::Done(intent))
    }

    /// Marks a charge disputed and announces the dispute. The caller holds the write lock.
    async fn open_dispute(&self, charge_id: &str) -> Result<Value, EmuError> {
        let mut charge = self.must_load(Kind::Charge, charge_id).await?;
        if charge["status"] != "succeeded" {
            return Err(EmuError::invalid(format!(
                "The charge {charge_id} did not succeed, so it cannot be disputed."
            )));
        }
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
        self.emit("charge.dispute.created", &dispute, None).await?;
        Ok(charge)
    }

    /// An intent with the fields `expand[]` asks for replaced by their objects.
    async fn expanded(&self, mut intent: Value, call: &Call) -> Result<Value, EmuError> {
        for (field, kind) in [
            ("latest_charge", Kind::Charge),
            ("payment_method", Kind::PaymentMethod),
            ("customer", Kind::Customer),
        ] {
            if call.params.expands(field) {
                if let Some(id) = intent[field].as_str().map(str::to_owned) {
                    intent[field] = self.must_load(kind, &id).await?;
                }
            }
        }
        Ok(intent)
    }
}

/// The `capture_method` parameter: `automatic` (Stripe's default; `automatic_async` reads
/// the same here) or `manual`.
fn capture_method(call: &Call) -> Result<&'static str, EmuError> {
    match call.params.get("capture_method") {
        None | Some("automatic") | Some("automatic_async") => Ok("automatic"),
        Some("manual") => Ok("manual"),
        Some(other) => Err(EmuError::bad_param(
            "parameter_invalid_string",
            "capture_method",
            format!("Invalid capture_method: must be one of automatic, automatic_async or manual (not {other})."),
        )),
    }
}

fn confirmation(call: &Call) -> Confirmation {
    Confirmation {
        off_session: call.params.flag("off_session"),
        authenticated: false,
    }
}

async fn create_payment_intent(call: Call) -> Emu {
    call.once(|| async {
        let (emu, params) = (&call.emu, &call.params);
        let amount = params
            .int("amount")?
            .ok_or_else(|| EmuError::missing_param("amount"))?;
        if amount < 1 {
            return Err(EmuError::bad_param(
                "amount_too_small",
                "amount",
                "Amount must be at least 1 in the currency's smallest unit.",
            ));
        }
        let currency = params.required("currency")?;
        let customer = params.get("customer").filter(|c| !c.is_empty());
        if let Some(customer) = customer {
            emu.load_param(Kind::Customer, customer, "customer").await?;
        }
        let method = match params.get("payment_method").filter(|p| !p.is_empty()) {
            Some(id) => Some(emu.method_param(id, "payment_method").await?),
            None => None,
        };
        if let (Some(method), Some(customer)) = (&method, customer) {
            if method["customer"].as_str().is_some_and(|c| c != customer) {
                return Err(EmuError::bad_param(
                    "resource_missing",
                    "payment_method",
                    "The payment method belongs to another customer.",
                ));
            }
        }
        let confirm = params.flag("confirm");
        if confirm && method.is_none() {
            return Err(EmuError::missing_param("payment_method"));
        }
        let id = new_id("pi");
        let mut intent = objects::payment_intent(objects::IntentFields {
            id: &id,
            amount,
            currency,
            customer,
            metadata: &params.map("metadata"),
            setup_future_usage: params.get("setup_future_usage"),
            description: params.get("description"),
            capture_method: capture_method(&call)?,
            created: emu.now_secs(),
        });
        if let Some(method) = &method {
            // A method given without confirming waits on the intent for the confirmation.
            intent["payment_method"] = method["id"].clone();
            intent["status"] = json!("requires_confirmation");
        }
        emu.save_intent(&intent).await?;
        emu.emit("payment_intent.created", &intent, None).await?;
        match (confirm, method) {
            (true, Some(method)) => emu
                .confirm(intent, &method, confirmation(&call))
                .await?
                .answer(),
            _ => Ok(Json(intent)),
        }
    })
    .await
}

async fn confirm_payment_intent(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let emu = &call.emu;
        let intent = emu.must_load(Kind::PaymentIntent, &id).await?;
        let status = intent["status"].as_str().unwrap_or_default();
        if !matches!(status, "requires_payment_method" | "requires_confirmation" | "requires_action") {
            return Err(EmuError::bad_param(
                "payment_intent_unexpected_state",
                "id",
                format!("This PaymentIntent's status is {status}, so it cannot be confirmed."),
            ));
        }
        let method_id = call
            .params
            .get("payment_method")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .or_else(|| intent["payment_method"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                EmuError::bad_param(
                    "payment_intent_unexpected_state",
                    "payment_method",
                    "This PaymentIntent has no payment method to confirm with: pass payment_method.",
                )
            })?;
        let method = emu.method_param(&method_id, "payment_method").await?;
        if let Some(customer) = intent["customer"].as_str() {
            if method["customer"].as_str().is_some_and(|c| c != customer) {
                return Err(EmuError::bad_param(
                    "resource_missing",
                    "payment_method",
                    "The payment method belongs to another customer.",
                ));
            }
        }
        emu.confirm(intent, &method, confirmation(&call))
            .await?
            .answer()
    })
    .await
}

async fn capture_payment_intent(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let emu = &call.emu;
        let mut intent = emu.must_load(Kind::PaymentIntent, &id).await?;
        if intent["status"] != "requires_capture" {
            return Err(EmuError::bad_param(
                "payment_intent_unexpected_state",
                "id",
                format!(
                    "This PaymentIntent could not be captured because it has a status of {}.",
                    intent["status"].as_str().unwrap_or("unknown")
                ),
            ));
        }
        let capturable = intent["amount_capturable"].as_i64().unwrap_or(0);
        let amount = call.params.int("amount_to_capture")?.unwrap_or(capturable);
        if !(1..=capturable).contains(&amount) {
            return Err(EmuError::bad_param(
                "amount_too_large",
                "amount_to_capture",
                format!("The amount to capture must be between 1 and {capturable}."),
            ));
        }
        if let Some(charge_id) = intent["latest_charge"].as_str().map(str::to_owned) {
            let mut charge = emu.must_load(Kind::Charge, &charge_id).await?;
            charge["captured"] = json!(true);
            charge["amount_captured"] = json!(amount);
            charge["amount_refunded"] = json!(capturable - amount);
            emu.save(
                &charge_id,
                Kind::Charge,
                intent["customer"].as_str(),
                &charge,
            )
            .await?;
            emu.emit("charge.captured", &charge, None).await?;
        }
        intent["status"] = json!("succeeded");
        intent["amount_received"] = json!(amount);
        intent["amount_capturable"] = json!(0);
        emu.save_intent(&intent).await?;
        emu.emit("payment_intent.succeeded", &intent, None).await?;
        Ok(Json(intent))
    })
    .await
}

async fn cancel_payment_intent(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let emu = &call.emu;
        let intent = emu.must_load(Kind::PaymentIntent, &id).await?;
        let reason = call
            .params
            .get("cancellation_reason")
            .unwrap_or("requested_by_customer")
            .to_owned();
        Ok(Json(emu.cancel_intent(intent, &reason).await?))
    })
    .await
}

impl Emulator {
    /// Cancels an intent that has not succeeded.
    pub(super) async fn cancel_intent(
        &self,
        mut intent: Value,
        reason: &str,
    ) -> Result<Value, EmuError> {
        let status = intent["status"].as_str().unwrap_or_default();
        if matches!(status, "succeeded" | "canceled" | "processing") {
            return Err(EmuError::bad_param(
                "payment_intent_unexpected_state",
                "id",
                format!(
                    "You cannot cancel this PaymentIntent because it has a status of {status}."
                ),
            ));
        }
        intent["status"] = json!("canceled");
        intent["canceled_at"] = json!(self.now_secs());
        intent["cancellation_reason"] = json!(reason);
        intent["amount_capturable"] = json!(0);
        self.save_intent(&intent).await?;
        self.emit("payment_intent.canceled", &intent, None).await?;
        Ok(intent)
    }
}

async fn get_payment_intent(Path(id): Path<String>, call: Call) -> Emu {
    let intent = call.emu.must_load(Kind::PaymentIntent, &id).await?;
    Ok(Json(call.emu.expanded(intent, &call).await?))
}

async fn list_payment_intents(call: Call) -> Emu {
    let customer = call.params.get("customer").map(str::to_owned);
    if let Some(customer) = &customer {
        call.emu
            .load_param(Kind::Customer, customer, "customer")
            .await?;
    }
    Ok(Json(
        call.emu
            .page(
                "/v1/payment_intents",
                Kind::PaymentIntent,
                customer.as_deref(),
                &call.params,
                |_| true,
            )
            .await?,
    ))
}

async fn get_charge(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::Charge, &id).await?))
}

/// Test helper: the cardholder disputes a charge now (the `…0259` card does it by itself,
/// right after paying; this lets a test spend some of the credits first).
async fn dispute_charge(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async { Ok(Json(call.emu.open_dispute(&id).await?)) })
        .await
}
