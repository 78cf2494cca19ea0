//! The test-mode emulator plays Stripe as Stripe's documentation describes it: idempotency
//! errors, every line item, the payment intent made at payment, manual capture, the
//! off-session authentication state, Stripe's error shape, pages of lists, registered
//! receivers, and objects without fields of Tally's own that async-stripe reads as Stripe's.

use crate::support::buying::pay;
use crate::support::get_text;
use crate::support::{wait_until, TestApp};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tally::payments::emulator::Emulator;

/// A client of the emulator's API holding Tally's key.
struct Stripe {
    app: TestApp,
    key: String,
}

impl Stripe {
    async fn new() -> Stripe {
        let app = TestApp::spawn().await;
        let key = Emulator::secrets(&app.store).await.unwrap().api_key;
        Stripe { app, key }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let url = self.app.url(&format!("/_stripe{path}"));
        let mut request = TestApp::client()
            .request(method.clone(), url)
            .bearer_auth(&self.key);
        request = if method == reqwest::Method::GET {
            request.query(form)
        } else {
            request.form(form)
        };
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path} answered {status} with no JSON: {text}"));
        (status, body)
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, form, None).await
    }

    async fn post_once(&self, path: &str, form: &[(&str, &str)], key: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, form, Some(key))
            .await
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, query, None).await
    }

    async fn customer(&self) -> String {
        let (status, customer) = self
            .post(
                "/v1/customers",
                &[("name", "Acme AI"), ("email", "billing@acme.test")],
            )
            .await;
        assert_eq!(status, 200, "{customer}");
        customer["id"].as_str().unwrap().to_owned()
    }

    /// A checkout of 10.00 and 2 × 5.00 for `customer`.
    async fn two_item_checkout(&self, customer: &str) -> Value {
        let success = self.app.url("/billing?done={CHECKOUT_SESSION_ID}");
        let cancel = self.app.url("/billing");
        let (status, session) = self
            .post(
                "/v1/checkout/sessions",
                &[
                    ("mode", "payment"),
                    ("customer", customer),
                    ("success_url", &success),
                    ("cancel_url", &cancel),
                    ("line_items[0][price_data][unit_amount]", "1000"),
                    ("line_items[0][price_data][currency]", "usd"),
                    ("line_items[0][price_data][product_data][name]", "Credits"),
                    ("line_items[0][quantity]", "1"),
                    ("line_items[1][price_data][unit_amount]", "500"),
                    ("line_items[1][price_data][currency]", "usd"),
                    ("line_items[1][price_data][product_data][name]", "Bonus"),
                    ("line_items[1][quantity]", "2"),
                    ("payment_intent_data[setup_future_usage]", "off_session"),
                    ("payment_intent_data[metadata][order]", "o_1"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{session}");
        session
    }
}

/// The error's type, code and parameter.
fn error(body: &Value) -> (&str, &str, &str) {
    let e = &body["error"];
    (
        e["type"].as_str().unwrap_or(""),
        e["code"].as_str().unwrap_or(""),
        e["param"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn an_idempotency_key_replays_its_request_and_refuses_any_other() {
    let s = Stripe::new().await;
    let form = [("name", "Acme AI")];
    let (_, first) = s.post_once("/v1/customers", &form, "k-1").await;
    let (status, again) = s.post_once("/v1/customers", &form, "k-1").await;
    assert_eq!(
        (status, &again["id"]),
        (200, &first["id"]),
        "a retry gets the first object"
    );

    let (status, other) = s
        .post_once("/v1/customers", &[("name", "Globex")], "k-1")
        .await;
    assert_eq!(status, 400, "{other}");
    assert_eq!(error(&other).0, "idempotency_error");

    // The same key on another endpoint is refused too, never answered with a customer.
    let (status, crossed) = s
        .post_once(
            "/v1/payment_intents",
            &[("amount", "500"), ("currency", "usd")],
            "k-1",
        )
        .await;
    assert_eq!(status, 400, "{crossed}");
    assert_eq!(error(&crossed).0, "idempotency_error");
    assert!(crossed.get("object").is_none());

    // A request refused before it ran leaves the key free for the corrected request.
    let (status, refused) = s
        .post_once("/v1/payment_intents", &[("currency", "usd")], "k-2")
        .await;
    assert_eq!(
        (status, error(&refused)),
        (
            400,
            ("invalid_request_error", "parameter_missing", "amount")
        )
    );
    let (status, intent) = s
        .post_once(
            "/v1/payment_intents",
            &[("amount", "500"), ("currency", "usd")],
            "k-2",
        )
        .await;
    assert_eq!(
        (status, intent["object"].as_str()),
        (200, Some("payment_intent"))
    );
}

#[tokio::test]
async fn a_checkout_totals_every_line_item_and_makes_its_payment_when_paid() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    let session = s.two_item_checkout(&customer).await;
    assert_eq!(session["amount_total"], 2_000, "10.00 + 2 × 5.00");
    assert_eq!(
        session["payment_intent"],
        Value::Null,
        "no payment before the buyer pays"
    );
    assert_eq!(session["customer_details"], Value::Null);
    let id = session["id"].as_str().unwrap();

    let (_, expanded) = s
        .get(
            &format!("/v1/checkout/sessions/{id}"),
            &[("expand[]", "line_items")],
        )
        .await;
    let items = expanded["line_items"]["data"].as_array().unwrap();
    let amounts: Vec<_> = items
        .iter()
        .map(|i| (i["description"].clone(), i["amount_total"].clone()))
        .collect();
    assert_eq!(
        amounts,
        [
            (Value::from("Credits"), Value::from(1_000)),
            (Value::from("Bonus"), Value::from(1_000))
        ]
    );

    let page = session["url"].as_str().unwrap();
    let html = get_text(&TestApp::client(), page).await;
    assert!(
        html.contains("$20.00 USD") && html.contains("2 × Bonus"),
        "{html}"
    );
    assert_eq!(pay(page, "4242424242424242").await.status(), 303);

    let (_, paid) = s
        .get(
            &format!("/v1/checkout/sessions/{id}"),
            &[("expand[]", "payment_intent")],
        )
        .await;
    assert_eq!(paid["status"], "complete");
    assert_eq!(paid["payment_intent"]["status"], "succeeded");
    assert_eq!(paid["payment_intent"]["amount"], 2_000);
    assert_eq!(paid["payment_intent"]["metadata"]["order"], "o_1");
    assert_eq!(paid["customer_details"]["email"], "billing@acme.test");
    assert_eq!(paid["customer_details"]["name"], "Ada Owner");
    assert_eq!(paid["url"], Value::Null, "a completed checkout has no page");
}

#[tokio::test]
async fn payment_intents_confirm_capture_and_cancel_as_at_stripe() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    let (_, method) = s
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &[("customer", &customer)],
        )
        .await;
    assert!(
        method["id"].as_str().unwrap().starts_with("pm_"),
        "{method}"
    );
    assert_ne!(
        method["id"], "pm_card_visa",
        "a ready-made method makes a new one"
    );
    assert_eq!(method["card"]["last4"], "4242");
    let pm = method["id"].as_str().unwrap();

    // Created with a method but not confirmed: the method waits on the intent.
    let (_, intent) = s
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1500"),
                ("currency", "usd"),
                ("customer", &customer),
                ("payment_method", pm),
                ("capture_method", "manual"),
            ],
        )
        .await;
    assert_eq!(intent["status"], "requires_confirmation");
    assert_eq!(intent["payment_method"], pm);
    let id = intent["id"].as_str().unwrap();
    let (_, confirmed) = s
        .post(&format!("/v1/payment_intents/{id}/confirm"), &[])
        .await;
    assert_eq!(confirmed["status"], "requires_capture", "{confirmed}");
    assert_eq!(confirmed["amount_capturable"], 1_500);
    assert_eq!(confirmed["amount_received"], 0);
    let (_, captured) = s
        .post(
            &format!("/v1/payment_intents/{id}/capture"),
            &[("amount_to_capture", "1000")],
        )
        .await;
    assert_eq!(
        (
            captured["status"].as_str(),
            captured["amount_received"].as_i64()
        ),
        (Some("succeeded"), Some(1_000))
    );
    let (status, again) = s
        .post(&format!("/v1/payment_intents/{id}/capture"), &[])
        .await;
    assert_eq!(
        (status, error(&again).1),
        (400, "payment_intent_unexpected_state")
    );

    let (_, open) = s
        .post(
            "/v1/payment_intents",
            &[("amount", "700"), ("currency", "usd")],
        )
        .await;
    assert_eq!(open["status"], "requires_payment_method");
    let open_id = open["id"].as_str().unwrap();
    let (_, canceled) = s
        .post(
            &format!("/v1/payment_intents/{open_id}/cancel"),
            &[("cancellation_reason", "abandoned")],
        )
        .await;
    assert_eq!(
        (
            canceled["status"].as_str(),
            canceled["cancellation_reason"].as_str()
        ),
        (Some("canceled"), Some("abandoned"))
    );
}

