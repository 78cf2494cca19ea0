//! Checkout sessions in payment mode: create (every line item counts), retrieve (with
//! `expand[]`), list their line items, expire. As at Stripe, a new session has no payment
//! intent: one is made when the buyer pays on the hosted page ([`super::hosted`]).

use super::error::EmuError;
use super::request::{Call, Params};
use super::{objects, Emu, Emulator, EmulatorState, Kind};
use crate::db::new_id;
use crate::routing::RouteBook;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

pub fn routes() -> RouteBook<EmulatorState> {
    RouteBook::new()
        .post("/v1/checkout/sessions", create_checkout_session)
        .get("/v1/checkout/sessions", list_checkout_sessions)
        .get("/v1/checkout/sessions/{id}", get_checkout_session)
        .get("/v1/checkout/sessions/{id}/line_items", get_line_items)
        .post("/v1/checkout/sessions/{id}/expire", expire_checkout_session)
}

/// What the session's payment will carry, kept as the emulator's note until it is made.
fn intent_note_id(session_id: &str) -> String {
    format!("note_intent_{session_id}")
}

fn line_items_id(session_id: &str) -> String {
    format!("li_list_{session_id}")
}

/// The session's line items, as Stripe's `item` objects, and their total.
fn line_items(params: &Params, now: i64) -> Result<(Vec<Value>, i64, String), EmuError> {
    let indices = params.indices("line_items");
    if indices.is_empty() {
        return Err(EmuError::missing_param("line_items"));
    }
    let mut items = Vec::new();
    let mut total = 0i64;
    let mut currency: Option<String> = None;
    for i in indices {
        let key = |rest: &str| format!("line_items[{i}]{rest}");
        if let Some(price) = params.get(&key("[price]")) {
            // The emulator sells ad hoc prices only, as Tally's gateway does.
            return Err(EmuError::missing_in_param("price", price, &key("[price]")));
        }
        let unit_param = key("[price_data][unit_amount]");
        let unit = params
            .int(&unit_param)?
            .ok_or_else(|| EmuError::missing_param(&unit_param))?;
        if unit < 0 {
            return Err(EmuError::bad_param(
                "parameter_invalid_integer",
                &unit_param,
                "This value must be greater than or equal to 0.",
            ));
        }
        let quantity_param = key("[quantity]");
        let quantity = params
            .int(&quantity_param)?
            .ok_or_else(|| EmuError::missing_param(&quantity_param))?;
        if !(1..=999_999).contains(&quantity) {
            return Err(EmuError::bad_param(
                "parameter_invalid_integer",
                &quantity_param,
                "This value must be between 1 and 999999.",
            ));
        }
        let currency_param = key("[price_data][currency]");
        let item_currency = params.required(&currency_param)?.to_ascii_lowercase();
        match &currency {
            Some(c) if *c != item_currency => {
                return Err(EmuError::bad_param(
                    "parameter_invalid_string",
                    &currency_param,
                    "All line items must be in the same currency.",
                ))
            }
            _ => currency = Some(item_currency.clone()),
        }
        let name = params.required(&key("[price_data][product_data][name]"))?;
        let amount = unit
            .checked_mul(quantity)
            .and_then(|a| total.checked_add(a).map(|t| (a, t)))
            .ok_or_else(|| {
                EmuError::bad_param("amount_too_large", &unit_param, "The total is too large.")
            })?;
        total = amount.1;
        items.push(objects::line_item(objects::ItemFields {
            id: &new_id("li"),
            name,
            unit_amount: unit,
            quantity,
            currency: &item_currency,
            created: now,
        }));
    }
    Ok((items, total, currency.unwrap_or_default()))
}

