//! Subscriptions and invoices in the test-mode emulator.
//!
//! Prices are named `price_{plan}_{interval}` (`price_team_month`, `price_business_year`):
//! the price carries the plan in its `tally_plan` metadata, as an operator would set it on a
//! Stripe price. A seat costs 20.00 USD a month or 200.00 USD a year. Creating a subscription
//! (with an optional trial), changing its seats, canceling it, and
//! `POST /v1/test_helpers/subscriptions/{id}/advance` (the end of the current period) each send
//! the events Stripe would send. A change of seats in a paid period is prorated as Stripe's
//! `proration_behavior` says: by default (`create_prorations`) the unused time of the old
//! seats and the rest of the period for the new count become pending invoice items that the
//! next renewal invoice collects; `always_invoice` invoices them at once; `none` makes none. Invoices are collected from the
//! subscription's or the customer's default card: with none, or a card that declines (or
//! `fail=true` on advance), the invoice stays open and the subscription is `incomplete` (when
//! new) or `past_due`.

use super::error::EmuError;
use super::request::{Call, Params};
use super::{objects, Emu, Emulator, EmulatorState, Kind};
use crate::db::new_id;
use crate::payments::cards::CardBehaviour;
use crate::routing::RouteBook;
use axum::extract::Path;
use axum::Json;
use chrono::{DateTime, Months};
use serde_json::{json, Value};

/// The billing routes, under `/v1`.
pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .post("/v1/subscriptions", create_subscription)
        .get("/v1/subscriptions/{id}", get_subscription)
        .post("/v1/subscriptions/{id}", update_subscription)
        .delete("/v1/subscriptions/{id}", cancel_subscription)
        .post(
            "/v1/test_helpers/subscriptions/{id}/advance",
            advance_subscription,
        )
        .get("/v1/invoices", list_invoices)
        .get("/v1/invoices/{id}", get_invoice)
        .get("/v1/invoiceitems", list_invoice_items)
        .get("/v1/invoiceitems/{id}", get_invoice_item)
}

/// What a change of seats does about the time already paid for (Stripe's
/// `proration_behavior`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proration {
    /// Pending invoice items, collected by the next invoice (Stripe's default).
    Create,
    /// An invoice for the prorations at once.
    AlwaysInvoice,
    /// No prorations: the new count is charged from the next period.
    None,
}

impl Proration {
    fn parse(params: &Params) -> Result<Self, EmuError> {
        match params.get("proration_behavior") {
            None | Some("create_prorations") => Ok(Proration::Create),
            Some("always_invoice") => Ok(Proration::AlwaysInvoice),
            Some("none") => Ok(Proration::None),
            Some(other) => Err(EmuError::bad_param(
                "parameter_invalid_string",
                "proration_behavior",
                format!(
                    "Invalid proration_behavior: must be one of create_prorations, always_invoice, or none (got {other:?})."
                ),
            )),
        }
    }
}

/// Where a subscription's invoice line comes from (Stripe's `line.parent`): the
/// subscription item itself, or a pending invoice item (a proration) the invoice collected.
fn line_parent(subscription: &Value, proration: bool, invoice_item: Option<&Value>) -> Value {
    let details = json!({"credited_items": null});
    match invoice_item {
        Some(item) => json!({
            "type": "invoice_item_details", "subscription_item_details": null,
            "invoice_item_details": {"invoice_item": item["id"], "proration": proration, "proration_details": details, "subscription": subscription["id"]},
        }),
        None => json!({
            "type": "subscription_item_details", "invoice_item_details": null,
            "subscription_item_details": {"invoice_item": null, "proration": proration, "proration_details": details, "subscription": subscription["id"], "subscription_item": subscription["items"]["data"][0]["id"]},
        }),
    }
}

/// A proration waiting for the next invoice (Stripe's pending invoice item).
fn pending_item(subscription: &Value, line: &Value, now: i64) -> Value {
    json!({
        "id": new_id("ii"), "object": "invoiceitem", "amount": line["amount"], "currency": "usd",
        "customer": subscription["customer"], "customer_account": null, "date": now,
        "description": line["description"], "discountable": false, "discounts": [],
        "invoice": null, "livemode": false, "metadata": {}, "net_amount": line["amount"],
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription["id"], "subscription_item": subscription["items"]["data"][0]["id"]}},
        "period": line["period"], "pricing": line["pricing"], "proration": true,
        "proration_details": {"credited_items": null, "discount_amounts": []},
        "quantity": line["quantity"], "quantity_decimal": line["quantity_decimal"],
        "tax_rates": [], "test_clock": null,
    })
}

