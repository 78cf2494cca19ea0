use crate::billing::{Bucket, CreditsView};
use crate::format;
use leptos::prelude::*;

/// The balance, the Low Balance badge, holds and lifetime totals.
#[component]
pub fn CreditsCard(credits: CreditsView) -> impl IntoView {
    let low = credits.low_balance;
    let held = credits.held;
    let unit = format::unit();
    let figure_unit = if unit.is_money() {
        " available"
    } else {
        " credits available"
    };
    view! {
        <section class="card credits-card" aria-labelledby="credits-heading">
            <div class="card-head">
                <h2 id="credits-heading">"AI credits"</h2>
                {low.then(|| view! {
                    <span class="badge badge-warn" data-testid="low-balance">"Low Balance"</span>
                })}
            </div>
            <p class="balance">
                <span class="balance-figure" data-testid="balance">{unit.figure(credits.balance)}</span>
                <span class="balance-unit">{figure_unit}</span>
            </p>
            {(!held.is_zero()).then(|| view! {
                <p class="muted" data-testid="held">
                    {format!("{} held by AI actions in progress", unit.amount(held))}
                </p>
            })}
            {low.then(|| view! {
                <p class="muted">
                    {format!("The Low Balance badge shows at or below {}.", unit.amount(credits.low_balance_threshold))}
                </p>
            })}
            <dl class="totals">
                <div>
                    <dt>"Lifetime added"</dt>
                    <dd data-testid="lifetime-added">{unit.figure(credits.lifetime_added)}</dd>
                </div>
                <div>
                    <dt>"Lifetime spent"</dt>
                    <dd data-testid="lifetime-spent">{unit.figure(credits.lifetime_spent)}</dd>
                </div>
            </dl>
        </section>
    }
}

/// The spendable balance split by kind and expiry, soonest expiry first.
#[component]
pub fn BucketList(buckets: Vec<Bucket>) -> impl IntoView {
    if buckets.is_empty() {
        return view! {
            <section class="card" aria-labelledby="buckets-heading">
                <h2 id="buckets-heading">"Balance by type"</h2>
                <p class="empty">"No credits yet. Credits your workspace buys or is granted will show here, with any expiry dates."</p>
            </section>
        }
        .into_any();
    }
    let unit = format::unit();
    view! {
        <section class="card" aria-labelledby="buckets-heading">
            <h2 id="buckets-heading">"Balance by type"</h2>
            <p class="muted">"Credits that expire soonest are used first; purchased credits never expire and are used last."</p>
            <ul class="buckets">
                {buckets
                    .into_iter()
                    .map(|bucket| {
                        let when = match bucket.expires_at {
                            Some(at) => format!("{} expire on {}", unit.amount(bucket.remaining), format::date(&at)),
                            None => format!("{} · never expire", unit.amount(bucket.remaining)),
                        };
                        let soon = bucket.expires_at.is_some();
                        view! {
                            <li class="bucket" class:expiring=soon data-kind=bucket.kind.as_str()>
                                <span class="bucket-kind">{bucket.kind.label()}</span>
                                <span class="bucket-detail">{when}</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
    .into_any()
}

/// What a member who works in one pooled project is shown instead of the balance: the
/// credits the workspace keeps for that project.
#[component]
pub fn PoolCard(pool: crate::billing::PoolLine) -> impl IntoView {
    let after = if pool.overflow {
        "Once they are spent, the project goes on with the workspace's shared credits."
    } else {
        "Once they are spent, the project's actions stop until a billing manager adds more."
    };
    let unit = format::unit();
    let figure_unit = if unit.is_money() {
        " left for this project"
    } else {
        " credits left for this project"
    };
    view! {
        <section class="card credits-card" aria-labelledby="pool-heading" data-testid="pool-card">
            <h2 id="pool-heading">{format!("AI credits for {}", pool.project)}</h2>
            <p class="balance">
                <span class="balance-figure" data-testid="balance">{unit.figure(pool.remaining)}</span>
                <span class="balance-unit">{figure_unit}</span>
            </p>
            <p class="muted">
                "Your workspace keeps these credits apart for the project you work in; only its work spends them. "
                {after}
            </p>
        </section>
    }
}
