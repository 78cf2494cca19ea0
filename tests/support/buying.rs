//! Buying credits as tests do it: the demo packs, a checkout opened through the server
//! function, the hosted payment page, and signed events delivered by hand.

use super::TestApp;
use app::domain::WorkspaceId;
use serde_json::Value;
use tally::payments::PurchaseRecord;

/// The demo packs on sale.
pub async fn with_packs(app: &TestApp) {
    for pack in tally::demo::demo_packs(app.now()) {
        app.store.upsert_pack(&pack, app.now()).await.unwrap();
    }
}

pub async fn balance(app: &TestApp, workspace: &WorkspaceId) -> i64 {
    app.store
        .summary(workspace, app.now())
        .await
        .unwrap()
        .available
}

/// Starts a checkout through the server function, as the purchase dialog does.
pub async fn start(
    app: &TestApp,
    client: &reqwest::Client,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url("/api/start_checkout"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Opens a checkout for the Team pack and returns (purchase id, payment page).
pub async fn open_team_checkout(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let response = start(app, client, &[("pack_id", "pack_team")]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    (
        body["purchase_id"].as_str().unwrap().to_owned(),
        body["url"].as_str().unwrap().to_owned(),
    )
}

/// Pays on the hosted page with a test card; returns the page's answer.
pub async fn pay(page: &str, card: &str) -> reqwest::Response {
    TestApp::client()
        .post(page)
        .form(&[
            ("card_number", card),
            ("expiry", "12/40"),
            ("cvc", "123"),
            ("name", "Ada Owner"),
        ])
        .send()
        .await
        .unwrap()
}

/// Waits until the purchase satisfies `done` (events arrive on their own).
pub async fn wait_for(
    app: &TestApp,
    id: &str,
    done: impl Fn(&PurchaseRecord) -> bool,
) -> PurchaseRecord {
    let seen = std::cell::RefCell::new(None);
    super::wait_until(&format!("purchase {id} to get there"), || {
        let (store, seen, done) = (&app.store, &seen, &done);
        async move {
            let purchase = store.purchase_by_id(id).await.unwrap().unwrap();
            let ok = done(&purchase);
            *seen.borrow_mut() = Some(purchase);
            ok
        }
    })
    .await;
    seen.into_inner().expect("looked at least once")
}

/// The emulator's stored events about a payment, oldest first.
pub async fn stored_events(app: &TestApp) -> Vec<Value> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT body FROM stripe_emulator_objects WHERE kind = 'event' ORDER BY created_at, id",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(body,)| serde_json::from_str(&body).unwrap())
        .collect()
}

/// Posts an event to the webhook, signed with `secret` at `at` (seconds).
pub async fn deliver(app: &TestApp, event: &Value, secret: &str, at: i64) -> reqwest::Response {
    let payload = event.to_string();
    let signature = stripe_webhook::Webhook::generate_test_header(&payload, secret, Some(at));
    TestApp::client()
        .post(app.url("/webhooks/stripe"))
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap()
}

/// Calls the test-mode emulator's Stripe API with test mode's own key, as the account's
/// dashboard would.
pub async fn stripe_api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> Value {
    let key = tally::payments::emulator::Emulator::secrets(&app.store)
        .await
        .unwrap()
        .api_key;
    let response = TestApp::client()
        .request(method, app.url(&format!("/_stripe/v1{path}")))
        .bearer_auth(key)
        .form(form)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}
