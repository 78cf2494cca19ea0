//! Subscription credits: how many credits a paid invoice of a plan grants, and until when.
//!
//! Plans give credits per paid seat per month. A monthly invoice grants one month's worth,
//! expiring when its period ends (the next period's invoice brings the next month's); an
//! annual invoice grants twelve months' worth at once, expiring at the end of the year. A plan
//! flagged `rollover` grants credits that never expire. Trial periods (nothing paid) grant
//! nothing. A seat added mid-period is granted on the invoice that charges for it, once per
//! seat and period, so duplicate or reordered invoices never grant twice.

use super::kinds::{spelled_enum, UnknownValue};
use super::Credits;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Where a subscription stands, as Stripe reports it (other Stripe states map onto these).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PastDue,
    Canceled,
}

spelled_enum!(SubscriptionStatus, "subscription status", {
    Trialing => "trialing",
    Active => "active",
    PastDue => "past_due",
    Canceled => "canceled",
});

impl SubscriptionStatus {
    /// Reads Stripe's status: `incomplete` and `unpaid` count as past due (a payment is owed),
    /// `incomplete_expired` and `paused` as canceled (no service is being paid for).
    pub fn from_stripe(status: &str) -> Option<SubscriptionStatus> {
        Some(match status {
            "trialing" => SubscriptionStatus::Trialing,
            "active" => SubscriptionStatus::Active,
            "past_due" | "incomplete" | "unpaid" => SubscriptionStatus::PastDue,
            "canceled" | "incomplete_expired" | "paused" => SubscriptionStatus::Canceled,
            _ => return None,
        })
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            SubscriptionStatus::Trialing => "Trial",
            SubscriptionStatus::Active => "Active",
            SubscriptionStatus::PastDue => "Payment overdue",
            SubscriptionStatus::Canceled => "Canceled",
        }
    }
}

/// How often a subscription is billed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingInterval {
    Month,
    Year,
}

spelled_enum!(BillingInterval, "billing interval", {
    Month => "month",
    Year => "year",
});

impl BillingInterval {
    /// Months of credits one invoice carries.
    pub fn months(self) -> i64 {
        match self {
            BillingInterval::Month => 1,
            BillingInterval::Year => 12,
        }
    }

    /// "monthly" or "annual".
    pub fn adjective(self) -> &'static str {
        match self {
            BillingInterval::Month => "monthly",
            BillingInterval::Year => "annual",
        }
    }
}

/// What a plan gives in credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    /// Credits per paid seat per month.
    pub credits_per_seat: Credits,
    /// Credits roll over (never expire) instead of lapsing at the period's end.
    pub rollover: bool,
}

/// The facts of one paid invoice that decide its credits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidInvoice {
    /// What the invoice charges for the period's seats, in minor units (prorations of an
    /// earlier period left out); zero for a trial period.
    pub charged: i64,
    /// Seats the invoice charges for.
    pub seats: u32,
    pub interval: BillingInterval,
    /// The service period the invoice pays for.
    pub period_start: Millis,
    pub period_end: Millis,
}

/// The grant an invoice makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionGrant {
    pub credits: Credits,
    /// Seats newly granted for the period (recorded so a later invoice for the same period
    /// grants only seats added since).
    pub seats: u32,
    /// `None` for a rollover plan.
    pub expires_at: Option<Millis>,
}

/// Why an invoice grants nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoGrant {
    /// Nothing was paid (a trial).
    Trial,
    /// Every seat of this period has been granted already.
    AlreadyGranted,
    /// The period has ended; its credits would lapse at once.
    PeriodOver,
    /// The plan gives no credits.
    NoCredits,
}

