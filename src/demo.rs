//! The demo data: "Acme AI" with one person per role and a month of lively history, plus a
//! second workspace, "Acme Research", that the owner also belongs to.
//!
//! Idempotent: people and memberships are refreshed on every run, the history is written only
//! into a workspace that has none, and each run prints a fresh API key.

use crate::accounts::{password, Email};
use crate::clock::Millis;
use crate::db::Store;
use crate::ledger::{EntryMeta, LedgerError, NewGrant};
use crate::payments::subscriptions::{PlanRecord, SubscriptionRecord};
use app::domain::{
    BillingInterval, BillingManagers, Credits, EntryType, GrantKind, PlanTerms, Role,
    SubscriptionStatus, WorkspaceId,
};
use chrono::{Datelike, TimeZone, Utc};

/// The password of every demo person.
pub const DEMO_PASSWORD: &str = "tally-demo";
pub const ACME_ID: &str = "ws_acmeai0demo0000001";
pub const RESEARCH_ID: &str = "ws_acmeresearch000001";

const DAY: Millis = 86_400_000;
const HOUR: Millis = 3_600_000;

/// The people of the demo and their roles in Acme AI.
pub const PEOPLE: &[(&str, Role)] = &[
    ("owner@acme.test", Role::Owner),
    ("admin@acme.test", Role::Admin),
    ("billing@acme.test", Role::BillingAdmin),
    ("member@acme.test", Role::Member),
    ("guest@acme.test", Role::Guest),
];

/// What `tally demo` made.
pub struct Demo {
    pub acme: WorkspaceId,
    pub research: WorkspaceId,
    pub api_key: String,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("acme", &self.acme)
            .field("research", &self.research)
            .field("api_key", &"(hidden)")
            .finish()
    }
}

impl Demo {
    /// The text `tally demo` prints for people.
    pub fn describe(&self) -> String {
        let mut text = format!("Demo workspace \"Acme AI\" ({}) is ready.\nSign in at /login with password \"{DEMO_PASSWORD}\" as:\n", self.acme);
        for (email, role) in PEOPLE {
            text.push_str(&format!("  {email:<20} {}\n", role.label()));
        }
        text.push_str(&format!(
            "owner@acme.test also owns \"Acme Research\" ({}).\nAPI key for Acme AI (shown once): {}",
            self.research, self.api_key
        ));
        text
    }
}

/// Model, action and typical cost of the demo's AI actions.
const ACTIONS: &[(&str, &str, &str, i64)] = &[
    ("studio.generate", "Studio draft", "atlas-text-large", 120),
    ("chat.reply", "Assistant reply", "atlas-text-mini", 15),
    ("image.generate", "Image generation", "lumen-image-2", 80),
    ("video.generate", "Video clip", "reel-video-1", 400),
    ("audio.transcribe", "Transcription", "echo-transcribe", 45),
];
const PROJECTS: &[&str] = &["Launch campaign", "Support macros", "Product tour"];

