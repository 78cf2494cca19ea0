//! Delivers the notification outbox to each workspace's webhook endpoint.
//!
//! Notifications are written to the outbox in the transaction of their cause (see
//! [`crate::notifications`]); this job sends them. Each delivery is a `POST` of the
//! notification's JSON with `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the workspace's secret>` and `Tally-Delivery: <outbox id>` (the same on
//! every retry, so receivers can drop repeats). Delivery is at least once: an item is retried
//! until the endpoint answers 2xx, after 30 s, 1 min, 2 min, … (at most an hour apart), and
//! given up after eight tries. Before sending, an instance takes a one-minute lease on the
//! item with a compare-and-set in the database, so two instances never send it at once.

use crate::ledger::rules::Millis;
use crate::store::{new_id, Store, StoreError};
use app::domain::WorkspaceId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;
use std::time::Duration;

/// Tries before an item is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long an instance owns an item it is sending.
const LEASE_MS: Millis = 60_000;
/// Items looked at per round.
const BATCH: i64 = 50;

/// A workspace's endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub secret: String,
}

/// Why an endpoint address is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadEndpoint(pub String);

/// Checks an endpoint address: `https://`, or `http://` to this machine only (for local
/// receivers and tests), at most 500 characters, with a host.
pub fn check_url(url: &str) -> Result<String, BadEndpoint> {
    let url = url.trim();
    if url.len() > 500 {
        return Err(BadEndpoint(
            "the address is longer than 500 characters".into(),
        ));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        BadEndpoint("enter a full address such as https://example.com/hooks/tally".into())
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(BadEndpoint("the address has no valid host".into()));
    }
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match scheme {
        "https" => Ok(url.to_owned()),
        "http" if local => Ok(url.to_owned()),
        "http" => Err(BadEndpoint(
            "use https:// (plain http is only for this machine)".into(),
        )),
        _ => Err(BadEndpoint("use an https:// address".into())),
    }
}

/// The `Tally-Signature` header for `body` sent at `t` (seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// The pause after the `attempts`-th failed try: 30 s doubling, at most an hour.
pub fn retry_after(attempts: i64) -> Millis {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    (30_000_i64 << doublings).min(3_600_000)
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub failed: usize,
    /// Items of workspaces without an endpoint, closed as `no_endpoint`.
    pub skipped: usize,
}

impl Store {
    /// Sets (or replaces) a workspace's endpoint with a new secret, returned once.
    pub async fn set_webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
        url: &str,
        now: Millis,
    ) -> Result<Endpoint, StoreError> {
        let secret = format!("tallywh_{}", &new_id("x")[2..]);
        sqlx::query(
            "INSERT INTO workspace_webhooks (workspace_id, url, secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (workspace_id) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at",
        )
        .bind(workspace.as_str())
        .bind(url)
        .bind(&secret)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(Endpoint {
            url: url.to_owned(),
            secret,
        })
    }

    /// Removes a workspace's endpoint; later notifications stay in the app only.
    pub async fn remove_webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM workspace_webhooks WHERE workspace_id = $1")
                .bind(workspace.as_str())
                .execute(self.pool())
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// The workspace's endpoint address, if set.
    pub async fn webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT url FROM workspace_webhooks WHERE workspace_id = $1")
            .bind(workspace.as_str())
            .fetch_optional(self.pool())
            .await?
            .map(|row| row.try_get("url"))
            .transpose()
            .map_err(StoreError::from)
    }
}

/// One outbox item, as the workspace's delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub kind: String,
    /// `pending` until it is closed.
    pub outcome: String,
    pub attempts: i64,
    /// When it was closed, else when it was queued.
    pub at: Millis,
    pub last_error: Option<String>,
}

