//! Group commit for charges: concurrent charges of one workspace that arrive while a
//! transaction for it is in flight wait for it, then go together in the next one.
//!
//! A hot workspace otherwise pays one row-lock hand-over and one commit per charge, which caps
//! it near the database's single-row limit. Batching changes nothing about correctness: the
//! batch runs under the same row lock in one transaction (so instances still serialise on the
//! database), each charge keeps its own idempotency key and answer, and a failed batch falls
//! back to charging one by one. With no concurrency a batch is a single charge, with no added
//! wait.

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

struct Pending {
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
    queues: Arc<Mutex<HashMap<WorkspaceId, Vec<Pending>>>>,
}

impl std::fmt::Debug for ChargeBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargeBatcher").finish_non_exhaustive()
    }
}

/// Removes a workspace's queue when its drain task ends, however it ends.
struct DrainGuard {
    queues: Arc<Mutex<HashMap<WorkspaceId, Vec<Pending>>>>,
    workspace: WorkspaceId,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.remove(&self.workspace);
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
            key,
            credits,
            meta,
            render,
            reply,
        };
        let lead = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            match queues.get_mut(workspace) {
                Some(queue) => {
                    queue.push(pending);
                    false
                }
                None => {
                    queues.insert(workspace.clone(), vec![pending]);
                    true
                }
            }
        };
        if lead {
            // The drain runs on its own task so that no request waits for others' batches.
            let (this, workspace) = (self.clone(), workspace.clone());
            tokio::spawn(async move { this.drain(workspace).await });
        }
        answer.await.unwrap_or(Err(LedgerError::Invalid(
            "the charge was interrupted; retry with the same idempotency key",
        )))
    }

    async fn drain(&self, workspace: WorkspaceId) {
        // Should this task end early (a panic), the guard drops the queue so that its
        // waiting charges get an error instead of waiting for ever.
        let _guard = DrainGuard {
            queues: self.queues.clone(),
            workspace: workspace.clone(),
        };
        loop {
            let batch: Vec<Pending> = {
                let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let Some(queue) = queues.get_mut(&workspace) else {
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&workspace);
                    return;
                }
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            let now = self.clock.now_ms();
            let items: Vec<BatchCharge<'_>> = batch
                .iter()
                .map(|p| BatchCharge {
                    key: &p.key,
                    credits: p.credits,
                    meta: &p.meta,
                    render: &*p.render,
                })
                .collect();
            let results = self.store.charge_batch(&workspace, &items, now).await;
            drop(items);
            match results {
                Ok(results) => {
                    for (pending, result) in batch.into_iter().zip(results) {
                        let _ = pending.reply.send(result);
                    }
                }
                Err(err) => {
                    if batch.len() > 1 || !err.is_retryable() {
                        tracing::debug!(error = %err, size = batch.len(), "batch failed; charging one by one");
                    }
                    for pending in batch {
                        let result = self
                            .store
                            .charge_once(
                                &workspace,
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
