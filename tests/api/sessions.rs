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

/// Sign-in attempts for `email` from `forwarded_for` (as a proxy would forward it).
async fn sign_in_from(
    f: &Fixture,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    forwarded_for: &str,
) -> reqwest::Response {
    client
        .post(f.app.url("/login"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_never_gets_past_the_limit() {
    let app = crate::support::TestApp::spawn_with(|c| c.sign_in_concurrency = 64).await;
    let f = Fixture::with_app(app).await;
    let client = f.app.browser();
    let tries = (0..30).map(|_| {
        let client = client.clone();
        let url = f.app.url("/login");
        async move {
            client
                .post(url)
                .form(&[
                    ("email", "member@acme.test"),
                    ("password", "guessing wrong"),
                ])
                .send()
                .await
                .unwrap()
        }
    });
    let answers = futures_util::future::join_all(tries).await;
    let checked = answers
        .iter()
        .filter(|r| location(r) == "/login?error=invalid")
        .count();
    let limited = answers
        .iter()
        .filter(|r| location(r) == "/login?error=rate_limited")
        .count();
    assert_eq!(checked + limited, 30);
    assert!(
        checked <= 5,
        "{checked} passwords were checked in the burst"
    );
    // Whatever the burst left of the limit can still be used, one by one, and no more: five
    // wrong passwords in all.
    let mut later = 0;
    for _ in 0..10 {
        let answer = try_sign_in(&f, "member@acme.test", "guessing again").await;
        if location(&answer) == "/login?error=invalid" {
            later += 1;
        }
    }
    assert_eq!(checked + later, 5);
    // The right password is refused too while the limit holds.
    let right = try_sign_in(&f, "member@acme.test", PASSWORD).await;
    assert_eq!(location(&right), "/login?error=rate_limited");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let app = crate::support::TestApp::spawn_with(|c| {
        c.trusted_proxies = tally::web::client_addr::TrustedProxies::parse("127.0.0.1/32").unwrap();
        c.sign_in_concurrency = 8;
    })
    .await;
    let f = Fixture::with_app(app).await;
    let client = f.app.browser();
    // Fifty failures from one client (ten people, five each, so no email is locked first).
    for i in 0..50 {
        let email = format!("person{}@acme.test", i % 10);
        let failed = sign_in_from(&f, &client, &email, "wrong", "203.0.113.1").await;
        assert_eq!(location(&failed), "/login?error=invalid", "try {i}");
    }
    let same = sign_in_from(&f, &client, "owner@acme.test", PASSWORD, "203.0.113.1").await;
    assert_eq!(
        location(&same),
        "/login?error=rate_limited",
        "that client is limited"
    );
    // A client the client wrote into the header itself does not help: the proxy's hop wins.
    let spoofed = sign_in_from(
        &f,
        &client,
        "owner@acme.test",
        PASSWORD,
        "198.51.100.1, 203.0.113.1",
    )
    .await;
    assert_eq!(location(&spoofed), "/login?error=rate_limited");
    let other = sign_in_from(&f, &client, "owner@acme.test", PASSWORD, "203.0.113.2").await;
    assert_eq!(location(&other), "/billing", "everyone else still signs in");
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_without_a_trusted_proxy() {
    let f = Fixture::new().await;
    let client = f.app.browser();
    for i in 0..50 {
        let email = format!("person{}@acme.test", i % 10);
        // Each try claims another address; none is believed.
        sign_in_from(&f, &client, &email, "wrong", &format!("203.0.113.{i}")).await;
    }
    let next = sign_in_from(&f, &client, "owner@acme.test", PASSWORD, "198.51.100.77").await;
    assert_eq!(location(&next), "/login?error=rate_limited");
}

#[tokio::test]
async fn too_many_sign_ins_at_once_are_told_to_come_back() {
    let app = crate::support::TestApp::spawn_with(|c| {
        c.sign_in_concurrency = 1;
        c.sign_in_wait = std::time::Duration::ZERO;
    })
    .await;
    let f = Fixture::with_app(app).await;
    let tries = (0..12).map(|i| {
        let client = f.app.browser();
        let url = f.app.url("/login");
        let email = format!("person{i}@acme.test");
        async move {
            client
                .post(url)
                .form(&[("email", email.as_str()), ("password", "wrong")])
                .send()
                .await
                .unwrap()
        }
    });
    let answers = futures_util::future::join_all(tries).await;
    let busy: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert!(
        !busy.is_empty(),
        "one verification at a time: the rest are told to wait"
    );
    assert!(busy.iter().all(|r| r.headers()["retry-after"] == "2"));
    assert!(answers
        .iter()
        .all(|r| r.status() == 429 || r.status() == 303));
    // A refused try was not counted as a failure.
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM login_failures WHERE subject LIKE 'email:%'")
            .fetch_one(f.app.store.pool())
            .await
            .unwrap();
    assert_eq!(n as usize, answers.len() - busy.len());
}

#[tokio::test]
async fn a_session_whose_membership_was_removed_is_sent_to_sign_in() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let page = member.get(f.app.url("/billing")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    sqlx::query(
        "DELETE FROM memberships WHERE workspace_id = $1 AND user_id = (SELECT id FROM users WHERE email = 'member@acme.test')",
    )
    .bind(f.acme.as_str())
    .execute(f.app.store.pool())
    .await
    .unwrap();
    // The guard resolves the whole viewer (session and membership) once, for the page and
    // its server functions alike: no page that cannot load its own data.
    for path in ["/billing", "/billing/history", "/studio"] {
        let gone = member.get(f.app.url(path)).send().await.unwrap();
        assert_eq!(gone.status(), 303, "{path}");
        assert_eq!(gone.headers()["location"], "/login", "{path}");
    }
    let answer = member
        .post(f.app.url("/api/load_purchases"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
}
