//! Findings 4 and 5: a confirmed Auto-reload escaped disputes, each "Confirm payment" opened
//! another payable checkout, and saving the settings skipped the decline back-off.

use crate::books::books;
use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::{balance, pay, wait_for};
use app::domain::PurchaseStatus;
use serde_json::Value;

const HOUR: i64 = 3_600_000;

async fn save(f: &Fixture, client: &reqwest::Client, form: &[(&str, &str)]) -> reqwest::Response {
    f.app.post_form(client, "/api/save_auto_reload", form).await
}

const ON: &[(&str, &str)] = &[
    ("enabled", "on"),
    ("threshold", "5000"),
    ("target", "20000"),
    ("monthly_cap", "100"),
];

/// Off-session charges the emulator was asked for.
async fn charges_tried(f: &Fixture) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM purchases WHERE workspace_id = $1 AND origin = 'auto_reload'",
    )
    .bind(f.acme.as_str())
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    n
}

async fn confirm(f: &Fixture, client: &reqwest::Client) -> Value {
    let response = f.app.post_form(client, "/api/confirm_reload", &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_dispute_of_the_payment_that_confirmed_a_reload_takes_its_credits_back() {
    let f = Fixture::new().await;
    // Saved at checkout, where the cardholder is present; off-session the bank wants them.
    let owner = f.owner_with_card("4000002760003184").await;
    assert_eq!(save(&f, &owner, ON).await.status(), 200);
    f.spend_to(4_000).await;
    f.app.payments.process_reloads().await.unwrap();

    // Two clicks (and two billing managers) get one checkout.
    let admin = f.app.sign_in("admin@acme.test", PASSWORD).await;
    let (first, second) = tokio::join!(confirm(&f, &owner), confirm(&f, &admin));
    assert_eq!(first["url"], second["url"], "one open checkout is reused");
    assert_eq!(confirm(&f, &owner).await["url"], first["url"]);
    let purchase = first["purchase_id"].as_str().unwrap().to_owned();

    // Confirmed with a card whose charge is disputed a little later.
    assert_eq!(
        pay(first["url"].as_str().unwrap(), "4000000000000259")
            .await
            .status(),
        303
    );
    wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Succeeded).await;
    assert_eq!(balance(&f.app, &f.acme).await, 4_000 + 16_000);
    let reversed = wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Reversed).await;
    assert_eq!(reversed.reversed_credits, 16_000);
    assert_eq!(
        balance(&f.app, &f.acme).await,
        4_000,
        "the credits went back"
    );
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
    // The paid checkout is closed: a new click opens nothing payable for a paid reload.
    let again = f.app.post_form(&owner, "/api/confirm_reload", &[]).await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn saving_the_settings_keeps_the_back_off_after_a_decline() {
    let f = Fixture::new().await;
    // This card is saved, then declined whenever it is charged.
    let owner = f.owner_with_card("4000000000000341").await;
    // Above the threshold, so turning it on charges nothing yet.
    f.app
        .store
        .grant(
            &f.acme,
            &crate::support::grant(app::domain::GrantKind::Promotional, 10_000, None),
            f.app.now(),
        )
        .await
        .unwrap();
    assert_eq!(save(&f, &owner, ON).await.status(), 200);
    f.spend_to(4_000).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(charges_tried(&f).await, 1, "declined once");

    // Saving again, even off and on again below the threshold, charges nothing.
    let changed = [
        ("enabled", "on"),
        ("threshold", "5000"),
        ("target", "25000"),
        ("monthly_cap", "100"),
    ];
    assert_eq!(save(&f, &owner, &changed).await.status(), 200);
    let off = [
        ("threshold", "5000"),
        ("target", "25000"),
        ("monthly_cap", "100"),
    ];
    assert_eq!(save(&f, &owner, &off).await.status(), 200);
    let on_again = save(&f, &owner, &changed).await;
    assert_eq!(on_again.status(), 200);
    assert!(on_again.text().await.unwrap().contains("did not top up"));
    f.spend_to(3_900).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(
        charges_tried(&f).await,
        1,
        "nothing retried inside the hour"
    );

    // The API and the page say when the card may be tried again.
    let credits: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert!(credits["auto_reload"]["retry_at"].is_string(), "{credits}");
    assert_eq!(credits["auto_reload"]["can_try_again"], false);

    // "Try again" waits for the back-off too.
    let too_soon = f
        .app
        .post_form(&owner, "/api/try_again_auto_reload", &[])
        .await;
    assert_eq!(too_soon.status(), 400);
    assert!(too_soon
        .text()
        .await
        .unwrap()
        .contains("can be tried again after"));
    let before = books(&f.app).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(books(&f.app).await, before);

    f.app.clock.advance(HOUR);
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let refused = f
        .app
        .post_form(&member, "/api/try_again_auto_reload", &[])
        .await;
    assert_eq!(refused.status(), 403);
    let retried = f
        .app
        .post_form(&owner, "/api/try_again_auto_reload", &[])
        .await;
    assert_eq!(retried.status(), 200);
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(charges_tried(&f).await, 2, "one more try, after the hour");
    // A second decline waits two hours.
    let credits: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    let retry_at =
        chrono::DateTime::parse_from_rfc3339(credits["auto_reload"]["retry_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
    assert_eq!(retry_at / 1000, (f.app.now() + 2 * HOUR) / 1000);
}