/// A price id's plan and interval, and a seat's price in cents.
fn price(id: &str) -> Result<(String, &'static str, i64), EmuError> {
    let rest = id
        .strip_prefix("price_")
        .ok_or_else(|| EmuError::missing_in_param("price", id, "items[0][price]"))?;
    let (plan, interval) = rest
        .rsplit_once('_')
        .ok_or_else(|| EmuError::missing_in_param("price", id, "items[0][price]"))?;
    let (interval, unit) = match interval {
        "month" => ("month", 2_000),
        "year" => ("year", 20_000),
        _ => return Err(EmuError::missing_in_param("price", id, "items[0][price]")),
    };
    if plan.is_empty() {
        return Err(EmuError::missing_in_param("price", id, "items[0][price]"));
    }
    Ok((plan.to_owned(), interval, unit))
}

/// The end of a period that starts at `start` (seconds).
fn period_end(start: i64, interval: &str) -> i64 {
    let months = if interval == "year" { 12 } else { 1 };
    DateTime::from_timestamp(start, 0)
        .and_then(|t| t.checked_add_months(Months::new(months)))
        .map(|t| t.timestamp())
        .unwrap_or(start + 30 * 86_400 * i64::from(months))
}

fn price_object(id: &str, plan: &str, interval: &str, unit: i64) -> Value {
    json!({
        "id": id, "object": "price", "active": true, "billing_scheme": "per_unit",
        "created": 1_700_000_000, "currency": "usd", "custom_unit_amount": null,
        "livemode": false, "lookup_key": plan, "metadata": {"tally_plan": plan},
        "nickname": null, "product": format!("prod_{plan}"),
        "recurring": {"interval": interval, "interval_count": 1, "meter": null, "trial_period_days": null, "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
        "type": "recurring", "unit_amount": unit, "unit_amount_decimal": unit.to_string(),
    })
}

/// The legacy plan Stripe still sends beside an item's price.
fn plan_object(price: &Value) -> Value {
    json!({
        "id": price["id"], "object": "plan", "active": true, "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"], "billing_scheme": "per_unit",
        "created": price["created"], "currency": price["currency"],
        "interval": price["recurring"]["interval"], "interval_count": 1, "livemode": false,
        "metadata": price["metadata"], "meter": null, "nickname": null, "product": price["product"],
        "tiers_mode": null, "transform_usage": null, "trial_period_days": null, "usage_type": "licensed",
    })
}

/// A subscription's fixed fields beside its own.
fn subscription_object(fields: Value) -> Value {
    let mut subscription = json!({
        "object": "subscription", "application": null, "application_fee_percent": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor_config": null,
        "billing_mode": {"flexible": null, "type": "classic"}, "billing_schedules": [],
        "billing_thresholds": null, "cancel_at": null, "canceled_at": null,
        "cancellation_details": {"comment": null, "feedback": null, "feedback_option": null, "reason": null},
        "collection_method": "charge_automatically", "currency": "usd", "days_until_due": null,
        "default_payment_method": null, "default_source": null, "description": null,
        "discounts": [], "ended_at": null,
        "customer_account": null,
        "invoice_settings": {"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": {"type": "self"}},
        "livemode": false, "managed_payments": null, "next_pending_invoice_item_invoice": null, "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off"},
        "pending_invoice_item_interval": null, "pending_setup_intent": null, "pending_update": null,
        "schedule": null, "test_clock": null, "transfer_data": null, "trial_start": null,
        "trial_settings": {"end_behavior": {"billing_cycle_anchor": "unchanged", "missing_payment_method": "create_invoice"}},
    });
    if let (Some(base), Value::Object(own)) = (subscription.as_object_mut(), fields) {
        base.extend(own);
    }
    subscription
}

