//! Finding 2: a member could refund their own AI work, and settle a reservation at zero.
//! Credits now come back only through the product's server (API keys), only for a one-shot
//! charge, once, within the refund window; a settled reservation is final.

use crate::books::{books, everyone, refusal};
use crate::fixture::{Fixture, PASSWORD};
use serde_json::{json, Value};

fn usage(key: &str, credits: i64) -> Value {
    json!({"idempotency_key": key, "action": "studio.generate", "credits": credits})
}

#[tokio::test]
async fn member_cannot_refund_their_own_charge() {
    let f = Fixture::new().await;
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let charged: Value = member
        .post(f.app.url("/api/v1/usage"))
        .json(&usage("member-work", 7))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(charged["balance"], 1_373, "{charged}");
    let id = charged["transaction_id"].as_str().unwrap();
    let before = books(&f.app).await;
    for (who, client) in everyone(&f).await {
        let response = client
            .post(f.app.url(&format!("/api/v1/usage/{id}/refund")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(refusal(response).await, (403, "forbidden".into()), "{who}");
    }
    assert_eq!(books(&f.app).await, before, "nothing came back");
}

#[tokio::test]
async fn a_session_cannot_settle_or_release_a_reservation() {
    let f = Fixture::new().await;
    let held: Value = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &usage("held", 100),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = held["reservation_id"].as_str().unwrap().to_owned();
    let before = books(&f.app).await;
    for (who, client) in everyone(&f).await {
        for (action, body) in [("settle", json!({"credits": 0})), ("release", json!({}))] {
            let response = client
                .post(
                    f.app
                        .url(&format!("/api/v1/usage/reservations/{id}/{action}")),
                )
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                refusal(response).await,
                (403, "forbidden".into()),
                "{who} {action}"
            );
        }
    }
    assert_eq!(books(&f.app).await, before, "the hold is still held");
    // The product's server still can.
    let settled = f
        .post_with_key(
            &format!("/api/v1/usage/reservations/{id}/settle"),
            &f.acme_key,
            &json!({"credits": 60}),
        )
        .await;
    assert_eq!(settled.status(), 200);
}

#[tokio::test]
async fn a_settled_reservation_is_final() {
    let f = Fixture::new().await;
    let held: Value = f
        .post_with_key(
            "/api/v1/usage/reservations",
            &f.acme_key,
            &usage("final", 100),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = held["reservation_id"].as_str().unwrap();
    f.post_with_key(
        &format!("/api/v1/usage/reservations/{id}/settle"),
        &f.acme_key,
        &json!({"credits": 80}),
    )
    .await;
    let (entry,): (String,) = sqlx::query_as("SELECT entry_id FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_one(f.app.store.pool())
        .await
        .unwrap();
    let before = books(&f.app).await;
    let response = f
        .post_with_key(
            &format!("/api/v1/usage/{entry}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(refusal(response).await, (409, "not_refundable".into()));
    assert_eq!(books(&f.app).await, before);
}

#[tokio::test]
async fn a_charge_is_refunded_only_within_the_window() {
    let f = Fixture::new().await;
    let charge = |key: &'static str| {
        let f = &f;
        async move {
            let body: Value = f
                .post_with_key("/api/v1/usage", &f.acme_key, &usage(key, 50))
                .await
                .json()
                .await
                .unwrap();
            body["transaction_id"].as_str().unwrap().to_owned()
        }
    };
    let old = charge("old").await;
    f.app.clock.advance(24 * 3_600_000 - 1);
    let recent = charge("recent").await;
    f.app.clock.advance(2);
    // 24 hours and a millisecond after the first charge: too old; the second is fine.
    let before = books(&f.app).await;
    let response = f
        .post_with_key(
            &format!("/api/v1/usage/{old}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(refusal(response).await, (409, "not_refundable".into()));
    assert_eq!(books(&f.app).await, before);
    let refunded = f
        .post_with_key(
            &format!("/api/v1/usage/{recent}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(refunded.status(), 200);
    // Asking again returns the same refund, even once the window has closed.
    f.app.clock.advance(2 * 24 * 3_600_000);
    let again = f
        .post_with_key(
            &format!("/api/v1/usage/{recent}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), 200);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn another_workspaces_charge_is_not_found() {
    let f = Fixture::new().await;
    let body: Value = f
        .post_with_key("/api/v1/usage", &f.globex_key, &usage("globex", 10))
        .await
        .json()
        .await
        .unwrap();
    let id = body["transaction_id"].as_str().unwrap();
    let before = books(&f.app).await;
    let response = f
        .post_with_key(
            &format!("/api/v1/usage/{id}/refund"),
            &f.acme_key,
            &json!({}),
        )
        .await;
    assert_eq!(refusal(response).await, (404, "not_found".into()));
    assert_eq!(books(&f.app).await, before);
}