/// Creates or refreshes the demo.
pub async fn seed(store: &Store, now: Millis) -> anyhow::Result<Demo> {
    let acme = WorkspaceId::parse(ACME_ID)?;
    let research = WorkspaceId::parse(RESEARCH_ID)?;
    store
        .create_workspace_with_id(&acme, "Acme AI", now)
        .await?;
    store
        .create_workspace_with_id(&research, "Acme Research", now)
        .await?;
    // Acme Research runs low on purpose, so its page shows the Low Balance badge.
    store
        .update_workspace_settings(
            &research,
            3_000,
            BillingManagers::Admins,
            app::domain::MemberView::Balance,
        )
        .await?;

    let hash = password::hash(DEMO_PASSWORD.to_owned()).await?;
    for (email, role) in PEOPLE {
        let user = store
            .upsert_user(&Email::parse(email)?, Some(&hash), now)
            .await?;
        store.set_membership(&acme, &user, *role, now).await?;
        if *role == Role::Owner {
            store
                .set_membership(&research, &user, Role::Owner, now)
                .await?;
        }
    }

    if store.summary(&acme, now).await?.lifetime_added == 0 {
        seed_acme(store, &acme, now).await?;
    }
    if store.summary(&research, now).await?.lifetime_added == 0 {
        seed_research(store, &research, now).await?;
    }
    for (model, label, modality, millicredits) in crate::rates::DEMO_RATES {
        let rate = app::domain::Rate {
            model: (*model).into(),
            label: (*label).into(),
            modality: *modality,
            millicredits: *millicredits,
        };
        store.set_rate(&rate, now).await?;
    }
    for pack in demo_packs(now) {
        store.upsert_pack(&pack, now).await?;
    }
    for plan in demo_plans() {
        store.upsert_plan(&plan, now).await?;
    }
    // Acme AI is on the Team plan (5 seats, monthly), whose credits the history above holds.
    let team = demo_plans().remove(0);
    store
        .apply_subscription(
            &SubscriptionRecord {
                id: "sub_demo_acme".into(),
                workspace_id: acme.clone(),
                plan: team,
                status: SubscriptionStatus::Active,
                seats: 5,
                interval: BillingInterval::Month,
                current_period_start: now - 20 * DAY,
                current_period_end: next_month_start(now),
                cancel_at_period_end: false,
            },
            None,
            now,
        )
        .await?;
    let api_key = store.create_api_key(&acme, "Demo key", now).await?;
    Ok(Demo {
        acme,
        research,
        api_key,
    })
}

fn grant(
    kind: GrantKind,
    credits: i64,
    expires_at: Option<Millis>,
    entry_type: EntryType,
    description: &str,
) -> NewGrant {
    NewGrant {
        kind,
        credits: Credits::new(credits).expect("demo amounts are valid"),
        expires_at,
        entry_type,
        source: "demo".into(),
        source_ref: None,
        note: None,
        meta: EntryMeta {
            actor: if entry_type == EntryType::Purchase {
                "owner@acme.test"
            } else {
                "operator"
            }
            .into(),
            description: description.into(),
            payment_ref: (entry_type == EntryType::Purchase).then(|| "demo".to_owned()),
            ..EntryMeta::default()
        },
    }
}

