//! Background jobs of a serving instance. Each is safe to run on every instance at once: the
//! work itself is a ledger movement under the workspace's row lock, so two instances that
//! pick the same workspace simply find nothing left to do the second time.

use crate::clock::Clock;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How often lapsed lots are written off. Reads already ignore lapsed credits; the job makes
/// the `expiry` entries appear in history without waiting for the next movement.
const EXPIRY_EVERY: Duration = Duration::from_secs(60);

/// Writes `expiry` entries for lapsed lots, forever.
pub fn spawn_expiry_sweeper(store: Store, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = sweep_expired(&store, clock.now_ms()).await {
                tracing::warn!(error = %err, "expiry sweep failed; will retry");
            }
        }
    })
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
