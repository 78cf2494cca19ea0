//! An in-memory book: the reference model of the ledger.
//!
//! It applies the same plans as the database store, with none of the storage. Property tests
//! run random sequences of grants, charges and expiries through it and check the invariants;
//! the store's conformance tests check that the database agrees with it.

use super::rules::{
    apply_draws, plan_charge, plan_expiry, spendable, Draw, Lot, Millis, Shortfall,
};
use app::domain::{Credits, EntryType, GrantKind};

/// One journal entry of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookEntry {
    pub entry_type: EntryType,
    pub amount: i64,
    pub balance_after: i64,
    pub draws: Vec<Draw>,
}

/// Lots plus an append-only journal.
#[derive(Clone, Debug, Default)]
pub struct Book {
    pub lots: Vec<Lot>,
    pub journal: Vec<BookEntry>,
    next_id: u64,
}

impl Book {
    /// Credits in all lots: what the journal's amounts must add up to.
    pub fn total(&self) -> i64 {
        self.lots.iter().map(|l| l.remaining).sum()
    }

    /// Credits a new charge could use now.
    pub fn spendable(&self, now: Millis) -> i64 {
        spendable(&self.lots, now)
    }

    fn record(&mut self, entry_type: EntryType, amount: i64, draws: Vec<Draw>) {
        let balance_after = self.total();
        self.journal.push(BookEntry {
            entry_type,
            amount,
            balance_after,
            draws,
        });
    }

