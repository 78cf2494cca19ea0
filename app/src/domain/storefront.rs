//! How one deployment sells credits: the terms of a custom amount and which workspaces may
//! buy. Set once per deployment (see the README's configuration table), the same for every
//! workspace of it, so that Tally can follow whichever of the products it is modelled on.

use super::kinds::{spelled_enum, UnknownValue};
use super::{CreditUnit, Credits, CustomAmountTerms, Money, SubscriptionStatus};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which workspaces may buy credits (packs, custom amounts and Auto-reload).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuyingPolicy {
    /// Every workspace, on a plan or not.
    #[default]
    AnyWorkspace,
    /// Only workspaces whose plan is being paid for; free ones are told to upgrade.
    PaidPlansOnly,
}

spelled_enum!(BuyingPolicy, "buying policy", {
    AnyWorkspace => "any_workspace",
    PaidPlansOnly => "paid_plans_only",
});

impl BuyingPolicy {
    /// May a workspace whose subscription is in `plan` (`None`: no subscription) buy credits?
    /// A plan in its trial or with a payment owed is still a paid plan; a canceled one is not.
    pub const fn allows(self, plan: Option<SubscriptionStatus>) -> bool {
        match self {
            BuyingPolicy::AnyWorkspace => true,
            BuyingPolicy::PaidPlansOnly => matches!(
                plan,
                Some(
                    SubscriptionStatus::Trialing
                        | SubscriptionStatus::Active
                        | SubscriptionStatus::PastDue
                )
            ),
        }
    }
}

/// Why custom-amount terms cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    #[error("the minimum must not be above the maximum")]
    MinAboveMax,
    #[error("the minimum and the maximum must be whole steps")]
    NotWholeSteps,
    #[error("a step must cost something")]
    FreeStep,
}

impl CustomAmountTerms {
    /// Terms from their parts: amounts from `min` to `max` in steps of `increment`, each
    /// step at `price_per_increment`. Both ends must be whole steps, so that every amount a
    /// person is offered can be bought.
    pub fn new(
        increment: Credits,
        min: Credits,
        max: Credits,
        price_per_increment: Money,
    ) -> Result<CustomAmountTerms, TermsError> {
        let step = increment.get().max(1);
        if min > max {
            return Err(TermsError::MinAboveMax);
        }
        if increment.is_zero() || min.is_zero() || min.get() % step != 0 || max.get() % step != 0 {
            return Err(TermsError::NotWholeSteps);
        }
        if price_per_increment.amount_minor() == 0 {
            return Err(TermsError::FreeStep);
        }
        Ok(CustomAmountTerms {
            increment,
            min,
            max,
            price_per_increment,
        })
    }

    /// The terms in a sentence, for the page before checkout, with amounts in `unit`.
    pub fn sentence(&self, unit: &CreditUnit) -> String {
        let price = format!(
            "{} {}",
            self.price_per_increment,
            self.price_per_increment
                .currency()
                .as_str()
                .to_ascii_uppercase()
        );
        if unit.is_money() {
            return format!(
                "Custom amounts come in steps of {}, from {} to {}, at {price} per step.",
                unit.figure(self.increment),
                unit.figure(self.min),
                unit.figure(self.max),
            );
        }
        format!(
            "Custom amounts come in steps of {} credits, from {} to {}, at {price} per {} credits.",
            self.increment, self.min, self.max, self.increment
        )
    }
}

/// How this deployment sells credits, and the unit it shows them in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storefront {
    pub custom: CustomAmountTerms,
    pub buying: BuyingPolicy,
    /// Where a free workspace upgrades its plan (the host product's page), when buying needs a
    /// paid plan.
    pub upgrade_url: Option<String>,
    /// Credits, or money at a fixed value per credit: every amount people read or type.
    pub unit: CreditUnit,
}

impl Default for Storefront {
    fn default() -> Self {
        Storefront {
            custom: CustomAmountTerms::standard(),
            buying: BuyingPolicy::AnyWorkspace,
            upgrade_url: None,
            unit: CreditUnit::Credits,
        }
    }
}

