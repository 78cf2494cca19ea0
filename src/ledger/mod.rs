//! The credit ledger: grants (lots), the append-only journal, and the rules that move credits.
//!
//! `rules` holds the pure rules, `book` the in-memory reference model used by property tests,
//! and `store` applies the same plans to the database inside one transaction per movement.

mod batch;
pub mod book;
mod gate;
pub mod rules;
mod store;

pub use batch::{ChargeBatcher, SharedRender};
pub use gate::{Answer, BatchCharge, HoldReceipt, IdempotencyKey, NewHold, Render, Resolution};
pub(crate) use store::{grant_in, take_back_in};
pub use store::{
    AccountSummary, Audit, BucketRow, EntryMeta, EntryRecord, HistoryQuery, LedgerError, NewGrant,
    Receipt, RefundRefusal, TraceRow,
};
