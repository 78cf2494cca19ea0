//! The pure rules of budgets: their periods, which budgets a charge meets, which one refuses
//! it, and what a change of use announces. No I/O; property-tested below.

use crate::clock::{to_datetime, Millis};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// What a budget is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One person of the workspace (the usage call's `actor`, or the signed-in person).
    Member,
    /// One of the workspace's API keys.
    ApiKey,
    /// A project (the usage call's `resource.project`).
    Project,
    /// The whole workspace: every charge meets it.
    Workspace,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Member => "member",
            Scope::ApiKey => "api_key",
            Scope::Project => "project",
            Scope::Workspace => "workspace",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "member" => Some(Scope::Member),
            "api_key" => Some(Scope::ApiKey),
            "project" => Some(Scope::Project),
            "workspace" => Some(Scope::Workspace),
            _ => None,
        }
    }
}

/// The span a budget's use is counted over, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    Month,
    /// Never resets.
    Lifetime,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Day, Period::Week, Period::Month, Period::Lifetime];

    pub const fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Lifetime => "lifetime",
        }
    }

    pub fn parse(text: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The period that holds `now`: when it began (0 for a lifetime) and when the next one
    /// begins (never, for a lifetime).
    pub fn bounds(self, now: Millis) -> (Millis, Option<Millis>) {
        let date = to_datetime(now).date_naive();
        let (start, next) = match self {
            Period::Lifetime => return (0, None),
            Period::Day => (date, date + Duration::days(1)),
            Period::Week => {
                let monday =
                    date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Period::Month => {
                let first = date.with_day(1).unwrap_or(date);
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                (first, next.unwrap_or(first))
            }
        };
        (midnight(start), Some(midnight(next)))
    }
}

fn midnight(date: NaiveDate) -> Millis {
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .timestamp_millis()
}

/// Whether a budget refuses what passes its limit or only announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Refuse a charge or hold that would pass the limit.
    Hard,
    /// Allow it, and announce the threshold and the limit.
    Soft,
}

impl Enforcement {
    pub const fn as_str(self) -> &'static str {
        match self {
            Enforcement::Hard => "hard",
            Enforcement::Soft => "soft",
        }
    }

    pub fn parse(text: &str) -> Option<Enforcement> {
        match text {
            "hard" => Some(Enforcement::Hard),
            "soft" => Some(Enforcement::Soft),
            _ => None,
        }
    }
}

/// Who is spending, as budgets see it: the person, the API key, the project and the action
/// of a charge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spender {
    /// The member's user id, when the charge is made by or for a member of the workspace.
    pub member: Option<String>,
    pub api_key: Option<String>,
    pub project: Option<String>,
    /// What the action is (`video.generate`), for frequency caps.
    pub action: Option<String>,
}

/// A live budget and what its current period has used, as the gate sees it inside its
/// transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub budget_id: String,
    pub workspace_id: String,
    pub scope: Scope,
    /// The member's user id, the API key's id, the project's name, or the workspace's id.
    pub target: String,
    /// For a frequency cap, the action it counts (its limit and use are actions, not credits).
    pub action: Option<String>,
    pub period: Period,
    pub limit: i64,
    pub enforcement: Enforcement,
    pub threshold_percent: i64,
    pub period_start: Millis,
    pub resets_at: Option<Millis>,
    /// Credits charged in this period.
    pub used: i64,
    /// Credits held in this period by actions in progress.
    pub held: i64,
    pub threshold_noted: bool,
    pub exhausted_noted: bool,
}

impl Standing {
    /// Whether a charge by `spender` counts against this budget (a frequency cap: only a
    /// charge of its action).
    pub fn applies_to(&self, spender: &Spender) -> bool {
        let who = match self.scope {
            Scope::Member => &spender.member,
            Scope::ApiKey => &spender.api_key,
            Scope::Project => &spender.project,
            Scope::Workspace => return self.action_matches(spender),
        };
        who.as_deref() == Some(self.target.as_str()) && self.action_matches(spender)
    }

