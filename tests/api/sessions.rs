use crate::fixture::{error_code, Fixture, PASSWORD};
use serde_json::Value;

async fn try_sign_in(f: &Fixture, email: &str, password: &str) -> reqwest::Response {
    f.app
        .browser()
        .post(f.app.url("/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_lax() {
    let f = Fixture::new().await;
    let response = try_sign_in(&f, "owner@acme.test", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("tally_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_wrong_password_or_unknown_email_is_refused_the_same_way() {
    let f = Fixture::new().await;
    for (email, password) in [
        ("owner@acme.test", "wrong password"),
        ("nobody@acme.test", PASSWORD),
    ] {
        let response = try_sign_in(&f, email, password).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/login?error=invalid");
        assert!(response.headers().get("set-cookie").is_none());
    }
    let response = try_sign_in(&f, "", "").await;
    assert_eq!(response.headers()["location"], "/login?error=missing");
}

#[tokio::test]
async fn repeated_failures_lock_sign_in_for_that_email() {
    let f = Fixture::new().await;
    for _ in 0..5 {
        let response = try_sign_in(&f, "member@acme.test", "guessing wrong").await;
        assert_eq!(response.headers()["location"], "/login?error=invalid");
    }
    // Even the right password is refused while the limit holds.
    let response = try_sign_in(&f, "member@acme.test", PASSWORD).await;
    assert_eq!(response.headers()["location"], "/login?error=rate_limited");
    // Other people are not locked out.
    f.app.sign_in("owner@acme.test", PASSWORD).await;
    // After the window, the right password works again.
    f.app.clock.advance(16 * 60 * 1000);
    f.app.sign_in("member@acme.test", PASSWORD).await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let f = Fixture::new().await;
    let client = f.app.sign_in("owner@acme.test", PASSWORD).await;
    assert_eq!(
        client
            .get(f.app.url("/api/billing/credits"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let response = client.post(f.app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        client
            .get(f.app.url("/api/billing/credits"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let page = client.get(f.app.url("/billing")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
}

#[tokio::test]
async fn sessions_expire() {
    let f = Fixture::new().await;
    let client = f.app.sign_in("owner@acme.test", PASSWORD).await;
    f.app.clock.advance(31 * 86_400_000);
    assert_eq!(
        client
            .get(f.app.url("/api/billing/credits"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn a_person_in_two_workspaces_sees_each_ones_own_figures() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    // Sign-in starts in the first workspace by name: Acme AI.
    let acme: Value = owner
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acme["workspace_id"], f.acme.as_str());
    assert_eq!(acme["balance"], 1_380);

    let response = owner
        .post(f.app.url("/session/workspace"))
        .form(&[("workspace_id", f.globex.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let globex: Value = owner
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(globex["workspace_id"], f.globex.as_str());
    assert_eq!(globex["balance"], 300);
    let acme_ids: Vec<_> = acme["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert!(globex["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| !acme_ids.contains(&t["id"])));
}

#[tokio::test]
async fn switching_to_a_workspace_you_do_not_belong_to_is_a_404() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let response = member
        .post(f.app.url("/session/workspace"))
        .form(&[("workspace_id", f.globex.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    let response = member
        .post(f.app.url("/session/workspace"))
        .form(&[("workspace_id", "not-an-id")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Still looking at Acme.
    let body: Value = member
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["workspace_id"], f.acme.as_str());
}
