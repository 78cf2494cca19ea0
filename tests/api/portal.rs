//! Sign-in handoff: the host product asks for a link, the person's browser opens it once
//! within five minutes and lands on Billing signed in, with a way back.

use crate::fixture::Fixture;
use crate::support::get_text;
use crate::support::TestApp;
use serde_json::{json, Value};

async fn link(f: &Fixture, body: Value) -> (u16, Value) {
    f.operator(
        reqwest::Method::POST,
        "/api/operator/portal_sessions",
        Some(body),
    )
    .await
}

fn person(f: &Fixture, email: &str, external_id: &str, role: &str) -> Value {
    json!({
        "workspace_id": f.acme.as_str(),
        "user": {"email": email, "name": "Ada", "external_id": external_id},
        "role": role,
        "return_url": "http://127.0.0.1:9/settings/billing",
    })
}

/// Opens `url` in a fresh browser; returns it (cookies kept) and the answer.
async fn open(url: &str) -> (reqwest::Client, reqwest::Response) {
    let browser = TestApp::client();
    let answer = browser.get(url).send().await.unwrap();
    (browser, answer)
}

#[tokio::test]
async fn a_link_signs_the_person_in_once_and_shows_the_way_back() {
    let f = Fixture::with_operator().await;
    let (status, made) = link(&f, person(&f, "ada@host.test", "user_1", "member")).await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&f.app.base) && url.contains("/portal/ptl_"),
        "{url}"
    );
    assert!(made["expires_at"].is_string());

    let (browser, answer) = open(&url).await;
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/billing");
    assert!(answer.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("tally_session="));
    let page = get_text(&browser, f.app.url("/billing")).await;
    assert!(page.contains("ada@host.test"), "signed in as the person");
    assert!(page.contains("You have read-only access"), "as a member");
    assert!(
        page.contains("href=\"http://127.0.0.1:9/settings/billing\"")
            && page.contains("Back to 127.0.0.1"),
        "the way back"
    );

    // Once only: the same link again starts nothing.
    let (_, again) = open(&url).await;
    assert_eq!(again.status(), 410);
    assert!(again.headers().get("set-cookie").is_none());
    assert!(again.text().await.unwrap().contains("already used"));

    // People who came this way have no Tally password.
    let refused = f
        .app
        .browser()
        .post(f.app.url("/login"))
        .form(&[("email", "ada@host.test"), ("password", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["location"], "/login?error=missing");
}

#[tokio::test]
async fn late_forged_and_mismatched_links_start_no_session() {
    let f = Fixture::with_operator().await;
    let (_, made) = link(&f, person(&f, "bo@host.test", "user_2", "admin")).await;
    f.app.clock.advance(5 * 60 * 1000 + 1);
    let (_, late) = open(made["url"].as_str().unwrap()).await;
    assert_eq!(late.status(), 410);
    assert!(late.headers().get("set-cookie").is_none());
    assert!(late.text().await.unwrap().contains("expired"));

    for forged in ["/portal/ptl_0123456789abcdef", "/portal/not-a-link"] {
        let (_, answer) = open(&f.app.url(forged)).await;
        assert_eq!(answer.status(), 404, "{forged}");
        assert!(answer.headers().get("set-cookie").is_none());
    }

    // The host product's id names one person; an email already another's is refused.
    let (_, first) = link(&f, person(&f, "cy@host.test", "user_3", "member")).await;
    assert_eq!(open(first["url"].as_str().unwrap()).await.1.status(), 303);
    let (_, clash) = link(&f, person(&f, "cy@host.test", "user_4", "member")).await;
    let (_, answer) = open(clash["url"].as_str().unwrap()).await;
    assert_eq!(answer.status(), 409);
    assert!(answer.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn the_host_products_id_follows_a_changed_email() {
    let f = Fixture::with_operator().await;
    let (_, first) = link(&f, person(&f, "dee@host.test", "user_5", "member")).await;
    assert_eq!(open(first["url"].as_str().unwrap()).await.1.status(), 303);
    let (_, moved) = link(&f, person(&f, "dee@new.test", "user_5", "billing_admin")).await;
    let (browser, answer) = open(moved["url"].as_str().unwrap()).await;
    assert_eq!(answer.status(), 303);
    let page = get_text(&browser, f.app.url("/billing")).await;
    assert!(page.contains("dee@new.test"));
    let (people,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE external_id = 'user_5'")
            .fetch_one(f.app.store.pool())
            .await
            .unwrap();
    assert_eq!(people, 1, "one person, not two");
    assert_eq!(
        f.app
            .store
            .role_for_email(&f.acme, "dee@new.test")
            .await
            .unwrap(),
        Some(app::domain::Role::BillingAdmin)
    );
}

#[tokio::test]
async fn links_are_refused_for_bad_input_and_other_callers() {
    let f = Fixture::with_operator().await;
    for (field, value) in [
        ("return_url", json!("http://evil.example/phish")),
        ("return_url", json!("javascript:alert(1)")),
        ("role", json!("emperor")),
        ("workspace_id", json!("ws_nosuchworkspace")),
    ] {
        let mut body = person(&f, "eve@host.test", "user_6", "member");
        body[field] = value.clone();
        let (status, answer) = link(&f, body).await;
        let expected = if field == "workspace_id" { 404 } else { 400 };
        assert_eq!(status, expected, "{field} = {value}: {answer}");
    }
    let mut body = person(&f, "not an email", "user_6", "member");
    body["return_url"] = json!("https://app.example.com/back");
    assert_eq!(link(&f, body).await.0, 400);
    let with_key = TestApp::client()
        .post(f.app.url("/api/operator/portal_sessions"))
        .bearer_auth(&f.acme_key)
        .json(&person(&f, "eve@host.test", "user_6", "member"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 401);
}
