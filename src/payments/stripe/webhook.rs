//! `POST /webhooks/stripe`: Stripe's events about payments, subscriptions and invoices.
//!
//! Each event is verified (HMAC-SHA256 over the raw body, 5-minute tolerance, against Tally's
//! clock), then the payment, subscription or invoice it concerns is re-read from Stripe,
//! because events arrive late, twice and out of order, and the re-read says where the object
//! stands now. The event id is recorded in the transaction that applies it, so an event is
//! applied once.

use crate::api::ApiError;
use crate::payments::subscriptions::SubscriptionApplied;
use crate::payments::{Applied, PaymentSnapshot, PurchaseRecord};
use crate::routing::RouteBook;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use stripe_webhook::{EventObject, Webhook, WebhookError};

/// The webhook route. Stripe's events are small; 256 KB is plenty.
pub fn routes() -> RouteBook<AppState> {
    RouteBook::new()
        .post("/webhooks/stripe", receive)
        .body_limit(256 * 1024)
}

/// What an event is about.
enum Subject {
    /// A checkout session: re-read it (and its payment).
    Checkout(String, Option<String>),
    /// A payment intent: re-read it.
    Payment(String, Option<String>),
    /// A subscription: re-read it and store its state.
    Subscription(String),
    /// An invoice: re-read it (and its subscription) and grant its credits once.
    Invoice(String),
    /// A customer's saved cards (or default card) changed: read them again.
    Cards(String),
    /// Nothing Tally acts on.
    Other,
}

/// The events that change a customer's saved cards.
const CARD_EVENTS: [&str; 5] = [
    "payment_method.attached",
    "payment_method.detached",
    "payment_method.updated",
    "payment_method.automatically_updated",
    "customer.updated",
];

/// The customer whose cards a card event concerns. A detached card no longer names its
/// customer; the event's `previous_attributes` still does.
fn card_customer(body: &str, event_type: &str) -> Option<String> {
    let raw: Value = serde_json::from_str(body).ok()?;
    let object = &raw["data"]["object"];
    let customer = if event_type == "customer.updated" {
        &object["id"]
    } else if object["customer"].is_string() {
        &object["customer"]
    } else {
        &raw["data"]["previous_attributes"]["customer"]
    };
    customer.as_str().map(str::to_owned)
}

/// Subscription and invoice events carry large objects whose shape moves with Stripe's API
/// versions; Tally only needs their type and id (or a dispute's payment), because it re-reads
/// the object. When the typed reading fails on a verified event, this reads just those.
fn envelope(body: &str) -> Option<(String, String, Subject)> {
    let raw: Value = serde_json::from_str(body).ok()?;
    let id = raw["id"].as_str()?.to_owned();
    let event_type = raw["type"].as_str()?.to_owned();
    let object = raw["data"]["object"]["id"].as_str().map(str::to_owned);
    let payment = raw["data"]["object"]["payment_intent"]
        .as_str()
        .map(str::to_owned);
    let subject = match (event_type.as_str(), object) {
        (t, Some(o)) if t.starts_with("customer.subscription.") => Subject::Subscription(o),
        ("invoice.paid" | "invoice.payment_succeeded", Some(o)) => Subject::Invoice(o),
        // A dispute or a refund is read back from its payment, as the typed path does.
        ("charge.dispute.created" | "charge.refunded", _) => match payment {
            Some(pi) => Subject::Payment(pi, None),
            None => Subject::Other,
        },
        _ => Subject::Other,
    };
    Some((id, event_type, subject))
}

