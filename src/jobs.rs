//! Background jobs of a serving instance. Each is safe to run on every instance at once: the
//! work itself is a ledger movement under the workspace's row lock, so two instances that
//! pick the same workspace simply find nothing left to do the second time.

use crate::clock::Clock;
use crate::db::Store;
use crate::payments::Payments;
use std::sync::Arc;
use std::time::Duration;

/// How often the jobs run. Reads already ignore lapsed credits and expired holds; the jobs
/// write the entries and free the holds without waiting for the next movement.
const EVERY: Duration = Duration::from_secs(5);
/// Idempotency keys are kept at least 24 hours; they are forgotten after 48.
const KEEP_KEYS_MS: i64 = 48 * 3_600_000;
/// A purchase still waiting for its payment after this long is re-read from Stripe, so a
/// lost webhook never leaves a paid purchase uncredited.
const RECONCILE_AFTER_MS: i64 = 2 * 60_000;
/// Sign-in failures and ended sessions are forgotten after a day.
const KEEP_SIGN_IN_MS: i64 = 24 * 3_600_000;

/// Runs the periodic jobs, forever: expired holds, lapsed lots, old keys and sessions,
/// Auto-reload's queue, and the notification outbox.
pub fn spawn_background_jobs(
    store: Store,
    clock: Arc<dyn Clock>,
    payments: Option<Payments>,
    outbound: crate::outbound::Outbound,
    unit: app::domain::CreditUnit,
) -> tokio::task::JoinHandle<()> {
    // Auto-reload's queue is worked every second, so a top-up lands while people wait.
    if let Some(payments) = payments.clone() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = payments.process_reloads().await {
                    tracing::warn!(error = %err, "Auto-reload queue failed; will retry");
                }
            }
        });
    }
    // The notification outbox is sent every two seconds.
    {
        let (store, clock) = (store.clone(), clock.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) =
                    crate::notifications::outbox::deliver_outbox(&store, &outbound, &*clock, &unit)
                        .await
                {
                    tracing::warn!(error = %err, "notification deliveries failed; will retry");
                }
            }
        });
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u64 = 0;
        loop {
            tick.tick().await;
            let now = clock.now_ms();
            if let Err(err) = release_expired_holds(&store, now).await {
                tracing::warn!(error = %err, "releasing expired holds failed; will retry");
            }
            // The slower jobs every minute.
            if round.is_multiple_of(12) {
                if let Err(err) = sweep_expired(&store, now).await {
                    tracing::warn!(error = %err, "expiry sweep failed; will retry");
                }
                if let Err(err) = store.prune_idempotency_keys(now - KEEP_KEYS_MS).await {
                    tracing::warn!(error = %err, "pruning idempotency keys failed");
                }
                if let Err(err) = store.prune_sign_in_records(now - KEEP_SIGN_IN_MS).await {
                    tracing::warn!(error = %err, "pruning sign-in records failed");
                }
                if let Some(payments) = &payments {
                    if let Err(err) = payments.reconcile(RECONCILE_AFTER_MS).await {
                        tracing::warn!(error = %err, "purchase reconciliation failed; will retry");
                    }
                }
            }
            round += 1;
        }
    })
}

/// Releases every hold that has expired.
pub async fn release_expired_holds(
    store: &Store,
    now: i64,
) -> Result<usize, crate::ledger::LedgerError> {
    let mut released = 0;
    loop {
        let batch = store.expire_holds(now, 200).await?;
        released += batch;
        if batch < 200 {
            return Ok(released);
        }
    }
}

/// One sweep: every workspace with lapsed credits, a bounded batch at a time.
pub async fn sweep_expired(store: &Store, now: i64) -> Result<i64, crate::ledger::LedgerError> {
    let mut expired = 0;
    loop {
        let batch = store.workspaces_with_lapsed_lots(now, 100).await?;
        if batch.is_empty() {
            return Ok(expired);
        }
        for workspace in &batch {
            expired += store.expire(workspace, now).await?;
        }
    }
}
