//! Budgets below the workspace: set over the API, enforced by the gate, listed to the people
//! and servers they apply to.

use crate::fixture::{error_code, Fixture, PASSWORD};
use crate::support::get_text;
use crate::support::TestApp;
use serde_json::{json, Value};
use tally::spend::Period;

fn charge(key: &str, credits: i64, actor: &str, project: &str) -> Value {
    json!({"idempotency_key": key, "action": "studio.generate", "credits": credits,
           "resource": {"project": project}, "actor": actor})
}

async fn budget(f: &Fixture, body: Value) -> Value {
    let response = f.post_with_key("/api/v1/budgets", &f.acme_key, &body).await;
    assert_eq!(response.status(), 201, "{body}");
    response.json().await.unwrap()
}

async fn read_budget(f: &Fixture, id: &str) -> Value {
    let response = f
        .get_with_key(&format!("/api/v1/budgets/{id}"), &f.acme_key)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn balance(f: &Fixture) -> i64 {
    let body: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    body["balance"].as_i64().unwrap()
}

fn member_budget(limit: i64) -> Value {
    json!({"scope": "member", "target": "member@acme.test", "period": "day", "limit": limit})
}

#[tokio::test]
async fn a_member_budget_refuses_the_charge_that_would_pass_it() {
    let f = Fixture::new().await;
    let created = budget(&f, member_budget(100)).await;
    assert_eq!(created["label"], "member@acme.test");
    assert_eq!(
        created["enforcement"], "hard",
        "budgets are hard unless asked"
    );
    assert_eq!(created["threshold_percent"], 80);
    for key in ["b-1", "b-2"] {
        let ok = f
            .post_with_key(
                "/api/v1/usage",
                &f.acme_key,
                &charge(key, 40, "member@acme.test", "Launch"),
            )
            .await;
        assert_eq!(ok.status(), 200);
    }
    let before = balance(&f).await;
    let refused = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("b-3", 40, "member@acme.test", "Launch"),
        )
        .await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let limit = &body["error"]["limit"];
    assert_eq!(limit["kind"], "budget");
    assert_eq!(limit["scope"], "member");
    assert_eq!(limit["id"], created["id"]);
    assert_eq!(limit["period"], "day");
    assert_eq!(
        (limit["limit"].as_i64(), limit["used"].as_i64()),
        (Some(100), Some(80))
    );
    let (_, next_day) = Period::Day.bounds(f.app.now());
    let resets = chrono::DateTime::parse_from_rfc3339(limit["resets_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(Some(resets), next_day);
    assert_eq!(body["error"]["required"], 40);
    assert_eq!(
        body["error"]["recovery"],
        json!({"role": "member", "actions": ["ask_admin"]})
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("20 of 100 left"));
    assert_eq!(balance(&f).await, before, "a refusal charges nothing");
    // The same key answers the same refusal; another person is not held by this budget.
    let again: Value = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("b-3", 40, "member@acme.test", "Launch"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["error"]["limit"], body["error"]["limit"]);
    let admin = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("b-4", 40, "admin@acme.test", "Launch"),
        )
        .await;
    assert_eq!(admin.status(), 200);
    // Exactly up to the limit is allowed.
    let last = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("b-5", 20, "member@acme.test", "Launch"),
        )
        .await;
    assert_eq!(last.status(), 200);
    let read = read_budget(&f, created["id"].as_str().unwrap()).await;
    assert_eq!(
        (read["used"].as_i64(), read["remaining"].as_i64()),
        (Some(100), Some(0))
    );
}

#[tokio::test]
async fn a_billing_manager_over_budget_is_offered_to_raise_it() {
    let f = Fixture::new().await;
    budget(
        &f,
        json!({"scope": "member", "target": "owner@acme.test", "period": "month", "limit": 10}),
    )
    .await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let refused = f
        .app
        .post_json(
            &owner,
            "/api/v1/usage",
            &json!({"idempotency_key": "o-1", "action": "studio.generate", "credits": 11}),
        )
        .await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"]["recovery"],
        json!({"role": "owner", "actions": ["raise_budget"]})
    );
    assert_eq!(body["error"]["limit"]["period"], "month");
}

