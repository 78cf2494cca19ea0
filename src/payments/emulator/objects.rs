//! Stripe objects as the emulator writes them: every field Stripe's API reference marks as
//! always present, so async-stripe reads them as it reads Stripe's own (the purchase tests
//! read each kind through the gateway).

use crate::payments::cards::TestCard;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A list answer.
pub fn list(url: &str, data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data, "has_more": false, "url": url})
}

pub fn customer(
    id: &str,
    name: Option<&str>,
    email: Option<&str>,
    metadata: &BTreeMap<String, String>,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "customer", "created": created, "livemode": false,
        "name": name, "email": email, "metadata": metadata, "balance": 0, "delinquent": false,
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
    })
}

#[allow(clippy::too_many_arguments)]
pub fn payment_intent(
    id: &str,
    amount: i64,
    currency: &str,
    customer: Option<&str>,
    metadata: &BTreeMap<String, String>,
    setup_future_usage: Option<&str>,
    description: Option<&str>,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": 0, "capture_method": "automatic", "confirmation_method": "automatic",
        "created": created, "currency": currency.to_ascii_lowercase(), "customer": customer,
        "description": description, "livemode": false, "metadata": metadata,
        "payment_method": null, "payment_method_types": ["card"],
        "setup_future_usage": setup_future_usage, "status": "requires_payment_method",
        "latest_charge": null, "last_payment_error": null,
        "client_secret": format!("{id}_secret_test"),
    })
}

/// The `last_payment_error` of a declined intent.
pub fn card_error(decline_code: &str, method: &Value) -> Value {
    let code = if decline_code == "authentication_required" {
        "authentication_required"
    } else {
        "card_declined"
    };
    json!({
        "type": "card_error", "code": code, "decline_code": decline_code,
        "message": crate::payments::cards::decline_message(decline_code),
        "payment_method": method,
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
    json!({"address": null, "email": null, "name": if name.is_empty() { Value::Null } else { json!(name) }, "phone": null, "tax_id": null})
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
        "livemode": false, "customer": customer, "metadata": {},
        "billing_details": billing_details(name),
        "card": card_details(card, expiry),
        // The emulator's own note of which test card this is (Stripe keeps the number;
        // clients ignore fields they do not know).
        "tally_test_behaviour": card.number,
    })
}

pub fn charge(id: &str, intent: &Value, method: &Value, receipt_url: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "charge", "amount": intent["amount"], "amount_captured": intent["amount"],
        "amount_refunded": 0, "captured": true, "created": created,
        "currency": intent["currency"], "customer": intent["customer"], "description": intent["description"],
        "disputed": false, "livemode": false, "metadata": intent["metadata"], "paid": true,
        "payment_intent": intent["id"], "payment_method": method["id"], "refunded": false,
        "status": "succeeded", "receipt_url": receipt_url,
        "billing_details": method["billing_details"],
        "payment_method_details": {"type": "card", "card": {
            "brand": method["card"]["brand"], "last4": method["card"]["last4"],
            "exp_month": method["card"]["exp_month"], "exp_year": method["card"]["exp_year"],
            "funding": "credit", "country": "US", "network": method["card"]["brand"],
            "checks": null, "installments": null, "mandate": null, "three_d_secure": null, "wallet": null,
        }},
        "outcome": {"network_status": "approved_by_network", "reason": null, "risk_level": "normal", "seller_message": "Payment complete.", "type": "authorized"},
        "refunds": null,
    })
}

pub fn dispute(id: &str, charge: &Value, created: i64) -> Value {
    json!({
        "id": id, "object": "dispute", "amount": charge["amount"], "balance_transactions": [],
        "charge": charge["id"], "created": created, "currency": charge["currency"],
        "enhanced_eligibility_types": [], "is_charge_refundable": false, "livemode": false,
        "metadata": {}, "payment_intent": charge["payment_intent"], "reason": "fraudulent",
        "status": "needs_response",
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

/// What a new checkout session holds.
pub struct SessionFields<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub product: &'a str,
    pub customer: Option<&'a str>,
    pub client_reference_id: Option<&'a str>,
    pub success_url: &'a str,
    pub cancel_url: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
    pub payment_intent: &'a str,
    pub created: i64,
    pub expires_at: i64,
}

pub fn checkout_session(f: SessionFields<'_>) -> Value {
    json!({
        "id": f.id, "object": "checkout.session", "mode": "payment", "status": "open",
        "payment_status": "unpaid", "url": f.url, "livemode": false, "created": f.created,
        "expires_at": f.expires_at, "amount_subtotal": f.amount, "amount_total": f.amount,
        "currency": f.currency.to_ascii_lowercase(), "customer": f.customer,
        "client_reference_id": f.client_reference_id, "success_url": f.success_url,
        "cancel_url": f.cancel_url, "metadata": f.metadata, "payment_intent": f.payment_intent,
        "payment_method_types": ["card"], "custom_fields": [], "shipping_options": [],
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "custom_text": {"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null},
        // Not Stripe's: the line item's name, for the hosted page.
        "tally_product_name": f.product,
    })
}

pub fn event(id: &str, event_type: &str, object: &Value, created: i64) -> Value {
    json!({
        "id": id, "object": "event", "api_version": stripe_shared::version::VERSION.as_str(),
        "created": created, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type, "data": {"object": object},
    })
}
