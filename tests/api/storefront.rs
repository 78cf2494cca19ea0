//! A deployment's storefront: the custom amount's terms it sells on, shown before checkout,
//! and a buying policy that keeps free workspaces from buying and tells them how to upgrade.

use crate::fixture::{Fixture, PASSWORD};
use crate::subscriptions::{at, subscribe, subscribed_fixture, wait_for_invoices};
use crate::support::buying::{start, with_packs};
use crate::support::TestApp;
use app::domain::{BuyingPolicy, Credits, Currency, CustomAmountTerms, Money};

async fn billing_page(f: &Fixture, client: &reqwest::Client) -> String {
    let page = client.get(f.app.url("/billing")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

#[tokio::test]
async fn custom_amounts_follow_the_deployments_terms_and_say_so_before_checkout() {
    let terms = CustomAmountTerms::new(
        Credits::new(10).unwrap(),
        Credits::new(20).unwrap(),
        Credits::new(500).unwrap(),
        Money::new(10, Currency::usd()).unwrap(),
    )
    .unwrap();
    let app = TestApp::spawn_with(|c| c.storefront.custom = terms.clone()).await;
    let f = Fixture::with_app(app).await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let page = billing_page(&f, &owner).await;
    assert!(
        page.contains("steps of 10 credits, from 20 to 500, at $0.10 USD per 10 credits"),
        "the terms are on the page before checkout"
    );
    for (amount, needle) in [
        ("25", "steps of 10"),
        ("10", "smallest custom amount is 20"),
        ("510", "largest custom amount is 500"),
    ] {
        let refused = start(&f.app, &owner, &[("custom_credits", amount)]).await;
        assert_eq!(refused.status(), 400, "{amount}");
        let body = refused.text().await.unwrap();
        assert!(body.contains(needle), "{amount}: {body}");
    }
    let bought = start(&f.app, &owner, &[("custom_credits", "30")]).await;
    assert_eq!(bought.status(), 200);
    let purchases = f.app.store.purchases(&f.acme, 10).await.unwrap();
    assert_eq!(
        (purchases[0].credits, purchases[0].amount_minor),
        (30, 30),
        "three steps at ten cents"
    );
}

#[tokio::test]
async fn a_free_workspace_is_told_to_upgrade_where_only_paid_plans_buy() {
    let app = TestApp::spawn_with(|c| {
        c.storefront.buying = BuyingPolicy::PaidPlansOnly;
        c.storefront.upgrade_url = Some("https://app.example.com/plans".into());
    })
    .await;
    let f = subscribed_fixture(app, at(2026, 11, 1)).await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;

    // No plan: the page says how to upgrade instead of offering packs, and nothing is sold.
    let page = billing_page(&f, &owner).await;
    assert!(page.contains("data-testid=\"upgrade-note\""), "{page}");
    assert!(page.contains("https://app.example.com/plans"));
    assert!(!page.contains("name=\"pack-choice\""));
    let refused = start(&f.app, &owner, &[("pack_id", "pack_team")]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("paid plan"));
    let reload = owner
        .post(f.app.url("/api/save_auto_reload"))
        .form(&[
            ("threshold", "5000"),
            ("target", "20000"),
            ("monthly_cap", "100"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 400);
    assert!(reload.text().await.unwrap().contains("paid plan"));
    assert!(f.app.store.purchases(&f.acme, 10).await.unwrap().is_empty());

    // On a plan (a trial counts), the same workspace buys.
    let sub = subscribe(&f, "price_team_month", "1", "14").await;
    wait_for_invoices(&f.app, &sub, 1).await;
    let page = billing_page(&f, &owner).await;
    assert!(!page.contains("data-testid=\"upgrade-note\""));
    assert!(page.contains("name=\"pack-choice\""));
    let bought = start(&f.app, &owner, &[("pack_id", "pack_team")]).await;
    assert_eq!(bought.status(), 200);
}

#[tokio::test]
async fn any_workspace_buys_by_default() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    assert!(f
        .app
        .store
        .subscription_of(&f.acme)
        .await
        .unwrap()
        .is_none());
    let page = billing_page(&f, &owner).await;
    assert!(!page.contains("data-testid=\"upgrade-note\""));
    let bought = start(&f.app, &owner, &[("pack_id", "pack_team")]).await;
    assert_eq!(bought.status(), 200);
}
