//! The credit ledger: grants (lots), the append-only journal, and the rules that move credits.
//!
//! `rules` holds the pure rules and `book` the in-memory reference model used by property
//! tests. The database side: `store` (the books of one transaction: lock, read, write back),
//! `movements` (grants, charges, expiry), `gate` (idempotent charges, holds, refunds) with
//! `batch` (group commit), `reads`, `usage` (the usage chart's kept sums) and `audit`; `types` and `error` are their values.
//! `views` turns ledger rows into the views the Billing page and the API share.

mod audit;
mod batch;
pub mod book;
mod error;
mod gate;
mod movements;
mod pools;
mod reads;
pub mod rules;
mod store;
mod types;
mod usage;
pub mod views;

pub use batch::ChargeBatcher;
pub use error::{LedgerError, RefundRefusal};
pub use gate::{
    BatchCharge, ChargeOutcome, HoldOutcome, HoldReceipt, IdempotencyKey, NewHold, Refusal,
    Resolution,
};
pub(crate) use movements::{grant_in, take_back_in};
pub use pools::NewPool;
pub use types::{
    AccountSummary, Audit, BucketRow, EntryMeta, EntryRecord, HistoryQuery, NewGrant, Receipt,
    TraceRow,
};
pub use usage::{ConsumptionRead, FOLD_AFTER};
