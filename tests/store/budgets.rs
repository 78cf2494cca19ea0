//! Budgets under concurrency, on both backends and through two instances: the gate checks and
//! moves them in the same transaction as each charge, so racing charges fit a budget exactly.

use crate::story::{grant, usage};
use crate::SHARDS;
use app::domain::{Credits, GrantKind, Role, WorkspaceId};
use std::sync::Arc;
use tally::accounts::Email;
use tally::clock::{Clock, ManualClock};
use tally::db::Store;
use tally::ledger::{ChargeBatcher, EntryMeta, IdempotencyKey, NewHold, Refusal};
use tally::spend::{Enforcement, NewBudget, Period, Scope};

const T0: i64 = 1_790_000_000_000;

/// A workspace rich in credits with two members; the first has a daily budget of `limit`.
async fn budgeted(store: &Store, limit: i64) -> (WorkspaceId, String, String) {
    let ws = store.create_workspace("Budgeted", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 100_000, None), T0)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for email in ["limited@acme.test", "free@acme.test"] {
        let user = store
            .upsert_user(&Email::parse(email).unwrap(), None, T0)
            .await
            .unwrap();
        store
            .set_membership(&ws, &user, Role::Member, T0)
            .await
            .unwrap();
        ids.push(user);
    }
    let budget = NewBudget {
        scope: Scope::Member,
        target: ids[0].clone(),
        action: None,
        period: Period::Day,
        limit: Credits::new(limit).unwrap(),
        enforcement: Enforcement::Hard,
        threshold_percent: 80,
    };
    store.create_budget(&ws, &budget, T0).await.unwrap();
    let free = ids.pop().unwrap();
    (ws, ids.pop().unwrap(), free)
}

fn by(member: &str, action: &str) -> EntryMeta {
    EntryMeta {
        member_id: Some(member.to_owned()),
        ..usage(action)
    }
}

/// 90 charges of 7 race through two instances' batchers, two thirds of them by the member
/// with a budget of 100: exactly ⌊100 / 7⌋ = 14 of theirs succeed, every one of the other
/// member's does, and the budget has used exactly 98.
async fn racing_charges_fit_a_member_budget_exactly(first: &Store, second: &Store) {
    let (ws, limited, free) = budgeted(first, 100).await;
    let clock: Arc<dyn Clock> = ManualClock::new(T0 + 10);
    let batchers = [
        ChargeBatcher::new(first.clone(), clock.clone(), SHARDS),
        ChargeBatcher::new(second.clone(), clock.clone(), SHARDS),
    ];
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let batcher = batchers[i % 2].clone();
            let (ws, member) = (
                ws.clone(),
                if i % 3 == 0 {
                    free.clone()
                } else {
                    limited.clone()
                },
            );
            tokio::spawn(async move {
                let key = IdempotencyKey {
                    scope: "usage",
                    key: format!("race-{i}"),
                    request_hash: "h".into(),
                };
                let outcome = batcher
                    .charge(&ws, key, Credits::new(7).unwrap(), by(&member, "race"))
                    .await
                    .unwrap();
                (member, outcome)
            })
        })
        .collect();
    let (mut limited_ok, mut free_ok, mut over) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (member, Ok(_)) if member == limited => limited_ok += 1,
            (_, Ok(_)) => free_ok += 1,
            (member, Err(Refusal::Budget(hit))) => {
                assert_eq!(member, limited);
                assert!(hit.used + 7 > 100, "{hit:?}");
                over += 1;
            }
            (_, Err(other)) => panic!("refused for credits: {other:?}"),
        }
    }
    assert_eq!((limited_ok, over, free_ok), (14, 46, 30));
    let budgets = second.budgets(&ws, T0 + 10).await.unwrap();
    assert_eq!((budgets[0].used, budgets[0].held), (98, 0));
    let summary = first.summary(&ws, T0 + 10).await.unwrap();
    assert_eq!(summary.available, 100_000 - 44 * 7);
    assert!(first.audit(&ws).await.unwrap().balanced());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_charges_fit_a_member_budget_exactly_on_sqlite() {
    let db = crate::support::TestDb::sqlite().await;
    let second = Store::connect(&db.url, &tally::db::StoreOptions::default())
        .await
        .unwrap();
    racing_charges_fit_a_member_budget_exactly(&db.store, &second).await;
    second.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_charges_fit_a_member_budget_exactly_on_postgres() {
    if let Some(db) = crate::support::TestDb::postgres().await {
        let second = Store::connect(&db.url, &tally::db::StoreOptions::default())
            .await
            .unwrap();
        racing_charges_fit_a_member_budget_exactly(&db.store, &second).await;
        second.close().await;
        db.finish().await;
    }
}

/// Racing holds count against the budget as they are placed: exactly ⌊100 / 30⌋ = 3 of 20
/// succeed; settling one and releasing the others leaves the budget at the settled cost.
async fn racing_holds_fit_a_budget_and_their_endings_move_it(store: &Store) {
    let (ws, limited, _) = budgeted(store, 100).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, ws, member) = (store.clone(), ws.clone(), limited.clone());
            tokio::spawn(async move {
                let key = IdempotencyKey {
                    scope: "reservation",
                    key: format!("hold-{i}"),
                    request_hash: "h".into(),
                };
                let hold = NewHold {
                    credits: Credits::new(30).unwrap(),
                    expires_at: T0 + 600_000,
                    meta: by(&member, "hold"),
                };
                store.reserve_once(&ws, &key, &hold, T0 + 10).await.unwrap()
            })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        if let Ok(receipt) = task.await.unwrap() {
            held.push(receipt.reservation_id);
        }
    }
    assert_eq!(held.len(), 3);
    let budget = &store.budgets(&ws, T0 + 20).await.unwrap()[0];
    assert_eq!((budget.used, budget.held), (0, 90));
    store
        .settle(&ws, &held[0], Credits::new(12).unwrap(), T0 + 30)
        .await
        .unwrap();
    for id in &held[1..] {
        store.release(&ws, id, T0 + 30).await.unwrap();
    }
    let budget = &store.budgets(&ws, T0 + 40).await.unwrap()[0];
    assert_eq!((budget.used, budget.held), (12, 0));
}
crate::on_both_backends!(
    racing_holds_fit_a_budget_and_their_endings_move_it,
    racing_holds_fit_a_budget_and_their_endings_move_it_on_sqlite,
    racing_holds_fit_a_budget_and_their_endings_move_it_on_postgres
);

