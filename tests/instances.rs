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
    start_instance_with(database_url, &[]).await
}

async fn start_instance_with(database_url: &str, env: &[(&str, &str)]) -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("serve")
        .envs(env.iter().copied())
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
        .reads()
        .await
        .unwrap()
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
    // Spawned before any is awaited, so the runs overlap (an `output()` future would not
    // start its process until polled, one after another).
    let runs: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_tally"))
                .arg("migrate")
                .env("DATABASE_URL", &db.url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let output = run.wait_with_output().await.unwrap();
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

/// Fifty spends across two instances on one PostgreSQL database cross Auto-reload's
/// threshold: exactly one reload is charged (through the test-mode emulator, by whichever
/// instance's job claims it) and credited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spends_through_two_instances_trigger_exactly_one_reload() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let now = chrono::Utc::now().timestamp_millis();
    let ws = db.store.create_workspace("Reloading", now).await.unwrap();
    db.store
        .grant(&ws, &support::grant(GrantKind::Purchased, 5_000, None), now)
        .await
        .unwrap();
    for pack in tally::demo::demo_packs(now) {
        db.store.upsert_pack(&pack, now).await.unwrap();
    }
    let hash = tally::accounts::password::hash("correct horse battery".into())
        .await
        .unwrap();
    let owner = db
        .store
        .upsert_user(
            &tally::accounts::Email::parse("owner@reload.test").unwrap(),
            Some(&hash),
            now,
        )
        .await
        .unwrap();
    db.store
        .set_membership(&ws, &owner, app::domain::Role::Owner, now)
        .await
        .unwrap();
    let key = db.store.create_api_key(&ws, "load", now).await.unwrap();
    let (_a, base_a) = start_instance(&db.url).await;
    let (_b, base_b) = start_instance(&db.url).await;

    // The owner saves a card by buying the Starter pack (5,000 credits) on instance A.
    // A browser on instance A's pages: it sends that site's Origin.
    let mut site = reqwest::header::HeaderMap::new();
    site.insert(reqwest::header::ORIGIN, base_a.parse().unwrap());
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(site)
        .build()
        .unwrap();
    let signed_in = browser
        .post(format!("{base_a}/login"))
        .form(&[
            ("email", "owner@reload.test"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let started: Value = browser
        .post(format!("{base_a}/api/start_checkout"))
        .form(&[("pack_id", "pack_starter")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paid = browser
        .post(started["url"].as_str().unwrap())
        .form(&[
            ("card_number", "4242424242424242"),
            ("expiry", "12/40"),
            ("cvc", "123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    let purchase = started["purchase_id"].as_str().unwrap().to_owned();
    let mut credited = false;
    for _ in 0..100 {
        let p = db.store.purchase_by_id(&purchase).await.unwrap().unwrap();
        if p.status == app::domain::PurchaseStatus::Succeeded {
            credited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(credited, "the card-saving purchase was credited");
    let saved = browser
        .post(format!("{base_a}/api/save_auto_reload"))
        .form(&[
            ("enabled", "on"),
            ("threshold", "5000"),
            ("target", "20000"),
            ("monthly_cap", "100"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());

    // 10,000 credits; 50 spends of 150 alternate between the instances.
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let base = if i % 2 == 0 { &base_a } else { &base_b };
            let (client, key, url) = (client.clone(), key.clone(), format!("{base}/api/v1/usage"));
            tokio::spawn(async move {
                let body = json!({"idempotency_key": format!("dip-{i}"), "action": "load.test", "credits": 150});
                client.post(url).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200, "every spend is affordable");
    }

    let count = |status: &'static str| {
        let store = db.store.clone();
        let ws = ws.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM auto_reload_attempts WHERE workspace_id = $1 AND status = $2",
            )
            .bind(ws.as_str())
            .bind(status)
            .fetch_one(store.pool())
            .await
            .unwrap();
            n
        }
    };
    for _ in 0..200 {
        if count("succeeded").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count("succeeded").await,
        1,
        "one reload charged and credited"
    );
    let (attempts,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM auto_reload_attempts WHERE workspace_id = $1")
            .bind(ws.as_str())
            .fetch_one(db.store.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 1, "one dip, one reload");
    let (reload_entries,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM ledger_entries WHERE workspace_id = $1 AND entry_type = 'auto_reload'",
    )
    .bind(ws.as_str())
    .fetch_one(db.store.pool())
    .await
    .unwrap();
    assert_eq!(reload_entries, 1);
    let summary = db
        .store
        .summary(&ws, chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert!(summary.available >= 2_500 + 15_000, "{summary:?}");
    assert!(db.store.audit(&ws).await.unwrap().balanced());
    db.finish().await;
}

/// Runs `tally` with `args` against `database_url`; returns (success, stdout, stderr).
async fn tally(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

#[tokio::test]
async fn operators_set_plans_and_grant_credits_from_the_command_line() {
    let db = TestDb::sqlite().await;
    let (ok, workspace, err) = tally(&db.url, &["workspace", "create", "--name", "Initech"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = tally(
        &db.url,
        &[
            "plan",
            "set",
            "--id",
            "pro",
            "--name",
            "Pro",
            "--credits-per-seat",
            "1,500",
            "--rollover",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, plans, _) = tally(&db.url, &["plan", "list"]).await;
    assert!(ok);
    assert!(
        plans.contains("pro\tPro\t1,500 credits per seat a month\trolls over"),
        "{plans}"
    );

    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (ok, entry, err) = tally(
        &db.url,
        &[
            "grant",
            "--workspace",
            &workspace,
            "--kind",
            "promotional",
            "--credits",
            "500",
            "--expires",
            &expires,
            "--note",
            "Launch week",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(err.contains("the balance is now 500"), "{err}");
    let ws = app::domain::WorkspaceId::parse(&workspace).unwrap();
    let history = db
        .store
        .reads()
        .await
        .unwrap()
        .history(
            &ws,
            &tally::ledger::HistoryQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(history[0].id, entry);
    assert_eq!(history[0].description, "Launch week");

    for bad in [
        vec![
            "grant",
            "--workspace",
            &workspace,
            "--kind",
            "purchased",
            "--credits",
            "5",
        ],
        vec![
            "grant",
            "--workspace",
            &workspace,
            "--kind",
            "free",
            "--credits",
            "5",
            "--expires",
            "2001-01-01T00:00:00Z",
        ],
        vec![
            "plan",
            "set",
            "--id",
            "Bad Id",
            "--name",
            "X",
            "--credits-per-seat",
            "5",
        ],
    ] {
        let (ok, _, err) = tally(&db.url, &bad).await;
        assert!(!ok, "{bad:?} should fail");
        assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    }
    db.finish().await;
}

#[tokio::test]
async fn the_command_line_refuses_an_endpoint_inside_the_network_and_says_why() {
    let db = TestDb::sqlite().await;
    let (ok, workspace, err) = tally(&db.url, &["workspace", "create", "--name", "Hooli"]).await;
    assert!(ok, "{err}");
    for (url, reason) in [
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.1/hook", "private network"),
        ("http://hooks.example.com/x", "https://"),
    ] {
        let (ok, out, err) = tally(
            &db.url,
            &[
                "workspace",
                "webhook",
                "--workspace",
                &workspace,
                "--url",
                url,
            ],
        )
        .await;
        assert!(!ok, "{url} was accepted");
        assert!(out.is_empty(), "no secret printed for {url}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(reason), "{url}: {err}");
    }
    // A public address (a literal one: no DNS here) is set, and its secret printed once.
    let (ok, secret, err) = tally(
        &db.url,
        &[
            "workspace",
            "webhook",
            "--workspace",
            &workspace,
            "--url",
            "https://93.184.215.14/tally",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(secret.starts_with("tallywh_"), "{secret}");
    db.finish().await;
}

#[tokio::test]
async fn bad_arguments_are_refused_in_one_line() {
    let db = TestDb::sqlite().await;
    for args in [
        &["workspace", "create"][..],
        &["nonsense"][..],
        &["grant", "--kind", "free"][..],
        &[
            "grant",
            "--workspace",
            "acme",
            "--kind",
            "free",
            "--credits",
            "5",
        ][..],
        &[
            "user",
            "add",
            "--workspace",
            "ws_abcdefgh",
            "--email",
            "a@b.test",
            "--role",
            "boss",
        ][..],
    ] {
        let (ok, out, err) = tally(&db.url, args).await;
        assert!(!ok, "{args:?}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    // A value is parsed into the domain's type as it is read, and the line says what fits.
    let (_, _, err) = tally(
        &db.url,
        &[
            "grant",
            "--workspace",
            "acme",
            "--kind",
            "free",
            "--credits",
            "5",
        ],
    )
    .await;
    assert!(
        err.contains("--workspace") && err.contains("not a workspace id"),
        "{err}"
    );
    let (_, _, err) = tally(
        &db.url,
        &[
            "pack",
            "set",
            "--id",
            "p",
            "--name",
            "P",
            "--credits",
            "0",
            "--price",
            "1",
        ],
    )
    .await;
    assert!(
        err.contains("--credits") && err.contains("above zero"),
        "{err}"
    );
    db.finish().await;
}

#[tokio::test]
async fn the_command_line_adds_people_and_keys_runs_the_demo_twice_and_audits_the_books() {
    let db = TestDb::sqlite().await;
    // The demo twice: the second run refreshes, it does not duplicate.
    let (ok, out, err) = tally(&db.url, &["demo"]).await;
    assert!(ok, "{err}");
    assert!(
        out.is_empty(),
        "the demo speaks to people, on stderr: {out}"
    );
    assert!(
        err.contains("API key for Acme AI (shown once): tly_"),
        "{err}"
    );
    let workspaces = db.store.workspace_ids().await.unwrap().len();
    let (ok, _, err) = tally(&db.url, &["demo"]).await;
    assert!(ok, "{err}");
    assert_eq!(db.store.workspace_ids().await.unwrap().len(), workspaces);

    // A key is printed alone on stdout, once, and opens its workspace's API.
    let (ok, workspace, err) = tally(&db.url, &["workspace", "create", "--name", "Umbrella"]).await;
    assert!(ok, "{err}");
    let id = app::domain::WorkspaceId::parse(&workspace).unwrap();
    let (ok, key, err) = tally(&db.url, &["api-key", "create", "--workspace", &workspace]).await;
    assert!(ok, "{err}");
    assert_eq!(key.lines().count(), 1);
    assert!(key.starts_with("tly_"), "{key}");
    assert!(err.contains("shown only once"), "{err}");
    let opened = db.store.api_key_workspace(&key).await.unwrap().unwrap();
    assert_eq!(opened.id, id);

    // A person is added with a role; without --password a generated one is told on stderr.
    let (ok, user, err) = tally(
        &db.url,
        &[
            "user",
            "add",
            "--workspace",
            &workspace,
            "--email",
            "Ada@Umbrella.test",
            "--role",
            "billing_admin",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(err.starts_with("Password for ada@umbrella.test: "), "{err}");
    let memberships = db.store.memberships(&user).await.unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0].workspace.id, id);
    assert_eq!(memberships[0].role, app::domain::Role::BillingAdmin);

    // The audit passes on sound books and fails, naming the workspace, when a lot is tampered
    // with behind the ledger's back.
    let (ok, _, err) = tally(&db.url, &["audit"]).await;
    assert!(ok, "{err}");
    assert!(err.contains("workspaces balance"), "{err}");
    let acme = db.store.workspace_ids().await.unwrap();
    let tampered = acme
        .iter()
        .find(|w| **w != id)
        .expect("a demo workspace")
        .clone();
    sqlx::query("UPDATE credit_lots SET remaining = remaining - 7 WHERE workspace_id = $1 AND remaining - held >= 7")
        .bind(tampered.as_str())
        .execute(db.store.pool())
        .await
        .unwrap();
    let (ok, _, err) = tally(&db.url, &["audit"]).await;
    assert!(!ok, "a drifted workspace fails the audit");
    assert!(err.contains(&format!("DRIFT {tampered}")), "{err}");
    assert!(err.contains("do not balance"), "{err}");

    // The notification endpoint is removed again on request.
    let (ok, _, err) = tally(
        &db.url,
        &[
            "workspace",
            "webhook",
            "--workspace",
            &workspace,
            "--url",
            "https://93.184.215.14/tally",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = tally(
        &db.url,
        &[
            "workspace",
            "webhook",
            "--workspace",
            &workspace,
            "--remove",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.is_empty());
    assert!(db.store.webhook_endpoint(&id).await.unwrap().is_none());
    db.finish().await;
}

/// `tally serve` runs the background jobs by itself: a hold past its expiry is released,
/// lapsed credits expire, and a queued notification reaches its endpoint, with no test
/// calling a job function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serving_instance_runs_the_background_jobs_by_itself() {
    use app::domain::Credits;
    use tally::ledger::{EntryMeta, IdempotencyKey, NewHold};
    let db = TestDb::sqlite().await;
    let store = &db.store;
    let now = chrono::Utc::now().timestamp_millis();
    let ws = store.create_workspace("Jobs", now - 60_000).await.unwrap();
    // An endpoint on this machine that counts what it gets.
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = got.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { axum::http::StatusCode::OK }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    store
        .set_webhook_endpoint(&ws, &hook, now - 60_000)
        .await
        .unwrap();
    // Credits that lapsed a second ago, and a hold that ran out a second ago (both made a
    // minute back, while they were valid).
    store
        .grant(
            &ws,
            &support::grant(GrantKind::Promotional, 300, Some(now - 1_000)),
            now - 60_000,
        )
        .await
        .unwrap();
    store
        .grant(
            &ws,
            &support::grant(GrantKind::Purchased, 100, None),
            now - 60_000,
        )
        .await
        .unwrap();
    let key = IdempotencyKey {
        scope: "reservation",
        key: "stale".into(),
        request_hash: "h".into(),
    };
    let hold = NewHold {
        credits: Credits::new(50).unwrap(),
        expires_at: now - 1_000,
        meta: EntryMeta {
            actor: "worker".into(),
            ..EntryMeta::default()
        },
    };
    let held = store
        .reserve_once(&ws, &key, &hold, now - 60_000)
        .await
        .unwrap()
        .unwrap();
    // Spending what is left queues the Low Balance and depleted alerts for the endpoint.
    let left = store.summary(&ws, now - 60_000).await.unwrap().available;
    store
        .charge(
            &ws,
            Credits::new(left).unwrap(),
            &EntryMeta::default(),
            now - 60_000,
        )
        .await
        .unwrap();

    let (_instance, _) =
        start_instance_with(&db.url, &[("TALLY_OUTBOX_ALLOW_PRIVATE", "true")]).await;
    support::wait_until("the expired hold to be released", || async {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM reservations WHERE id = $1")
            .bind(&held.reservation_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        status == "expired"
    })
    .await;
    support::wait_until("the lapsed credits to expire", || async {
        store
            .reads()
            .await
            .unwrap()
            .history(
                &ws,
                &HistoryQuery {
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .iter()
            .any(|e| e.entry_type == app::domain::EntryType::Expiry)
    })
    .await;
    support::wait_until("the notifications to reach the endpoint", || async {
        got.load(std::sync::atomic::Ordering::SeqCst) >= 1
    })
    .await;
    let summary = store
        .summary(&ws, chrono::Utc::now().timestamp_millis())
        .await
        .unwrap();
    assert_eq!(summary.held, 0);
    assert!(store.audit(&ws).await.unwrap().balanced());
    db.finish().await;
}

#[tokio::test]
async fn a_key_revoked_anywhere_stops_working_on_every_instance_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (ok, workspace, _) = tally(&db.url, &["workspace", "create", "--name", "Keys"]).await;
    assert!(ok);
    let (ok, secret, said) = tally(
        &db.url,
        &[
            "api-key",
            "create",
            "--workspace",
            &workspace,
            "--name",
            "backend",
        ],
    )
    .await;
    assert!(ok, "{said}");
    let id = said
        .split("Its id is ")
        .nth(1)
        .unwrap()
        .trim_end_matches('.')
        .to_owned();
    let (_a, a) = start_instance(&db.url).await;
    let (_b, b) = start_instance(&db.url).await;
    let client = reqwest::Client::new();
    let status = |base: String| {
        let (client, secret) = (client.clone(), secret.clone());
        async move {
            client
                .get(format!("{base}/api/billing/credits"))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Both instances have just looked the key up, and would trust it for seconds.
    assert_eq!(status(a.clone()).await, 200);
    assert_eq!(status(b.clone()).await, 200);
    assert_eq!(status(b.clone()).await, 200);

    // Revoked from the command line, a third process.
    let (ok, _, said) = tally(
        &db.url,
        &["api-key", "revoke", "--workspace", &workspace, "--id", &id],
    )
    .await;
    assert!(ok, "{said}");
    let revoked = std::time::Instant::now();
    for base in [a, b] {
        loop {
            if status(base.clone()).await == 401 {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_millis(1_000),
                "{base} still takes the revoked key"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (_, list, _) = tally(&db.url, &["api-key", "list", "--workspace", &workspace]).await;
    let row = list.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        !row.ends_with("\t-"),
        "the list shows the revocation: {row}"
    );
    db.finish().await;
}

#[tokio::test]
async fn the_command_line_lists_renames_and_removes_as_the_operator_api_does() {
    let db = TestDb::sqlite().await;
    let (ok, ws, said) = tally(&db.url, &["workspace", "create", "--name", "Initech"]).await;
    assert!(ok, "{said}");
    let (ok, _, said) = tally(
        &db.url,
        &[
            "workspace",
            "rename",
            "--workspace",
            &ws,
            "--name",
            "Initech Labs",
        ],
    )
    .await;
    assert!(ok, "{said}");
    let (_, list, _) = tally(&db.url, &["workspace", "list"]).await;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&ws) && l.contains("Initech Labs")),
        "{list}"
    );
    let (ok, _, said) = tally(
        &db.url,
        &[
            "user",
            "add",
            "--workspace",
            &ws,
            "--email",
            "ada@initech.test",
            "--role",
            "member",
            "--password",
            "a long password",
        ],
    )
    .await;
    assert!(ok, "{said}");
    let (_, people, _) = tally(&db.url, &["user", "list", "--workspace", &ws]).await;
    assert!(people.contains("ada@initech.test\tmember"), "{people}");
    let (ok, _, said) = tally(
        &db.url,
        &[
            "user",
            "remove",
            "--workspace",
            &ws,
            "--email",
            "ada@initech.test",
        ],
    )
    .await;
    assert!(ok, "{said}");
    let (_, people, _) = tally(&db.url, &["user", "list", "--workspace", &ws]).await;
    assert!(!people.contains("ada@initech.test"), "{people}");
    let (ok, _, said) = tally(
        &db.url,
        &[
            "user",
            "remove",
            "--workspace",
            &ws,
            "--email",
            "ada@initech.test",
        ],
    )
    .await;
    assert!(!ok && said.contains("is not a member"), "{said}");
    db.finish().await;
}

#[tokio::test]
async fn provisioning_through_one_instance_holds_on_the_other() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let token = "operator-token-for-two-instances-0123456789";
    let env = [("TALLY_OPERATOR_TOKEN", token)];
    let (_a, a) = start_instance_with(&db.url, &env).await;
    let (_b, b) = start_instance_with(&db.url, &env).await;
    let operator = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String, body: Option<serde_json::Value>| {
        let mut request = operator.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            (
                status,
                answer.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, ws) = call(
        reqwest::Method::POST,
        format!("{a}/api/operator/workspaces"),
        Some(serde_json::json!({"name": "Two Instances"})),
    )
    .await;
    assert_eq!(status, 201, "{ws}");
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (status, member) = call(
        reqwest::Method::POST,
        format!("{b}/api/operator/workspaces/{ws}/members"),
        Some(serde_json::json!({"email": "ada@two.test", "external_id": "u1", "role": "owner"})),
    )
    .await;
    assert_eq!(status, 200, "{member}");
    let (_, listed) = call(
        reqwest::Method::GET,
        format!("{a}/api/operator/workspaces/{ws}/members"),
        None,
    )
    .await;
    assert_eq!(listed["data"][0]["email"], "ada@two.test");

    // A link made by one instance signs in on the other; the session works on both.
    let (_, link) = call(
        reqwest::Method::POST,
        format!("{b}/api/operator/portal_sessions"),
        Some(serde_json::json!({"workspace_id": ws, "user": {"email": "ada@two.test", "external_id": "u1"}, "role": "owner"})),
    )
    .await;
    let path = link["url"]
        .as_str()
        .unwrap()
        .split("/portal/")
        .nth(1)
        .unwrap()
        .to_owned();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = browser
        .get(format!("{a}/portal/{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 303);
    let again = browser
        .get(format!("{b}/portal/{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410, "once, on any instance");
    for base in [&a, &b] {
        let page = browser.get(format!("{base}/billing")).send().await.unwrap();
        assert_eq!(page.status(), 200, "{base}");
    }

    // Removed through one instance, they are out on the other at once.
    let user = member["user_id"].as_str().unwrap();
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("{a}/api/operator/workspaces/{ws}/members/{user}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let out = browser.get(format!("{b}/billing")).send().await.unwrap();
    assert_eq!(out.status(), 303);
    db.finish().await;
}

#[tokio::test]
async fn the_command_line_sets_lists_and_removes_budgets() {
    let db = TestDb::sqlite().await;
    let (ok, workspace, err) = tally(&db.url, &["workspace", "create", "--name", "Hooli"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = tally(
        &db.url,
        &[
            "user",
            "add",
            "--workspace",
            &workspace,
            "--email",
            "gavin@hooli.test",
            "--role",
            "member",
            "--password",
            "long enough password",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let set = |limit: &'static str| {
        let (url, workspace) = (db.url.clone(), workspace.clone());
        async move {
            tally(
                &url,
                &[
                    "budget",
                    "set",
                    "--workspace",
                    &workspace,
                    "--scope",
                    "member",
                    "--target",
                    "Gavin@Hooli.test",
                    "--period",
                    "week",
                    "--limit",
                    limit,
                ],
            )
            .await
        }
    };
    let (ok, id, err) = set("400").await;
    assert!(ok, "{err}");
    assert!(id.starts_with("bud_"), "{id}");
    assert!(
        err.contains("Hard budget of 400 credits per week on gavin@hooli.test"),
        "{err}"
    );
    // Set again: the same budget, a new limit.
    let (ok, again, err) = set("900").await;
    assert!(ok, "{err}");
    assert_eq!(again, id);
    let (ok, list, err) = tally(&db.url, &["budget", "list", "--workspace", &workspace]).await;
    assert!(ok, "{err}");
    let row = list.lines().nth(1).expect("one budget listed");
    assert!(
        row.starts_with(&format!(
            "{id}\tmember\tgavin@hooli.test\t-\tweek\t900\thard\t0\t0\t"
        )),
        "{row}"
    );
    assert_eq!(list.lines().count(), 2);
    // Nobody of the workspace, and a scope that does not exist, are refused in one line.
    let (ok, _, err) = tally(
        &db.url,
        &[
            "budget",
            "set",
            "--workspace",
            &workspace,
            "--scope",
            "member",
            "--target",
            "nobody@hooli.test",
            "--period",
            "day",
            "--limit",
            "5",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("no member of this workspace is nobody@hooli.test"),
        "{err}"
    );
    let (ok, _, err) = tally(
        &db.url,
        &[
            "budget",
            "set",
            "--workspace",
            &workspace,
            "--scope",
            "team",
            "--target",
            "x",
            "--period",
            "day",
            "--limit",
            "5",
        ],
    )
    .await;
    assert!(
        !ok && err.contains("must be member, api_key or project"),
        "{err}"
    );
    let remove = |id: String| {
        let (url, workspace) = (db.url.clone(), workspace.clone());
        async move {
            tally(
                &url,
                &["budget", "remove", "--workspace", &workspace, "--id", &id],
            )
            .await
        }
    };
    let (ok, _, err) = remove(id.clone()).await;
    assert!(ok, "{err}");
    let (ok, _, err) = remove(id.clone()).await;
    assert!(!ok && err.contains(&format!("has no budget {id}")), "{err}");
    db.finish().await;
}

#[tokio::test]
async fn the_command_line_carves_changes_and_removes_pools() {
    let db = TestDb::sqlite().await;
    let (ok, workspace, err) =
        tally(&db.url, &["workspace", "create", "--name", "Pied Piper"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = tally(
        &db.url,
        &[
            "grant",
            "--workspace",
            &workspace,
            "--kind",
            "free",
            "--credits",
            "1000",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let set = |credits: &'static str| {
        let (url, workspace) = (db.url.clone(), workspace.clone());
        async move {
            tally(
                &url,
                &[
                    "pool",
                    "set",
                    "--workspace",
                    &workspace,
                    "--scope",
                    "project",
                    "--target",
                    "compression",
                    "--credits",
                    credits,
                ],
            )
            .await
        }
    };
    let (ok, id, err) = set("600").await;
    assert!(ok, "{err}");
    assert!(id.starts_with("pool_"), "{id}");
    // More than the balance does not fit; setting again changes the same pool.
    let (ok, _, err) = set("1001").await;
    assert!(!ok && err.contains("does not fit"), "{err}");
    let (ok, again, err) = set("250").await;
    assert!(ok, "{err}");
    assert_eq!(again, id);
    let (ok, list, err) = tally(&db.url, &["pool", "list", "--workspace", &workspace]).await;
    assert!(ok, "{err}");
    assert_eq!(
        list.lines().nth(1),
        Some(format!("{id}\tproject\tcompression\t250\tno").as_str())
    );
    let (ok, _, err) = tally(
        &db.url,
        &["pool", "remove", "--workspace", &workspace, "--id", &id],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, list, _) = tally(&db.url, &["pool", "list", "--workspace", &workspace]).await;
    assert!(ok);
    assert_eq!(list.lines().count(), 1, "only the header: {list}");
    db.finish().await;
}

#[tokio::test]
async fn the_command_line_puts_a_member_in_a_project_and_shows_them_only_its_pool() {
    let db = TestDb::sqlite().await;
    let (ok, workspace, err) = tally(&db.url, &["workspace", "create", "--name", "Hooli"]).await;
    assert!(ok, "{err}");
    let (ok, user, err) = tally(
        &db.url,
        &[
            "user",
            "add",
            "--workspace",
            &workspace,
            "--email",
            "gavin@hooli.test",
            "--role",
            "member",
            "--password",
            "long enough password",
            "--project",
            "nucleus",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, list, err) = tally(&db.url, &["user", "list", "--workspace", &workspace]).await;
    assert!(ok, "{err}");
    assert!(
        list.lines()
            .any(|l| l == format!("{user}\tgavin@hooli.test\tmember\t-\tnucleus")),
        "{list}"
    );
    let (ok, _, err) = tally(
        &db.url,
        &[
            "workspace",
            "settings",
            "--workspace",
            &workspace,
            "--member-view",
            "pool",
        ],
    )
    .await;
    assert!(ok && err.contains("see pool"), "{err}");
    let (ok, _, err) = tally(
        &db.url,
        &[
            "workspace",
            "settings",
            "--workspace",
            &workspace,
            "--member-view",
            "all",
        ],
    )
    .await;
    assert!(!ok && err.contains("balance or pool"), "{err}");
    // The settings reach what the member is shown: only the project's pool, once it has one.
    let store = db.store.clone();
    let id = app::domain::WorkspaceId::parse(&workspace).unwrap();
    let record = store.workspace(&id).await.unwrap().unwrap();
    assert_eq!(record.member_view, app::domain::MemberView::Pool);
    let seen = |store: tally::db::Store, id: app::domain::WorkspaceId| async move {
        store
            .pool_seen_by(
                &id,
                app::domain::MemberView::Pool,
                app::domain::Role::Member,
                Some("nucleus"),
            )
            .await
            .unwrap()
    };
    assert!(
        seen(store.clone(), id.clone()).await.is_none(),
        "no pool yet"
    );
    let (ok, _, err) = tally(
        &db.url,
        &[
            "grant",
            "--workspace",
            &workspace,
            "--kind",
            "free",
            "--credits",
            "500",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = tally(
        &db.url,
        &[
            "pool",
            "set",
            "--workspace",
            &workspace,
            "--scope",
            "project",
            "--target",
            "nucleus",
            "--credits",
            "200",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        seen(store.clone(), id.clone()).await.map(|p| p.remaining),
        Some(200)
    );
    // Clearing the project puts them back on the whole balance.
    let (ok, _, err) = tally(
        &db.url,
        &[
            "user",
            "add",
            "--workspace",
            &workspace,
            "--email",
            "gavin@hooli.test",
            "--role",
            "member",
            "--project",
            "",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let members = store.members(&id).await.unwrap();
    assert_eq!(members[0].project, None);
    db.finish().await;
}