#[tokio::test]
async fn an_off_session_charge_the_bank_wants_authenticated_waits_for_a_new_payment_method() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    let (_, method) = s
        .post(
            "/v1/payment_methods/pm_card_authenticationRequired/attach",
            &[("customer", &customer)],
        )
        .await;
    let pm = method["id"].as_str().unwrap();
    let (status, declined) = s
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1920"),
                ("currency", "usd"),
                ("customer", &customer),
                ("payment_method", pm),
                ("confirm", "true"),
                ("off_session", "true"),
            ],
        )
        .await;
    assert_eq!(status, 402, "{declined}");
    assert_eq!(error(&declined).0, "card_error");
    assert_eq!(declined["error"]["code"], "authentication_required");
    let intent = &declined["error"]["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["code"],
        "authentication_required"
    );

    // On session the same card waits for the cardholder instead.
    let (status, waiting) = s
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "1920"),
                ("currency", "usd"),
                ("customer", &customer),
                ("payment_method", pm),
                ("confirm", "true"),
            ],
        )
        .await;
    assert_eq!(
        (status, waiting["status"].as_str()),
        (200, Some("requires_action"))
    );
    assert_eq!(waiting["next_action"]["type"], "use_stripe_sdk");
}

#[tokio::test]
async fn errors_have_stripes_shape_codes_and_statuses() {
    let s = Stripe::new().await;
    let (status, missing) = s.post("/v1/payment_intents", &[("amount", "100")]).await;
    assert_eq!(
        (status, error(&missing)),
        (
            400,
            ("invalid_request_error", "parameter_missing", "currency")
        )
    );

    // An unknown object named by a parameter is a 400; named by the URL, a 404.
    let (status, unknown) = s
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "100"),
                ("currency", "usd"),
                ("customer", "cus_nobody"),
            ],
        )
        .await;
    assert_eq!(
        (status, error(&unknown)),
        (
            400,
            ("invalid_request_error", "resource_missing", "customer")
        )
    );
    let (status, absent) = s.get("/v1/customers/cus_nobody", &[]).await;
    assert_eq!((status, error(&absent).1), (404, "resource_missing"));

    let (status, bad) = s
        .post(
            "/v1/payment_intents",
            &[("amount", "ten"), ("currency", "usd")],
        )
        .await;
    assert_eq!(
        (status, error(&bad).1, error(&bad).2),
        (400, "parameter_invalid_integer", "amount")
    );

    // URLs and methods the emulator does not serve answer JSON, as Stripe's do.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/balance_transactions"),
        (reqwest::Method::POST, "/v1/refunds/re_1/anything"),
        (reqwest::Method::DELETE, "/v1/payment_intents"),
        (reqwest::Method::PUT, "/v1/customers/cus_1"),
    ] {
        let (status, body) = s.send(method.clone(), path, &[], None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(error(&body).0, "invalid_request_error");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unrecognized request URL"));
    }
}