/// The first instant of the next UTC month: when this period's subscription credits lapse.
fn next_month_start(now: Millis) -> Millis {
    let today = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    let (year, month) = if today.month() == 12 {
        (today.year() + 1, 1)
    } else {
        (today.year(), today.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map_or(now + 30 * DAY, |t| t.timestamp_millis())
}

/// One movement of the demo's history, applied in time order so that the journal's order and
/// its dates agree.
enum Event {
    Grant(NewGrant),
    Charge(Credits, EntryMeta),
}

async fn seed_acme(store: &Store, ws: &WorkspaceId, now: Millis) -> anyhow::Result<()> {
    let start = now - 35 * DAY;
    let mut events = vec![
        (
            start,
            Event::Grant(grant(
                GrantKind::Purchased,
                10_000,
                None,
                EntryType::Purchase,
                "Credit pack: Team (10,000 credits)",
            )),
        ),
        (
            start + HOUR,
            Event::Grant(grant(
                GrantKind::Promotional,
                3_000,
                Some(now - 24 * DAY),
                EntryType::Grant,
                "Webinar promotion",
            )),
        ),
        (
            start + 2 * DAY,
            Event::Grant(grant(
                GrantKind::Free,
                1_000,
                Some(now + 20 * DAY),
                EntryType::Grant,
                "Welcome credits",
            )),
        ),
        (
            now - 20 * DAY,
            Event::Grant(grant(
                GrantKind::Subscription,
                5_000,
                Some(next_month_start(now)),
                EntryType::Grant,
                "Subscription credits for this period (5 paid seats)",
            )),
        ),
        (
            now - 3 * DAY,
            Event::Grant(grant(
                GrantKind::Promotional,
                1_500,
                Some(now + 4 * DAY),
                EntryType::Grant,
                "Launch promotion",
            )),
        ),
    ];

    // A month of AI actions, from a small deterministic generator so every demo looks alike.
    let mut seed: u64 = 0x5EED_7A11;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as i64
    };
    let mut at = start + 3 * HOUR;
    while at < now - HOUR {
        let (action, label, model, base) = ACTIONS[(next() % ACTIONS.len() as i64) as usize];
        let cost = base / 2 + next() % base.max(1);
        let project = PROJECTS[(next() % PROJECTS.len() as i64) as usize];
        let meta = EntryMeta {
            actor: ["owner@acme.test", "admin@acme.test", "member@acme.test"]
                [(next() % 3) as usize]
                .into(),
            description: label.into(),
            action: Some(action.into()),
            model: Some(model.into()),
            project: Some(project.into()),
            session: Some(format!("ses_{:06}", next() % 1_000_000)),
            payment_ref: None,
            member_id: None,
            api_key_id: None,
        };
        events.push((at, Event::Charge(Credits::new(cost)?, meta)));
        at += 10 * HOUR + next() % (14 * HOUR);
    }
    events.sort_by_key(|(at, _)| *at);
    for (at, event) in events {
        match event {
            Event::Grant(grant) => {
                store.grant(ws, &grant, at).await?;
            }
            Event::Charge(credits, meta) => match store.charge(ws, credits, &meta, at).await {
                Ok(_) | Err(LedgerError::Insufficient(_)) => {}
                Err(err) => return Err(err.into()),
            },
        }
    }
    Ok(())
}

async fn seed_research(store: &Store, ws: &WorkspaceId, now: Millis) -> anyhow::Result<()> {
    store
        .grant(
            ws,
            &grant(
                GrantKind::Purchased,
                2_000,
                None,
                EntryType::Purchase,
                "Credit pack: Starter (2,000 credits)",
            ),
            now - 6 * DAY,
        )
        .await?;
    store
        .grant(
            ws,
            &grant(
                GrantKind::Free,
                750,
                Some(now + 12 * DAY),
                EntryType::Grant,
                "Trial credits",
            ),
            now - 6 * DAY + HOUR,
        )
        .await?;
    for (i, cost) in [240_i64, 95, 410, 130].into_iter().enumerate() {
        let meta = EntryMeta {
            actor: "owner@acme.test".into(),
            description: "Literature summary".into(),
            action: Some("studio.generate".into()),
            model: Some("atlas-text-large".into()),
            project: Some("Field study".into()),
            ..EntryMeta::default()
        };
        store
            .charge(ws, Credits::new(cost)?, &meta, now - (5 - i as i64) * DAY)
            .await?;
    }
    Ok(())
}

/// The demo's pack catalog: larger packs cost less per credit, and the Team pack carries a
/// month-long bonus promotion.
/// The demo's plans: Team gives 1,000 credits per seat a month that lapse with the period;
/// Business gives 2,500 that roll over. Stripe prices name them in `tally_plan` metadata
/// (the test-mode emulator's `price_team_month`, `price_business_year`, …).
pub fn demo_plans() -> Vec<PlanRecord> {
    let plan = |id: &str, name: &str, per_seat: i64, rollover: bool| PlanRecord {
        id: id.into(),
        name: name.into(),
        terms: PlanTerms {
            credits_per_seat: Credits::new(per_seat).expect("demo plan credits are valid"),
            rollover,
        },
    };
    vec![
        plan("team", "Team", 1_000, false),
        plan("business", "Business", 2_500, true),
    ]
}

pub fn demo_packs(now: Millis) -> Vec<crate::payments::PackRecord> {
    const DAY: Millis = 86_400_000;
    let pack = |id: &str, name: &str, credits: i64, price_minor: i64, sort_order: i64| {
        crate::payments::PackRecord {
            id: id.into(),
            name: name.into(),
            credits,
            price_minor,
            currency: "usd".into(),
            active: true,
            bonus_credits: 0,
            bonus_starts_at: None,
            bonus_ends_at: None,
            sort_order,
        }
    };
    let mut team = pack("pack_team", "Team", 25_000, 2_250, 2);
    team.bonus_credits = 2_500;
    team.bonus_starts_at = Some(now - DAY);
    team.bonus_ends_at = Some(now + 30 * DAY);
    vec![
        pack("pack_starter", "Starter", 5_000, 500, 1),
        team,
        pack("pack_growth", "Growth", 100_000, 8_000, 3),
        pack("pack_scale", "Scale", 250_000, 17_500, 4),
    ]
}
