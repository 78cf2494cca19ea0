//! The workspaces of recently used API keys, remembered per instance for a few seconds.

use super::WorkspaceRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a looked-up API key is trusted before it is read from the database again.
const API_KEY_TTL: Duration = Duration::from_secs(5);

/// Keys remembered at most; a full cache is emptied rather than grown.
const API_KEY_CACHE_SIZE: usize = 10_000;

/// The workspaces of recently used API keys, by the key's hash (never the key itself).
///
/// A service calling the gate many times a second would otherwise pay a database round trip
/// per request just to be recognised. Only keys found are kept, for [`API_KEY_TTL`]: a new key
/// works at once, an unknown one is always checked, and a change to a key or to its
/// workspace's settings is seen within five seconds on every instance.
#[derive(Clone, Debug)]
pub struct ApiKeyCache {
    entries: Arc<Mutex<HashMap<String, (WorkspaceRecord, Instant)>>>,
    ttl: Duration,
}

impl Default for ApiKeyCache {
    fn default() -> Self {
        ApiKeyCache {
            entries: Arc::default(),
            ttl: API_KEY_TTL,
        }
    }
}

impl ApiKeyCache {
    /// The workspace of the key with this hash, if it was looked up within the TTL.
    pub fn get(&self, hash: &str) -> Option<WorkspaceRecord> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(workspace, _)| workspace.clone())
    }

    /// Remembers the workspace of the key with this hash.
    pub fn put(&self, hash: String, workspace: WorkspaceRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= API_KEY_CACHE_SIZE {
            entries.clear();
        }
        entries.insert(hash, (workspace, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::{BillingManagers, WorkspaceId};

    fn workspace(name: &str) -> WorkspaceRecord {
        WorkspaceRecord {
            id: WorkspaceId::parse("ws_cachedworkspace").unwrap(),
            name: name.into(),
            billing_managers: BillingManagers::Admins,
            low_balance_threshold: 100,
        }
    }

    #[test]
    fn a_found_key_is_remembered_until_its_time_is_up() {
        let cache = ApiKeyCache::default();
        assert_eq!(cache.get("hash"), None);
        cache.put("hash".into(), workspace("Acme"));
        assert_eq!(cache.get("hash").map(|w| w.name), Some("Acme".into()));
        assert_eq!(cache.get("other"), None);
        let expired = ApiKeyCache {
            ttl: Duration::ZERO,
            ..ApiKeyCache::default()
        };
        expired.put("hash".into(), workspace("Acme"));
        assert_eq!(
            expired.get("hash"),
            None,
            "an expired entry is looked up again"
        );
    }

    #[test]
    fn a_full_cache_starts_again_instead_of_growing() {
        let cache = ApiKeyCache::default();
        for i in 0..API_KEY_CACHE_SIZE {
            cache.put(format!("hash{i}"), workspace("Acme"));
        }
        cache.put("newest".into(), workspace("Newest"));
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
        assert!(cache.get("newest").is_some());
        assert!(cache.get("hash0").is_none());
    }
}
