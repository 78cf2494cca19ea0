//! The subscription plan, credits about to expire, and what AI credits are (and are not).

use crate::billing::{Bucket, PlanView};
use crate::domain::{BillingInterval, CreditUnit, GrantKind, SubscriptionStatus};
use crate::format;
use leptos::prelude::*;

/// "1,000 subscription credits expire on 1 Dec 2026" (or "$10.00 of subscription credit
/// expires on …" where amounts are money), one line per lot group.
pub fn expiry_line(bucket: &Bucket, unit: &CreditUnit) -> Option<String> {
    let at = format::date(&bucket.expires_at?);
    let kind = bucket.kind.label().to_lowercase();
    let one = bucket.remaining.get() == 1;
    Some(if unit.is_money() {
        format!(
            "{} of {kind} credit expires on {at}",
            unit.figure(bucket.remaining)
        )
    } else if one {
        format!("1 {kind} credit expires on {at}")
    } else {
        format!("{} {kind} credits expire on {at}", bucket.remaining)
    })
}

/// The plan card: what the plan includes, where the subscription stands, and when its
/// credits arrive and lapse. Nothing when the workspace has no subscription.
#[component]
pub fn PlanCard(plan: Option<PlanView>) -> impl IntoView {
    let Some(plan) = plan else {
        return view! {
            <section class="card" aria-labelledby="plan-heading" data-testid="plan">
                <h2 id="plan-heading">"Plan credits"</h2>
                <p class="empty">"This workspace has no subscription plan. Plans that include AI credits add them here each billing period; bought credits work the same without one."</p>
            </section>
        }
        .into_any();
    };
    let seats = if plan.seats == 1 {
        "1 paid seat".to_owned()
    } else {
        format!("{} paid seats", plan.seats)
    };
    let badge = match plan.status {
        SubscriptionStatus::Active => "badge badge-good",
        SubscriptionStatus::Trialing => "badge",
        SubscriptionStatus::PastDue | SubscriptionStatus::Canceled => "badge badge-bad",
    };
    let per = match plan.interval {
        BillingInterval::Month => "each month",
        BillingInterval::Year => "each year (twelve months' worth at once)",
    };
    let unit = format::unit();
    let includes = format!(
        "Includes {} per seat a month: {} {per}.",
        unit.amount(plan.credits_per_seat),
        unit.amount(plan.credits_per_invoice),
    );
    let lapse = if plan.rollover {
        "Your plan's credits roll over: they never expire.".to_owned()
    } else {
        format!(
            "They expire when their billing period ends and the next paid invoice brings new ones. The current period ends on {}.",
            format::date(&plan.period_end)
        )
    };
    let state = match plan.status {
        SubscriptionStatus::Trialing => Some(format!(
            "Trials include no plan credits. They arrive with the first paid invoice, on {}.",
            format::date(&plan.period_end)
        )),
        SubscriptionStatus::PastDue => Some("The latest invoice is unpaid. Plan credits for the new period arrive once it is paid.".to_owned()),
        SubscriptionStatus::Canceled => Some("The subscription has ended: no more plan credits will be added. Credits already granted stay until they expire.".to_owned()),
        SubscriptionStatus::Active if plan.cancel_at_period_end => Some(format!(
            "The subscription ends on {}; no plan credits are added after that.",
            format::date(&plan.period_end)
        )),
        SubscriptionStatus::Active => None,
    };
    view! {
        <section class="card" aria-labelledby="plan-heading" data-testid="plan">
            <div class="card-head">
                <h2 id="plan-heading">{format!("{} plan", plan.name)}</h2>
                <span class=badge data-testid="plan-status">{plan.status.label()}</span>
            </div>
            <p>{format!("{seats}, billed {}.", plan.interval.adjective())}</p>
            <p data-testid="plan-includes">{includes}</p>
            <p class="muted">{lapse}</p>
            {state.map(|s| view! { <p class="notice notice-info" data-testid="plan-state">{s}</p> })}
        </section>
    }
    .into_any()
}

/// Credits that will lapse, soonest first, so nobody is surprised.
#[component]
pub fn UpcomingExpiries(buckets: Vec<Bucket>) -> impl IntoView {
    let unit = format::unit();
    let mut lines: Vec<(chrono::DateTime<chrono::Utc>, GrantKind, String)> = buckets
        .iter()
        .filter_map(|b| Some((b.expires_at?, b.kind, expiry_line(b, &unit)?)))
        .collect();
    lines.sort_by_key(|(at, kind, _)| (*at, *kind as u8));
    view! {
        <section class="card" aria-labelledby="expiries-heading" data-testid="upcoming-expiries">
            <h2 id="expiries-heading">"Upcoming expiries"</h2>
            {if lines.is_empty() {
                view! { <p class="empty">"Nothing is due to expire. Purchased credits never expire."</p> }.into_any()
            } else {
                view! {
                    <ul class="expiries">
                        {lines.into_iter().map(|(_, _, line)| view! { <li>{line}</li> }).collect_view()}
                    </ul>
                    <p class="muted small">"Credits that expire soonest are spent first."</p>
                }
                .into_any()
            }}
        </section>
    }
}

/// What AI credits are not, and what to check when credits seem missing.
#[component]
pub fn CreditsHelp() -> impl IntoView {
    view! {
        <section class="card help" aria-labelledby="help-heading" data-testid="credits-help">
            <h2 id="help-heading">"About AI credits"</h2>
            <details>
                <summary>"What AI credits are not"</summary>
                <p>"AI credits pay only for AI actions in this workspace. Other kinds of credit you may see in your payment account are separate and never change this balance:"</p>
                <ul>
                    <li>"A credit balance on your payment account or an invoice (for example after a refund or a downgrade) lowers what you owe on future invoices; it does not add AI credits."</li>
                    <li>"Proration when seats or plans change adjusts the invoice amount only. Plan credits for added seats come with the invoice that charges for them."</li>
                    <li>"Storage and other add-ons are billed on their own and do not use or add AI credits."</li>
                </ul>
            </details>
            <details>
                <summary>"Credits missing after a purchase"</summary>
                <p>"Most payments land within seconds; some banks take a few minutes. Open the purchase under Purchases: it says whether the payment is still processing, failed, or succeeded. A payment is never credited twice, and a failed one is never charged. If it says succeeded and the balance did not change, use \"Copy support details\" on that purchase and send them to us."</p>
            </details>
            <details>
                <summary>"Credits bought in another workspace"</summary>
                <p>"Credits belong to the workspace they were bought in and cannot move between workspaces. Check the workspace name at the top of the page, and switch workspaces there if you belong to more than one."</p>
            </details>
            <details>
                <summary>"No plan credits during a trial"</summary>
                <p>"Trials include no plan credits. They are added with the first paid invoice, per paid seat. You can still buy credits during a trial."</p>
            </details>
        </section>
    }
}
