//! The pool's connections: checked when they may have gone stale, not on every checkout.

use std::sync::Arc;
use std::time::Duration;
use tally::db::{Store, StoreOptions};

/// Ends every server process of the test database but the admin's own, as a PostgreSQL
/// restart or a proxy's idle cut would.
async fn cut_connections_to(url: &str) {
    let (base, name) = url.rsplit_once('/').expect("database url");
    let admin = Store::connect(
        &format!("{base}/postgres"),
        &StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("admin connection");
    sqlx::query(
        r#"
        SELECT pg_terminate_backend(pid)
        FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid()
        "#,
    )
    .bind(name)
    .execute(admin.pool())
    .await
    .expect("terminate connections");
    admin.close().await;
}

async fn pool_of_one(url: &str, idle_check_after: Duration) -> Store {
    let store = Store::connect(
        url,
        &StoreOptions {
            max_connections: 1,
            idle_check_after,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("open PostgreSQL");
    // The one connection is open and back in the pool, idle.
    sqlx::query("SELECT 1")
        .execute(store.pool())
        .await
        .expect("first query");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_cut_by_the_server_is_replaced_before_a_query_uses_it() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        return;
    };

    // Idle past the check: the ping finds the cut and the pool opens a new connection.
    let checked = pool_of_one(&db.url, Duration::ZERO).await;
    cut_connections_to(&db.url).await;
    let answer: (i32,) = sqlx::query_as("SELECT 7")
        .fetch_one(checked.pool())
        .await
        .expect("the query runs on a fresh connection");
    assert_eq!(answer.0, 7);
    checked.close().await;

    // Not idle long enough to be checked: the first query meets the cut. This is why idle
    // connections are checked at all.
    let unchecked = pool_of_one(&db.url, Duration::from_secs(3_600)).await;
    cut_connections_to(&db.url).await;
    let failed = sqlx::query("SELECT 7").execute(unchecked.pool()).await;
    assert!(failed.is_err(), "an unchecked cut connection should fail");
    unchecked.close().await;

    db.finish().await;
}

/// On SQLite, runs of reads (pages, API reads) take their connections from a smaller pool of
/// their own: readers holding all of them leave the writers' pool untouched, and one read more
/// waits for a reader to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_hold_the_writers_connections_on_sqlite() {
    let db = crate::support::TestDb::sqlite_with(&StoreOptions {
        max_connections: 64,
        acquire_timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    })
    .await;
    let readers = db.store.read_connections();
    assert!((2..64).contains(&readers), "{readers} read connections");
    let mut held = Vec::new();
    for _ in 0..readers {
        held.push(db.store.reads().await.expect("a read connection"));
    }
    assert!(
        db.store.reads().await.is_err(),
        "one read more than the readers' pool holds should wait"
    );
    for write in [
        "CREATE TABLE probe (n BIGINT)",
        "INSERT INTO probe (n) VALUES (7)",
    ] {
        sqlx::query(write)
            .execute(db.store.pool())
            .await
            .expect("a writer's connection while every reader's is held");
    }
    drop(held);
    let mut reads = db
        .store
        .reads()
        .await
        .expect("a read connection once given back");
    let written: (i64,) = sqlx::query_as("SELECT n FROM probe")
        .fetch_one(reads.conn())
        .await
        .expect("the readers see the write");
    assert_eq!(written.0, 7);
    drop(reads);
    db.finish().await;
}

/// On SQLite the store's own task copies the log back into the database file: a commit far
/// below the writers' own checkpoint line still reaches the file, with no writer stopping to
/// copy it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commits_reach_the_database_file_without_a_writer_checkpointing() {
    let db = crate::support::TestDb::sqlite().await;
    let file = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://"));
    let size = || std::fs::metadata(&file).expect("the database file").len();
    let before = size();
    let (writers_at,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(db.store.pool())
        .await
        .expect("the writers' checkpoint line");
    assert_eq!(
        writers_at, 10_000,
        "writers leave checkpoints to the store's task"
    );
    sqlx::query("CREATE TABLE filler (body BLOB NOT NULL)")
        .execute(db.store.pool())
        .await
        .expect("create table");
    // About 250 pages of the log: a tenth of what makes the writer checkpoint by itself.
    let mut tx = db.store.pool().begin().await.expect("begin");
    for _ in 0..256 {
        sqlx::query("INSERT INTO filler (body) VALUES (zeroblob(4000))")
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
    crate::support::wait_until("the log was copied back into the database file", || async {
        size() >= before + 256 * 4_000
    })
    .await;
    db.finish().await;
}

/// The gate's batcher keeps a connection only while charges keep coming: once none waits it
/// goes back to the pool, so a pool of one still serves everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_gives_its_connection_back_when_no_charge_waits() {
    use crate::story::{grant, usage};
    use app::domain::{Credits, GrantKind};
    use tally::clock::{Clock, ManualClock};
    use tally::ledger::{ChargeBatcher, IdempotencyKey};
    const T0: i64 = 1_790_000_000_000;
    for db in [
        Some(
            crate::support::TestDb::sqlite_with(&StoreOptions {
                max_connections: 1,
                acquire_timeout: Duration::from_millis(500),
                ..StoreOptions::default()
            })
            .await,
        ),
        crate::support::TestDb::postgres().await,
    ]
    .into_iter()
    .flatten()
    {
        let store = if db.url.starts_with("sqlite") {
            db.store.clone()
        } else {
            Store::connect(
                &db.url,
                &StoreOptions {
                    max_connections: 1,
                    acquire_timeout: Duration::from_millis(500),
                    ..StoreOptions::default()
                },
            )
            .await
            .expect("a pool of one")
        };
        let ws = store.create_workspace("Gate", T0).await.unwrap();
        store
            .grant(&ws, &grant(GrantKind::Purchased, 100, None), T0)
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = ManualClock::new(T0 + 10);
        let batcher = ChargeBatcher::new(store.clone(), clock, crate::SHARDS);
        for round in 0..3 {
            let key = IdempotencyKey {
                scope: "usage",
                key: format!("give-back-{round}"),
                request_hash: "h".into(),
            };
            let outcome = batcher
                .charge(&ws, key, Credits::new(10).unwrap(), usage("draft"))
                .await
                .expect("the charge runs");
            assert!(outcome.is_ok(), "round {round}: {outcome:?}");
            // A write outside the gate needs the pool's one connection: it would wait out the
            // pool's half second and fail if the batcher still held it.
            store
                .grant(&ws, &grant(GrantKind::Purchased, 10, None), T0 + 10)
                .await
                .expect("the pool's connection is free again");
            let available = store.summary(&ws, T0 + 10).await.unwrap().available;
            assert_eq!(available, 100, "round {round}");
        }
        if !db.url.starts_with("sqlite") {
            store.close().await;
        }
        db.finish().await;
    }
}

/// Under a load that never lets the gate's queue empty, its batcher still gives its connection
/// back at least every quarter of a second: a write outside the gate, on a pool of one, waits
/// behind a batch or two, not for as long as the load lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_gives_its_connection_back_under_a_steady_load() {
    use crate::story::{grant, usage};
    use app::domain::{Credits, GrantKind};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tally::clock::{Clock, ManualClock};
    use tally::ledger::{ChargeBatcher, IdempotencyKey};
    const T0: i64 = 1_790_000_000_000;
    // More charges in flight than a batch takes, so that charges always wait between batches.
    const CHARGERS: usize = 160;
    let db = crate::support::TestDb::sqlite_with(&StoreOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
        ..StoreOptions::default()
    })
    .await;
    let store = db.store.clone();
    let ws = store.create_workspace("Steady", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 10_000_000, None), T0)
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(T0 + 10);
    let batcher = ChargeBatcher::new(store.clone(), clock, crate::SHARDS);
    let stop = Arc::new(AtomicBool::new(false));
    let charged = Arc::new(AtomicUsize::new(0));
    let chargers: Vec<_> = (0..CHARGERS)
        .map(|task| {
            let (batcher, ws) = (batcher.clone(), ws.clone());
            let (stop, charged) = (stop.clone(), charged.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = IdempotencyKey {
                        scope: "usage",
                        key: format!("steady-{task}-{n}"),
                        request_hash: "h".into(),
                    };
                    let outcome = batcher
                        .charge(&ws, key, Credits::new(1).unwrap(), usage("draft"))
                        .await
                        .expect("the charge runs");
                    assert!(outcome.is_ok(), "{outcome:?}");
                    charged.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    crate::support::wait_until("the gate is busy", || async {
        charged.load(Ordering::Relaxed) >= 2 * CHARGERS
    })
    .await;
    // The pool's one connection is the gate's: this write waits for the batcher to give it
    // back, and fails after five seconds if it never does while the load goes on.
    let granted = store
        .grant(&ws, &grant(GrantKind::Purchased, 10, None), T0 + 10)
        .await;
    let during = charged.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for charger in chargers {
        charger.await.expect("a charger");
    }
    granted.expect("the write found the pool's connection while the gate was busy");
    assert!(
        charged.load(Ordering::Relaxed) > during,
        "the load went on after the write"
    );
    db.finish().await;
}
