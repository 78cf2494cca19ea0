//! Payment methods: cards typed at the hosted page, Stripe's ready-made test methods
//! (`pm_card_visa` and the others in [`crate::payments::cards`]), retrieve, list, attach and
//! detach.

use super::error::EmuError;
use super::request::Call;
use super::{objects, Emu, Emulator, EmulatorState, Kind};
use crate::db::new_id;
use crate::payments::cards::{self, TestCard};
use crate::routing::RouteBook;
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .get("/v1/payment_methods", list_payment_methods)
        .get("/v1/payment_methods/{id}", get_payment_method)
        .post("/v1/payment_methods/{id}/attach", attach_payment_method)
        .post("/v1/payment_methods/{id}/detach", detach_payment_method)
}

/// A test card's expiry for Stripe's ready-made methods: December, a few years ahead.
fn far_expiry(now_secs: i64) -> (u32, u32) {
    let year = chrono::DateTime::from_timestamp(now_secs, 0)
        .map(|t| chrono::Datelike::year(&t) as u32)
        .unwrap_or(2030);
    (12, year + 4)
}

impl Emulator {
    /// Saves a card as a payment method, with the emulator's private note of which test card
    /// it is (the note is its own object, so no Stripe object carries the number).
    pub(super) async fn new_card(
        &self,
        card: &'static TestCard,
        expiry: (u32, u32),
        name: &str,
        customer: Option<&str>,
    ) -> Result<Value, EmuError> {
        let id = new_id("pm");
        let method = objects::payment_method(&id, card, expiry, name, customer, self.now_secs());
        self.save(&id, Kind::PaymentMethod, customer, &method)
            .await?;
        self.save(
            &note_id(&id),
            Kind::Note,
            None,
            &json!({"number": card.number}),
        )
        .await?;
        if let Some(customer_id) = customer {
            self.attached(&method, customer_id).await?;
        }
        Ok(method)
    }

    /// The test card a saved payment method is.
    pub(super) async fn card_of(&self, method: &Value) -> Result<&'static TestCard, EmuError> {
        let id = method["id"].as_str().unwrap_or_default();
        let note = self.load(Kind::Note, &note_id(id)).await?;
        note.as_ref()
            .and_then(|n| n["number"].as_str())
            .and_then(cards::test_card)
            .ok_or_else(|| EmuError::invalid(format!("The payment method {id} cannot be used.")))
    }

    /// The payment method a parameter names: a saved one, or a new one made from one of
    /// Stripe's ready-made test methods (as Stripe does, each use makes a new object).
    pub(super) async fn method_param(&self, id: &str, param: &str) -> Result<Value, EmuError> {
        match cards::test_method(id) {
            Some(card) => {
                self.new_card(card, far_expiry(self.now_secs()), "", None)
                    .await
            }
            None => self.load_param(Kind::PaymentMethod, id, param).await,
        }
    }

    /// Attaches a method to a customer, makes it the customer's default if they have none,
    /// and announces it.
    pub(super) async fn attach(
        &self,
        mut method: Value,
        customer: &str,
    ) -> Result<Value, EmuError> {
        let id = method["id"].as_str().unwrap_or_default().to_owned();
        match method["customer"].as_str() {
            Some(owner) if owner == customer => return Ok(method),
            Some(_) => {
                return Err(EmuError::invalid(format!(
                    "The payment method {id} is attached to another customer. Detach it first."
                )))
            }
            None => {}
        }
        method["customer"] = json!(customer);
        self.save(&id, Kind::PaymentMethod, Some(customer), &method)
            .await?;
        self.attached(&method, customer).await?;
        Ok(method)
    }

    async fn attached(&self, method: &Value, customer_id: &str) -> Result<(), EmuError> {
        if let Some(mut customer) = self.load(Kind::Customer, customer_id).await? {
            if customer["invoice_settings"]["default_payment_method"].is_null() {
                customer["invoice_settings"]["default_payment_method"] = method["id"].clone();
                self.save(customer_id, Kind::Customer, None, &customer)
                    .await?;
            }
        }
        self.emit("payment_method.attached", method, None).await
    }
}

fn note_id(method_id: &str) -> String {
    format!("note_{method_id}")
}

async fn list_payment_methods(call: Call) -> Emu {
    let customer = call.params.required("customer")?;
    call.emu
        .load_param(Kind::Customer, customer, "customer")
        .await?;
    let kind = call.params.get("type").map(str::to_owned);
    Ok(Json(
        call.emu
            .page(
                "/v1/payment_methods",
                Kind::PaymentMethod,
                Some(customer),
                &call.params,
                |pm| kind.as_deref().is_none_or(|t| pm["type"] == t),
            )
            .await?,
    ))
}

async fn get_payment_method(Path(id): Path<String>, call: Call) -> Emu {
    match cards::test_method(&id) {
        // Reading a ready-made method shows what using it would make.
        Some(card) => Ok(Json(objects::payment_method(
            &id,
            card,
            far_expiry(call.emu.now_secs()),
            "",
            None,
            call.emu.now_secs(),
        ))),
        None => Ok(Json(call.emu.must_load(Kind::PaymentMethod, &id).await?)),
    }
}

async fn attach_payment_method(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let customer = call.params.required("customer")?;
        call.emu
            .load_param(Kind::Customer, customer, "customer")
            .await?;
        let method = match cards::test_method(&id) {
            Some(_) => call.emu.method_param(&id, "id").await?,
            None => call.emu.must_load(Kind::PaymentMethod, &id).await?,
        };
        let card = call.emu.card_of(&method).await?;
        // Stripe checks a card with the bank as it is attached: outright declines fail.
        if let cards::CardBehaviour::Declines(code) = card.behaviour {
            return Err(EmuError::card("card_declined", code, &Value::Null));
        }
        Ok(Json(call.emu.attach(method, customer).await?))
    })
    .await
}

async fn detach_payment_method(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async {
        let emu = &call.emu;
        let mut method = emu.must_load(Kind::PaymentMethod, &id).await?;
        let Some(customer_id) = method["customer"].as_str().map(str::to_owned) else {
            return Err(EmuError::invalid(format!(
                "The payment method {id} is not attached to a customer."
            )));
        };
        method["customer"] = Value::Null;
        emu.save(&id, Kind::PaymentMethod, None, &method).await?;
        if let Some(mut customer) = emu.load(Kind::Customer, &customer_id).await? {
            if customer["invoice_settings"]["default_payment_method"] == id.as_str() {
                customer["invoice_settings"]["default_payment_method"] = Value::Null;
                emu.save(&customer_id, Kind::Customer, None, &customer)
                    .await?;
            }
        }
        // Stripe's detached card no longer names its customer; the event says who it was.
        emu.emit(
            "payment_method.detached",
            &method,
            Some(json!({"customer": customer_id})),
        )
        .await?;
        Ok(Json(method))
    })
    .await
}
