use crate::billing::Viewer;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One notification in the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    pub kind: String,
    pub title: String,
    pub body: String,
    #[serde(deserialize_with = "crate::codec::utc")]
    pub created_at: DateTime<Utc>,
}

/// The notifications page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationsView {
    pub viewer: Viewer,
    pub items: Vec<NotificationView>,
    /// The workspace's notification endpoint and its recent deliveries (billing managers
    /// only).
    pub endpoint: Option<EndpointView>,
}

/// Where the workspace's notifications are delivered, and how the latest deliveries went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointView {
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
    #[serde(deserialize_with = "crate::codec::utc")]
    pub at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// A saved endpoint and its signing secret, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSaved {
    pub url: Option<String>,
    pub secret: Option<String>,
}

impl std::fmt::Debug for EndpointSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointSaved")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}