#[tracing::instrument(skip_all)]
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let payments = &state.payments;
    let signature = headers
        .get("stripe-signature")
        .and_then(|h| h.to_str().ok())
        .ok_or(ApiError::BadSignature)?;
    let now_secs = state.clock.now_ms() / 1000;
    let (event_id, event_type, subject) = match Webhook::construct_event_with_timestamp(
        &body,
        signature,
        payments.webhook_secret(),
        now_secs,
    ) {
        Ok(event) => (
            event.id.as_str().to_owned(),
            event.type_.as_str().to_owned(),
            subject_of(&event.data.object),
        ),
        // The signature verified (parsing comes after it), so the sender is Stripe.
        Err(WebhookError::BadParse(detail)) => match envelope(&body) {
            Some(found) => found,
            None => {
                // An event Tally cannot read at all is logged and acknowledged (a retry
                // would not read better). Payments it concerned are still found by the
                // reconciliation job, which re-reads open purchases.
                tracing::warn!(%detail, "a signed Stripe event could not be read; ignored");
                return Ok(Json(json!({"received": true, "applied": false})));
            }
        },
        Err(err) => {
            tracing::info!(error = %err, "a Stripe webhook did not verify");
            return Err(ApiError::BadSignature);
        }
    };
    let subject = match CARD_EVENTS.contains(&event_type.as_str()) {
        true => card_customer(&body, &event_type).map_or(Subject::Other, Subject::Cards),
        false => subject,
    };
    let store = payments.store();
    if store.event_seen(&event_id).await? {
        return Ok(Json(json!({"received": true, "duplicate": true})));
    }
    let event = Some((event_id.as_str(), event_type.as_str()));
    match &subject {
        // Only a customer of one of Tally's workspaces; a read that fails makes Stripe
        // deliver the event again.
        Subject::Cards(customer) if store.workspace_for_customer(customer).await?.is_some() => {
            payments
                .refresh_cards_of_customer(customer)
                .await
                .map_err(unavailable)?;
            store
                .record_event(&event_id, &event_type, "cards_read", payments.now())
                .await?;
            return Ok(Json(json!({"received": true, "applied": true})));
        }
        Subject::Subscription(id) => {
            let applied = payments
                .sync_subscription(id, event)
                .await
                .map_err(unavailable)?;
            return Ok(Json(subscription_answer(&applied)));
        }
        Subject::Invoice(id) => {
            let applied = payments
                .sync_invoice(id, event)
                .await
                .map_err(unavailable)?;
            return Ok(Json(subscription_answer(&applied)));
        }
        _ => {}
    }
    let checkout = matches!(subject, Subject::Checkout(..));
    let (purchase, snapshot) = match subject {
        Subject::Checkout(session, purchase_id) => {
            let purchase = find(&state, purchase_id.as_deref(), Some(&session), None).await?;
            match purchase {
                Some(p) => (
                    Some(p),
                    Some(reread(payments.gateway().checkout_payment(&session).await)?),
                ),
                None => (None, None),
            }
        }
        Subject::Payment(intent, purchase_id) => {
            let known = find(&state, purchase_id.as_deref(), None, Some(&intent)).await?;
            let read = match &known {
                Some(_) => None,
                // A dispute names only its payment, and a payment Tally has not seen yet (the
                // one that confirmed an Auto-reload, say) is known only by its metadata.
                None => Some(reread(payments.gateway().payment(&intent).await)?),
            };
            let purchase = match (known, &read) {
                (Some(p), _) => Some(p),
                (None, Some(snapshot)) => {
                    find(&state, snapshot.purchase_id.as_deref(), None, None).await?
                }
                (None, None) => None,
            };
            match (purchase, read) {
                (Some(p), Some(snapshot)) => (Some(p), Some(snapshot)),
                (Some(p), None) => (
                    Some(p),
                    Some(reread(payments.gateway().payment(&intent).await)?),
                ),
                (None, _) => (None, None),
            }
        }
        Subject::Subscription(_) | Subject::Invoice(_) | Subject::Cards(_) | Subject::Other => {
            (None, None)
        }
    };
    let (Some(purchase), Some(snapshot)) = (purchase, snapshot) else {
        let first = store
            .record_ignored_event(&event_id, &event_type, payments.now())
            .await?;
        return Ok(Json(
            json!({"received": true, "applied": false, "duplicate": !first}),
        ));
    };
    // A payment made for another workspace's purchase (forged metadata) is never applied.
    if snapshot
        .workspace_id
        .as_deref()
        .is_some_and(|ws| ws != purchase.workspace_id.as_str())
    {
        tracing::error!(purchase = %purchase.id, "a payment names another workspace than its purchase; ignored");
        store
            .record_ignored_event(&event_id, &event_type, payments.now())
            .await?;
        return Ok(Json(json!({"received": true, "applied": false})));
    }
    let applied = store
        .apply_payment(
            &purchase.id,
            Some((&event_id, &event_type)),
            &snapshot,
            payments.now(),
        )
        .await?;
    // A paid checkout may have saved a card. Its own event will say so too; reading now
    // means the page the buyer returns to shows it.
    if checkout && matches!(applied, Applied::Step(..)) {
        if let Err(err) = payments.refresh_cards(&purchase.workspace_id).await {
            tracing::warn!(error = %err, "saved cards not read after a checkout");
        }
    }
    Ok(Json(match applied {
        Applied::Duplicate => json!({"received": true, "duplicate": true}),
        Applied::Step(step, after) => json!({
            "received": true,
            "applied": !matches!(step, app::domain::PurchaseStep::Nothing),
            "purchase": after.id,
            "status": after.status.as_str(),
        }),
    }))
}

