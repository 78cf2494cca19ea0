//! Stripe objects as the emulator writes them: every field of the object's Stripe type
//! (null when it has no value), and none of Tally's own, so a client reads them as it reads
//! Stripe's. The emulator's private facts (which test card a payment method is) are kept
//! apart, as notes.

use crate::payments::cards::{self, TestCard};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A list answer.
pub fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({"object": "list", "data": data, "has_more": has_more, "url": url})
}

pub fn customer(
    id: &str,
    name: Option<&str>,
    email: Option<&str>,
    metadata: &BTreeMap<String, String>,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": created,
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "discount": null, "email": email, "invoice_prefix": invoice_prefix(id),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false, "metadata": metadata, "name": name, "next_invoice_sequence": 1,
        "phone": null, "preferred_locales": [], "shipping": null, "tax_exempt": "none",
        "test_clock": null,
    })
}

/// Stripe gives each customer an invoice-number prefix of eight capitals and digits.
fn invoice_prefix(id: &str) -> String {
    id.chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// What a new payment intent holds.
pub struct IntentFields<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
    pub setup_future_usage: Option<&'a str>,
    pub description: Option<&'a str>,
    pub capture_method: &'a str,
    pub created: i64,
}

pub fn payment_intent(f: IntentFields<'_>) -> Value {
    let first = json!({
        "id": f.id, "object": "payment_intent", "allowed_payment_method_types": null,
        "amount": f.amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": null,
        "application_fee_amount": null, "automatic_payment_methods": null, "canceled_at": null,
        "cancellation_reason": null, "capture_method": f.capture_method,
        "client_secret": format!("{}_secret_test", f.id), "confirmation_method": "automatic",
        "created": f.created, "currency": f.currency.to_ascii_lowercase(), "customer": f.customer,
        "customer_account": null, "description": f.description,
        "excluded_payment_method_types": null, "last_payment_error": null, "latest_charge": null,
        "livemode": false, "managed_payments": null, "metadata": f.metadata, "next_action": null,
        "on_behalf_of": null, "payment_record": null,
    });
    let rest = json!({
        "payment_method": null, "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": null, "receipt_email": null,
        "review": null, "setup_future_usage": f.setup_future_usage, "shipping": null,
        "source": null, "statement_descriptor": null, "statement_descriptor_suffix": null,
        "status": "requires_payment_method", "transfer_data": null, "transfer_group": null,
    });
    joined(first, rest)
}

/// The `last_payment_error` of a declined intent.
pub fn card_error(decline_code: &str, method: &Value) -> Value {
    json!({
        "type": "card_error", "code": cards::error_code(decline_code),
        "decline_code": decline_code,
        "message": cards::decline_message(decline_code),
        "payment_method": method, "payment_method_type": "card",
    })
}

fn card_details(card: &TestCard, expiry: (u32, u32)) -> Value {
    json!({
        "brand": card.brand, "display_brand": card.brand, "country": "US",
        "exp_month": expiry.0, "exp_year": expiry.1, "funding": "credit",
        "last4": &card.number[card.number.len() - 4..],
        "fingerprint": format!("fp_{}", &card.number[card.number.len() - 8..]),
        "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
        "networks": {"available": [card.brand], "preferred": null},
        "three_d_secure_usage": {"supported": true},
        "wallet": null, "generated_from": null,
        "regulated_status": "unregulated",
    })
}

fn billing_details(name: &str) -> Value {
    json!({
        "address": {"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null},
        "email": null, "name": if name.is_empty() { Value::Null } else { json!(name) },
        "phone": null, "tax_id": null,
    })
}

pub fn payment_method(
    id: &str,
    card: &TestCard,
    expiry: (u32, u32),
    name: &str,
    customer: Option<&str>,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "payment_method", "type": "card", "created": created,
        "allow_redisplay": "unspecified", "livemode": false, "customer": customer,
        "customer_account": null,
        "metadata": {}, "radar_options": {}, "billing_details": billing_details(name),
        "card": card_details(card, expiry),
    })
}

/// What a new charge holds.
pub struct ChargeFields<'a> {
    pub id: &'a str,
    pub intent: &'a Value,
    pub method: &'a Value,
    pub receipt_url: &'a str,
    pub created: i64,
    /// The decline code of a failed charge.
    pub failure: Option<&'a str>,
    /// False for a manual capture not yet captured.
    pub captured: bool,
}