fn quantity(params: &Params) -> Result<i64, EmuError> {
    let quantity = params.int("items[0][quantity]")?.unwrap_or(1);
    if !(1..=10_000).contains(&quantity) {
        return Err(EmuError::bad_param(
            "parameter_invalid_integer",
            "items[0][quantity]",
            "Invalid integer: quantity must be between 1 and 10000.",
        ));
    }
    Ok(quantity)
}

/// The top-level fields an update changed, with their values before it (Stripe's
/// `data.previous_attributes`).
fn previous_attributes(before: &Value, after: &Value) -> Value {
    let mut previous = serde_json::Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (field, old) in before {
            if after.get(field) != Some(old) {
                previous.insert(field.clone(), old.clone());
            }
        }
    }
    Value::Object(previous)
}

/// One invoice line.
fn line(
    amount: i64,
    quantity: i64,
    start: i64,
    end: i64,
    price: &Value,
    description: &str,
) -> Value {
    json!({
        "id": new_id("il"), "object": "line_item", "amount": amount, "currency": "usd",
        "description": description, "discount_amounts": [], "discountable": true,
        "discounts": [], "invoice": null, "livemode": false, "metadata": {}, "parent": null,
        "quantity": quantity, "quantity_decimal": quantity.to_string(), "subscription": null,
        "subtotal": amount,
        "period": {"start": start, "end": end}, "pretax_credit_amounts": [], "taxes": [],
        "pricing": {"type": "price_details", "unit_amount_decimal": price["unit_amount_decimal"], "price_details": {"price": price["id"], "product": price["product"]}},
    })
}

struct NewInvoice<'a> {
    subscription: &'a Value,
    billing_reason: &'a str,
    lines: Vec<Value>,
    created: i64,
}

fn invoice(f: NewInvoice<'_>) -> Value {
    let total: i64 = f.lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    let total = total.max(0);
    let id = new_id("in");
    let lines: Vec<Value> = f
        .lines
        .into_iter()
        .map(|mut l| {
            l["invoice"] = json!(id);
            l["subscription"] = f.subscription["id"].clone();
            if l["parent"].is_null() {
                l["parent"] = line_parent(f.subscription, false, None);
            }
            l
        })
        .collect();
    let subtotal: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    let first = json!({
        "id": id, "object": "invoice", "account_country": "US", "account_name": "Tally test mode",
        "account_tax_ids": null, "amount_due": total, "amount_overpaid": 0,
        "amount_paid": 0, "amount_remaining": total, "amount_shipping": 0,
        "application": null, "attempt_count": 0, "attempted": false, "auto_advance": true,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
        "automatically_finalizes_at": null, "billing_reason": f.billing_reason,
        "collection_method": "charge_automatically", "created": f.created, "currency": "usd",
        "custom_fields": null, "customer": f.subscription["customer"], "customer_account": null,
        "customer_address": null,
        "customer_email": null, "customer_name": null, "customer_phone": null,
        "customer_shipping": null, "customer_tax_exempt": "none", "customer_tax_ids": [],
    });
    let middle = json!({
        "default_payment_method": null, "default_source": null, "default_tax_rates": [],
        "description": null, "discounts": [], "due_date": null, "effective_at": f.created,
        "ending_balance": 0, "footer": null, "from_invoice": null,
        "hosted_invoice_url": null, "invoice_pdf": null,
    });
    let rest = json!({
        "issuer": {"type": "self"}, "last_finalization_error": null, "latest_revision": null,
        "lines": objects::list(&format!("/v1/invoices/{id}/lines"), lines, false),
        "livemode": false, "metadata": {}, "next_payment_attempt": null,
        "number": null, "on_behalf_of": null,
        "parent": {"type": "subscription_details", "quote_details": null, "subscription_details": {"subscription": f.subscription["id"], "metadata": {}}},
        "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
        "period_start": f.subscription["items"]["data"][0]["current_period_start"],
        "period_end": f.subscription["items"]["data"][0]["current_period_end"],
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
        "receipt_number": null, "rendering": null, "shipping_cost": null, "shipping_details": null,
        "starting_balance": 0, "statement_descriptor": null,
        "status": "draft",
        "status_transitions": {"finalized_at": f.created, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
        "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "test_clock": null,
        "total": total, "total_discount_amounts": [], "total_excluding_tax": total,
        "total_pretax_credit_amounts": [], "total_taxes": [], "webhooks_delivered_at": f.created,
    });
    let mut invoice = first;
    if let Some(a) = invoice.as_object_mut() {
        for part in [middle, rest] {
            if let Value::Object(b) = part {
                a.extend(b);
            }
        }
    }
    invoice
}

/// How collecting an invoice went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payment {
    Paid,
    /// The card was declined.
    Declined,
    /// There is no card to charge.
    NoMethod,
}