async fn create_checkout_session(call: Call) -> Emu {
    call.once(|| async {
        let (emu, params) = (&call.emu, &call.params);
        match params.required("mode")? {
            "payment" => {}
            other => {
                return Err(EmuError::bad_param(
                    "parameter_invalid_string",
                    "mode",
                    format!("The test-mode emulator plays mode=payment only, not {other}."),
                ))
            }
        }
        let success_url = params.required("success_url")?;
        let cancel_url = params.get("cancel_url").filter(|u| !u.is_empty());
        for (name, url) in [("success_url", Some(success_url)), ("cancel_url", cancel_url)] {
            if let Some(url) = url {
                emu.check_return_address(name, url)?;
            }
        }
        let customer = params.get("customer").filter(|c| !c.is_empty());
        if let Some(customer) = customer {
            emu.load_param(Kind::Customer, customer, "customer").await?;
        }
        let now = emu.now_secs();
        let id = format!("cs_test_{}", &new_id("cs")[3..]);
        let (items, total, currency) = line_items(params, now)?;
        let expires_at = params.int("expires_at")?.unwrap_or(now + 86_400);
        if !(now + 1_800..=now + 86_400).contains(&expires_at) {
            return Err(EmuError::bad_param(
                "parameter_invalid_integer",
                "expires_at",
                "expires_at must be between 30 minutes and 24 hours from now.",
            ));
        }
        let session = objects::checkout_session(objects::SessionFields {
            id: &id,
            url: &format!("{}/_stripe/checkout/{id}", emu.config.public_base),
            amount: total,
            currency: &currency,
            customer,
            customer_email: params.get("customer_email"),
            client_reference_id: params.get("client_reference_id"),
            success_url,
            cancel_url,
            metadata: &params.map("metadata"),
            created: now,
            expires_at,
        });
        let names: Vec<String> = items
            .iter()
            .filter_map(|i| i["description"].as_str().map(str::to_owned))
            .collect();
        emu.save(&id, Kind::CheckoutSession, customer, &session)
            .await?;
        emu.save(
            &line_items_id(&id),
            Kind::LineItems,
            None,
            &objects::list(&format!("/v1/checkout/sessions/{id}/line_items"), items, false),
        )
        .await?;
        emu.save(
            &intent_note_id(&id),
            Kind::Note,
            None,
            &json!({
                "metadata": params.map("payment_intent_data[metadata]"),
                "setup_future_usage": params.get("payment_intent_data[setup_future_usage]"),
                "description": params.get("payment_intent_data[description]").map(str::to_owned).unwrap_or_else(|| names.join(", ")),
                "capture_method": params.get("payment_intent_data[capture_method]").unwrap_or("automatic"),
            }),
        )
        .await?;
        Ok(Json(session))
    })
    .await
}

