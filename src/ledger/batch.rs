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
//! the locked lots in arrival order, and keeps each charge's own idempotency key and answer.
//! On PostgreSQL it first goes without the transaction's round trips: read without locks, then
//! written by one statement that takes the same locks in the same order and is undone whole if
//! any account moved since the read (see `gate::charge_batch_on`). A failed batch falls back
//! to charging one by one. With no concurrency a batch is a single charge, with no added wait.
//!
//! Charges are spread over shards by workspace, each with at most one transaction in flight,
//! so that on PostgreSQL several batches may overlap while a workspace's charges still meet
//! in one queue (`TALLY_GATE_SHARDS`; one by default, which on two shared cores made the
//! most charges, in batches about twice as large as four shards made). SQLite has one
//! writer, so it gets one shard. A shard's drain keeps one connection while its charges keep
//! coming (a quarter of a second at most, then it takes another), so there are at most one
//! fewer shards than the pool has connections.
//!
//! The queues are bounded and fair. A shard holds at most [`MAX_QUEUED`] charges and one
//! workspace at most [`MAX_QUEUED_PER_WORKSPACE`] of them; past either, a charge is refused
//! at once with [`LedgerError::Overloaded`] (nothing charged, try again shortly) instead of
//! waiting behind a flood. A batch takes the waiting workspaces in turn, one charge each, so a
//! workspace flooding the gate delays the others by at most one batch.

use super::gate::{charge_batch_on, BatchCharge};
use super::rules::Millis;
use super::{ChargeOutcome, EntryMeta, IdempotencyKey, LedgerError};
use crate::clock::Clock;
use crate::db::{pause_before_retry, Backend, Store};
use app::domain::{Credits, WorkspaceId};
use sqlx::pool::PoolConnection;
use sqlx::Any;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most charges one transaction takes.
const MAX_BATCH: usize = 64;

/// How long a drain keeps one connection before it gives it back and takes another.
const HOLD_AT_MOST: Duration = Duration::from_millis(250);

/// Charges one shard may hold waiting, and one workspace's share of them.
pub const MAX_QUEUED: usize = 4_096;
pub const MAX_QUEUED_PER_WORKSPACE: usize = 512;

struct Pending {
    workspace: WorkspaceId,
    key: IdempotencyKey,
    credits: Credits,
    meta: EntryMeta,
    reply: oneshot::Sender<Result<ChargeOutcome, LedgerError>>,
}

/// Charges waiting for one shard's next batch, by workspace, and whether a drain task runs
/// for it.
#[derive(Default)]
struct Shard {
    /// Each waiting workspace's charges, in arrival order.
    queues: HashMap<WorkspaceId, VecDeque<Pending>>,
    /// The waiting workspaces, in the order their turns come.
    turns: VecDeque<WorkspaceId>,
    /// Charges waiting, in all.
    queued: usize,
    draining: bool,
}

impl Shard {
    /// Adds a charge unless the shard or its workspace is full (then it is dropped, and
    /// false says so).
    fn push(&mut self, pending: Pending) -> bool {
        if self.queued >= MAX_QUEUED {
            return false;
        }
        let queue = self.queues.entry(pending.workspace.clone()).or_default();
        if queue.len() >= MAX_QUEUED_PER_WORKSPACE {
            return false;
        }
        if queue.is_empty() {
            self.turns.push_back(pending.workspace.clone());
        }
        queue.push_back(pending);
        self.queued += 1;
        true
    }

    /// The next batch: the waiting workspaces in turn, one charge each, up to `max`. Each
    /// workspace's charges keep their order.
    fn take(&mut self, max: usize) -> Vec<Pending> {
        let mut batch = Vec::with_capacity(max.min(self.queued));
        while batch.len() < max {
            let Some(workspace) = self.turns.pop_front() else {
                break;
            };
            let Some(queue) = self.queues.get_mut(&workspace) else {
                continue;
            };
            if let Some(pending) = queue.pop_front() {
                batch.push(pending);
                self.queued -= 1;
            }
            if queue.is_empty() {
                self.queues.remove(&workspace);
            } else {
                self.turns.push_back(workspace);
            }
        }
        batch
    }

    fn clear(&mut self) {
        self.queues.clear();
        self.turns.clear();
        self.queued = 0;
    }
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
            shard.clear();
            shard.draining = false;
        }
    }
}

