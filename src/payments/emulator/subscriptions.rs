//! Subscriptions and invoices in the test-mode emulator.
//!
//! Prices are named `price_{plan}_{interval}` (`price_team_month`, `price_business_year`):
//! the price carries the plan in its `tally_plan` metadata, as an operator would set it on a
//! Stripe price. A seat costs 20.00 USD a month or 200.00 USD a year. Creating a subscription
//! (with an optional trial), changing its seats (an increase is invoiced pro rata at once),
//! canceling it, and `POST /v1/test_helpers/subscriptions/{id}/advance` (the end of the current
//! period: the next invoice is paid, or with `fail=true` declined) each send the events Stripe
//! would send.

use super::{
    authorised, idempotency_key, objects, Emu, EmuError, Emulator, EmulatorState, Kind, Params,
};
use crate::db::new_id;
use crate::routing::RouteBook;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Form, Json};
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
        .get("/v1/invoices/{id}", get_invoice)
}

/// A price id's plan and interval, and a seat's price in cents.
fn price(id: &str) -> Result<(String, &'static str, i64), EmuError> {
    let rest = id
        .strip_prefix("price_")
        .ok_or_else(|| EmuError::missing("price", id))?;
    let (plan, interval) = rest
        .rsplit_once('_')
        .ok_or_else(|| EmuError::missing("price", id))?;
    let (interval, unit) = match interval {
        "month" => ("month", 2_000),
        "year" => ("year", 20_000),
        _ => return Err(EmuError::missing("price", id)),
    };
    if plan.is_empty() {
        return Err(EmuError::missing("price", id));
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
        "id": id, "object": "price", "active": true, "currency": "usd", "unit_amount": unit,
        "lookup_key": plan, "metadata": {"tally_plan": plan}, "type": "recurring",
        "recurring": {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
    })
}

fn quantity(params: &Params) -> Result<i64, EmuError> {
    let quantity = params.int("items[0][quantity]")?.unwrap_or(1);
    if !(1..=10_000).contains(&quantity) {
        return Err(EmuError::invalid(
            "Invalid integer: quantity must be 1 or more.",
        ));
    }
    Ok(quantity)
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
        "description": description, "quantity": quantity,
        "period": {"start": start, "end": end},
        "pricing": {"type": "price_details", "price_details": {"price": price["id"]}},
    })
}

struct NewInvoice<'a> {
    subscription: &'a Value,
    billing_reason: &'a str,
    lines: Vec<Value>,
    paid: bool,
    created: i64,
}

fn invoice(f: NewInvoice<'_>) -> Value {
    let total: i64 = f.lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    let total = total.max(0);
    json!({
        "id": new_id("in"), "object": "invoice", "customer": f.subscription["customer"],
        "currency": "usd", "billing_reason": f.billing_reason, "created": f.created,
        "status": if f.paid { "paid" } else { "open" },
        "amount_due": total, "amount_paid": if f.paid { total } else { 0 },
        "amount_remaining": if f.paid { 0 } else { total },
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": f.subscription["id"], "metadata": {}}},
        "period_start": f.subscription["items"]["data"][0]["current_period_start"],
        "period_end": f.subscription["items"]["data"][0]["current_period_end"],
        "lines": objects::list("/v1/invoices/lines", f.lines),
    })
}

async fn save_invoice(emu: &Emulator, customer: &str, invoice: &Value) -> Result<(), EmuError> {
    let id = invoice["id"].as_str().unwrap_or_default();
    emu.save(id, Kind::Invoice, Some(customer), invoice).await
}

async fn create_subscription(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let key = idempotency_key(&headers);
    emu.clone()
        .idempotent(key, || async move {
            let customer = params.required("customer")?.to_owned();
            emu.must_load(Kind::Customer, &customer).await?;
            let price_id = params.required("items[0][price]")?;
            let (plan, interval, unit) = price(price_id)?;
            let seats = quantity(&params)?;
            let trial_days = params.int("trial_period_days")?.unwrap_or(0);
            if !(0..=730).contains(&trial_days) {
                return Err(EmuError::invalid(
                    "trial_period_days must be between 0 and 730.",
                ));
            }
            let now = emu.now_secs();
            let trialing = trial_days > 0;
            let end = if trialing {
                now + trial_days * 86_400
            } else {
                period_end(now, interval)
            };
            let id = new_id("sub");
            let price = price_object(price_id, &plan, interval, unit);
            let subscription = json!({
                "id": id, "object": "subscription", "customer": customer,
                "status": if trialing { "trialing" } else { "active" },
                "cancel_at_period_end": false, "created": now, "start_date": now,
                "trial_end": if trialing { json!(end) } else { Value::Null },
                "metadata": params.map("metadata"),
                "items": objects::list("/v1/subscription_items", vec![json!({
                    "id": new_id("si"), "object": "subscription_item", "subscription": id,
                    "price": price, "quantity": seats,
                    "current_period_start": now, "current_period_end": end,
                })]),
            });
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
                paid: true,
                created: now,
            });
            emu.save(&id, Kind::Subscription, Some(&customer), &subscription)
                .await?;
            save_invoice(&emu, &customer, &invoice).await?;
            emu.emit("customer.subscription.created", &subscription, 0)
                .await?;
            emu.emit("invoice.paid", &invoice, 1).await?;
            Ok(Json(subscription))
        })
        .await
}