pub fn charge(f: ChargeFields<'_>) -> Value {
    let (intent, method) = (f.intent, f.method);
    let paid = f.failure.is_none();
    let outcome = match f.failure {
        None => {
            json!({"advice_code": null, "network_advice_code": null, "network_decline_code": null, "network_status": "approved_by_network", "reason": null, "risk_level": "normal", "risk_score": 20, "seller_message": "Payment complete.", "type": "authorized"})
        }
        Some(code) => {
            json!({"advice_code": "try_again_later", "network_advice_code": null, "network_decline_code": null, "network_status": "declined_by_network", "reason": code, "risk_level": "normal", "risk_score": 20, "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined"})
        }
    };
    let card = &method["card"];
    let details = json!({"type": "card", "card": {
        "amount_authorized": intent["amount"], "authorization_code": null,
        "brand": card["brand"], "last4": card["last4"],
        "exp_month": card["exp_month"], "exp_year": card["exp_year"],
        "fingerprint": card["fingerprint"],
        "funding": "credit", "country": "US", "network": card["brand"],
        "checks": card["checks"], "electronic_commerce_indicator": null, "installments": null,
        "mandate": null, "network_token": {"used": false}, "network_transaction_id": null,
        "regulated_status": "unregulated", "three_d_secure": null, "transaction_link_id": null,
        "wallet": null,
    }});
    let refunds = json!({"object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{}/refunds", f.id)});
    let first = json!({
        "id": f.id, "object": "charge", "amount": intent["amount"],
        "amount_captured": if paid && f.captured { intent["amount"].clone() } else { json!(0) },
        "amount_refunded": 0, "application": null, "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": null, "billing_details": method["billing_details"],
        "calculated_statement_descriptor": "TALLY", "captured": paid && f.captured,
        "created": f.created, "currency": intent["currency"], "customer": intent["customer"],
        "description": intent["description"], "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": f.failure.map(cards::error_code),
        "failure_message": f.failure.map(cards::decline_message),
    });
    let rest = json!({
        "fraud_details": {}, "livemode": false, "metadata": intent["metadata"],
        "on_behalf_of": null, "outcome": outcome, "paid": paid,
        "payment_intent": intent["id"], "payment_method": method["id"],
        "payment_method_details": details,
        "receipt_email": null, "receipt_number": null,
        "receipt_url": if paid { json!(f.receipt_url) } else { Value::Null },
        "refunded": false,
        "refunds": refunds,
        "review": null, "shipping": null, "source": null, "source_transfer": null,
        "statement_descriptor": null, "statement_descriptor_suffix": null,
        "status": if paid { "succeeded" } else { "failed" },
        "transfer_data": null, "transfer_group": null,
    });
    joined(first, rest)
}

/// One object from two halves (a Stripe object's fields outgrow one `json!`).
fn joined(mut first: Value, rest: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (first.as_object_mut(), rest) {
        a.extend(b);
    }
    first
}

pub fn dispute(id: &str, charge: &Value, created: i64) -> Value {
    json!({
        "id": id, "object": "dispute", "amount": charge["amount"], "balance_transactions": [],
        "charge": charge["id"], "created": created, "currency": charge["currency"],
        "enhanced_eligibility_types": [], "is_charge_refundable": false, "livemode": false,
        "metadata": {}, "network_reason_code": null, "payment_intent": charge["payment_intent"],
        "payment_method_details": {"type": "card", "card": {"brand": charge["payment_method_details"]["card"]["brand"], "case_type": "chargeback", "network": charge["payment_method_details"]["card"]["network"], "network_reason_code": null}},
        "reason": "fraudulent", "status": "needs_response",
        "evidence": empty_evidence(),
        "evidence_details": {"due_by": created + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false, "submission_count": 0},
    })
}

/// A dispute's evidence before anything was submitted.
fn empty_evidence() -> Value {
    let mut evidence = serde_json::Map::new();
    for field in [
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    ] {
        evidence.insert(field.to_owned(), Value::Null);
    }
    evidence.insert("enhanced_evidence".to_owned(), json!({}));
    Value::Object(evidence)
}

/// What one line item of a checkout holds.
pub struct ItemFields<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub unit_amount: i64,
    pub quantity: i64,
    pub currency: &'a str,
    pub created: i64,
}

