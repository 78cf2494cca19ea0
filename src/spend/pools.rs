//! The pure rules of earmarked pools: credits of the workspace's balance carved out for one
//! project or one API key. A pool is a claim on the balance, in credits, not a lot of its
//! own: the lots stay the workspace's, and the pools say how much of them only their scope
//! may spend. No I/O; property-tested below.

/// How a charge is paid under the pools: from the spender's own pool, and from the shared
/// part of the balance (what no pool claims).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolPlan {
    pub from_pool: i64,
    pub from_shared: i64,
}

/// What a spender may reach: the credits no pool claims, plus its own pool's.
pub fn shared(spendable: i64, claimed: i64) -> i64 {
    (spendable - claimed).max(0)
}

/// Plans a charge of `cost` for a spender with its own pool (`own`: what is left in it, and
/// whether it may go on into the shared part when the pool runs dry), or with none, given
/// the `shared` part of the balance. Either the plan, or what the spender could reach.
pub fn plan(cost: i64, own: Option<(i64, bool)>, shared: i64) -> Result<PoolPlan, i64> {
    match own {
        None if cost <= shared => Ok(PoolPlan {
            from_pool: 0,
            from_shared: cost,
        }),
        None => Err(shared),
        Some((left, _)) if cost <= left => Ok(PoolPlan {
            from_pool: cost,
            from_shared: 0,
        }),
        Some((left, true)) if cost <= left + shared => Ok(PoolPlan {
            from_pool: left,
            from_shared: cost - left,
        }),
        Some((left, true)) => Err(left + shared),
        Some((left, false)) => Err(left),
    }
}

/// The rule for lots that expire beneath pools. Pools never claim more than the workspace
/// can spend: when expiry (or anything else) brings the spendable balance below what the
/// pools claim together, the shared part has already absorbed the loss, so the pools shrink
/// by exactly the excess, each in proportion to what it has left (largest remainders, ties
/// to the earlier pool). Pools that fit are left as they are.
pub fn shrink(claims: &[i64], spendable: i64) -> Vec<i64> {
    let total: i64 = claims.iter().sum();
    let spendable = spendable.max(0);
    if total <= spendable {
        return claims.to_vec();
    }
    // Each pool keeps its share of what is spendable, rounded down; the credits lost to
    // rounding go one each to the largest remainders.
    let (total, spendable) = (i128::from(total), i128::from(spendable));
    let mut kept: Vec<i64> = Vec::with_capacity(claims.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(claims.len());
    for (i, &claim) in claims.iter().enumerate() {
        let exact = i128::from(claim) * spendable;
        kept.push(i64::try_from(exact / total).unwrap_or(0));
        remainders.push((exact % total, i));
    }
    let short = spendable - kept.iter().map(|&k| i128::from(k)).sum::<i128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(usize::try_from(short).unwrap_or(0)) {
        kept[i] += 1;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_pooled_spender_uses_its_pool_first_then_the_shared_part_if_allowed() {
        assert_eq!(
            plan(30, Some((50, false)), 100),
            Ok(PoolPlan {
                from_pool: 30,
                from_shared: 0
            })
        );
        assert_eq!(
            plan(80, Some((50, true)), 100),
            Ok(PoolPlan {
                from_pool: 50,
                from_shared: 30
            })
        );
        assert_eq!(plan(80, Some((50, false)), 100), Err(50));
        assert_eq!(plan(200, Some((50, true)), 100), Err(150));
        assert_eq!(plan(101, None, 100), Err(100));
    }

    #[test]
    fn pools_shrink_in_proportion_when_the_balance_drops_below_them() {
        assert_eq!(shrink(&[300, 100], 500), vec![300, 100], "they fit");
        assert_eq!(shrink(&[300, 100], 200), vec![150, 50]);
        assert_eq!(
            shrink(&[1, 1, 1], 2),
            vec![1, 1, 0],
            "ties to the earlier pool"
        );
        assert_eq!(shrink(&[10, 20], 0), vec![0, 0]);
    }

    proptest! {
        /// After the rule, pools claim at most what is spendable, each keeps at most what it
        /// had, and together they lose exactly the excess.
        #[test]
        fn shrinking_loses_exactly_the_excess(
            claims in prop::collection::vec(0_i64..1_000_000, 0..8),
            spendable in 0_i64..3_000_000,
        ) {
            let after = shrink(&claims, spendable);
            let (before, now): (i64, i64) = (claims.iter().sum(), after.iter().sum());
            prop_assert_eq!(after.len(), claims.len());
            prop_assert!(now <= spendable.max(0) || now == before);
            prop_assert_eq!(before - now, (before - spendable).max(0));
            for (a, c) in after.iter().zip(&claims) {
                prop_assert!(*a >= 0 && a <= c);
            }
        }

        /// A pool's share after shrinking is within one credit of its exact proportion.
        #[test]
        fn shrinking_is_proportional(
            claims in prop::collection::vec(1_i64..1_000_000, 1..8),
            cut in 1_i64..100,
        ) {
            let total: i64 = claims.iter().sum();
            let spendable = total * (100 - cut.min(99)) / 100;
            let after = shrink(&claims, spendable);
            for (a, c) in after.iter().zip(&claims) {
                let exact = (*c as f64) * (spendable as f64) / (total as f64);
                prop_assert!((*a as f64 - exact).abs() < 1.0 + 1e-9);
            }
        }

        /// A plan never takes more than the pool has or more than the shared part, and pays
        /// the cost exactly; a refusal says what could be reached, which is less than the cost.
        #[test]
        fn plans_pay_exactly_and_never_reach_past_what_is_theirs(
            cost in 1_i64..1_000,
            own in prop::option::of((0_i64..1_000, any::<bool>())),
            shared_part in 0_i64..1_000,
        ) {
            match plan(cost, own, shared_part) {
                Ok(p) => {
                    prop_assert_eq!(p.from_pool + p.from_shared, cost);
                    prop_assert!(p.from_shared <= shared_part);
                    match own {
                        Some((left, overflow)) => {
                            prop_assert!(p.from_pool <= left);
                            prop_assert!(overflow || p.from_shared == 0);
                        }
                        None => prop_assert_eq!(p.from_pool, 0),
                    }
                }
                Err(reach) => prop_assert!(reach < cost),
            }
        }
    }
}