impl Storefront {
    /// Why a workspace whose subscription is in `plan` may not buy, in a sentence for its
    /// people; `None` when it may.
    pub fn refusal(&self, plan: Option<SubscriptionStatus>) -> Option<&'static str> {
        (!self.buying.allows(plan)).then_some(
            "Credits are for workspaces on a paid plan. Upgrade this workspace's plan to buy credits and turn on Auto-reload.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;
    use proptest::prelude::*;

    fn credits(n: i64) -> Credits {
        Credits::new(n).unwrap()
    }

    fn statuses() -> impl Strategy<Value = Option<SubscriptionStatus>> {
        prop_oneof![
            Just(None),
            Just(Some(SubscriptionStatus::Trialing)),
            Just(Some(SubscriptionStatus::Active)),
            Just(Some(SubscriptionStatus::PastDue)),
            Just(Some(SubscriptionStatus::Canceled)),
        ]
    }

    #[test]
    fn a_free_workspace_may_buy_only_where_any_workspace_may() {
        assert!(BuyingPolicy::AnyWorkspace.allows(None));
        assert!(!BuyingPolicy::PaidPlansOnly.allows(None));
        assert!(!BuyingPolicy::PaidPlansOnly.allows(Some(SubscriptionStatus::Canceled)));
        assert!(BuyingPolicy::PaidPlansOnly.allows(Some(SubscriptionStatus::PastDue)));
        let store = Storefront {
            buying: BuyingPolicy::PaidPlansOnly,
            ..Storefront::default()
        };
        assert!(store.refusal(None).unwrap().contains("paid plan"));
        assert_eq!(store.refusal(Some(SubscriptionStatus::Active)), None);
    }

    #[test]
    fn terms_whose_ends_are_not_whole_steps_are_refused() {
        let price = Money::new(100, Currency::usd()).unwrap();
        let terms = |step, min, max| {
            CustomAmountTerms::new(credits(step), credits(min), credits(max), price.clone())
        };
        assert_eq!(terms(10, 25, 1_000), Err(TermsError::NotWholeSteps));
        assert_eq!(terms(10, 20, 1_005), Err(TermsError::NotWholeSteps));
        assert_eq!(terms(10, 0, 1_000), Err(TermsError::NotWholeSteps));
        assert_eq!(terms(10, 2_000, 1_000), Err(TermsError::MinAboveMax));
        assert_eq!(
            CustomAmountTerms::new(
                credits(10),
                credits(10),
                credits(100),
                Money::new(0, Currency::usd()).unwrap()
            ),
            Err(TermsError::FreeStep)
        );
        let ok = terms(10, 20, 1_000).unwrap();
        assert_eq!(
            ok.sentence(&CreditUnit::Credits),
            "Custom amounts come in steps of 10 credits, from 20 to 1,000, at $1.00 USD per 10 credits."
        );
        assert_eq!(
            ok.sentence(&CreditUnit::parse("usd", 10).unwrap()),
            "Custom amounts come in steps of $1.00, from $2.00 to $100.00, at $1.00 USD per step."
        );
    }

    proptest! {
        /// Under a paid-plans-only policy, exactly the paid statuses may buy; under the
        /// default every workspace may.
        #[test]
        fn only_paid_plans_buy_when_the_policy_says_so(plan in statuses()) {
            prop_assert!(BuyingPolicy::AnyWorkspace.allows(plan));
            let paid = matches!(plan, Some(s) if s != SubscriptionStatus::Canceled);
            prop_assert_eq!(BuyingPolicy::PaidPlansOnly.allows(plan), paid);
        }

        /// Any terms that can be made accept exactly the whole steps between their ends, and
        /// price each at its number of steps; the ends themselves can be bought.
        #[test]
        fn terms_accept_exactly_their_whole_steps(
            step in 1i64..5_000,
            low in 1i64..50,
            span in 0i64..50,
            cents in 1i64..10_000,
            amount in 0i64..600_000,
        ) {
            let (min, max) = (low * step, (low + span) * step);
            let terms = CustomAmountTerms::new(
                credits(step),
                credits(min),
                credits(max),
                Money::new(cents, Currency::usd()).unwrap(),
            )
            .unwrap();
            prop_assert!(terms.check(credits(min)).is_ok());
            prop_assert!(terms.check(credits(max)).is_ok());
            let fits = amount >= min && amount <= max && amount % step == 0;
            prop_assert_eq!(terms.check(credits(amount)).is_ok(), fits);
            if fits {
                let price = terms.price(credits(amount)).unwrap();
                prop_assert_eq!(price.amount_minor(), amount / step * cents);
            }
        }
    }
}
