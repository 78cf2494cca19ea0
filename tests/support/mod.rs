//! Test support shared by the integration test binaries: fresh databases on both backends,
//! and a running app on a random port.
#![allow(dead_code)]

pub mod buying;

use app::domain::{Credits, EntryType, GrantKind};
use std::sync::Arc;
use tally::clock::{Clock, ManualClock};
use tally::config::Config;
use tally::db::{Store, StoreOptions};
use tally::ledger::{EntryMeta, NewGrant};

/// The server PostgreSQL tests create their databases on.
fn postgres_admin_url() -> String {
    std::env::var("TALLY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database for one test: a SQLite file in a temporary folder, or a PostgreSQL database
/// created for the test and dropped afterwards.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A fresh, migrated SQLite database.
    pub async fn sqlite() -> TestDb {
        Self::sqlite_with(&StoreOptions::default()).await
    }

    /// Like [`TestDb::sqlite`], with the pool's options given.
    pub async fn sqlite_with(options: &StoreOptions) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}/tally.db", dir.path().display());
        let store = Store::connect(&url, options).await.expect("open SQLite");
        store.migrate().await.expect("migrate SQLite");
        TestDb {
            store,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A fresh, migrated PostgreSQL database, or `None` when PostgreSQL is not reachable
    /// outside CI. Under `CI=true` an unreachable server fails the test: it never skips.
    pub async fn postgres() -> Option<TestDb> {
        let db = Self::postgres_unmigrated().await?;
        db.store.migrate().await.expect("migrate PostgreSQL");
        Some(db)
    }

    /// Like [`TestDb::postgres`], without running the migrations.
    pub async fn postgres_unmigrated() -> Option<TestDb> {
        let admin_url = postgres_admin_url();
        let admin = match Store::connect(
            &admin_url,
            &StoreOptions {
                max_connections: 1,
                ..StoreOptions::default()
            },
        )
        .await
        {
            Ok(admin) => admin,
            Err(err) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL at {admin_url} is required when CI=true: {err}");
                }
                eprintln!("skipping: PostgreSQL at {admin_url} is not reachable ({err})");
                return None;
            }
        };
        let name = format!(
            "tally_test_{}",
            tally::db::new_id("db").trim_start_matches("db_")
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .expect("create test database");
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        let store = Store::connect(
            &url,
            &StoreOptions {
                max_connections: 20,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("open PostgreSQL");
        Some(TestDb {
            store,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// Closes the pool and drops a PostgreSQL database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Cleanup::Postgres { admin_url, name } = self.cleanup {
            if let Ok(admin) = Store::connect(
                &admin_url,
                &StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                },
            )
            .await
            {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await;
                admin.close().await;
            }
        }
    }
}

/// A running app on a random port over a fresh SQLite database, with a clock tests control.
pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub payments: tally::payments::Payments,
    _db: TestDb,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with the configuration changed first.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(TestDb::sqlite().await, configure).await
    }

    /// Like [`TestApp::spawn_with`], over the database given.
    pub async fn spawn_on(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::from_lookup(|_| None).expect("default configuration");
        config.database_url = db.url.clone();
        config.site_addr = "127.0.0.1:0".parse().unwrap();
        // Test-mode events arrive quickly unless a test asks otherwise.
        config.emulator_event_delay = std::time::Duration::from_millis(20);
        configure(&mut config);
        let clock = ManualClock::new(chrono::Utc::now().timestamp_millis());
        let app = tally::startup::Application::build(
            config,
            db.store.clone(),
            clock.clone() as Arc<dyn Clock>,
        )
        .await
        .expect("build the app");
        let base = format!("http://{}", app.addr());
        let payments = app.payments();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            store: db.store.clone(),
            clock,
            payments,
            _db: db,
        }
    }

    /// The workspace's newest purchases (ten at most), read as the Billing page reads them.
    pub async fn purchases(
        &self,
        workspace: &app::domain::WorkspaceId,
    ) -> Vec<tally::payments::PurchaseRecord> {
        let mut reads = self.store.reads().await.unwrap();
        reads.purchases(workspace, 10).await.unwrap()
    }

    /// The workspace's subscription, read as the Billing page reads it.
    pub async fn subscription(
        &self,
        workspace: &app::domain::WorkspaceId,
    ) -> Option<tally::payments::subscriptions::SubscriptionRecord> {
        let mut reads = self.store.reads().await.unwrap();
        reads.subscription_of(workspace).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A client that keeps cookies and does not follow redirects, so tests see them.
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            // Test clients speak plain HTTP: loading the system's TLS roots for each of them
            // would only cost time.
            .tls_built_in_root_certs(false)
            // A stuck request fails its test instead of hanging the run.
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// `POST path` with a JSON body from `client`.
    pub async fn post_json(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        client.post(self.url(path)).json(body).send().await.unwrap()
    }

    /// `POST path` with a form (a server function's arguments) from `client`.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// `GET path` from `client`, read as JSON.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> serde_json::Value {
        let response = client.get(self.url(path)).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Waits until every event the test-mode emulator has sent so far was received and
    /// recorded by Tally's webhook: after it, nothing more is on its way.
    pub async fn wait_for_stripe_events(&self) {
        let pool = self.store.pool().clone();
        wait_until("every test-mode event to be applied", || {
            let pool = pool.clone();
            async move {
                let (left,): (i64,) = sqlx::query_as(
                    r#"
                    SELECT COUNT(*) FROM stripe_emulator_objects
                    WHERE kind = 'event' AND id NOT IN (SELECT id FROM stripe_events)
                    "#,
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                left == 0
            }
        })
        .await;
    }

    /// A client that behaves like a browser on the site's own pages: it keeps cookies, does
    /// not follow redirects, and sends the site's `Origin` with every request.
    pub fn browser(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::ORIGIN,
            self.base.parse().expect("the base URL is a header value"),
        );
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false)
            .default_headers(headers)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// Signs in and returns the (browser) client holding the session cookie.
    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Client {
        let client = self.browser();
        let response = client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "sign-in answers with a redirect");
        assert_eq!(
            response.headers()["location"],
            "/billing",
            "{email} should be signed in"
        );
        client
    }
}

/// Polls `check` every 20 ms until it holds, for at most 15 seconds; `what` names it in the
/// failure. Tests wait for what they need this way, never for a fixed time.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 15 s and {what} never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A grant of `n` credits of `kind`: a purchase for purchased credits, a grant otherwise.
pub fn grant(kind: GrantKind, n: i64, expires_at: Option<i64>) -> NewGrant {
    NewGrant {
        kind,
        credits: Credits::new(n).unwrap(),
        expires_at,
        entry_type: if kind == GrantKind::Purchased {
            EntryType::Purchase
        } else {
            EntryType::Grant
        },
        source: "test".into(),
        source_ref: None,
        note: None,
        meta: EntryMeta {
            actor: "operator".into(),
            description: format!("{n} {kind} credits"),
            ..EntryMeta::default()
        },
    }
}

/// The body of a GET of `url` as text, whatever its status (the caller checks what it needs).
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
