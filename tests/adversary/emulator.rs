//! Finding 1: the embedded Stripe emulator answered anyone. It now serves Tally's own gateway
//! only, looks objects up by kind, serves only open checkouts, and returns only to the site.

use crate::books::{books, refusal};
use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::{open_team_checkout, pay, wait_for, with_packs};
use crate::support::get_text;
use crate::support::TestApp;
use app::domain::PurchaseStatus;
use serde_json::Value;
use tally::payments::emulator::Emulator;

/// An emulator API path with its ids filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "cus_doesnotmatter")
}

/// Calls the emulator's API with `key` (none when `None`).
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    key: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = TestApp::client().request(method, app.url(path)).form(form);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn no_emulator_route_answers_a_key_other_than_tallys_own() {
    let f = Fixture::new().await;
    let secrets = Emulator::secrets(&f.app.store).await.unwrap();
    let routes: Vec<_> = tally::startup::route_list()
        .into_iter()
        .filter(|r| r.path.starts_with("/_stripe/v1/"))
        .collect();
    assert!(routes.len() >= 15, "the emulator's API: {routes:?}");
    let before = books(&f.app).await;
    let made_up = [
        None,
        Some("sk_test_madeup"),
        // The key every install shared before it was made per database.
        Some("sk_test_tally_emulator"),
        Some(secrets.webhook_secret.as_str()),
        Some(f.acme_key.as_str()),
    ];
    for route in &routes {
        for key in made_up {
            let response = call(
                &f.app,
                route.method,
                &concrete(&route.path),
                key,
                &[
                    ("customer", "cus_x"),
                    ("amount", "100"),
                    ("currency", "usd"),
                ],
            )
            .await;
            let (status, kind) = refusal(response).await;
            assert_eq!(
                (status, kind.as_str()),
                (401, "invalid_request_error"),
                "{} {} with {key:?}",
                route.method,
                route.path
            );
        }
    }
    assert_eq!(books(&f.app).await, before, "nothing moved");
}

#[tokio::test]
async fn each_database_gets_its_own_test_mode_key_and_pages_never_show_it() {
    let a = Fixture::new().await;
    let b = TestApp::spawn().await;
    let (one, two) = (
        Emulator::secrets(&a.app.store).await.unwrap(),
        Emulator::secrets(&b.store).await.unwrap(),
    );
    assert!(one.api_key.starts_with("sk_test_") && one.api_key.len() >= 60);
    assert_ne!(one.api_key, two.api_key);
    assert_ne!(one.webhook_secret, two.webhook_secret);
    assert_eq!(
        Emulator::secrets(&a.app.store).await.unwrap().api_key,
        one.api_key,
        "made once, then read back"
    );
    with_packs(&a.app).await;
    let owner = a.app.sign_in("owner@acme.test", PASSWORD).await;
    let (_, page) = open_team_checkout(&a.app, &owner).await;
    for path in ["/billing", "/studio", "/api/billing/credits"] {
        let text = get_text(&owner, a.app.url(path)).await;
        assert!(!text.contains(&one.api_key), "{path} shows the key");
        assert!(
            !text.contains(&one.webhook_secret),
            "{path} shows the secret"
        );
    }
    let checkout = TestApp::client().get(&page).send().await.unwrap();
    let html = checkout.text().await.unwrap();
    assert!(!html.contains(&one.api_key) && !html.contains(&one.webhook_secret));
}

#[tokio::test]
async fn objects_are_looked_up_by_their_kind() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let key = Emulator::secrets(&f.app.store).await.unwrap().api_key;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase, _) = open_team_checkout(&f.app, &owner).await;
    let customer = f.app.store.stripe_customer(&f.acme).await.unwrap().unwrap();
    let session = f
        .app
        .store
        .purchase_by_id(&purchase)
        .await
        .unwrap()
        .unwrap()
        .checkout_session_id
        .unwrap();
    let own = call(
        &f.app,
        "GET",
        &format!("/_stripe/v1/customers/{customer}"),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(own.status(), 200, "a customer is found as a customer");
    for (path, what) in [
        (
            "/_stripe/v1/customers/tally_webhook_secret".to_owned(),
            "the old signing secret's row",
        ),
        (
            format!("/_stripe/v1/customers/idem_tally-customer-{}", f.acme),
            "a stored idempotent answer",
        ),
        (
            format!("/_stripe/v1/customers/{session}"),
            "a checkout session",
        ),
        (
            format!("/_stripe/v1/checkout/sessions/{customer}"),
            "a customer",
        ),
        (
            format!("/_stripe/v1/payment_intents/{customer}"),
            "a customer",
        ),
        (format!("/_stripe/v1/events/{customer}"), "a customer"),
    ] {
        let response = call(&f.app, "GET", &path, Some(&key), &[]).await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "resource_missing",
            "{what} at {path}: {body}"
        );
    }
}

