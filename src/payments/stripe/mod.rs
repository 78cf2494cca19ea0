//! The Stripe gateway, written with async-stripe. The same code talks to Stripe, to the
//! embedded test-mode emulator and to the fake Stripe of the contract tests; only the base URL
//! and the key differ.

pub mod webhook;

use super::gateway::{
    CardOnFile, CheckoutRequest, GatewayError, InvoiceSnapshot, OffSessionCharge, OpenCheckout,
    PaymentGateway, PaymentSnapshot, SubscriptionSnapshot,
};
use crate::clock::Millis;
use app::domain::PaymentObservation;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentIntentDataSetupFutureUsage,
    ExpireCheckoutSession, ProductData, RetrieveCheckoutSession,
};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::{
    CreateCustomer, ListPaymentMethodsCustomer, ListPaymentMethodsCustomerType, RetrieveCustomer,
    RetrieveCustomerReturned,
};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentOffSession, RetrievePaymentIntent,
};
use stripe_shared::{
    ApiErrorsCode, CheckoutSessionMode, CheckoutSessionStatus, PaymentIntent, PaymentIntentStatus,
};

/// Talks to Stripe (or a stand-in) with async-stripe.
#[derive(Clone)]
pub struct StripeGateway {
    client: stripe::Client,
    test_mode: bool,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("StripeGateway")
            .field("test_mode", &self.test_mode)
            .finish_non_exhaustive()
    }
}

