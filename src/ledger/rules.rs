//! The ledger's rules as pure functions: which lots a charge draws from, what lapses, and how
//! a sequence of movements keeps the books balanced. No I/O here; the store applies the plans
//! these functions make inside one database transaction.

use app::domain::{Credits, GrantKind};
use std::cmp::Ordering;

pub use crate::clock::Millis;

/// One grant of credits (a "lot") as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Lot {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub kind: GrantKind,
    /// Credits not yet spent or expired. Includes `held`.
    pub remaining: i64,
    /// Part of `remaining` reserved by in-flight actions; not spendable.
    pub held: i64,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
}

impl Lot {
    /// A lot is live until the instant it expires; never-expiring lots are always live.
    pub fn is_live(&self, now: Millis) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// Credits of this lot a new charge may use now.
    pub fn spendable(&self, now: Millis) -> i64 {
        if self.is_live(now) {
            self.remaining - self.held
        } else {
            0
        }
    }
}

/// The drawdown order, one total order over lots:
/// 1. soonest expiry first, never-expiring lots last;
/// 2. then kind: free, promotional, subscription, purchased;
/// 3. then the oldest grant;
/// 4. then the id, so that no two lots ever tie.
pub fn drawdown_order(a: &Lot, b: &Lot) -> Ordering {
    let expiry = |lot: &Lot| (lot.expires_at.is_none(), lot.expires_at.unwrap_or(0));
    expiry(a)
        .cmp(&expiry(b))
        .then(a.kind.drawdown_rank().cmp(&b.kind.drawdown_rank()))
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

/// How much one movement takes from (or returns to) one lot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draw {
    pub lot_id: String,
    pub credits: i64,
}

/// A charge the live lots cannot cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shortfall {
    /// Credits spendable now (live lots, holds excluded).
    pub available: i64,
    /// Credits held by in-flight actions in live lots.
    pub held: i64,
    pub required: i64,
}

/// Credits a new charge could use now: live lots minus their holds.
pub fn spendable(lots: &[Lot], now: Millis) -> i64 {
    lots.iter().map(|lot| lot.spendable(now)).sum()
}

/// Plans a charge of `amount` across the live lots in drawdown order.
///
/// All or nothing: either the returned draws sum to exactly `amount`, or nothing is drawn and
/// the shortfall says how much was available and how much is held by actions in progress.
pub fn plan_charge(lots: &[Lot], now: Millis, amount: Credits) -> Result<Vec<Draw>, Shortfall> {
    let required = amount.get();
    let available = spendable(lots, now);
    if available < required {
        let held = lots.iter().filter(|l| l.is_live(now)).map(|l| l.held).sum();
        return Err(Shortfall {
            available,
            held,
            required,
        });
    }
    let mut ordered: Vec<&Lot> = lots.iter().filter(|l| l.spendable(now) > 0).collect();
    ordered.sort_by(|a, b| drawdown_order(a, b));
    let mut left = required;
    let mut draws = Vec::new();
    for lot in ordered {
        if left == 0 {
            break;
        }
        let take = lot.spendable(now).min(left);
        draws.push(Draw {
            lot_id: lot.id.clone(),
            credits: take,
        });
        left -= take;
    }
    debug_assert_eq!(
        left, 0,
        "spendable() covered the amount, so the draws must too"
    );
    Ok(draws)
}

/// Plans the expiry of every lot that has lapsed at `now`.
///
/// Credits held by an in-flight action stay with it even if their lot lapses meanwhile: the
/// action was admitted while they were live. They expire when the hold is released.
pub fn plan_expiry(lots: &[Lot], now: Millis) -> Vec<Draw> {
    let mut lapsed: Vec<&Lot> = lots
        .iter()
        .filter(|l| !l.is_live(now) && l.remaining > l.held)
        .collect();
    lapsed.sort_by(|a, b| drawdown_order(a, b));
    lapsed
        .into_iter()
        .map(|lot| Draw {
            lot_id: lot.id.clone(),
            credits: lot.remaining - lot.held,
        })
        .collect()
}

/// Applies draws to lots in memory (used by the in-memory model and by tests).
pub fn apply_draws(lots: &mut [Lot], draws: &[Draw]) {
    for draw in draws {
        if let Some(lot) = lots.iter_mut().find(|l| l.id == draw.lot_id) {
            lot.remaining -= draw.credits;
            // Spending and expiring never touch held credits; this is the invariant's guard.
            assert!(
                lot.remaining >= lot.held,
                "a draw took held or missing credits"
            );
        }
    }
}

/// How a reservation settles: what it takes from its held lots, what extra it draws from
/// spendable lots, and what it charges in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlePlan {
    /// Per held lot: the hold released (`credits`) ...
    pub released: Vec<Draw>,
    /// ... and the part of it consumed.
    pub consumed: Vec<Draw>,
    /// Credits above the hold, drawn from spendable lots.
    pub extra: Vec<Draw>,
    pub charged: i64,
}

