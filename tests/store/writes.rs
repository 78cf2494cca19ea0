//! A transaction's closing writes: one statement on PostgreSQL, one each on SQLite, with the
//! same effect and the same checks.

use crate::on_both_backends;
use tally::db::{Store, StoreError, Value, Writes};

const T0: i64 = 1_790_000_000_000;

/// Two workspaces' names and thresholds changed by writes whose parameters follow one
/// another: each value must land in its own row and column once the statements are joined.
async fn closing_writes_land_where_each_one_says(store: &Store) {
    let a = store.create_workspace("Acme AI", T0).await.unwrap();
    let b = store.create_workspace("Globex", T0).await.unwrap();
    let mut writes = Writes::default();
    for (workspace, name, threshold) in [(&a, "Acme Labs", 700_i64), (&b, "Globex Corp", 9)] {
        writes.add(
            "UPDATE workspaces SET name = $1, low_balance_threshold = $2 WHERE id = $3".into(),
            vec![
                Value::from(name),
                Value::from(threshold),
                Value::from(workspace.as_str()),
            ],
            Some((1, format!("{workspace} went missing"))),
        );
    }
    let mut tx = store.pool().begin().await.unwrap();
    writes.run(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    for (workspace, name, threshold) in [(&a, "Acme Labs", 700_i64), (&b, "Globex Corp", 9)] {
        let row: (String, i64) =
            sqlx::query_as("SELECT name, low_balance_threshold FROM workspaces WHERE id = $1")
                .bind(workspace.as_str())
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(row, (name.to_owned(), threshold));
    }
}
on_both_backends!(
    closing_writes_land_where_each_one_says,
    closing_writes_land_where_each_one_says_on_sqlite,
    closing_writes_land_where_each_one_says_on_postgres
);

/// A checked write that touches another number of rows than it must fails the writes with
/// what it was told to report, and the transaction keeps none of them.
async fn a_write_that_misses_its_rows_fails_them_all(store: &Store) {
    let a = store.create_workspace("Acme AI", T0).await.unwrap();
    let mut writes = Writes::default();
    writes.add(
        "UPDATE workspaces SET name = $1 WHERE id = $2".into(),
        vec![Value::from("Renamed"), Value::from(a.as_str())],
        Some((1, "the workspace went missing".into())),
    );
    writes.add(
        "UPDATE workspaces SET name = $1 WHERE id = $2".into(),
        vec![Value::from("Nobody"), Value::from("ws_nosuchworkspace0")],
        Some((1, "the other workspace went missing".into())),
    );
    let mut tx = store.pool().begin().await.unwrap();
    let err = writes.run(&mut tx).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(what) if what == "the other workspace went missing"),
        "{err}"
    );
    drop(tx);
    let name: String = sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1")
        .bind(a.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(name, "Acme AI");
}
on_both_backends!(
    a_write_that_misses_its_rows_fails_them_all,
    a_write_that_misses_its_rows_fails_them_all_on_sqlite,
    a_write_that_misses_its_rows_fails_them_all_on_postgres
);
