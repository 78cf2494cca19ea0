use crate::fixture::{error_code, Fixture, PASSWORD};
use crate::support::TestApp;
use serde_json::{json, Value};

async fn balance(f: &Fixture) -> (i64, i64) {
    let body: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    (
        body["balance"].as_i64().unwrap(),
        body["held"].as_i64().unwrap(),
    )
}

fn usage(key: &str, credits: i64) -> Value {
    json!({"idempotency_key": key, "action": "studio.generate", "credits": credits, "model": "atlas-text-large",
           "resource": {"project": "Launch", "session": "s1"}, "actor": "member@acme.test"})
}

#[tokio::test]
async fn a_charge_happens_once_per_idempotency_key() {
    let f = Fixture::new().await;
    let first = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("k-1", 25))
        .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["charged"], 25);
    assert_eq!(first["balance"], 1_355);
    let again: Value = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("k-1", 25))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, first, "a replay returns the first answer");
    assert_eq!(balance(&f).await, (1_355, 0));
    let history: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["transactions"][0]["id"], first["transaction_id"]);
    assert_eq!(history["transactions"][0]["resource"]["project"], "Launch");
    assert_eq!(
        history["transactions"][1]["amount"], -120,
        "only one new entry"
    );
}

#[tokio::test]
async fn parallel_replays_of_one_key_charge_once() {
    let f = Fixture::new().await;
    let client = TestApp::client();
    let requests = (0..16).map(|_| {
        owned_post(
            client.clone(),
            f.app.url("/api/v1/usage"),
            f.acme_key.clone(),
            usage("same-key", 40),
        )
    });
    let answers = futures_join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for response in answers {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["transaction_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every replay names the same transaction");
    assert_eq!(balance(&f).await.0, 1_380 - 40);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

/// Holds `credits` under `key` in Acme AI and returns the reservation id.
async fn reserve(f: &Fixture, key: &str, credits: i64) -> String {
    let response = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &usage(key, credits),
        )
        .await;
    assert_eq!(response.status(), 201);
    let hold: Value = response.json().await.unwrap();
    hold["reservation_id"].as_str().unwrap().to_owned()
}

/// Settles or releases a reservation of Acme AI and returns the answer.
async fn resolve(f: &Fixture, id: &str, action: &str, body: Value) -> Value {
    f.post_with_key(
        &format!("/api/v1/usage/reservations/{id}/{action}"),
        &f.acme_key,
        &body,
    )
    .await
    .json()
    .await
    .unwrap()
}

/// A request that owns what it sends, so it can run on its own task.
async fn owned_post(
    client: reqwest::Client,
    url: String,
    key: String,
    body: Value,
) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Joins futures without pulling in another crate.
async fn futures_join_all<F: std::future::Future<Output = reqwest::Response> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<reqwest::Response> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_a_conflict() {
    let f = Fixture::new().await;
    assert_eq!(
        f.post_with_key("/api/v1/usage", &f.acme_key, &usage("k-2", 25))
            .await
            .status(),
        200
    );
    let response = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("k-2", 26))
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "idempotency_conflict");
    assert_eq!(balance(&f).await.0, 1_355);
}

#[tokio::test]
async fn too_few_credits_is_a_402_with_recovery_for_the_actors_role() {
    let f = Fixture::new().await;
    for (actor, role, actions) in [
        ("member@acme.test", "member", json!(["ask_admin"])),
        (
            "owner@acme.test",
            "owner",
            json!(["buy_credits", "manage_auto_reload"]),
        ),
        (
            "billing@acme.test",
            "billing_admin",
            json!(["buy_credits", "manage_auto_reload"]),
        ),
        ("guest@acme.test", "guest", json!(["ask_owner"])),
        ("stranger@elsewhere.test", "unknown", json!(["ask_owner"])),
    ] {
        let mut body = usage(&format!("big-{actor}"), 5_000);
        body["actor"] = json!(actor);
        let response = f.post_with_key("/api/v1/usage", &f.acme_key, &body).await;
        assert_eq!(response.status(), 402, "{actor}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "insufficient_credits");
        assert_eq!(body["error"]["reason"], "out_of_credits");
        assert_eq!(
            (
                body["error"]["balance"].as_i64(),
                body["error"]["required"].as_i64()
            ),
            (Some(1_380), Some(5_000))
        );
        assert_eq!(body["error"]["recovery"]["role"], role);
        assert_eq!(body["error"]["recovery"]["actions"], actions, "{actor}");
    }
    assert_eq!(balance(&f).await, (1_380, 0), "nothing was charged");
}

#[tokio::test]
async fn credits_held_by_actions_in_progress_are_reported_as_such() {
    let f = Fixture::new().await;
    let hold = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &usage("hold-1", 1_300),
        )
        .await;
    assert_eq!(hold.status(), 201);
    let response = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("after-hold", 100))
        .await;
    assert_eq!(response.status(), 402);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "held_by_actions_in_progress");
    assert_eq!(body["error"]["held"], 1_300);
    assert!(body["error"]["message"].as_str().unwrap().contains("held"));
}

