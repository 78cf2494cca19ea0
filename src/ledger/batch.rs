//! Group commit for charges: concurrent charges that arrive while a transaction of their
//! shard is in flight wait for it, then go together in the next one.
//!
//! Workspaces are spread over a few shards by a hash of their id; each shard has one queue and
//! at most one transaction in flight, so a workspace's charges keep their order. A hot
//! workspace otherwise pays one row-lock hand-over and one commit per charge, which caps it
//! near the database's single-row limit; charges spread over many workspaces otherwise pay one
//! commit each. Batching changes nothing about correctness: each workspace's charges run under
//! its row lock, the rows locked in id order (so instances batching overlapping workspaces
//! never deadlock), each charge keeps its own idempotency key and answer, and a failed batch
//! falls back to charging one by one. With no concurrency a batch is a single charge, with no
//! added wait.

use super::gate::BatchCharge;
use super::rules::Shortfall;
use super::{Answer, EntryMeta, IdempotencyKey, LedgerError, Receipt};
use crate::clock::Clock;
use crate::store::Store;
use app::domain::{Credits, WorkspaceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Renders a charge's outcome into its stored answer.
pub type SharedRender = Arc<dyn Fn(&Result<Receipt, Shortfall>) -> Answer + Send + Sync>;

/// The most charges one transaction takes.
const MAX_BATCH: usize = 64;
/// Transactions in flight at once per instance, at most (one per shard).
const SHARDS: u64 = 8;

fn shard_of(workspace: &WorkspaceId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    workspace.as_str().hash(&mut hasher);
    hasher.finish() % SHARDS
}

struct Pending {
    workspace: WorkspaceId,
    key: IdempotencyKey,
    credits: Credits,
    meta: EntryMeta,
    render: SharedRender,
    reply: oneshot::Sender<Result<Answer, LedgerError>>,
}

/// Queues of waiting charges per workspace; a queue exists while a drain task runs for it.
#[derive(Clone)]
pub struct ChargeBatcher {
    store: Store,
    clock: Arc<dyn Clock>,
    queues: Arc<Mutex<HashMap<u64, Vec<Pending>>>>,
}

impl std::fmt::Debug for ChargeBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargeBatcher").finish_non_exhaustive()
    }
}

/// Removes a shard's queue when its drain task ends, however it ends.
struct DrainGuard {
    queues: Arc<Mutex<HashMap<u64, Vec<Pending>>>>,
    shard: u64,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.remove(&self.shard);
        }
    }
}

impl ChargeBatcher {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        ChargeBatcher {
            store,
            clock,
            queues: Arc::default(),
        }
    }

    /// Charges exactly once per idempotency key, together with any concurrent charges of the
    /// same workspace.
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
        let shard = shard_of(workspace);
        let lead = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            match queues.get_mut(&shard) {
                Some(queue) => {
                    queue.push(pending);
                    false
                }
                None => {
                    queues.insert(shard, vec![pending]);
                    true
                }
            }
        };
        if lead {
            // The drain runs on its own task so that no request waits for others' batches.
            let this = self.clone();
            tokio::spawn(async move { this.drain(shard).await });
        }
        answer.await.unwrap_or(Err(LedgerError::Invalid(
            "the charge was interrupted; retry with the same idempotency key",
        )))
    }

    async fn drain(&self, shard: u64) {
        // Should this task end early (a panic), the guard drops the queue so that its
        // waiting charges get an error instead of waiting for ever.
        let _guard = DrainGuard {
            queues: self.queues.clone(),
            shard,
        };
        loop {
            let batch: Vec<Pending> = {
                let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let Some(queue) = queues.get_mut(&shard) else {
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&shard);
                    return;
                }
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            let now = self.clock.now_ms();
            // The batch's charges by workspace, each workspace's in arrival order.
            let mut groups: Vec<(WorkspaceId, Vec<usize>)> = Vec::new();
            for (i, pending) in batch.iter().enumerate() {
                match groups.iter_mut().find(|(ws, _)| *ws == pending.workspace) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((pending.workspace.clone(), vec![i])),
                }
            }
            let items: Vec<(WorkspaceId, Vec<BatchCharge<'_>>)> = groups
                .iter()
                .map(|(ws, members)| {
                    let charges = members
                        .iter()
                        .map(|&i| BatchCharge {
                            key: &batch[i].key,
                            credits: batch[i].credits,
                            meta: &batch[i].meta,
                            render: &*batch[i].render,
                        })
                        .collect();
                    (ws.clone(), charges)
                })
                .collect();
            let results = if let [(workspace, charges)] = items.as_slice() {
                self.store
                    .charge_batch(workspace, charges, now)
                    .await
                    .map(|answers| vec![answers])
            } else {
                self.store.charge_batches(&items, now).await
            };
            drop(items);
            let mut replies: Vec<Option<Result<Answer, LedgerError>>> =
                (0..batch.len()).map(|_| None).collect();
            match results {
                Ok(results) => {
                    for ((_, members), answers) in groups.iter().zip(results) {
                        for (&i, answer) in members.iter().zip(answers) {
                            replies[i] = Some(answer);
                        }
                    }
                }
                Err(err) => {
                    if batch.len() > 1 || !err.is_retryable() {
                        tracing::debug!(error = %err, size = batch.len(), "batch failed; charging one by one");
                    }
                    for (i, pending) in batch.iter().enumerate() {
                        replies[i] = Some(
                            self.store
                                .charge_once(
                                    &pending.workspace,
                                    &pending.key,
                                    pending.credits,
                                    &pending.meta,
                                    now,
                                    &*pending.render,
                                )
                                .await,
                        );
                    }
                }
            }
            for (pending, reply) in batch.into_iter().zip(replies) {
                let _ = pending.reply.send(
                    reply.unwrap_or(Err(LedgerError::Invalid("a batch answers every charge"))),
                );
            }
        }
    }
}
