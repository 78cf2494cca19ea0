//! Group commit for charges: charges that arrive while a transaction is in flight wait for
//! it, then go together in the next one, whatever their workspaces.
//!
//! Charging one by one pays a transaction, its row lock and its commit, and some ten round
//! trips to the database per charge. A batch pays them once: its statements are set-based
//! (one statement locks every account of the batch, one reads their lots, one their keys, one
//! writes each kind of row), so a batch of thirty costs about what one charge costs.
//!
//! Batching changes nothing about correctness. A batch is one transaction that locks its
//! accounts in id order (so instances batching overlapping workspaces never deadlock, and
//! every other movement of those workspaces waits or is waited for), plans each charge against
//! the locked lots in arrival order, and keeps each charge's own idempotency key and answer. A
//! failed batch falls back to charging one by one. With no concurrency a batch is a single
//! charge, with no added wait.
//!
//! Charges are spread over a few shards by workspace, each with at most one transaction in
//! flight, so that on PostgreSQL several batches overlap while a workspace's charges still
//! meet in one queue. SQLite has one writer, so it gets one shard.

use super::gate::BatchCharge;
use super::rules::Shortfall;
use super::{Answer, EntryMeta, IdempotencyKey, LedgerError, Receipt};
use crate::clock::Clock;
use crate::store::{Backend, Store};
use app::domain::{Credits, WorkspaceId};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Renders a charge's outcome into its stored answer.
pub type SharedRender = Arc<dyn Fn(&Result<Receipt, Shortfall>) -> Answer + Send + Sync>;

/// The most charges one transaction takes.
const MAX_BATCH: usize = 64;

/// Batches in flight at once on PostgreSQL (SQLite has one writer, so one).
const POSTGRES_SHARDS: usize = 4;

struct Pending {
    workspace: WorkspaceId,
    key: IdempotencyKey,
    credits: Credits,
    meta: EntryMeta,
    render: SharedRender,
    reply: oneshot::Sender<Result<Answer, LedgerError>>,
}

/// Charges waiting for one shard's next batch, and whether a drain task runs for it.
#[derive(Default)]
struct Shard {
    queue: Vec<Pending>,
    draining: bool,
}

/// Queues of waiting charges, one per shard; each shard has at most one drain task.
#[derive(Clone)]
pub struct ChargeBatcher {
    store: Store,
    clock: Arc<dyn Clock>,
    shards: Arc<Vec<Mutex<Shard>>>,
}

impl std::fmt::Debug for ChargeBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargeBatcher")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends a shard's drain however the drain task ends: should it panic, the waiting charges are
/// dropped (they get an error instead of waiting for ever) and the next charge starts a drain.
struct DrainGuard<'a> {
    shard: &'a Mutex<Shard>,
}

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut shard = lock(self.shard);
            shard.queue.clear();
            shard.draining = false;
        }
    }
}

impl ChargeBatcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        let shards = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_SHARDS,
        };
        ChargeBatcher {
            store,
            clock,
            shards: Arc::new((0..shards).map(|_| Mutex::default()).collect()),
        }
    }

    fn shard_of(&self, workspace: &WorkspaceId) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        workspace.hash(&mut hasher);
        (hasher.finish() % self.shards.len() as u64) as usize
    }

    /// Charges exactly once per idempotency key, together with any concurrent charges.
    pub async fn charge(
        &self,
        workspace: &WorkspaceId,
        key: IdempotencyKey,
        credits: Credits,
        meta: EntryMeta,
        render: SharedRender,
    ) -> Result<Answer, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            workspace: workspace.clone(),
            key,
            credits,
            meta,
            render,
            reply,
        };
        let index = self.shard_of(workspace);
        let lead = {
            let mut shard = lock(&self.shards[index]);
            shard.queue.push(pending);
            !std::mem::replace(&mut shard.draining, true)
        };
        if lead {
            // The drain runs on its own task so that no request waits for others' batches.
            let this = self.clone();
            tokio::spawn(async move { this.drain(index).await });
        }
        answer.await.unwrap_or(Err(LedgerError::Invalid(
            "the charge was interrupted; retry with the same idempotency key",
        )))
    }

    async fn drain(&self, index: usize) {
        let shard = &self.shards[index];
        let _guard = DrainGuard { shard };
        loop {
            let batch: Vec<Pending> = {
                let mut shard = lock(shard);
                if shard.queue.is_empty() {
                    shard.draining = false;
                    return;
                }
                let take = shard.queue.len().min(MAX_BATCH);
                shard.queue.drain(..take).collect()
            };
            let now = self.clock.now_ms();
            let items: Vec<BatchCharge<'_>> = batch
                .iter()
                .map(|p| BatchCharge {
                    workspace: &p.workspace,
                    key: &p.key,
                    credits: p.credits,
                    meta: &p.meta,
                    render: &*p.render,
                })
                .collect();
            let results = self
                .store
                .retrying(|| self.store.charge_batch(&items, now))
                .await;
            drop(items);
            match results {
                Ok(results) => {
                    for (pending, result) in batch.into_iter().zip(results) {
                        let _ = pending.reply.send(result);
                    }
                }
                Err(err) => {
                    // One workspace's trouble must not fail the others' charges.
                    tracing::debug!(error = %err, size = batch.len(), "batch failed; charging one by one");
                    for pending in batch {
                        let result = self
                            .store
                            .charge_once(
                                &pending.workspace,
                                &pending.key,
                                pending.credits,
                                &pending.meta,
                                now,
                                &*pending.render,
                            )
                            .await;
                        let _ = pending.reply.send(result);
                    }
                }
            }
        }
    }
}