#[tokio::test]
async fn a_reservation_holds_then_settles_the_actual_cost() {
    let f = Fixture::new().await;
    let response = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &usage("r-1", 100),
        )
        .await;
    assert_eq!(response.status(), 201);
    let hold: Value = response.json().await.unwrap();
    assert_eq!(hold["held"], 100);
    assert!(hold["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        balance(&f).await,
        (1_280, 100),
        "held credits are not spendable"
    );
    let id = hold["reservation_id"].as_str().unwrap();

    let settle = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{id}/settle"),
            &f.acme_key,
            &json!({"credits": 60}),
        )
        .await;
    assert_eq!(settle.status(), 200);
    let settled: Value = settle.json().await.unwrap();
    assert_eq!(
        settled,
        json!({"charged": 60, "released": 40, "balance": 1_320, "balance_money": null})
    );
    assert_eq!(balance(&f).await, (1_320, 0));

    // Settling or releasing again returns the first answer and changes nothing.
    let again = resolve(&f, id, "settle", json!({"credits": 90})).await;
    assert_eq!(again, settled);
    let release = resolve(&f, id, "release", json!({})).await;
    assert_eq!(release, settled);
    assert_eq!(balance(&f).await, (1_320, 0));
    let audit = f.app.store.audit(&f.acme).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
}

