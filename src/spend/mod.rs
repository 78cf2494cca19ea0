//! Spend controls below the workspace: budgets on a member, an API key or a project.
//!
//! A budget has a period (a UTC day, week or month, or a lifetime), a limit in credits and an
//! enforcement: `hard` refuses a charge or hold that would pass the limit, `soft` lets it
//! through and announces it. Several budgets may apply to one charge; every hard one must let
//! it pass. Held credits count as used until their settle or release moves them.
//!
//! An earmarked pool keeps some credits of the balance for one project or API key: only that
//! scope spends them (first; then, if the pool allows, the shared balance), and nobody else
//! reaches them. `pools` holds its rules, including what happens when lots expire beneath.
//!
//! `rules` holds the pure rules of budgets; `store` the SQL, including the [`store::BudgetBook`] the gate
//! reads and moves inside its own transaction, after locking the workspace's account row —
//! that lock is what keeps a budget exact under concurrency, on any number of instances.

pub mod pools;
pub mod rules;
mod store;

pub use rules::{Enforcement, LimitHit, Period, Scope, Spender, Standing};
pub(crate) use store::{pools_in, remove_pool_in, save_pool_in, BudgetBook};
pub use store::{BudgetChange, BudgetView, NewBudget, PoolView};

use crate::db::StoreError;

/// Errors of budget operations.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such budget")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SpendError {
    fn from(err: sqlx::Error) -> Self {
        SpendError::Store(StoreError::Database(err))
    }
}

impl crate::db::Retryable for SpendError {
    /// Lock contention that another try may get past.
    fn is_retryable(&self) -> bool {
        matches!(self, SpendError::Store(e) if e.is_retryable())
    }
}
