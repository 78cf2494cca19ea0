//! Subscription credits through the test-mode emulator's subscriptions, invoices and signed
//! events: trial to paid, seat changes, period boundaries and expiry, annual and rollover
//! plans, duplicate and late invoice events; and the operator grants API.

use crate::fixture::{Fixture, PASSWORD};
use crate::support::buying::{deliver, stored_events, stripe_api};
use crate::support::get_text;
use crate::support::TestApp;
use app::domain::{Credits, EntryType, GrantKind, WorkspaceId};
use chrono::TimeZone;
use serde_json::{json, Value};
use std::time::Duration;
use tally::payments::emulator::Emulator;

const DAY: i64 = 86_400_000;

pub(crate) fn at(y: i32, m: u32, d: u32) -> i64 {
    chrono::Utc
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// The fixture with the demo plans and a Stripe customer for Acme, at `start`.
pub(crate) async fn subscribed_fixture(app: TestApp, start: i64) -> Fixture {
    app.clock.set(start);
    let f = Fixture::with_app(app).await;
    for plan in tally::demo::demo_plans() {
        f.app.store.upsert_plan(&plan, start).await.unwrap();
    }
    let customer = f.app.payments.customer(&f.acme, "Acme AI").await.unwrap();
    // Stripe collects a subscription's invoices from the customer's default card.
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        "/payment_methods/pm_card_visa/attach",
        &[("customer", &customer)],
    )
    .await;
    f
}

/// Calls the emulator's Stripe API, as Stripe's dashboard or a billing script would.
pub(crate) async fn subscribe(f: &Fixture, price: &str, seats: &str, trial_days: &str) -> String {
    let customer = f.app.store.stripe_customer(&f.acme).await.unwrap().unwrap();
    let sub = stripe_api(
        &f.app,
        reqwest::Method::POST,
        "/subscriptions",
        &[
            ("customer", &customer),
            ("items[0][price]", price),
            ("items[0][quantity]", seats),
            ("trial_period_days", trial_days),
        ],
    )
    .await;
    sub["id"].as_str().unwrap().to_owned()
}

/// Subscription lots of the workspace: (original, remaining, expires_at), oldest first.
async fn subscription_lots(app: &TestApp, ws: &WorkspaceId) -> Vec<(i64, i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT original, remaining, expires_at FROM credit_lots WHERE workspace_id = $1 AND kind = 'subscription' ORDER BY created_at, CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, id",
    )
    .bind(ws.as_str())
    .fetch_all(app.store.pool())
    .await
    .unwrap()
}

/// How many invoices of the subscription Tally has considered.
async fn invoices_seen(app: &TestApp, subscription: &str) -> i64 {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM subscription_invoices WHERE subscription_id = $1")
            .bind(subscription)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    n
}

/// Waits until Tally has considered `n` invoices of the subscription (events arrive on
/// their own, a few milliseconds apart).
pub(crate) async fn wait_for_invoices(app: &TestApp, subscription: &str, n: i64) {
    crate::support::wait_until(&format!("{n} invoices of {subscription}"), || async {
        invoices_seen(app, subscription).await >= n
    })
    .await;
    // The subscription's own events may still be on their way.
    app.wait_for_stripe_events().await;
}

async fn advance(f: &Fixture, subscription: &str) {
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/test_helpers/subscriptions/{subscription}/advance"),
        &[],
    )
    .await;
}