#[tokio::test]
async fn settling_above_the_hold_charges_the_extra_only_when_the_balance_allows() {
    let f = Fixture::new().await;
    let id = reserve(&f, "r-2", 100).await;
    let settled = resolve(&f, &id, "settle", json!({"credits": 150})).await;
    assert_eq!(
        settled,
        json!({"charged": 150, "released": 0, "balance": 1_230, "balance_money": null})
    );

    let id = reserve(&f, "r-3", 1_000).await;
    let settled = resolve(&f, &id, "settle", json!({"credits": 5_000})).await;
    assert_eq!(
        settled,
        json!({"charged": 1_000, "released": 0, "balance": 230, "balance_money": null}),
        "settles at the hold"
    );
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn a_released_reservation_charges_nothing() {
    let f = Fixture::new().await;
    let id = reserve(&f, "r-4", 500).await;
    let released = resolve(&f, &id, "release", json!({})).await;
    assert_eq!(
        released,
        json!({"released": 500, "balance": 1_380, "balance_money": null})
    );
    assert_eq!(balance(&f).await, (1_380, 0));
}

#[tokio::test]
async fn an_expired_hold_is_released_by_itself() {
    let f = Fixture::new().await;
    let mut body = usage("r-5", 300);
    body["hold_seconds"] = json!(60);
    let hold: Value = f
        .post_with_key("/api/v1/usage/reservations", &f.acme_key, &body)
        .await
        .json()
        .await
        .unwrap();
    let id = hold["reservation_id"].as_str().unwrap().to_owned();
    assert_eq!(balance(&f).await, (1_080, 300));
    f.app.clock.advance(61_000);
    assert_eq!(
        tally::jobs::release_expired_holds(&f.app.store, f.app.now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(balance(&f).await, (1_380, 0));
    let late = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{id}/settle"),
            &f.acme_key,
            &json!({"credits": 10}),
        )
        .await;
    assert_eq!(late.status(), 409);
    assert_eq!(error_code(late).await, "reservation_expired");
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn many_parallel_charges_against_a_small_balance_never_overdraw() {
    let f = Fixture::new().await;
    // 1,380 credits pay for exactly 13 charges of 100.
    let client = TestApp::client();
    let requests = (0..40).map(|i| {
        owned_post(
            client.clone(),
            f.app.url("/api/v1/usage"),
            f.acme_key.clone(),
            usage(&format!("par-{i}"), 100),
        )
    });
    let mut ok = 0;
    let mut refused = 0;
    for response in futures_join_all(requests).await {
        match response.status().as_u16() {
            200 => ok += 1,
            402 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, refused), (13, 27));
    assert_eq!(balance(&f).await.0, 80);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn every_usage_endpoint_checks_who_is_calling() {
    let f = Fixture::new().await;
    let anonymous = TestApp::client()
        .post(f.app.url("/api/v1/usage"))
        .json(&usage("a", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    for email in ["billing@acme.test", "guest@acme.test"] {
        let person = f.app.sign_in(email, PASSWORD).await;
        let response = person
            .post(f.app.url("/api/v1/usage"))
            .json(&usage("b", 1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{email} may not spend credits");
        let response = person
            .post(f.app.url("/api/v1/usage/reservations"))
            .json(&usage("c", 1))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{email} may not reserve credits");
    }
    // A member acts as themselves, whatever the body says.
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let mut body = usage("as-member", 5_000);
    body["actor"] = json!("owner@acme.test");
    let response: Value = member
        .post(f.app.url("/api/v1/usage"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["error"]["recovery"]["role"], "member");

    // A reservation of another workspace is not found.
    let id = reserve(&f, "r-6", 10).await;
    for action in ["settle", "release"] {
        let response = f
            .post_with_key(
                &format!("/api/v1/usage/reservations/{id}/{action}"),
                &f.globex_key,
                &json!({"credits": 1}),
            )
            .await;
        assert_eq!(response.status(), 404, "{action}");
        assert_eq!(error_code(response).await, "not_found");
    }
    let response = f
        .post_with_key(
            "/api/v1/usage/reservations/rsv_unknown000/settle",
            &f.acme_key,
            &json!({"credits": 1}),
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    // An id no reservation could have (quotes, spaces, dots) reaches the handler and is not
    // found there, in the API's JSON shape (an unknown path would be the HTML 404 page).
    for id in ["rsv%27%20OR%201%3D1", "..%2Fsettle", "%2E%2E%2E"] {
        let response = f
            .post_with_key(
                &format!("/api/v1/usage/reservations/{id}/settle"),
                &f.acme_key,
                &json!({"credits": 1}),
            )
            .await;
        assert_eq!(response.status(), 404, "{id}");
        assert_eq!(error_code(response).await, "not_found", "{id}");
    }
}

#[tokio::test]
async fn malformed_usage_requests_are_400() {
    let f = Fixture::new().await;
    let long_key = "k".repeat(256);
    for body in [
        json!({"action": "x", "credits": 1}),
        json!({"idempotency_key": "", "action": "x", "credits": 1}),
        json!({"idempotency_key": long_key, "action": "x", "credits": 1}),
        json!({"idempotency_key": "k", "action": "x", "credits": 0}),
        json!({"idempotency_key": "k", "action": "x", "credits": -5}),
        json!({"idempotency_key": "k", "action": "x", "credits": 1.5}),
        json!({"idempotency_key": "k", "action": "x", "credits": "10"}),
        json!({"idempotency_key": "k", "action": "", "credits": 1}),
        json!({"idempotency_key": "k", "action": "x"}),
        json!({"idempotency_key": "k", "action": "x", "credits": 1, "surprise": true}),
        json!({"idempotency_key": "k", "action": "x", "credits": 1_000_000_000_001_i64}),
    ] {
        let response = f.post_with_key("/api/v1/usage", &f.acme_key, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_code(response).await, "invalid_request", "{body}");
    }
    let not_json = TestApp::client()
        .post(f.app.url("/api/v1/usage"))
        .bearer_auth(&f.acme_key)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(error_code(not_json).await, "invalid_request");
    assert_eq!(balance(&f).await, (1_380, 0));
}

#[tokio::test]
async fn a_reservation_can_be_priced_by_units_and_model() {
    let f = Fixture::new().await;
    let body = json!({"idempotency_key": "units-1", "action": "studio.text", "units": 2_500, "model": "atlas-text-large"});
    let response = f
        .post_with_key("/api/v1/usage/reservations", &f.acme_key, &body)
        .await;
    let status = response.status();
    let hold: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{hold}");
    assert_eq!(
        hold["held"], 4,
        "2,500 tokens at 1.5 credits per 1K is 3.75, rounded up"
    );
    for bad in [
        json!({"idempotency_key": "u2", "action": "x", "units": 10}),
        json!({"idempotency_key": "u3", "action": "x", "units": 10, "model": "no-such-model"}),
        json!({"idempotency_key": "u4", "action": "x", "units": 0, "model": "lumen-image-2"}),
        json!({"idempotency_key": "u5", "action": "x", "units": 1, "credits": 1, "model": "lumen-image-2"}),
    ] {
        let response = f
            .post_with_key("/api/v1/usage/reservations", &f.acme_key, &bad)
            .await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn a_failed_one_shot_charge_is_refunded_once() {
    let f = Fixture::new().await;
    let charge: Value = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("to-refund", 400))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(charge["balance"], 980);
    let id = charge["transaction_id"].as_str().unwrap();
    let response = f
        .post_with_key(
            &format!("/api/v1/usage/{id}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let refund: Value = response.json().await.unwrap();
    assert_eq!(
        (refund["refunded"].as_i64(), refund["balance"].as_i64()),
        (Some(400), Some(1_380))
    );
    let again: Value = f
        .post_with_key(
            &format!("/api/v1/usage/{id}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, refund, "a second refund returns the first");
    // The credits went back where they came from: the promotional lot is whole again.
    let body: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["buckets"][0]["remaining"], 380);
    assert_eq!(body["transactions"][0]["type"], "refund");
    assert_eq!(body["transactions"][0]["amount"], 400);
    assert_eq!(
        body["lifetime_spent"], 120,
        "a refunded charge is not spent"
    );
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());

    // Only charges can be refunded, and only in their own workspace.
    let grant_id = body["transactions"][3]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["transactions"][3]["type"], "grant");
    let response = f
        .post_with_key(
            &format!("/api/v1/usage/{grant_id}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "not_refundable");
    let response = f
        .post_with_key(
            &format!("/api/v1/usage/{id}/refund"),
            &f.globex_key,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 404);
    let response = f
        .post_with_key("/api/v1/usage/nonsense/refund", &f.acme_key, &json!({}))
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn refunded_credits_of_a_lapsed_lot_expire_again() {
    // A three-day refund window, so a refund two days later is still allowed.
    let f = Fixture::with_app(
        TestApp::spawn_with(|c| c.refund_window = std::time::Duration::from_secs(3 * 86_400)).await,
    )
    .await;
    // 380 promotional credits expire in a day; this charge takes all of them and 20 more.
    let charge: Value = f
        .post_with_key("/api/v1/usage", &f.acme_key, &usage("lapse", 400))
        .await
        .json()
        .await
        .unwrap();
    let id = charge["transaction_id"].as_str().unwrap();
    f.app.clock.advance(2 * 86_400_000);
    let refund: Value = f
        .post_with_key(
            &format!("/api/v1/usage/{id}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refund["refunded"], 400);
    assert_eq!(
        refund["balance"], 1_000,
        "the promotional part lapsed; only purchased credits remain"
    );
    let body: Value = f
        .get_with_key("/api/billing/credits", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["transactions"][0]["type"], "expiry");
    assert_eq!(body["transactions"][0]["amount"], -380);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

/// Charges of several workspaces at once go through shared batches: each workspace still
/// charges exactly what it can afford, replays charge nothing, and every book balances.
#[tokio::test]
async fn parallel_charges_across_workspaces_each_stop_at_their_own_balance() {
    let f = Fixture::new().await;
    let now = f.app.now();
    // Six more workspaces with 100 credits each, beside Acme (1,380) and Globex (300).
    let mut accounts = vec![
        (f.acme.clone(), f.acme_key.clone(), 1_380),
        (f.globex.clone(), f.globex_key.clone(), 300),
    ];
    for i in 0..6 {
        let ws = f
            .app
            .store
            .create_workspace(&format!("Team {i}"), now)
            .await
            .unwrap();
        f.app
            .store
            .grant(
                &ws,
                &crate::fixture::grant(app::domain::GrantKind::Free, 100, None),
                now,
            )
            .await
            .unwrap();
        let key = f.app.store.create_api_key(&ws, "bench", now).await.unwrap();
        accounts.push((ws, key, 100));
    }
    let url = f.app.url("/api/v1/usage");
    let client = TestApp::client();
    let mut requests = Vec::new();
    for round in 0..60 {
        for (n, (_, key, _)) in accounts.iter().enumerate() {
            // Every tenth request repeats the one before it (a client retry).
            let id = if round % 10 == 9 { round - 1 } else { round };
            requests.push(owned_post(
                client.clone(),
                url.clone(),
                key.clone(),
                usage(&format!("w{n}-r{id}"), 25),
            ));
        }
    }
    let answers = futures_join_all(requests.into_iter()).await;
    assert!(answers
        .iter()
        .all(|a| a.status() == 200 || a.status() == 402));
    for (ws, _, start) in &accounts {
        let summary = f.app.store.summary(ws, f.app.now()).await.unwrap();
        // 54 distinct charges of 25 per workspace, as many as each balance covers.
        let affordable = (start / 25).min(54);
        assert_eq!(summary.available, start - affordable * 25, "{ws}");
        assert!(f.app.store.audit(ws).await.unwrap().balanced());
    }
}
