//! Saved cards: a Billing page view reads the copy Tally keeps, never the payment provider;
//! card events and "Refresh" read them again; only billing managers may refresh. (Crossing
//! reads are in the store suite.)

use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::stripe_api;
use crate::support::TestApp;

/// The Billing page as `client` sees it.
async fn billing(app: &TestApp, client: &reqwest::Client) -> String {
    let response = client.get(app.url("/billing")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Changes a card in the emulator's own records without telling anyone, as a change made
/// at the provider whose event has not arrived would.
async fn change_behind_tallys_back(app: &TestApp, from_last4: &str, to_last4: &str) {
    let changed = sqlx::query(
        "UPDATE stripe_emulator_objects SET body = REPLACE(body, $1, $2) WHERE kind = 'payment_method'",
    )
    .bind(format!("\"last4\":\"{from_last4}\""))
    .bind(format!("\"last4\":\"{to_last4}\""))
    .execute(app.store.pool())
    .await
    .unwrap()
    .rows_affected();
    assert!(changed > 0, "no card ending in {from_last4}");
}

async fn attach(app: &TestApp, method: &str, customer: &str) -> String {
    let card = stripe_api(
        app,
        reqwest::Method::POST,
        &format!("/payment_methods/{method}/attach"),
        &[("customer", customer)],
    )
    .await;
    card["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_billing_view_shows_the_stored_cards_and_card_events_read_them_again() {
    let f = Fixture::new().await;
    let customer = f.app.payments.customer(&f.acme, "Acme AI").await.unwrap();
    let visa = attach(&f.app, "pm_card_visa", &customer).await;
    f.app.wait_for_stripe_events().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    assert!(billing(&f.app, &owner).await.contains("Visa •••• 4242"));

    // The provider's copy changes with no event: views keep showing what Tally stored,
    // because they do not ask the provider.
    change_behind_tallys_back(&f.app, "4242", "1881").await;
    for _ in 0..3 {
        let page = billing(&f.app, &owner).await;
        assert!(page.contains("Visa •••• 4242"), "a view asked the provider");
    }

    // A card event reads every card again.
    attach(&f.app, "pm_card_mastercard", &customer).await;
    f.app.wait_for_stripe_events().await;
    let page = billing(&f.app, &owner).await;
    assert!(page.contains("Mastercard •••• 4444"), "the new card");
    assert!(page.contains("Visa •••• 1881"), "the read is whole");
    assert_eq!(page.matches("data-testid=\"saved-card\"").count(), 2);

    // A detached card names its customer only in the event's previous attributes.
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/payment_methods/{visa}/detach"),
        &[],
    )
    .await;
    f.app.wait_for_stripe_events().await;
    let page = billing(&f.app, &owner).await;
    assert!(!page.contains("1881"), "the detached card is gone");
    assert_eq!(page.matches("data-testid=\"saved-card\"").count(), 1);
}

#[tokio::test]
async fn refresh_reads_the_cards_again_for_billing_managers_only() {
    let f = Fixture::new().await;
    let customer = f.app.payments.customer(&f.acme, "Acme AI").await.unwrap();
    attach(&f.app, "pm_card_visa", &customer).await;
    f.app.wait_for_stripe_events().await;
    change_behind_tallys_back(&f.app, "4242", "1881").await;

    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let refused = member
        .post(f.app.url("/api/refresh_cards"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let admin = f.app.sign_in("billing@acme.test", PASSWORD).await;
    assert!(billing(&f.app, &admin).await.contains("Visa •••• 4242"));

    let fresh: serde_json::Value = admin
        .post(f.app.url("/api/refresh_cards"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fresh[0]["last4"], "1881", "{fresh}");
    assert!(billing(&f.app, &admin).await.contains("Visa •••• 1881"));
}
