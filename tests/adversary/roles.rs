//! Findings 6 and 7: each role's server functions returned more than its page shows, and the
//! API's Auto-reload was a fixed value. Members now get no card details, guests nothing of
//! billing; the API reports the saved settings, the same value as the page.

use crate::fixture::{usage, Fixture, PASSWORD};
use crate::support::buying::{balance, open_team_checkout, pay, wait_for, with_packs};
use crate::support::get_text;
use app::domain::{Credits, PurchaseStatus};
use serde_json::Value;

async fn call_with(
    f: &Fixture,
    client: &reqwest::Client,
    function: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    f.app
        .post_form(client, &format!("/api/{function}"), form)
        .await
}

async fn call(f: &Fixture, client: &reqwest::Client, function: &str) -> reqwest::Response {
    call_with(f, client, function, &[]).await
}

/// The path of a server function without an explicit endpoint (Leptos adds a hash).
fn server_fn(name: &str) -> String {
    tally::startup::route_list()
        .into_iter()
        .map(|r| r.path)
        .find(|p| {
            p.strip_prefix("/api/")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_digit()))
        })
        .unwrap_or_else(|| panic!("no server function {name}"))
        .trim_start_matches("/api/")
        .to_owned()
}

/// A workspace whose owner bought the Team pack with the 4242 card and turned Auto-reload on.
async fn with_card_and_auto_reload() -> (Fixture, reqwest::Client) {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase, page) = open_team_checkout(&f.app, &owner).await;
    pay(&page, "4242424242424242").await;
    wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Succeeded).await;
    let saved = owner
        .post(f.app.url("/api/save_auto_reload"))
        .form(&[
            ("enabled", "on"),
            ("threshold", "5000"),
            ("target", "20000"),
            ("monthly_cap", "100"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    (f, owner)
}

#[tokio::test]
async fn members_get_no_card_details_from_any_server_function() {
    let (f, owner) = with_card_and_auto_reload().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let section: Value = call(&f, &member, "load_purchases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(section["can_buy"], false);
    assert_eq!(section["cards"], serde_json::json!([]));
    assert_eq!(section["purchases"], serde_json::json!([]));
    assert!(
        section["packs"].as_array().is_some_and(|p| !p.is_empty()),
        "the catalog stays"
    );
    let overview: Value = call(&f, &member, &server_fn("load_billing"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overview["credits"]["auto_reload"]["enabled"], true);
    assert!(
        overview["credits"]["auto_reload"]["card"].is_null(),
        "{overview}"
    );
    assert!(overview["credits"]["auto_reload"]["card_id"].is_null());
    for (path, what) in [("/billing", "page"), ("/api/billing/credits", "API")] {
        let text = get_text(&member, f.app.url(path)).await;
        assert!(!text.contains("4242"), "the member's {what} shows the card");
    }
    // The owner's own page and the product's server do see it.
    let theirs: Value = call(&f, &owner, "load_purchases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["cards"][0]["last4"], "4242");
    let api: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["auto_reload"]["card"], "Visa •••• 4242");
    // The purchase return page is the buyer's.
    let id = theirs["purchases"][0]["id"].as_str().unwrap();
    let refused = member
        .post(f.app.url("/api/load_purchase"))
        .form(&[("id", id)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn guests_see_nothing_of_billing_and_cannot_press_run() {
    let f = Fixture::new().await;
    let guest = f.app.sign_in("guest@acme.test", PASSWORD).await;
    let studio: Value = call(&f, &guest, &server_fn("load_studio"))
        .await
        .json()
        .await
        .unwrap();
    assert!(studio["balance"].is_null(), "{studio}");
    let html = get_text(&guest, f.app.url("/studio")).await;
    assert!(
        !html.contains("1,380") && !html.contains("Balance:"),
        "no balance for guests"
    );
    assert!(html.contains("Guests run AI actions only in work someone shared"));
    for function in [
        "load_billing",
        "load_history",
        "load_rates",
        "load_notifications",
    ] {
        let response = call(&f, &guest, &server_fn(function)).await;
        assert_eq!(response.status(), 403, "{function}");
    }
    for (function, form) in [
        ("load_purchases", &[][..]),
        ("start_checkout", &[("pack_id", "pack_team")][..]),
        (
            "save_auto_reload",
            &[
                ("threshold", "5000"),
                ("target", "20000"),
                ("monthly_cap", "100"),
            ][..],
        ),
    ] {
        let response = call_with(&f, &guest, function, form).await;
        assert_eq!(response.status(), 403, "{function}");
    }
    // Neither guests nor billing admins can spend: the button is off, and so is the gate.
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    for (who, client) in [("guest", &guest), ("billing admin", &billing)] {
        let html = get_text(client, f.app.url("/studio")).await;
        let button = html
            .split("<button")
            .find(|b| b.contains("Run action"))
            .unwrap_or_else(|| panic!("{who}: no Run button"));
        assert!(button.contains("disabled"), "{who}: {button}");
        let run = client
            .post(f.app.url(&format!("/api/{}", server_fn("run_action"))))
            .form(&[("model", "atlas-text-large"), ("units", "1000")])
            .send()
            .await
            .unwrap();
        assert_eq!(run.status(), 403, "{who}");
    }
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let html = get_text(&member, f.app.url("/studio")).await;
    assert!(html.contains("Balance: 1,380 credits."));
}

#[tokio::test]
async fn the_api_reports_the_saved_auto_reload_and_its_last_attempt() {
    let (f, owner) = with_card_and_auto_reload().await;
    let api = || async {
        f.get_with_key("/api/billing/credits", &f.acme_key)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let reload = api().await["auto_reload"].clone();
    assert_eq!(reload["enabled"], true);
    assert_eq!(reload["threshold"], 5_000);
    assert_eq!(reload["target_balance"], 20_000);
    assert_eq!(
        reload["monthly_cap"],
        serde_json::json!({"amount": 10_000, "currency": "usd"})
    );
    assert_eq!(reload["spent_this_month"]["amount"], 0);
    assert!(reload["last_attempt"].is_null());
    // The page gets the very same value.
    let overview: Value = call(&f, &owner, &server_fn("load_billing"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overview["credits"]["auto_reload"], reload);

    // A dip reloads 16,000 credits for $19.20; the API says so.
    let have = balance(&f.app, &f.acme).await;
    f.app
        .store
        .charge(
            &f.acme,
            Credits::new(have - 4_000).unwrap(),
            &usage(3),
            f.app.now(),
        )
        .await
        .unwrap();
    f.app.payments.process_reloads().await.unwrap();
    let reload = api().await["auto_reload"].clone();
    assert_eq!(reload["spent_this_month"]["amount"], 1_920, "{reload}");
    assert_eq!(reload["last_attempt"]["status"], "succeeded");
    assert_eq!(reload["last_attempt"]["credits"], 16_000);
    // Turned off, it says off.
    let off = owner
        .post(f.app.url("/api/save_auto_reload"))
        .form(&[
            ("threshold", "5000"),
            ("target", "20000"),
            ("monthly_cap", "100"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 200);
    assert_eq!(api().await["auto_reload"]["enabled"], false);
}