impl Emulator {
    /// Charges the subscription's card (its own default, else the customer's) for an
    /// invoice, as Stripe's automatic collection does.
    async fn collect(&self, subscription: &Value) -> Result<Payment, EmuError> {
        let method_id = match subscription["default_payment_method"].as_str() {
            Some(pm) => Some(pm.to_owned()),
            None => match subscription["customer"].as_str() {
                Some(customer) => self.load(Kind::Customer, customer).await?.and_then(|c| {
                    c["invoice_settings"]["default_payment_method"]
                        .as_str()
                        .map(str::to_owned)
                }),
                None => None,
            },
        };
        let Some(method) = method_id else {
            return Ok(Payment::NoMethod);
        };
        let Some(method) = self.load(Kind::PaymentMethod, &method).await? else {
            return Ok(Payment::NoMethod);
        };
        Ok(match self.card_of(&method).await?.behaviour {
            CardBehaviour::Succeeds | CardBehaviour::Disputed => Payment::Paid,
            _ => Payment::Declined,
        })
    }

    /// Finalises an invoice, records how its payment went, and sends the events Stripe
    /// sends for that.
    async fn settle_invoice(
        &self,
        customer: &str,
        mut invoice: Value,
        outcome: Payment,
    ) -> Result<(), EmuError> {
        let total = invoice["total"].clone();
        let paid = outcome == Payment::Paid;
        invoice["status"] = json!(if paid { "paid" } else { "open" });
        invoice["amount_paid"] = if paid { total.clone() } else { json!(0) };
        invoice["amount_remaining"] = if paid { json!(0) } else { total };
        invoice["attempted"] = json!(outcome != Payment::NoMethod);
        invoice["attempt_count"] = json!(u8::from(outcome != Payment::NoMethod));
        invoice["status_transitions"]["paid_at"] = if paid {
            invoice["created"].clone()
        } else {
            Value::Null
        };
        save_invoice(self, customer, &invoice).await?;
        self.emit("invoice.created", &invoice, None).await?;
        self.emit("invoice.finalized", &invoice, None).await?;
        match outcome {
            Payment::Paid => {
                self.emit_late("invoice.paid", &invoice, None).await?;
                self.emit_late("invoice.payment_succeeded", &invoice, None)
                    .await?;
            }
            Payment::Declined => {
                self.emit_late("invoice.payment_failed", &invoice, None)
                    .await?;
            }
            Payment::NoMethod => {}
        }
        Ok(())
    }
}

async fn save_invoice(emu: &Emulator, customer: &str, invoice: &Value) -> Result<(), EmuError> {
    let id = invoice["id"].as_str().unwrap_or_default();
    emu.save(id, Kind::Invoice, Some(customer), invoice).await
}

