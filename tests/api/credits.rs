use crate::fixture::{error_code, usage, Fixture, PASSWORD};
use crate::support::get_text;
use crate::support::TestApp;
use app::domain::Credits;
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test]
async fn an_api_key_reads_its_workspace_credits() {
    let f = Fixture::new().await;
    let response = f.get_with_key("/api/billing/credits", &f.acme_key).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["workspace_id"], f.acme.as_str());
    assert_eq!(body["balance"], 1_380);
    assert_eq!(body["held"], 0);
    assert_eq!(body["lifetime_added"], 1_500);
    assert_eq!(body["lifetime_spent"], 120);
    assert_eq!(body["low_balance"], false);
    assert_eq!(body["low_balance_threshold"], 500);
    assert_eq!(body["next_cursor"], Value::Null);
    // The promotional credits were drawn first: 380 left, expiring; purchased untouched.
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets[0]["kind"], "promotional");
    assert_eq!(buckets[0]["remaining"], 380);
    assert!(buckets[0]["expires_at"].is_string());
    assert_eq!(buckets[1]["kind"], "purchased");
    assert_eq!(buckets[1]["expires_at"], Value::Null);
    let transactions = body["transactions"].as_array().unwrap();
    let types: Vec<_> = transactions
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["consumption", "grant", "purchase"]);
    assert_eq!(transactions[0]["amount"], -120);
    assert_eq!(transactions[0]["balance_after"], 1_380);
    assert_eq!(transactions[0]["resource"]["model"], "atlas-text-large");
    assert_eq!(body["auto_reload"]["enabled"], false);
}

#[tokio::test]
async fn the_low_balance_flag_follows_the_threshold() {
    let f = Fixture::new().await;
    let body: Value = f
        .get_with_key("/api/billing/credits", &f.globex_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["balance"], 300);
    assert_eq!(
        body["low_balance"], true,
        "300 is at or below the default threshold of 500"
    );
}

#[tokio::test]
async fn credits_need_credentials() {
    let f = Fixture::new().await;
    let response = TestApp::client()
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "unauthenticated");
    let response = f
        .get_with_key("/api/billing/credits", "tly_not_a_real_key")
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "unauthenticated");
    let response = TestApp::client()
        .get(f.app.url("/api/billing/credits"))
        .header("authorization", "Basic b3duZXI6cGFzcw==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_member_session_reads_credits_and_a_guest_session_is_forbidden() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let response = member
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["workspace_id"], f.acme.as_str());
    assert_eq!(body["balance"], 1_380);

    let guest = f.app.sign_in("guest@acme.test", PASSWORD).await;
    let response = guest
        .get(f.app.url("/api/billing/credits"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "forbidden");
}

#[tokio::test]
async fn bad_query_parameters_are_rejected_with_400() {
    let f = Fixture::new().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "limit=-1",
        "cursor=nonsense",
        "cursor=c",
        "cursor=c-5",
    ] {
        let response = f
            .get_with_key(&format!("/api/billing/credits?{query}"), &f.acme_key)
            .await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(error_code(response).await, "invalid_request", "{query}");
    }
}

#[tokio::test]
async fn pages_follow_the_cursor_to_the_end_without_gaps_or_repeats() {
    let f = Fixture::new().await;
    let now = f.app.now();
    for i in 1..=27 {
        f.app
            .store
            .charge(&f.acme, Credits::new(1).unwrap(), &usage(i), now)
            .await
            .unwrap();
    }
    // 3 fixture entries + 27 charges = 30 entries, 8 per page: 8 + 8 + 8 + 6.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/billing/credits?limit=8&cursor={c}"),
            None => "/api/billing/credits?limit=8".to_owned(),
        };
        let body: Value = f
            .get_with_key(&path, &f.acme_key)
            .await
            .json()
            .await
            .unwrap();
        pages += 1;
        let transactions = body["transactions"].as_array().unwrap();
        assert!(transactions.len() <= 8);
        seen.extend(transactions.iter().map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["balance_after"].as_i64().unwrap(),
            )
        }));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 30);
    assert_eq!(
        seen.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        30,
        "no entry twice"
    );
    // Newest first: the running balance rises as we go back in time, by one credit a step.
    assert_eq!(seen[0].1, 1_380 - 27);
    assert!(seen.windows(2).take(26).all(|w| w[1].1 == w[0].1 + 1));
}

#[tokio::test]
async fn a_cursor_never_reveals_another_workspace() {
    let f = Fixture::new().await;
    let body: Value = f
        .get_with_key("/api/billing/credits?limit=1", &f.acme_key)
        .await
        .json()
        .await
        .unwrap();
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let body: Value = f
        .get_with_key(
            &format!("/api/billing/credits?cursor={cursor}"),
            &f.globex_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["workspace_id"], f.globex.as_str());
    let descriptions: Vec<_> = body["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["description"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        descriptions.iter().all(|d| d == "300 free credits"),
        "{descriptions:?}"
    );
}

#[tokio::test]
async fn unknown_api_paths_answer_with_a_json_404() {
    let f = Fixture::new().await;
    let response = f.get_with_key("/api/v1/nothing-here", &f.acme_key).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let f = Fixture::new().await;
    let client = TestApp::client();
    assert_eq!(
        client
            .get(f.app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(f.app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = get_text(&client, f.app.url("/metrics")).await;
    assert!(metrics.contains("tally_db_connections "), "{metrics}");
}
