//! Auto-reload's rules, as pure functions: when a reload fires, how much it buys, and the
//! monthly cap.

use super::kinds::{spelled_enum, UnknownValue};
use super::{CreditUnit, Credits, CustomAmountTerms, Money};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A workspace's Auto-reload settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReloadSettings {
    pub enabled: bool,
    /// A reload fires when a spend leaves the balance below this.
    pub threshold: Credits,
    /// What each reload buys.
    pub amount: ReloadAmount,
    /// The most Auto-reload may spend in one UTC calendar month.
    pub monthly_cap: Money,
}

/// The three ways a reload's size is chosen.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadMode {
    /// Refill toward a target balance.
    #[default]
    Target,
    /// Buy the same number of credits each time.
    Fixed,
    /// Buy a chosen pack each time.
    Pack,
}

spelled_enum!(ReloadMode, "Auto-reload mode", {
    Target => "target",
    Fixed => "fixed",
    Pack => "pack",
});

/// What each reload buys, by mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReloadAmount {
    /// Enough whole steps of the custom amount to bring the balance to this target.
    Target(Credits),
    /// This many credits, a custom amount on the deployment's terms.
    Fixed(Credits),
    /// This pack (its id), at its price and bonus when the reload runs.
    Pack(String),
}

impl ReloadAmount {
    pub fn mode(&self) -> ReloadMode {
        match self {
            ReloadAmount::Target(_) => ReloadMode::Target,
            ReloadAmount::Fixed(_) => ReloadMode::Fixed,
            ReloadAmount::Pack(_) => ReloadMode::Pack,
        }
    }
}

/// A pack as a reload buys it: what it gives and costs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackDeal {
    pub name: String,
    pub credits: Credits,
    pub bonus: Credits,
    pub price: Money,
}

impl PackDeal {
    /// Credits the pack adds: its own and its bonus.
    pub fn total(&self) -> Credits {
        Credits::new(self.credits.get().saturating_add(self.bonus.get())).unwrap_or(self.credits)
    }
}

/// Why settings cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    TargetNotAboveThreshold,
    /// A reload that could leave the balance below the threshold would fire again at once.
    ThresholdAboveReload(Credits),
    FixedNotOnTerms(super::CustomAmountError),
    UnknownPack,
    CapBelowOneReload(Money),
    WrongCurrency(String),
}

impl SettingsError {
    /// The reason, with amounts of credits in `unit`.
    pub fn explain(&self, unit: &CreditUnit) -> String {
        match self {
            SettingsError::TargetNotAboveThreshold => {
                "the target balance must be above the threshold".to_owned()
            }
            SettingsError::ThresholdAboveReload(credits) => format!(
                "the threshold must not be above what one reload buys ({})",
                unit.amount(*credits)
            ),
            SettingsError::FixedNotOnTerms(e) => {
                format!("the amount to buy: {}", e.explain(unit))
            }
            SettingsError::UnknownPack => {
                "that pack is no longer on sale; choose another one".to_owned()
            }
            SettingsError::CapBelowOneReload(price) => {
                format!("the monthly cap must cover at least one reload ({price})")
            }
            SettingsError::WrongCurrency(code) => format!("the monthly cap must be in {code}"),
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain(&CreditUnit::Credits))
    }
}

impl std::error::Error for SettingsError {}

/// Why Auto-reload did not (or will not) charge.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Disabled,
    NotBelowThreshold,
    /// A reload is already on its way; it counts toward the target.
    ReloadPending,
    CapReached,
    NoPaymentMethod,
    Paused,
    /// A payment was declined a short while ago; the card is not tried again yet.
    BackingOff,
    /// The pack Auto-reload buys is no longer on sale.
    PackUnavailable,
    /// This deployment sells credits to workspaces on a paid plan only, and this one is not.
    PlanRequired,
}