impl ChargeBatcher {
    /// A batcher with `shards` batches in flight at most on PostgreSQL (one on SQLite).
    pub fn new(store: Store, clock: Arc<dyn Clock>, shards: usize) -> Self {
        // Each shard's drain holds a connection while its charges keep coming: at least one of
        // the pool's is always left for everything else.
        let spare = store
            .pool()
            .options()
            .get_max_connections()
            .saturating_sub(1) as usize;
        let shards = match store.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => shards.min(spare).max(1),
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
    ) -> Result<ChargeOutcome, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            workspace: workspace.clone(),
            key,
            credits,
            meta,
            reply,
        };
        let index = self.shard_of(workspace);
        let lead = {
            let mut shard = lock(&self.shards[index]);
            if !shard.push(pending) {
                return Err(LedgerError::Overloaded);
            }
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

    /// One batch on the drain's connection (taken from the pool if it has none), tried again
    /// on lock contention. After any other error the connection goes back to the pool, which
    /// checks it, and the next batch takes another.
    async fn charge_on_held(
        &self,
        held: &mut Option<PoolConnection<Any>>,
        items: &[BatchCharge<'_>],
        now: Millis,
    ) -> Result<Vec<Result<ChargeOutcome, LedgerError>>, LedgerError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let conn = match held {
                Some(conn) => conn,
                None => held.insert(self.store.pool().acquire().await?),
            };
            match charge_batch_on(conn, items, now).await {
                Err(err) => match pause_before_retry(&err, tries) {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => {
                        *held = None;
                        return Err(err);
                    }
                },
                done => return done,
            }
        }
    }

    async fn drain(&self, index: usize) {
        let shard = &self.shards[index];
        let _guard = DrainGuard { shard };
        // One connection for as long as charges keep coming. On SQLite a connection's page
        // cache survives only while no other connection writes, so batches on one connection
        // find their workspaces' pages still cached; on both databases a batch then skips
        // the pool's check-out and the round trip with which it checks a connection back in.
        let mut held: Option<PoolConnection<Any>> = None;
        let mut held_since = Instant::now();
        loop {
            // Given back now and then even under a steady load, so that work waiting for one
            // of the pool's connections never waits long behind the gate.
            if held.is_some() && held_since.elapsed() >= HOLD_AT_MOST {
                held = None;
            }
            if held.is_none() {
                held_since = Instant::now();
            }
            let batch: Vec<Pending> = {
                let mut shard = lock(shard);
                if shard.queued == 0 {
                    shard.draining = false;
                    return;
                }
                shard.take(MAX_BATCH)
            };
            let now = self.clock.now_ms();
            let items: Vec<BatchCharge<'_>> = batch
                .iter()
                .map(|p| BatchCharge {
                    workspace: &p.workspace,
                    key: &p.key,
                    credits: p.credits,
                    meta: &p.meta,
                })
                .collect();
            let results = self.charge_on_held(&mut held, &items, now).await;
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
                            )
                            .await;
                        let _ = pending.reply.send(result);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(workspace: &WorkspaceId, n: usize) -> Pending {
        let (reply, _) = oneshot::channel();
        Pending {
            workspace: workspace.clone(),
            key: IdempotencyKey {
                scope: "usage",
                key: format!("k{n}"),
                request_hash: String::new(),
            },
            credits: Credits::new(1).unwrap(),
            meta: EntryMeta::default(),
            reply,
        }
    }

    fn ws(name: &str) -> WorkspaceId {
        WorkspaceId::parse(&format!("ws_{name}0000000000")).unwrap()
    }

    #[test]
    fn a_flooding_workspace_is_refused_past_its_share_and_others_still_get_in() {
        let mut shard = Shard::default();
        let (flood, steady) = (ws("flood"), ws("steady"));
        for n in 0..MAX_QUEUED_PER_WORKSPACE {
            assert!(shard.push(pending(&flood, n)));
        }
        assert!(!shard.push(pending(&flood, 9_999)), "its share is full");
        assert!(shard.push(pending(&steady, 0)), "another workspace gets in");
        assert_eq!(shard.queued, MAX_QUEUED_PER_WORKSPACE + 1);
    }

    #[test]
    fn the_shard_as_a_whole_is_bounded() {
        let mut shard = Shard::default();
        let mut accepted = 0;
        for w in 0..(MAX_QUEUED / MAX_QUEUED_PER_WORKSPACE + 2) {
            let workspace = ws(&format!("w{w:03}"));
            for n in 0..MAX_QUEUED_PER_WORKSPACE {
                if shard.push(pending(&workspace, n)) {
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, MAX_QUEUED);
        assert_eq!(shard.queued, MAX_QUEUED);
    }

    #[test]
    fn a_batch_takes_the_waiting_workspaces_in_turn_keeping_each_ones_order() {
        let mut shard = Shard::default();
        let (a, b, c) = (ws("aaa"), ws("bbb"), ws("ccc"));
        for n in 0..100 {
            assert!(shard.push(pending(&a, n)));
        }
        assert!(shard.push(pending(&b, 0)));
        assert!(shard.push(pending(&c, 0)));
        assert!(shard.push(pending(&b, 1)));
        let batch = shard.take(6);
        let order: Vec<(String, String)> = batch
            .iter()
            .map(|p| (p.workspace.to_string()[3..6].to_owned(), p.key.key.clone()))
            .collect();
        let expected = [
            ("aaa", "k0"),
            ("bbb", "k0"),
            ("ccc", "k0"),
            ("aaa", "k1"),
            ("bbb", "k1"),
            ("aaa", "k2"),
        ];
        assert_eq!(
            order,
            expected.map(|(w, k)| (w.to_owned(), k.to_owned())).to_vec(),
            "b and c wait for one batch at most, not behind a's hundred"
        );
        assert_eq!(shard.queued, 97);
        // Alone, a workspace fills whole batches.
        assert_eq!(shard.take(MAX_BATCH).len(), MAX_BATCH);
        assert_eq!(shard.take(MAX_BATCH).len(), 97 - MAX_BATCH);
        assert_eq!(shard.queued, 0);
        assert!(shard.turns.is_empty() && shard.queues.is_empty());
    }
}
