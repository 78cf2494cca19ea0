//! The ledger's one error type, and why a movement cannot be refunded.

use super::rules::Shortfall;
use crate::db::StoreError;

/// Errors of ledger operations.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient credits: {} available, {} held, {} required", .0.available, .0.held, .0.required)]
    Insufficient(Shortfall),
    #[error("unknown workspace")]
    UnknownWorkspace,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("this idempotency key was used with a different request")]
    IdempotencyConflict,
    #[error("no such reservation")]
    ReservationNotFound,
    #[error("the hold expired and was released by itself")]
    ReservationExpired,
    #[error("the reservation was already resolved")]
    ReservationResolved,
    #[error("no such transaction")]
    EntryNotFound,
    /// A history cursor that no page handed out.
    #[error("cursor is not valid; use the next_cursor of a previous page")]
    BadCursor,
    #[error("{0}")]
    NotRefundable(RefundRefusal),
    /// The gate's queue is full: nothing was charged; try again in a moment.
    #[error("the credit gate is busy")]
    Overloaded,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a movement cannot be refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// Only consumption is refunded (not grants, purchases or refunds).
    #[error("only a usage charge can be refunded")]
    NotACharge,
    /// A settled reservation charged the actual cost the product's server reported: final.
    #[error("a settled reservation is final; release a reservation whose work failed instead of settling it")]
    SettledReservation,
    /// Refunds are for work that failed just now, not for old usage.
    #[error("this charge is older than the refund window")]
    TooOld,
}

impl From<sqlx::Error> for LedgerError {
    fn from(err: sqlx::Error) -> Self {
        LedgerError::Store(StoreError::Database(err))
    }
}

impl crate::db::Retryable for LedgerError {
    /// Lock contention that another try may get past.
    fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::Store(e) if e.is_retryable())
    }
}