impl SkipReason {
    /// The answer to "why didn't Auto-reload run?".
    pub const fn explain(self) -> &'static str {
        match self {
            SkipReason::Disabled => "Auto-reload is off.",
            SkipReason::NotBelowThreshold => "The balance is not below the threshold.",
            SkipReason::ReloadPending => "A reload is already on its way.",
            SkipReason::CapReached => {
                "This month's cap would be exceeded. It resets at 00:00 UTC on the 1st."
            }
            SkipReason::NoPaymentMethod => "There is no saved card to charge.",
            SkipReason::Paused => {
                "Paused after repeated declines. Choose another card, or use Try again once the waiting time has passed."
            }
            SkipReason::BackingOff => {
                "Payment failed recently; Auto-reload waits before trying the card again."
            }
            SkipReason::PackUnavailable => {
                "The pack Auto-reload buys is no longer on sale. Choose another pack or amount."
            }
            SkipReason::PlanRequired => {
                "Auto-reload buys credits only for workspaces on a paid plan. Upgrade the workspace's plan to turn it back on."
            }
        }
    }
}

/// What Auto-reload should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadDecision {
    /// Buy these credits (and bonus credits, for a pack) at this price.
    Reload {
        credits: Credits,
        bonus: Credits,
        price: Money,
    },
    Skip(SkipReason),
}

/// What the decision looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadState {
    /// Spendable credits now.
    pub balance: Credits,
    /// Credits of reloads charged or being charged but not yet credited.
    pub pending: Credits,
    /// Auto-reload's spend in the current UTC month, pending reloads included.
    pub spent_this_month: Money,
    pub has_payment_method: bool,
    pub paused: bool,
    /// A recent decline's waiting time has not passed yet.
    pub backing_off: bool,
    /// The deployment's buying policy lets this workspace buy credits.
    pub may_buy: bool,
}

impl AutoReloadSettings {
    /// Checks the settings against the purchase terms and, in pack mode, the pack as it is
    /// sold now (`None`: not on sale).
    pub fn validate(
        &self,
        terms: &CustomAmountTerms,
        pack: Option<&PackDeal>,
    ) -> Result<(), SettingsError> {
        // The price of one reload from a balance just under the threshold.
        let one = match &self.amount {
            ReloadAmount::Target(target) => {
                if *target <= self.threshold {
                    return Err(SettingsError::TargetNotAboveThreshold);
                }
                reload_credits(self.threshold, Credits::ZERO, *target, terms)
                    .map(|c| price_of(c, terms))
                    .unwrap_or_else(|| price_of(terms.min, terms))
            }
            ReloadAmount::Fixed(credits) => {
                let price = terms
                    .price(*credits)
                    .map_err(SettingsError::FixedNotOnTerms)?;
                if self.threshold > *credits {
                    return Err(SettingsError::ThresholdAboveReload(*credits));
                }
                price
            }
            ReloadAmount::Pack(_) => {
                let pack = pack.ok_or(SettingsError::UnknownPack)?;
                if self.threshold > pack.total() {
                    return Err(SettingsError::ThresholdAboveReload(pack.total()));
                }
                pack.price.clone()
            }
        };
        if self.monthly_cap.currency() != one.currency() {
            return Err(SettingsError::WrongCurrency(
                one.currency().as_str().to_ascii_uppercase(),
            ));
        }
        if self.monthly_cap.amount_minor() < one.amount_minor() {
            return Err(SettingsError::CapBelowOneReload(one));
        }
        Ok(())
    }

