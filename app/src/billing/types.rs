use crate::domain::{CreditUnit, Credits, EntryType, GrantKind, Money, Role, WorkspaceId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A workspace as the switcher shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceChoice {
    pub id: WorkspaceId,
    pub name: String,
    pub role: Role,
}

/// The signed-in person, in the workspace they are looking at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// The person's own user id (for their budgets).
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub workspace: WorkspaceChoice,
    /// Every workspace the person belongs to, for the switcher.
    pub workspaces: Vec<WorkspaceChoice>,
    /// May buy credits and manage Auto-reload here (role and workspace policy).
    pub can_manage_billing: bool,
    /// A sentence saying who can buy credits in this workspace.
    pub who_can_buy: String,
    /// The host product the person came from, when they were signed in from it.
    pub back_to: Option<BackLink>,
    /// Set when the workspace shows this person only their project's pool: then Billing and
    /// Studio show the pool's figures and nothing of the workspace's balance or history.
    #[serde(default)]
    pub pool: Option<PoolLine>,
    /// The unit this deployment shows amounts in (credits, or money).
    #[serde(default)]
    pub unit: CreditUnit,
}

/// An earmarked pool as the member who works in its project sees it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLine {
    /// The project, as usage calls name it.
    #[cfg_attr(feature = "ssr", schema(example = "launch"))]
    pub project: String,
    /// Credits the pool still keeps for the project.
    pub remaining: Credits,
    /// Whether the project goes on with the shared balance once the pool is spent.
    pub overflow: bool,
}

/// A way back to the host product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackLink {
    pub url: String,
    /// The product as people know it (its address's host).
    pub label: String,
}

/// Spendable credits of one kind that share an expiry.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub kind: GrantKind,
    pub remaining: Credits,
    #[serde(deserialize_with = "crate::codec::utc_option")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a movement belongs to.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    pub action: Option<String>,
    pub model: Option<String>,
    pub project: Option<String>,
    pub session: Option<String>,
}

/// One journal entry.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// Signed: positive adds credits, negative takes them.
    pub amount: i64,
    /// The running balance of the journal after this entry (holds included).
    pub balance_after: Credits,
    #[serde(deserialize_with = "crate::codec::utc")]
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub resource: ResourceRef,
}

/// The last Auto-reload attempt.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReloadAttempt {
    /// queued, charging, succeeded, failed, skipped or requires_action.
    pub status: String,
    #[serde(deserialize_with = "crate::codec::utc")]
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    /// What it bought, once it had decided.
    pub credits: Option<Credits>,
    pub amount: Option<Money>,
}

/// Auto-reload's settings and state: the `auto_reload` of `GET /api/billing/credits` and the
/// Billing page's Auto-reload card, one value for both.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReloadView {
    pub enabled: bool,
    /// The saved settings (`None` before they are first saved).
    pub threshold: Option<Credits>,
    /// What each reload buys: `target` (refill toward `target_balance`), `fixed` (buy
    /// `fixed_credits`) or `pack` (buy the pack `pack_id`).
    #[serde(default)]
    pub mode: crate::domain::ReloadMode,
    pub target_balance: Option<Credits>,
    #[serde(default)]
    pub fixed_credits: Option<Credits>,
    #[serde(default)]
    pub pack_id: Option<String>,
    pub monthly_cap: Option<Money>,
    /// What Auto-reload spent this UTC month, reloads still being paid included.
    pub spent_this_month: Money,
    pub last_attempt: Option<AutoReloadAttempt>,
    /// Stopped after repeated declines.
    pub paused: bool,
    /// After a decline: when the card may be tried again (card networks limit retries).
    #[serde(deserialize_with = "crate::codec::utc_option")]
    pub retry_at: Option<DateTime<Utc>>,
    /// A failed payment can be tried again now ("Try again").
    pub can_try_again: bool,
    /// The card reloads charge ("Visa •••• 4242"); only for billing managers and API keys.
    pub card: Option<String>,
    /// That card's id among the saved cards; only for billing managers and API keys.
    pub card_id: Option<String>,
    /// The answer to "is it on, and why didn't it run?", in a sentence.
    pub status_line: String,
}