#[tokio::test]
async fn lists_come_in_pages_newest_first() {
    let s = Stripe::new().await;
    let mut made = Vec::new();
    for i in 0..5 {
        let (_, c) = s.post("/v1/customers", &[("name", &format!("c{i}"))]).await;
        made.push(c["id"].as_str().unwrap().to_owned());
    }
    let (_, first) = s.get("/v1/customers", &[("limit", "2")]).await;
    assert_eq!(first["has_more"], true);
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(ids);
        if page["has_more"] != true {
            break;
        }
        let last = seen.last().unwrap().clone();
        page = s
            .get(
                "/v1/customers",
                &[("limit", "2"), ("starting_after", &last)],
            )
            .await
            .1;
    }
    let mut expected = made.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, expected, "every customer once across the pages");
    assert_eq!(seen.len(), 5);
    let (status, too_many) = s.get("/v1/customers", &[("limit", "101")]).await;
    assert_eq!((status, error(&too_many).2), (400, "limit"));
}

#[tokio::test]
async fn no_object_carries_a_field_of_tallys_own_or_a_card_number() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    let session = s.two_item_checkout(&customer).await;
    assert_eq!(
        pay(session["url"].as_str().unwrap(), "4000002760003184")
            .await
            .status(),
        303
    );
    s.app.wait_for_stripe_events().await;
    let (_, methods) = s
        .get(&format!("/v1/customers/{customer}/payment_methods"), &[])
        .await;
    let (_, sessions) = s
        .get(
            &format!("/v1/checkout/sessions/{}", session["id"].as_str().unwrap()),
            &[("expand[]", "payment_intent"), ("expand[]", "line_items")],
        )
        .await;
    let (_, events) = s.get("/v1/events", &[("limit", "100")]).await;
    for body in [&methods, &sessions, &events] {
        let text = body.to_string();
        assert!(!text.contains("tally_"), "{text}");
        assert!(
            !text.contains("4000002760003184"),
            "the card number stays with the emulator"
        );
    }
    assert_eq!(methods["data"][0]["card"]["last4"], "3184");
}