impl Store {
    /// The workspace's newest outbox items.
    pub async fn recent_deliveries(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        sqlx::query(
            "SELECT kind, COALESCE(outcome, 'pending') AS outcome, attempts, COALESCE(delivered_at, created_at) AS at, last_error              FROM notification_outbox WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(workspace.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(DeliveryRecord {
                kind: row.try_get("kind")?,
                outcome: row.try_get("outcome")?,
                attempts: row.try_get("attempts")?,
                at: row.try_get("at")?,
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
    }
}

/// One round: every item due, each sent once under a lease.
pub async fn deliver_outbox(
    store: &Store,
    http: &reqwest::Client,
    now: Millis,
) -> Result<Round, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.payload, o.attempts, o.next_attempt_at, w.url, w.secret \
         FROM notification_outbox o LEFT JOIN workspace_webhooks w ON w.workspace_id = o.workspace_id \
         WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 ORDER BY o.created_at, o.id LIMIT $2",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(store.pool())
    .await?;
    let mut round = Round::default();
    for row in rows {
        let id: String = row.try_get("id")?;
        let seen: Millis = row.try_get("next_attempt_at")?;
        // The lease: only the instance whose compare-and-set lands sends this item now.
        let leased = sqlx::query(
            "UPDATE notification_outbox SET next_attempt_at = $1 WHERE id = $2 AND delivered_at IS NULL AND next_attempt_at = $3",
        )
        .bind(now + LEASE_MS)
        .bind(&id)
        .bind(seen)
        .execute(store.pool())
        .await?
        .rows_affected();
        if leased != 1 {
            continue;
        }
        let url: Option<String> = row.try_get("url")?;
        let secret: Option<String> = row.try_get("secret")?;
        let (Some(url), Some(secret)) = (url, secret) else {
            close(store, &id, "no_endpoint", None, now).await?;
            round.skipped += 1;
            continue;
        };
        let payload: String = row.try_get("payload")?;
        let attempts: i64 = row.try_get::<i64, _>("attempts")? + 1;
        let sent = http
            .post(&url)
            .header("content-type", "application/json")
            .header("user-agent", "Tally-Webhooks/1")
            .header("tally-delivery", &id)
            .header("tally-signature", signature(&secret, now / 1000, &payload))
            .body(payload)
            .send()
            .await;
        let error = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("the endpoint answered {}", response.status())),
            Err(err) if err.is_timeout() => Some("the endpoint did not answer in time".to_owned()),
            Err(_) => Some("the endpoint could not be reached".to_owned()),
        };
        match error {
            None => {
                sqlx::query("UPDATE notification_outbox SET delivered_at = $1, outcome = 'delivered', attempts = $2, last_error = NULL WHERE id = $3")
                    .bind(now)
                    .bind(attempts)
                    .bind(&id)
                    .execute(store.pool())
                    .await?;
                round.delivered += 1;
            }
            Some(error) if attempts >= MAX_ATTEMPTS => {
                tracing::warn!(item = %id, %error, "a notification webhook was given up after {MAX_ATTEMPTS} tries");
                sqlx::query("UPDATE notification_outbox SET attempts = $1 WHERE id = $2")
                    .bind(attempts)
                    .bind(&id)
                    .execute(store.pool())
                    .await?;
                close(store, &id, "gave_up", Some(&error), now).await?;
                round.failed += 1;
            }
            Some(error) => {
                sqlx::query("UPDATE notification_outbox SET attempts = $1, last_error = $2, next_attempt_at = $3 WHERE id = $4")
                    .bind(attempts)
                    .bind(&error)
                    .bind(now + retry_after(attempts))
                    .bind(&id)
                    .execute(store.pool())
                    .await?;
                round.failed += 1;
            }
        }
    }
    Ok(round)
}

async fn close(
    store: &Store,
    id: &str,
    outcome: &str,
    error: Option<&str>,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE notification_outbox SET delivered_at = $1, outcome = $2, last_error = COALESCE($3, last_error) WHERE id = $4")
        .bind(now)
        .bind(outcome)
        .bind(error)
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The HTTP client deliveries use: short timeouts, no redirects (a redirect could point
/// anywhere).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_or_this_machine() {
        assert!(check_url("https://hooks.example.com/tally").is_ok());
        assert!(check_url("http://127.0.0.1:8080/in").is_ok());
        assert!(check_url("http://localhost/in").is_ok());
        for bad in [
            "http://hooks.example.com/tally",
            "ftp://example.com",
            "example.com/hook",
            "https://",
            "https://user@evil.example",
            "https://exa mple.com",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signatures_cover_the_time_and_the_body() {
        let a = signature("s3cret", 1_700_000_000, "{\"x\":1}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature("s3cret", 1_700_000_001, "{\"x\":1}"));
        assert_ne!(a, signature("s3cret", 1_700_000_000, "{\"x\":2}"));
        assert_ne!(a, signature("other", 1_700_000_000, "{\"x\":1}"));
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_after(1), 30_000);
        assert_eq!(retry_after(2), 60_000);
        assert_eq!(retry_after(3), 120_000);
        assert_eq!(retry_after(12), 3_600_000);
    }
}