impl StripeGateway {
    /// A gateway using `secret_key`, at `api_base` (Stripe's own when `None`).
    pub fn new(secret_key: &str, api_base: Option<&str>) -> Result<StripeGateway, GatewayError> {
        let mut builder = ClientBuilder::new(secret_key).timeout(Duration::from_secs(30));
        if let Some(base) = api_base {
            let base = if base.ends_with('/') {
                base.to_owned()
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder
            .build()
            .map_err(|e| GatewayError::Rejected(format!("cannot configure Stripe: {e}")))?;
        Ok(StripeGateway {
            client,
            test_mode: !secret_key.starts_with("sk_live_") && !secret_key.starts_with("rk_live_"),
        })
    }
}

impl StripeGateway {
    /// GETs one object with the async-stripe client (its key, API version, retries and
    /// errors) and hands back its JSON, of which Tally reads only the fields it needs.
    async fn read(&self, path: &str) -> Result<Value, GatewayError> {
        let raw: miniserde::json::Value = RequestBuilder::new(StripeMethod::Get, path)
            .customize()
            .send(&self.client)
            .await
            .map_err(classify)?;
        serde_json::from_str(&miniserde::json::to_string(&raw))
            .map_err(|e| GatewayError::Unavailable(format!("unreadable answer: {e}")))
    }
}

fn unreadable(what: &str) -> GatewayError {
    GatewayError::Unavailable(format!("the answer has no {what}"))
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// An id whether the field holds the id or the expanded object.
fn id_of(value: &Value) -> Option<String> {
    text(value).or_else(|| text(&value["id"]))
}

fn seconds_to_ms(value: &Value) -> Option<Millis> {
    value.as_i64().and_then(|s| s.checked_mul(1000))
}

/// Reads a Stripe subscription: its first item carries the price (plan and interval), the
/// seats, and (in current API versions) the current period.
pub fn subscription_from_json(body: &Value) -> Result<SubscriptionSnapshot, GatewayError> {
    let item = &body["items"]["data"][0];
    let price = &item["price"];
    let period = |field: &str| seconds_to_ms(&item[field]).or_else(|| seconds_to_ms(&body[field]));
    Ok(SubscriptionSnapshot {
        id: text(&body["id"]).ok_or_else(|| unreadable("id"))?,
        customer_id: id_of(&body["customer"]).ok_or_else(|| unreadable("customer"))?,
        status: text(&body["status"]).ok_or_else(|| unreadable("status"))?,
        plan_id: text(&price["metadata"]["tally_plan"]).or_else(|| text(&price["lookup_key"])),
        seats: item["quantity"]
            .as_u64()
            .and_then(|q| u32::try_from(q).ok())
            .unwrap_or(1),
        interval: text(&price["recurring"]["interval"]).ok_or_else(|| unreadable("interval"))?,
        current_period_start: period("current_period_start")
            .ok_or_else(|| unreadable("current period"))?,
        current_period_end: period("current_period_end")
            .ok_or_else(|| unreadable("current period"))?,
        cancel_at_period_end: body["cancel_at_period_end"].as_bool().unwrap_or(false),
    })
}

/// Whether an invoice line is a proration (of a change of seats), in the API's current
/// shape (`parent.*.proration`) or its older one (`proration`).
fn is_proration(line: &Value) -> bool {
    line["proration"] == true
        || line["parent"]["subscription_item_details"]["proration"] == true
        || line["parent"]["invoice_item_details"]["proration"] == true
}

/// Reads a Stripe invoice. Its own `period_*` fields describe the period *before* a renewal,
/// so the service period and the seats come from its lines: the charged lines of the period
/// itself when there are any (a renewal also collects the prorations of seats changed during
/// the period before, which pay for that period, not this one), else the charged prorations
/// (an invoice made at once for a change of seats also has a credit line for the unused old
/// seats), else all lines.
pub fn invoice_from_json(body: &Value) -> Result<InvoiceSnapshot, GatewayError> {
    let lines: Vec<&Value> = body["lines"]["data"]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let charged: Vec<&Value> = lines
        .iter()
        .copied()
        .filter(|l| l["amount"].as_i64().unwrap_or(0) > 0)
        .collect();
    let regular: Vec<&Value> = charged
        .iter()
        .copied()
        .filter(|l| !is_proration(l))
        .collect();
    let considered = if !regular.is_empty() {
        &regular
    } else if !charged.is_empty() {
        &charged
    } else {
        &lines
    };
    let seats = considered
        .iter()
        .filter_map(|l| l["quantity"].as_u64())
        .max()
        .and_then(|q| u32::try_from(q).ok())
        .unwrap_or(0);
    let start = considered
        .iter()
        .filter_map(|l| seconds_to_ms(&l["period"]["start"]))
        .min()
        .or_else(|| seconds_to_ms(&body["period_start"]));
    let end = considered
        .iter()
        .filter_map(|l| seconds_to_ms(&l["period"]["end"]))
        .max()
        .or_else(|| seconds_to_ms(&body["period_end"]));
    Ok(InvoiceSnapshot {
        id: text(&body["id"]).ok_or_else(|| unreadable("id"))?,
        customer_id: id_of(&body["customer"]).ok_or_else(|| unreadable("customer"))?,
        subscription_id: id_of(&body["parent"]["subscription_details"]["subscription"])
            .or_else(|| id_of(&body["subscription"])),
        status: text(&body["status"]).ok_or_else(|| unreadable("status"))?,
        charged: considered
            .iter()
            .filter_map(|l| l["amount"].as_i64())
            .sum::<i64>()
            .max(0),
        seats,
        period_start: start.ok_or_else(|| unreadable("period"))?,
        period_end: end.ok_or_else(|| unreadable("period"))?,
    })
}

fn key(text: &str) -> Result<RequestStrategy, GatewayError> {
    IdempotencyKey::new(text)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| GatewayError::Rejected(format!("bad idempotency key: {e}")))
}

fn currency(code: &str) -> stripe_types::Currency {
    code.to_ascii_lowercase()
        .parse()
        .expect("parsing a currency never fails")
}

/// Sorts Stripe's errors into what Tally can act on.
fn classify(err: StripeError) -> GatewayError {
    match err {
        StripeError::Stripe(api, 404) => {
            GatewayError::NotFound(api.message.clone().unwrap_or_default())
        }
        StripeError::Stripe(api, status) if status >= 500 || status == 429 => {
            GatewayError::Unavailable(
                api.message
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {status}")),
            )
        }
        StripeError::Stripe(api, _) => GatewayError::Rejected(
            api.message
                .clone()
                .unwrap_or_else(|| api.type_.as_str().to_owned()),
        ),
        StripeError::JSONDeserialize(e) => {
            GatewayError::Unavailable(format!("unreadable answer: {e}"))
        }
        StripeError::Timeout => GatewayError::Unavailable("timed out".into()),
        StripeError::ClientError(e) => GatewayError::Unavailable(e),
        StripeError::ConfigError(e) => GatewayError::Rejected(e),
    }
}

/// What a payment intent says, as Tally reads it.
fn snapshot(intent: &PaymentIntent) -> PaymentSnapshot {
    let failure = intent.last_payment_error.as_ref().map(|e| {
        e.message
            .clone()
            .unwrap_or_else(|| "The payment was declined.".to_owned())
    });
    let observation = match &intent.status {
        PaymentIntentStatus::Succeeded => PaymentObservation::Paid,
        PaymentIntentStatus::Processing => PaymentObservation::Processing,
        // Canceled after a declined attempt: the decline is the better explanation.
        PaymentIntentStatus::Canceled => match failure {
            Some(reason) => PaymentObservation::Failed(reason),
            None => PaymentObservation::Expired,
        },
        PaymentIntentStatus::RequiresPaymentMethod | PaymentIntentStatus::RequiresAction => {
            match failure {
                Some(reason) => PaymentObservation::Failed(reason),
                None => PaymentObservation::Open,
            }
        }
        _ => PaymentObservation::Open,
    };
    let needs_authentication = intent.status == PaymentIntentStatus::RequiresAction
        || intent.last_payment_error.as_ref().is_some_and(|e| {
            e.code == Some(ApiErrorsCode::AuthenticationRequired)
                || e.decline_code.as_deref() == Some("authentication_required")
        });
    let charge = intent.latest_charge.as_ref().and_then(|c| c.as_object());
    // A collected payment that was disputed or refunded in full is reversed, whatever its
    // intent's status says.
    let observation = match charge {
        Some(c) if c.disputed => PaymentObservation::Reversed("The payment was disputed.".into()),
        Some(c) if c.refunded => PaymentObservation::Reversed("The payment was refunded.".into()),
        _ => observation,
    };
    let card = charge
        .and_then(|c| c.payment_method_details.as_ref())
        .and_then(|d| d.card.as_ref());
    let payment_method = card.map(|card| {
        format!(
            "{} •••• {}",
            app::purchases::brand_label(card.brand.as_deref().unwrap_or("card")),
            card.last4.as_deref().unwrap_or("????")
        )
    });
    PaymentSnapshot {
        payment_intent_id: Some(intent.id.as_str().to_owned()),
        observation,
        purchase_id: intent.metadata.get("purchase_id").cloned(),
        workspace_id: intent.metadata.get("workspace_id").cloned(),
        amount_minor: intent.amount,
        currency: intent.currency.to_string(),
        payment_method,
        receipt_url: charge.and_then(|c| c.receipt_url.clone()),
        needs_authentication,
    }
}

#[async_trait::async_trait]
impl PaymentGateway for StripeGateway {
    fn test_mode(&self) -> bool {
        self.test_mode
    }

    async fn create_customer(
        &self,
        workspace_id: &str,
        workspace_name: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        let customer = CreateCustomer::new()
            .name(workspace_name)
            .metadata(HashMap::from([(
                "workspace_id".to_owned(),
                workspace_id.to_owned(),
            )]))
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(customer.id.as_str().to_owned())
    }

    async fn create_checkout(
        &self,
        request: &CheckoutRequest,
    ) -> Result<OpenCheckout, GatewayError> {
        let mut product = ProductData::new(request.description.clone());
        product.description = Some("Prepaid AI credits. Purchased credits never expire.".into());
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency(&request.currency));
        price.unit_amount = Some(request.amount_minor);
        price.product_data = Some(product);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let metadata = HashMap::from([
            ("purchase_id".to_owned(), request.purchase_id.clone()),
            ("workspace_id".to_owned(), request.workspace_id.clone()),
        ]);
        let mut intent = CreateCheckoutSessionPaymentIntentData::new();
        // Saves the card for later purchases and Auto-reload; the payment stays one-time.
        intent.setup_future_usage =
            Some(CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession);
        intent.metadata = Some(metadata.clone());
        intent.description = Some(request.description.clone());
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(request.customer_id.clone())
            .client_reference_id(request.purchase_id.clone())
            .success_url(request.success_url.clone())
            .cancel_url(request.cancel_url.clone())
            .metadata(metadata)
            .line_items(vec![item])
            .payment_intent_data(intent)
            .customize()
            .request_strategy(key(&request.idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(classify)?;
        let url = session
            .url
            .clone()
            .ok_or_else(|| GatewayError::Unavailable("the checkout has no payment page".into()))?;
        Ok(OpenCheckout {
            session_id: session.id.as_str().to_owned(),
            url,
        })
    }

    async fn checkout_payment(&self, session_id: &str) -> Result<PaymentSnapshot, GatewayError> {
        let session = RetrieveCheckoutSession::new(session_id)
            .send(&self.client)
            .await
            .map_err(classify)?;
        let mut found = match session.payment_intent.as_ref() {
            Some(intent) => self.payment(intent.id().as_str()).await?,
            None => PaymentSnapshot {
                payment_intent_id: None,
                observation: PaymentObservation::Open,
                purchase_id: None,
                workspace_id: None,
                amount_minor: session.amount_total.unwrap_or(0),
                currency: session
                    .currency
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                payment_method: None,
                receipt_url: None,
                needs_authentication: false,
            },
        };
        let metadata = session.metadata.clone().unwrap_or_default();
        found.purchase_id = found
            .purchase_id
            .or_else(|| metadata.get("purchase_id").cloned())
            .or(session.client_reference_id.clone());
        found.workspace_id = found
            .workspace_id
            .or_else(|| metadata.get("workspace_id").cloned());
        // An expired checkout was abandoned, unless it was paid; after a declined attempt
        // the decline is the better explanation.
        if session.status == Some(CheckoutSessionStatus::Expired)
            && matches!(
                found.observation,
                PaymentObservation::Open | PaymentObservation::Processing
            )
        {
            found.observation = PaymentObservation::Expired;
        }
        Ok(found)
    }

    async fn open_checkout(&self, session_id: &str) -> Result<Option<OpenCheckout>, GatewayError> {
        let session = RetrieveCheckoutSession::new(session_id)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(match (&session.status, session.url) {
            (Some(CheckoutSessionStatus::Open), Some(url)) => Some(OpenCheckout {
                session_id: session.id.as_str().to_owned(),
                url,
            }),
            _ => None,
        })
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<(), GatewayError> {
        ExpireCheckoutSession::new(session_id)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn payment(&self, payment_intent_id: &str) -> Result<PaymentSnapshot, GatewayError> {
        let intent = RetrievePaymentIntent::new(payment_intent_id)
            .expand(vec!["latest_charge".to_owned()])
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(snapshot(&intent))
    }

    async fn charge_off_session(
        &self,
        charge: &OffSessionCharge,
    ) -> Result<PaymentSnapshot, GatewayError> {
        let sent = CreatePaymentIntent::new(charge.amount_minor, currency(&charge.currency))
            .customer(charge.customer_id.clone())
            .payment_method(charge.payment_method_id.clone())
            .off_session(CreatePaymentIntentOffSession::Bool(true))
            .confirm(true)
            .description(charge.description.clone())
            .metadata(HashMap::from([
                ("purchase_id".to_owned(), charge.purchase_id.clone()),
                ("workspace_id".to_owned(), charge.workspace_id.clone()),
            ]))
            .customize()
            .request_strategy(key(&charge.idempotency_key)?)
            .send(&self.client)
            .await;
        match sent {
            Ok(intent) => Ok(snapshot(&intent)),
            // A decline: Stripe answers 402 with the failed intent inside the error.
            Err(StripeError::Stripe(api, 402)) => {
                let reason = api
                    .message
                    .clone()
                    .unwrap_or_else(|| "The card was declined.".to_owned());
                let mut found = match api.payment_intent.as_ref() {
                    Some(intent) => snapshot(intent),
                    None => PaymentSnapshot {
                        payment_intent_id: None,
                        observation: PaymentObservation::Failed(reason.clone()),
                        purchase_id: Some(charge.purchase_id.clone()),
                        workspace_id: Some(charge.workspace_id.clone()),
                        amount_minor: charge.amount_minor,
                        currency: charge.currency.clone(),
                        payment_method: None,
                        receipt_url: None,
                        needs_authentication: false,
                    },
                };
                // The error itself says why, whether or not it carried the intent.
                found.needs_authentication |= api.code
                    == Some(ApiErrorsCode::AuthenticationRequired)
                    || api.decline_code.as_deref() == Some("authentication_required");
                if !matches!(found.observation, PaymentObservation::Failed(_)) {
                    found.observation = PaymentObservation::Failed(reason);
                }
                Ok(found)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn subscription(&self, id: &str) -> Result<SubscriptionSnapshot, GatewayError> {
        let body = self.read(&format!("/subscriptions/{id}")).await?;
        subscription_from_json(&body)
    }

    async fn invoice(&self, id: &str) -> Result<InvoiceSnapshot, GatewayError> {
        let body = self.read(&format!("/invoices/{id}")).await?;
        invoice_from_json(&body)
    }

    async fn cards(&self, customer_id: &str) -> Result<Vec<CardOnFile>, GatewayError> {
        let default = match RetrieveCustomer::new(customer_id)
            .send(&self.client)
            .await
            .map_err(classify)?
        {
            RetrieveCustomerReturned::Customer(customer) => customer
                .invoice_settings
                .as_ref()
                .and_then(|s| s.default_payment_method.as_ref())
                .map(|pm| pm.id().as_str().to_owned()),
            RetrieveCustomerReturned::DeletedCustomer(_) => {
                return Err(GatewayError::NotFound(format!(
                    "customer {customer_id} was deleted"
                )))
            }
        };
        let list = ListPaymentMethodsCustomer::new(customer_id)
            .type_(ListPaymentMethodsCustomerType::Card)
            .send(&self.client)
            .await
            .map_err(classify)?;
        let mut cards: Vec<CardOnFile> = list
            .data
            .iter()
            .filter_map(|pm| {
                let card = pm.card.as_ref()?;
                Some(CardOnFile {
                    id: pm.id.as_str().to_owned(),
                    brand: card.brand.clone(),
                    last4: card.last4.clone(),
                    exp_month: u32::try_from(card.exp_month).unwrap_or(0),
                    exp_year: u32::try_from(card.exp_year).unwrap_or(0),
                    is_default: default.as_deref() == Some(pm.id.as_str()),
                })
            })
            .collect();
        // Without a default, the newest card is the one Tally would use.
        if !cards.iter().any(|c| c.is_default) {
            if let Some(first) = cards.first_mut() {
                first.is_default = true;
            }
        }
        cards.sort_by_key(|c| !c.is_default);
        Ok(cards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(amount: i64, quantity: u64, start: i64, end: i64, proration: bool) -> Value {
        json!({
            "amount": amount, "quantity": quantity, "period": {"start": start, "end": end},
            "parent": {"type": "subscription_item_details", "subscription_item_details": {"proration": proration}},
        })
    }

    fn invoice(lines: Vec<Value>, amount_paid: i64) -> Value {
        json!({
            "id": "in_1", "customer": "cus_1", "status": "paid", "amount_paid": amount_paid,
            "parent": {"subscription_details": {"subscription": "sub_1"}},
            "period_start": 1, "period_end": 2, "lines": {"data": lines},
        })
    }

    #[test]
    fn a_renewal_reads_its_own_period_not_the_prorations_it_collects() {
        let body = invoice(
            vec![
                line(10_000, 5, 1_000, 2_000, false),
                line(-4_000, 3, 500, 1_000, true),
                line(6_600, 5, 500, 1_000, true),
            ],
            12_600,
        );
        let read = invoice_from_json(&body).unwrap();
        assert_eq!(
            (read.seats, read.period_start, read.period_end, read.charged),
            (5, 1_000_000, 2_000_000, 10_000)
        );
    }

    #[test]
    fn an_invoice_made_for_a_change_of_seats_reads_its_charged_proration() {
        let body = invoice(
            vec![
                line(-4_000, 3, 500, 1_000, true),
                line(6_600, 5, 500, 1_000, true),
            ],
            2_600,
        );
        let read = invoice_from_json(&body).unwrap();
        assert_eq!(
            (read.seats, read.period_start, read.charged),
            (5, 500_000, 6_600)
        );
    }

    #[test]
    fn a_period_paid_from_the_customers_balance_still_counts_as_charged() {
        let mut lines = vec![line(4_000, 2, 1_000, 2_000, false)];
        lines.push(json!({"amount": -9_000, "quantity": 5, "proration": true, "period": {"start": 500, "end": 1_000}}));
        let read = invoice_from_json(&invoice(lines, 0)).unwrap();
        assert_eq!((read.charged, read.seats), (4_000, 2));
    }

    #[test]
    fn a_trial_invoice_charges_nothing() {
        let read = invoice_from_json(&invoice(vec![line(0, 3, 1_000, 2_000, false)], 0)).unwrap();
        assert_eq!((read.charged, read.seats), (0, 3));
    }
}