impl AutoReloadView {
    /// The saved settings, if there are any.
    pub fn settings(&self) -> Option<crate::domain::AutoReloadSettings> {
        use crate::domain::{ReloadAmount, ReloadMode};
        Some(crate::domain::AutoReloadSettings {
            enabled: self.enabled,
            threshold: self.threshold?,
            amount: match self.mode {
                ReloadMode::Target => ReloadAmount::Target(self.target_balance?),
                ReloadMode::Fixed => ReloadAmount::Fixed(self.fixed_credits?),
                ReloadMode::Pack => ReloadAmount::Pack(self.pack_id.clone()?),
            },
            monthly_cap: self.monthly_cap.clone()?,
        })
    }

    /// Nothing of Auto-reload, with a sentence saying why: what a member shown only their
    /// project's pool gets (Auto-reload refills the workspace's balance, not the pool).
    pub fn hidden(status_line: String) -> AutoReloadView {
        AutoReloadView {
            enabled: false,
            threshold: None,
            mode: crate::domain::ReloadMode::Target,
            target_balance: None,
            fixed_credits: None,
            pack_id: None,
            monthly_cap: None,
            spent_this_month: Money::zero(crate::domain::Currency::usd()),
            last_attempt: None,
            paused: false,
            retry_at: None,
            can_try_again: false,
            card: None,
            card_id: None,
            status_line,
        }
    }

    /// The view without the card: what people who cannot manage billing see.
    pub fn without_card(self) -> AutoReloadView {
        AutoReloadView {
            card: None,
            card_id: None,
            ..self
        }
    }
}

/// The body of `GET /api/billing/credits`, and the Credits card's data.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditsView {
    pub workspace_id: WorkspaceId,
    /// Spendable credits now (holds excluded).
    pub balance: Credits,
    /// The balance in money, where the deployment shows amounts in money
    /// (`TALLY_BALANCE_UNIT`); `null` where it shows credits. `balance` stays the count of
    /// credits either way.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(required = true))]
    pub balance_money: Option<Money>,
    /// Credits reserved by actions in progress.
    pub held: Credits,
    pub low_balance: bool,
    pub low_balance_threshold: Credits,
    pub lifetime_added: Credits,
    pub lifetime_spent: Credits,
    pub buckets: Vec<Bucket>,
    pub auto_reload: AutoReloadView,
    /// Newest first.
    pub transactions: Vec<Transaction>,
    pub next_cursor: Option<String>,
    /// The budgets that apply to the caller (their own, their API key's, and the projects'),
    /// with this period's use.
    #[serde(default)]
    pub budgets: Vec<BudgetLine>,
    /// Set when the caller is a member shown only their project's pool (the workspace's
    /// `member_view` is `pool`): `balance` is then the pool's, and the workspace's totals,
    /// buckets, Auto-reload and history are left out.
    #[serde(default)]
    pub pool: Option<PoolLine>,
}

/// A budget below the workspace, as the person or the product's server it applies to sees it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    #[cfg_attr(feature = "ssr", schema(example = "bud_01j9z3k8q4"))]
    pub id: String,
    /// `member`, `api_key`, `project` or `workspace`.
    #[cfg_attr(feature = "ssr", schema(example = "member"))]
    pub scope: String,
    /// Who or what it is on: the member's email, the key's name, the project, the workspace.
    pub label: String,
    /// For a frequency cap: the action it counts (its figures are then actions).
    #[serde(default)]
    pub action: Option<String>,
    /// `day`, `week`, `month` or `lifetime`.
    #[cfg_attr(feature = "ssr", schema(example = "day"))]
    pub period: String,
    pub limit: Credits,
    /// `hard` (refuses past the limit) or `soft` (announces it).
    #[cfg_attr(feature = "ssr", schema(example = "hard"))]
    pub enforcement: String,
    /// Charged this period.
    pub used: Credits,
    /// Held this period by actions in progress.
    pub held: Credits,
    /// What is left this period (0 once used up).
    pub remaining: Credits,
    /// When the period ends (absent for a lifetime budget).
    #[serde(deserialize_with = "crate::codec::utc_option")]
    pub resets_at: Option<DateTime<Utc>>,
}

