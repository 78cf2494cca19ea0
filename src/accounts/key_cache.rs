//! The workspaces of recently used API keys, remembered per instance for a few seconds, and
//! forgotten at once when a key is revoked anywhere.
//!
//! On PostgreSQL a revocation is announced on the `tally_api_key_revoked` channel
//! (`pg_notify`, see `Store::revoke_api_key`) and every instance listens: each forgets the key
//! as the announcement arrives. An instance that is not listening (before its listener is
//! connected, or after the connection dropped, until it is back) remembers nothing and reads
//! every key from the database, so a revocation is never missed. On SQLite, where one instance
//! serves the file, the instance that revokes forgets the key itself.

use super::ApiKeyHolder;
use crate::clock::Clock;
use crate::db::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    entries: Arc<Mutex<HashMap<String, (ApiKeyHolder, Instant)>>>,
    /// When this instance last wrote each key's use down.
    noted: Arc<Mutex<HashMap<String, Instant>>>,
    /// Uses to write down, by the writer [`ApiKeyCache::write_uses`] starts.
    uses: Arc<PendingUses>,
    /// Whether revocations elsewhere reach this instance, so remembered keys can be trusted.
    hears_revocations: Arc<AtomicBool>,
    ttl: Duration,
}

/// The PostgreSQL channel revocations are announced on; the payload is the key's hash.
pub const REVOCATION_CHANNEL: &str = "tally_api_key_revoked";

/// How often one instance writes down that a key is in use.
const USE_NOTE_EVERY: Duration = Duration::from_secs(60);

/// How long uses wait to be written together: a thousand keys seen in the same second cost
/// one statement, not a thousand (each a write beside the gate's on SQLite's one writer).
const USE_WRITE_GATHER: Duration = Duration::from_millis(250);

/// Key uses waiting to be written down, and the writer's wake-up.
#[derive(Debug, Default)]
struct PendingUses {
    hashes: Mutex<Vec<String>>,
    wake: tokio::sync::Notify,
}

impl Default for ApiKeyCache {
    fn default() -> Self {
        ApiKeyCache {
            entries: Arc::default(),
            noted: Arc::default(),
            uses: Arc::default(),
            hears_revocations: Arc::new(AtomicBool::new(true)),
            ttl: API_KEY_TTL,
        }
    }
}

impl ApiKeyCache {
    /// The key with this hash and its workspace, if it was looked up within the TTL (and
    /// revocations elsewhere are heard).
    pub fn get(&self, hash: &str) -> Option<ApiKeyHolder> {
        if !self.hears_revocations.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(holder, _)| holder.clone())
    }

    /// Notes a use of the key with this hash: the first in a minute on this instance is
    /// written down in the background, with the others of the moment, so a request never
    /// waits for it and a busy key costs no write per request.
    pub fn note_use(&self, hash: &str) {
        {
            let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
            if noted
                .get(hash)
                .is_some_and(|at| at.elapsed() < USE_NOTE_EVERY)
            {
                return;
            }
            if noted.len() >= API_KEY_CACHE_SIZE {
                noted.clear();
            }
            noted.insert(hash.to_owned(), Instant::now());
        }
        let mut pending = self.uses.hashes.lock().unwrap_or_else(|e| e.into_inner());
        // Without a writer running nothing would drain them: never more than a cache's worth.
        if pending.len() < API_KEY_CACHE_SIZE {
            pending.push(hash.to_owned());
        }
        self.uses.wake.notify_one();
    }

    /// Writes noted uses down for as long as the process runs: whenever there are some, it
    /// waits [`USE_WRITE_GATHER`] for others and writes them all in one go.
    pub fn write_uses(&self, store: Store, clock: std::sync::Arc<dyn Clock>) {
        let uses = self.uses.clone();
        tokio::spawn(async move {
            loop {
                uses.wake.notified().await;
                tokio::time::sleep(USE_WRITE_GATHER).await;
                let hashes =
                    std::mem::take(&mut *uses.hashes.lock().unwrap_or_else(|e| e.into_inner()));
                if hashes.is_empty() {
                    continue;
                }
                if let Err(err) = store.note_api_key_uses(&hashes, clock.now_ms()).await {
                    tracing::warn!(error = %err, keys = hashes.len(), "API keys' last uses were not written");
                }
            }
        });
    }

    /// Forgets the key with this hash (it was revoked).
    pub fn forget(&self, hash: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(hash);
    }

    /// Says whether revocations elsewhere are heard. Either way what is remembered is
    /// forgotten: while deaf, announcements may have been missed.
    pub fn set_hears_revocations(&self, hears: bool) {
        self.hears_revocations.store(hears, Ordering::Release);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clear();
    }

    /// Listens for revocations on PostgreSQL at `database_url` for as long as the process
    /// runs, reconnecting after a dropped connection; deaf meanwhile (see the module's note).
    pub fn listen_for_revocations(&self, database_url: String) {
        self.set_hears_revocations(false);
        let cache = self.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(200);
            loop {
                match listen(&cache, &database_url).await {
                    Ok(()) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "not hearing API key revocations; reading every key from the database")
                    }
                }
                cache.set_hears_revocations(false);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        });
    }

    /// Remembers the key with this hash and its workspace.
    pub fn put(&self, hash: String, holder: ApiKeyHolder) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= API_KEY_CACHE_SIZE {
            entries.clear();
        }
        entries.insert(hash, (holder, Instant::now()));
    }
}

/// One listening connection: trusted from the moment it listens until it fails.
async fn listen(cache: &ApiKeyCache, database_url: &str) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(database_url).await?;
    listener.listen(REVOCATION_CHANNEL).await?;
    cache.set_hears_revocations(true);
    loop {
        let note = listener.recv().await?;
        let mut entries = cache.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(note.payload());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::WorkspaceRecord;
    use app::domain::{BillingManagers, WorkspaceId};

    fn workspace(name: &str) -> ApiKeyHolder {
        ApiKeyHolder {
            key_id: "key_cached".into(),
            workspace: WorkspaceRecord {
                id: WorkspaceId::parse("ws_cachedworkspace").unwrap(),
                name: name.into(),
                billing_managers: BillingManagers::Admins,
                low_balance_threshold: 100,
                member_view: app::domain::MemberView::Balance,
            },
        }
    }

    #[test]
    fn a_found_key_is_remembered_until_its_time_is_up() {
        let cache = ApiKeyCache::default();
        assert_eq!(cache.get("hash"), None);
        cache.put("hash".into(), workspace("Acme"));
        assert_eq!(
            cache.get("hash").map(|h| h.workspace.name),
            Some("Acme".into())
        );
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
    fn a_key_s_use_is_noted_once_a_minute() {
        let cache = ApiKeyCache::default();
        cache.note_use("busy");
        cache.note_use("busy");
        cache.note_use("other");
        assert_eq!(
            *cache.uses.hashes.lock().unwrap(),
            ["busy".to_owned(), "other".to_owned()]
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
