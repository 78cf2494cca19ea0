use crate::on_both_backends;
use crate::story::{grant, usage};
use crate::SHARDS;
use app::domain::{Credits, GrantKind};
use std::sync::Arc;
use tally::db::Store;
use tally::ledger::LedgerError;

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

/// A batch applies its charges in order, each exactly once, with its own answer: a charge, a
/// refusal, a replay of a key seen earlier in the batch or before it, or a conflict.
async fn a_batch_answers_each_charge_on_its_own(store: &Store) {
    use tally::ledger::{BatchCharge, ChargeOutcome, IdempotencyKey, Refusal};
    let ws = store.create_workspace("Batch", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 100, None), T0)
        .await
        .unwrap();
    let key = |k: &str, hash: &str| IdempotencyKey {
        scope: "usage",
        key: k.into(),
        request_hash: hash.into(),
    };
    // Each outcome, in words the assertions compare.
    let render = |outcome: &ChargeOutcome| -> (u16, String) {
        match outcome {
            Ok(r) => (200, format!("charged {} left {}", -r.amount, r.available)),
            Err(Refusal::Credits(s)) => (402, format!("short {}", s.required)),
            Err(Refusal::Budget(hit)) => (402, format!("over budget {}", hit.budget_id)),
        }
    };
    let meta = usage("batch");
    let keys = [
        key("a", "h1"),
        key("b", "h2"),
        key("a", "h1"),
        key("a", "other"),
        key("c", "h3"),
    ];
    let credits = [40, 50, 40, 40, 20];
    let items: Vec<_> = keys
        .iter()
        .zip(credits)
        .map(|(k, c)| BatchCharge {
            workspace: &ws,
            key: k,
            credits: Credits::new(c).unwrap(),
            meta: &meta,
        })
        .collect();
    let results = store.charge_batch(&items, T0 + 1).await.unwrap();
    let shown: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().map(render).map_err(|e| e.to_string()))
        .collect();
    assert_eq!(shown[0], Ok((200, "charged 40 left 60".into())));
    assert_eq!(shown[1], Ok((200, "charged 50 left 10".into())));
    assert_eq!(
        shown[2],
        Ok((200, "charged 40 left 60".into())),
        "a repeat in the batch replays"
    );
    assert!(matches!(results[3], Err(LedgerError::IdempotencyConflict)));
    assert_eq!(shown[4], Ok((402, "short 20".into())));
    // A later batch replays stored keys.
    let again = [BatchCharge {
        workspace: &ws,
        key: &keys[1],
        credits: Credits::new(50).unwrap(),
        meta: &meta,
    }];
    let replay = store.charge_batch(&again, T0 + 2).await.unwrap();
    assert_eq!(render(replay[0].as_ref().unwrap()).1, "charged 50 left 10");
    assert_eq!(store.summary(&ws, T0 + 2).await.unwrap().available, 10);
    let audit = store.audit(&ws).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
    assert_eq!(audit.entries, 3);
}
on_both_backends!(
    a_batch_answers_each_charge_on_its_own,
    a_batch_answers_each_charge_on_its_own_on_sqlite,
    a_batch_answers_each_charge_on_its_own_on_postgres
);

