//! Several `tally serve` processes on one database, as production runs them behind a load
//! balancer: the ledger stays exact when they race each other.

mod support;

use app::domain::GrantKind;
use serde_json::{json, Value};
use std::time::Duration;
use support::TestDb;
use tally::ledger::HistoryQuery;
use tokio::process::{Child, Command};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tally serve` on a free port and waits until it answers `/readyz`.
async fn start_instance(database_url: &str) -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start tally serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                return (child, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tally serve on port {port} did not become ready");
}

async fn two_instances_share_one_ledger(db: &TestDb) {
    let now = chrono::Utc::now().timestamp_millis();
    let ws = db.store.create_workspace("Shared", now).await.unwrap();
    let grant = support::grant(GrantKind::Purchased, 2_000, None);
    db.store.grant(&ws, &grant, now).await.unwrap();
    let key = db.store.create_api_key(&ws, "load", now).await.unwrap();

    let (_a, base_a) = start_instance(&db.url).await;
    let (_b, base_b) = start_instance(&db.url).await;

    // 90 distinct charges of 30 credits, alternating instances, all at once: 2,000 credits
    // pay for exactly 66 of them. Each key is also sent to the other instance at the same
    // time, so every charge races its own replay.
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..90 {
        for base in [&base_a, &base_b] {
            let (client, key, url) = (client.clone(), key.clone(), format!("{base}/api/v1/usage"));
            let body = json!({"idempotency_key": format!("charge-{i}"), "action": "load.test", "credits": 30});
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (
                    i,
                    response.status().as_u16(),
                    response.text().await.unwrap(),
                )
            }));
        }
    }
    let mut answers: std::collections::HashMap<i32, Vec<(u16, String)>> = Default::default();
    for task in tasks {
        let (i, status, body) = task.await.unwrap();
        assert!(
            status == 200 || status == 402,
            "unexpected status {status}: {body}"
        );
        answers.entry(i).or_default().push((status, body));
    }
    let mut charged = 0;
    for (i, pair) in &answers {
        assert_eq!(
            pair[0], pair[1],
            "both instances give the first answer for key {i}"
        );
        if pair[0].0 == 200 {
            charged += 1;
        }
    }
    assert_eq!(
        charged, 66,
        "exactly the affordable number of charges succeed"
    );

    let credits: Value = client
        .get(format!("{base_a}/api/billing/credits"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(credits["balance"], 2_000 - 66 * 30);
    let audit = db.store.audit(&ws).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    assert_eq!(
        audit.entries,
        1 + 66,
        "one journal entry per successful charge, none twice"
    );
    let history = db
        .store
        .history(
            &ws,
            &HistoryQuery {
                limit: 1_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        history.iter().all(|e| e.balance_after >= 0),
        "never an overdraft"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_database_never_overdraw() {
    if let Some(db) = TestDb::postgres().await {
        two_instances_share_one_ledger(&db).await;
        db.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_sqlite_file_never_overdraw() {
    let db = TestDb::sqlite().await;
    two_instances_share_one_ledger(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_safe_from_several_instances_at_once() {
    let Some(db) = TestDb::postgres_unmigrated().await else {
        return;
    };
    let runs: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_tally"))
                .arg("migrate")
                .env("DATABASE_URL", &db.url)
                .kill_on_drop(true)
                .output()
        })
        .collect();
    for run in runs {
        let output = run.await.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count() as i64;
    assert_eq!(applied, files, "each migration applied once");
    db.finish().await;
}

#[tokio::test]
async fn an_unreachable_database_stops_start_up_with_one_clear_line() {
    let port = free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("postgres://tally:secret@127.0.0.1:{port}/tally"),
        )
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: cannot open the database"),
        "{stderr}"
    );
    assert!(lines[0].contains("refused"), "{stderr}");
    assert!(
        !lines[0].contains("secret"),
        "the password is never printed: {stderr}"
    );
}
