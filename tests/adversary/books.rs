//! Everything an attack could move, read in one go so a test can say "nothing moved".

use crate::fixture::{Fixture, PASSWORD};
use crate::support::TestApp;

/// The state of every workspace's money: lots, journal, holds, purchases, subscriptions and
/// the emulator's Stripe objects.
#[derive(Debug, PartialEq, Eq)]
pub struct Books {
    lots: Vec<(String, i64, i64)>,
    entries: Vec<(String, i64)>,
    reservations: Vec<(String, String)>,
    purchases: Vec<(String, String)>,
    subscriptions: i64,
    emulator_objects: i64,
}

/// Reads the books.
pub async fn books(app: &TestApp) -> Books {
    let pool = app.store.pool();
    let count = |table: &'static str| async move {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        n
    };
    Books {
        lots: sqlx::query_as("SELECT id, remaining, held FROM credit_lots ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap(),
        entries: sqlx::query_as("SELECT id, amount FROM ledger_entries ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap(),
        reservations: sqlx::query_as("SELECT id, status FROM reservations ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap(),
        purchases: sqlx::query_as("SELECT id, status FROM purchases ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap(),
        subscriptions: count("subscriptions").await,
        emulator_objects: count("stripe_emulator_objects").await,
    }
}

/// The fixture, signed in as each of Acme's people, in the order owner, admin, billing admin,
/// member, guest.
pub async fn everyone(f: &Fixture) -> Vec<(&'static str, reqwest::Client)> {
    let mut people = Vec::new();
    for email in [
        "owner@acme.test",
        "admin@acme.test",
        "billing@acme.test",
        "member@acme.test",
        "guest@acme.test",
    ] {
        people.push((email, f.app.sign_in(email, PASSWORD).await));
    }
    people
}

/// The JSON error code of a refusal, checking the API's error shape.
pub async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("refusals are JSON");
    let code = body["error"]["code"]
        .as_str()
        .or(body["error"]["type"].as_str())
        .unwrap_or_else(|| panic!("no error code in {body}"))
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, code)
}
