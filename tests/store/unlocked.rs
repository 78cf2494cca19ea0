//! The gate's batches without a transaction on PostgreSQL: read without locks, then written by
//! one statement that locks the accounts and checks that none moved since the read. Every
//! movement counts its write in the account's version, a moved account undoes the whole
//! statement, and the batch goes again under the locks.

use crate::on_both_backends;
use crate::story::{grant, usage};
use crate::support::{wait_until, TestDb};
use app::domain::{Credits, GrantKind, WorkspaceId};
use tally::db::{Guard, Store, Value, Writes};
use tally::ledger::{
    BatchCharge, ChargeOutcome, IdempotencyKey, LedgerError, NewHold, NewPool, Refusal,
};
use tally::spend::Scope;

const T0: i64 = 1_790_000_000_000;

async fn version(store: &Store, ws: &WorkspaceId) -> i64 {
    sqlx::query_scalar("SELECT version FROM credit_accounts WHERE workspace_id = $1")
        .bind(ws.as_str())
        .fetch_one(store.pool())
        .await
        .unwrap()
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey {
        scope: "usage",
        key: k.into(),
        request_hash: "h".into(),
    }
}

/// Checks that the version went up since `seen`, and remembers the new one.
async fn moved(store: &Store, ws: &WorkspaceId, seen: &mut i64, what: &str) {
    let after = version(store, ws).await;
    assert!(after > *seen, "{what} left the version at {after}");
    *seen = after;
}

/// Every kind of movement ends by writing the account row and counting it in the version,
/// even those that write no journal entry (a hold, its release, a pool): an unlocked batch
/// that read the books before any of them will find the version moved.
async fn every_movement_counts_in_the_account_version(store: &Store) {
    let ws = store.create_workspace("Versions", T0).await.unwrap();
    let mut seen = version(store, &ws).await;
    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000, None), T0)
        .await
        .unwrap();
    moved(store, &ws, &mut seen, "a grant").await;
    let charged = store
        .charge_once(
            &ws,
            &key("c1"),
            Credits::new(10).unwrap(),
            &usage("x"),
            T0 + 1,
        )
        .await
        .unwrap()
        .unwrap();
    moved(store, &ws, &mut seen, "a charge").await;
    store
        .refund(&ws, &charged.entry_id, "owner@acme.test", T0 + 2, 0)
        .await
        .unwrap();
    moved(store, &ws, &mut seen, "a refund").await;
    let hold = NewHold {
        credits: Credits::new(50).unwrap(),
        expires_at: T0 + 60_000,
        meta: usage("hold"),
    };
    let held = store
        .reserve_once(&ws, &key("r1"), &hold, T0 + 3)
        .await
        .unwrap()
        .unwrap();
    moved(store, &ws, &mut seen, "a hold").await;
    store
        .release(&ws, &held.reservation_id, T0 + 4)
        .await
        .unwrap();
    moved(store, &ws, &mut seen, "a release").await;
    let pool = NewPool {
        scope: Scope::Project,
        target: "launch".into(),
        credits: Credits::new(100).unwrap(),
        overflow: false,
    };
    let pool = store.create_pool(&ws, &pool, T0 + 5).await.unwrap();
    moved(store, &ws, &mut seen, "a new pool").await;
    store
        .change_pool(
            &ws,
            &pool.id,
            Some(Credits::new(200).unwrap()),
            None,
            T0 + 6,
        )
        .await
        .unwrap();
    moved(store, &ws, &mut seen, "a pool's new claim").await;
    store.remove_pool(&ws, &pool.id, T0 + 7).await.unwrap();
    moved(store, &ws, &mut seen, "a pool removed").await;
    let meta = usage("batch");
    let k = key("b1");
    let items = [BatchCharge {
        workspace: &ws,
        key: &k,
        credits: Credits::new(5).unwrap(),
        meta: &meta,
    }];
    store.charge_batch(&items, T0 + 8).await.unwrap();
    moved(store, &ws, &mut seen, "a batch").await;
}
on_both_backends!(
    every_movement_counts_in_the_account_version,
    every_movement_counts_in_the_account_version_on_sqlite,
    every_movement_counts_in_the_account_version_on_postgres
);