impl Emulator {
    /// What a checkout sells, for its hosted page.
    pub(super) async fn product_of(&self, session_id: &str) -> Result<String, EmuError> {
        let items = self
            .load(Kind::LineItems, &line_items_id(session_id))
            .await?;
        let names: Vec<String> = items
            .as_ref()
            .and_then(|l| l["data"].as_array())
            .map(|data| {
                data.iter()
                    .filter_map(|i| {
                        let name = i["description"].as_str()?;
                        Some(match i["quantity"].as_i64() {
                            Some(q) if q > 1 => format!("{q} × {name}"),
                            _ => name.to_owned(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(if names.is_empty() {
            "Credits".to_owned()
        } else {
            names.join(", ")
        })
    }

    /// The payment intent a checkout's payment makes (once: a retry after a decline reuses
    /// it), saved on the session.
    pub(super) async fn checkout_intent(&self, session: &mut Value) -> Result<Value, EmuError> {
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        if let Some(pi) = session["payment_intent"].as_str() {
            return self.must_load(Kind::PaymentIntent, pi).await;
        }
        let note = self
            .load(Kind::Note, &intent_note_id(&id))
            .await?
            .unwrap_or_default();
        let metadata = note["metadata"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let customer = session["customer"].as_str().map(str::to_owned);
        let customer = customer.as_deref();
        let intent = objects::payment_intent(objects::IntentFields {
            id: &new_id("pi"),
            amount: session["amount_total"].as_i64().unwrap_or(0),
            currency: session["currency"].as_str().unwrap_or("usd"),
            customer,
            metadata: &metadata,
            setup_future_usage: note["setup_future_usage"].as_str(),
            description: note["description"].as_str(),
            capture_method: if note["capture_method"] == "manual" {
                "manual"
            } else {
                "automatic"
            },
            created: self.now_secs(),
        });
        self.save(
            intent["id"].as_str().unwrap_or_default(),
            Kind::PaymentIntent,
            customer,
            &intent,
        )
        .await?;
        self.emit("payment_intent.created", &intent, None).await?;
        session["payment_intent"] = intent["id"].clone();
        self.save(&id, Kind::CheckoutSession, customer, session)
            .await?;
        Ok(intent)
    }

    /// A checkout's return addresses must be web addresses on the site itself: the payment
    /// page is served from Tally's origin, so anything else would make it an open redirect
    /// (or run a `javascript:` link there).
    fn check_return_address(&self, name: &str, url: &str) -> Result<(), EmuError> {
        let web = crate::web::origin::is_web_address(&url.replace("{CHECKOUT_SESSION_ID}", "x"));
        let on_site = match &self.config.site_url {
            Some(site) => crate::web::origin::on_site(url, Some(site), &HeaderMap::new()),
            None => true,
        };
        if web && on_site {
            Ok(())
        } else {
            Err(EmuError::bad_param(
                "url_invalid",
                name,
                format!("Invalid URL: {name} must be an http or https address on this site."),
            ))
        }
    }

    /// A return address to send the browser of this page request to, if it is on the site.
    pub(super) fn return_address(&self, url: Option<&str>, headers: &HeaderMap) -> Option<String> {
        url.filter(|u| crate::web::origin::on_site(u, self.config.site_url.as_deref(), headers))
            .map(str::to_owned)
    }

    /// Expires an open checkout session and cancels its payment intent, if it has one.
    pub(super) async fn expire_session(&self, id: &str) -> Result<Value, EmuError> {
        let mut session = self.must_load(Kind::CheckoutSession, id).await?;
        if session["status"] != "open" {
            return Err(EmuError::invalid(format!(
                "Only Checkout Sessions with a status of open can be expired. This one is {}.",
                session["status"].as_str().unwrap_or("unknown")
            )));
        }
        session["status"] = json!("expired");
        session["url"] = Value::Null;
        self.save(
            id,
            Kind::CheckoutSession,
            session["customer"].as_str(),
            &session,
        )
        .await?;
        if let Some(pi_id) = session["payment_intent"].as_str() {
            if let Some(intent) = self.load(Kind::PaymentIntent, pi_id).await? {
                if intent["status"] != "canceled" && intent["status"] != "succeeded" {
                    self.cancel_intent(intent, "abandoned").await?;
                }
            }
        }
        self.emit("checkout.session.expired", &session, None)
            .await?;
        Ok(session)
    }

    /// A session with the fields `expand[]` asks for replaced by their objects.
    async fn expanded_session(
        &self,
        mut session: Value,
        params: &Params,
    ) -> Result<Value, EmuError> {
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        for (field, kind) in [
            ("payment_intent", Kind::PaymentIntent),
            ("customer", Kind::Customer),
        ] {
            if params.expands(field) {
                if let Some(object_id) = session[field].as_str().map(str::to_owned) {
                    session[field] = self.must_load(kind, &object_id).await?;
                }
            }
        }
        if params.expands("line_items") {
            session["line_items"] = self.must_load(Kind::LineItems, &line_items_id(&id)).await?;
        }
        Ok(session)
    }
}

/// Whether a checkout can still be paid: open, and not past its `expires_at`.
pub(super) fn payable(session: &Value, now_secs: i64) -> bool {
    session["status"] == "open"
        && session["expires_at"]
            .as_i64()
            .is_none_or(|at| at > now_secs)
}

async fn get_checkout_session(Path(id): Path<String>, call: Call) -> Emu {
    let emu = &call.emu;
    let session = emu.must_load(Kind::CheckoutSession, &id).await?;
    // Stripe expires an unpaid checkout at its `expires_at`; here that happens when it is
    // next looked at.
    let session = if session["status"] == "open" && !payable(&session, emu.now_secs()) {
        let _guard = emu.writes.lock().await;
        emu.expire_session(&id).await?
    } else {
        session
    };
    Ok(Json(emu.expanded_session(session, &call.params).await?))
}

async fn get_line_items(Path(id): Path<String>, call: Call) -> Emu {
    call.emu.must_load(Kind::CheckoutSession, &id).await?;
    let items = call
        .emu
        .must_load(Kind::LineItems, &line_items_id(&id))
        .await?;
    Ok(Json(items))
}

async fn list_checkout_sessions(call: Call) -> Emu {
    let customer = call.params.get("customer").map(str::to_owned);
    let intent = call.params.get("payment_intent").map(str::to_owned);
    Ok(Json(
        call.emu
            .page(
                "/v1/checkout/sessions",
                Kind::CheckoutSession,
                customer.as_deref(),
                &call.params,
                |s| intent.as_deref().is_none_or(|pi| s["payment_intent"] == pi),
            )
            .await?,
    ))
}

async fn expire_checkout_session(Path(id): Path<String>, call: Call) -> Emu {
    call.once(|| async { Ok(Json(call.emu.expire_session(&id).await?)) })
        .await
}
