//! Credit packs, custom amounts and the life of a purchase, as pure rules.

use super::kinds::{spelled_enum, UnknownValue};
use super::{CreditUnit, Credits, Currency, Money};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a purchase came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseOrigin {
    Pack,
    Custom,
    AutoReload,
}

spelled_enum!(PurchaseOrigin, "purchase origin", {
    Pack => "pack",
    Custom => "custom",
    AutoReload => "auto_reload",
});

/// Where a purchase stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Checkout started; nothing paid yet.
    Open,
    /// Paid or charged, waiting for the payment to be confirmed.
    Processing,
    /// Credited.
    Succeeded,
    /// The payment failed. Another try in the same checkout may still succeed.
    Failed,
    /// Abandoned or expired before any payment.
    Canceled,
    /// Credited, then disputed or refunded; the credits left were taken back.
    Reversed,
}

spelled_enum!(PurchaseStatus, "purchase status", {
    Open => "open",
    Processing => "processing",
    Succeeded => "succeeded",
    Failed => "failed",
    Canceled => "canceled",
    Reversed => "reversed",
});

impl PurchaseStatus {
    /// A payment may still arrive for it.
    pub const fn is_pending(self) -> bool {
        matches!(self, PurchaseStatus::Open | PurchaseStatus::Processing)
    }

    /// A label for people.
    pub const fn label(self) -> &'static str {
        match self {
            PurchaseStatus::Open => "Awaiting payment",
            PurchaseStatus::Processing => "Processing",
            PurchaseStatus::Succeeded => "Paid",
            PurchaseStatus::Failed => "Payment failed",
            PurchaseStatus::Canceled => "Canceled",
            PurchaseStatus::Reversed => "Reversed",
        }
    }
}

/// What Stripe says about a purchase's payment, read from Stripe itself (never from the
/// browser).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentObservation {
    /// Not paid yet (checkout open, or a payment waiting for the customer).
    Open,
    /// The customer paid; the payment is not final yet.
    Processing,
    /// The money is collected.
    Paid,
    /// A payment attempt failed, with Stripe's reason.
    Failed(String),
    /// The checkout expired or was abandoned without payment.
    Expired,
    /// A collected payment was disputed or refunded.
    Reversed(String),
}

/// What applying an observation to a purchase does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurchaseStep {
    /// Nothing changes (a duplicate, stale or out-of-order observation).
    Nothing,
    /// Mark it processing.
    Processing,
    /// Grant the credits and mark it succeeded. Happens at most once per purchase.
    Grant,
    /// Mark it failed and tell the billing managers.
    Fail(String),
    /// Mark it canceled.
    Cancel,
    /// Take the credits back with a compensating entry and mark it reversed.
    Reverse(String),
}

/// The one transition table for purchases. A grant happens only from a state that has not
/// been credited, so however often and in whatever order observations arrive, a purchase is
/// credited at most once, and reversed at most once after that.
pub fn next_step(status: PurchaseStatus, observed: &PaymentObservation) -> PurchaseStep {
    use PaymentObservation as O;
    use PurchaseStatus as S;
    match (status, observed) {
        (S::Open | S::Processing | S::Failed | S::Canceled, O::Paid) => PurchaseStep::Grant,
        (S::Open | S::Failed, O::Processing) => PurchaseStep::Processing,
        (S::Open | S::Processing, O::Failed(reason)) => PurchaseStep::Fail(reason.clone()),
        (S::Open, O::Expired) => PurchaseStep::Cancel,
        (S::Succeeded, O::Reversed(reason)) => PurchaseStep::Reverse(reason.clone()),
        // Disputed or refunded before it was credited: never credited, marked failed.
        (S::Open | S::Processing, O::Reversed(reason)) => PurchaseStep::Fail(reason.clone()),
        _ => PurchaseStep::Nothing,
    }
}

/// The rules of a custom amount: whole increments between a minimum and a maximum, priced
/// per increment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomAmountTerms {
    pub increment: Credits,
    pub min: Credits,
    pub max: Credits,
    /// The price of one increment.
    pub price_per_increment: Money,
}

/// Why a custom amount cannot be bought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomAmountError {
    NotANumber,
    TooSmall(Credits),
    TooLarge(Credits),
    NotAnIncrement(Credits),
}