/// A checkout line item (Stripe's `item`), with its ad hoc price and product.
pub fn line_item(f: ItemFields<'_>) -> Value {
    let product = format!("prod_{}", &f.id[3.min(f.id.len())..]);
    let amount = f.unit_amount * f.quantity;
    json!({
        "id": f.id, "object": "item", "adjustable_quantity": null, "amount_discount": 0, "amount_subtotal": amount,
        "amount_tax": 0, "amount_total": amount, "currency": f.currency,
        "description": f.name,
        "price": {
            "id": format!("price_{}", &f.id[3.min(f.id.len())..]), "object": "price", "active": false,
            "billing_scheme": "per_unit", "created": f.created, "currency": f.currency,
            "custom_unit_amount": null, "livemode": false, "lookup_key": null, "metadata": {},
            "nickname": null, "product": product, "recurring": null,
            "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
            "type": "one_time", "unit_amount": f.unit_amount,
            "unit_amount_decimal": f.unit_amount.to_string(),
        },
        "metadata": {}, "quantity": f.quantity,
    })
}

/// What a new checkout session holds.
pub struct SessionFields<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub client_reference_id: Option<&'a str>,
    pub success_url: &'a str,
    pub cancel_url: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
    pub created: i64,
    pub expires_at: i64,
}

pub fn checkout_session(f: SessionFields<'_>) -> Value {
    let first = json!({
        "id": f.id, "object": "checkout.session", "adaptive_pricing": {"enabled": false},
        "after_expiration": null, "allow_promotion_codes": null, "allowed_payment_method_types": null,
        "amount_subtotal": f.amount, "amount_total": f.amount,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null, "cancel_url": f.cancel_url,
        "client_reference_id": f.client_reference_id, "client_secret": null,
        "collected_information": null, "consent": null, "consent_collection": null,
        "created": f.created, "currency": f.currency.to_ascii_lowercase(),
        "currency_conversion": null, "custom_fields": [],
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null},
        "customer": f.customer, "customer_account": null,
        "customer_creation": if f.customer.is_some() { Value::Null } else { json!("if_required") },
        "customer_details": null, "customer_email": f.customer_email, "discounts": [],
        "expires_at": f.expires_at, "integration_identifier": null, "invoice": null,
        "invoice_creation": {"enabled": false, "invoice_data": {"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null}},
    });
    let rest = json!({
        "livemode": false, "locale": null, "managed_payments": null, "metadata": f.metadata,
        "mode": "payment", "origin_context": null,
        "payment_intent": null, "payment_link": null,
        "payment_method_collection": "if_required", "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "payment_status": "unpaid", "permissions": null,
        "phone_number_collection": {"enabled": false}, "recovered_from": null,
        "saved_payment_method_options": null, "setup_intent": null, "shipping_address_collection": null,
        "shipping_cost": null, "shipping_options": [], "status": "open", "submit_type": null,
        "subscription": null, "success_url": f.success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted", "url": f.url, "wallet_options": null,
    });
    joined(first, rest)
}

/// What a new event holds.
pub struct EventFields<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub object: &'a Value,
    pub previous_attributes: Option<Value>,
    pub pending_webhooks: usize,
    pub created: i64,
}

pub fn event(f: EventFields<'_>) -> Value {
    let mut data = json!({"object": f.object});
    if let Some(previous) = f.previous_attributes {
        data["previous_attributes"] = previous;
    }
    json!({
        "id": f.id, "object": "event",
        "api_version": stripe_shared::version::VERSION.as_str(),
        "created": f.created, "data": data, "livemode": false,
        "pending_webhooks": f.pending_webhooks,
        "request": {"id": null, "idempotency_key": null},
        "type": f.event_type,
    })
}

/// What a new webhook endpoint holds.
pub struct EndpointFields<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub enabled_events: &'a [String],
    pub description: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
    pub created: i64,
}

pub fn webhook_endpoint(f: EndpointFields<'_>) -> Value {
    json!({
        "id": f.id, "object": "webhook_endpoint",
        "api_version": stripe_shared::version::VERSION.as_str(), "application": null,
        "created": f.created, "description": f.description, "enabled_events": f.enabled_events,
        "livemode": false, "metadata": f.metadata, "status": "enabled", "url": f.url,
    })
}