/// One batch over several workspaces: each workspace's charges meet only its own lots and
/// keys (the same key in two workspaces is two charges), each stops at its own balance, an
/// unknown workspace is refused on its own, and every workspace's books balance.
async fn a_batch_across_workspaces_keeps_each_workspace_apart(store: &Store) {
    use tally::ledger::{BatchCharge, ChargeOutcome, IdempotencyKey, Refusal};
    let rich = store.create_workspace("Rich", T0).await.unwrap();
    let poor = store.create_workspace("Poor", T0).await.unwrap();
    let ghost = app::domain::WorkspaceId::parse("ws_doesnotexist").unwrap();
    store
        .grant(&rich, &grant(GrantKind::Purchased, 1_000, None), T0)
        .await
        .unwrap();
    store
        .grant(&poor, &grant(GrantKind::Purchased, 30, None), T0)
        .await
        .unwrap();
    let render = |outcome: &ChargeOutcome| -> (u16, String) {
        match outcome {
            Ok(r) => (200, format!("left {}", r.available)),
            Err(Refusal::Credits(s)) => (402, format!("has {}", s.available)),
            Err(Refusal::Budget(hit)) => (402, format!("over budget {}", hit.budget_id)),
        }
    };
    let meta = usage("batch");
    let key = |k: &str| IdempotencyKey {
        scope: "usage",
        key: k.into(),
        request_hash: "h".into(),
    };
    let (k1, k2, k3) = (key("same"), key("second"), key("third"));
    let plan = [
        (&rich, &k1, 20),
        (&poor, &k1, 20),
        (&ghost, &k1, 20),
        (&poor, &k2, 20),
        (&rich, &k2, 20),
        (&rich, &k1, 20),
        (&poor, &k3, 10),
    ];
    let items: Vec<_> = plan
        .iter()
        .map(|(ws, k, c)| BatchCharge {
            workspace: ws,
            key: k,
            credits: Credits::new(*c).unwrap(),
            meta: &meta,
        })
        .collect();
    let results = store.charge_batch(&items, T0 + 1).await.unwrap();
    let shown: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().map(render).ok())
        .collect();
    assert_eq!(shown[0], Some((200, "left 980".into())));
    assert_eq!(
        shown[1],
        Some((200, "left 10".into())),
        "the same key in another workspace charges"
    );
    assert!(matches!(results[2], Err(LedgerError::UnknownWorkspace)));
    assert_eq!(
        shown[3],
        Some((402, "has 10".into())),
        "the poor workspace stops at its own balance"
    );
    assert_eq!(shown[4], Some((200, "left 960".into())));
    assert_eq!(
        shown[5],
        Some((200, "left 980".into())),
        "a repeat in its own workspace replays"
    );
    assert_eq!(shown[6], Some((200, "left 0".into())));
    assert_eq!(store.summary(&rich, T0 + 1).await.unwrap().available, 960);
    assert_eq!(store.summary(&poor, T0 + 1).await.unwrap().available, 0);
    for ws in [&rich, &poor] {
        let audit = store.audit(ws).await.unwrap();
        assert!(audit.balanced(), "{audit:?}");
    }
    assert_eq!(store.audit(&rich).await.unwrap().entries, 3);
    assert_eq!(store.audit(&poor).await.unwrap().entries, 3);
}
on_both_backends!(
    a_batch_across_workspaces_keeps_each_workspace_apart,
    a_batch_across_workspaces_keeps_each_workspace_apart_on_sqlite,
    a_batch_across_workspaces_keeps_each_workspace_apart_on_postgres
);

