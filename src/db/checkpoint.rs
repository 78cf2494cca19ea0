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
//! [`WRITERS_CHECKPOINT_AT`] pages, as a backstop should the task ever fall behind or fail.

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection, Executor};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the log is copied back.
const EVERY: Duration = Duration::from_millis(100);

/// Log pages past which a writer's commit checkpoints by itself (SQLite's
/// `wal_autocheckpoint`; its default is 1,000).
pub(super) const WRITERS_CHECKPOINT_AT: u32 = 10_000;

/// The running checkpoint task. It stops when this is dropped (with the last clone of its
/// [`super::Store`]) or [`Checkpointer::stop`]ped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    /// The task's stop signal and its handle, taken out once to stop it.
    running: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Checkpointer {
    /// Opens the task's connection to the database of `connect` and starts it.
    pub(super) async fn start(connect: &AnyConnectOptions) -> Result<Checkpointer, sqlx::Error> {
        let first = AnyConnection::connect_with(connect).await?;
        let connect = connect.clone();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut conn = Some(first);
            // Said once when checkpoints start failing and once when they work again, not on
            // every tick.
            let mut failing = false;
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {
                        let done = checkpoint(&mut conn, &connect).await;
                        match done {
                            Ok(()) if failing => {
                                failing = false;
                                tracing::info!("SQLite checkpoints work again");
                            }
                            Ok(()) => {}
                            Err(err) if !failing => {
                                failing = true;
                                tracing::warn!(error = %err, "SQLite checkpoint failed; writers checkpoint past {WRITERS_CHECKPOINT_AT} pages until it works again");
                            }
                            Err(_) => {}
                        }
                    }
                }
            }
            if let Some(conn) = conn {
                let _ = conn.close().await;
            }
        });
        Ok(Checkpointer {
            running: Mutex::new(Some((stop, task))),
        })
    }

    /// Ends the task after the checkpoint in progress, if any, and waits until its connection
    /// is closed.
    pub(super) async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((stop, task)) = running {
            drop(stop);
            let _ = task.await;
        }
    }
}

/// One passive checkpoint, on the task's connection (opened again if an error closed it).
///
/// Another checkpoint in progress is not an error: SQLite answers it with a row saying so,
/// and the next tick copies what this one could not. An error is a real failure (an I/O error,
/// a full disk), after which the connection is opened afresh.
async fn checkpoint(
    conn: &mut Option<AnyConnection>,
    connect: &AnyConnectOptions,
) -> Result<(), sqlx::Error> {
    let open = match conn {
        Some(open) => open,
        None => conn.insert(AnyConnection::connect_with(connect).await?),
    };
    let done = open.execute("PRAGMA wal_checkpoint(PASSIVE)").await;
    if done.is_err() {
        *conn = None;
    }
    done.map(|_| ())
}
