//! Delivers the notification outbox to each workspace's webhook endpoint.
//!
//! Notifications are written to the outbox in the transaction of their cause (see
//! [`crate::notifications`]); this job sends them. Each delivery is a `POST` of the
//! notification's JSON with `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the workspace's secret>` and `Tally-Delivery: <outbox id>` (the same on
//! every retry, so receivers can drop repeats). Delivery is at least once: an item is retried
//! until the endpoint answers 2xx, after 30 s, 1 min, 2 min, … (at most an hour apart), and
//! given up after eight tries. Right before sending, an instance takes a one-minute lease on
//! the item with a compare-and-set in the database, so two instances never send it at once,
//! and the lease (far longer than a request may take) never runs out mid-send.
//!
//! Deliveries run concurrently, at most two at a time to one workspace's endpoint and a few
//! of one workspace's items per round, so a slow or busy endpoint delays only its own
//! workspace. Every address passes the outbound address policy ([`crate::outbound`]).

use crate::clock::Clock;
use crate::clock::Millis;
use crate::db::{new_id, Store, StoreError};
use crate::outbound::{Outbound, Sent};
use app::domain::{CreditUnit, WorkspaceId};
use futures_util::stream::{self, StreamExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;

/// Tries before an item is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long an instance owns an item it is sending: far longer than one request may take.
const LEASE_MS: Millis = 60_000;
/// Items one round takes, and how many of them one workspace may have.
const BATCH: usize = 100;
const PER_WORKSPACE_ROUND: usize = 10;
/// Deliveries in flight at once, and to one workspace's endpoint.
const IN_FLIGHT: usize = 16;
const PER_WORKSPACE_IN_FLIGHT: usize = 2;

/// A workspace's endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("secret", &"(hidden)")
            .finish()
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
    #[tracing::instrument(skip_all)]
    pub async fn set_webhook_endpoint(
        &self,
        workspace: &WorkspaceId,
        url: &str,
        now: Millis,
    ) -> Result<Endpoint, StoreError> {
        let secret = format!("tallywh_{}", &new_id("x")[2..]);
        sqlx::query(
            r#"
            INSERT INTO workspace_webhooks (workspace_id, url, secret, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $4)
            ON CONFLICT (workspace_id)
            DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at
            "#,
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
    #[tracing::instrument(skip_all)]
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
    #[tracing::instrument(skip_all)]
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
    #[tracing::instrument(skip_all)]
    pub async fn recent_deliveries(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        sqlx::query(
            r#"
            SELECT kind, COALESCE(outcome, 'pending') AS outcome, attempts, COALESCE(delivered_at,
                created_at) AS at, last_error
            FROM notification_outbox
            WHERE workspace_id = $1
            ORDER BY created_at DESC, id DESC
            LIMIT $2
            "#,
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

/// An item due for delivery.
struct Due {
    id: String,
    workspace: String,
    payload: String,
    attempts: i64,
    /// `next_attempt_at` as read: the lease's compare-and-set expects it unchanged.
    seen: Millis,
    endpoint: Option<Endpoint>,
}

/// How one item went.
enum Outcome {
    Delivered,
    Failed,
    Skipped,
    /// Another instance leased it first.
    Taken,
}

/// One round: the items due (a few per workspace), sent concurrently, each once under its
/// own lease.
#[tracing::instrument(skip_all)]
///
/// Amounts in a notification are written in `unit` as it is sent.
pub async fn deliver_outbox(
    store: &Store,
    outbound: &Outbound,
    clock: &dyn Clock,
    unit: &CreditUnit,
) -> Result<Round, StoreError> {
    let rows = sqlx::query(
        r#"
        SELECT o.id, o.workspace_id, o.payload, o.attempts, o.next_attempt_at, w.url, w.secret
        FROM notification_outbox o
        LEFT JOIN workspace_webhooks w ON w.workspace_id = o.workspace_id
        WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1
        ORDER BY o.created_at, o.id
        LIMIT $2
        "#,
    )
    .bind(clock.now_ms())
    .bind((BATCH * 4) as i64)
    .fetch_all(store.pool())
    .await?;
    // Oldest first, but at most a few of any one workspace's, so none fills the round.
    let mut groups: Vec<Vec<Due>> = Vec::new();
    let mut taken = 0;
    for row in &rows {
        if taken == BATCH {
            break;
        }
        let url: Option<String> = row.try_get("url")?;
        let secret: Option<String> = row.try_get("secret")?;
        let due = Due {
            id: row.try_get("id")?,
            workspace: row.try_get("workspace_id")?,
            payload: unit.render(&row.try_get::<String, _>("payload")?),
            attempts: row.try_get("attempts")?,
            seen: row.try_get("next_attempt_at")?,
            endpoint: url
                .zip(secret)
                .map(|(url, secret)| Endpoint { url, secret }),
        };
        match groups.iter_mut().find(|g| g[0].workspace == due.workspace) {
            Some(group) if group.len() >= PER_WORKSPACE_ROUND => continue,
            Some(group) => group.push(due),
            None => groups.push(vec![due]),
        }
        taken += 1;
    }
    let outcomes: Vec<Vec<Result<Outcome, StoreError>>> = stream::iter(groups)
        .map(|group| {
            stream::iter(group)
                .map(|due| deliver_one(store, outbound, clock, due))
                .buffer_unordered(PER_WORKSPACE_IN_FLIGHT)
                .collect::<Vec<_>>()
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut round = Round::default();
    for outcome in outcomes.into_iter().flatten() {
        match outcome? {
            Outcome::Delivered => round.delivered += 1,
            Outcome::Failed => round.failed += 1,
            Outcome::Skipped => round.skipped += 1,
            Outcome::Taken => {}
        }
    }
    Ok(round)
}

/// Leases one item and sends it.
#[tracing::instrument(skip_all)]
async fn deliver_one(
    store: &Store,
    outbound: &Outbound,
    clock: &dyn Clock,
    due: Due,
) -> Result<Outcome, StoreError> {
    let id = &due.id;
    // The lease, from the moment the item is taken: only the instance whose compare-and-set
    // lands sends it now.
    let leased = sqlx::query(
        r#"
        UPDATE notification_outbox
        SET next_attempt_at = $1
        WHERE id = $2 AND delivered_at IS NULL AND next_attempt_at = $3
        "#,
    )
    .bind(clock.now_ms() + LEASE_MS)
    .bind(id)
    .bind(due.seen)
    .execute(store.pool())
    .await?
    .rows_affected();
    if leased != 1 {
        return Ok(Outcome::Taken);
    }
    let Some(endpoint) = due.endpoint else {
        close(store, id, "no_endpoint", None, clock.now_ms()).await?;
        return Ok(Outcome::Skipped);
    };
    let attempts = due.attempts + 1;
    let sent_at = clock.now_ms();
    let headers = [
        ("tally-delivery", id.clone()),
        (
            "tally-signature",
            signature(&endpoint.secret, sent_at / 1000, &due.payload),
        ),
    ];
    let error = match outbound
        .post_json(&endpoint.url, &headers, due.payload)
        .await
    {
        Sent::Answered(status) if status.is_success() => None,
        Sent::Answered(status) => Some(format!("the endpoint answered {status}")),
        Sent::Failed(why) => Some(why),
    };
    let now = clock.now_ms();
    match error {
        None => {
            sqlx::query(
                r#"
                UPDATE notification_outbox
                SET delivered_at = $1, outcome = 'delivered', attempts = $2, last_error = NULL
                WHERE id = $3
                "#,
            )
            .bind(now)
            .bind(attempts)
            .bind(id)
            .execute(store.pool())
            .await?;
            Ok(Outcome::Delivered)
        }
        Some(error) if attempts >= MAX_ATTEMPTS => {
            tracing::warn!(item = %id, %error, "a notification webhook was given up after {MAX_ATTEMPTS} tries");
            sqlx::query("UPDATE notification_outbox SET attempts = $1 WHERE id = $2")
                .bind(attempts)
                .bind(id)
                .execute(store.pool())
                .await?;
            close(store, id, "gave_up", Some(&error), now).await?;
            Ok(Outcome::Failed)
        }
        Some(error) => {
            sqlx::query(
                r#"
                UPDATE notification_outbox
                SET attempts = $1, last_error = $2, next_attempt_at = $3
                WHERE id = $4
                "#,
            )
            .bind(attempts)
            .bind(&error)
            .bind(sent_at + retry_after(attempts))
            .bind(id)
            .execute(store.pool())
            .await?;
            Ok(Outcome::Failed)
        }
    }
}

#[tracing::instrument(skip_all)]
async fn close(
    store: &Store,
    id: &str,
    outcome: &str,
    error: Option<&str>,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        r#"
        UPDATE notification_outbox
        SET delivered_at = $1, outcome = $2, last_error = COALESCE($3, last_error)
        WHERE id = $4
        "#,
    )
    .bind(now)
    .bind(outcome)
    .bind(error)
    .bind(id)
    .execute(store.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_time_and_the_body() {
        let a = signature("s3cret", 1_700_000_000, "{\"x\":1}");
        // Known answer: HMAC-SHA256("s3cret", "1700000000.{\"x\":1}"), computed elsewhere.
        assert_eq!(
            a,
            "t=1700000000,v1=53d22a53a449c8eab33f527b26c0b13af91a3b37fce85ffe71404534449f336d"
        );
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