/// A hold that lapses gives its credits back to the budget, as a release does.
async fn an_expired_hold_leaves_the_budget(store: &Store) {
    let (ws, limited, _) = budgeted(store, 100).await;
    let key = IdempotencyKey {
        scope: "reservation",
        key: "lapsing".into(),
        request_hash: "h".into(),
    };
    let hold = NewHold {
        credits: Credits::new(80).unwrap(),
        expires_at: T0 + 60_000,
        meta: by(&limited, "hold"),
    };
    store
        .reserve_once(&ws, &key, &hold, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.expire_holds(T0 + 60_000, 10).await.unwrap(), 1);
    let budget = &store.budgets(&ws, T0 + 60_000).await.unwrap()[0];
    assert_eq!((budget.used, budget.held), (0, 0));
}
crate::on_both_backends!(
    an_expired_hold_leaves_the_budget,
    an_expired_hold_leaves_the_budget_on_sqlite,
    an_expired_hold_leaves_the_budget_on_postgres
);

/// 40 charges of one action race through two instances against a cap of 5 such actions a
/// day: exactly 5 succeed, and the other action's charges are not counted.
async fn racing_actions_fit_a_frequency_cap_exactly(first: &Store, second: &Store) {
    let (ws, limited, _) = budgeted(first, 1_000_000).await;
    let cap = NewBudget {
        scope: Scope::Member,
        target: limited.clone(),
        action: Some("video.generate".into()),
        period: Period::Day,
        limit: Credits::new(5).unwrap(),
        enforcement: Enforcement::Hard,
        threshold_percent: 80,
    };
    first.create_budget(&ws, &cap, T0).await.unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(T0 + 10);
    let batchers = [
        ChargeBatcher::new(first.clone(), clock.clone(), SHARDS),
        ChargeBatcher::new(second.clone(), clock.clone(), SHARDS),
    ];
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let batcher = batchers[i % 2].clone();
            let (ws, member) = (ws.clone(), limited.clone());
            let action = if i % 4 == 0 {
                "image.generate"
            } else {
                "video.generate"
            };
            tokio::spawn(async move {
                let key = IdempotencyKey {
                    scope: "usage",
                    key: format!("cap-{i}"),
                    request_hash: "h".into(),
                };
                let outcome = batcher
                    .charge(&ws, key, Credits::new(3).unwrap(), by(&member, action))
                    .await
                    .unwrap();
                (action, outcome.is_ok())
            })
        })
        .collect();
    let (mut videos, mut images) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            ("video.generate", true) => videos += 1,
            (_, true) => images += 1,
            _ => {}
        }
    }
    assert_eq!((videos, images), (5, 10));
    let budgets = second.budgets(&ws, T0 + 10).await.unwrap();
    let cap = budgets.iter().find(|b| b.action.is_some()).unwrap();
    assert_eq!(cap.used, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_actions_fit_a_frequency_cap_exactly_on_sqlite() {
    let db = crate::support::TestDb::sqlite().await;
    let second = Store::connect(&db.url, &tally::db::StoreOptions::default())
        .await
        .unwrap();
    racing_actions_fit_a_frequency_cap_exactly(&db.store, &second).await;
    second.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_actions_fit_a_frequency_cap_exactly_on_postgres() {
    if let Some(db) = crate::support::TestDb::postgres().await {
        let second = Store::connect(&db.url, &tally::db::StoreOptions::default())
            .await
            .unwrap();
        racing_actions_fit_a_frequency_cap_exactly(&db.store, &second).await;
        second.close().await;
        db.finish().await;
    }
}

/// Charges of other projects race a pool of 400 in a balance of 1,000: exactly 24 of 40
/// charges of 25 get through and the pool keeps its 400; then the pool's project races for
/// it: exactly 16 of 20 charges of 25.
async fn a_pool_is_untouched_by_others_under_concurrency(store: &Store) {
    use tally::ledger::NewPool;
    let ws = store.create_workspace("Pooled", T0).await.unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000, None), T0)
        .await
        .unwrap();
    let pool = NewPool {
        scope: Scope::Project,
        target: "launch".into(),
        credits: Credits::new(400).unwrap(),
        overflow: false,
    };
    store.create_pool(&ws, &pool, T0).await.unwrap();
    let race = |project: &'static str, n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (store, ws) = (store.clone(), ws.clone());
                tokio::spawn(async move {
                    let key = IdempotencyKey {
                        scope: "usage",
                        key: format!("{project}-{i}"),
                        request_hash: "h".into(),
                    };
                    let meta = EntryMeta {
                        project: Some(project.into()),
                        ..usage("pooled")
                    };
                    store
                        .charge_once(&ws, &key, Credits::new(25).unwrap(), &meta, T0 + 10)
                        .await
                        .unwrap()
                        .is_ok()
                })
            })
            .collect::<Vec<_>>();
        async move {
            let mut ok = 0;
            for task in tasks {
                ok += i32::from(task.await.unwrap());
            }
            ok
        }
    };
    assert_eq!(race("research", 40).await, 24);
    assert_eq!(store.pools(&ws).await.unwrap()[0].remaining, 400);
    assert_eq!(race("launch", 20).await, 16);
    assert_eq!(store.pools(&ws).await.unwrap()[0].remaining, 0);
    assert_eq!(store.summary(&ws, T0 + 10).await.unwrap().available, 0);
    assert!(store.audit(&ws).await.unwrap().balanced());
}
crate::on_both_backends!(
    a_pool_is_untouched_by_others_under_concurrency,
    a_pool_is_untouched_by_others_under_concurrency_on_sqlite,
    a_pool_is_untouched_by_others_under_concurrency_on_postgres
);

