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
                Err(err) => match pause_before_retry(&err, tries) {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => return Err(err),
                },
                done => return done,
            }
        }
    }
}

/// How long to wait before try `tries + 1` of a transaction that failed with `err`, or `None`
/// when it should not be tried again: the error is not lock contention, or the tries are
/// used up. The pause is short, grows with each try and is jittered.
pub(crate) fn pause_before_retry(err: &impl Retryable, tries: u32) -> Option<Duration> {
    (err.is_retryable() && tries < MAX_ATTEMPTS).then(|| {
        let jitter = rand::random::<u64>() % 5;
        Duration::from_millis(2u64 << tries.min(6)) + Duration::from_millis(jitter)
    })
}
