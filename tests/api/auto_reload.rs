//! Auto-reload over HTTP and through its job: one reload per dip, the first top-up when it is
//! turned on below the threshold, declines and the pause, and the monthly cap.

use crate::fixture::{usage, Fixture, PASSWORD};
use crate::support::buying::{balance, open_team_checkout, pay, wait_for, with_packs};
use crate::support::get_text;
use app::domain::{Credits, PurchaseStatus};
use chrono::TimeZone;

const HOUR: i64 = 3_600_000;

async fn save(
    f: &Fixture,
    client: &reqwest::Client,
    enabled: bool,
    threshold: &str,
    target: &str,
    cap: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("threshold", threshold),
        ("target", target),
        ("monthly_cap", cap),
    ];
    if enabled {
        form.push(("enabled", "on"));
    }
    client
        .post(f.app.url("/api/save_auto_reload"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn reload_count(f: &Fixture, status: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM auto_reload_attempts WHERE workspace_id = $1 AND status = $2",
    )
    .bind(f.acme.as_str())
    .bind(status)
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn a_dip_below_the_threshold_reloads_once_toward_the_target() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4242424242424242").await;
    let saved = save(&f, &owner, true, "5000", "20000", "100").await;
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());

    // Many spends cross the threshold; one reload is queued.
    f.spend_to(6_000).await;
    for _ in 0..10 {
        let now = f.app.now();
        f.app
            .store
            .charge(&f.acme, Credits::new(150).unwrap(), &usage(2), now)
            .await
            .unwrap();
    }
    assert_eq!(balance(&f.app, &f.acme).await, 4_500);
    assert_eq!(reload_count(&f, "queued").await, 1);
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 1);
    assert_eq!(reload_count(&f, "succeeded").await, 1);
    // 20,000 − 4,500 = 15,500, rounded up to whole 1,000s.
    assert_eq!(balance(&f.app, &f.acme).await, 4_500 + 16_000);
    assert_eq!(
        f.app.payments.process_reloads().await.unwrap(),
        0,
        "nothing else queued"
    );
    let notes = f.app.store.notifications(&f.acme, true, 20).await.unwrap();
    assert!(notes
        .iter()
        .any(|n| n.kind == "credit_auto_recharge_triggered"));
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());

    // Members may not change it.
    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    assert_eq!(
        save(&f, &member, false, "5000", "20000", "100")
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn turning_it_on_below_the_threshold_tops_up_first() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4242424242424242").await;
    f.spend_to(1_000).await;
    let saved = save(&f, &owner, true, "5000", "20000", "100").await;
    assert_eq!(saved.status(), 200);
    let message = saved.text().await.unwrap();
    assert!(message.contains("added 19,000 credits first"), "{message}");
    assert_eq!(balance(&f.app, &f.acme).await, 20_000);
    let settings = f
        .app
        .store
        .auto_reload_settings(&f.acme)
        .await
        .unwrap()
        .unwrap();
    assert!(settings.settings.enabled);
}

#[tokio::test]
async fn a_declining_card_is_not_saved_as_on_and_three_declines_pause_it() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4000000000000341").await;
    let before = balance(&f.app, &f.acme).await;
    f.spend_to(100).await;
    // Below the threshold: the first top-up is declined, so nothing is saved.
    let refused = save(&f, &owner, true, "500", "5000", "100").await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("not turned on"));
    assert!(f
        .app
        .store
        .auto_reload_settings(&f.acme)
        .await
        .unwrap()
        .is_none());
    assert_eq!(balance(&f.app, &f.acme).await, 100);
    assert!(before > 100);

    // Saved while above the threshold, then three dips decline three times: paused.
    f.app
        .store
        .grant(
            &f.acme,
            &crate::fixture::grant(app::domain::GrantKind::Promotional, 10_000, None),
            f.app.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        save(&f, &owner, true, "500", "5000", "100").await.status(),
        200
    );
    let declined_before = reload_count(&f, "failed").await;
    for round in 1..=3 {
        f.spend_to(400).await;
        assert_eq!(
            f.app.payments.process_reloads().await.unwrap(),
            1,
            "round {round}"
        );
        assert_eq!(reload_count(&f, "failed").await, declined_before + round);
        // Back above the line for the next dip.
        top_up(&f).await;
        if round < 3 {
            // The card is left alone for an hour after the first decline, two after the
            // second: a dip a minute before that time is up does not try it.
            let wait = [HOUR, 2 * HOUR][round as usize - 1];
            f.app.clock.advance(wait - 60_000);
            f.spend_to(400).await;
            f.app.payments.process_reloads().await.unwrap();
            let last = f
                .app
                .store
                .last_reload_attempt(&f.acme)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(last.status.as_str(), "skipped", "round {round}");
            assert!(last.reason.unwrap().contains("waits before trying"));
            top_up(&f).await;
            // The waiting time passes.
            f.app.clock.advance(60_000 + 1_000);
        }
    }
    let settings = f
        .app
        .store
        .auto_reload_settings(&f.acme)
        .await
        .unwrap()
        .unwrap();
    assert!(settings.paused);
    f.spend_to(400).await;
    assert_eq!(
        f.app.payments.process_reloads().await.unwrap(),
        0,
        "paused: nothing queued"
    );
    let notes = f.app.store.notifications(&f.acme, true, 50).await.unwrap();
    assert!(notes.iter().any(|n| n.title == "Auto-reload is paused"));
}