async fn create_subscription(call: Call) -> Emu {
    call.once(|| async {
        let (emu, params) = (&call.emu, &call.params);
        let customer = params.required("customer")?.to_owned();
        emu.load_param(Kind::Customer, &customer, "customer")
            .await?;
        let price_id = params.required("items[0][price]")?;
        let (plan, interval, unit) = price(price_id)?;
        let seats = quantity(params)?;
        let trial_days = params.int("trial_period_days")?.unwrap_or(0);
        if !(0..=730).contains(&trial_days) {
            return Err(EmuError::bad_param(
                "parameter_invalid_integer",
                "trial_period_days",
                "trial_period_days must be between 0 and 730.",
            ));
        }
        let default_param = "default_payment_method";
        let default_method = match params.get(default_param).filter(|m| !m.is_empty()) {
            Some(pm) => {
                let method = emu.load_param(Kind::PaymentMethod, pm, default_param).await?;
                if method["customer"] != customer.as_str() {
                    return Err(EmuError::bad_param(
                        "resource_missing",
                        default_param,
                        format!("The payment method {pm} is not attached to customer {customer}."),
                    ));
                }
                json!(pm)
            }
            None => Value::Null,
        };
        let now = emu.now_secs();
        let trialing = trial_days > 0;
        let end = if trialing {
            now + trial_days * 86_400
        } else {
            period_end(now, interval)
        };
        let id = new_id("sub");
        let price = price_object(price_id, &plan, interval, unit);
        let mut subscription = subscription_object(json!({
            "id": id, "customer": customer,
            "status": if trialing { "trialing" } else { "active" },
            "billing_cycle_anchor": end,
            "cancel_at_period_end": false, "created": now, "start_date": now,
            "trial_start": if trialing { json!(now) } else { Value::Null },
            "trial_end": if trialing { json!(end) } else { Value::Null },
            "metadata": params.map("metadata"), "latest_invoice": null,
            "default_payment_method": default_method,
            "items": objects::list(&format!("/v1/subscription_items?subscription={id}"), vec![json!({
                "id": new_id("si"), "object": "subscription_item", "subscription": id,
                "billing_thresholds": null, "created": now, "current_trial": null, "discounts": [], "metadata": {},
                "plan": plan_object(&price), "price": price, "quantity": seats, "tax_rates": [],
                "current_period_start": now, "current_period_end": end,
            })], false),
        }));
        let amount = if trialing { 0 } else { unit * seats };
        let description = if trialing {
            format!("Trial period for {seats} × {plan}")
        } else {
            format!("{seats} × {plan} (per {interval})")
        };
        let invoice = invoice(NewInvoice {
            subscription: &subscription,
            billing_reason: "subscription_create",
            lines: vec![line(amount, seats, now, end, &price, &description)],
            created: now,
        });
        // A trial's $0 invoice is paid as it is made; the first paid period needs a card
        // that pays. Without one Stripe leaves the subscription `incomplete` and its first
        // invoice open.
        let outcome = if trialing {
            Payment::Paid
        } else {
            emu.collect(&subscription).await?
        };
        if outcome != Payment::Paid {
            subscription["status"] = json!("incomplete");
        }
        subscription["latest_invoice"] = invoice["id"].clone();
        emu.save(&id, Kind::Subscription, Some(&customer), &subscription)
            .await?;
        emu.emit("customer.subscription.created", &subscription, None)
            .await?;
        emu.settle_invoice(&customer, invoice, outcome).await?;
        Ok(Json(subscription))
    })
    .await
}

async fn get_subscription(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::Subscription, &id).await?))
}

async fn get_invoice(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::Invoice, &id).await?))
}

/// Invoices newest first, of one customer or one subscription when asked.
async fn list_invoices(call: Call) -> Emu {
    let customer = call.params.get("customer").map(str::to_owned);
    if let Some(customer) = &customer {
        call.emu
            .load_param(Kind::Customer, customer, "customer")
            .await?;
    }
    let subscription = call.params.get("subscription").map(str::to_owned);
    Ok(Json(
        call.emu
            .page(
                "/v1/invoices",
                Kind::Invoice,
                customer.as_deref(),
                &call.params,
                |invoice| {
                    subscription.as_deref().is_none_or(|s| {
                        invoice["parent"]["subscription_details"]["subscription"] == s
                    })
                },
            )
            .await?,
    ))
}

/// Changes the seats (`items[0][quantity]`) or `cancel_at_period_end`. A change of seats in
/// a paid period is prorated as `proration_behavior` says (see the module's note).
async fn update_subscription(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| update(&call.emu, &id, &call.params)).await
}