/// Fifty spends race across Auto-reload's threshold: exactly one reload is queued, however
/// many of them see the balance below the line.
async fn spends_crossing_the_threshold_queue_one_reload(store: &Store) {
    let ws = store
        .create_workspace("Reloading workspace", T0)
        .await
        .unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 10_000, None), T0)
        .await
        .unwrap();
    let settings = app::domain::AutoReloadSettings {
        enabled: true,
        threshold: Credits::new(5_000).unwrap(),
        amount: app::domain::ReloadAmount::Target(Credits::new(20_000).unwrap()),
        monthly_cap: app::domain::Money::new(10_000, app::domain::Currency::usd()).unwrap(),
    };
    store
        .save_auto_reload_settings(
            &ws,
            &settings,
            Some(("pm_test", "Visa •••• 4242")),
            true,
            "owner",
            T0,
        )
        .await
        .unwrap();
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, ws) = (store.clone(), ws.clone());
            tokio::spawn(async move {
                store
                    .charge(
                        &ws,
                        Credits::new(150).unwrap(),
                        &usage(&format!("dip-{i}")),
                        T0 + 10,
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every spend is affordable");
    }
    assert_eq!(store.summary(&ws, T0 + 10).await.unwrap().available, 2_500);
    let (queued,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM auto_reload_attempts WHERE workspace_id = $1")
            .bind(ws.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(queued, 1, "one reload for one dip");
    // Once it is no longer in flight, the next dip may queue another.
    sqlx::query("UPDATE auto_reload_attempts SET status = 'succeeded' WHERE workspace_id = $1")
        .bind(ws.as_str())
        .execute(store.pool())
        .await
        .unwrap();
    store
        .charge(&ws, Credits::new(10).unwrap(), &usage("after"), T0 + 20)
        .await
        .unwrap();
    assert!(
        store
            .queue_reload(
                &ws,
                tally::payments::auto_reload::AttemptStatus::Queued,
                T0 + 30
            )
            .await
            .unwrap()
            .is_none(),
        "still one in flight"
    );
}

on_both_backends!(
    spends_crossing_the_threshold_queue_one_reload,
    spends_crossing_the_threshold_queue_one_reload_on_sqlite,
    spends_crossing_the_threshold_queue_one_reload_on_postgres
);

/// The same paid invoice delivered many times at once, and other invoices for the same period
/// racing it, grant the period's seats once: the subscription's row lock and the invoice key
/// hold on both backends.
async fn racing_invoice_deliveries_grant_a_period_once(store: &Store) {
    use tally::payments::subscriptions::{SubscriptionApplied, SubscriptionRecord};
    use tally::payments::InvoiceSnapshot;
    let ws = store.create_workspace("Subscriber", T0).await.unwrap();
    let team = tally::demo::demo_plans().remove(0);
    store.upsert_plan(&team, T0).await.unwrap();
    let period_end = T0 + 30 * 86_400_000;
    let subscription = SubscriptionRecord {
        id: "sub_race".into(),
        workspace_id: ws.clone(),
        plan: team,
        status: app::domain::SubscriptionStatus::Active,
        seats: 3,
        interval: app::domain::BillingInterval::Month,
        current_period_start: T0,
        current_period_end: period_end,
        cancel_at_period_end: false,
    };
    let invoice = |id: String| InvoiceSnapshot {
        id,
        customer_id: "cus_race".into(),
        subscription_id: Some("sub_race".into()),
        status: "paid".into(),
        charged: 6_000,
        seats: 3,
        period_start: T0,
        period_end,
    };
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (store, subscription) = (store.clone(), subscription.clone());
            // Half deliver one invoice under different event ids; half are other invoices
            // for the same period and seats.
            let invoice = invoice(if i % 2 == 0 {
                "in_same".into()
            } else {
                format!("in_other_{i}")
            });
            tokio::spawn(async move {
                let event = format!("evt_race_{i}");
                store
                    .apply_invoice(
                        &subscription,
                        &invoice,
                        Some((&event, "invoice.paid")),
                        T0 + 1,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        if let SubscriptionApplied::Granted { credits, .. } = task.await.unwrap() {
            granted += credits.get();
        }
    }
    assert_eq!(granted, 3_000, "three seats of one period, once");
    let summary = store.summary(&ws, T0 + 2).await.unwrap();
    assert_eq!(summary.available, 3_000);
    assert!(store.audit(&ws).await.unwrap().balanced());
}

on_both_backends!(
    racing_invoice_deliveries_grant_a_period_once,
    racing_invoice_deliveries_grant_a_period_once_on_sqlite,
    racing_invoice_deliveries_grant_a_period_once_on_postgres
);

/// Keys and reservations stored before outcomes were (with the HTTP answer the API gave then)
/// are replayed as the same outcomes: an upgrade never charges a repeated request twice.
async fn answers_stored_before_outcomes_replay_as_outcomes(store: &Store) {
    use tally::ledger::IdempotencyKey;
    let ws = store.create_workspace("Upgraded", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 100, None), T0)
        .await
        .unwrap();
    let legacy = |key: &str, scope: &str, status: i64, body: &str| {
        let (ws, key, scope, body) = (
            ws.to_string(),
            key.to_owned(),
            scope.to_owned(),
            body.to_owned(),
        );
        async move {
            sqlx::query(
                "INSERT INTO idempotency_keys (workspace_id, scope, idem_key, request_hash, status_code, response, created_at) VALUES ($1, $2, $3, 'h', $4, $5, $6)",
            )
            .bind(ws)
            .bind(scope)
            .bind(key)
            .bind(status)
            .bind(body)
            .bind(T0)
            .execute(store.pool())
            .await
            .unwrap();
        }
    };
    legacy(
        "paid",
        "usage",
        200,
        r#"{"transaction_id":"txn_old","charged":25,"balance":75}"#,
    )
    .await;
    legacy(
        "short",
        "usage",
        402,
        r#"{"error":{"code":"insufficient_credits","balance":3,"held":4,"required":25}}"#,
    )
    .await;
    legacy("hold", "reservation", 201, r#"{"reservation_id":"rsv_old","held":10,"expires_at":"2026-12-01T00:00:00Z","balance":90}"#).await;
    let key = |k: &str, scope: &'static str| IdempotencyKey {
        scope,
        key: k.into(),
        request_hash: "h".into(),
    };
    let meta = usage("replay");
    let paid = store
        .charge_once(
            &ws,
            &key("paid", "usage"),
            Credits::new(25).unwrap(),
            &meta,
            T0 + 1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (paid.entry_id.as_str(), paid.amount, paid.available),
        ("txn_old", -25, 75)
    );
    let short = store
        .charge_once(
            &ws,
            &key("short", "usage"),
            Credits::new(25).unwrap(),
            &meta,
            T0 + 1,
        )
        .await
        .unwrap()
        .unwrap_err();
    let tally::ledger::Refusal::Credits(short) = short else {
        panic!("no budgets here: {short:?}")
    };
    assert_eq!((short.available, short.held, short.required), (3, 4, 25));
    let hold = tally::ledger::NewHold {
        credits: Credits::new(10).unwrap(),
        expires_at: T0 + 60_000,
        meta: meta.clone(),
    };
    let held = store
        .reserve_once(&ws, &key("hold", "reservation"), &hold, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (held.reservation_id.as_str(), held.held, held.available),
        ("rsv_old", 10, 90)
    );
    let expires = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap();
    assert_eq!(held.expires_at, expires.timestamp_millis());
    // Nothing was charged or held by the replays.
    assert_eq!(store.summary(&ws, T0 + 1).await.unwrap().available, 100);
    assert_eq!(store.audit(&ws).await.unwrap().entries, 1);
}
on_both_backends!(
    answers_stored_before_outcomes_replay_as_outcomes,
    answers_stored_before_outcomes_replay_as_outcomes_on_sqlite,
    answers_stored_before_outcomes_replay_as_outcomes_on_postgres
);

/// Two instances (two pools over one database), each with its own group-commit batcher, race
/// charges for one balance: their batches' transactions overlap, so only the database's row
/// locks keep the total right. Exactly the affordable number succeed, and the books balance.
async fn batches_of_two_instances_never_overdraw(first: &Store, second: &Store) {
    use tally::clock::{Clock, ManualClock};
    use tally::ledger::{ChargeBatcher, IdempotencyKey};
    let ws = first.create_workspace("Two instances", T0).await.unwrap();
    let other = first.create_workspace("Bystander", T0).await.unwrap();
    for workspace in [&ws, &other] {
        first
            .grant(workspace, &grant(GrantKind::Purchased, 1_000, None), T0)
            .await
            .unwrap();
    }
    let clock: Arc<dyn Clock> = ManualClock::new(T0 + 10);
    let batchers = [
        ChargeBatcher::new(first.clone(), clock.clone(), SHARDS),
        ChargeBatcher::new(second.clone(), clock.clone(), SHARDS),
    ];
    let tasks: Vec<_> = (0..96)
        .map(|i| {
            let batcher = batchers[i % 2].clone();
            // Every third charge is the bystander's, so batches span workspaces in both orders.
            let workspace = if i % 3 == 0 {
                other.clone()
            } else {
                ws.clone()
            };
            tokio::spawn(async move {
                let key = IdempotencyKey {
                    scope: "usage",
                    key: format!("two-{i}"),
                    request_hash: "h".into(),
                };
                let outcome = batcher
                    .charge(
                        &workspace,
                        key,
                        Credits::new(25).unwrap(),
                        usage(&format!("two-{i}")),
                    )
                    .await
                    .unwrap();
                (workspace, outcome.is_ok())
            })
        })
        .collect();
    let mut charged = std::collections::HashMap::new();
    for task in tasks {
        let (workspace, ok) = task.await.unwrap();
        *charged.entry(workspace).or_insert(0) += i64::from(ok);
    }
    // 64 charges of 25 want 1,600 of the 1,000 credits: 40 fit; the bystander's 32 all fit.
    assert_eq!(charged[&ws], 40);
    assert_eq!(charged[&other], 32);
    for (workspace, left) in [(&ws, 0), (&other, 1_000 - 32 * 25)] {
        assert_eq!(
            first.summary(workspace, T0 + 10).await.unwrap().available,
            left
        );
        let audit = second.audit(workspace).await.unwrap();
        assert!(audit.balanced(), "{audit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_two_instances_never_overdraw_on_sqlite() {
    let db = crate::support::TestDb::sqlite().await;
    let second = Store::connect(&db.url, &tally::db::StoreOptions::default())
        .await
        .unwrap();
    batches_of_two_instances_never_overdraw(&db.store, &second).await;
    second.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_of_two_instances_never_overdraw_on_postgres() {
    if let Some(db) = crate::support::TestDb::postgres().await {
        let second = Store::connect(&db.url, &tally::db::StoreOptions::default())
            .await
            .unwrap();
        batches_of_two_instances_never_overdraw(&db.store, &second).await;
        second.close().await;
        db.finish().await;
    }
}

/// Reservations race every way they can end (a settle and a release of each at once, and the
/// expiry job) beside charges and refunds of the same workspace: each reservation ends once,
/// both of its callers are told the same ending, nothing stays held, and the books balance to
/// the credit.
async fn reservations_race_every_ending_beside_charges_and_refunds(store: &Store) {
    use tally::ledger::{IdempotencyKey, NewHold};
    let ws = store.create_workspace("Busy", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 10_000, None), T0)
        .await
        .unwrap();
    let mut holds = Vec::new();
    for i in 0..24 {
        let key = IdempotencyKey {
            scope: "reservation",
            key: format!("hold-{i}"),
            request_hash: "h".into(),
        };
        let hold = NewHold {
            credits: Credits::new(100).unwrap(),
            // Half have run out by the time the race starts.
            expires_at: if i % 2 == 0 {
                T0 + 1_000
            } else {
                T0 + 1_000_000
            },
            meta: usage(&format!("hold-{i}")),
        };
        let receipt = store
            .reserve_once(&ws, &key, &hold, T0)
            .await
            .unwrap()
            .unwrap();
        holds.push(receipt.reservation_id);
    }
    let mut charges = Vec::new();
    for i in 0..10 {
        let receipt = store
            .charge(
                &ws,
                Credits::new(50).unwrap(),
                &usage(&format!("c-{i}")),
                T0,
            )
            .await
            .unwrap();
        charges.push(receipt.entry_id);
    }
    let now = T0 + 2_000;
    let store = Arc::new(store.clone());
    let mut endings = Vec::new();
    for (i, id) in holds.iter().enumerate() {
        // Some settle under the hold, some above it.
        let cost = if i % 3 == 0 { 150 } else { 80 };
        let (s, w, id2) = (store.clone(), ws.clone(), id.clone());
        let settle =
            tokio::spawn(async move { s.settle(&w, &id2, Credits::new(cost).unwrap(), now).await });
        let (s, w, id2) = (store.clone(), ws.clone(), id.clone());
        let release = tokio::spawn(async move { s.release(&w, &id2, now).await });
        endings.push((id.clone(), settle, release));
    }
    let job = {
        let s = store.clone();
        tokio::spawn(async move { tally::jobs::release_expired_holds(&s, now).await })
    };
    let mut spends = Vec::new();
    for (i, entry) in charges.iter().enumerate() {
        let (s, w) = (store.clone(), ws.clone());
        spends.push(tokio::spawn(async move {
            s.charge(
                &w,
                Credits::new(30).unwrap(),
                &usage(&format!("late-{i}")),
                now,
            )
            .await
            .map(|r| -r.amount)
        }));
        let (s, w, e) = (store.clone(), ws.clone(), entry.clone());
        spends.push(tokio::spawn(async move {
            s.refund(&w, &e, "worker", now, T0 - 1)
                .await
                .map(|r| -r.refunded)
        }));
    }
    for (id, settle, release) in endings {
        let (settled, released) = (settle.await.unwrap(), release.await.unwrap());
        let (status, charged): (String, i64) =
            sqlx::query_as("SELECT status, charged FROM reservations WHERE id = $1")
                .bind(&id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        match (&settled, &released) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    (a.settled, a.charged, &a.entry_id),
                    (b.settled, b.charged, &b.entry_id),
                    "{id}: both callers hear the same ending"
                );
                assert_eq!(status, if a.settled { "settled" } else { "released" });
                assert_eq!(charged, a.charged);
            }
            (Err(LedgerError::ReservationExpired), Err(LedgerError::ReservationExpired)) => {
                assert_eq!(status, "expired");
                assert_eq!(charged, 0);
            }
            other => panic!("{id}: callers told different endings: {other:?}"),
        }
    }
    job.await.unwrap().unwrap();
    let mut moved = 0;
    for spend in spends {
        match spend.await.unwrap() {
            Ok(credits) => moved += credits,
            Err(LedgerError::Insufficient(_)) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    let (settled_total,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(charged), 0) AS BIGINT) FROM reservations WHERE workspace_id = $1",
    )
    .bind(ws.as_str())
    .fetch_one(store.pool())
    .await
    .unwrap();
    let summary = store.summary(&ws, now).await.unwrap();
    assert_eq!(summary.held, 0, "nothing stays held");
    assert_eq!(
        summary.available,
        10_000 - 10 * 50 - settled_total - moved,
        "every credit is accounted for"
    );
    let audit = store.audit(&ws).await.unwrap();
    assert!(audit.balanced(), "{audit:?}");
}
on_both_backends!(
    reservations_race_every_ending_beside_charges_and_refunds,
    reservations_race_every_ending_beside_charges_and_refunds_on_sqlite,
    reservations_race_every_ending_beside_charges_and_refunds_on_postgres
);

/// Reads of a customer's saved cards that cross: whatever order they commit in, the one that
/// started last is what stays, whole, and a stale one says so.
async fn the_latest_card_read_stays_whatever_the_order(store: &Store) {
    use tally::payments::saved_cards::{CardsStored, StoredCards};
    use tally::payments::CardOnFile;
    let cards = |read: i64| -> Vec<CardOnFile> {
        (0..3)
            .map(|n| CardOnFile {
                id: format!("pm_{read}_{n}"),
                brand: "visa".into(),
                last4: format!("{:04}", read),
                exp_month: 12,
                exp_year: 2030,
                is_default: n == 0,
            })
            .collect()
    };
    let ws = store.create_workspace("Cards", T0).await.unwrap();
    let cards_of = || async {
        store
            .reads()
            .await
            .unwrap()
            .stored_cards_of(&ws)
            .await
            .unwrap()
    };
    assert_eq!(cards_of().await, StoredCards::NoCustomer);
    store
        .save_stripe_customer(&ws, "cus_race", T0)
        .await
        .unwrap();
    assert_eq!(
        cards_of().await,
        StoredCards::NeverRead {
            customer_id: "cus_race".into()
        }
    );
    let mut tasks = Vec::new();
    for read in [5_i64, 1, 9, 3, 7, 2, 8, 4, 6, 10] {
        let store = store.clone();
        let these = cards(read);
        tasks.push(tokio::spawn(async move {
            store
                .replace_saved_cards("cus_race", &these, T0 + read)
                .await
                .unwrap()
        }));
    }
    let mut stored = 0;
    for task in tasks {
        if task.await.unwrap() == CardsStored::Stored {
            stored += 1;
        }
    }
    assert!(stored >= 1);
    assert_eq!(cards_of().await, StoredCards::Read(cards(10)));
    assert_eq!(
        store
            .replace_saved_cards("cus_race", &cards(1), T0 + 1)
            .await
            .unwrap(),
        CardsStored::Stale
    );
    assert_eq!(cards_of().await, StoredCards::Read(cards(10)));
    assert_eq!(
        store
            .replace_saved_cards("cus_race", &[], T0 + 11)
            .await
            .unwrap(),
        CardsStored::Stored
    );
    assert_eq!(cards_of().await, StoredCards::Read(vec![]));
}
on_both_backends!(
    the_latest_card_read_stays_whatever_the_order,
    the_latest_card_read_stays_whatever_the_order_on_sqlite,
    the_latest_card_read_stays_whatever_the_order_on_postgres
);