    /// Adds a lot and its journal entry, writing off lapsed lots first (as the store does).
    pub fn grant(
        &mut self,
        kind: GrantKind,
        credits: Credits,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> String {
        self.expire(now);
        self.next_id += 1;
        let id = format!("lot{:06}", self.next_id);
        self.lots.push(Lot {
            id: id.clone(),
            kind,
            remaining: credits.get(),
            held: 0,
            expires_at,
            created_at: now,
        });
        let entry_type = match kind {
            GrantKind::Purchased => EntryType::Purchase,
            _ => EntryType::Grant,
        };
        let draw = Draw {
            lot_id: id.clone(),
            credits: credits.get(),
        };
        self.record(entry_type, credits.get(), vec![draw]);
        id
    }

    /// Spends `credits` now, or changes nothing and reports the shortfall.
    pub fn charge(&mut self, credits: Credits, now: Millis) -> Result<(), Shortfall> {
        self.expire(now);
        let draws = plan_charge(&self.lots, now, credits)?;
        apply_draws(&mut self.lots, &draws);
        self.record(EntryType::Consumption, -credits.get(), draws);
        Ok(())
    }

    /// Writes one expiry entry for all lots lapsed at `now` (none when nothing lapsed).
    pub fn expire(&mut self, now: Millis) {
        let draws = plan_expiry(&self.lots, now);
        if draws.is_empty() {
            return;
        }
        let amount: i64 = draws.iter().map(|d| d.credits).sum();
        apply_draws(&mut self.lots, &draws);
        self.record(EntryType::Expiry, -amount, draws);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Grant {
            kind: GrantKind,
            credits: i64,
            expires_in: Option<i64>,
        },
        Charge(i64),
        Tick(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let kind = prop::sample::select(GrantKind::ALL.to_vec());
        prop_oneof![
            (kind, 1..5_000_i64, prop::option::of(1..100_i64)).prop_map(
                |(kind, credits, expires_in)| {
                    // Purchased credits never expire.
                    let expires_in = if kind == GrantKind::Purchased {
                        None
                    } else {
                        expires_in
                    };
                    Op::Grant {
                        kind,
                        credits,
                        expires_in,
                    }
                }
            ),
            (1..3_000_i64).prop_map(Op::Charge),
            (0..40_i64).prop_map(Op::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Random grants, charges and the passage of time never make a balance negative and
        /// always leave the books balanced, with a consistent running balance.
        #[test]
        fn random_movements_keep_the_books_balanced(ops in prop::collection::vec(op(), 1..80)) {
            let mut book = Book::default();
            let mut now: Millis = 1_000;
            for op in ops {
                let before = book.clone();
                match op {
                    Op::Grant { kind, credits, expires_in } => {
                        book.grant(kind, Credits::new(credits).unwrap(), expires_in.map(|d| now + d), now);
                    }
                    Op::Charge(credits) => {
                        let spendable_before = {
                            let mut b = before.clone();
                            b.expire(now);
                            b.spendable(now)
                        };
                        match book.charge(Credits::new(credits).unwrap(), now) {
                            Ok(()) => {
                                prop_assert!(credits <= spendable_before);
                                let last = book.journal.last().unwrap();
                                let drawn: i64 = last.draws.iter().map(|d| d.credits).sum();
                                prop_assert_eq!(drawn, credits, "the per-lot trace adds up to the charge");
                            }
                            Err(shortfall) => {
                                prop_assert!(credits > spendable_before);
                                prop_assert_eq!(shortfall.available, spendable_before);
                            }
                        }
                    }
                    Op::Tick(ms) => {
                        now += ms;
                        book.expire(now);
                    }
                }
                // Invariant 1: nothing is ever negative.
                prop_assert!(book.spendable(now) >= 0);
                prop_assert!(book.lots.iter().all(|l| l.remaining >= l.held && l.held >= 0));
                // Invariant 2: the journal's amounts add up to the credits in the lots.
                let journal_sum: i64 = book.journal.iter().map(|e| e.amount).sum();
                prop_assert_eq!(journal_sum, book.total());
                // Each entry's balance_after is the running sum up to it.
                let mut running = 0;
                for entry in &book.journal {
                    running += entry.amount;
                    prop_assert_eq!(entry.balance_after, running);
                    prop_assert!(entry.balance_after >= 0);
                }
                // Entries are append-only: the earlier journal is a prefix of the new one.
                prop_assert_eq!(&book.journal[..before.journal.len()], &before.journal[..]);
            }
        }

        /// A charge never draws from a lapsed lot, and always uses soon-expiring credits
        /// before later ones.
        #[test]
        fn charges_follow_the_drawdown_order(
            grants in prop::collection::vec((prop::sample::select(GrantKind::ALL.to_vec()), 1..500_i64, prop::option::of(1..50_i64)), 1..12),
            charge in 1..2_000_i64,
        ) {
            let mut book = Book::default();
            for (i, (kind, credits, expires)) in grants.into_iter().enumerate() {
                book.grant(kind, Credits::new(credits).unwrap(), expires.map(|d| 100 + d), i as i64);
            }
            let now = 100;
            let lots_before = book.lots.clone();
            if book.charge(Credits::new(charge).unwrap(), now).is_ok() {
                let draws = &book.journal.last().unwrap().draws;
                // Every lot drawn before the last one was emptied: no later lot was touched
                // while an earlier one still had spendable credits.
                let mut ordered: Vec<_> = lots_before.iter().filter(|l| l.is_live(now)).collect();
                ordered.sort_by(|a, b| super::super::rules::drawdown_order(a, b));
                let used: Vec<_> = ordered.iter().take(draws.len()).map(|l| l.id.clone()).collect();
                let drawn: Vec<_> = draws.iter().map(|d| d.lot_id.clone()).collect();
                prop_assert_eq!(drawn, used);
                for (draw, lot) in draws.iter().zip(ordered.iter()).take(draws.len().saturating_sub(1)) {
                    prop_assert_eq!(draw.credits, lot.remaining);
                }
            }
        }
    }

    #[test]
    fn expiry_entries_keep_the_books_balanced() {
        let mut book = Book::default();
        book.grant(
            GrantKind::Promotional,
            Credits::new(300).unwrap(),
            Some(50),
            0,
        );
        book.grant(GrantKind::Purchased, Credits::new(100).unwrap(), None, 0);
        book.charge(Credits::new(120).unwrap(), 10).unwrap();
        book.expire(50);
        let last = book.journal.last().unwrap();
        assert_eq!(
            (last.entry_type, last.amount, last.balance_after),
            (EntryType::Expiry, -180, 100)
        );
        assert_eq!(book.spendable(50), 100);
    }
}
