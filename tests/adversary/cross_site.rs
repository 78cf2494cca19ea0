//! Finding 3: requests from another site acted as the signed-in person. Every state-changing
//! request with a session (and sign-in itself) must now come from the site's own pages, and
//! no GET changes state.

use crate::books::{books, refusal};
use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::{open_team_checkout, pay, wait_for, with_packs};
use crate::support::TestApp;
use app::domain::PurchaseStatus;
use reqwest::header::{ORIGIN, REFERER};

const EVIL: &str = "https://evil.example";

#[tokio::test]
async fn a_checkout_opened_from_another_site_is_refused() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let before = books(&f.app).await;
    let response = owner
        .post(f.app.url("/api/start_checkout"))
        .header(ORIGIN, EVIL)
        .form(&[("pack_id", "pack_team")])
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response).await, (403, "forbidden".into()));
    assert_eq!(books(&f.app).await, before, "no purchase was opened");
    // From the site itself it works.
    let (_, page) = open_team_checkout(&f.app, &owner).await;
    assert!(page.contains("/_stripe/checkout/"));
}

#[tokio::test]
async fn a_sign_out_from_another_site_is_refused() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let response = owner
        .post(f.app.url("/logout"))
        .header(ORIGIN, EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none());
    let html = response.text().await.unwrap();
    assert!(
        html.contains("came from another site"),
        "a page a person can read"
    );
    let still = owner
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "still signed in");
}

#[tokio::test]
async fn a_forged_sign_in_is_refused() {
    let f = Fixture::new().await;
    // The attacker's own account, pressed on the victim's browser.
    for headers in [
        vec![(ORIGIN, EVIL)],
        vec![(REFERER, "https://evil.example/login-csrf")],
        vec![],
    ] {
        let mut request = TestApp::client().post(f.app.url("/login"));
        for (name, value) in &headers {
            request = request.header(name, *value);
        }
        let response = request
            .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{headers:?}");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "{headers:?}"
        );
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(f.app.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "no session was started");
}

#[tokio::test]
async fn a_workspace_switch_from_another_site_is_refused() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let response = owner
        .post(f.app.url("/session/workspace"))
        .header(ORIGIN, EVIL)
        .form(&[("workspace_id", f.globex.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let credits: serde_json::Value = owner
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        credits["workspace_id"],
        f.acme.as_str(),
        "still looking at Acme"
    );
}

#[tokio::test]
async fn the_referer_stands_in_only_for_a_missing_origin() {
    let f = Fixture::new().await;
    // The owner's session cookie, sent by a client with no Origin of its own.
    let cookie = {
        let response = f
            .app
            .browser()
            .post(f.app.url("/login"))
            .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let usage = |key: &str| serde_json::json!({"idempotency_key": key, "action": "studio.generate", "credits": 5});
    let site_referer = f.app.url("/studio");
    let cases = [
        (None, Some(site_referer.as_str()), 200),
        (None, Some("https://evil.example/page"), 403),
        (None, None, 403),
        (Some("null"), None, 403),
        (Some(EVIL), Some(site_referer.as_str()), 403),
    ];
    for (i, (origin, referer, want)) in cases.into_iter().enumerate() {
        let before = books(&f.app).await;
        let mut request = TestApp::client()
            .post(f.app.url("/api/v1/usage"))
            .header(reqwest::header::COOKIE, &cookie);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(referer) = referer {
            request = request.header(REFERER, referer);
        }
        let response = request.json(&usage(&format!("r{i}"))).send().await.unwrap();
        assert_eq!(response.status(), want, "{origin:?} {referer:?}");
        if want == 403 {
            assert_eq!(books(&f.app).await, before, "{origin:?} {referer:?}");
        }
    }
}

#[tokio::test]
async fn a_service_with_an_api_key_needs_no_origin() {
    let f = Fixture::new().await;
    let response = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &serde_json::json!({"idempotency_key": "svc", "action": "a", "credits": 5}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_link_to_the_return_page_does_not_cancel_a_checkout() {
    let f = Fixture::new().await;
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (purchase, page) = open_team_checkout(&f.app, &owner).await;
    let visited = owner
        .get(
            f.app
                .url(&format!("/billing/purchases/{purchase}?canceled=1")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(visited.status(), 200);
    let html = visited.text().await.unwrap();
    assert!(html.contains("Cancel this checkout"), "the buyer decides");
    // (Only a person's click cancels: this client runs no script, and nothing else may.)
    let after = f
        .app
        .store
        .purchase_by_id(&purchase)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, PurchaseStatus::Open);
    // The checkout can still be paid.
    assert_eq!(pay(&page, "4242424242424242").await.status(), 303);
    wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Succeeded).await;
}