#[tokio::test]
async fn the_cap_holds_within_a_month_and_resets_on_the_first_at_midnight_utc() {
    let f = Fixture::new().await;
    // The last day of a month, late evening UTC.
    let eve = chrono::Utc
        .with_ymd_and_hms(2026, 11, 30, 23, 0, 0)
        .unwrap()
        .timestamp_millis();
    f.app.clock.set(eve);
    let owner = f.owner_with_card("4242424242424242").await;
    // Room for two 16,000-credit reloads ($19.20 each) a month, not three; with a manual
    // $22.50 purchase counted, not even two.
    assert_eq!(
        save(&f, &owner, true, "5000", "20000", "45").await.status(),
        200
    );
    f.spend_to(4_999).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(reload_count(&f, "succeeded").await, 1);
    // A manual purchase does not count toward the cap.
    let (purchase, page) = open_team_checkout(&f.app, &owner).await;
    pay(&page, "4242424242424242").await;
    wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Succeeded).await;

    f.app.clock.advance(60_000);
    f.spend_to(4_000).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(
        reload_count(&f, "succeeded").await,
        2,
        "the manual purchase left room for the second reload"
    );
    f.app.clock.advance(60_000);
    f.spend_to(4_000).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(
        reload_count(&f, "skipped").await,
        1,
        "the cap stops the third reload"
    );
    let last = f
        .app
        .store
        .last_reload_attempt(&f.acme)
        .await
        .unwrap()
        .unwrap();
    assert!(last.reason.unwrap().contains("cap"));

    // 00:00 UTC on the 1st: a new month, a new cap.
    f.app.clock.set(
        chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis(),
    );
    f.spend_to(3_000).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(reload_count(&f, "succeeded").await, 3);
    assert_eq!(balance(&f.app, &f.acme).await, 3_000 + 17_000);
}