    /// What the next reload will buy and cost, in a sentence for the settings form, with
    /// amounts of credits in `unit`; for a target, from a balance just under the threshold.
    pub fn preview(
        &self,
        terms: &CustomAmountTerms,
        pack: Option<&PackDeal>,
        unit: &CreditUnit,
    ) -> String {
        let code = |m: &Money| m.currency().as_str().to_ascii_uppercase();
        let below = format!(
            "When the balance drops below {}",
            unit.amount(self.threshold)
        );
        match &self.amount {
            ReloadAmount::Target(target) => {
                match reload_credits(self.threshold, Credits::ZERO, *target, terms) {
                    Some(credits) if *target > self.threshold => {
                        let price = price_of(credits, terms);
                        format!(
                            "{below}, the next reload buys what brings it back to {}: {} for {} {} if it is just under.",
                            unit.amount(*target), unit.amount(credits), price, code(&price)
                        )
                    }
                    _ => "Set a target balance above the threshold.".to_owned(),
                }
            }
            ReloadAmount::Fixed(credits) => match terms.price(*credits) {
                Ok(price) => format!(
                    "{below}, the next reload buys {} for {} {}.",
                    unit.amount(*credits),
                    price,
                    code(&price)
                ),
                Err(e) => format!("The amount to buy: {}.", e.explain(unit)),
            },
            ReloadAmount::Pack(_) => match pack {
                Some(p) if p.bonus.is_zero() => format!(
                    "{below}, the next reload buys the {} pack: {} for {} {}.",
                    p.name,
                    unit.amount(p.credits),
                    p.price,
                    code(&p.price)
                ),
                Some(p) => {
                    let bonus = if unit.is_money() {
                        format!("{} of bonus credit", unit.figure(p.bonus))
                    } else {
                        format!("{} bonus credits", p.bonus)
                    };
                    format!(
                        "{below}, the next reload buys the {} pack: {} and {bonus} for {} {}.",
                        p.name,
                        unit.amount(p.credits),
                        p.price,
                        code(&p.price)
                    )
                }
                None => SkipReason::PackUnavailable.explain().to_owned(),
            },
        }
    }
}

/// Credits to buy to bring `balance + pending` up to `target`, rounded up to whole
/// increments and at least the minimum purchase; `None` when nothing is needed.
pub fn reload_credits(
    balance: Credits,
    pending: Credits,
    target: Credits,
    terms: &CustomAmountTerms,
) -> Option<Credits> {
    let have = balance.get().saturating_add(pending.get());
    let need = target.get() - have;
    if need <= 0 {
        return None;
    }
    let step = terms.increment.get();
    let rounded = (need + step - 1) / step * step;
    let credits = rounded.max(terms.min.get()).min(terms.max.get());
    Credits::new(credits).ok()
}

/// The price of `credits` at the purchase terms' rate, per started increment.
pub fn price_of(credits: Credits, terms: &CustomAmountTerms) -> Money {
    let step = terms.increment.get();
    let steps = (credits.get() + step - 1) / step;
    Money::new(
        steps * terms.price_per_increment.amount_minor(),
        terms.price_per_increment.currency().clone(),
    )
    .expect("a non-negative price")
}

/// Decides whether a reload fires now. Order matters: the answer names the first reason in
/// the order a person would check them.
pub fn decide(
    settings: &AutoReloadSettings,
    state: &ReloadState,
    terms: &CustomAmountTerms,
    pack: Option<&PackDeal>,
) -> ReloadDecision {
    if !settings.enabled {
        return ReloadDecision::Skip(SkipReason::Disabled);
    }
    if !state.may_buy {
        return ReloadDecision::Skip(SkipReason::PlanRequired);
    }
    if state.paused {
        return ReloadDecision::Skip(SkipReason::Paused);
    }
    if state.backing_off {
        return ReloadDecision::Skip(SkipReason::BackingOff);
    }
    if state.balance >= settings.threshold {
        return ReloadDecision::Skip(SkipReason::NotBelowThreshold);
    }
    // At most one reload in flight per workspace: its credits count toward the target.
    if !state.pending.is_zero() {
        return ReloadDecision::Skip(SkipReason::ReloadPending);
    }
    let (credits, bonus, price) = match &settings.amount {
        ReloadAmount::Target(target) => {
            let Some(credits) = reload_credits(state.balance, state.pending, *target, terms) else {
                return ReloadDecision::Skip(SkipReason::ReloadPending);
            };
            (credits, Credits::ZERO, price_of(credits, terms))
        }
        ReloadAmount::Fixed(credits) => (*credits, Credits::ZERO, price_of(*credits, terms)),
        ReloadAmount::Pack(_) => match pack {
            Some(p) => (p.credits, p.bonus, p.price.clone()),
            None => return ReloadDecision::Skip(SkipReason::PackUnavailable),
        },
    };
    if !state.has_payment_method {
        return ReloadDecision::Skip(SkipReason::NoPaymentMethod);
    }
    let after = state.spent_this_month.amount_minor() + price.amount_minor();
    if after > settings.monthly_cap.amount_minor() {
        return ReloadDecision::Skip(SkipReason::CapReached);
    }
    ReloadDecision::Reload {
        credits,
        bonus,
        price,
    }
}