async fn get_subscription(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    Ok(Json(
        authorised(&state, &headers)?
            .must_load(Kind::Subscription, &id)
            .await?,
    ))
}

async fn get_invoice(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    Ok(Json(
        authorised(&state, &headers)?
            .must_load(Kind::Invoice, &id)
            .await?,
    ))
}

/// Changes the seats (`items[0][quantity]`) or `cancel_at_period_end`. More seats on an
/// active subscription are invoiced at once for the rest of the period.
async fn update_subscription(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let _guard = emu.writes.lock().await;
    let mut subscription = emu.must_load(Kind::Subscription, &id).await?;
    if subscription["status"] == "canceled" {
        return Err(EmuError::invalid(
            "A canceled subscription can't be updated.",
        ));
    }
    let now = emu.now_secs();
    let customer = subscription["customer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(flag) = params.get("cancel_at_period_end") {
        subscription["cancel_at_period_end"] = json!(flag == "true");
    }
    let mut proration = None;
    if params.get("items[0][quantity]").is_some() {
        let seats = quantity(&params)?;
        let item = &subscription["items"]["data"][0];
        let old = item["quantity"].as_i64().unwrap_or(1);
        let (start, end) = (
            item["current_period_start"].as_i64().unwrap_or(now),
            item["current_period_end"].as_i64().unwrap_or(now),
        );
        let price = item["price"].clone();
        let unit = price["unit_amount"].as_i64().unwrap_or(0);
        subscription["items"]["data"][0]["quantity"] = json!(seats);
        if seats > old && subscription["status"] == "active" && end > now {
            // Stripe's pro rata: the unused time of the old seats back, the rest of the
            // period for the new count charged.
            let share = |seats: i64| unit * seats * (end - now) / (end - start).max(1);
            proration = Some(invoice(NewInvoice {
                subscription: &subscription,
                billing_reason: "subscription_update",
                lines: vec![
                    line(
                        -share(old),
                        old,
                        now,
                        end,
                        &price,
                        "Unused time on the previous seats",
                    ),
                    line(
                        share(seats),
                        seats,
                        now,
                        end,
                        &price,
                        "Remaining time on the new seats",
                    ),
                ],
                paid: true,
                created: now,
            }));
        }
    }
    emu.save(&id, Kind::Subscription, Some(&customer), &subscription)
        .await?;
    emu.emit("customer.subscription.updated", &subscription, 0)
        .await?;
    if let Some(invoice) = proration {
        save_invoice(&emu, &customer, &invoice).await?;
        emu.emit("invoice.paid", &invoice, 1).await?;
    }
    Ok(Json(subscription))
}

async fn cancel_subscription(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let _guard = emu.writes.lock().await;
    let mut subscription = emu.must_load(Kind::Subscription, &id).await?;
    let customer = subscription["customer"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    subscription["status"] = json!("canceled");
    subscription["canceled_at"] = json!(emu.now_secs());
    emu.save(&id, Kind::Subscription, Some(&customer), &subscription)
        .await?;
    emu.emit("customer.subscription.deleted", &subscription, 0)
        .await?;
    Ok(Json(subscription))
}

/// Ends the current period, as time passing would: the next period's invoice is paid (or,
/// with `fail=true`, left open and the subscription past due), a trial becomes active, and a
/// subscription set to cancel at the period's end is canceled.
async fn advance_subscription(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(params): Form<Vec<(String, String)>>,
) -> Emu {
    let emu = authorised(&state, &headers)?;
    let params = Params(params);
    let _guard = emu.writes.lock().await;
    let mut subscription = emu.must_load(Kind::Subscription, &id).await?;
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
        emu.save(&id, Kind::Subscription, Some(&customer), &subscription)
            .await?;
        emu.emit("customer.subscription.deleted", &subscription, 0)
            .await?;
        return Ok(Json(subscription));
    }
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
    let paid = !params.flag("fail");
    subscription["status"] = json!(if paid { "active" } else { "past_due" });
    let invoice = invoice(NewInvoice {
        subscription: &subscription,
        billing_reason: "subscription_cycle",
        lines: vec![line(
            unit * seats,
            seats,
            start,
            end,
            &price,
            &format!("{seats} × seats (per {interval})"),
        )],
        paid,
        created: emu.now_secs(),
    });
    emu.save(&id, Kind::Subscription, Some(&customer), &subscription)
        .await?;
    save_invoice(&emu, &customer, &invoice).await?;
    let event = if paid {
        "invoice.paid"
    } else {
        "invoice.payment_failed"
    };
    emu.emit(event, &invoice, 0).await?;
    emu.emit("customer.subscription.updated", &subscription, 1)
        .await?;
    Ok(Json(subscription))
}