/// A promotional grant that lifts the balance above the line again.
async fn top_up(f: &Fixture) {
    f.app
        .store
        .grant(
            &f.acme,
            &crate::fixture::grant(app::domain::GrantKind::Promotional, 1_000, None),
            f.app.now(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_reload_the_bank_wants_confirmed_is_confirmed_by_a_billing_manager() {
    let f = Fixture::new().await;
    let card = "4000002760003184";
    with_packs(&f.app).await;
    let owner = f.app.sign_in("owner@acme.test", PASSWORD).await;
    let (first, page) = open_team_checkout(&f.app, &owner).await;
    // At the checkout the cardholder is present and confirms, so this pays.
    assert_eq!(pay(&page, card).await.status(), 303);
    wait_for(&f.app, &first, |p| p.status == PurchaseStatus::Succeeded).await;
    assert_eq!(
        save(&f, &owner, true, "5000", "20000", "100")
            .await
            .status(),
        200
    );

    f.spend_to(4_000).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(reload_count(&f, "requires_action").await, 1);
    assert_eq!(
        balance(&f.app, &f.acme).await,
        4_000,
        "nothing charged off-session"
    );
    let notes = f.app.store.notifications(&f.acme, true, 20).await.unwrap();
    assert!(notes
        .iter()
        .any(|n| n.title == "Confirm an Auto-reload payment"));
    // While it waits, no other reload starts.
    f.spend_to(3_000).await;
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 0);

    let member = f.app.sign_in("member@acme.test", PASSWORD).await;
    let refused = member
        .post(f.app.url("/api/confirm_reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let opened: serde_json::Value = owner
        .post(f.app.url("/api/confirm_reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = opened["url"].as_str().unwrap();
    let purchase = opened["purchase_id"].as_str().unwrap().to_owned();
    assert_eq!(pay(page, card).await.status(), 303);
    wait_for(&f.app, &purchase, |p| p.status == PurchaseStatus::Succeeded).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(reload_count(&f, "succeeded").await, 1);
    assert_eq!(balance(&f.app, &f.acme).await, 3_000 + 16_000);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

#[tokio::test]
async fn reloads_charge_the_saved_card_the_billing_manager_chose() {
    let f = Fixture::new().await;
    // Two saved cards: the Visa (default, saved first) and a Mastercard.
    let owner = f.owner_with_card("4242424242424242").await;
    let (second, page) = open_team_checkout(&f.app, &owner).await;
    pay(&page, "5555555555554444").await;
    wait_for(&f.app, &second, |p| p.status == PurchaseStatus::Succeeded).await;
    let customer = f.app.store.stripe_customer(&f.acme).await.unwrap().unwrap();
    let cards = f.app.payments.gateway().cards(&customer).await.unwrap();
    assert_eq!(cards.len(), 2, "{cards:?}");
    let mastercard = cards.iter().find(|c| c.last4 == "4444").unwrap();
    assert!(!mastercard.is_default);

    // The form lists both, the default preselected.
    let page = get_text(&owner, f.app.url("/billing")).await;
    assert!(page.contains("Card to charge"), "no card chooser");
    assert!(page.contains("Visa •••• 4242 (default)") && page.contains("Mastercard •••• 4444"));

    // An id that is not one of this workspace's cards is refused and nothing is saved.
    let mut form = vec![
        ("enabled", "on"),
        ("threshold", "5000"),
        ("target", "20000"),
        ("monthly_cap", "100"),
        ("payment_method", "pm_someone_elses"),
    ];
    let refused = owner
        .post(f.app.url("/api/save_auto_reload"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("not saved for this workspace"));
    assert!(f
        .app
        .store
        .auto_reload_settings(&f.acme)
        .await
        .unwrap()
        .is_none());

    // The Mastercard chosen: the next reload charges it, not the default Visa.
    form[4].1 = &mastercard.id;
    let saved = owner
        .post(f.app.url("/api/save_auto_reload"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200, "{}", saved.text().await.unwrap());
    let record = f
        .app
        .store
        .auto_reload_settings(&f.acme)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.payment_method_id.as_deref(),
        Some(mastercard.id.as_str())
    );

    // Saving again without a choice keeps the chosen card.
    assert_eq!(
        save(&f, &owner, true, "5000", "20000", "100")
            .await
            .status(),
        200
    );
    f.spend_to(4_000).await;
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 1);
    let last = f
        .app
        .store
        .last_reload_attempt(&f.acme)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.status.as_str(), "succeeded");
    let reload = f
        .app
        .store
        .purchase_by_id(last.purchase_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reload.payment_method.as_deref(),
        Some("Mastercard •••• 4444")
    );
    assert_eq!(balance(&f.app, &f.acme).await, 20_000);
}

#[tokio::test]
async fn a_reload_cut_off_after_its_charge_is_taken_up_again_and_charges_once() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4242424242424242").await;
    assert_eq!(
        save(&f, &owner, true, "5000", "20000", "100")
            .await
            .status(),
        200
    );
    f.spend_to(4_000).await;
    let pool = f.app.store.pool();
    // The instance stops right after the card is charged, before it writes the answer down
    // (here: marking the purchase paid fails, as a crash at that moment would leave it).
    sqlx::query(
        "CREATE TRIGGER cut_off BEFORE UPDATE OF status ON purchases WHEN NEW.status = 'succeeded' \
         BEGIN SELECT RAISE(ABORT, 'the instance stopped'); END",
    )
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 1);
    assert_eq!(reload_count(&f, "charging").await, 1);
    assert_eq!(balance(&f.app, &f.acme).await, 4_000);
    sqlx::query("DROP TRIGGER cut_off")
        .execute(pool)
        .await
        .unwrap();
    // While its lease lasts, nobody takes it up; after, another run does, with the same
    // idempotency key.
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 0);
    f.app.clock.advance(2 * 60_000 + 1_000);
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 1);
    assert_eq!(reload_count(&f, "succeeded").await, 1);
    assert_eq!(balance(&f.app, &f.acme).await, 20_000);
    // The card was charged once: one payment for the reload's purchase at Stripe.
    let attempt = f
        .app
        .store
        .last_reload_attempt(&f.acme)
        .await
        .unwrap()
        .unwrap();
    let purchase = attempt.purchase_id.unwrap();
    let (intents,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM stripe_emulator_objects WHERE kind = 'payment_intent' AND body LIKE $1",
    )
    .bind(format!("%{purchase}%"))
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(intents, 1);
    assert!(f.app.store.audit(&f.acme).await.unwrap().balanced());
}

/// Saves Auto-reload in a mode other than the target: `field` is that mode's one field.
async fn save_mode(
    f: &Fixture,
    client: &reqwest::Client,
    mode: &str,
    field: (&str, &str),
    threshold: &str,
    cap: &str,
) -> reqwest::Response {
    client
        .post(f.app.url("/api/save_auto_reload"))
        .form(&[
            ("enabled", "on"),
            ("threshold", threshold),
            ("mode", mode),
            field,
            ("monthly_cap", cap),
        ])
        .send()
        .await
        .unwrap()
}

/// The purchases Auto-reload made, newest first.
async fn reload_purchases(f: &Fixture) -> Vec<tally::payments::PurchaseRecord> {
    let all = f.app.purchases(&f.acme).await;
    all.into_iter()
        .filter(|p| p.created_by == "Auto-reload")
        .collect()
}

async fn dip_and_reload(f: &Fixture, left: i64) {
    f.spend_to(left).await;
    assert_eq!(reload_count(f, "queued").await, 1, "one reload per dip");
    assert_eq!(f.app.payments.process_reloads().await.unwrap(), 1);
}

#[tokio::test]
async fn a_fixed_reload_buys_the_same_amount_at_every_dip() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4242424242424242").await;
    // The threshold may not be above the amount: such a reload could leave it below.
    let refused = save_mode(
        &f,
        &owner,
        "fixed",
        ("fixed_credits", "10000"),
        "10001",
        "100",
    )
    .await;
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("threshold must not be above what one reload buys"));
    let refused = save_mode(
        &f,
        &owner,
        "fixed",
        ("fixed_credits", "10500"),
        "5000",
        "100",
    )
    .await;
    assert_eq!(refused.status(), 400, "not a whole custom amount");

    let saved = save_mode(
        &f,
        &owner,
        "fixed",
        ("fixed_credits", "10000"),
        "5000",
        "100",
    )
    .await;
    let status = saved.status();
    let message = saved.text().await.unwrap();
    assert_eq!(status, 200, "{message}");
    assert!(
        message.contains("buys 10,000 credits for $12.00 USD"),
        "{message}"
    );
    for left in [4_500, 100] {
        dip_and_reload(&f, left).await;
        assert_eq!(balance(&f.app, &f.acme).await, left + 10_000);
    }
    let reloads: Vec<_> = reload_purchases(&f)
        .await
        .into_iter()
        .map(|p| (p.credits, p.bonus_credits, p.amount_minor))
        .collect();
    assert_eq!(reloads, [(10_000, 0, 1_200), (10_000, 0, 1_200)]);
    let view = f.app.get_json(&owner, "/api/billing/credits").await;
    assert_eq!(view["auto_reload"]["mode"], "fixed");
    assert_eq!(view["auto_reload"]["fixed_credits"], 10_000);
    assert!(view["auto_reload"]["target_balance"].is_null());
}