    fn action_matches(&self, spender: &Spender) -> bool {
        match &self.action {
            None => true,
            Some(action) => spender.action.as_deref() == Some(action.as_str()),
        }
    }

    /// What a charge of `credits` adds to this budget's use: the credits, or one action for
    /// a frequency cap.
    pub fn units(&self, credits: i64) -> i64 {
        if self.action.is_some() {
            1
        } else {
            credits
        }
    }
}

/// The limit that refused a charge: which budget, and where its period stood.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitHit {
    pub budget_id: String,
    pub scope: Scope,
    /// Set for a frequency cap: the action it counts (and `limit`, `used`, `required` are
    /// actions).
    #[serde(default)]
    pub action: Option<String>,
    pub period: Period,
    pub limit: i64,
    /// Charged and held in this period before the refused charge.
    pub used: i64,
    /// What the refused charge needed.
    pub required: i64,
    pub resets_at: Option<Millis>,
}

/// The first hard budget among `standings` that a charge of `cost` would take past its
/// limit. Held credits count as used: a hold is a promise to spend.
pub fn refusal<'a>(
    standings: impl IntoIterator<Item = &'a Standing>,
    cost: i64,
) -> Option<LimitHit> {
    standings
        .into_iter()
        .find(|s| s.enforcement == Enforcement::Hard && s.used + s.held + s.units(cost) > s.limit)
        .map(|s| LimitHit {
            budget_id: s.budget_id.clone(),
            scope: s.scope,
            action: s.action.clone(),
            period: s.period,
            limit: s.limit,
            used: s.used + s.held,
            required: s.units(cost),
            resets_at: s.resets_at,
        })
}

impl LimitHit {
    /// A sentence saying which budget refused, what it has left and when it resets, with
    /// amounts of credits in `unit` (a frequency cap counts actions).
    pub fn sentence(&self, unit: &app::domain::CreditUnit) -> String {
        let count = |n: i64| {
            app::domain::Credits::new(n.max(0))
                .unwrap_or_default()
                .to_string()
        };
        let credits = |n: i64| unit.figure(app::domain::Credits::new(n.max(0)).unwrap_or_default());
        let whose = match self.scope {
            Scope::Member => "your",
            Scope::ApiKey => "this API key's",
            Scope::Project => "this project's",
            Scope::Workspace => "the workspace's",
        };
        let period = match self.period {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Lifetime => "lifetime",
        };
        let resets = self
            .resets_at
            .map(|t| {
                format!(
                    "; it resets at {}",
                    to_datetime(t).format("%Y-%m-%d %H:%M UTC")
                )
            })
            .unwrap_or_default();
        match &self.action {
            Some(action) => format!(
                "{} allows {} {action} {}; {} used{resets}.",
                format!("{whose} {period} limit")
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
                    .collect::<String>(),
                count(self.limit),
                if self.limit == 1 { "action" } else { "actions" },
                count(self.used),
            ),
            None => format!(
                "This action needs {} and {whose} {period} budget has {} of {} left{resets}.",
                unit.amount(app::domain::Credits::new(self.required.max(0)).unwrap_or_default()),
                credits(self.limit - self.used),
                credits(self.limit),
            ),
        }
    }
}

/// The use at which a budget's threshold is reached: `percent` of `limit`, rounded up, and
/// never below one credit.
pub fn threshold_line(limit: i64, percent: i64) -> i64 {
    let line = (i128::from(limit) * i128::from(percent) + 99) / 100;
    i64::try_from(line).unwrap_or(i64::MAX).max(1)
}

/// What a budget's period announces after its charged credits became `used`: the threshold
/// and the exhaustion, each once per period (`*_noted` say which were announced already).
pub fn announcements(
    limit: i64,
    percent: i64,
    used: i64,
    threshold_noted: bool,
    exhausted_noted: bool,
) -> (bool, bool) {
    let exhausted = !exhausted_noted && used >= limit;
    // Reaching the limit at once says "exhausted", not both.
    let threshold = !threshold_noted
        && !exhausted
        && !exhausted_noted
        && used >= threshold_line(limit, percent);
    (threshold, exhausted)
}

