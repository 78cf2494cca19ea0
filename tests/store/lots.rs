//! What spending from a lot costs the database beside the row itself.

use crate::story::{grant, usage};
use crate::support::{wait_until, TestDb};
use app::domain::{Credits, GrantKind};
use tally::db::{Store, StoreOptions};

const T0: i64 = 1_790_000_000_000;

/// Updates of `credit_lots` so far, and how many of them PostgreSQL made in place (HOT: the
/// new row version on the same page and no index entry written), as its statistics count.
async fn lot_updates(store: &Store) -> (i64, i64) {
    sqlx::query_as::<_, (i64, i64)>(
        r#"
        SELECT CAST(n_tup_upd AS BIGINT), CAST(n_tup_hot_upd AS BIGINT)
        FROM pg_stat_user_tables
        WHERE relname = 'credit_lots'
        "#,
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// Every charge lowers its lots' `remaining`. No index holds that column or filters on it
/// (the open lots' index filters on `is_open`, which changes only when a lot empties), so on
/// PostgreSQL each of those updates is made in place and writes no index entry: a charge
/// costs the lots' indexes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_from_a_lot_updates_it_in_place_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // One connection, so the statistics to flush are that one server process's.
    let store = Store::connect(
        &db.url,
        &StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let ws = store.create_workspace("Acme AI", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000, None), T0)
        .await
        .unwrap();
    for n in 1..=5 {
        store
            .charge(
                &ws,
                Credits::new(10).unwrap(),
                &usage("studio.generate"),
                T0 + n,
            )
            .await
            .unwrap();
    }
    // A server process reports its counts when it next rests, at most once a second.
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(store.pool())
        .await
        .unwrap();
    wait_until("the five charges' lot updates are counted", || async {
        lot_updates(&store).await.0 >= 5
    })
    .await;
    let (updates, in_place) = lot_updates(&store).await;
    assert_eq!(
        in_place, updates,
        "{updates} updates of the lots, {in_place} of them in place"
    );
    store.close().await;
    db.finish().await;
}