#[tokio::test]
async fn held_credits_count_against_a_budget_until_released() {
    let f = Fixture::new().await;
    let created = budget(&f, member_budget(100)).await;
    let id = created["id"].as_str().unwrap();
    let hold: Value = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &charge("h-1", 60, "member@acme.test", "Launch"),
        )
        .await
        .json()
        .await
        .unwrap();
    let reservation = hold["reservation_id"].as_str().unwrap().to_owned();
    let read = read_budget(&f, id).await;
    assert_eq!(
        (read["used"].as_i64(), read["held"].as_i64()),
        (Some(0), Some(60))
    );
    let refused = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("h-2", 50, "member@acme.test", "Launch"),
        )
        .await;
    assert_eq!(error_code(refused).await, "budget_exceeded");
    let released = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{reservation}/release"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(released.status(), 200);
    let read = read_budget(&f, id).await;
    assert_eq!(
        (read["used"].as_i64(), read["held"].as_i64()),
        (Some(0), Some(0))
    );
    let ok = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("h-3", 50, "member@acme.test", "Launch"),
        )
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_settle_moves_the_hold_into_use_at_its_actual_cost() {
    let f = Fixture::new().await;
    let created = budget(&f, member_budget(100)).await;
    let hold: Value = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &charge("s-1", 60, "member@acme.test", "Launch"),
        )
        .await
        .json()
        .await
        .unwrap();
    let reservation = hold["reservation_id"].as_str().unwrap();
    let settled = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{reservation}/settle"),
            &f.acme_key,
            &json!({"credits": 35}),
        )
        .await;
    assert_eq!(settled.status(), 200);
    let read = read_budget(&f, created["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            read["used"].as_i64(),
            read["held"].as_i64(),
            read["remaining"].as_i64()
        ),
        (Some(35), Some(0), Some(65))
    );
}