impl CustomAmountError {
    /// The reason, with amounts in `unit`.
    pub fn explain(&self, unit: &CreditUnit) -> String {
        match self {
            CustomAmountError::NotANumber if unit.is_money() => {
                format!("enter an amount in {}", unit.noun())
            }
            CustomAmountError::NotANumber => "enter a whole number of credits".to_owned(),
            CustomAmountError::TooSmall(min) => {
                format!("the smallest custom amount is {}", unit.amount(*min))
            }
            CustomAmountError::TooLarge(max) => {
                format!("the largest custom amount is {}", unit.amount(*max))
            }
            CustomAmountError::NotAnIncrement(step) => {
                format!("custom amounts come in steps of {}", unit.amount(*step))
            }
        }
    }
}

impl fmt::Display for CustomAmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain(&CreditUnit::Credits))
    }
}

impl std::error::Error for CustomAmountError {}

impl CustomAmountTerms {
    /// Tally's terms: 1,000-credit steps from 5,000 to 1,000,000, at $1.20 per 1,000.
    pub fn standard() -> Self {
        CustomAmountTerms {
            increment: Credits::new(1_000).expect("in range"),
            min: Credits::new(5_000).expect("in range"),
            max: Credits::new(1_000_000).expect("in range"),
            price_per_increment: Money::new(120, Currency::usd()).expect("positive"),
        }
    }

    /// Parses typed text ("25,000" or "25000") into a valid amount.
    pub fn parse(&self, text: &str) -> Result<Credits, CustomAmountError> {
        let cleaned: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ',' | '_' | ' '))
            .collect();
        let credits = Credits::parse(&cleaned).map_err(|_| CustomAmountError::NotANumber)?;
        self.check(credits)
    }

    /// Checks an amount against the terms.
    pub fn check(&self, credits: Credits) -> Result<Credits, CustomAmountError> {
        if credits < self.min {
            Err(CustomAmountError::TooSmall(self.min))
        } else if credits > self.max {
            Err(CustomAmountError::TooLarge(self.max))
        } else if credits.get() % self.increment.get() != 0 {
            Err(CustomAmountError::NotAnIncrement(self.increment))
        } else {
            Ok(credits)
        }
    }

    /// The price of a valid amount.
    pub fn price(&self, credits: Credits) -> Result<Money, CustomAmountError> {
        let credits = self.check(credits)?;
        let steps = credits.get() / self.increment.get();
        Ok(Money::new(
            steps * self.price_per_increment.amount_minor(),
            self.price_per_increment.currency().clone(),
        )
        .expect("a positive price times a positive count"))
    }
}

/// Price per 1,000 credits in minor units, rounded to the nearest (half up), for display.
pub fn price_per_thousand(price: &Money, credits: Credits) -> Money {
    let credits = credits.get().max(1) as i128;
    let per = (price.amount_minor() as i128 * 1_000 * 2 + credits) / (credits * 2);
    Money::new(per as i64, price.currency().clone()).expect("non-negative")
}

/// Is `a` strictly cheaper per credit than `b`? Exact, by cross-multiplying.
pub fn cheaper_per_credit(a: (&Money, Credits), b: (&Money, Credits)) -> bool {
    (a.0.amount_minor() as i128) * (b.1.get() as i128)
        < (b.0.amount_minor() as i128) * (a.1.get() as i128)
}

/// The index of the offer with the lowest price per credit (the first on a tie), among
/// offers in one currency; `None` when there are fewer than two.
pub fn best_value(offers: &[(Money, Credits)]) -> Option<usize> {
    if offers.len() < 2 {
        return None;
    }
    let mut best = 0;
    for (i, offer) in offers.iter().enumerate().skip(1) {
        if cheaper_per_credit((&offer.0, offer.1), (&offers[best].0, offers[best].1)) {
            best = i;
        }
    }
    Some(best)
}