async fn plan_status(f: &Fixture) -> String {
    f.app
        .subscription(&f.acme)
        .await
        .unwrap()
        .status
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn trial_to_paid_seat_changes_and_the_period_boundary() {
    let start = at(2026, 11, 1);
    let f = subscribed_fixture(TestApp::spawn().await, start).await;
    let sub = subscribe(&f, "price_team_month", "3", "14").await;
    wait_for_invoices(&f.app, &sub, 1).await;
    // Trialing: the $0 invoice grants nothing.
    assert_eq!(plan_status(&f).await, "trialing");
    assert!(subscription_lots(&f.app, &f.acme).await.is_empty());

    // The trial ends and the first paid invoice grants 3 seats × 1,000, until the period ends.
    let trial_end = start + 14 * DAY;
    f.app.clock.set(trial_end);
    advance(&f, &sub).await;
    wait_for_invoices(&f.app, &sub, 2).await;
    let period_end = at(2026, 12, 15);
    assert_eq!(
        subscription_lots(&f.app, &f.acme).await,
        [(3_000, 3_000, Some(period_end))]
    );
    assert_eq!(plan_status(&f).await, "active");

    // Every event delivered again, freshly signed: nothing more.
    let secret = Emulator::secrets(&f.app.store)
        .await
        .unwrap()
        .webhook_secret;
    for event in stored_events(&f.app).await {
        let answer = deliver(&f.app, &event, &secret, f.app.now() / 1000).await;
        assert_eq!(answer.status(), 200);
    }
    assert_eq!(subscription_lots(&f.app, &f.acme).await.len(), 1);

    // Two more seats mid-period, invoiced at once: the pro-rata invoice grants their 2,000,
    // same expiry.
    f.app.clock.set(trial_end + 10 * DAY);
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/subscriptions/{sub}"),
        &[
            ("items[0][quantity]", "5"),
            ("proration_behavior", "always_invoice"),
        ],
    )
    .await;
    wait_for_invoices(&f.app, &sub, 3).await;
    assert_eq!(
        subscription_lots(&f.app, &f.acme).await,
        [
            (3_000, 3_000, Some(period_end)),
            (2_000, 2_000, Some(period_end))
        ]
    );
    // Back down to 2 seats (Stripe's default proration: a credit for the next invoice):
    // nothing is taken back in this period.
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/subscriptions/{sub}"),
        &[("items[0][quantity]", "2")],
    )
    .await;
    f.app.wait_for_stripe_events().await;
    assert_eq!(subscription_lots(&f.app, &f.acme).await.len(), 2);
    let plan = f.app.subscription(&f.acme).await.unwrap();
    assert_eq!(plan.seats, 2);

    // Subscription credits are spent before purchased ones.
    let before = f.app.store.summary(&f.acme, f.app.now()).await.unwrap();
    let spend = f
        .app
        .store
        .charge(
            &f.acme,
            Credits::new(700).unwrap(),
            &crate::fixture::usage(1),
            f.app.now(),
        )
        .await
        .unwrap();
    let trace = f.app.store.trace(&f.acme, &spend.entry_id).await.unwrap();
    assert!(
        trace.iter().all(|t| matches!(
            t.kind,
            GrantKind::Free | GrantKind::Promotional | GrantKind::Subscription
        )),
        "{trace:?}"
    );

    // The period ends: the unspent subscription credits lapse in an expiry entry, and the
    // renewal for 2 seats grants the next month's 2,000.
    f.app.clock.set(period_end);
    let (lapsing,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(remaining - held), 0) AS BIGINT) FROM credit_lots WHERE workspace_id = $1 AND expires_at <= $2",
    )
    .bind(f.acme.as_str())
    .bind(period_end)
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    // 5,000 granted, 700 spent from them: 4,300 subscription credits lapse (and nothing else
    // of the workspace expires at this moment).
    assert_eq!(lapsing, 4_300);
    let expired = tally::jobs::sweep_expired(&f.app.store, period_end)
        .await
        .unwrap();
    assert_eq!(expired, lapsing);
    let before_renewal = f.app.store.summary(&f.acme, period_end).await.unwrap();
    assert_eq!(before_renewal.available, before.available - 700 - 4_300);
    let lots = subscription_lots(&f.app, &f.acme).await;
    assert!(
        lots.iter().all(|(_, remaining, _)| *remaining == 0),
        "{lots:?}"
    );
    advance(&f, &sub).await;
    wait_for_invoices(&f.app, &sub, 4).await;
    let lots = subscription_lots(&f.app, &f.acme).await;
    assert_eq!(lots.last(), Some(&(2_000, 2_000, Some(at(2027, 1, 15)))));
    let history = f
        .app
        .store
        .reads()
        .await
        .unwrap()
        .history(
            &f.acme,
            &tally::ledger::HistoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(history.iter().any(|e| e.entry_type == EntryType::Expiry));
    let after = f.app.store.summary(&f.acme, f.app.now()).await.unwrap();
    assert_eq!(after.available, before_renewal.available + 2_000);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());

    // The Billing page says what the plan gives and what expires when.
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let page = get_text(&owner, f.app.url("/billing")).await;
    assert!(page.contains("Team plan"), "no plan card");
    assert!(page.contains("2 paid seats, billed monthly."));
    assert!(
        page.contains("2,000 subscription credits expire on 15 Jan 2027"),
        "no upcoming expiry"
    );
    assert!(page.contains("What AI credits are not"));
}

