//! The ledger's values: what a movement is given, what it answers, and what reads return.

use super::rules::Millis;
use app::domain::{Credits, EntryType, GrantKind};

/// Who caused a movement and what it belongs to (shown in history and exports).
#[derive(Clone, Debug, Default)]
pub struct EntryMeta {
    pub actor: String,
    pub description: String,
    pub action: Option<String>,
    pub model: Option<String>,
    pub project: Option<String>,
    pub session: Option<String>,
    pub payment_ref: Option<String>,
    /// The member's user id when a member of the workspace spends (for their budgets).
    pub member_id: Option<String>,
    /// The API key that spends, if one does (for its budgets).
    pub api_key_id: Option<String>,
}

impl EntryMeta {
    /// Who spends, as budgets see it.
    pub fn spender(&self) -> crate::spend::Spender {
        crate::spend::Spender {
            member: self.member_id.clone(),
            api_key: self.api_key_id.clone(),
            project: self.project.clone(),
            action: self.action.clone(),
        }
    }
}

/// A new lot of credits and the journal entry that records it.
#[derive(Clone, Debug)]
pub struct NewGrant {
    pub kind: GrantKind,
    pub credits: Credits,
    pub expires_at: Option<Millis>,
    /// `Grant` for free, promotional and subscription credits; `Purchase` or `AutoReload`
    /// for purchased ones.
    pub entry_type: EntryType,
    /// What created the lot (`operator`, `demo`, `purchase`, …) and its reference there.
    pub source: String,
    pub source_ref: Option<String>,
    pub note: Option<String>,
    pub meta: EntryMeta,
}

/// The outcome of a movement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub entry_id: String,
    pub seq: i64,
    /// Signed amount of the entry.
    pub amount: i64,
    /// Credits in all lots after the entry (the running balance of the journal).
    pub balance_after: i64,
    /// Credits spendable after the entry (live lots, holds excluded).
    pub available: i64,
}

/// A journal entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRecord {
    pub id: String,
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub entry_type: EntryType,
    pub amount: i64,
    pub balance_after: i64,
    pub actor: String,
    pub description: String,
    pub action: Option<String>,
    pub model: Option<String>,
    pub project: Option<String>,
    #[sqlx(rename = "session_ref")]
    pub session: Option<String>,
    pub payment_ref: Option<String>,
    pub created_at: Millis,
}

/// Which entries to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    pub entry_type: Option<EntryType>,
    /// Inclusive lower bound on `created_at`.
    pub from: Option<Millis>,
    /// Exclusive upper bound on `created_at`.
    pub until: Option<Millis>,
    /// Only entries older than this sequence number (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Spendable credits of one kind with one expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketRow {
    pub kind: GrantKind,
    pub expires_at: Option<Millis>,
    pub available: i64,
}

/// A workspace's standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSummary {
    pub available: i64,
    pub held: i64,
    pub total: i64,
    pub lifetime_added: i64,
    pub lifetime_spent: i64,
    /// The workspace's Low Balance threshold, read with the balance it is compared to.
    pub low_balance_threshold: i64,
    /// Whether the workspace ever saved Auto-reload settings.
    pub auto_reload_saved: bool,
    /// Whether the workspace has live budgets.
    pub has_budgets: bool,
    /// Soonest expiry first, never-expiring last.
    pub buckets: Vec<BucketRow>,
}

/// One lot an entry moved credits from or to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    pub lot_id: String,
    pub kind: GrantKind,
    pub amount: i64,
}

/// A check of the books of one workspace, re-derived from the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    pub account_total: i64,
    pub lots_remaining: i64,
    pub journal_sum: i64,
    pub entries: i64,
    /// Sequence numbers run 1..=entries and each `balance_after` is the running sum.
    pub sequence_consistent: bool,
    /// Every entry's per-lot trace adds up to its amount, and every trace row of the
    /// workspace's lots belongs to one of its entries.
    pub traces_consistent: bool,
    /// The account's held credits equal the lots' holds and the open reservations.
    pub holds_consistent: bool,
}

impl Audit {
    /// Do the books balance?
    pub fn balanced(&self) -> bool {
        self.account_total == self.lots_remaining
            && self.lots_remaining == self.journal_sum
            && self.sequence_consistent
            && self.traces_consistent
            && self.holds_consistent
    }
}

/// Consumption as the usage chart reads it: when (a day's start, once summed), credits spent,
/// action, model.
pub type Consumption = (Millis, i64, Option<String>, Option<String>);