/// The bonus of a pack at `now` (milliseconds): its bonus inside `[starts, ends)`, else zero.
pub fn bonus_at(bonus: Credits, starts_at: Option<i64>, ends_at: Option<i64>, now: i64) -> Credits {
    let started = starts_at.is_none_or(|s| s <= now);
    let running = ends_at.is_none_or(|e| now < e);
    if started && running {
        bonus
    } else {
        Credits::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::usd()).unwrap()
    }

    fn c(n: i64) -> Credits {
        Credits::new(n).unwrap()
    }

    #[test]
    fn custom_amounts_must_be_whole_steps_within_bounds() {
        let terms = CustomAmountTerms::standard();
        assert_eq!(terms.parse("25,000"), Ok(c(25_000)));
        assert_eq!(
            terms.parse("4000"),
            Err(CustomAmountError::TooSmall(c(5_000)))
        );
        assert_eq!(
            terms.parse("2000000"),
            Err(CustomAmountError::TooLarge(c(1_000_000)))
        );
        assert_eq!(
            terms.parse("5500"),
            Err(CustomAmountError::NotAnIncrement(c(1_000)))
        );
        assert_eq!(terms.parse("lots"), Err(CustomAmountError::NotANumber));
        assert_eq!(terms.parse("-5000"), Err(CustomAmountError::NotANumber));
        assert_eq!(terms.price(c(25_000)).unwrap(), usd(3_000));
    }

    #[test]
    fn the_purchase_table_answers_every_status_and_observation() {
        use PaymentObservation as O;
        use PurchaseStatus as S;
        use PurchaseStep as P;
        let why = || "why".to_owned();
        let observations = [
            O::Open,
            O::Processing,
            O::Paid,
            O::Failed(why()),
            O::Expired,
            O::Reversed(why()),
        ];
        // Rows: the purchase's status; columns: the observations above, in order.
        let table = [
            (
                S::Open,
                [
                    P::Nothing,
                    P::Processing,
                    P::Grant,
                    P::Fail(why()),
                    P::Cancel,
                    P::Fail(why()),
                ],
            ),
            (
                S::Processing,
                [
                    P::Nothing,
                    P::Nothing,
                    P::Grant,
                    P::Fail(why()),
                    P::Nothing,
                    P::Fail(why()),
                ],
            ),
            (
                S::Succeeded,
                [
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                    P::Reverse(why()),
                ],
            ),
            (
                S::Failed,
                [
                    P::Nothing,
                    P::Processing,
                    P::Grant,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                ],
            ),
            (
                S::Canceled,
                [
                    P::Nothing,
                    P::Nothing,
                    P::Grant,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                ],
            ),
            (
                S::Reversed,
                [
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                    P::Nothing,
                ],
            ),
        ];
        for (status, steps) in table {
            for (observed, expected) in observations.iter().zip(steps) {
                assert_eq!(
                    next_step(status, observed),
                    expected,
                    "{status:?} + {observed:?}"
                );
            }
        }
    }

    #[test]
    fn only_open_and_processing_purchases_wait_for_a_payment() {
        let pending: Vec<_> = PurchaseStatus::ALL
            .iter()
            .filter(|s| s.is_pending())
            .copied()
            .collect();
        assert_eq!(pending, [PurchaseStatus::Open, PurchaseStatus::Processing]);
        assert_eq!(PurchaseStatus::Open.label(), "Awaiting payment");
        assert_eq!(PurchaseStatus::Failed.label(), "Payment failed");
        let labels: std::collections::HashSet<_> =
            PurchaseStatus::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels.len(), PurchaseStatus::ALL.len());
    }

    #[test]
    fn the_bounds_of_a_custom_amount_are_themselves_allowed() {
        let terms = CustomAmountTerms::standard();
        assert_eq!(terms.check(c(5_000)), Ok(c(5_000)));
        assert_eq!(terms.check(c(1_000_000)), Ok(c(1_000_000)));
    }

    #[test]
    fn cheaper_per_credit_compares_exactly() {
        // $10.00 for 500 is 2¢ a credit; $1.00 for 10 is 10¢.
        let (a, b) = ((usd(1_000), c(500)), (usd(100), c(10)));
        assert!(cheaper_per_credit((&a.0, a.1), (&b.0, b.1)));
        assert!(!cheaper_per_credit((&b.0, b.1), (&a.0, a.1)));
        // The same price per credit is not cheaper either way.
        let (x, y) = ((usd(100), c(1_000)), (usd(200), c(2_000)));
        assert!(!cheaper_per_credit((&x.0, x.1), (&y.0, y.1)));
        assert!(!cheaper_per_credit((&y.0, y.1), (&x.0, x.1)));
        // Two offers are enough to name a best value; on a tie the first keeps it.
        assert_eq!(best_value(&[b.clone(), a.clone()]), Some(1));
        assert_eq!(best_value(&[x, y]), Some(0));
    }

    #[test]
    fn best_value_is_the_lowest_price_per_credit() {
        let offers = vec![
            (usd(500), c(5_000)),
            (usd(2_000), c(25_000)),
            (usd(7_500), c(100_000)),
        ];
        assert_eq!(best_value(&offers), Some(2));
        assert_eq!(best_value(&offers[..1]), None);
        assert_eq!(price_per_thousand(&usd(7_500), c(100_000)), usd(75));
        assert_eq!(price_per_thousand(&usd(2_000), c(25_000)), usd(80));
    }

    #[test]
    fn bonus_runs_inside_its_window_only() {
        assert_eq!(bonus_at(c(500), Some(10), Some(20), 9), Credits::ZERO);
        assert_eq!(bonus_at(c(500), Some(10), Some(20), 10), c(500));
        assert_eq!(bonus_at(c(500), Some(10), Some(20), 20), Credits::ZERO);
        assert_eq!(bonus_at(c(500), None, None, 0), c(500));
    }

    #[test]
    fn a_failed_checkout_can_still_be_paid_on_a_second_try() {
        let failed = next_step(
            PurchaseStatus::Open,
            &PaymentObservation::Failed("declined".into()),
        );
        assert_eq!(failed, PurchaseStep::Fail("declined".into()));
        assert_eq!(
            next_step(PurchaseStatus::Failed, &PaymentObservation::Paid),
            PurchaseStep::Grant
        );
        assert_eq!(
            next_step(
                PurchaseStatus::Succeeded,
                &PaymentObservation::Failed("late".into())
            ),
            PurchaseStep::Nothing
        );
    }

    fn observation() -> impl Strategy<Value = PaymentObservation> {
        prop_oneof![
            Just(PaymentObservation::Open),
            Just(PaymentObservation::Processing),
            Just(PaymentObservation::Paid),
            Just(PaymentObservation::Failed("declined".into())),
            Just(PaymentObservation::Expired),
            Just(PaymentObservation::Reversed("disputed".into())),
        ]
    }

    fn apply(status: PurchaseStatus, step: &PurchaseStep) -> PurchaseStatus {
        match step {
            PurchaseStep::Nothing => status,
            PurchaseStep::Processing => PurchaseStatus::Processing,
            PurchaseStep::Grant => PurchaseStatus::Succeeded,
            PurchaseStep::Fail(_) => PurchaseStatus::Failed,
            PurchaseStep::Cancel => PurchaseStatus::Canceled,
            PurchaseStep::Reverse(_) => PurchaseStatus::Reversed,
        }
    }

    proptest! {
        /// Any sequence of observations, duplicated and reordered as webhooks are, credits a
        /// purchase at most once, exactly once if a payment was ever seen, and reverses only
        /// what was credited.
        #[test]
        fn observations_in_any_order_grant_at_most_once(
            seen in proptest::collection::vec(observation(), 0..24)
        ) {
            let mut status = PurchaseStatus::Open;
            let (mut grants, mut reversals) = (0, 0);
            for observed in &seen {
                let step = next_step(status, observed);
                match step {
                    PurchaseStep::Grant => grants += 1,
                    PurchaseStep::Reverse(_) => {
                        prop_assert_eq!(grants, 1);
                        reversals += 1;
                    }
                    _ => {}
                }
                status = apply(status, &step);
            }
            prop_assert!(grants <= 1);
            prop_assert!(reversals <= grants);
            let paid = seen.contains(&PaymentObservation::Paid);
            prop_assert_eq!(grants == 1, paid);
        }

        /// Custom prices are linear in the number of steps and never zero.
        #[test]
        fn custom_prices_are_steps_times_the_step_price(steps in 5i64..=1_000) {
            let terms = CustomAmountTerms::standard();
            let price = terms.price(c(steps * 1_000)).unwrap();
            prop_assert_eq!(price.amount_minor(), steps * 120);
        }
    }
}
