//! A deployment's storefront: the custom amount's terms it sells on, shown before checkout,
//! and a buying policy that keeps free workspaces from buying and tells them how to upgrade.

use crate::fixture::{Fixture, PASSWORD};
use crate::subscriptions::{at, subscribe, subscribed_fixture, wait_for_invoices};
use crate::support::buying::{start, with_packs};
use crate::support::get_text;
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
    let purchases = f.app.purchases(&f.acme).await;
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
    assert!(f.app.purchases(&f.acme).await.is_empty());

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
    assert!(f.app.subscription(&f.acme).await.is_none());
    let page = billing_page(&f, &owner).await;
    assert!(!page.contains("data-testid=\"upgrade-note\""));
    let bought = start(&f.app, &owner, &[("pack_id", "pack_team")]).await;
    assert_eq!(bought.status(), 200);
}

#[tokio::test]
async fn amounts_read_in_money_where_the_deployment_says_so_and_the_api_keeps_credits() {
    use app::domain::CreditUnit;
    use serde_json::{json, Value};
    let app =
        TestApp::spawn_with(|c| c.storefront.unit = CreditUnit::parse("usd", 1).unwrap()).await;
    let f = Fixture::with_app(app).await;

    // The API counts credits and adds the balance in money: 1,380 credits are $13.80.
    let credits: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(credits["balance"], 1_380);
    assert_eq!(
        credits["balance_money"],
        json!({"amount": 1_380, "currency": "usd"})
    );

    // The gate's answers carry it too, and a refusal says what is missing in money.
    let usage = |key: &str, credits: i64| {
        json!({"idempotency_key": key, "action": "studio.generate", "credits": credits,
               "actor": "member@acme.test"})
    };
    let charged: Value = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("m-1", 80))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(charged["balance"], 1_300);
    assert_eq!(
        charged["balance_money"],
        json!({"amount": 1_300, "currency": "usd"})
    );
    let refused = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("m-2", 5_000))
        .await;
    assert_eq!(refused.status(), 402);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(
        refused["error"]["message"],
        "This action needs $50.00 and the workspace has $13.00."
    );

    // Billing shows the balance, its movements and the terms in dollars.
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let page = billing_page(&f, &owner).await;
    let at = page.find(r#"data-testid="balance""#).expect("a balance");
    assert!(
        page[at..at + 120].contains(">$13.00<"),
        "the balance in dollars: {}",
        &page[at..at + 120]
    );
    assert!(page.contains("-$0.80"), "the charge in dollars");
    assert!(
        page.contains("Custom amounts come in steps of $10.00, from $50.00 to $10,000.00"),
        "the custom amount's terms in dollars"
    );

    // Amounts are typed in dollars: a budget of $2.50 is 250 credits, and money that is not
    // a whole number of credits is refused with the reason.
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let budget = |limit: &'static str| {
        [
            ("scope", "workspace"),
            ("target", ""),
            ("period", "month"),
            ("limit", limit),
            ("enforcement", "soft"),
        ]
    };
    let bad = f
        .app
        .post_form(&billing, "/api/add_budget", &budget("2.505"))
        .await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("Limit: enter an amount"));
    let added = f
        .app
        .post_form(&billing, "/api/add_budget", &budget("$2.50"))
        .await;
    assert_eq!(added.status(), 200);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["limit"], 250);
    let page = get_text(&billing, f.app.url("/budgets")).await;
    assert!(page.contains("$0.00 of $2.50 used this month"), "{page}");

    // Notifications recorded by the ledger read in dollars when shown: a spend to $4.00
    // crosses the low-balance line of $5.00 and uses the (soft) budget up.
    let spent = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("m-3", 900))
        .await;
    assert_eq!(spent.status(), 200);
    let page = get_text(&billing, f.app.url("/notifications")).await;
    assert!(
        page.contains("$4.00 left, at or below the low-balance line of $5.00."),
        "{page}"
    );
    assert!(
        page.contains("$9.00 of $2.50 used this month. The budget is soft"),
        "{page}"
    );
    assert!(!page.contains("[["), "no placeholder is left in the page");
}

#[tokio::test]
async fn a_deployment_that_shows_credits_gives_no_money_balance() {
    let f = Fixture::new().await;
    let credits: serde_json::Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(credits["balance"], 1_380);
    assert!(credits["balance_money"].is_null());
}
