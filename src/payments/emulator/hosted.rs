//! The pages a buyer's browser sees: the hosted checkout (a plain form post with a test
//! card) and the receipt. They need no API key; they serve only checkouts that can still be
//! paid and send the browser back only to the site.

use super::checkout::payable;
use super::error::EmuError;
use super::payment_intents::{Confirmation, Confirmed};
use super::{page, Emulator, EmulatorState, Kind};
use crate::payments::cards::{self, CardBehaviour};
use crate::routing::RouteBook;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .get("/checkout/{id}", checkout_page)
        .post("/checkout/{id}", pay_checkout)
        .get("/receipts/{id}", receipt_page)
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

fn on(state: &EmulatorState) -> Option<Arc<Emulator>> {
    state.clone()
}

/// The hosted payment page: only for a checkout that can still be paid.
async fn checkout_page(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(emu) = on(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let shown = async {
        Ok::<_, EmuError>(match emu.load(Kind::CheckoutSession, &id).await? {
            Some(session) if payable(&session, emu.now_secs()) => {
                let cancel = emu.return_address(session["cancel_url"].as_str(), &headers);
                let product = emu.product_of(&id).await?;
                html(
                    StatusCode::OK,
                    page::checkout(&session, &product, cancel.as_deref(), None, None),
                )
            }
            Some(session) => html(StatusCode::GONE, page::closed(&session)),
            None => html(StatusCode::NOT_FOUND, page::missing()),
        })
    };
    shown.await.unwrap_or_else(IntoResponse::into_response)
}

async fn pay_checkout(
    State(state): State<EmulatorState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let Some(emu) = on(&state) else {
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
    let product = emu.product_of(id).await?;
    let refuse = |session: &Value, message: &str| {
        Ok(PayOutcome::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::checkout(
                session,
                &product,
                cancel.as_deref(),
                Some(message),
                Some(form_echo(form)),
            ),
        ))
    };
    let Some(card) = cards::test_card(&form.card_number) else {
        return refuse(&session, "Use one of the test cards listed below. This is test mode: real card numbers are not accepted.");
    };
    let Some(expiry) = cards::parse_expiry(&form.expiry) else {
        return refuse(&session, "Enter the expiry date as MM/YY.");
    };
    let today = crate::clock::to_datetime(emu.clock.now_ms());
    let (year, month) = (
        chrono::Datelike::year(&today) as u32,
        chrono::Datelike::month(&today),
    );
    if (expiry.1, expiry.0) < (year, month) {
        return refuse(&session, "Your card's expiration date is in the past.");
    }
    let cvc = form.cvc.trim();
    if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
        return refuse(&session, "Your card's security code is incomplete.");
    }
    let intent = emu.checkout_intent(&mut session).await?;
    // A card is kept for later when the checkout asks for it, unless the bank refuses it
    // outright (a card that only fails when charged, like `…0341`, is kept).
    let saves = intent["setup_future_usage"].is_string()
        && !matches!(card.behaviour, CardBehaviour::Declines(_));
    let customer = session["customer"].as_str().map(str::to_owned);
    let name = form.name.trim();
    let method = emu
        .new_card(card, expiry, name, customer.as_deref().filter(|_| saves))
        .await?;
    // The page plays the bank's authentication step, so an on-session card that asks for
    // it goes through.
    let how = Confirmation {
        off_session: false,
        authenticated: true,
    };
    if let Confirmed::Declined(_, code) = emu.confirm(intent, &method, how).await? {
        return refuse(&session, cards::decline_message(code));
    }
    let email = match customer.as_deref() {
        Some(c) => emu
            .load(Kind::Customer, c)
            .await?
            .and_then(|c| c["email"].as_str().map(str::to_owned)),
        None => None,
    };
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["url"] = Value::Null;
    session["customer_details"] = json!({
        "address": null, "email": email.or_else(|| session["customer_email"].as_str().map(str::to_owned)),
        "name": if name.is_empty() { Value::Null } else { json!(name) },
        "phone": null, "tax_exempt": "none", "tax_ids": [], "business_name": null, "individual_name": null,
    });
    emu.save(id, Kind::CheckoutSession, customer.as_deref(), &session)
        .await?;
    emu.emit_late("checkout.session.completed", &session, None)
        .await?;
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
    let Some(emu) = on(&state) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match emu.load(Kind::Charge, &id).await {
        Ok(Some(charge)) if charge["status"] == "succeeded" => {
            html(StatusCode::OK, page::receipt(&charge))
        }
        Ok(_) => html(StatusCode::NOT_FOUND, page::missing()),
        Err(err) => err.into_response(),
    }
}