/// Backends waiting for a lock in this test's database.
async fn lock_waiters(store: &Store) -> i64 {
    sqlx::query_scalar(
        r#"
        SELECT COUNT(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'
        "#,
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// Waits until `n` backends of this test's database wait for a lock.
async fn until_waiting(store: &Store, n: i64, what: &str) {
    wait_until(what, || async { lock_waiters(store).await == n }).await;
}

/// A workspace with 100 purchased credits.
async fn funded(store: &Store, name: &str) -> WorkspaceId {
    let ws = store.create_workspace(name, T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 100, None), T0)
        .await
        .unwrap();
    ws
}

/// A batch of one charge, on a task of its own.
fn spawn_batch(
    store: &Store,
    ws: &WorkspaceId,
    k: &'static str,
    credits: i64,
    now: i64,
) -> tokio::task::JoinHandle<Result<Vec<Result<ChargeOutcome, LedgerError>>, LedgerError>> {
    let (store, ws) = (store.clone(), ws.clone());
    tokio::spawn(async move {
        let (k, meta) = (key(k), usage("unlocked"));
        let items = [BatchCharge {
            workspace: &ws,
            key: &k,
            credits: Credits::new(credits).unwrap(),
            meta: &meta,
        }];
        store.charge_batch(&items, now).await
    })
}

/// Holds a workspace's account row in a transaction of its own, so that what comes next
/// queues behind it.
async fn hold_account(store: &Store, ws: &WorkspaceId) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("SELECT workspace_id FROM credit_accounts WHERE workspace_id = $1 FOR UPDATE")
        .bind(ws.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// A pool is made between an unlocked batch's read (which saw no pools and 100 credits) and
/// its write: the write finds the account moved, nothing of it is kept, and the batch,
/// charged again under the locks, leaves the pool its claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_made_while_an_unlocked_batch_waits_keeps_its_claim() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = &db.store;
    let ws = funded(store, "Raced").await;
    let holder = hold_account(store, &ws).await;
    let pool = NewPool {
        scope: Scope::Project,
        target: "launch".into(),
        credits: Credits::new(80).unwrap(),
        overflow: false,
    };
    let making = tokio::spawn({
        let (store, ws) = (store.clone(), ws.clone());
        async move { store.create_pool(&ws, &pool, T0 + 1).await }
    });
    until_waiting(store, 1, "the pool to wait for the account").await;
    let charging = spawn_batch(store, &ws, "raced", 60, T0 + 2);
    until_waiting(store, 2, "the batch's write to wait behind the pool").await;
    holder.commit().await.unwrap();
    making.await.unwrap().expect("the pool is made");
    let results = charging.await.unwrap().unwrap();
    match &results[0] {
        Ok(Err(Refusal::Credits(short))) => assert_eq!(short.available, 20, "{short:?}"),
        other => panic!("the charge must meet the pool's claim, got {other:?}"),
    }
    let audit = store.audit(&ws).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    assert_eq!(audit.entries, 1, "only the purchase");
    db.finish().await;
}

/// Two unlocked batches with the same key both read before either writes: one charges, the
/// other finds the account moved, goes again under the locks and answers the first charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_unlocked_batches_with_one_key_charge_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = &db.store;
    let ws = funded(store, "Twice").await;
    let holder = hold_account(store, &ws).await;
    let first = spawn_batch(store, &ws, "same", 30, T0 + 1);
    until_waiting(store, 1, "the first batch to wait").await;
    let second = spawn_batch(store, &ws, "same", 30, T0 + 2);
    until_waiting(store, 2, "the second batch to wait").await;
    holder.commit().await.unwrap();
    let first = first.await.unwrap().unwrap().remove(0).unwrap().unwrap();
    let second = second.await.unwrap().unwrap().remove(0).unwrap().unwrap();
    assert_eq!(
        first.entry_id, second.entry_id,
        "one charge, answered twice"
    );
    assert_eq!(store.summary(&ws, T0 + 3).await.unwrap().available, 70);
    let audit = store.audit(&ws).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    assert_eq!(audit.entries, 2);
    db.finish().await;
}

/// A guarded run commits by itself when its guard finds every row and each checked write
/// touches what it must; otherwise it keeps nothing, the writes before the failing one
/// included, and says so with an error worth another try.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guarded_write_keeps_nothing_unless_every_count_holds() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = &db.store;
    let a = store.create_workspace("Acme AI", T0).await.unwrap();
    let name = |ws: WorkspaceId| async move {
        sqlx::query_scalar::<_, String>("SELECT name FROM workspaces WHERE id = $1")
            .bind(ws.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    let guard = |wanted_name: &str| Guard {
        sql: "SELECT id FROM workspaces WHERE id = $1 AND name = $2 FOR UPDATE".into(),
        values: vec![Value::from(a.as_str()), Value::from(wanted_name)],
        wanted: 1,
        what: "the workspace was renamed".into(),
    };
    let rename = |to: &str, expect: u64| {
        let mut writes = Writes::default();
        writes.add(
            "UPDATE workspaces SET name = $1 WHERE id = $2".into(),
            vec![Value::from(to), Value::from(a.as_str())],
            Some((expect, "the workspace went missing".into())),
        );
        writes
    };
    let mut conn = store.pool().acquire().await.unwrap();

    rename("Acme Labs", 1)
        .run_guarded(&mut conn, guard("Acme AI"))
        .await
        .unwrap();
    assert_eq!(
        name(a.clone()).await,
        "Acme Labs",
        "kept without a transaction"
    );

    let err = rename("Stale", 1)
        .run_guarded(&mut conn, guard("Acme AI"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("the workspace was renamed"),
        "{err}"
    );
    assert_eq!(name(a.clone()).await, "Acme Labs");

    let mut writes = rename("Half", 1);
    writes.add(
        "UPDATE workspaces SET low_balance_threshold = 5 WHERE id = $1".into(),
        vec![Value::from("ws_nosuchworkspace0")],
        Some((1, "the other workspace went missing".into())),
    );
    let err = writes
        .run_guarded(&mut conn, guard("Acme Labs"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the other workspace went missing"),
        "{err}"
    );
    assert_eq!(
        name(a.clone()).await,
        "Acme Labs",
        "the first write undone too"
    );
    drop(conn);
    db.finish().await;
}