/// Plans settling a hold at `actual` credits.
///
/// The actual cost is taken from the held lots first (in drawdown order). A cost above the hold
/// draws the difference from spendable lots only if they can cover all of it; otherwise the
/// reservation settles at the hold, as the caller agreed to when it reserved.
pub fn plan_settle(lots: &[Lot], holds: &[Draw], now: Millis, actual: Credits) -> SettlePlan {
    let held: i64 = holds.iter().map(|h| h.credits).sum();
    let mut ordered: Vec<&Draw> = holds.iter().collect();
    let rank = |draw: &Draw| lots.iter().find(|l| l.id == draw.lot_id);
    ordered.sort_by(|a, b| match (rank(a), rank(b)) {
        (Some(x), Some(y)) => drawdown_order(x, y),
        _ => a.lot_id.cmp(&b.lot_id),
    });
    let mut left = actual.get().min(held);
    let mut consumed = Vec::new();
    for hold in ordered {
        if left == 0 {
            break;
        }
        let take = hold.credits.min(left);
        consumed.push(Draw {
            lot_id: hold.lot_id.clone(),
            credits: take,
        });
        left -= take;
    }
    let mut extra = Vec::new();
    let above = actual.get() - held;
    if above > 0 {
        // What is spendable once this hold is released (its unconsumed part stays held until
        // the same transaction releases it, so only other credits can pay for the extra).
        if let Ok(draws) = plan_charge(lots, now, Credits::new(above).unwrap_or_default()) {
            extra = draws;
        }
    }
    let charged = consumed.iter().chain(extra.iter()).map(|d| d.credits).sum();
    SettlePlan {
        released: holds.to_vec(),
        consumed,
        extra,
        charged,
    }
}

