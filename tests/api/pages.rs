use crate::fixture::{Fixture, PASSWORD};
use crate::support::get_text;
use crate::support::TestApp;
use app::domain::Credits;

/// The text of the first element carrying `data-testid="{id}"`.
fn test_id_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("data-testid=\"{id}\""))?;
    let rest = &html[start..];
    let open = rest.find('>')?;
    Some(rest[open + 1..].chars().take_while(|c| *c != '<').collect())
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in() {
    let f = Fixture::new().await;
    for path in ["/billing", "/billing/history"] {
        let response = TestApp::client().get(f.app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login");
    }
    let login = TestApp::client()
        .get(f.app.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    assert!(
        html.contains(r#"<label for="email">Email</label>"#),
        "labelled email field"
    );
    assert!(
        html.contains(r#"<label for="password">Password</label>"#),
        "labelled password field"
    );
    assert!(html.contains("Sign in"));
}

#[tokio::test]
async fn the_billing_page_is_rendered_with_the_workspace_figures() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let response = owner.get(f.app.url("/billing")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert_eq!(
        test_id_text(&html, "balance").as_deref(),
        Some("1,380"),
        "balance on the page"
    );
    assert!(
        html.contains("380 credits expire on"),
        "expiring bucket on the page"
    );
    assert!(html.contains("Recent activity"));
    assert!(
        !html.contains("read-only access"),
        "owners are not read-only"
    );
}

/// A page's reads share one connection of the pool and never wait for a second one while
/// they hold it (the saved cards, which a first read writes, come after it is given back):
/// with a pool of one connection, the owner's Billing page and its history still answer.
#[tokio::test]
async fn the_billing_pages_are_served_by_a_pool_of_one_connection() {
    let db = crate::support::TestDb::sqlite_with(&tally::db::StoreOptions {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let f = Fixture::with_app(TestApp::spawn_on(db, |_| {}).await).await;
    let owner = f.owner_with_card("4242424242424242").await;
    for _ in 0..3 {
        let response = owner.get(f.app.url("/billing")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let html = response.text().await.unwrap();
        assert!(test_id_text(&html, "balance").is_some(), "the balance");
        assert!(html.contains("4242"), "the saved card is listed");
        let history = get_text(&owner, f.app.url("/billing/history")).await;
        assert!(
            history.contains("Credit history"),
            "the history page renders"
        );
    }
}

#[tokio::test]
async fn members_see_a_read_only_page_that_says_who_can_buy() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let html = get_text(&member, f.app.url("/billing")).await;
    assert_eq!(test_id_text(&html, "balance").as_deref(), Some("1,380"));
    assert!(html.contains("You have read-only access."));
    assert!(html.contains("Workspace owners, admins and billing admins can buy credits"));
}

#[tokio::test]
async fn guests_get_a_403_page() {
    let f = Fixture::new().await;
    let guest = f.app.sign_in("guest@acme.test", PASSWORD).await;
    let response = guest.get(f.app.url("/billing")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert!(html.contains("have access to Billing"));
    assert!(!html.contains("1,380"), "no figures for guests");
}

#[tokio::test]
async fn history_filters_by_type_and_exports_csv() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let html = get_text(&owner, f.app.url("/billing/history?type=grant")).await;
    assert!(html.contains(r#"data-type="grant""#));
    assert!(!html.contains(r#"data-type="consumption""#));

    let bad = owner
        .get(f.app.url("/billing/history?type=withdrawal"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let csv = owner
        .get(f.app.url("/billing/history.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = csv.text().await.unwrap();
    let lines: Vec<_> = body.lines().collect();
    assert_eq!(
        lines[0],
        "id,created_at,type,amount,balance_after,description,action,model,project,session"
    );
    assert_eq!(lines.len(), 1 + 3);
    assert!(lines[1].contains(",consumption,-120,1380,"), "{}", lines[1]);

    let only_purchases = get_text(&owner, f.app.url("/billing/history.csv?type=purchase")).await;
    assert_eq!(only_purchases.lines().count(), 2);
}

#[tokio::test]
async fn history_pages_link_to_older_movements() {
    let f = Fixture::new().await;
    let now = f.app.now();
    for i in 0..30 {
        f.app
            .store
            .charge(
                &f.acme,
                Credits::new(1).unwrap(),
                &crate::fixture::usage(i),
                now,
            )
            .await
            .unwrap();
    }
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let html = get_text(&member, f.app.url("/billing/history")).await;
    assert_eq!(html.matches("<tr data-id=").count(), 25);
    let start = html
        .find("/billing/history?cursor=")
        .expect("a link to older movements");
    let href: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let older = get_text(&member, f.app.url(&href)).await;
    assert_eq!(older.matches("<tr data-id=").count(), 33 - 25);
    assert!(!older.contains("Older movements"));
}

#[tokio::test]
async fn guests_cannot_export_history() {
    let f = Fixture::new().await;
    let guest = f.app.sign_in("guest@acme.test", PASSWORD).await;
    let response = guest
        .get(f.app.url("/billing/history.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn unknown_pages_are_a_404() {
    let f = Fixture::new().await;
    let response = TestApp::client()
        .get(f.app.url("/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn guests_cannot_open_rates_or_notifications() {
    let f = Fixture::new().await;
    let guest = f.app.sign_in("guest@acme.test", PASSWORD).await;
    for path in ["/billing/rates", "/notifications"] {
        let response = guest.get(f.app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn members_read_the_rates_by_modality() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let text = get_text(&member, f.app.url("/billing/rates")).await;
    assert!(text.contains("1.5 credits per 1K tokens"));
    assert!(!text.contains("40 credits per image"));
    let images = get_text(&member, f.app.url("/billing/rates?tab=image")).await;
    assert!(images.contains("40 credits per image"));
}

#[tokio::test]
async fn the_billing_page_charts_the_last_30_days_of_usage() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let html = get_text(&owner, f.app.url("/billing")).await;
    assert_eq!(
        test_id_text(&html, "usage-total").as_deref(),
        Some("120 credits used in the last 30 days")
    );
    assert!(html.contains("class=\"usage-chart\"") && html.contains("role=\"img\""));
    assert!(
        html.contains("studio.generate"),
        "the legend names the action"
    );
}

/// A busy workspace's chart: the view that finds many charges summed live has the sums kept
/// for the next views, which show the same figures from them.
#[tokio::test]
async fn a_busy_workspaces_chart_keeps_its_sums_for_the_next_views() {
    let f = Fixture::new().await;
    let now = f.app.now();
    f.app
        .store
        .grant(
            &f.acme,
            &crate::fixture::grant(app::domain::GrantKind::Purchased, 10_000, None),
            now,
        )
        .await
        .unwrap();
    let meta = tally::ledger::EntryMeta {
        actor: "owner@acme.test".into(),
        description: "Studio draft".into(),
        action: Some("studio.generate".into()),
        ..Default::default()
    };
    for _ in 0..tally::ledger::FOLD_AFTER {
        f.app
            .store
            .charge(&f.acme, Credits::new(1).unwrap(), &meta, now)
            .await
            .unwrap();
    }
    let total = format!(
        "{} credits used in the last 30 days",
        120 + tally::ledger::FOLD_AFTER
    );
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let html = get_text(&owner, f.app.url("/billing")).await;
    assert_eq!(test_id_text(&html, "usage-total"), Some(total.clone()));
    crate::support::wait_until("the view to have the sums kept", || async {
        let mut reads = f.app.store.reads().await.unwrap();
        let since = now / 86_400_000 * 86_400_000 - 29 * 86_400_000;
        reads
            .consumption_since(&f.acme, since)
            .await
            .unwrap()
            .live_entries
            == 0
    })
    .await;
    let html = get_text(&owner, f.app.url("/billing")).await;
    assert_eq!(test_id_text(&html, "usage-total"), Some(total));
}

#[tokio::test]
async fn billing_admins_see_that_they_cannot_run_studio_actions() {
    let f = Fixture::new().await;
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let html = get_text(&billing, f.app.url("/studio")).await;
    assert!(
        html.contains("can&#x27;t run AI actions") || html.contains("can't run AI actions"),
        "{html}"
    );
}

#[tokio::test]
async fn under_the_owner_only_policy_admins_are_read_only() {
    let f = Fixture::new().await;
    f.app
        .store
        .update_workspace_settings(
            &f.acme,
            500,
            app::domain::BillingManagers::OwnerOnly,
            app::domain::MemberView::Balance,
        )
        .await
        .unwrap();
    let admin = f.app.sign_in("admin@acme.test", PASSWORD).await;
    let html = get_text(&admin, f.app.url("/billing")).await;
    assert!(html.contains("Only the workspace owner can buy credits"));
    let mut body = serde_json::json!({"idempotency_key": "big", "action": "x", "credits": 9_999});
    let answer: serde_json::Value = admin
        .post(f.app.url("/api/v1/usage"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["error"]["recovery"]["actions"],
        serde_json::json!(["ask_admin"])
    );
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    body["idempotency_key"] = "big-owner".into();
    let answer: serde_json::Value = owner
        .post(f.app.url("/api/v1/usage"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["error"]["recovery"]["actions"],
        serde_json::json!(["buy_credits", "manage_auto_reload"])
    );

    // Nor can the admin act around the page: checkout and Auto-reload refuse them, and leave
    // nothing behind; the owner goes through the same doors.
    crate::support::buying::with_packs(&f.app).await;
    let checkout = [("pack_id", "pack_team")];
    let reload = [
        ("enabled", "true"),
        ("threshold", "5000"),
        ("target", "20000"),
        ("monthly_cap", "100"),
    ];
    for (function, form) in [
        ("start_checkout", &checkout[..]),
        ("save_auto_reload", &reload[..]),
    ] {
        let response = f
            .app
            .post_form(&admin, &format!("/api/{function}"), form)
            .await;
        assert_eq!(response.status(), 403, "admin: {function}");
    }
    assert!(f.app.purchases(&f.acme).await.is_empty());
    assert!(f
        .app
        .store
        .auto_reload_settings(&f.acme)
        .await
        .unwrap()
        .is_none());
    let response = f
        .app
        .post_form(&owner, "/api/start_checkout", &checkout)
        .await;
    assert_eq!(response.status(), 200, "the owner may buy");
    assert_eq!(f.app.purchases(&f.acme).await.len(), 1);
}

#[tokio::test]
async fn every_answer_carries_protective_headers_and_pages_a_nonce() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let page = owner.get(f.app.url("/billing")).send().await.unwrap();
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("the page's policy names a nonce")
        .to_owned();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the inline scripts carry it"
    );
    let again = owner.get(f.app.url("/billing")).send().await.unwrap();
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce),
        "a new nonce for every page"
    );
    for response in [
        owner
            .get(f.app.url("/api/billing/credits"))
            .send()
            .await
            .unwrap(),
        TestApp::client()
            .get(f.app.url("/healthz"))
            .send()
            .await
            .unwrap(),
        TestApp::client()
            .get(f.app.url("/api/nothing"))
            .send()
            .await
            .unwrap(),
    ] {
        let h = response.headers();
        assert_eq!(
            h["content-security-policy"],
            tally::web::headers::LOCKED_DOWN
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert!(
            h.get("strict-transport-security").is_none(),
            "not over plain http"
        );
    }
    for name in [
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(headers.get(name).is_some(), "{name} on pages");
    }
}

#[tokio::test]
async fn behind_https_answers_ask_for_https_and_cookies_are_secure() {
    let app = TestApp::spawn_with(|c| {
        c.public_url = Some("https://billing.example.com".into());
        c.secure_cookies = true;
    })
    .await;
    let f = Fixture::with_app(app).await;
    let response = TestApp::client()
        .post(f.app.url("/login"))
        .header("origin", "https://billing.example.com")
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_long_history_is_exported_whole_a_page_at_a_time() {
    let f = Fixture::new().await;
    let now = f.app.now();
    for i in 0..230 {
        f.app
            .store
            .charge(
                &f.acme,
                Credits::new(1).unwrap(),
                &crate::fixture::usage(i + 10),
                now + i as i64,
            )
            .await
            .unwrap();
    }
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let csv = owner
        .get(f.app.url("/billing/history.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers().get("content-length").is_none(),
        "streamed, not built in memory first"
    );
    let body = csv.text().await.unwrap();
    let lines: Vec<_> = body.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 230, "every movement, across pages");
    let ids: std::collections::HashSet<_> =
        lines[1..].iter().map(|l| l.split(',').next()).collect();
    assert_eq!(ids.len(), 233, "no row twice");

    // The same export compressed for a client that asks arrives whole.
    let gzipped = owner
        .get(f.app.url("/billing/history.csv"))
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let packed = gzipped.bytes().await.unwrap();
    let mut read = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&packed[..]), &mut read)
        .unwrap();
    assert_eq!(read, body);
}

/// Listing the app's pages switches resource loading off for the whole process while it
/// runs, so a page rendered meanwhile used to wait forever. Servers in one process (as here)
/// list them once; pages keep answering however often the route list is asked for.
#[tokio::test]
async fn pages_answer_while_the_route_list_is_read_in_the_same_process() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lister = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut listed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert!(!tally::startup::route_list().is_empty());
                listed += 1;
            }
            listed
        })
    };
    for _ in 0..40 {
        for path in ["/billing/rates", "/billing", "/studio"] {
            let response = member
                .get(f.app.url(path))
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} did not answer: {e}"));
            assert_eq!(response.status(), 200, "{path}");
            let html = tokio::time::timeout(std::time::Duration::from_secs(10), response.text())
                .await
                .unwrap_or_else(|_| panic!("{path} never finished its page"))
                .unwrap();
            assert!(html.contains("</html>"), "{path} is a whole page");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        lister.join().unwrap() > 0,
        "the route list was read meanwhile"
    );
}

/// Pages are rendered whole on the server: a page never arrives as its loading placeholder
/// (an island that reads browser-only data inside a page's Suspense made it give up and send
/// the placeholder, on some requests and not others).
#[tokio::test]
async fn pages_arrive_whole_never_as_their_loading_placeholder() {
    let f = Fixture::new().await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    for path in [
        "/billing",
        "/billing/history",
        "/billing/rates",
        "/studio",
        "/notifications",
        "/api-keys",
        "/budgets",
    ] {
        for _ in 0..8 {
            let html = get_text(&owner, f.app.url(path)).await;
            assert!(
                !html.contains(r#"class="loading""#),
                "{path} arrived as its placeholder"
            );
            assert!(html.contains("</main>"), "{path} has its content");
        }
    }
}
