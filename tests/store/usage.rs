//! The usage chart's kept sums: folded from the journal by page views, never counted twice.

use crate::on_both_backends;
use crate::story::{grant, usage};
use app::domain::{Credits, GrantKind, WorkspaceId};
use std::collections::BTreeMap;
use tally::db::Store;
use tally::ledger::{ConsumptionRead, EntryMeta, FOLD_AFTER};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_790_000_000_000;

type Key = (i64, Option<String>, Option<String>);

/// A read's rows added up per day and key, as the chart adds them (kept and live halves may
/// both hold a day and key).
fn summed(read: &ConsumptionRead) -> BTreeMap<Key, i64> {
    let mut sums = BTreeMap::new();
    for (day, credits, action, model) in &read.rows {
        *sums
            .entry((*day, action.clone(), model.clone()))
            .or_default() += credits;
    }
    sums
}

async fn read(store: &Store, ws: &WorkspaceId, since: i64) -> ConsumptionRead {
    store
        .reads()
        .await
        .unwrap()
        .consumption_since(ws, since)
        .await
        .unwrap()
}

fn meta(action: &str, model: Option<&str>) -> EntryMeta {
    EntryMeta {
        model: model.map(str::to_owned),
        ..usage(action)
    }
}

/// Kept sums answer exactly as the journal summed live did, across days and keys (a charge
/// without a model included), and charges after the mark are added to them on reading.
async fn kept_sums_answer_as_the_journal_does(store: &Store) {
    let ws = store.create_workspace("Busy", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000_000, None), T0)
        .await
        .unwrap();
    let since = (T0 / DAY + 1) * DAY;
    let now = since + 5 * DAY;
    let mut expected: BTreeMap<Key, i64> = BTreeMap::new();
    let mut charge = |at: i64, n: i64, action: &'static str, model: Option<&'static str>| {
        if at >= since {
            *expected
                .entry((
                    at / DAY * DAY,
                    Some(action.to_owned()),
                    model.map(str::to_owned),
                ))
                .or_default() += n;
        }
        (at, n, meta(action, model))
    };
    let mut charges = vec![charge(since - 1, 50, "draft", Some("atlas"))];
    for i in 0..60 {
        let model = [Some("atlas"), Some("nova"), None][i as usize % 3];
        let action = ["draft", "image"][i as usize % 2];
        charges.push(charge(since + i * DAY / 12, 1 + i, action, model));
    }
    let (early, late) = charges.split_at(40);
    for (at, n, meta) in early {
        store
            .charge(&ws, Credits::new(*n).unwrap(), meta, *at)
            .await
            .unwrap();
    }
    let live = read(store, &ws, since).await;
    // The charge before the window is not read at all.
    assert_eq!(
        live.live_entries, 39,
        "before any fold every charge is live"
    );
    assert!(store.fold_usage(&ws, now).await.unwrap());
    assert!(
        !store.fold_usage(&ws, now).await.unwrap(),
        "a second fold finds nothing new"
    );
    let kept = read(store, &ws, since).await;
    assert_eq!(kept.live_entries, 0);
    assert_eq!(summed(&kept), summed(&live));
    for (at, n, meta) in late {
        store
            .charge(&ws, Credits::new(*n).unwrap(), meta, *at)
            .await
            .unwrap();
    }
    let both = read(store, &ws, since).await;
    assert_eq!(both.live_entries, 21);
    assert_eq!(summed(&both), expected);
    assert!(store.fold_usage(&ws, now).await.unwrap());
    assert_eq!(summed(&read(store, &ws, since).await), expected);
    // Days the chart no longer shows are not kept: a charge and a fold forty-one days on.
    let later = now + 41 * DAY;
    store
        .charge(&ws, Credits::new(1).unwrap(), &usage("draft"), later)
        .await
        .unwrap();
    assert!(store.fold_usage(&ws, later).await.unwrap());
    let days: Vec<(i64,)> =
        sqlx::query_as("SELECT day FROM usage_day_sums WHERE workspace_id = $1 ORDER BY day")
            .bind(ws.as_str())
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(days, [(later / DAY * DAY,)]);
}
on_both_backends!(
    kept_sums_answer_as_the_journal_does,
    kept_sums_answer_as_the_journal_does_on_sqlite,
    kept_sums_answer_as_the_journal_does_on_postgres
);

/// Folds racing each other and the gate's charges count every charge once: the kept sums
/// and the live remainder always add up to what was charged.
async fn racing_folds_count_each_charge_once(store: &Store) {
    let ws = store.create_workspace("Busy", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000_000, None), T0)
        .await
        .unwrap();
    let since = T0 / DAY * DAY;
    let (writers, each) = (4_i64, 40_i64);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                store
                    .charge(
                        &ws,
                        Credits::new(1 + writer).unwrap(),
                        &usage("draft"),
                        T0 + i,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..4 {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..15 {
                // Lock contention may refuse a fold; the next one tries again.
                let _ = store.fold_usage(&ws, T0).await;
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let charged: i64 = (0..writers).map(|w| (1 + w) * each).sum();
    let total = |read: &ConsumptionRead| read.rows.iter().map(|r| r.1).sum::<i64>();
    let before = read(store, &ws, since).await;
    assert_eq!(total(&before), charged, "kept and live together");
    store.fold_usage(&ws, T0).await.unwrap();
    let after = read(store, &ws, since).await;
    assert_eq!(after.live_entries, 0);
    assert_eq!(
        total(&after),
        charged,
        "kept alone, once everything is folded"
    );
}
on_both_backends!(
    racing_folds_count_each_charge_once,
    racing_folds_count_each_charge_once_on_sqlite,
    racing_folds_count_each_charge_once_on_postgres
);

/// Summing charges live costs a view a row each, so a read says when a fold is due.
async fn a_read_says_when_a_fold_is_due(store: &Store) {
    let ws = store.create_workspace("Busy", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000_000, None), T0)
        .await
        .unwrap();
    for i in 0..FOLD_AFTER {
        store
            .charge(&ws, Credits::new(1).unwrap(), &usage("draft"), T0 + i)
            .await
            .unwrap();
        if i == FOLD_AFTER - 2 {
            assert!(!read(store, &ws, T0 / DAY * DAY).await.fold_due());
        }
    }
    assert!(read(store, &ws, T0 / DAY * DAY).await.fold_due());
    store.fold_usage(&ws, T0).await.unwrap();
    assert!(!read(store, &ws, T0 / DAY * DAY).await.fold_due());
}
on_both_backends!(
    a_read_says_when_a_fold_is_due,
    a_read_says_when_a_fold_is_due_on_sqlite,
    a_read_says_when_a_fold_is_due_on_postgres
);