/// What a typed event is about.
fn subject_of(object: &EventObject) -> Subject {
    match object {
        EventObject::CheckoutSessionCompleted(s)
        | EventObject::CheckoutSessionExpired(s)
        | EventObject::CheckoutSessionAsyncPaymentFailed(s)
        | EventObject::CheckoutSessionAsyncPaymentSucceeded(s) => Subject::Checkout(
            s.id.as_str().to_owned(),
            s.metadata
                .as_ref()
                .and_then(|m| m.get("purchase_id").cloned())
                .or_else(|| s.client_reference_id.clone()),
        ),
        EventObject::PaymentIntentSucceeded(pi)
        | EventObject::PaymentIntentPaymentFailed(pi)
        | EventObject::PaymentIntentProcessing(pi)
        | EventObject::PaymentIntentCanceled(pi) => Subject::Payment(
            pi.id.as_str().to_owned(),
            pi.metadata.get("purchase_id").cloned(),
        ),
        // Disputes and refunds are read back from the payment (its charge says so).
        EventObject::ChargeDisputeCreated(dispute) => match &dispute.payment_intent {
            Some(pi) => Subject::Payment(pi.id().as_str().to_owned(), None),
            None => Subject::Other,
        },
        EventObject::ChargeRefunded(charge) => match &charge.payment_intent {
            Some(pi) => Subject::Payment(pi.id().as_str().to_owned(), None),
            None => Subject::Other,
        },
        EventObject::CustomerSubscriptionCreated(s)
        | EventObject::CustomerSubscriptionUpdated(s)
        | EventObject::CustomerSubscriptionDeleted(s)
        | EventObject::CustomerSubscriptionPaused(s)
        | EventObject::CustomerSubscriptionResumed(s)
        | EventObject::CustomerSubscriptionTrialWillEnd(s) => {
            Subject::Subscription(s.id.as_str().to_owned())
        }
        EventObject::InvoicePaid(invoice) | EventObject::InvoicePaymentSucceeded(invoice) => {
            match &invoice.id {
                Some(id) => Subject::Invoice(id.as_str().to_owned()),
                None => Subject::Other,
            }
        }
        _ => Subject::Other,
    }
}

fn subscription_answer(applied: &SubscriptionApplied) -> Value {
    match applied {
        SubscriptionApplied::DuplicateEvent => json!({"received": true, "duplicate": true}),
        SubscriptionApplied::Granted { credits, .. } => {
            json!({"received": true, "applied": true, "granted": credits.get()})
        }
        SubscriptionApplied::Updated => json!({"received": true, "applied": true}),
        SubscriptionApplied::InvoiceSeen
        | SubscriptionApplied::NoCredits(_)
        | SubscriptionApplied::Ignored(_) => json!({"received": true, "applied": false}),
    }
}

/// A re-read that failed (Stripe away) makes Stripe deliver the event again later.
fn unavailable(err: crate::payments::PaymentsError) -> ApiError {
    match err {
        crate::payments::PaymentsError::Gateway(err) => {
            ApiError::Unavailable(format!("could not re-read the object from Stripe: {err}"))
        }
        other => ApiError::from(other),
    }
}

/// A failed re-read makes Stripe deliver the event again later.
fn reread(
    result: Result<PaymentSnapshot, crate::payments::GatewayError>,
) -> Result<PaymentSnapshot, ApiError> {
    result.map_err(|err| {
        ApiError::Unavailable(format!("could not re-read the payment from Stripe: {err}"))
    })
}

/// The purchase an event concerns, by its own id in the metadata first, then by the Stripe
/// object it is linked to.
#[tracing::instrument(skip_all)]
async fn find(
    state: &AppState,
    purchase_id: Option<&str>,
    session: Option<&str>,
    intent: Option<&str>,
) -> Result<Option<PurchaseRecord>, ApiError> {
    let store = state.payments.store();
    if let Some(id) = purchase_id {
        if let Some(found) = store.purchase_by_id(id).await? {
            return Ok(Some(found));
        }
    }
    if let Some(session) = session {
        if let Some(found) = store.purchase_by_checkout_session(session).await? {
            return Ok(Some(found));
        }
    }
    if let Some(intent) = intent {
        if let Some(found) = store.purchase_by_payment_intent(intent).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}
