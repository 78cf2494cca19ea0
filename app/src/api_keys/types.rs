use crate::billing::Viewer;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An API key as the page shows it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    #[serde(deserialize_with = "crate::codec::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::codec::utc_option")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::codec::utc_option")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The page's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeysPage {
    pub viewer: Viewer,
    /// Newest first, revoked ones included.
    pub keys: Vec<ApiKeyView>,
}

/// A key just made, with its secret: in this answer only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub key: ApiKeyView,
    pub secret: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key", &self.key)
            .field("secret", &"[hidden]")
            .finish()
    }
}