#[tokio::test]
async fn an_outsider_cannot_subscribe_a_workspace_to_plan_credits() {
    let f = Fixture::new().await;
    for plan in tally::demo::demo_plans() {
        f.app.store.upsert_plan(&plan, f.app.now()).await.unwrap();
    }
    let customer = f.app.payments.customer(&f.acme, "Acme AI").await.unwrap();
    let before = books(&f.app).await;
    let subscribe = call(
        &f.app,
        "POST",
        "/_stripe/v1/subscriptions",
        Some("sk_test_anything"),
        &[
            ("customer", customer.as_str()),
            ("items[0][price]", "price_team_year"),
            ("items[0][quantity]", "10000"),
        ],
    )
    .await;
    assert_eq!(subscribe.status(), 401);
    let advance = call(
        &f.app,
        "POST",
        "/_stripe/v1/test_helpers/subscriptions/sub_anything/advance",
        Some("sk_test_anything"),
        &[],
    )
    .await;
    assert_eq!(advance.status(), 401);
    f.app.wait_for_stripe_events().await;
    assert_eq!(books(&f.app).await, before, "no subscription, no credits");
}

#[tokio::test]
async fn the_payment_page_serves_only_an_open_checkout() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let unknown = TestApp::client()
        .get(f.app.url("/_stripe/checkout/cs_test_unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let (purchase, page) = open_team_checkout(&f.app, &owner).await;
    let open = TestApp::client().get(&page).send().await.unwrap();
    assert_eq!(open.status(), 200);
    assert!(open.text().await.unwrap().contains("Team"));
    assert_eq!(pay(&page, "4242424242424242").await.status(), 303);
    wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Succeeded).await;
    let paid = TestApp::client().get(&page).send().await.unwrap();
    assert_eq!(paid.status(), 410);
    let html = paid.text().await.unwrap();
    assert!(html.contains("already paid"));
    assert!(!html.contains("Team"), "nothing of the checkout is shown");
    let before = books(&f.app).await;
    assert_eq!(pay(&page, "4242424242424242").await.status(), 410);
    assert_eq!(
        books(&f.app).await,
        before,
        "a paid checkout is not paid again"
    );
}

/// Creates a checkout with the emulator's own key, as only Tally's gateway can.
async fn checkout_with(
    app: &TestApp,
    customer: &str,
    success: &str,
    cancel: &str,
) -> reqwest::Response {
    let key = Emulator::secrets(&app.store).await.unwrap().api_key;
    call(
        app,
        "POST",
        "/_stripe/v1/checkout/sessions",
        Some(&key),
        &[
            ("mode", "payment"),
            ("customer", customer),
            ("line_items[0][price_data][unit_amount]", "500"),
            ("line_items[0][price_data][currency]", "usd"),
            ("line_items[0][price_data][product_data][name]", "Credits"),
            ("line_items[0][quantity]", "1"),
            ("success_url", success),
            ("cancel_url", cancel),
        ],
    )
    .await
}

#[tokio::test]
async fn return_addresses_must_be_web_addresses_on_the_site() {
    let f = Fixture::new().await;
    let customer = f.app.payments.customer(&f.acme, "Acme AI").await.unwrap();
    let home = f.app.url("/billing");
    for (success, cancel) in [
        (home.as_str(), "javascript:alert(document.cookie)"),
        ("javascript:alert(1)", home.as_str()),
        ("data:text/html,hi", home.as_str()),
        ("/billing", home.as_str()),
    ] {
        let refused = checkout_with(&f.app, &customer, success, cancel).await;
        assert_eq!(refused.status(), 400, "{success} / {cancel}");
    }
    // Another site is refused when the payment page is opened: the page links only to the
    // site, and paying stops before any money moves.
    let evil = checkout_with(
        &f.app,
        &customer,
        "https://evil.example/done",
        "https://evil.example/",
    )
    .await;
    assert_eq!(evil.status(), 200);
    let page = evil.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let html = get_text(&TestApp::client(), &page).await;
    assert!(!html.contains("evil.example"), "{html}");
    let before = books(&f.app).await;
    let paid = pay(&page, "4242424242424242").await;
    assert_eq!(paid.status(), 400);
    assert!(
        paid.headers().get("location").is_none(),
        "no redirect off the site"
    );
    assert_eq!(books(&f.app).await, before, "nothing was charged");
}

#[tokio::test]
async fn with_a_public_url_only_its_origin_is_a_return_address() {
    let app = TestApp::spawn_with(|c| c.public_url = Some("http://billing.acme.test".into())).await;
    let f = Fixture::with_app(app).await;
    let customer = f.app.payments.customer(&f.acme, "Acme AI").await.unwrap();
    let refused = checkout_with(
        &f.app,
        &customer,
        "https://evil.example/",
        "http://billing.acme.test/billing",
    )
    .await;
    assert_eq!(refused.status(), 400);
    let allowed = checkout_with(
        &f.app,
        &customer,
        "http://billing.acme.test/billing/purchases/x?session_id={CHECKOUT_SESSION_ID}",
        "http://billing.acme.test/billing",
    )
    .await;
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn an_https_site_without_stripe_keys_does_not_start_unless_test_mode_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/t.db", dir.path().display()),
        )
        .env("TALLY_PUBLIC_URL", "https://billing.example.com")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("TALLY_TEST_MODE")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("TALLY_TEST_MODE=1"), "{stderr}");
}