#[tokio::test]
async fn seats_added_with_stripes_default_proration_earn_credits_from_the_renewal() {
    let start = at(2026, 11, 1);
    let f = subscribed_fixture(TestApp::spawn().await, start).await;
    let sub = subscribe(&f, "price_team_month", "3", "0").await;
    wait_for_invoices(&f.app, &sub, 1).await;
    let period_end = at(2026, 12, 1);
    assert_eq!(
        subscription_lots(&f.app, &f.acme).await,
        [(3_000, 3_000, Some(period_end))]
    );

    // Two more seats mid-period with Stripe's default: they are charged on the next invoice,
    // so nothing is granted now, though Tally knows the new count.
    f.app.clock.set(start + 10 * DAY);
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/subscriptions/{sub}"),
        &[("items[0][quantity]", "5")],
    )
    .await;
    f.app.wait_for_stripe_events().await;
    crate::support::wait_until("the new seat count", || async {
        f.app
            .subscription(&f.acme)
            .await
            .is_some_and(|s| s.seats == 5)
    })
    .await;
    assert_eq!(invoices_seen(&f.app, &sub).await, 1);
    assert_eq!(subscription_lots(&f.app, &f.acme).await.len(), 1);

    // The renewal charges the prorations of the month before beside the new month's 5 seats;
    // it grants the new month's 5 × 1,000, expiring with that month, and nothing for a
    // period already over.
    f.app.clock.set(period_end);
    tally::jobs::sweep_expired(&f.app.store, period_end)
        .await
        .unwrap();
    advance(&f, &sub).await;
    wait_for_invoices(&f.app, &sub, 2).await;
    let lots = subscription_lots(&f.app, &f.acme).await;
    assert_eq!(lots.len(), 2, "{lots:?}");
    assert_eq!(lots[1], (5_000, 5_000, Some(at(2027, 1, 1))));
    let (start_seen, seats_seen): (i64, i64) = sqlx::query_as(
        "SELECT period_start, seats FROM subscription_invoices WHERE subscription_id = $1 ORDER BY period_end DESC LIMIT 1",
    )
    .bind(&sub)
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        (start_seen, seats_seen),
        (period_end, 5),
        "the renewal's own period, not the prorations'"
    );
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn annual_plans_grant_a_year_at_once_and_rollover_plans_never_expire() {
    let start = at(2026, 11, 21);
    let f = subscribed_fixture(TestApp::spawn().await, start).await;
    let team = subscribe(&f, "price_team_year", "2", "0").await;
    wait_for_invoices(&f.app, &team, 1).await;
    assert_eq!(
        subscription_lots(&f.app, &f.acme).await,
        [(24_000, 24_000, Some(at(2027, 11, 21)))]
    );
    let business = subscribe(&f, "price_business_month", "1", "0").await;
    wait_for_invoices(&f.app, &business, 1).await;
    let lots = subscription_lots(&f.app, &f.acme).await;
    assert_eq!(
        lots[1],
        (2_500, 2_500, None),
        "rollover credits never expire"
    );
    // After the month, the rolled-over credits are still there, and the renewal adds more.
    f.app.clock.set(at(2026, 12, 21));
    tally::jobs::sweep_expired(&f.app.store, f.app.now())
        .await
        .unwrap();
    advance(&f, &business).await;
    wait_for_invoices(&f.app, &business, 2).await;
    let lots = subscription_lots(&f.app, &f.acme).await;
    assert_eq!(lots[1], (2_500, 2_500, None));
    assert_eq!(lots[2], (2_500, 2_500, None));

    // The next renewal is declined: past due, and no credits until it is paid.
    f.app.clock.set(at(2027, 1, 21));
    stripe_api(
        &f.app,
        reqwest::Method::POST,
        &format!("/test_helpers/subscriptions/{business}/advance"),
        &[("fail", "true")],
    )
    .await;
    crate::support::wait_until("the renewal to be past due", || async {
        let s = f.app.subscription(&f.acme).await.unwrap();
        s.id == business && s.status.as_str() == "past_due"
    })
    .await;
    let s = f.app.subscription(&f.acme).await.unwrap();
    assert_eq!(
        (s.id.as_str(), s.status.as_str()),
        (business.as_str(), "past_due")
    );
    assert_eq!(subscription_lots(&f.app, &f.acme).await.len(), 3);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn late_reordered_and_repeated_invoice_events_grant_once() {
    let start = at(2026, 11, 1);
    // Events are held back: the test delivers them itself, in its own order.
    let app = TestApp::spawn_with(|c| c.emulator_event_delay = Duration::from_secs(3_600)).await;
    let f = subscribed_fixture(app, start).await;
    let sub = subscribe(&f, "price_team_month", "4", "0").await;
    f.app.clock.set(at(2026, 12, 1));
    advance(&f, &sub).await;
    let secret = Emulator::secrets(&f.app.store)
        .await
        .unwrap()
        .webhook_secret;
    let invoices: Vec<Value> = stored_events(&f.app)
        .await
        .into_iter()
        .filter(|e| e["type"] == "invoice.paid")
        .collect();
    assert_eq!(invoices.len(), 2);
    let (first, renewal) =
        if invoices[0]["data"]["object"]["billing_reason"] == "subscription_create" {
            (&invoices[0], &invoices[1])
        } else {
            (&invoices[1], &invoices[0])
        };
    // The renewal arrives first, twice; then the first period's invoice, after its period
    // ended: its credits would lapse at once, so it grants nothing.
    for _ in 0..2 {
        let answer = deliver(&f.app, renewal, &secret, f.app.now() / 1000).await;
        assert_eq!(answer.status(), 200);
    }
    let answer = deliver(&f.app, first, &secret, f.app.now() / 1000).await;
    assert_eq!(answer.status(), 200);
    // The same invoice under a new event id (Stripe's retries keep the id; a resend by hand
    // does not) is still granted once.
    let mut copy = renewal.clone();
    copy["id"] = json!("evt_resent_by_hand");
    deliver(&f.app, &copy, &secret, f.app.now() / 1000).await;
    assert_eq!(
        subscription_lots(&f.app, &f.acme).await,
        [(4_000, 4_000, Some(at(2027, 1, 1)))]
    );
    assert_eq!(invoices_seen(&f.app, &sub).await, 2);
    // A forged event is refused before anything is read.
    let forged = deliver(&f.app, renewal, "whsec_wrong", f.app.now() / 1000).await;
    assert_eq!(forged.status(), 400);
}

#[tokio::test]
async fn operators_grant_credits_with_expiry_and_a_note_once_per_key() {
    let token = "operator-token-for-the-tests-0123456789";
    let app = TestApp::spawn_with(|c| c.operator_token = Some(token.into())).await;
    let f = Fixture::with_app(app).await;
    let url = f
        .app
        .url(&format!("/api/operator/workspaces/{}/grants", f.acme));
    let before = f
        .app
        .store
        .summary(&f.acme, f.app.now())
        .await
        .unwrap()
        .available;
    let expires = chrono::DateTime::from_timestamp_millis(f.app.now() + 30 * DAY)
        .unwrap()
        .to_rfc3339();
    let body = json!({"kind": "promotional", "credits": 2500, "expires_at": expires,
                      "note": "Conference promotion", "idempotency_key": "promo-2026-11"});
    let send = |body: Value, bearer: Option<&'static str>| {
        let mut request = TestApp::client().post(url.clone()).json(&body);
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        request.send()
    };
    let made = send(body.clone(), Some(token)).await.unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    assert_eq!(made["balance"], before + 2_500);
    assert_eq!(made["kind"], "promotional");
    let answered =
        chrono::DateTime::parse_from_rfc3339(made["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        answered,
        chrono::DateTime::parse_from_rfc3339(&expires).unwrap()
    );
    // A retry with the same key answers the first grant again.
    let again = send(body.clone(), Some(token)).await.unwrap();
    assert_eq!(again.status(), 200);
    // An empty expiry is a mistake, not "never": refused, not read as a replay.
    let mut empty = body.clone();
    empty["expires_at"] = json!("");
    assert_eq!(send(empty, Some(token)).await.unwrap().status(), 400);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["entry_id"], made["entry_id"]);
    assert_eq!(
        f.app
            .store
            .summary(&f.acme, f.app.now())
            .await
            .unwrap()
            .available,
        before + 2_500
    );
    // It shows as a grant with its note in the history, and as an upcoming expiry.
    let history = f
        .app
        .store
        .reads()
        .await
        .unwrap()
        .history(
            &f.acme,
            &tally::ledger::HistoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let entry = history.iter().find(|e| e.id == made["entry_id"]).unwrap();
    assert_eq!(entry.entry_type, EntryType::Grant);
    assert_eq!(entry.description, "Conference promotion");
    // The lot lapses exactly when the operator said (to the second the RFC 3339 time carries).
    let (kind, original, expires_at): (String, i64, Option<i64>) = sqlx::query_as(
        "SELECT l.kind, l.original, l.expires_at FROM credit_lots l JOIN ledger_entry_lots t ON t.lot_id = l.id WHERE t.entry_id = $1",
    )
    .bind(made["entry_id"].as_str().unwrap())
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert_eq!((kind.as_str(), original), ("promotional", 2_500));
    assert_eq!(
        expires_at,
        Some(
            chrono::DateTime::parse_from_rfc3339(&expires)
                .unwrap()
                .timestamp_millis()
        )
    );

    // Refused: bad input, the wrong token, a workspace key, no token, another kind.
    let bad = send(json!({"kind": "purchased", "credits": 5}), Some(token))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = send(
        json!({"kind": "free", "credits": 5, "expires_at": "2001-01-01T00:00:00Z"}),
        Some(token),
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        send(body.clone(), Some("not-the-operator-token-at-all"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(send(body.clone(), None).await.unwrap().status(), 401);
    let with_key = TestApp::client()
        .post(url.clone())
        .bearer_auth(&f.acme_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 401);
    let unknown = TestApp::client()
        .post(
            f.app
                .url("/api/operator/workspaces/ws_does_not_exist/grants"),
        )
        .bearer_auth(token)
        .json(&json!({"kind": "free", "credits": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // Without a token configured, the operator API does not exist.
    let plain = Fixture::new().await;
    let off = TestApp::client()
        .post(
            plain
                .app
                .url(&format!("/api/operator/workspaces/{}/grants", plain.acme)),
        )
        .bearer_auth(token)
        .json(&json!({"kind": "free", "credits": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);
}
