use super::{FormAction, ServerForm};
use crate::studio::Insufficient;
use leptos::prelude::*;

/// What a person sees when the credit gate refuses an action: why, and what they can do —
/// buy credits or manage Auto-reload (billing managers), ask an admin (members), or ask the
/// owner or the person who shared the work (guests).
#[component]
pub fn InsufficientCredits(info: Insufficient) -> impl IntoView {
    let unit = crate::format::unit();
    let amount = |n: i64| unit.amount(crate::domain::Credits::new(n.max(0)).unwrap_or_default());
    let (title, detail) = if info.held_back {
        (
            "Credits are held by actions in progress",
            format!(
                "AI actions that are still running have reserved {}. Try again when they finish.",
                amount(info.held)
            ),
        )
    } else {
        (
            "Out of AI credits",
            format!(
                "This action needs {} and the workspace has {}.",
                amount(info.required),
                amount(info.balance)
            ),
        )
    };
    use crate::domain::RecoveryAction;
    let has = |a: RecoveryAction| info.actions.contains(&a);
    let manage = has(RecoveryAction::BuyCredits);
    let ask = has(RecoveryAction::AskAdmin);
    let owner = has(RecoveryAction::AskOwner);
    let request = FormAction::<crate::studio::AskAdmin>::new();
    view! {
        <section class="card insufficient" role="alert" aria-labelledby="insufficient-title" data-testid="insufficient-credits">
            <h2 id="insufficient-title">{title}</h2>
            <p>{detail}" Nothing was charged."</p>
            {manage.then(|| view! {
                <div class="actions">
                    <a class="button primary" href="/billing#buy-credits">"Buy credits"</a>
                    <a class="button" href="/billing#auto-reload">"Manage Auto-reload"</a>
                </div>
            })}
            {ask.then(|| view! {
                <p>"Only workspace admins can buy credits or turn on Auto-reload."</p>
                <ServerForm action=request>
                    <button type="submit" class="button primary" disabled=move || request.pending().get() aria-busy=move || request.pending().get().to_string()>
                        {move || if request.pending().get() { "Sending…" } else { "Ask an admin" }}
                    </button>
                </ServerForm>
                <p role="status" class="muted">
                    {move || request.value().get().map(|sent| match sent {
                        Ok(true) => "Request sent. Your workspace's billing admins have been notified.".to_owned(),
                        Ok(false) => "You already asked in the last hour; your admins have the request.".to_owned(),
                        Err(err) => err.to_string(),
                    })}
                </p>
            })}
            {owner.then(|| view! {
                <p>"Ask the workspace owner, or the person who shared this work with you, to add credits."</p>
            })}
        </section>
    }
}

/// What a person sees when a budget below the workspace refuses an action: which budget,
/// what it has left and when it resets, and who can lift it.
#[component]
pub fn OverBudgetNotice(info: crate::studio::OverBudget) -> impl IntoView {
    use crate::domain::RecoveryAction;
    let has = |a: RecoveryAction| info.actions.contains(&a);
    let raise = has(RecoveryAction::RaiseBudget);
    let ask = has(RecoveryAction::AskAdmin);
    let owner = has(RecoveryAction::AskOwner);
    let request = FormAction::<crate::studio::AskAdmin>::new();
    view! {
        <section class="card insufficient" role="alert" aria-labelledby="over-budget-title" data-testid="over-budget">
            <h2 id="over-budget-title">"Budget reached"</h2>
            <p>{info.message.clone()}" Nothing was charged."</p>
            {raise.then(|| view! {
                <div class="actions"><a class="button primary" href="/budgets">"Raise the budget"</a></div>
            })}
            {ask.then(|| view! {
                <p>"Only workspace admins can change budgets."</p>
                <ServerForm action=request>
                    <button type="submit" class="button primary" disabled=move || request.pending().get() aria-busy=move || request.pending().get().to_string()>
                        {move || if request.pending().get() { "Sending…" } else { "Ask an admin" }}
                    </button>
                </ServerForm>
                <p role="status" class="muted">
                    {move || request.value().get().map(|sent| match sent {
                        Ok(true) => "Request sent. Your workspace's billing admins have been notified.".to_owned(),
                        Ok(false) => "You already asked in the last hour; your admins have the request.".to_owned(),
                        Err(err) => err.to_string(),
                    })}
                </p>
            })}
            {owner.then(|| view! { <p>"Ask the workspace owner to raise the budget."</p> })}
        </section>
    }
}
