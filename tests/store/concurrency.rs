use crate::on_both_backends;
use crate::story::{grant, usage};
use app::domain::{Credits, GrantKind};
use std::sync::Arc;
use tally::ledger::LedgerError;
use tally::store::Store;

const T0: i64 = 1_790_000_000_000;

/// Many charges race for a small balance: exactly the affordable number succeed, the rest are
/// refused, the balance never goes below zero, and the journal stays one consistent sequence.
async fn parallel_charges_never_overdraw(store: &Store) {
    let ws = store.create_workspace("Hot workspace", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 600, None), T0)
        .await
        .unwrap();
    store
        .grant(
            &ws,
            &grant(GrantKind::Promotional, 400, Some(T0 + 1_000_000)),
            T0,
        )
        .await
        .unwrap();
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, ws) = (store.clone(), ws.clone());
            tokio::spawn(async move {
                store
                    .charge(
                        &ws,
                        Credits::new(25).unwrap(),
                        &usage(&format!("race-{i}")),
                        T0 + 10,
                    )
                    .await
            })
        })
        .collect();
    let mut succeeded = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(receipt) => {
                assert!(receipt.available >= 0);
                succeeded += 1;
            }
            Err(LedgerError::Insufficient(_)) => refused += 1,
            Err(other) => panic!("unexpected error under contention: {other}"),
        }
    }
    assert_eq!(
        (succeeded, refused),
        (40, 24),
        "1,000 credits pay for exactly 40 charges of 25"
    );
    let summary = store.summary(&ws, T0 + 10).await.unwrap();
    assert_eq!(summary.available, 0);
    let audit = store.audit(&ws).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    assert_eq!(audit.entries, 2 + 40);
}
on_both_backends!(
    parallel_charges_never_overdraw,
    parallel_charges_never_overdraw_on_sqlite,
    parallel_charges_never_overdraw_on_postgres
);
