use crate::billing::BudgetLine;
use crate::format;
use leptos::prelude::*;

/// "today", "this week", … for a budget's period.
pub fn period_phrase(period: &str) -> &'static str {
    match period {
        "day" => "today",
        "week" => "this week",
        "month" => "this month",
        _ => "in all",
    }
}

/// One budget's use this period as a bar, with the figures in words beside it.
#[component]
pub fn BudgetBar(budget: BudgetLine) -> impl IntoView {
    let limit = budget.limit.get().max(1);
    let taken = budget.used.get() + budget.held.get();
    let share = (taken * 100 / limit).clamp(0, 100);
    let over = taken >= limit;
    // A frequency cap counts actions; a budget, credits (shown in the deployment's unit).
    let unit = format::unit();
    let amount = |n: crate::domain::Credits| match &budget.action {
        Some(action) => format!("{n} {action}"),
        None => unit.amount(n),
    };
    let figure = |n: crate::domain::Credits| match &budget.action {
        Some(_) => n.to_string(),
        None => unit.figure(n),
    };
    let words = format!(
        "{} of {} used {}{}",
        figure(budget.used),
        amount(budget.limit),
        period_phrase(&budget.period),
        if budget.held.get() > 0 {
            format!(", {} held by actions in progress", figure(budget.held))
        } else {
            String::new()
        }
    );
    let resets = budget
        .resets_at
        .as_ref()
        .map(|at| format!("Resets {}", format::date_time(at)))
        .unwrap_or_else(|| "Never resets".to_owned());
    view! {
        <div class="budget-bar" class:over=over>
            <div class="bar" role="meter" aria-valuemin="0" aria-valuemax=limit.to_string() aria-valuenow=taken.min(limit).to_string() aria-label=format!("{}: {words}", budget.label)>
                // The filled share as an SVG attribute: the CSP refuses inline styles.
                <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                    <rect width=share height="10"></rect>
                </svg>
            </div>
            <p class="muted">{words}". "{format!("{} left. {resets}.", amount(budget.remaining))}</p>
        </div>
    }
}

/// The budgets that apply to the person, on Billing: what each has left this period.
#[component]
pub fn YourBudgets(budgets: Vec<BudgetLine>) -> impl IntoView {
    // Erased: the Billing page's view type is deep enough already.
    let card = (!budgets.is_empty()).then(|| {
        view! {
            <section class="card" aria-labelledby="your-budgets-heading" data-testid="your-budgets">
                <h2 id="your-budgets-heading">"Your budgets"</h2>
                <p class="muted">"Limits your workspace's billing managers set below its balance. An action that would pass a hard budget is refused, and nothing is charged."</p>
                <ul class="budget-list">
                    {budgets.into_iter().map(|b| view! {
                        <li>
                            <strong>{format!("{} · {}", b.label, format::capitalised(&b.enforcement))}</strong>
                            <BudgetBar budget=b/>
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        }
    });
    card.into_any()
}