#[tokio::test]
async fn every_event_the_emulator_sends_reads_as_a_typed_stripe_event() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    for card in ["4242424242424242", "4000000000000002", "4000000000000259"] {
        let session = s.two_item_checkout(&customer).await;
        pay(session["url"].as_str().unwrap(), card).await;
    }
    s.post(
        &format!("/v1/customers/{customer}"),
        &[("name", "Acme AI Ltd")],
    )
    .await;
    let (_, sub) = s
        .post(
            "/v1/subscriptions",
            &[
                ("customer", &customer),
                ("items[0][price]", "price_team_month"),
                ("items[0][quantity]", "2"),
            ],
        )
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    s.post(
        &format!("/v1/subscriptions/{sub_id}"),
        &[("items[0][quantity]", "3")],
    )
    .await;
    s.post(
        &format!("/v1/test_helpers/subscriptions/{sub_id}/advance"),
        &[],
    )
    .await;
    // The `…0259` card's charge is disputed a little after it is paid.
    wait_until("the dispute to be opened", || async {
        s.get("/v1/events", &[("type", "charge.dispute.created")])
            .await
            .1["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    })
    .await;
    s.app.wait_for_stripe_events().await;
    let (_, events) = s.get("/v1/events", &[("limit", "100")]).await;
    let events = events["data"].as_array().unwrap();
    assert!(events.len() >= 15, "{} events", events.len());
    let secret = Emulator::secrets(&s.app.store)
        .await
        .unwrap()
        .webhook_secret;
    let now = s.app.now() / 1000;
    let mut types = std::collections::BTreeSet::new();
    for event in events {
        let payload = event.to_string();
        let header = stripe_webhook::Webhook::generate_test_header(&payload, &secret, Some(now));
        let typed = stripe_webhook::Webhook::construct_event_with_timestamp(
            &payload, &header, &secret, now,
        );
        assert!(
            typed.is_ok(),
            "{} does not read as Stripe's: {:?}",
            event["type"],
            typed.err()
        );
        types.insert(event["type"].as_str().unwrap().to_owned());
    }
    for expected in [
        "customer.created",
        "customer.updated",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.failed",
        "charge.dispute.created",
        "payment_method.attached",
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoiceitem.created",
    ] {
        assert!(
            types.contains(expected),
            "{expected} was never sent: {types:?}"
        );
    }
    let updated = events
        .iter()
        .find(|e| e["type"] == "customer.subscription.updated")
        .unwrap();
    assert!(
        updated["data"]["previous_attributes"]["items"].is_object(),
        "an update says what it changed: {updated}"
    );
}

#[tokio::test]
async fn a_registered_receiver_gets_every_event_it_asked_for_signed_with_its_own_secret() {
    let s = Stripe::new().await;
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sink = received.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let signature = headers["stripe-signature"].to_str().unwrap().to_owned();
                sink.lock().unwrap().push((signature, body));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let (status, refused) = s
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", "https://example.com/hook"),
                ("enabled_events[]", "*"),
            ],
        )
        .await;
    assert_eq!(
        (status, error(&refused).2),
        (400, "url"),
        "test receivers stay on this machine"
    );
    let (status, endpoint) = s
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", &format!("http://{address}/hook")),
                ("enabled_events[]", "customer.created"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, listed) = s.get("/v1/webhook_endpoints", &[]).await;
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    let customer = s.customer().await;
    s.post(&format!("/v1/customers/{customer}"), &[("name", "Renamed")])
        .await;
    wait_until("the receiver to get the customer event", || {
        let received = received.clone();
        async move { !received.lock().unwrap().is_empty() }
    })
    .await;
    s.app.wait_for_stripe_events().await;
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "only the event type it asked for");
    let (signature, body) = &got[0];
    let now = s.app.now() / 1000;
    let event =
        stripe_webhook::Webhook::construct_event_with_timestamp(body, signature, &secret, now)
            .expect("signed with the endpoint's own secret");
    assert_eq!(event.type_.as_str(), "customer.created");
    let tallys = Emulator::secrets(&s.app.store)
        .await
        .unwrap()
        .webhook_secret;
    assert!(
        stripe_webhook::Webhook::construct_event_with_timestamp(body, signature, &tallys, now)
            .is_err()
    );

    let id = endpoint["id"].as_str().unwrap();
    let (_, deleted) = s
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/webhook_endpoints/{id}"),
            &[],
            None,
        )
        .await;
    assert_eq!(deleted["deleted"], true);
    let (_, listed) = s.get("/v1/webhook_endpoints", &[]).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_subscription_without_a_card_waits_incomplete_with_its_invoice_open() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    let form = [
        ("customer", customer.as_str()),
        ("items[0][price]", "price_team_month"),
        ("items[0][quantity]", "2"),
    ];
    let subscribe = || s.post("/v1/subscriptions", &form);
    let (_, unpaid) = subscribe().await;
    assert_eq!(unpaid["status"], "incomplete", "{unpaid}");
    let invoice_id = unpaid["latest_invoice"].as_str().unwrap().to_owned();
    let (_, invoice) = s.get(&format!("/v1/invoices/{invoice_id}"), &[]).await;
    assert_eq!(
        (invoice["status"].as_str(), invoice["amount_paid"].as_i64()),
        (Some("open"), Some(0))
    );
    assert_eq!(invoice["total"], 4_000);

    s.post(
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", &customer)],
    )
    .await;
    let (_, paid) = subscribe().await;
    assert_eq!(paid["status"], "active");
    let (_, invoices) = s.get("/v1/invoices", &[("customer", &customer)]).await;
    let statuses: Vec<_> = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["paid", "open"], "newest first");
    let (_, declined) = s
        .post(
            "/v1/subscriptions",
            &[
                ("customer", &customer),
                ("items[0][price]", "price_team_month"),
            ],
        )
        .await;
    assert_eq!(
        declined["status"], "active",
        "the customer's default card pays"
    );
}

