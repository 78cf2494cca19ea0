//! SQLite's checkpoints, taken off the writers' path.
//!
//! In WAL mode a commit appends the pages it changed to the log, and from time to time the
//! log's pages are copied back into the database file: a checkpoint. By default the connection
//! whose commit takes the log past 1,000 pages makes that copy itself, before its commit
//! returns. The gate's batches are SQLite's one writer, so every tenth batch or so of a load
//! spread over many workspaces (each charge dirtying pages of its own in several indexes)
//! stopped for a copy, and every charge queued behind it waited too.
//!
//! Here a task of the store makes the copies instead, every [`EVERY`], on a connection of its
//! own and in `PASSIVE` mode: it waits for no reader or writer and none waits for it, so the
//! copy runs on another core beside the writers. The writers' own checkpoints start only at
//! [`WRITERS_CHECKPOINT_AT`] pages, as a backstop should the task ever fall behind.

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection, Executor};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// How often the log is copied back.
const EVERY: Duration = Duration::from_millis(100);

/// Log pages past which a writer's commit checkpoints by itself (SQLite's
/// `wal_autocheckpoint`; its default is 1,000).
pub(super) const WRITERS_CHECKPOINT_AT: u32 = 10_000;

/// The running checkpoint task. It stops when this is dropped (with the last clone of its
/// [`super::Store`]) or [`Checkpointer::stop`]ped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Checkpointer {
    /// Opens the task's connection to the database of `connect` and starts it.
    pub(super) async fn start(connect: &AnyConnectOptions) -> Result<Checkpointer, sqlx::Error> {
        let mut conn = AnyConnection::connect_with(connect).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        // Busy only while another checkpoint runs; the next tick tries again.
                        if let Err(err) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                            tracing::debug!(error = %err, "checkpoint skipped");
                        }
                    }
                }
            }
            let _ = conn.close().await;
        });
        Ok(Checkpointer {
            stop: Mutex::new(Some(stop)),
        })
    }

    /// Ends the task (and closes its connection) after the checkpoint in progress, if any.
    pub(super) fn stop(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