#[tokio::test]
async fn a_refund_gives_the_budget_its_credits_back() {
    let f = Fixture::new().await;
    let created = budget(&f, member_budget(100)).await;
    let charged: Value = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("r-1", 70, "member@acme.test", "Launch"),
        )
        .await
        .json()
        .await
        .unwrap();
    let txn = charged["transaction_id"].as_str().unwrap();
    let refunded = f
        .post_with_key(
            &format!("/api/v1/usage/{txn}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(refunded.status(), 200);
    let read = read_budget(&f, created["id"].as_str().unwrap()).await;
    assert_eq!(read["used"], 0);
}

#[tokio::test]
async fn a_budget_starts_again_when_its_period_rolls_over() {
    let f = Fixture::new().await;
    let (_, midnight) = Period::Day.bounds(f.app.now());
    let midnight = midnight.unwrap();
    f.app.clock.set(midnight - 60_000);
    let created = budget(&f, member_budget(50)).await;
    let spend = |key: &'static str| charge(key, 50, "member@acme.test", "Launch");
    assert_eq!(
        f.post_with_key("/api/v1/usage", &f.acme_key, &spend("p-1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        error_code(
            f.post_with_key("/api/v1/usage", &f.acme_key, &spend("p-2"))
                .await
        )
        .await,
        "budget_exceeded"
    );
    f.app.clock.set(midnight);
    let read = read_budget(&f, created["id"].as_str().unwrap()).await;
    assert_eq!(
        (read["used"].as_i64(), read["remaining"].as_i64()),
        (Some(0), Some(50))
    );
    assert_eq!(
        f.post_with_key("/api/v1/usage", &f.acme_key, &spend("p-3"))
            .await
            .status(),
        200,
        "a new day, a new budget"
    );
}

#[tokio::test]
async fn a_soft_budget_lets_charges_through_and_tells_billing_managers_once() {
    let f = Fixture::new().await;
    budget(
        &f,
        json!({"scope": "project", "target": "Launch", "period": "week", "limit": 100,
               "enforcement": "soft", "threshold_percent": 50}),
    )
    .await;
    for (i, credits) in [30, 30, 50, 10, 10].into_iter().enumerate() {
        let ok = f
            .post_with_key(
                "/api/v1/usage",
                &f.acme_key,
                &charge(&format!("soft-{i}"), credits, "admin@acme.test", "Launch"),
            )
            .await;
        assert_eq!(ok.status(), 200, "a soft budget never refuses");
    }
    let notes = f.app.store.notifications(&f.acme, true, 50).await.unwrap();
    let count = |kind: &str| notes.iter().filter(|n| n.kind == kind).count();
    assert_eq!(count("budget_threshold_reached"), 1);
    assert_eq!(count("budget_exhausted"), 1);
    let exhausted = notes.iter().find(|n| n.kind == "budget_exhausted").unwrap();
    assert!(exhausted.title.contains("Launch"), "{}", exhausted.title);
    // Stored with its amounts as placeholders, shown in the deployment's unit.
    let body = app::domain::CreditUnit::Credits.render(&exhausted.body);
    assert!(body.contains("110 of 100 credits used this week"), "{body}");
    // Members do not see billing managers' notices.
    let for_members = f.app.store.notifications(&f.acme, false, 50).await.unwrap();
    assert!(for_members.iter().all(|n| !n.kind.starts_with("budget_")));
}

#[tokio::test]
async fn budgets_on_a_key_and_a_project_both_apply() {
    let f = Fixture::new().await;
    let keys: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["budgets"], json!([]));
    let key_id: String = sqlx::query_scalar("SELECT id FROM api_keys WHERE workspace_id = $1")
        .bind(f.acme.as_str())
        .fetch_one(f.app.store.pool())
        .await
        .unwrap();
    let on_key = budget(
        &f,
        json!({"scope": "api_key", "target": key_id, "period": "lifetime", "limit": 1000}),
    )
    .await;
    assert_eq!(
        on_key["label"], "test",
        "a key's budget is labelled with its name"
    );
    assert_eq!(on_key["resets_at"], Value::Null);
    let on_project = budget(
        &f,
        json!({"scope": "project", "target": "Launch", "period": "day", "limit": 50}),
    )
    .await;
    let refused: Value = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("k-1", 60, "api", "Launch"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"]["limit"]["id"], on_project["id"]);
    assert_eq!(refused["error"]["recovery"]["role"], "unknown");
    let ok = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("k-2", 60, "api", "Research"),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let read = read_budget(&f, on_key["id"].as_str().unwrap()).await;
    assert_eq!(read["used"], 60);
    // The key sees its own budget and the project's in its credits answer.
    let credits: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = credits["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&on_key["id"].as_str().unwrap()));
}

#[tokio::test]
async fn people_see_only_their_own_member_budgets() {
    let f = Fixture::new().await;
    let mine = budget(&f, member_budget(100)).await;
    budget(
        &f,
        json!({"scope": "member", "target": "admin@acme.test", "period": "day", "limit": 10}),
    )
    .await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let credits = f.app.get_json(&member, "/api/billing/credits").await;
    let budgets = credits["budgets"].as_array().unwrap();
    assert_eq!(budgets.len(), 1, "{budgets:?}");
    assert_eq!(budgets[0]["id"], mine["id"]);
    assert_eq!(budgets[0]["remaining"], 100);
}

#[tokio::test]
async fn only_billing_managers_and_the_products_server_manage_budgets() {
    let f = Fixture::new().await;
    let created = budget(&f, member_budget(100)).await;
    let id = created["id"].as_str().unwrap();
    for email in ["member@acme.test", "guest@acme.test"] {
        let person = f.app.sign_in(email, PASSWORD).await;
        let list = person
            .get(f.app.url("/api/v1/budgets"))
            .send()
            .await
            .unwrap();
        assert_eq!(list.status(), 403, "{email}");
        let made = f
            .app
            .post_json(&person, "/api/v1/budgets", &member_budget(1_000))
            .await;
        assert_eq!(made.status(), 403, "{email}");
        let raised = f
            .app
            .post_json(
                &person,
                &format!("/api/v1/budgets/{id}"),
                &json!({"limit": 1_000}),
            )
            .await;
        assert_eq!(raised.status(), 403, "{email}");
    }
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let raised = f
        .app
        .post_json(
            &billing,
            &format!("/api/v1/budgets/{id}"),
            &json!({"limit": 250}),
        )
        .await;
    assert_eq!(raised.status(), 200);
    let raised: Value = raised.json().await.unwrap();
    assert_eq!(raised["limit"], 250);
    // Another workspace's budget does not exist for Globex's key.
    let path = format!("/api/v1/budgets/{id}");
    assert_eq!(f.get_with_key(&path, &f.globex_key).await.status(), 404);
    let change = f
        .post_with_key(&path, &f.globex_key, &json!({"limit": 1}))
        .await;
    assert_eq!(error_code(change).await, "not_found");
    let removed = crate::support::TestApp::client()
        .delete(f.app.url(&path))
        .bearer_auth(&f.globex_key)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 404);
    let globex_list: Value = f
        .get_with_key("/api/v1/budgets", &f.globex_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(globex_list["data"], json!([]));
    // Acme's key removes it; the member's charges are no longer limited.
    let removed = crate::support::TestApp::client()
        .delete(f.app.url(&path))
        .bearer_auth(&f.acme_key)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(f.get_with_key(&path, &f.acme_key).await.status(), 404);
    let big = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("free-1", 300, "member@acme.test", "Launch"),
        )
        .await;
    assert_eq!(big.status(), 200);
}

#[tokio::test]
async fn bad_budgets_are_refused_with_a_reason() {
    let f = Fixture::new().await;
    budget(&f, member_budget(100)).await;
    let cases = [
        (
            json!({"scope": "team", "target": "x", "period": "day", "limit": 5}),
            400,
        ),
        (
            json!({"scope": "member", "target": "x", "period": "hour", "limit": 5}),
            400,
        ),
        (
            json!({"scope": "member", "target": "member@acme.test", "period": "week", "limit": 0}),
            400,
        ),
        (
            json!({"scope": "member", "target": "member@globex.test", "period": "day", "limit": 5}),
            400,
        ),
        (
            json!({"scope": "api_key", "target": "key_nope", "period": "day", "limit": 5}),
            400,
        ),
        (
            json!({"scope": "project", "target": "  ", "period": "day", "limit": 5}),
            400,
        ),
        (
            json!({"scope": "project", "target": "P", "period": "day", "limit": 5, "threshold_percent": 0}),
            400,
        ),
        (
            json!({"scope": "member", "target": "member@acme.test", "period": "day", "limit": 5}),
            409,
        ),
    ];
    for (body, status) in cases {
        let response = f.post_with_key("/api/v1/budgets", &f.acme_key, &body).await;
        assert_eq!(response.status(), status, "{body}");
        let code = error_code(response).await;
        assert_eq!(
            code,
            if status == 409 {
                "conflict"
            } else {
                "invalid_request"
            }
        );
    }
}

#[tokio::test]
async fn a_billing_manager_sets_a_budget_on_the_page_and_the_member_sees_it_on_billing() {
    let f = Fixture::new().await;
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let form = [
        ("scope", "member"),
        ("target", "Member@Acme.test "),
        ("period", "week"),
        ("limit", "300"),
        ("enforcement", "hard"),
    ];
    let added = f.app.post_form(&billing, "/api/add_budget", &form).await;
    assert_eq!(added.status(), 200);
    let added: Value = added.json().await.unwrap();
    assert_eq!(
        added["label"], "member@acme.test",
        "the email is matched as typed"
    );
    let again = f.app.post_form(&billing, "/api/add_budget", &form).await;
    assert_eq!(again.status(), 400);
    let page = get_text(&billing, f.app.url("/budgets")).await;
    assert!(
        page.contains("Member: member@acme.test"),
        "listed on the page"
    );
    assert!(page.contains("0 of 300 credits used this week"));
    // The bar is drawn without inline styles, which the page's CSP refuses.
    assert!(page.contains(r#"role="meter""#));
    assert!(!page.contains(" style=\""), "no inline style on the page");
    let changed = f
        .app
        .post_form(
            &billing,
            "/api/change_budget",
            &[
                ("id", added["id"].as_str().unwrap()),
                ("limit", "abc"),
                ("enforcement", "hard"),
            ],
        )
        .await;
    assert_eq!(changed.status(), 400, "a limit that is not a number");
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let refused = member.get(f.app.url("/budgets")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Only billing managers set budgets"));
    let billing_page = get_text(&member, f.app.url("/billing")).await;
    assert!(billing_page.contains("Your budgets"));
    assert!(billing_page.contains("300 credits left"));
}

#[tokio::test]
async fn studio_names_the_budget_that_stops_an_action() {
    let f = Fixture::new().await;
    budget(&f, member_budget(10)).await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    // The Studio's server function carries a hash in its path.
    let run_action = tally::startup::route_list()
        .into_iter()
        .map(|r| r.path)
        .find(|p| p.starts_with("/api/run_action"))
        .expect("the Studio's server function");
    let refused = f
        .app
        .post_form(
            &member,
            &run_action,
            &[("model", "atlas-text-large"), ("units", "10000")],
        )
        .await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    let info = &body["OverBudget"];
    assert!(
        info["message"]
            .as_str()
            .unwrap()
            .contains("your daily budget has 10 of 10 left"),
        "{body}"
    );
    assert_eq!(info["actions"], json!(["ask_admin"]));
}

fn act(key: &str, action: &str, credits: i64, actor: &str) -> Value {
    json!({"idempotency_key": key, "action": action, "credits": credits, "actor": actor})
}

#[tokio::test]
async fn a_frequency_cap_answers_429_with_retry_after_and_counts_only_its_action() {
    let f = Fixture::new().await;
    let cap = budget(
        &f,
        json!({"scope": "member", "target": "member@acme.test", "period": "day", "limit": 3,
               "action": "video.generate"}),
    )
    .await;
    assert_eq!(cap["action"], "video.generate");
    for (i, credits) in [5, 80, 1].into_iter().enumerate() {
        let ok = f
            .post_with_key(
                "/api/v1/usage",
                &f.acme_key,
                &act(
                    &format!("v-{i}"),
                    "video.generate",
                    credits,
                    "member@acme.test",
                ),
            )
            .await;
        assert_eq!(ok.status(), 200, "one action each, whatever it costs");
    }
    let before = balance(&f).await;
    let refused = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &act("v-3", "video.generate", 1, "member@acme.test"),
        )
        .await;
    assert_eq!(refused.status(), 429);
    let (_, midnight) = Period::Day.bounds(f.app.now());
    let wait: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(wait, (midnight.unwrap() - f.app.now() + 999) / 1_000);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let limit = &body["error"]["limit"];
    assert_eq!(limit["kind"], "frequency_cap");
    assert_eq!(limit["action"], "video.generate");
    assert_eq!(
        (limit["limit"].as_i64(), limit["used"].as_i64()),
        (Some(3), Some(3))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Your daily limit allows 3 video.generate actions; 3 used"),
        "{body}"
    );
    assert_eq!(balance(&f).await, before, "a refusal charges nothing");
    // Other actions, and other people's videos, are not counted.
    for (key, action, actor) in [
        ("i-1", "image.generate", "member@acme.test"),
        ("v-admin", "video.generate", "admin@acme.test"),
    ] {
        let ok = f
            .post_with_key("/api/v1/usage", &f.acme_key, &act(key, action, 5, actor))
            .await;
        assert_eq!(ok.status(), 200, "{action} by {actor}");
    }
}

#[tokio::test]
async fn a_released_hold_gives_its_action_back_to_the_cap() {
    let f = Fixture::new().await;
    budget(
        &f,
        json!({"scope": "project", "target": "Launch", "period": "week", "limit": 1,
               "action": "video.generate"}),
    )
    .await;
    let hold = |key: &str| {
        json!({"idempotency_key": key, "action": "video.generate", "credits": 30,
               "resource": {"project": "Launch"}})
    };
    let first = f
        .post_with_key("/api/v1/usage/reservations", &f.acme_key, &hold("h-1"))
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = f
        .post_with_key("/api/v1/usage/reservations", &f.acme_key, &hold("h-2"))
        .await;
    assert_eq!(error_code(second).await, "rate_limited");
    let id = first["reservation_id"].as_str().unwrap();
    let released = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{id}/release"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(released.status(), 200);
    let third = f
        .post_with_key("/api/v1/usage/reservations", &f.acme_key, &hold("h-3"))
        .await;
    assert_eq!(third.status(), 201, "the failed action did not count");
    let third: Value = third.json().await.unwrap();
    let id = third["reservation_id"].as_str().unwrap();
    let settled = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{id}/settle"),
            &f.acme_key,
            &json!({"credits": 10}),
        )
        .await;
    assert_eq!(settled.status(), 200);
    let list: Value = f
        .get_with_key("/api/v1/budgets", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    let cap = &list["data"][0];
    assert_eq!(
        (cap["used"].as_i64(), cap["held"].as_i64()),
        (Some(1), Some(0))
    );
}

#[tokio::test]
async fn a_workspace_budget_counts_every_charge() {
    let f = Fixture::new().await;
    let created = budget(
        &f,
        json!({"scope": "workspace", "target": "", "period": "month", "limit": 100}),
    )
    .await;
    assert_eq!(created["label"], "Acme AI");
    for (key, actor) in [("w-1", "member@acme.test"), ("w-2", "admin@acme.test")] {
        let ok = f
            .post_with_key("/api/v1/usage", &f.acme_key, &charge(key, 50, actor, "Any"))
            .await;
        assert_eq!(ok.status(), 200);
    }
    let refused = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("w-3", 1, "api", "Other"),
        )
        .await;
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(body["error"]["limit"]["scope"], "workspace");
}

fn spend(key: &str, credits: i64, project: &str) -> Value {
    json!({"idempotency_key": key, "action": "studio.generate", "credits": credits,
           "resource": {"project": project}})
}

#[tokio::test]
async fn a_pool_keeps_its_credits_for_its_project_alone() {
    let f = Fixture::new().await;
    let total = balance(&f).await;
    let pool = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Launch", "credits": 500}),
        )
        .await;
    assert_eq!(pool.status(), 201);
    let pool: Value = pool.json().await.unwrap();
    assert_eq!(
        (pool["remaining"].as_i64(), pool["overflow"].as_bool()),
        (Some(500), Some(false))
    );
    // Another project reaches only what no pool keeps.
    let refused = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &spend("o-1", total - 499, "Research"),
        )
        .await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_credits");
    assert_eq!(body["error"]["balance"], total - 500);
    let ok = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &spend("o-2", total - 500, "Research"),
        )
        .await;
    assert_eq!(ok.status(), 200, "exactly the shared part");
    // The project spends its pool, and without overflow stops when it is dry.
    let ok = f
        .post_with_key("/api/v1/usage", &f.acme_key, &spend("l-1", 500, "Launch"))
        .await;
    assert_eq!(ok.status(), 200);
    let list: Value = f
        .get_with_key("/api/v1/pools", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["remaining"], 0);
    let dry = f
        .post_with_key("/api/v1/usage", &f.acme_key, &spend("l-2", 1, "Launch"))
        .await;
    assert_eq!(error_code(dry).await, "insufficient_credits");
}