/// The workspace's subscription plan and the credits it includes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub name: String,
    pub status: crate::domain::SubscriptionStatus,
    pub seats: u32,
    pub interval: crate::domain::BillingInterval,
    /// Credits per paid seat per month.
    pub credits_per_seat: Credits,
    /// Credits one paid invoice at the current seat count grants.
    pub credits_per_invoice: Credits,
    pub rollover: bool,
    #[serde(deserialize_with = "crate::codec::utc")]
    pub period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
}

/// Everything the Billing page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingOverview {
    pub viewer: Viewer,
    pub credits: CreditsView,
    pub usage: UsageReport,
    /// `None` when the workspace has no subscription.
    pub plan: Option<PlanView>,
}

/// Filters of the full history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryFilter {
    pub entry_type: Option<EntryType>,
    /// First day included (UTC).
    pub from: Option<NaiveDate>,
    /// Last day included (UTC).
    pub to: Option<NaiveDate>,
}

impl HistoryFilter {
    /// Reads the filter from URL query values, rejecting what does not parse.
    pub fn from_query(
        entry_type: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, String> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let entry_type = present(entry_type)
            .map(|t| EntryType::parse(t).map_err(|e| e.to_string()))
            .transpose()?;
        let date = |v: Option<&str>, name: &str| {
            present(v)
                .map(|d| {
                    NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map_err(|_| format!("{name} must be a date like 2026-11-01"))
                })
                .transpose()
        };
        let filter = HistoryFilter {
            entry_type,
            from: date(from, "from")?,
            to: date(to, "to")?,
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if from > to {
                return Err("the start date is after the end date".into());
            }
        }
        Ok(filter)
    }

    /// The filter as URL query pairs (for links and the CSV export).
    pub fn query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.entry_type {
            parts.push(format!("type={}", t.as_str()));
        }
        if let Some(d) = self.from {
            parts.push(format!("from={d}"));
        }
        if let Some(d) = self.to {
            parts.push(format!("to={d}"));
        }
        parts.join("&")
    }
}

/// One page of the full history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub viewer: Viewer,
    pub transactions: Vec<Transaction>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_filters_parse_from_the_query() {
        let filter =
            HistoryFilter::from_query(Some("consumption"), Some("2026-11-01"), Some(" ")).unwrap();
        assert_eq!(filter.entry_type, Some(EntryType::Consumption));
        assert_eq!(filter.from, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(filter.to, None);
        assert_eq!(filter.query_string(), "type=consumption&from=2026-11-01");
    }

    #[test]
    fn bad_history_filters_are_refused() {
        assert!(HistoryFilter::from_query(Some("withdrawal"), None, None).is_err());
        assert!(HistoryFilter::from_query(None, Some("01/11/2026"), None).is_err());
        assert!(HistoryFilter::from_query(None, Some("2026-11-02"), Some("2026-11-01")).is_err());
    }
}

/// How usage is broken down in the chart.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageBreakdown {
    #[default]
    Action,
    Model,
}

impl UsageBreakdown {
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("model") => UsageBreakdown::Model,
            _ => UsageBreakdown::Action,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            UsageBreakdown::Action => "action",
            UsageBreakdown::Model => "model",
        }
    }
}

/// Credits used on one UTC day, split by action or model (in the order of `UsageReport::keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    pub date: NaiveDate,
    pub total: i64,
    pub parts: Vec<i64>,
}

/// Credits used per day over the last 30 days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub by: UsageBreakdown,
    /// The largest actions or models, then "Other" when there are more.
    pub keys: Vec<String>,
    /// Oldest day first; every day of the window is present.
    pub days: Vec<UsageDay>,
    pub total: i64,
}

impl UsageReport {
    /// No use at all: for people who are not shown the workspace's.
    pub fn empty(by: UsageBreakdown) -> UsageReport {
        UsageReport {
            by,
            keys: Vec::new(),
            days: Vec::new(),
            total: 0,
        }
    }
}
