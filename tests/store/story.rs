use crate::on_both_backends;
use app::domain::{Credits, EntryType, GrantKind, Role, WorkspaceId};
use tally::accounts::Email;
use tally::db::Store;
use tally::ledger::book::Book;
use tally::ledger::{EntryMeta, HistoryQuery, IdempotencyKey, LedgerError, NewHold};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_790_000_000_000;

fn credits(n: i64) -> Credits {
    Credits::new(n).unwrap()
}

pub use crate::support::grant;

pub fn usage(action: &str) -> EntryMeta {
    EntryMeta {
        actor: "member@acme.test".into(),
        description: "Studio draft".into(),
        action: Some(action.into()),
        model: Some("atlas-text-large".into()),
        ..EntryMeta::default()
    }
}

async fn assert_balanced(store: &Store, ws: &WorkspaceId) {
    let audit = store.audit(ws).await.unwrap();
    assert!(audit.balanced(), "books must balance: {audit:?}");
}

/// A workspace's life: grants of every kind, charges across lots in the drawdown order, a
/// refused charge, expiry, history pages, and the books balanced at every step.
async fn ledger_story(store: &Store) {
    let ws = store.create_workspace("Acme AI", T0).await.unwrap();
    let other = store.create_workspace("Globex", T0).await.unwrap();

    store
        .grant(&ws, &grant(GrantKind::Purchased, 1_000, None), T0)
        .await
        .unwrap();
    store
        .grant(
            &ws,
            &grant(GrantKind::Subscription, 300, Some(T0 + 30 * DAY)),
            T0 + 1,
        )
        .await
        .unwrap();
    store
        .grant(
            &ws,
            &grant(GrantKind::Promotional, 200, Some(T0 + 5 * DAY)),
            T0 + 2,
        )
        .await
        .unwrap();
    let free = store
        .grant(
            &ws,
            &grant(GrantKind::Free, 100, Some(T0 + 5 * DAY)),
            T0 + 3,
        )
        .await
        .unwrap();
    assert_eq!(
        (free.balance_after, free.available, free.seq),
        (1_600, 1_600, 4)
    );
    store
        .grant(&other, &grant(GrantKind::Free, 50, None), T0)
        .await
        .unwrap();
    assert_balanced(store, &ws).await;

    // 350 credits: free (100) and promotional (200) share the soonest expiry, free first;
    // then 50 of the subscription credits. Purchased credits are untouched.
    let receipt = store
        .charge(&ws, credits(350), &usage("studio.generate"), T0 + DAY)
        .await
        .unwrap();
    assert_eq!(
        (receipt.amount, receipt.balance_after, receipt.available),
        (-350, 1_250, 1_250)
    );
    let mut trace = store.trace(&ws, &receipt.entry_id).await.unwrap();
    trace.sort_by_key(|t| t.kind.drawdown_rank());
    let drawn: Vec<_> = trace.iter().map(|t| (t.kind, t.amount)).collect();
    assert_eq!(
        drawn,
        [
            (GrantKind::Free, -100),
            (GrantKind::Promotional, -200),
            (GrantKind::Subscription, -50)
        ]
    );
    assert!(
        store
            .trace(&other, &receipt.entry_id)
            .await
            .unwrap()
            .is_empty(),
        "another workspace sees no trace"
    );

    // A charge above the balance changes nothing.
    match store
        .charge(&ws, credits(1_251), &usage("video.generate"), T0 + DAY)
        .await
    {
        Err(LedgerError::Insufficient(shortfall)) => {
            assert_eq!((shortfall.available, shortfall.required), (1_250, 1_251))
        }
        other => panic!("expected insufficient credits, got {other:?}"),
    }
    assert_eq!(store.summary(&ws, T0 + DAY).await.unwrap().available, 1_250);

    // The subscription lot lapses: its 250 credits are written off by an expiry entry.
    let later = T0 + 30 * DAY;
    assert_eq!(
        store.workspaces_with_lapsed_lots(later, 10).await.unwrap(),
        vec![ws.clone()]
    );
    assert_eq!(tally::jobs::sweep_expired(store, later).await.unwrap(), 250);
    assert!(store
        .workspaces_with_lapsed_lots(later, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.expire(&ws, later).await.unwrap(),
        0,
        "expiry is written once"
    );
    let summary = store.summary(&ws, later).await.unwrap();
    assert_eq!(
        (
            summary.available,
            summary.total,
            summary.lifetime_added,
            summary.lifetime_spent
        ),
        (1_000, 1_000, 1_600, 350)
    );
    assert_eq!(summary.buckets.len(), 1);
    assert_eq!(summary.buckets[0].kind, GrantKind::Purchased);
    assert_balanced(store, &ws).await;

    // History: newest first, filterable by type, paged by sequence number.
    let all = store
        .reads()
        .await
        .unwrap()
        .history(
            &ws,
            &HistoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let types: Vec<_> = all.iter().map(|e| e.entry_type).collect();
    assert_eq!(
        types,
        [
            EntryType::Expiry,
            EntryType::Consumption,
            EntryType::Grant,
            EntryType::Grant,
            EntryType::Grant,
            EntryType::Purchase
        ]
    );
    assert_eq!(all[0].balance_after, 1_000);
    let grants = store
        .reads()
        .await
        .unwrap()
        .history(
            &ws,
            &HistoryQuery {
                entry_type: Some(EntryType::Grant),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(grants.len(), 3);
    let page = store
        .reads()
        .await
        .unwrap()
        .history(
            &ws,
            &HistoryQuery {
                before_seq: Some(all[1].seq),
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [all[2].id.clone(), all[3].id.clone()]
    );
    let dated = store
        .reads()
        .await
        .unwrap()
        .history(
            &ws,
            &HistoryQuery {
                from: Some(T0 + DAY),
                until: Some(T0 + DAY + 1),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dated.len(), 1);
    assert_eq!(dated[0].action.as_deref(), Some("studio.generate"));
    let other_history = store
        .reads()
        .await
        .unwrap()
        .history(
            &other,
            &HistoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        other_history.len(),
        1,
        "credits never move between workspaces"
    );

    // The journal is append-only, enforced by the database itself: the trigger refuses, not a
    // foreign key (the trace rows are tried first, and nothing refers to them).
    let refused = |result: Result<sqlx::any::AnyQueryResult, sqlx::Error>, what: &str| {
        let err = result.expect_err(what);
        assert!(err.to_string().contains("append-only"), "{what}: {err}");
    };
    for sql in [
        "UPDATE ledger_entry_lots SET amount = 1 WHERE entry_id IN (SELECT id FROM ledger_entries WHERE workspace_id = $1)",
        "DELETE FROM ledger_entry_lots WHERE entry_id IN (SELECT id FROM ledger_entries WHERE workspace_id = $1)",
        "UPDATE ledger_entries SET amount = 1 WHERE workspace_id = $1",
        "DELETE FROM ledger_entries WHERE workspace_id = $1",
    ] {
        refused(
            sqlx::query(sql).bind(ws.as_str()).execute(store.pool()).await,
            sql,
        );
    }
    assert_balanced(store, &ws).await;
}
on_both_backends!(
    ledger_story,
    ledger_story_on_sqlite,
    ledger_story_on_postgres
);

/// Grants that break the rules are refused before they touch the books.
async fn invalid_grants_are_refused(store: &Store) {
    let ws = store.create_workspace("Acme AI", T0).await.unwrap();
    let mut expiring_purchase = grant(GrantKind::Purchased, 10, Some(T0 + DAY));
    assert!(matches!(
        store.grant(&ws, &expiring_purchase, T0).await,
        Err(LedgerError::Invalid(_))
    ));
    expiring_purchase.expires_at = None;
    expiring_purchase.entry_type = EntryType::Grant;
    assert!(matches!(
        store.grant(&ws, &expiring_purchase, T0).await,
        Err(LedgerError::Invalid(_))
    ));
    assert!(matches!(
        store
            .grant(&ws, &grant(GrantKind::Free, 10, Some(T0)), T0)
            .await,
        Err(LedgerError::Invalid(_))
    ));
    let unknown = WorkspaceId::parse("ws_doesnotexist0000").unwrap();
    assert!(matches!(
        store
            .grant(&unknown, &grant(GrantKind::Free, 10, None), T0)
            .await,
        Err(LedgerError::UnknownWorkspace)
    ));
    assert!(matches!(
        store.charge(&unknown, credits(1), &usage("x"), T0).await,
        Err(LedgerError::UnknownWorkspace)
    ));
    assert_eq!(store.audit(&ws).await.unwrap().entries, 0);
}
on_both_backends!(
    invalid_grants_are_refused,
    invalid_grants_are_refused_on_sqlite,
    invalid_grants_are_refused_on_postgres
);

/// The database agrees with the in-memory reference model over a long random sequence.
async fn store_agrees_with_the_model(store: &Store) {
    let ws = store.create_workspace("Model", T0).await.unwrap();
    let mut book = Book::default();
    let mut seed: u64 = 42;
    let mut next = move |n: i64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as i64) % n
    };
    let mut now = T0;
    // Reservations in progress: the store's id and the model's hold.
    let mut open: Vec<(String, Vec<tally::ledger::rules::Draw>)> = Vec::new();
    for step in 0..160 {
        now += next(3 * DAY);
        match next(6) {
            0 => {
                let kind = GrantKind::ALL[next(4) as usize];
                let expires = (kind != GrantKind::Purchased && next(2) == 0)
                    .then(|| now + 1 + next(10 * DAY));
                let n = 1 + next(500);
                store
                    .grant(&ws, &grant(kind, n, expires), now)
                    .await
                    .unwrap();
                book.grant(kind, credits(n), expires, now);
            }
            1 | 2 => {
                let n = 1 + next(400);
                let stored = store.charge(&ws, credits(n), &usage("model"), now).await;
                let modelled = book.charge(credits(n), now);
                assert_eq!(stored.is_ok(), modelled.is_ok(), "charge of {n} at {now}");
            }
            3 => {
                let n = 1 + next(300);
                let key = IdempotencyKey {
                    scope: "reservation",
                    key: format!("model-{step}"),
                    request_hash: format!("{n}"),
                };
                let hold = NewHold {
                    credits: credits(n),
                    // Longer than the story, so only settle and release end a hold.
                    expires_at: now + 1_000 * DAY,
                    meta: usage("model"),
                };
                let stored = store.reserve_once(&ws, &key, &hold, now).await.unwrap();
                let modelled = book.hold(credits(n), now);
                assert_eq!(stored.is_ok(), modelled.is_ok(), "hold of {n} at {now}");
                if let (Ok(receipt), Ok(holds)) = (stored, modelled) {
                    open.push((receipt.reservation_id, holds));
                }
            }
            settle_or_release if !open.is_empty() => {
                let (id, holds) = open.remove(next(open.len() as i64) as usize);
                let actual = (settle_or_release == 4).then(|| credits(1 + next(500)));
                let resolution = match actual {
                    Some(cost) => store.settle(&ws, &id, cost, now).await.unwrap(),
                    None => store.release(&ws, &id, now).await.unwrap(),
                };
                let charged = book.resolve(&holds, actual, now);
                assert_eq!(resolution.charged, charged, "resolving {id} at {now}");
            }
            _ => {}
        }
        let summary = store.summary(&ws, now).await.unwrap();
        assert_eq!(summary.available, book.spendable(now), "step {step}");
        assert_eq!(summary.held, book.held(), "step {step}");
        assert_eq!(summary.total, book.total(), "step {step}");
    }
    let history = store
        .reads()
        .await
        .unwrap()
        .history(
            &ws,
            &HistoryQuery {
                limit: 1_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let stored: Vec<_> = history
        .iter()
        .rev()
        .map(|e| (e.entry_type, e.amount, e.balance_after))
        .collect();
    let modelled: Vec<_> = book
        .journal
        .iter()
        .map(|e| (e.entry_type, e.amount, e.balance_after))
        .collect();
    assert_eq!(
        stored, modelled,
        "the journal matches the model entry for entry"
    );
    assert_balanced(store, &ws).await;
}
on_both_backends!(
    store_agrees_with_the_model,
    store_agrees_with_the_model_on_sqlite,
    store_agrees_with_the_model_on_postgres
);

/// People, memberships, sessions and API keys.
async fn accounts_story(store: &Store) {
    let acme = store.create_workspace("Acme AI", T0).await.unwrap();
    let globex = store.create_workspace("Globex", T0).await.unwrap();
    let email = Email::parse("Owner@Acme.test").unwrap();
    let user = store.upsert_user(&email, Some("hash-1"), T0).await.unwrap();
    assert_eq!(
        store.upsert_user(&email, None, T0).await.unwrap(),
        user,
        "the same email is the same person"
    );
    assert_eq!(
        store
            .user_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("hash-1")
    );
    store
        .set_membership(&acme, &user, Role::Member, T0)
        .await
        .unwrap();
    store
        .set_membership(&acme, &user, Role::Owner, T0)
        .await
        .unwrap();
    store
        .set_membership(&globex, &user, Role::Guest, T0)
        .await
        .unwrap();
    let memberships = store.memberships(&user).await.unwrap();
    let roles: Vec<_> = memberships
        .iter()
        .map(|m| (m.workspace.name.as_str(), m.role))
        .collect();
    assert_eq!(roles, [("Acme AI", Role::Owner), ("Globex", Role::Guest)]);

    let token = store.create_session(&user, &acme, T0, DAY).await.unwrap();
    let signed_in = |at: i64| {
        let (store, token) = (store.clone(), token.clone());
        async move { store.signed_in(&token, at).await.unwrap() }
    };
    let (session, with_memberships) = signed_in(T0 + 1).await.expect("a live session");
    assert_eq!(session.workspace_id, acme);
    assert_eq!(
        with_memberships, memberships,
        "the session brings its person's workspaces, by name"
    );
    assert!(signed_in(T0 + DAY).await.is_none(), "sessions expire");
    store
        .switch_session_workspace(&token, &globex)
        .await
        .unwrap();
    assert_eq!(signed_in(T0).await.unwrap().0.workspace_id, globex);
    store.delete_session(&token).await.unwrap();
    assert!(signed_in(T0).await.is_none());

    let key = store.create_api_key(&acme, "CI", T0).await.unwrap();
    assert_eq!(
        store.api_key_workspace(&key).await.unwrap().map(|w| w.id),
        Some(acme.clone())
    );
    assert!(store.api_key_workspace("tly_nope").await.unwrap().is_none());

    // Attempts count after they are written; one that is taken back no longer counts.
    let first = store
        .count_sign_in_attempt("att_1", &["email:x@acme.test", "client:1"], T0 - 100, T0)
        .await
        .unwrap();
    assert_eq!(first, vec![1, 1]);
    let second = store
        .count_sign_in_attempt("att_2", &["email:x@acme.test"], T0 - 100, T0 + 10)
        .await
        .unwrap();
    assert_eq!(second, vec![2]);
    store.forget_sign_in_attempt("att_2").await.unwrap();
    let third = store
        .count_sign_in_attempt("att_3", &["email:x@acme.test"], T0 + 5, T0 + 20)
        .await
        .unwrap();
    assert_eq!(
        third,
        vec![1],
        "att_1 is outside the window, att_2 was taken back"
    );
}
on_both_backends!(
    accounts_story,
    accounts_story_on_sqlite,
    accounts_story_on_postgres
);

/// Low and depleted alerts fire once per dip, re-arm when the balance recovers, and reach the
/// outbox with their cause.
async fn balance_alerts_fire_once_per_dip(store: &Store) {
    let ws = store.create_workspace("Alerts", T0).await.unwrap();
    store
        .update_workspace_settings(
            &ws,
            100,
            app::domain::BillingManagers::Admins,
            app::domain::MemberView::Balance,
        )
        .await
        .unwrap();
    store
        .grant(&ws, &grant(GrantKind::Purchased, 300, None), T0)
        .await
        .unwrap();
    let kinds = |list: Vec<tally::notifications::NotificationRecord>| {
        list.into_iter().map(|n| n.kind).collect::<Vec<_>>()
    };
    assert!(store.notifications(&ws, true, 50).await.unwrap().is_empty());

    store
        .charge(&ws, credits(150), &usage("a"), T0 + 1)
        .await
        .unwrap(); // 150 left
    store
        .charge(&ws, credits(60), &usage("b"), T0 + 2)
        .await
        .unwrap(); // 90: low
    store
        .charge(&ws, credits(40), &usage("c"), T0 + 3)
        .await
        .unwrap(); // 50: still low, no repeat
    store
        .charge(&ws, credits(50), &usage("d"), T0 + 4)
        .await
        .unwrap(); // 0: depleted
    assert_eq!(
        kinds(store.notifications(&ws, false, 50).await.unwrap()),
        ["credit_balance_depleted", "credit_balance_low"]
    );

    store
        .grant(&ws, &grant(GrantKind::Purchased, 500, None), T0 + 5)
        .await
        .unwrap(); // recovers: re-armed
    store
        .charge(&ws, credits(450), &usage("e"), T0 + 6)
        .await
        .unwrap(); // 50: low again
    let list = kinds(store.notifications(&ws, false, 50).await.unwrap());
    assert_eq!(
        list,
        [
            "credit_balance_low",
            "credit_balance_depleted",
            "credit_balance_low"
        ]
    );
    let outbox = store.pending_outbox(100).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .filter(|o| o.workspace_id == ws.as_str())
            .count(),
        3
    );
    store.mark_delivered(&outbox[0].id, T0 + 7).await.unwrap();
    assert_eq!(
        store.pending_outbox(100).await.unwrap().len(),
        outbox.len() - 1
    );

    // A member's request reaches billing managers once an hour, and not other members.
    assert!(store
        .request_credits(&ws, "member@acme.test", T0 + 8)
        .await
        .unwrap());
    assert!(!store
        .request_credits(&ws, "member@acme.test", T0 + 9)
        .await
        .unwrap());
    assert!(store
        .request_credits(&ws, "member@acme.test", T0 + 8 + 3_600_001)
        .await
        .unwrap());
    assert_eq!(
        kinds(store.notifications(&ws, true, 50).await.unwrap())
            .iter()
            .filter(|k| *k == "credit_request")
            .count(),
        2
    );
    assert!(!kinds(store.notifications(&ws, false, 50).await.unwrap())
        .contains(&"credit_request".to_owned()));
}
on_both_backends!(
    balance_alerts_fire_once_per_dip,
    balance_alerts_fire_once_per_dip_on_sqlite,
    balance_alerts_fire_once_per_dip_on_postgres
);

/// The usage chart's figures are summed by the database per UTC day, action and model: a
/// busy workspace's page reads a row per day and key, not one per charge.
async fn consumption_is_summed_per_day_and_key(store: &Store) {
    let ws = store.create_workspace("Busy", T0).await.unwrap();
    let other = store.create_workspace("Other", T0).await.unwrap();
    for w in [&ws, &other] {
        store
            .grant(w, &grant(GrantKind::Purchased, 10_000, None), T0)
            .await
            .unwrap();
    }
    let day = |at: i64| at / DAY * DAY;
    let (first, second) = (day(T0) + DAY, day(T0) + 2 * DAY);
    // Before the window, another workspace's use, and a grant: none of them count.
    store
        .charge(&ws, credits(999), &usage("old"), first - 1)
        .await
        .unwrap();
    store
        .charge(&other, credits(500), &usage("draft"), first + 1)
        .await
        .unwrap();
    store
        .grant(&ws, &grant(GrantKind::Promotional, 700, None), first + 2)
        .await
        .unwrap();
    for (at, n, action) in [
        (first + 10, 100, "draft"),
        (first + DAY - 1, 20, "draft"),
        (first + 30, 3, "image"),
        (second, 4_000, "draft"),
    ] {
        store
            .charge(&ws, credits(n), &usage(action), at)
            .await
            .unwrap();
    }
    let row = |at: i64, n: i64, action: &str| {
        (
            at,
            n,
            Some(action.to_owned()),
            Some("atlas-text-large".to_owned()),
        )
    };
    let mut rows = store
        .reads()
        .await
        .unwrap()
        .consumption_since(&ws, first)
        .await
        .unwrap()
        .rows;
    rows.sort();
    assert_eq!(
        rows,
        [
            row(first, 3, "image"),
            row(first, 120, "draft"),
            row(second, 4_000, "draft"),
        ]
    );
}
on_both_backends!(
    consumption_is_summed_per_day_and_key,
    consumption_is_summed_per_day_and_key_on_sqlite,
    consumption_is_summed_per_day_and_key_on_postgres
);

/// The trace has no foreign key to its entry, so the audit is what finds a trace row that
/// belongs to no entry of the workspace: one whose entry does not exist, or one that points
/// at another workspace's entry.
async fn the_audit_finds_trace_rows_without_their_entry(store: &Store) {
    // The journal is append-only, so each case gets workspaces of its own.
    for case in ["missing", "another workspace's"] {
        let ws = store.create_workspace("Acme AI", T0).await.unwrap();
        let other = store.create_workspace("Globex", T0).await.unwrap();
        for workspace in [&ws, &other] {
            store
                .grant(workspace, &grant(GrantKind::Purchased, 100, None), T0)
                .await
                .unwrap();
        }
        let lot: String = sqlx::query_scalar("SELECT id FROM credit_lots WHERE workspace_id = $1")
            .bind(ws.as_str())
            .fetch_one(store.pool())
            .await
            .unwrap();
        let entry: String = match case {
            "missing" => "txn_nothere".to_owned(),
            _ => sqlx::query_scalar("SELECT id FROM ledger_entries WHERE workspace_id = $1")
                .bind(other.as_str())
                .fetch_one(store.pool())
                .await
                .unwrap(),
        };
        assert_balanced(store, &ws).await;
        sqlx::query("INSERT INTO ledger_entry_lots (entry_id, lot_id, amount) VALUES ($1, $2, 0)")
            .bind(&entry)
            .bind(&lot)
            .execute(store.pool())
            .await
            .unwrap();
        let audit = store.audit(&ws).await.unwrap();
        assert!(
            !audit.traces_consistent && !audit.balanced(),
            "a trace row of a {case} entry: {audit:?}"
        );
    }
}
on_both_backends!(
    the_audit_finds_trace_rows_without_their_entry,
    the_audit_finds_trace_rows_without_their_entry_on_sqlite,
    the_audit_finds_trace_rows_without_their_entry_on_postgres
);