#[tokio::test]
async fn a_pack_reload_buys_the_pack_with_its_bonus_and_stops_when_the_pack_is_withdrawn() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4242424242424242").await;
    let saved = save_mode(&f, &owner, "pack", ("pack_id", "pack_team"), "5000", "50").await;
    let status = saved.status();
    let message = saved.text().await.unwrap();
    assert_eq!(status, 200, "{message}");
    assert!(
        message.contains("the Team pack: 25,000 credits and 2,500 bonus credits for $22.50 USD"),
        "{message}"
    );
    dip_and_reload(&f, 4_000).await;
    assert_eq!(balance(&f.app, &f.acme).await, 4_000 + 27_500);
    let reload = reload_purchases(&f).await.remove(0);
    assert_eq!(
        (reload.credits, reload.bonus_credits, reload.amount_minor),
        (25_000, 2_500, 2_250)
    );
    assert_eq!(reload.pack_id.as_deref(), Some("pack_team"));

    // $22.50 of a $50.00 cap is spent: a second pack fits, a third would not.
    dip_and_reload(&f, 4_000).await;
    f.spend_to(4_000).await;
    f.app.payments.process_reloads().await.unwrap();
    assert_eq!(balance(&f.app, &f.acme).await, 4_000, "the cap holds");
    assert_eq!(reload_count(&f, "skipped").await, 1);

    // A pack no longer on sale is refused when saved, and a reload due then says why.
    let mut team = tally::demo::demo_packs(f.app.now())
        .into_iter()
        .find(|p| p.id == "pack_team")
        .unwrap();
    team.active = false;
    f.app.store.upsert_pack(&team, f.app.now()).await.unwrap();
    let refused = save_mode(&f, &owner, "pack", ("pack_id", "pack_team"), "5000", "50").await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("no longer on sale"));
}

#[tokio::test]
async fn a_mode_without_its_field_is_refused_with_a_reason() {
    let f = Fixture::new().await;
    let owner = f.owner_with_card("4242424242424242").await;
    for (mode, needle) in [
        ("pack", "Choose the pack"),
        ("fixed", "Credits to buy each time"),
        ("everything", "Choose what each reload buys"),
    ] {
        let refused = save_mode(&f, &owner, mode, ("unused", "1"), "5000", "100").await;
        assert_eq!(refused.status(), 400, "{mode}");
        let body = refused.text().await.unwrap();
        assert!(body.contains(needle), "{mode}: {body}");
    }
}
