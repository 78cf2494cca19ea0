//! Trying a transaction again when the database reports lock contention.

use super::{Store, StoreError};
use std::future::Future;
use std::time::Duration;

/// How often a transaction is tried when the database reports lock contention.
const MAX_ATTEMPTS: u32 = 8;

/// Errors that another try of the same transaction may get past.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }
}

impl Store {
    /// Runs `attempt` again while the database reports lock contention, with a short,
    /// growing, jittered pause. Bounded: after [`MAX_ATTEMPTS`] the error goes to the caller.
    pub(crate) async fn retrying<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(err) if err.is_retryable() && tries < MAX_ATTEMPTS => {
                    let jitter = rand::random::<u64>() % 5;
                    tokio::time::sleep(
                        Duration::from_millis(2u64 << tries.min(6)) + Duration::from_millis(jitter),
                    )
                    .await;
                }
                other => return other,
            }
        }
    }
}