/// The balance's statement says whether the workspace has Auto-reload settings and live
/// budgets, and its Billing page reads them only where it says so: the answer follows each
/// change, and another workspace's budget does not count.
async fn the_balance_says_whether_there_are_settings_or_budgets_to_read(store: &Store) {
    let (other, _, _) = budgeted(store, 100).await;
    let ws = store.create_workspace("Plain", T0).await.unwrap();
    let seen = |s: tally::ledger::AccountSummary| (s.auto_reload_saved, s.has_budgets);
    assert_eq!(seen(store.summary(&ws, T0).await.unwrap()), (false, false));
    assert_eq!(
        seen(store.summary(&other, T0).await.unwrap()),
        (false, true)
    );
    let budget = NewBudget {
        scope: Scope::Project,
        target: "launch".to_owned(),
        action: None,
        period: Period::Month,
        limit: Credits::new(500).unwrap(),
        enforcement: Enforcement::Soft,
        threshold_percent: 80,
    };
    let budget = store.create_budget(&ws, &budget, T0).await.unwrap();
    assert_eq!(seen(store.summary(&ws, T0).await.unwrap()), (false, true));
    let settings = app::domain::AutoReloadSettings {
        enabled: false,
        threshold: Credits::new(5_000).unwrap(),
        amount: app::domain::ReloadAmount::Target(Credits::new(20_000).unwrap()),
        monthly_cap: app::domain::Money::new(10_000, app::domain::Currency::usd()).unwrap(),
    };
    store
        .save_auto_reload_settings(&ws, &settings, None, true, "owner", T0)
        .await
        .unwrap();
    assert_eq!(seen(store.summary(&ws, T0).await.unwrap()), (true, true));
    store.remove_budget(&ws, &budget.id, T0 + 1).await.unwrap();
    assert_eq!(
        seen(store.summary(&ws, T0 + 2).await.unwrap()),
        (true, false)
    );
}
crate::on_both_backends!(
    the_balance_says_whether_there_are_settings_or_budgets_to_read,
    the_balance_says_whether_there_are_settings_or_budgets_to_read_on_sqlite,
    the_balance_says_whether_there_are_settings_or_budgets_to_read_on_postgres
);