/// The credits an invoice grants, given the seats already granted for the same period.
pub fn invoice_grant(
    plan: &PlanTerms,
    invoice: &PaidInvoice,
    seats_already_granted: u32,
    now: Millis,
) -> Result<SubscriptionGrant, NoGrant> {
    if invoice.charged <= 0 {
        return Err(NoGrant::Trial);
    }
    if !plan.rollover && invoice.period_end <= now {
        return Err(NoGrant::PeriodOver);
    }
    let seats = invoice.seats.saturating_sub(seats_already_granted);
    if seats == 0 {
        return Err(NoGrant::AlreadyGranted);
    }
    let credits = plan
        .credits_per_seat
        .get()
        .checked_mul(i64::from(seats))
        .and_then(|c| c.checked_mul(invoice.interval.months()))
        .and_then(|c| Credits::new(c).ok())
        .filter(|c| !c.is_zero())
        .ok_or(NoGrant::NoCredits)?;
    Ok(SubscriptionGrant {
        credits,
        seats,
        expires_at: (!plan.rollover).then_some(invoice.period_end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: Millis = 86_400_000;

    fn plan(per_seat: i64, rollover: bool) -> PlanTerms {
        PlanTerms {
            credits_per_seat: Credits::new(per_seat).unwrap(),
            rollover,
        }
    }

    fn invoice(seats: u32, interval: BillingInterval, paid: i64) -> PaidInvoice {
        let days = if interval == BillingInterval::Year {
            365
        } else {
            30
        };
        PaidInvoice {
            charged: paid,
            seats,
            interval,
            period_start: 0,
            period_end: days * DAY,
        }
    }

    #[test]
    fn stripe_statuses_read_as_tallys_and_people_read_them() {
        use SubscriptionStatus as S;
        for (stripe, ours, label) in [
            ("trialing", S::Trialing, "Trial"),
            ("active", S::Active, "Active"),
            ("past_due", S::PastDue, "Payment overdue"),
            ("incomplete", S::PastDue, "Payment overdue"),
            ("unpaid", S::PastDue, "Payment overdue"),
            ("canceled", S::Canceled, "Canceled"),
            ("incomplete_expired", S::Canceled, "Canceled"),
            ("paused", S::Canceled, "Canceled"),
        ] {
            assert_eq!(S::from_stripe(stripe), Some(ours), "{stripe}");
            assert_eq!(ours.label(), label);
        }
        assert_eq!(S::from_stripe("on_fire"), None);
        assert_eq!(BillingInterval::Month.adjective(), "monthly");
        assert_eq!(BillingInterval::Year.adjective(), "annual");
    }

    #[test]
    fn monthly_invoices_grant_per_seat_until_the_period_ends() {
        let got = invoice_grant(
            &plan(1_000, false),
            &invoice(5, BillingInterval::Month, 5_000),
            0,
            DAY,
        )
        .unwrap();
        assert_eq!(got.credits.get(), 5_000);
        assert_eq!(got.expires_at, Some(30 * DAY));
    }

    #[test]
    fn annual_invoices_grant_twelve_months_at_once() {
        let got = invoice_grant(
            &plan(1_000, false),
            &invoice(2, BillingInterval::Year, 20_000),
            0,
            DAY,
        )
        .unwrap();
        assert_eq!(got.credits.get(), 24_000);
        assert_eq!(got.expires_at, Some(365 * DAY));
    }

    #[test]
    fn rollover_plans_grant_credits_that_never_expire() {
        let got = invoice_grant(
            &plan(1_000, true),
            &invoice(1, BillingInterval::Month, 900),
            0,
            40 * DAY,
        )
        .unwrap();
        assert_eq!(got.expires_at, None, "and a late invoice still grants");
    }

    #[test]
    fn trials_late_invoices_and_repeats_grant_nothing() {
        let p = plan(1_000, false);
        assert_eq!(
            invoice_grant(&p, &invoice(3, BillingInterval::Month, 0), 0, DAY),
            Err(NoGrant::Trial)
        );
        assert_eq!(
            invoice_grant(&p, &invoice(3, BillingInterval::Month, 100), 0, 30 * DAY),
            Err(NoGrant::PeriodOver)
        );
        assert_eq!(
            invoice_grant(&p, &invoice(3, BillingInterval::Month, 100), 3, DAY),
            Err(NoGrant::AlreadyGranted)
        );
    }

    #[test]
    fn added_seats_are_granted_once() {
        let got = invoice_grant(
            &plan(1_000, false),
            &invoice(5, BillingInterval::Month, 100),
            3,
            DAY,
        )
        .unwrap();
        assert_eq!((got.seats, got.credits.get()), (2, 2_000));
    }

    #[test]
    fn stripe_statuses_map_onto_four() {
        assert_eq!(
            SubscriptionStatus::from_stripe("unpaid"),
            Some(SubscriptionStatus::PastDue)
        );
        assert_eq!(
            SubscriptionStatus::from_stripe("paused"),
            Some(SubscriptionStatus::Canceled)
        );
        assert_eq!(SubscriptionStatus::from_stripe("nonsense"), None);
    }

    proptest! {
        /// However invoices for one period arrive (repeated, reordered, seats up and down),
        /// the seats granted never exceed the most seats any invoice paid for.
        #[test]
        fn one_period_never_grants_more_than_its_largest_seat_count(
            seats in proptest::collection::vec(0u32..50, 1..12),
        ) {
            let p = plan(100, false);
            let mut granted = 0u32;
            let mut credits = 0i64;
            for s in &seats {
                if let Ok(g) = invoice_grant(&p, &invoice(*s, BillingInterval::Month, 1), granted, DAY) {
                    granted += g.seats;
                    credits += g.credits.get();
                }
            }
            let most = *seats.iter().max().unwrap();
            prop_assert_eq!(granted, most);
            prop_assert_eq!(credits, i64::from(most) * 100);
        }
    }
}