async fn update(emu: &Emulator, id: &str, params: &Params) -> Emu {
    let mut subscription = emu.must_load(Kind::Subscription, id).await?;
    if subscription["status"] == "canceled" {
        return Err(EmuError::invalid(
            "A canceled subscription can't be updated.",
        ));
    }
    let behaviour = Proration::parse(params)?;
    let now = emu.now_secs();
    let before = subscription.clone();
    let customer = subscription["customer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(flag) = params.get("cancel_at_period_end") {
        subscription["cancel_at_period_end"] = json!(flag == "true");
    }
    let mut prorations = Vec::new();
    if params.get("items[0][quantity]").is_some() {
        let seats = quantity(params)?;
        let item = &subscription["items"]["data"][0];
        let old = item["quantity"].as_i64().unwrap_or(1);
        let (start, end) = (
            item["current_period_start"].as_i64().unwrap_or(now),
            item["current_period_end"].as_i64().unwrap_or(now),
        );
        let price = item["price"].clone();
        let unit = price["unit_amount"].as_i64().unwrap_or(0);
        subscription["items"]["data"][0]["quantity"] = json!(seats);
        let paid_period = matches!(subscription["status"].as_str(), Some("active" | "past_due"));
        if seats != old && paid_period && end > now && behaviour != Proration::None {
            // Stripe's pro rata: the unused time of the old seats back, the rest of the
            // period for the new count charged.
            let share = |seats: i64| unit * seats * (end - now) / (end - start).max(1);
            prorations = vec![
                line(
                    -share(old),
                    old,
                    now,
                    end,
                    &price,
                    &format!("Unused time on {old} × seats"),
                ),
                line(
                    share(seats),
                    seats,
                    now,
                    end,
                    &price,
                    &format!("Remaining time on {seats} × seats"),
                ),
            ];
        }
    }
    let proration_invoice = match behaviour {
        Proration::AlwaysInvoice if !prorations.is_empty() => {
            let lines = prorations
                .into_iter()
                .map(|mut l| {
                    l["parent"] = line_parent(&subscription, true, None);
                    l
                })
                .collect();
            let invoice = invoice(NewInvoice {
                subscription: &subscription,
                billing_reason: "subscription_update",
                lines,
                created: now,
            });
            subscription["latest_invoice"] = invoice["id"].clone();
            Some(invoice)
        }
        _ => {
            for line in &prorations {
                let item = pending_item(&subscription, line, now);
                let item_id = item["id"].as_str().unwrap_or_default().to_owned();
                emu.save(&item_id, Kind::InvoiceItem, Some(&customer), &item)
                    .await?;
                emu.emit("invoiceitem.created", &item, None).await?;
            }
            None
        }
    };
    emu.save(id, Kind::Subscription, Some(&customer), &subscription)
        .await?;
    emu.emit(
        "customer.subscription.updated",
        &subscription,
        Some(previous_attributes(&before, &subscription)),
    )
    .await?;
    if let Some(invoice) = proration_invoice {
        // A credit larger than the charge leaves nothing to collect (Stripe keeps the rest
        // as the customer's balance).
        let outcome = if invoice["total"].as_i64().unwrap_or(0) > 0 {
            emu.collect(&subscription).await?
        } else {
            Payment::Paid
        };
        emu.settle_invoice(&customer, invoice, outcome).await?;
    }
    Ok(Json(subscription))
}

/// The subscription's pending invoice items, oldest first, with the invoice lines they
/// become.
async fn pending_items(
    emu: &Emulator,
    subscription: &Value,
    customer: &str,
) -> Result<(Vec<Value>, Vec<Value>), EmuError> {
    let (mut pending, mut lines) = (Vec::new(), Vec::new());
    let mut items = emu.all(Kind::InvoiceItem, Some(customer)).await?;
    items.reverse();
    for item in items {
        let waiting = item["invoice"].is_null()
            && item["parent"]["subscription_details"]["subscription"] == subscription["id"];
        if !waiting {
            continue;
        }
        let mut l = line(
            item["amount"].as_i64().unwrap_or(0),
            item["quantity"].as_i64().unwrap_or(1),
            item["period"]["start"].as_i64().unwrap_or(0),
            item["period"]["end"].as_i64().unwrap_or(0),
            &subscription["items"]["data"][0]["price"],
            item["description"].as_str().unwrap_or_default(),
        );
        l["parent"] = line_parent(subscription, true, Some(&item));
        lines.push(l);
        pending.push(item);
    }
    Ok((pending, lines))
}

async fn get_invoice_item(Path(id): Path<String>, call: Call) -> Emu {
    Ok(Json(call.emu.must_load(Kind::InvoiceItem, &id).await?))
}

