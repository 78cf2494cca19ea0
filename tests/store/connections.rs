//! The pool's connections: checked when they may have gone stale, not on every checkout.

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