#[tokio::test]
async fn a_pool_that_overflows_goes_on_with_the_shared_balance_and_a_refund_refills_it() {
    let f = Fixture::new().await;
    let pool: Value = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Launch", "credits": 100, "overflow": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    let charged: Value = f
        .post_with_key("/api/v1/usage", &f.acme_key, &spend("ov-1", 150, "Launch"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(charged["charged"], 150, "100 from the pool, 50 shared");
    let id = pool["id"].as_str().unwrap();
    assert_eq!(pool_left(&f).await, 0);
    let txn = charged["transaction_id"].as_str().unwrap();
    let refunded = f
        .post_with_key(
            &format!("/api/v1/usage/{txn}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(refunded.status(), 200);
    assert_eq!(pool_left(&f).await, 100, "the pool gets back what it gave");
    // A pool larger than what no other pool keeps does not fit; a second pool on the same
    // project is a conflict; removing the pool frees its credits.
    let big = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Other", "credits": 1_000_000}),
        )
        .await;
    assert_eq!(big.status(), 409);
    let twice = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Launch", "credits": 1}),
        )
        .await;
    assert_eq!(error_code(twice).await, "conflict");
    let removed = crate::support::TestApp::client()
        .delete(f.app.url(&format!("/api/v1/pools/{id}")))
        .bearer_auth(&f.acme_key)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
}

#[tokio::test]
async fn pools_shrink_when_the_credits_beneath_them_expire() {
    let f = Fixture::new().await;
    // Acme has 1,000 purchased credits (less the fixture's charge) and 500 promotional ones
    // that lapse in a day.
    let total = balance(&f).await;
    let pool = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Launch", "credits": total}),
        )
        .await;
    assert_eq!(pool.status(), 201, "the whole balance may be pooled");
    f.app.clock.advance(2 * 86_400_000);
    let after_expiry = balance(&f).await;
    assert!(after_expiry < total);
    // The next charge fits the pool to what is left: it may spend all of it, not more.
    let too_much = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &spend("e-1", after_expiry + 1, "Launch"),
        )
        .await;
    assert_eq!(error_code(too_much).await, "insufficient_credits");
    let list: Value = f
        .get_with_key("/api/v1/pools", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["remaining"], after_expiry);
    let all = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &spend("e-2", after_expiry, "Launch"),
        )
        .await;
    assert_eq!(all.status(), 200);
}

