//! The store's conformance suite: every story runs against SQLite and PostgreSQL alike.

#[path = "../support/mod.rs"]
mod support;

mod budgets;
mod concurrency;
mod connections;
mod lots;
mod story;
mod unlocked;
mod usage;
mod writes;

/// Batches in flight per batcher on PostgreSQL in these stories: several, as on a machine
/// with cores to spare, so that batches of one instance race each other too.
pub const SHARDS: usize = 4;

/// Runs one story against both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($story:path, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            let db = $crate::support::TestDb::sqlite().await;
            $story(&db.store).await;
            db.finish().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            if let Some(db) = $crate::support::TestDb::postgres().await {
                $story(&db.store).await;
                db.finish().await;
            }
        }
    };
}