/// Invoice items newest first: of one customer, one invoice, or only the pending ones
/// (`pending=true`) when asked.
async fn list_invoice_items(call: Call) -> Emu {
    let customer = call.params.get("customer").map(str::to_owned);
    if let Some(customer) = &customer {
        call.emu
            .load_param(Kind::Customer, customer, "customer")
            .await?;
    }
    let invoice = call.params.get("invoice").map(str::to_owned);
    let pending = call.params.get("pending").map(|p| p == "true");
    Ok(Json(
        call.emu
            .page(
                "/v1/invoiceitems",
                Kind::InvoiceItem,
                customer.as_deref(),
                &call.params,
                |item| {
                    invoice.as_deref().is_none_or(|i| item["invoice"] == i)
                        && pending.is_none_or(|p| item["invoice"].is_null() == p)
                },
            )
            .await?,
    ))
}

async fn cancel_subscription(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| cancel(&call.emu, &id)).await
}

async fn cancel(emu: &Emulator, id: &str) -> Emu {
    let mut subscription = emu.must_load(Kind::Subscription, id).await?;
    let customer = subscription["customer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    subscription["status"] = json!("canceled");
    subscription["canceled_at"] = json!(emu.now_secs());
    emu.save(id, Kind::Subscription, Some(&customer), &subscription)
        .await?;
    emu.emit("customer.subscription.deleted", &subscription, None)
        .await?;
    Ok(Json(subscription))
}

/// Ends the current period, as time passing would: the next period's invoice is paid (or,
/// with `fail=true`, left open and the subscription past due), a trial becomes active, and a
/// subscription set to cancel at the period's end is canceled.
async fn advance_subscription(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| advance(&call.emu, &id, &call.params)).await
}

async fn advance(emu: &Emulator, id: &str, params: &Params) -> Emu {
    let mut subscription = emu.must_load(Kind::Subscription, id).await?;
    if subscription["status"] == "canceled" {
        return Err(EmuError::invalid(
            "A canceled subscription has no next period.",
        ));
    }
    let customer = subscription["customer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if subscription["cancel_at_period_end"] == true {
        subscription["status"] = json!("canceled");
        emu.save(id, Kind::Subscription, Some(&customer), &subscription)
            .await?;
        emu.emit("customer.subscription.deleted", &subscription, None)
            .await?;
        return Ok(Json(subscription));
    }
    let before = subscription.clone();
    let item = subscription["items"]["data"][0].clone();
    let price = item["price"].clone();
    let interval = price["recurring"]["interval"]
        .as_str()
        .unwrap_or("month")
        .to_owned();
    let start = item["current_period_end"]
        .as_i64()
        .unwrap_or_else(|| emu.now_secs());
    let end = period_end(start, &interval);
    let seats = item["quantity"].as_i64().unwrap_or(1);
    let unit = price["unit_amount"].as_i64().unwrap_or(0);
    subscription["items"]["data"][0]["current_period_start"] = json!(start);
    subscription["items"]["data"][0]["current_period_end"] = json!(end);
    let (pending, mut lines) = pending_items(emu, &subscription, &customer).await?;
    lines.insert(
        0,
        line(
            unit * seats,
            seats,
            start,
            end,
            &price,
            &format!("{seats} × seats (per {interval})"),
        ),
    );
    let invoice = invoice(NewInvoice {
        subscription: &subscription,
        billing_reason: "subscription_cycle",
        lines,
        created: emu.now_secs(),
    });
    for mut item in pending {
        item["invoice"] = invoice["id"].clone();
        let item_id = item["id"].as_str().unwrap_or_default().to_owned();
        emu.save(&item_id, Kind::InvoiceItem, Some(&customer), &item)
            .await?;
    }
    // Prorations can leave nothing to collect (Stripe keeps a larger credit as the
    // customer's balance).
    let outcome = if params.flag("fail") {
        Payment::Declined
    } else if invoice["total"].as_i64().unwrap_or(0) > 0 {
        emu.collect(&subscription).await?
    } else {
        Payment::Paid
    };
    let paid = outcome == Payment::Paid;
    subscription["status"] = json!(if paid { "active" } else { "past_due" });
    subscription["latest_invoice"] = invoice["id"].clone();
    emu.save(id, Kind::Subscription, Some(&customer), &subscription)
        .await?;
    emu.settle_invoice(&customer, invoice, outcome).await?;
    emu.emit_late(
        "customer.subscription.updated",
        &subscription,
        Some(previous_attributes(&before, &subscription)),
    )
    .await?;
    Ok(Json(subscription))
}