async fn pool_left(f: &Fixture) -> i64 {
    let list: Value = f
        .get_with_key("/api/v1/pools", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    list["data"][0]["remaining"].as_i64().unwrap()
}

#[tokio::test]
async fn the_budgets_page_shows_each_pool_with_what_it_has_left() {
    let f = Fixture::new().await;
    let made = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Launch", "credits": 250}),
        )
        .await;
    assert_eq!(made.status(), 201);
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let page = get_text(&billing, f.app.url("/budgets")).await;
    assert!(page.contains("Project: Launch"), "the pool is listed");
    assert!(page.contains("250 credits left; nothing more once spent"));
}

#[tokio::test]
async fn only_owners_are_offered_the_workspaces_api_keys_on_the_budgets_page() {
    let f = Fixture::new().await;
    for (email, keys) in [("billing@acme.test", 0), ("owner@acme.test", 1)] {
        let person = f.app.sign_in(email, PASSWORD).await;
        let page: Value = f
            .app
            .post_form(&person, "/api/load_budgets", &[])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["api_keys"].as_array().unwrap().len(), keys, "{email}");
        assert!(!page["members"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_operator_manages_a_workspaces_budgets_and_pools_with_the_operator_token() {
    use reqwest::Method;
    let f = Fixture::with_operator().await;
    let acme = f.acme.as_str();
    let (status, made) = f
        .operator(
            Method::POST,
            &format!("/api/operator/workspaces/{acme}/budgets"),
            Some(member_budget(60)),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    // The workspace's own server sees the operator's budget, and the gate enforces it.
    assert_eq!(read_budget(&f, &id).await["limit"], 60);
    let over = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("op-1", 61, "member@acme.test", "Launch"),
        )
        .await;
    assert_eq!(over.status(), 402);
    let (status, changed) = f
        .operator(
            Method::POST,
            &format!("/api/operator/workspaces/{acme}/budgets/{id}"),
            Some(json!({"limit": 100})),
        )
        .await;
    assert_eq!((status, changed["limit"].as_i64()), (200, Some(100)));
    let (status, listed) = f
        .operator(
            Method::GET,
            &format!("/api/operator/workspaces/{acme}/budgets"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"][0]["id"], id.as_str());

    // Another workspace's budget is unknown under this one's path.
    let globex = f.globex.as_str();
    let (status, body) = f
        .operator(
            Method::GET,
            &format!("/api/operator/workspaces/{globex}/budgets/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = f
        .operator(
            Method::GET,
            "/api/operator/workspaces/ws_doesnotexist00000000/pools",
            None,
        )
        .await;
    assert_eq!(status, 404, "an unknown workspace");

    let (status, pool) = f
        .operator(
            Method::POST,
            &format!("/api/operator/workspaces/{acme}/pools"),
            Some(json!({"scope": "project", "target": "Launch", "credits": 50})),
        )
        .await;
    assert_eq!(status, 201, "{pool}");
    let pool_id = pool["id"].as_str().unwrap();
    let (status, _) = f
        .operator(
            Method::DELETE,
            &format!("/api/operator/workspaces/{acme}/pools/{pool_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = f
        .operator(
            Method::DELETE,
            &format!("/api/operator/workspaces/{acme}/budgets/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &charge("op-2", 61, "member@acme.test", "Launch"),
        )
        .await
        .status()
        .is_success());

    // The workspace's key is not the operator token.
    let refused = TestApp::client()
        .get(
            f.app
                .url(&format!("/api/operator/workspaces/{acme}/budgets")),
        )
        .bearer_auth(&f.acme_key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn without_an_operator_token_the_operators_budget_routes_are_not_there() {
    let f = Fixture::new().await;
    let answer = TestApp::client()
        .get(f.app.url(&format!(
            "/api/operator/workspaces/{}/budgets",
            f.acme.as_str()
        )))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
}

/// The path of a server function, which carries a hash.
fn server_fn(prefix: &str) -> String {
    tally::startup::route_list()
        .into_iter()
        .map(|r| r.path)
        .find(|p| p.starts_with(prefix))
        .unwrap_or_else(|| panic!("no server function {prefix}"))
}

#[tokio::test]
async fn a_member_in_a_pooled_project_sees_only_the_pool_when_the_workspace_says_so() {
    use reqwest::Method;
    let f = Fixture::with_operator().await;
    let acme = f.acme.as_str();
    let whole = balance(&f).await;
    let pool = f
        .post_with_key(
            "/api/v1/pools",
            &f.acme_key,
            &json!({"scope": "project", "target": "Launch", "credits": 300}),
        )
        .await;
    assert_eq!(pool.status(), 201);
    let (status, member) = f
        .operator(
            Method::POST,
            &format!("/api/operator/workspaces/{acme}/members"),
            Some(json!({"email": "member@acme.test", "role": "member", "project": "Launch"})),
        )
        .await;
    assert_eq!((status, member["project"].as_str()), (200, Some("Launch")));

    // Until the workspace says so, the member sees the whole balance, as everyone does.
    let person = f.app.sign_in("member@acme.test", PASSWORD).await;
    let seen = f.app.get_json(&person, "/api/billing/credits").await;
    assert_eq!(seen["balance"].as_i64(), Some(whole));
    assert!(seen["pool"].is_null());

    let (status, workspace) = f
        .operator(
            Method::POST,
            &format!("/api/operator/workspaces/{acme}"),
            Some(json!({"member_view": "pool"})),
        )
        .await;
    assert_eq!(
        (status, workspace["member_view"].as_str()),
        (200, Some("pool"))
    );
    let seen = f.app.get_json(&person, "/api/billing/credits").await;
    assert_eq!(seen["balance"], 300, "{seen}");
    assert_eq!(seen["pool"]["project"], "Launch");
    assert_eq!(seen["transactions"], json!([]));
    assert_eq!(seen["buckets"], json!([]));
    assert_eq!(seen["lifetime_added"], 0);
    assert_eq!(seen["auto_reload"]["enabled"], false);

    // Billing shows the pool; history, its export, purchases and notifications are not theirs.
    let page = get_text(&person, f.app.url("/billing")).await;
    assert!(page.contains("AI credits for Launch"), "{page}");
    assert!(!page.contains("Lifetime added"));
    assert!(!page.contains("Buy credits"));
    let history = person
        .get(f.app.url("/billing/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), 403);
    assert!(history
        .text()
        .await
        .unwrap()
        .contains("credits are on Billing"));
    let export = person
        .get(f.app.url("/billing/history.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 403);
    let purchases = f
        .app
        .post_form(&person, &server_fn("/api/load_purchases"), &[])
        .await;
    assert_eq!(purchases.status(), 403);

    // Their Studio work is the project's, so the pool pays and they see what it has left.
    let ran = f
        .app
        .post_form(
            &person,
            &server_fn("/api/run_action"),
            &[("model", "atlas-text-large"), ("units", "1000")],
        )
        .await;
    assert_eq!(ran.status(), 200);
    let result: Value = ran.json().await.unwrap();
    let charged = result["charged"].as_i64().unwrap();
    assert!(charged > 0);
    assert_eq!(result["balance"].as_i64(), Some(300 - charged), "{result}");
    assert_eq!(
        balance(&f).await,
        whole - charged,
        "the pool's credits are the balance's"
    );

    // Billing managers still see the whole balance.
    let admin = f.app.sign_in("admin@acme.test", PASSWORD).await;
    let theirs = f.app.get_json(&admin, "/api/billing/credits").await;
    assert_eq!(theirs["balance"].as_i64(), Some(whole - charged));
    assert!(theirs["pool"].is_null());

    // Without a project, the member is back to the whole balance.
    let (status, member) = f
        .operator(
            Method::POST,
            &format!("/api/operator/workspaces/{acme}/members"),
            Some(json!({"email": "member@acme.test", "role": "member", "project": ""})),
        )
        .await;
    assert_eq!((status, member["project"].is_null()), (200, true));
    let seen = f.app.get_json(&person, "/api/billing/credits").await;
    assert_eq!(seen["balance"].as_i64(), Some(whole - charged));
}

#[tokio::test]
async fn a_bad_member_view_is_refused_with_a_reason() {
    let f = Fixture::with_operator().await;
    let (status, body) = f
        .operator(
            reqwest::Method::POST,
            &format!("/api/operator/workspaces/{}", f.acme.as_str()),
            Some(json!({"member_view": "everything"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("member_view must be balance or pool"));
}

#[tokio::test]
async fn a_billing_manager_keeps_credits_for_a_project_on_the_page_and_changes_and_removes_them() {
    let f = Fixture::new().await;
    let total = balance(&f).await;
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let kept = f
        .app
        .post_form(
            &billing,
            "/api/add_pool",
            &[
                ("scope", "project"),
                ("target", "Launch"),
                ("credits", "400"),
            ],
        )
        .await;
    assert_eq!(kept.status(), 200);
    let kept: Value = kept.json().await.unwrap();
    assert_eq!(
        (&kept["label"], &kept["remaining"]),
        (&json!("Launch"), &json!(400))
    );
    let page = get_text(&billing, f.app.url("/budgets")).await;
    assert!(page.contains("Project: Launch"), "listed on the page");
    assert!(page.contains("400 credits left; nothing more once spent"));

    // The pool made on the page is the gate's: another project reaches only the rest.
    let refused = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &spend("p-1", total - 399, "Research"),
        )
        .await;
    assert_eq!(error_code(refused).await, "insufficient_credits");

    // More than the balance leaves unclaimed is refused with the reason; nothing changes.
    let id = kept["id"].as_str().unwrap();
    let too_much = f
        .app
        .post_form(
            &billing,
            "/api/change_pool",
            &[("id", id), ("credits", &(total + 1).to_string())],
        )
        .await;
    assert_eq!(too_much.status(), 400);
    let changed = f
        .app
        .post_form(
            &billing,
            "/api/change_pool",
            &[("id", id), ("credits", "500"), ("overflow", "on")],
        )
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(
        (&changed["remaining"], &changed["overflow"]),
        (&json!(500), &json!(true))
    );

    // Removed, its credits are the shared balance's again.
    let removed = f
        .app
        .post_form(&billing, "/api/remove_pool", &[("id", id)])
        .await;
    assert_eq!(removed.status(), 200);
    assert_eq!(removed.json::<Value>().await.unwrap(), json!("Launch"));
    let ok = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &spend("p-2", total, "Research"),
        )
        .await;
    assert_eq!(ok.status(), 200, "the whole balance is shared again");
    let members_try = f.app.sign_in("member@acme.test", PASSWORD).await;
    let refused = f
        .app
        .post_form(
            &members_try,
            "/api/add_pool",
            &[("scope", "project"), ("target", "Launch"), ("credits", "1")],
        )
        .await;
    assert_eq!(refused.status(), 403, "members keep no credits apart");
}

#[tokio::test]
async fn a_billing_manager_caps_an_action_on_the_page() {
    let f = Fixture::new().await;
    let billing = f.app.sign_in("billing@acme.test", PASSWORD).await;
    let cap = |limit: &'static str| {
        [
            ("scope", "member"),
            ("target", "member@acme.test"),
            ("period", "day"),
            ("limit", limit),
            ("enforcement", "hard"),
            ("action", " video.generate "),
        ]
    };
    let bad = f
        .app
        .post_form(&billing, "/api/add_budget", &cap("1.5"))
        .await;
    assert_eq!(bad.status(), 400, "a cap counts whole actions");
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("whole number of actions"));
    let added = f
        .app
        .post_form(&billing, "/api/add_budget", &cap("1"))
        .await;
    assert_eq!(added.status(), 200);
    let added: Value = added.json().await.unwrap();
    assert_eq!(
        (&added["action"], &added["limit"]),
        (&json!("video.generate"), &json!(1))
    );
    let page = get_text(&billing, f.app.url("/budgets")).await;
    assert!(page.contains("Member, video.generate cap: member@acme.test"));
    assert!(page.contains("0 of 1 video.generate used today"));

    // The gate counts it: one video, then 429.
    let first = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &act("v-1", "video.generate", 30, "member@acme.test"),
        )
        .await;
    assert_eq!(first.status(), 200);
    let second = f
        .post_with_key(
            "/api/v1/usage",
            &f.acme_key,
            &act("v-2", "video.generate", 30, "member@acme.test"),
        )
        .await;
    assert_eq!(second.status(), 429);
}
