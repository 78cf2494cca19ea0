//! The OpenAPI description: served, 3.1, and whole — every API route described with its
//! answers, none described that does not exist, every error code named.

use crate::support::TestApp;
use serde_json::Value;

/// The routes the description must cover: the API's own and the CSV export (which answers
/// API keys too). The Leptos server functions under `/api/` are the pages' own calls, not the
/// public API.
fn public_routes() -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = tally::api::routes()
        .entries()
        .iter()
        .chain(tally::openapi::routes().entries())
        .filter(|e| e.method != "ANY")
        .map(|e| (e.method.to_ascii_lowercase(), e.path.clone()))
        .collect();
    routes.push(("get".into(), "/billing/history.csv".into()));
    routes.sort();
    routes
}

async fn document(app: &TestApp) -> Value {
    let response = TestApp::client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_api_route_is_described_and_nothing_else() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut described: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            described.push((method.clone(), path.clone()));
            let name = format!("{method} {path}");
            assert!(
                operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no summary"
            );
            assert!(
                operation["operationId"].is_string(),
                "{name} has no operation id"
            );
            assert!(operation["tags"].is_array(), "{name} has no tag");
            let public = path == "/api/openapi.json" || path == "/api/docs";
            assert!(
                operation["security"].is_array() || public,
                "{name} says no way in"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{name} has no success answer"
            );
            for (status, answer) in responses {
                assert!(
                    answer["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{name} {status} has no description"
                );
                assert!(
                    answer["content"].is_object() || status == "204",
                    "{name} {status} has no body schema"
                );
            }
        }
    }
    described.sort();
    assert_eq!(
        described,
        public_routes(),
        "the description and the routes differ"
    );
}

#[tokio::test]
async fn the_error_shape_names_every_code_and_each_way_in() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let codes: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for code in [
        "invalid_request",
        "unauthenticated",
        "forbidden",
        "not_found",
        "idempotency_conflict",
        "not_refundable",
        "reservation_expired",
        "reservation_resolved",
        "insufficient_credits",
        "overloaded",
    ] {
        assert!(codes.contains(&code), "{code} is not described: {codes:?}");
    }
    for schema in [
        "UsageBody",
        "ChargeAnswer",
        "InsufficientAnswer",
        "CreditsView",
        "GrantBody",
    ] {
        assert!(schemas[schema].is_object(), "no schema {schema}");
    }
    let ways = doc["components"]["securitySchemes"].as_object().unwrap();
    for way in ["api_key", "operator", "session"] {
        assert!(ways.contains_key(way), "no security scheme {way}");
    }
    // The credit gate's body is strict, as the handler is.
    assert_eq!(
        schemas["UsageBody"]["required"],
        serde_json::json!(["idempotency_key", "action"])
    );
}

#[tokio::test]
async fn answers_have_the_described_fields() {
    let f = crate::fixture::Fixture::new().await;
    let doc = document(&f.app).await;
    let client = TestApp::client();
    let charged: Value = client
        .post(f.app.url("/api/v1/usage"))
        .bearer_auth(&f.acme_key)
        .json(&serde_json::json!({"idempotency_key": "doc-1", "action": "doc.check", "credits": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let described = &doc["components"]["schemas"]["ChargeAnswer"];
    let mut fields: Vec<&String> = charged.as_object().unwrap().keys().collect();
    fields.sort();
    let mut required: Vec<String> = described["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    required.sort();
    assert_eq!(
        fields.into_iter().cloned().collect::<Vec<_>>(),
        required,
        "{charged}"
    );
    let refused: Value = client
        .post(f.app.url("/api/v1/usage"))
        .bearer_auth(&f.acme_key)
        .json(&serde_json::json!({"idempotency_key": "doc-2", "action": "doc.check", "credits": 1_000_000_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shortage = doc["components"]["schemas"]["Shortage"]["required"]
        .as_array()
        .unwrap();
    for field in shortage {
        assert!(
            refused["error"].get(field.as_str().unwrap()).is_some(),
            "{field} missing in {refused}"
        );
    }
}

#[tokio::test]
async fn the_reference_page_runs_only_its_own_scripts() {
    let app = TestApp::spawn().await;
    let page = TestApp::client()
        .get(app.url("/api/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.unwrap();
    for reference in [
        "/vendor/swagger-ui-bundle.js",
        "/vendor/swagger-ui.css",
        "/api-docs.js",
        "href=\"/api/openapi.json\"",
    ] {
        assert!(html.contains(reference), "no {reference}");
    }
    assert!(!html.contains("<script>"), "an inline script");
    assert!(!html.contains("https://"), "something from elsewhere");
}

#[tokio::test]
async fn the_notifications_tally_sends_are_described_as_webhooks() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let hook = &doc["webhooks"]["notification"]["post"];
    assert_eq!(
        hook["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/NotificationPayload"
    );
    let headers: Vec<&str> = hook["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(headers, ["Tally-Signature", "Tally-Delivery"]);
    let payload = &doc["components"]["schemas"]["NotificationPayload"];
    let mut required: Vec<&str> = payload["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    required.sort();
    assert_eq!(
        required,
        ["body", "created_at", "id", "title", "type", "workspace_id"]
    );
    // What the outbox really sends has exactly the described fields.
    let f = crate::fixture::Fixture::with_app(app).await;
    f.app
        .store
        .request_credits(&f.acme, "member@acme.test", f.app.now())
        .await
        .unwrap();
    let (sent,): (String,) =
        sqlx::query_as("SELECT payload FROM notification_outbox WHERE kind = 'credit_request'")
            .fetch_one(f.app.store.pool())
            .await
            .unwrap();
    let sent: Value = serde_json::from_str(&sent).unwrap();
    let mut fields: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    let mut described: Vec<&str> = payload["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    described.sort();
    assert_eq!(fields, described, "{sent}");
    assert_eq!(sent["type"], "credit_request");
}