/// What one charge counted against its budgets — (budget, period start, units) — as its
/// journal entry keeps it: `bud_a@1764547200000:25;bud_b@0:1`. Budget ids are letters, digits
/// and `_`, so the separators cannot occur inside one.
pub fn encode_counts(counted: &[(String, Millis, i64)]) -> String {
    counted
        .iter()
        .map(|(budget, period_start, units)| format!("{budget}@{period_start}:{units}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Reads [`encode_counts`] back; `None` when the text is not what it writes.
pub fn decode_counts(text: &str) -> Option<Vec<(String, Millis, i64)>> {
    text.split(';')
        .map(|part| {
            let (budget, rest) = part.split_once('@')?;
            let (period_start, units) = rest.split_once(':')?;
            let valid_id = !budget.is_empty()
                && budget
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid_id.then_some(())?;
            Some((
                budget.to_owned(),
                period_start.parse().ok()?,
                units.parse().ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unreadable_budget_counts_are_refused() {
        for bad in [
            "",
            "bud_a",
            "bud_a@1",
            "bud_a@x:1",
            "bud_a@1:y",
            "@1:2",
            "bud a@1:2",
            "bud_a@1:2;",
        ] {
            assert_eq!(decode_counts(bad), None, "{bad:?}");
        }
        assert_eq!(
            decode_counts("bud_a@0:25;bud_b@1764547200000:1"),
            Some(vec![
                ("bud_a".into(), 0, 25),
                ("bud_b".into(), 1_764_547_200_000, 1)
            ])
        );
    }

    const DAY: Millis = 86_400_000;

    fn at(text: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn weeks_begin_on_monday_and_months_on_the_first() {
        // 2026-12-02 is a Wednesday.
        let now = at("2026-12-02T15:30:00Z");
        assert_eq!(
            Period::Day.bounds(now),
            (at("2026-12-02T00:00:00Z"), Some(at("2026-12-03T00:00:00Z")))
        );
        assert_eq!(
            Period::Week.bounds(now),
            (at("2026-11-30T00:00:00Z"), Some(at("2026-12-07T00:00:00Z")))
        );
        assert_eq!(
            Period::Month.bounds(now),
            (at("2026-12-01T00:00:00Z"), Some(at("2027-01-01T00:00:00Z")))
        );
        assert_eq!(Period::Lifetime.bounds(now), (0, None));
    }

    fn standing(limit: i64, used: i64, held: i64, enforcement: Enforcement) -> Standing {
        Standing {
            budget_id: "bud_1".into(),
            workspace_id: "ws".into(),
            scope: Scope::Member,
            target: "usr_1".into(),
            action: None,
            period: Period::Day,
            limit,
            enforcement,
            threshold_percent: 80,
            period_start: 0,
            resets_at: Some(DAY),
            used,
            held,
            threshold_noted: false,
            exhausted_noted: false,
        }
    }

    #[test]
    fn held_credits_count_against_a_hard_budget() {
        let s = standing(100, 50, 40, Enforcement::Hard);
        assert_eq!(refusal([&s], 10), None);
        let hit = refusal([&s], 11).expect("past the limit");
        assert_eq!((hit.used, hit.required, hit.limit), (90, 11, 100));
    }

    #[test]
    fn a_soft_budget_never_refuses() {
        let s = standing(100, 100, 0, Enforcement::Soft);
        assert_eq!(refusal([&s], 1_000), None);
    }

    #[test]
    fn a_frequency_cap_counts_actions_of_its_name_only() {
        let mut cap = standing(3, 2, 0, Enforcement::Hard);
        cap.action = Some("video.generate".into());
        let mut spender = Spender {
            member: Some("usr_1".into()),
            action: Some("video.generate".into()),
            ..Spender::default()
        };
        assert!(cap.applies_to(&spender));
        // However many credits, one action.
        assert_eq!(refusal([&cap], 10_000), None);
        cap.used = 3;
        let hit = refusal([&cap], 1).expect("the fourth is refused");
        assert_eq!(
            (hit.action.as_deref(), hit.used, hit.required),
            (Some("video.generate"), 3, 1)
        );
        assert!(
            hit.sentence(&app::domain::CreditUnit::Credits)
                .starts_with("Your daily limit allows 3 video.generate actions; 3 used"),
            "{}",
            hit.sentence(&app::domain::CreditUnit::Credits)
        );
        spender.action = Some("image.generate".into());
        assert!(!cap.applies_to(&spender), "other actions are not counted");
    }

    #[test]
    fn a_workspace_budget_meets_every_charge() {
        let mut s = standing(100, 0, 0, Enforcement::Hard);
        s.scope = Scope::Workspace;
        s.target = "ws".into();
        assert!(s.applies_to(&Spender::default()));
    }

    #[test]
    fn a_budget_applies_only_to_its_own_target() {
        let s = standing(100, 0, 0, Enforcement::Hard);
        let mut spender = Spender {
            member: Some("usr_1".into()),
            ..Spender::default()
        };
        assert!(s.applies_to(&spender));
        spender.member = Some("usr_2".into());
        assert!(!s.applies_to(&spender));
        // A project named like the member is another scope.
        spender = Spender {
            project: Some("usr_1".into()),
            ..Spender::default()
        };
        assert!(!s.applies_to(&spender));
    }

    fn period() -> impl Strategy<Value = Period> {
        prop::sample::select(Period::ALL.to_vec())
    }

    proptest! {
        /// What a charge counted reads back from its journal entry exactly.
        #[test]
        fn budget_counts_read_back_as_written(
            counted in proptest::collection::vec(
                ("bud_[a-z0-9]{1,20}", 0i64..4_102_444_800_000, 0i64..1_000_000_000_000),
                1..6,
            )
        ) {
            let text = encode_counts(&counted);
            prop_assert_eq!(decode_counts(&text), Some(counted));
        }

        /// Every instant lies in exactly one period, which starts at midnight UTC and is
        /// followed at once by the next.
        #[test]
        fn periods_tile_time(now in 0_i64..4_102_444_800_000, p in period()) {
            let (start, next) = p.bounds(now);
            prop_assert!(start <= now);
            prop_assert_eq!(start % DAY, 0);
            if let Some(next) = next {
                prop_assert!(now < next);
                prop_assert_eq!(p.bounds(next - 1).0, start);
                prop_assert_eq!(p.bounds(next).0, next);
                prop_assert!(next - start >= DAY && next - start <= 31 * DAY);
            }
        }

        /// A hard budget never lets use pass its limit, however charges arrive.
        #[test]
        fn a_hard_budget_is_never_passed(limit in 1_i64..500, costs in prop::collection::vec(1_i64..80, 1..60)) {
            let mut s = standing(limit, 0, 0, Enforcement::Hard);
            let mut accepted = 0;
            for cost in costs {
                if refusal([&s], cost).is_none() {
                    s.used += cost;
                    accepted += 1;
                }
                prop_assert!(s.used <= limit);
            }
            prop_assert!(accepted == 0 || s.used > 0);
        }

        /// Each announcement happens at most once per period, and exhaustion exactly when
        /// use reaches the limit.
        #[test]
        fn announcements_happen_once(limit in 1_i64..500, percent in 1_i64..=100, costs in prop::collection::vec(1_i64..80, 1..60)) {
            let (mut used, mut threshold_noted, mut exhausted_noted) = (0, false, false);
            let (mut thresholds, mut exhaustions) = (0, 0);
            for cost in costs {
                used += cost;
                let (t, e) = announcements(limit, percent, used, threshold_noted, exhausted_noted);
                thresholds += i32::from(t);
                exhaustions += i32::from(e);
                threshold_noted |= t;
                exhausted_noted |= e;
            }
            prop_assert!(thresholds <= 1 && exhaustions <= 1);
            prop_assert_eq!(exhaustions == 1, used >= limit);
            if used >= threshold_line(limit, percent) {
                prop_assert_eq!(thresholds + exhaustions >= 1, true);
            }
        }
    }
}
