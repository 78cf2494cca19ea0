//! Buying credits end to end over HTTP: the purchase server functions, the embedded Stripe
//! test-mode emulator's checkout page, its signed events, and `/webhooks/stripe`.

use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::*;
use crate::support::TestApp;
use app::domain::{PurchaseStatus, WorkspaceId};
use serde_json::{json, Value};
use std::time::Duration;
use tally::payments::emulator::Emulator;

const TEAM_PACK_CREDITS: i64 = 25_000 + 2_500;

/// A Team-pack checkout opened by the owner on an app whose test-mode events are held back,
/// so the test delivers them itself, in its own order.
struct HeldBack {
    f: Fixture,
    before: i64,
    owner: reqwest::Client,
    purchase_id: String,
    page: String,
}

async fn held_back_checkout() -> HeldBack {
    let f = Fixture::with_app(
        TestApp::spawn_with(|c| c.emulator_event_delay = Duration::from_secs(3_600)).await,
    )
    .await;
    with_packs(&f.app).await;
    let before = balance(&f.app, &f.acme).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, page) = open_team_checkout(&f.app, &owner).await;
    HeldBack {
        f,
        before,
        owner,
        purchase_id,
        page,
    }
}

/// The return page's data for a purchase, as the signed-in client sees it.
async fn load_purchase(app: &TestApp, client: &reqwest::Client, id: &str) -> Value {
    client
        .post(app.url("/api/load_purchase"))
        .form(&[("id", id)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn purchase_entries(app: &TestApp, workspace: &WorkspaceId) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM ledger_entries WHERE workspace_id = $1 AND entry_type = 'purchase' AND payment_ref IS NOT NULL",
    )
    .bind(workspace.as_str())
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn owner_buys_a_pack_and_the_balance_rises_exactly_once() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let before = balance(&f.app, &f.acme).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, page) = open_team_checkout(&f.app, &owner).await;
    assert!(page.starts_with(&f.app.base), "{page}");

    let checkout = TestApp::client().get(&page).send().await.unwrap();
    assert_eq!(checkout.status(), 200);
    let html = checkout.text().await.unwrap();
    assert!(
        html.contains("Test mode"),
        "the payment page says test mode"
    );
    assert!(
        html.contains("$22.50 USD"),
        "the page shows the pack's price"
    );

    let paid = pay(&page, "4242 4242 4242 4242").await;
    assert_eq!(paid.status(), 303);
    let back = paid.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.contains(&format!(
            "/billing/purchases/{purchase_id}?session_id=cs_test_"
        )),
        "{back}"
    );

    let done = wait_for(&f.app, &purchase_id, |p| {
        p.status == PurchaseStatus::Succeeded
    })
    .await;
    assert_eq!(done.payment_method.as_deref(), Some("Visa •••• 4242"));
    assert!(done
        .receipt_url
        .as_deref()
        .unwrap_or("")
        .contains("/_stripe/receipts/ch_"));
    assert_eq!(balance(&f.app, &f.acme).await, before + TEAM_PACK_CREDITS);

    // Once every event has arrived, each applied once: still one purchase entry.
    f.app.wait_for_stripe_events().await;
    assert_eq!(balance(&f.app, &f.acme).await, before + TEAM_PACK_CREDITS);
    assert_eq!(purchase_entries(&f.app, &f.acme).await, 1);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());

    // The return page's data, and the saved card in the purchase section.
    let detail = load_purchase(&f.app, &owner, &purchase_id).await;
    assert_eq!(detail["purchase"]["status"], "succeeded");
    assert_eq!(detail["balance"], json!(before + TEAM_PACK_CREDITS));
    let section: Value = owner
        .post(f.app.url("/api/load_purchases"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(section["test_mode"], true);
    assert_eq!(section["cards"][0]["last4"], "4242");
    assert_eq!(section["cards"][0]["is_default"], true);
    assert_eq!(section["purchases"][0]["id"], json!(purchase_id));
    let best: Vec<&str> = section["packs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["best_value"] == true)
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(best, vec!["pack_scale"]);
}

#[tokio::test]
async fn duplicate_and_reordered_webhooks_grant_once() {
    // Events stay undelivered, so the test delivers them itself, in its own order.
    let HeldBack {
        f,
        before,
        owner: _,
        purchase_id,
        page,
    } = held_back_checkout().await;
    assert_eq!(pay(&page, "4000 0000 0000 0002").await.status(), 422);
    assert_eq!(pay(&page, "4242424242424242").await.status(), 303);

    let stored = stored_events(&f.app).await;
    let event = |kind: &str| {
        stored
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event"))
            .clone()
    };
    let events = [
        event("payment_intent.payment_failed"),
        event("payment_intent.succeeded"),
        event("checkout.session.completed"),
    ];
    let secret = Emulator::secrets(&f.app.store)
        .await
        .unwrap()
        .webhook_secret;
    let now = f.app.now() / 1000;
    // Newest first, then the failure (stale), then everything again.
    for (event, expect_applied) in [(&events[2], true), (&events[0], false), (&events[1], false)] {
        let answer: Value = deliver(&f.app, event, &secret, now)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(answer["applied"], json!(expect_applied), "{answer}");
    }
    for event in &events {
        let response = deliver(&f.app, event, &secret, now).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["duplicate"], true, "{answer}");
    }
    let purchase = f
        .app
        .store
        .purchase_by_id(&purchase_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(purchase.status, PurchaseStatus::Succeeded);
    assert_eq!(balance(&f.app, &f.acme).await, before + TEAM_PACK_CREDITS);
    assert_eq!(purchase_entries(&f.app, &f.acme).await, 1);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn forged_stale_and_unsigned_webhooks_are_refused() {
    let HeldBack {
        f,
        before,
        owner: _,
        purchase_id,
        page,
    } = held_back_checkout().await;
    assert_eq!(pay(&page, "4242424242424242").await.status(), 303);
    let events = stored_events(&f.app).await;
    let paid = events
        .iter()
        .find(|e| e["type"] == "payment_intent.succeeded")
        .unwrap();
    let secret = Emulator::secrets(&f.app.store)
        .await
        .unwrap()
        .webhook_secret;
    let now = f.app.now() / 1000;

    let forged = deliver(&f.app, paid, "whsec_not_the_secret", now).await;
    assert_eq!(forged.status(), 400);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_signature");
    assert_eq!(
        deliver(&f.app, paid, &secret, now - 301).await.status(),
        400
    );
    let unsigned = TestApp::client()
        .post(f.app.url("/webhooks/stripe"))
        .body(paid.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    // A body changed after signing does not verify either.
    let payload = paid.to_string();
    let signature = stripe_webhook::Webhook::generate_test_header(&payload, &secret, Some(now));
    let altered = TestApp::client()
        .post(f.app.url("/webhooks/stripe"))
        .header("stripe-signature", signature)
        .body(payload.replace("\"livemode\":false", "\"livemode\":true"))
        .send()
        .await
        .unwrap();
    assert_eq!(altered.status(), 400);

    assert_eq!(
        balance(&f.app, &f.acme).await,
        before,
        "nothing was granted"
    );
    let open = f
        .app
        .store
        .purchase_by_id(&purchase_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.status, PurchaseStatus::Open);

    // Within the tolerance, the genuine event lands once.
    let ok = deliver(&f.app, paid, &secret, now - 299).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(balance(&f.app, &f.acme).await, before + TEAM_PACK_CREDITS);
}

#[tokio::test]
async fn a_lost_webhook_is_made_good_by_reconciliation() {
    let HeldBack {
        f,
        before,
        owner,
        purchase_id,
        page,
    } = held_back_checkout().await;
    assert_eq!(pay(&page, "4242424242424242").await.status(), 303);
    // The return page alone grants nothing.
    let detail = load_purchase(&f.app, &owner, &purchase_id).await;
    assert_eq!(detail["purchase"]["status"], "open");
    assert_eq!(balance(&f.app, &f.acme).await, before);

    f.app.clock.advance(180_000);
    assert_eq!(f.app.payments.reconcile(120_000).await.unwrap(), 1);
    assert_eq!(balance(&f.app, &f.acme).await, before + TEAM_PACK_CREDITS);
    assert_eq!(
        f.app.payments.reconcile(0).await.unwrap(),
        0,
        "nothing left to do"
    );
    assert_eq!(purchase_entries(&f.app, &f.acme).await, 1);
}

#[tokio::test]
async fn a_declined_card_grants_nothing_and_tells_billing_managers() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let before = balance(&f.app, &f.acme).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, page) = open_team_checkout(&f.app, &owner).await;
    let declined = pay(&page, "4000 0000 0000 0002").await;
    assert_eq!(declined.status(), 422);
    assert!(declined
        .text()
        .await
        .unwrap()
        .contains("Your card was declined."));

    let failed = wait_for(&f.app, &purchase_id, |p| p.status == PurchaseStatus::Failed).await;
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("Your card was declined.")
    );
    assert_eq!(balance(&f.app, &f.acme).await, before);
    let notes = f.app.store.notifications(&f.acme, true, 10).await.unwrap();
    assert!(
        notes.iter().any(|n| n.kind == "credit_purchase_failed"),
        "{notes:?}"
    );
    // Members do not see billing managers' notifications.
    let member_notes = f.app.store.notifications(&f.acme, false, 10).await.unwrap();
    assert!(!member_notes
        .iter()
        .any(|n| n.kind == "credit_purchase_failed"));

    // An unknown card number is refused on the page without touching the payment.
    let unknown = pay(&page, "4111 1111 1111 1112").await;
    assert_eq!(unknown.status(), 422);
    assert!(unknown.text().await.unwrap().contains("test cards"));
}

#[tokio::test]
async fn an_abandoned_checkout_is_closed_and_grants_nothing() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let before = balance(&f.app, &f.acme).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, page) = open_team_checkout(&f.app, &owner).await;
    let abandoned: Value = owner
        .post(f.app.url("/api/abandon_checkout"))
        .form(&[("id", purchase_id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(abandoned["status"], "canceled", "{abandoned}");
    // The closed checkout can no longer be paid, and its page shows nothing of it.
    let closed = pay(&page, "4242424242424242").await;
    assert_eq!(closed.status(), 410);
    assert!(!closed.text().await.unwrap().contains("Team"));
    f.app.wait_for_stripe_events().await;
    assert_eq!(balance(&f.app, &f.acme).await, before);
    let notes = f.app.store.notifications(&f.acme, true, 10).await.unwrap();
    assert!(notes.iter().any(|n| n.kind == "credit_purchase_failed"));
}

#[tokio::test]
async fn member_cannot_buy_credits() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    for email in ["member@acme.test", "guest@acme.test"] {
        let client = f.app.sign_in(email, PASSWORD).await;
        let response = start(&f.app, &client, &[("pack_id", "pack_team")]).await;
        assert_eq!(response.status(), 403, "{email}");
        let body = response.text().await.unwrap();
        assert!(body.contains("Forbidden"), "{body}");
    }
    let anonymous = start(&f.app, &TestApp::client(), &[("pack_id", "pack_team")]).await;
    assert_eq!(anonymous.status(), 401);
    assert!(f.app.purchases(&f.acme).await.is_empty());
    // A billing admin may.
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    assert_eq!(
        start(&f.app, &billing, &[("pack_id", "pack_starter")])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn bad_choices_get_clear_errors() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    for (form, needle) in [
        (vec![("custom_credits", "5500")], "steps of 1,000"),
        (vec![("custom_credits", "1000")], "smallest custom amount"),
        (vec![("pack_id", "pack_missing")], "no longer on sale"),
        (vec![], "Choose a pack"),
    ] {
        let response = start(&f.app, &owner, &form).await;
        assert_eq!(response.status(), 400, "{form:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{form:?}: {body}");
    }
    let custom = start(&f.app, &owner, &[("custom_credits", "12,000")]).await;
    assert_eq!(custom.status(), 200);
    let purchases = f.app.purchases(&f.acme).await;
    assert_eq!(purchases.len(), 1);
    assert_eq!(
        (purchases[0].credits, purchases[0].amount_minor),
        (12_000, 1_440)
    );
}

#[tokio::test]
async fn another_workspaces_purchase_is_not_found() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, _) = open_team_checkout(&f.app, &owner).await;
    // The owner of both workspaces, looking at Globex, asks for Acme's purchase.
    let switched = owner
        .post(f.app.url("/session/workspace"))
        .form(&[("workspace_id", f.globex.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    let response = owner
        .post(f.app.url("/api/load_purchase"))
        .form(&[("id", purchase_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Globex's member may not open purchases at all.
    let member = f.app.sign_in("member@globex.test", PASSWORD).await;
    let response = member
        .post(f.app.url("/api/load_purchase"))
        .form(&[("id", purchase_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_disputed_payment_takes_back_the_unspent_credits() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let before = balance(&f.app, &f.acme).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, page) = open_team_checkout(&f.app, &owner).await;
    assert_eq!(pay(&page, "4000 0000 0000 0259").await.status(), 303);
    let reversed = wait_for(&f.app, &purchase_id, |p| {
        p.status == PurchaseStatus::Reversed
    })
    .await;
    assert_eq!(reversed.reversed_credits, TEAM_PACK_CREDITS);
    assert_eq!(balance(&f.app, &f.acme).await, before);
    let audit = f.app.store.audit(&f.acme).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    let history = f
        .app
        .store
        .reads()
        .await
        .unwrap()
        .history(
            &f.acme,
            &tally::ledger::HistoryQuery {
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(history[0].entry_type, app::domain::EntryType::Adjustment);
    assert_eq!(history[0].amount, -TEAM_PACK_CREDITS);
}

#[tokio::test]
async fn a_dispute_after_some_spending_takes_back_only_what_is_left_of_the_purchase() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let before = balance(&f.app, &f.acme).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase_id, page) = open_team_checkout(&f.app, &owner).await;
    assert_eq!(pay(&page, "4242 4242 4242 4242").await.status(), 303);
    let paid = wait_for(&f.app, &purchase_id, |p| {
        p.status == PurchaseStatus::Succeeded
    })
    .await;
    // Spend more than the workspace had before, so the purchase's own lots pay part of it.
    let spent = before + 1_000;
    f.app
        .store
        .charge(
            &f.acme,
            app::domain::Credits::new(spent).unwrap(),
            &crate::fixture::usage(1),
            f.app.now(),
        )
        .await
        .unwrap();
    let (unspent,): (i64,) = sqlx::query_as(
        "SELECT CAST(SUM(remaining) AS BIGINT) FROM credit_lots WHERE workspace_id = $1 AND source_ref = $2",
    )
    .bind(f.acme.as_str())
    .bind(&purchase_id)
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert!(
        unspent < TEAM_PACK_CREDITS,
        "some of the purchase was spent"
    );
    // Credits from elsewhere arrive meanwhile; a dispute of the purchase never touches them.
    f.app
        .store
        .grant(
            &f.acme,
            &crate::fixture::grant(app::domain::GrantKind::Promotional, 500, None),
            f.app.now(),
        )
        .await
        .unwrap();
    let intent = stripe_api(
        &f.app,
        reqwest::Method::GET,
        &format!("/payment_intents/{}", paid.payment_intent_id.unwrap()),
        &[],
    )
    .await;
    let charge = intent["latest_charge"].as_str().unwrap();
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/test_helpers/charges/{charge}/dispute"),
        &[],
    )
    .await;
    let reversed = wait_for(&f.app, &purchase_id, |p| {
        p.status == PurchaseStatus::Reversed
    })
    .await;
    assert_eq!(
        reversed.reversed_credits, unspent,
        "only the unspent credits go back"
    );
    let left = before + TEAM_PACK_CREDITS - spent - unspent + 500;
    assert_eq!(balance(&f.app, &f.acme).await, left);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn a_correctly_signed_event_that_disagrees_with_stripe_grants_nothing() {
    let HeldBack {
        f,
        before,
        owner: _,
        purchase_id,
        page,
    } = held_back_checkout().await;
    // The card is declined: Stripe's payment says so.
    pay(&page, "4000 0000 0000 0002").await;
    let events = stored_events(&f.app).await;
    let failed = events
        .iter()
        .find(|e| e["type"] == "payment_intent.payment_failed")
        .expect("the decline was announced");
    // Someone with the signing secret (or a bug upstream) sends an event claiming it paid.
    let mut claim = failed.clone();
    claim["id"] = json!("evt_claims_paid");
    claim["type"] = json!("payment_intent.succeeded");
    claim["data"]["object"]["status"] = json!("succeeded");
    claim["data"]["object"]["amount_received"] = claim["data"]["object"]["amount"].clone();
    claim["data"]["object"]["last_payment_error"] = Value::Null;
    let secret = Emulator::secrets(&f.app.store)
        .await
        .unwrap()
        .webhook_secret;
    let answer = deliver(&f.app, &claim, &secret, f.app.now() / 1000).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    // Tally re-reads the payment from Stripe, which says it failed: nothing is granted.
    let purchase = f
        .app
        .store
        .purchase_by_id(&purchase_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(purchase.status, PurchaseStatus::Succeeded);
    assert_eq!(balance(&f.app, &f.acme).await, before);
    assert_eq!(purchase_entries(&f.app, &f.acme).await, 0);
}