/// The start of the UTC calendar month that contains `now` (milliseconds): the cap's reset.
pub fn month_start(now_ms: i64) -> i64 {
    let now: DateTime<Utc> = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .map(|d| d.timestamp_millis())
        .unwrap_or(0)
}

/// Declines in a row after which Auto-reload pauses (no more automatic tries: card networks
/// limit retries).
pub const PAUSE_AFTER_DECLINES: u32 = 3;

/// How long Auto-reload waits after a decline before trying the card again: an hour after
/// the first, doubling after each further one.
pub fn backoff_after(declines: u32) -> i64 {
    const HOUR_MS: i64 = 3_600_000;
    if declines == 0 {
        0
    } else {
        HOUR_MS << (declines - 1).min(6)
    }
}

/// What Auto-reload remembers of declines: how many in a row, whether it paused, and when the
/// last one was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclineState {
    pub declines: u32,
    pub paused: bool,
    /// When the newest decline happened (milliseconds), if there was one.
    pub last_decline_at: Option<i64>,
}

/// Why "Try again" cannot run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryAgainError {
    #[error("Auto-reload has no failed payment to try again")]
    NothingFailed,
    /// The back-off after the last decline runs until this moment (milliseconds).
    #[error("the card can be tried again after the waiting time")]
    TooSoon { until: i64 },
}

impl DeclineState {
    /// When the card may be tried again (milliseconds); `None` when it may be now.
    pub fn retry_at(&self, now: i64) -> Option<i64> {
        let at = self.last_decline_at? + backoff_after(self.declines);
        (at > now).then_some(at)
    }

    /// The state after a billing manager saves the settings. A different card has never been
    /// declined, so it starts clean; the same card keeps its declines, its pause and its
    /// waiting time: saving is not a way around them.
    pub fn after_save(self, card_changed: bool) -> DeclineState {
        if card_changed {
            DeclineState::default()
        } else {
            self
        }
    }

