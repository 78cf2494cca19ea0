use crate::billing::Viewer;
use crate::domain::{Credits, Rate, Role};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Why an AI action could not run, and what this person can do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insufficient {
    /// Credits spendable now.
    pub balance: i64,
    /// Credits held by actions in progress.
    pub held: i64,
    pub required: i64,
    /// The credits exist but are held by other actions in progress.
    pub held_back: bool,
    pub role: Role,
    /// `buy_credits`, `manage_auto_reload`, `ask_admin` or `ask_owner`.
    pub actions: Vec<String>,
}

/// The Rates page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesView {
    pub viewer: Viewer,
    pub rates: Vec<Rate>,
}

/// The Studio page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudioView {
    pub viewer: Viewer,
    pub rates: Vec<Rate>,
    /// `None` for guests, who see nothing of billing.
    pub balance: Option<Credits>,
}

/// A finished Studio action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub model_label: String,
    pub units: i64,
    pub unit_name: String,
    /// Credits held while the work ran.
    pub estimate: i64,
    /// Credits charged for the work actually done.
    pub charged: i64,
    pub balance: i64,
}

/// One notification in the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The notifications page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationsView {
    pub viewer: Viewer,
    pub items: Vec<NotificationView>,
    /// The workspace's webhook endpoint and recent deliveries (billing managers only).
    pub webhook: Option<WebhookView>,
}

/// Where the workspace's notifications are delivered, and how the latest deliveries went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub url: Option<String>,
    pub deliveries: Vec<DeliveryView>,
}

/// One notification's delivery to the endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub kind: String,
    /// `pending`, `delivered`, `no_endpoint` or `gave_up`.
    pub outcome: String,
    pub attempts: i64,
    pub at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// A saved endpoint and its signing secret, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSaved {
    pub url: Option<String>,
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSaved")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .finish()
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