/// Puts the draws of one movement together per lot (a lot may pay from its hold and from its
/// spendable part in the same settlement).
pub fn merge_draws(draws: impl IntoIterator<Item = Draw>) -> Vec<Draw> {
    let mut merged: Vec<Draw> = Vec::new();
    for draw in draws {
        match merged.iter_mut().find(|d| d.lot_id == draw.lot_id) {
            Some(existing) => existing.credits += draw.credits,
            None => merged.push(draw),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    fn lot(
        id: &str,
        kind: GrantKind,
        remaining: i64,
        expires_at: Option<Millis>,
        created_at: Millis,
    ) -> Lot {
        Lot {
            id: id.into(),
            kind,
            remaining,
            held: 0,
            expires_at,
            created_at,
        }
    }

    fn credits(n: i64) -> Credits {
        Credits::new(n).unwrap()
    }

    #[test]
    fn soonest_expiry_is_drawn_first_and_never_expiring_last() {
        let lots = vec![
            lot("p", GrantKind::Purchased, 100, None, 0),
            lot("s", GrantKind::Subscription, 100, Some(30 * DAY), 0),
            lot("f", GrantKind::Free, 100, Some(10 * DAY), 0),
        ];
        let draws = plan_charge(&lots, 0, credits(250)).unwrap();
        let order: Vec<_> = draws
            .iter()
            .map(|d| (d.lot_id.as_str(), d.credits))
            .collect();
        assert_eq!(order, [("f", 100), ("s", 100), ("p", 50)]);
    }

    #[test]
    fn same_expiry_draws_free_then_promotional_then_subscription_then_purchased() {
        let at = Some(5 * DAY);
        let lots = vec![
            lot("a", GrantKind::Purchased, 10, at, 0),
            lot("b", GrantKind::Subscription, 10, at, 0),
            lot("c", GrantKind::Promotional, 10, at, 0),
            lot("d", GrantKind::Free, 10, at, 0),
        ];
        let draws = plan_charge(&lots, 0, credits(40)).unwrap();
        let ids: Vec<_> = draws.iter().map(|d| d.lot_id.as_str()).collect();
        assert_eq!(ids, ["d", "c", "b", "a"]);
    }

    #[test]
    fn ties_fall_to_the_oldest_grant_then_the_id() {
        let lots = vec![
            lot("z", GrantKind::Purchased, 10, None, 2),
            lot("y", GrantKind::Purchased, 10, None, 1),
            lot("x", GrantKind::Purchased, 10, None, 2),
        ];
        let draws = plan_charge(&lots, 0, credits(30)).unwrap();
        let ids: Vec<_> = draws.iter().map(|d| d.lot_id.as_str()).collect();
        assert_eq!(ids, ["y", "x", "z"]);
    }

    #[test]
    fn a_charge_above_the_spendable_balance_draws_nothing() {
        let lots = vec![lot("a", GrantKind::Free, 10, None, 0)];
        assert_eq!(
            plan_charge(&lots, 0, credits(11)),
            Err(Shortfall {
                available: 10,
                held: 0,
                required: 11
            })
        );
    }

    #[test]
    fn expired_lots_are_not_spendable() {
        let lots = vec![
            lot("old", GrantKind::Promotional, 100, Some(DAY), 0),
            lot("new", GrantKind::Purchased, 5, None, 0),
        ];
        assert_eq!(
            spendable(&lots, DAY),
            5,
            "a lot is gone at the instant it expires"
        );
        assert!(plan_charge(&lots, DAY, credits(6)).is_err());
    }

    #[test]
    fn held_credits_are_not_spendable_and_are_reported_as_held() {
        let mut held = lot("a", GrantKind::Purchased, 100, None, 0);
        held.held = 80;
        let err = plan_charge(&[held], 0, credits(30)).unwrap_err();
        assert_eq!((err.available, err.held, err.required), (20, 80, 30));
    }

    #[test]
    fn expiry_takes_only_the_unheld_part_of_a_lapsed_lot() {
        let mut a = lot("a", GrantKind::Promotional, 100, Some(DAY), 0);
        a.held = 30;
        let b = lot("b", GrantKind::Free, 10, Some(2 * DAY), 0);
        assert_eq!(
            plan_expiry(&[a.clone(), b.clone()], DAY),
            [Draw {
                lot_id: "a".into(),
                credits: 70
            }]
        );
        assert!(plan_expiry(&[a, b], DAY - 1).is_empty());
    }

    #[test]
    fn a_fully_held_lapsed_lot_has_nothing_to_expire_until_its_hold_ends() {
        let mut a = lot("a", GrantKind::Promotional, 40, Some(DAY), 0);
        a.held = 40;
        // A zero-credit expiry draw would journal an empty movement.
        assert!(plan_expiry(&[a.clone()], DAY).is_empty());
        a.held = 0;
        assert_eq!(
            plan_expiry(&[a], DAY),
            [Draw {
                lot_id: "a".into(),
                credits: 40
            }]
        );
    }

    #[test]
    fn settling_consumes_held_lots_in_drawdown_order_not_id_order() {
        // "z" sorts after "a" by id but expires first, so it pays first.
        let mut z = lot("z", GrantKind::Free, 100, Some(5 * DAY), 0);
        z.held = 30;
        let mut a = lot("a", GrantKind::Purchased, 100, None, 0);
        a.held = 30;
        let holds = [
            Draw {
                lot_id: "a".into(),
                credits: 30,
            },
            Draw {
                lot_id: "z".into(),
                credits: 30,
            },
        ];
        let plan = plan_settle(&[a, z], &holds, 0, credits(40));
        assert_eq!(
            plan.consumed,
            [
                Draw {
                    lot_id: "z".into(),
                    credits: 30
                },
                Draw {
                    lot_id: "a".into(),
                    credits: 10
                }
            ]
        );
    }

    #[test]
    fn settling_below_the_hold_charges_the_actual_cost_from_held_lots() {
        let mut a = lot("a", GrantKind::Free, 100, Some(5 * DAY), 0);
        a.held = 60;
        let mut b = lot("b", GrantKind::Purchased, 100, None, 0);
        b.held = 40;
        let holds = [
            Draw {
                lot_id: "b".into(),
                credits: 40,
            },
            Draw {
                lot_id: "a".into(),
                credits: 60,
            },
        ];
        let plan = plan_settle(&[a, b], &holds, 0, credits(70));
        assert_eq!(plan.charged, 70);
        assert_eq!(
            plan.consumed,
            [
                Draw {
                    lot_id: "a".into(),
                    credits: 60
                },
                Draw {
                    lot_id: "b".into(),
                    credits: 10
                }
            ]
        );
        assert!(plan.extra.is_empty());
    }

    #[test]
    fn settling_above_the_hold_draws_the_extra_only_when_affordable() {
        let mut a = lot("a", GrantKind::Purchased, 100, None, 0);
        a.held = 50;
        let holds = [Draw {
            lot_id: "a".into(),
            credits: 50,
        }];
        let plan = plan_settle(&[a.clone()], &holds, 0, credits(80));
        assert_eq!((plan.charged, plan.extra.len()), (80, 1));
        let plan = plan_settle(&[a], &holds, 0, credits(151));
        assert_eq!(
            (plan.charged, plan.extra.len()),
            (50, 0),
            "settles at the hold"
        );
    }

    #[test]
    fn draws_on_one_lot_merge() {
        let merged = merge_draws([
            Draw {
                lot_id: "a".into(),
                credits: 5,
            },
            Draw {
                lot_id: "b".into(),
                credits: 1,
            },
            Draw {
                lot_id: "a".into(),
                credits: 2,
            },
        ]);
        assert_eq!(
            merged,
            [
                Draw {
                    lot_id: "a".into(),
                    credits: 7
                },
                Draw {
                    lot_id: "b".into(),
                    credits: 1
                }
            ]
        );
    }
}