    /// "Try again": once the waiting time after the last decline has passed, the pause is
    /// lifted for one more try. The count stays, so another decline pauses again and waits
    /// longer: a person can retry, but never faster than the back-off.
    pub fn try_again(self, now: i64) -> Result<DeclineState, TryAgainError> {
        if self.declines == 0 && !self.paused {
            return Err(TryAgainError::NothingFailed);
        }
        if let Some(until) = self.retry_at(now) {
            return Err(TryAgainError::TooSoon { until });
        }
        Ok(DeclineState {
            paused: false,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;
    use proptest::prelude::*;

    fn c(n: i64) -> Credits {
        Credits::new(n).unwrap()
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::usd()).unwrap()
    }

    fn settings(threshold: i64, target: i64, cap: i64) -> AutoReloadSettings {
        AutoReloadSettings {
            enabled: true,
            threshold: c(threshold),
            amount: ReloadAmount::Target(c(target)),
            monthly_cap: usd(cap),
        }
    }

    fn state(balance: i64, pending: i64, spent: i64) -> ReloadState {
        ReloadState {
            balance: c(balance),
            pending: c(pending),
            spent_this_month: usd(spent),
            has_payment_method: true,
            paused: false,
            backing_off: false,
            may_buy: true,
        }
    }

    #[test]
    fn a_workspace_that_may_not_buy_gets_no_reload_however_low() {
        let st = ReloadState {
            may_buy: false,
            ..state(0, 0, 0)
        };
        assert_eq!(
            decide(
                &settings(1_000, 10_000, 50_000),
                &st,
                &CustomAmountTerms::standard(),
                None
            ),
            ReloadDecision::Skip(SkipReason::PlanRequired)
        );
    }

    fn pack(credits: i64, bonus: i64, cents: i64) -> PackDeal {
        PackDeal {
            name: "Team".into(),
            credits: c(credits),
            bonus: c(bonus),
            price: usd(cents),
        }
    }

    fn with(amount: ReloadAmount, threshold: i64, cap: i64) -> AutoReloadSettings {
        AutoReloadSettings {
            amount,
            ..settings(threshold, threshold + 1, cap)
        }
    }

    #[test]
    fn a_fixed_reload_buys_the_same_amount_whatever_the_balance() {
        let terms = CustomAmountTerms::standard();
        let s = with(ReloadAmount::Fixed(c(10_000)), 2_000, 5_000);
        for balance in [0, 1_999] {
            assert_eq!(
                decide(&s, &state(balance, 0, 0), &terms, None),
                ReloadDecision::Reload {
                    credits: c(10_000),
                    bonus: Credits::ZERO,
                    price: usd(1_200)
                }
            );
        }
        assert_eq!(
            decide(&s, &state(100, 0, 3_801), &terms, None),
            ReloadDecision::Skip(SkipReason::CapReached)
        );
        assert!(s
            .preview(&terms, None, &CreditUnit::Credits)
            .contains("buys 10,000 credits for $12.00 USD"));
        // Where amounts are money, the sentence and the refusals read in money.
        let cents = CreditUnit::parse("usd", 1).unwrap();
        assert_eq!(
            s.preview(&terms, None, &cents),
            "When the balance drops below $20.00, the next reload buys $100.00 for $12.00 USD."
        );
        assert_eq!(
            SettingsError::ThresholdAboveReload(c(10_000)).explain(&cents),
            "the threshold must not be above what one reload buys ($100.00)"
        );
        // The threshold may not be above the amount, and the amount must be a custom amount.
        assert_eq!(
            with(ReloadAmount::Fixed(c(10_000)), 10_001, 5_000).validate(&terms, None),
            Err(SettingsError::ThresholdAboveReload(c(10_000)))
        );
        assert_eq!(
            with(ReloadAmount::Fixed(c(10_000)), 10_000, 5_000).validate(&terms, None),
            Ok(())
        );
        assert!(matches!(
            with(ReloadAmount::Fixed(c(10_500)), 0, 5_000).validate(&terms, None),
            Err(SettingsError::FixedNotOnTerms(_))
        ));
    }

    #[test]
    fn a_pack_reload_buys_the_pack_at_its_price_and_bonus_now() {
        let terms = CustomAmountTerms::standard();
        let s = with(ReloadAmount::Pack("pack_team".into()), 5_000, 5_000);
        let team = pack(20_000, 2_000, 2_000);
        assert_eq!(
            decide(&s, &state(4_000, 0, 0), &terms, Some(&team)),
            ReloadDecision::Reload {
                credits: c(20_000),
                bonus: c(2_000),
                price: usd(2_000)
            }
        );
        assert_eq!(
            decide(&s, &state(4_000, 0, 0), &terms, None),
            ReloadDecision::Skip(SkipReason::PackUnavailable)
        );
        assert!(s
            .preview(&terms, Some(&team), &CreditUnit::Credits)
            .contains("the Team pack: 20,000 credits and 2,000 bonus credits for $20.00 USD"));
        assert_eq!(s.validate(&terms, None), Err(SettingsError::UnknownPack));
        assert_eq!(
            with(ReloadAmount::Pack("pack_team".into()), 1_000, 1_999)
                .validate(&terms, Some(&team)),
            Err(SettingsError::CapBelowOneReload(usd(2_000)))
        );
        assert_eq!(
            with(ReloadAmount::Pack("pack_team".into()), 22_001, 5_000)
                .validate(&terms, Some(&team)),
            Err(SettingsError::ThresholdAboveReload(c(22_000)))
        );
    }

    #[test]
    fn a_reload_refills_to_the_target_in_whole_steps() {
        let terms = CustomAmountTerms::standard();
        let s = settings(5_000, 20_000, 10_000);
        assert_eq!(
            decide(&s, &state(4_200, 0, 0), &terms, None),
            ReloadDecision::Reload {
                credits: c(16_000),
                bonus: Credits::ZERO,
                price: usd(1_920)
            }
        );
        // A pending reload counts: nothing more is bought for the same dip.
        assert_eq!(
            decide(&s, &state(3_000, 16_000, 1_920), &terms, None),
            ReloadDecision::Skip(SkipReason::ReloadPending)
        );
        assert_eq!(
            decide(&s, &state(5_000, 0, 0), &terms, None),
            ReloadDecision::Skip(SkipReason::NotBelowThreshold)
        );
        assert_eq!(
            decide(&s, &state(100, 0, 9_000), &terms, None),
            ReloadDecision::Skip(SkipReason::CapReached)
        );
    }

    #[test]
    fn a_reload_that_reaches_the_cap_exactly_still_runs() {
        let terms = CustomAmountTerms::standard();
        // 16,000 credits cost $19.20: with $30.80 spent, a $50.00 cap is met, not passed.
        let s = settings(5_000, 20_000, 5_000);
        assert!(matches!(
            decide(&s, &state(4_200, 0, 3_080), &terms, None),
            ReloadDecision::Reload { .. }
        ));
        assert_eq!(
            decide(&s, &state(4_200, 0, 3_081), &terms, None),
            ReloadDecision::Skip(SkipReason::CapReached)
        );
    }

    #[test]
    fn every_skip_says_why_in_its_own_words() {
        let reasons = [
            (SkipReason::Disabled, "off"),
            (SkipReason::NotBelowThreshold, "threshold"),
            (SkipReason::ReloadPending, "on its way"),
            (SkipReason::CapReached, "cap"),
            (SkipReason::NoPaymentMethod, "card"),
            (SkipReason::Paused, "Paused"),
            (SkipReason::BackingOff, "failed recently"),
            (SkipReason::PackUnavailable, "no longer on sale"),
            (SkipReason::PlanRequired, "paid plan"),
        ];
        for (reason, words) in reasons {
            assert!(
                reason.explain().contains(words),
                "{reason:?}: {}",
                reason.explain()
            );
        }
        let distinct: std::collections::HashSet<_> =
            reasons.iter().map(|(r, _)| r.explain()).collect();
        assert_eq!(distinct.len(), reasons.len());
    }

    #[test]
    fn settings_need_a_target_above_the_threshold_and_room_for_one_reload() {
        let terms = CustomAmountTerms::standard();
        assert_eq!(
            settings(5_000, 5_000, 10_000).validate(&terms, None),
            Err(SettingsError::TargetNotAboveThreshold)
        );
        assert_eq!(
            settings(5_000, 20_000, 1_000).validate(&terms, None),
            Err(SettingsError::CapBelowOneReload(usd(1_800)))
        );
        assert_eq!(
            settings(5_000, 20_000, 1_800).validate(&terms, None),
            Ok(())
        );
    }

    #[test]
    fn the_cap_resets_at_midnight_utc_on_the_first() {
        let last_moment = Utc
            .with_ymd_and_hms(2026, 11, 30, 23, 59, 59)
            .unwrap()
            .timestamp_millis()
            + 999;
        let first = Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(
            month_start(last_moment),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(month_start(first), first);
        assert_eq!(month_start(first + 1), first);
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn the_back_off_doubles_from_an_hour() {
        assert_eq!(backoff_after(0), 0);
        assert_eq!(
            [1, 2, 3, 4].map(backoff_after),
            [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]
        );
        assert_eq!(backoff_after(40), 64 * HOUR, "capped, never overflowing");
    }

    #[test]
    fn saving_the_same_card_keeps_the_declines() {
        let declined = DeclineState {
            declines: 3,
            paused: true,
            last_decline_at: Some(10 * HOUR),
        };
        assert_eq!(declined.after_save(false), declined);
        assert_eq!(declined.after_save(true), DeclineState::default());
        assert_eq!(declined.after_save(true).retry_at(10 * HOUR), None);
    }

    #[test]
    fn try_again_waits_for_the_back_off_and_keeps_the_count() {
        let declined = DeclineState {
            declines: 3,
            paused: true,
            last_decline_at: Some(10 * HOUR),
        };
        // Three declines wait four hours.
        assert_eq!(
            declined.try_again(10 * HOUR + 4 * HOUR - 1),
            Err(TryAgainError::TooSoon { until: 14 * HOUR })
        );
        assert_eq!(
            declined.try_again(14 * HOUR),
            Ok(DeclineState {
                paused: false,
                ..declined
            })
        );
        assert_eq!(
            DeclineState::default().try_again(0),
            Err(TryAgainError::NothingFailed)
        );
    }

    proptest! {
        /// Whatever the history, neither saving the same card nor "Try again" lets the card
        /// be charged before the back-off after its last decline has passed.
        #[test]
        fn nothing_retries_before_the_back_off(
            declines in 1u32..10,
            paused in any::<bool>(),
            last in 0i64..1_000_000_000,
            now_after in -100_000_000i64..100_000_000,
        ) {
            let state = DeclineState { declines, paused, last_decline_at: Some(last) };
            let now = last + now_after;
            let allowed_from = last + backoff_after(declines);
            let saved = state.after_save(false);
            prop_assert_eq!(saved.retry_at(now).is_some(), now < allowed_from);
            match state.try_again(now) {
                Ok(next) => {
                    prop_assert!(now >= allowed_from);
                    prop_assert!(!next.paused);
                    prop_assert_eq!(next.declines, declines);
                }
                Err(TryAgainError::TooSoon { until }) => {
                    prop_assert!(now < allowed_from);
                    prop_assert_eq!(until, allowed_from);
                }
                Err(TryAgainError::NothingFailed) => prop_assert!(false, "there were declines"),
            }
        }
    }

    proptest! {
        /// In every mode, with settings that can be saved: a reload never takes the month past
        /// its cap, and the credits it adds lift the balance to the threshold or above, so one
        /// crossing below the threshold fires one reload, never two.
        #[test]
        fn every_mode_stays_under_the_cap_and_fires_once_per_crossing(
            mode in 0u8..3,
            threshold in 0i64..40_000,
            size in 1i64..60,
            pack_credits in 1_000i64..80_000,
            pack_bonus in prop_oneof![Just(0i64), 0i64..10_000],
            pack_cents in 100i64..20_000,
            drop in 1i64..40_000,
            spent in 0i64..30_000,
            cap in 100i64..60_000,
        ) {
            let terms = CustomAmountTerms::standard();
            let deal = pack(pack_credits, pack_bonus, pack_cents);
            let amount = match mode {
                0 => ReloadAmount::Target(c(threshold + size * 1_000)),
                1 => ReloadAmount::Fixed(c((size + 4) * 1_000)),
                _ => ReloadAmount::Pack("pack_any".into()),
            };
            let s = with(amount, threshold, cap);
            prop_assume!(s.validate(&terms, Some(&deal)).is_ok());
            let balance = (threshold - drop).max(0);
            prop_assume!(balance < threshold);
            match decide(&s, &state(balance, 0, spent), &terms, Some(&deal)) {
                ReloadDecision::Reload { credits, bonus, price } => {
                    prop_assert!(spent + price.amount_minor() <= cap);
                    let after = balance + credits.get() + bonus.get();
                    prop_assert!(after >= threshold);
                    let again = decide(
                        &s,
                        &state(after, 0, spent + price.amount_minor()),
                        &terms,
                        Some(&deal),
                    );
                    prop_assert_eq!(again, ReloadDecision::Skip(SkipReason::NotBelowThreshold));
                }
                ReloadDecision::Skip(SkipReason::CapReached) => {}
                other => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        /// Every branch of `decide` is reached and answers for itself: a pause, a back-off, a
        /// balance at the threshold, a reload in flight, a missing card and the cap each stop
        /// a reload in that order of precedence; a reload, when it happens, never buys less
        /// than the target needs, never overshoots by a full step (unless the minimum
        /// purchase says so), and never breaks the cap.
        #[test]
        fn reloads_reach_the_target_within_the_cap(
            threshold in 0i64..50_000,
            extra in 1_000i64..200_000,
            balance in 0i64..60_000,
            pending in prop_oneof![3 => Just(0i64), 1 => 1i64..60_000],
            spent in 0i64..50_000,
            cap in 0i64..60_000,
            has_card in prop::bool::weighted(0.85),
            paused in prop::bool::weighted(0.1),
            backing_off in prop::bool::weighted(0.1),
            may_buy in prop::bool::weighted(0.9),
        ) {
            let terms = CustomAmountTerms::standard();
            let s = settings(threshold, threshold + extra, cap);
            let st = ReloadState {
                has_payment_method: has_card,
                paused,
                backing_off,
                may_buy,
                ..state(balance, pending, spent)
            };
            let below = balance < threshold;
            match decide(&s, &st, &terms, None) {
                ReloadDecision::Reload { credits, price, .. } => {
                    prop_assert!(!paused && !backing_off && below && pending == 0 && has_card && may_buy);
                    let reached = balance + credits.get();
                    prop_assert!(reached >= (threshold + extra).min(balance + terms.max.get()));
                    prop_assert!(credits.get() % terms.increment.get() == 0);
                    prop_assert!(credits.get() <= terms.min.get().max((threshold + extra) - balance + terms.increment.get() - 1));
                    prop_assert!(spent + price.amount_minor() <= cap);
                }
                ReloadDecision::Skip(SkipReason::PlanRequired) => prop_assert!(!may_buy),
                ReloadDecision::Skip(SkipReason::Paused) => prop_assert!(paused && may_buy),
                ReloadDecision::Skip(SkipReason::BackingOff) => prop_assert!(backing_off && !paused),
                ReloadDecision::Skip(SkipReason::NotBelowThreshold) => {
                    prop_assert!(!below && !paused && !backing_off)
                }
                ReloadDecision::Skip(SkipReason::ReloadPending) => {
                    prop_assert!(below && pending > 0 && !paused && !backing_off)
                }
                ReloadDecision::Skip(SkipReason::NoPaymentMethod) => {
                    prop_assert!(!has_card && below && pending == 0 && !paused && !backing_off)
                }
                ReloadDecision::Skip(SkipReason::CapReached) => {
                    prop_assert!(has_card && below && pending == 0 && !paused && !backing_off);
                    let needed = reload_credits(c(balance), Credits::ZERO, c(threshold + extra), &terms).unwrap();
                    prop_assert!(spent + price_of(needed, &terms).amount_minor() > cap);
                }
                ReloadDecision::Skip(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