#[tokio::test]
async fn a_change_of_seats_is_prorated_as_proration_behavior_says() {
    let s = Stripe::new().await;
    let customer = s.customer().await;
    let (_, card) = s
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &[("customer", &customer)],
        )
        .await;
    let (status, sub) = s
        .post(
            "/v1/subscriptions",
            &[
                ("customer", &customer),
                ("items[0][price]", "price_team_month"),
                ("items[0][quantity]", "2"),
                ("default_payment_method", card["id"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!((status, sub["status"].as_str()), (200, Some("active")));
    let sub_id = sub["id"].as_str().unwrap();
    let first_invoice = sub["latest_invoice"].clone();
    let pending = || async {
        let (_, items) = s
            .get(
                "/v1/invoiceitems",
                &[("customer", &customer), ("pending", "true")],
            )
            .await;
        items["data"].as_array().unwrap().clone()
    };
    let path = format!("/v1/subscriptions/{sub_id}");
    s.app.clock.advance(10 * 86_400_000);

    // Stripe's default: the change is prorated into pending items, nothing is invoiced now.
    let (_, more) = s.post(&path, &[("items[0][quantity]", "4")]).await;
    assert_eq!(more["items"]["data"][0]["quantity"], 4);
    assert_eq!(more["latest_invoice"], first_invoice, "no invoice at once");
    let items = pending().await;
    let amounts: Vec<i64> = items
        .iter()
        .map(|i| i["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts.len(), 2, "{items:?}");
    assert!(amounts.iter().any(|a| *a < 0) && amounts.iter().any(|a| *a > 0));
    assert!(amounts.iter().sum::<i64>() > 0, "two more seats cost more");
    for item in &items {
        assert_eq!(item["proration"], true);
        assert_eq!(
            item["parent"]["subscription_details"]["subscription"],
            sub_id
        );
        assert!(item["invoice"].is_null());
    }

    // `none`: the new count is charged from the next period only.
    let (_, none) = s
        .post(
            &path,
            &[("items[0][quantity]", "5"), ("proration_behavior", "none")],
        )
        .await;
    assert_eq!(none["items"]["data"][0]["quantity"], 5);
    assert_eq!(pending().await.len(), 2);

    // `always_invoice`: an invoice for the prorations now, collected from the card.
    let (_, now) = s
        .post(
            &path,
            &[
                ("items[0][quantity]", "6"),
                ("proration_behavior", "always_invoice"),
            ],
        )
        .await;
    assert_ne!(now["latest_invoice"], first_invoice);
    let (_, update_invoice) = s
        .get(
            &format!("/v1/invoices/{}", now["latest_invoice"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(update_invoice["billing_reason"], "subscription_update");
    assert_eq!(update_invoice["status"], "paid");
    for line in update_invoice["lines"]["data"].as_array().unwrap() {
        assert_eq!(
            line["parent"]["subscription_item_details"]["proration"], true,
            "{line}"
        );
    }
    assert_eq!(pending().await.len(), 2);

    let (status, bad) = s
        .post(
            &path,
            &[
                ("items[0][quantity]", "7"),
                ("proration_behavior", "sometimes"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error(&bad),
        (
            "invalid_request_error",
            "parameter_invalid_string",
            "proration_behavior"
        )
    );
    let (_, unchanged) = s.get(&path, &[]).await;
    assert_eq!(unchanged["items"]["data"][0]["quantity"], 6);

    // The renewal invoice collects the pending items beside the new period's 6 seats.
    let (_, renewed) = s
        .post(
            &format!("/v1/test_helpers/subscriptions/{sub_id}/advance"),
            &[],
        )
        .await;
    let renewal_id = renewed["latest_invoice"].as_str().unwrap();
    let (_, renewal) = s.get(&format!("/v1/invoices/{renewal_id}"), &[]).await;
    let lines = renewal["lines"]["data"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0]["parent"]["subscription_item_details"]["proration"],
        false
    );
    assert_eq!(lines[0]["amount"], 6 * 2_000);
    assert_eq!(
        renewal["total"].as_i64().unwrap(),
        6 * 2_000 + amounts.iter().sum::<i64>()
    );
    assert_eq!(renewal["status"], "paid");
    assert!(pending().await.is_empty());
    let (_, collected) = s
        .get(
            &format!("/v1/invoiceitems/{}", items[0]["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(collected["invoice"], renewal_id);
}
