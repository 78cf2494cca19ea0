use crate::components::{
    CopySupportDetails, ErrorPanel, FormAction, Loading, PurchaseStatusBadge, ServerForm,
    TestModeBadge,
};
use crate::domain::PurchaseStatus;
use crate::purchases::{load_purchase, AbandonCheckout, PurchaseDetail};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// Where the payment page sends the buyer back to. It never grants anything: it shows the
/// purchase as Tally has it, and keeps looking until the payment's webhook has landed. Coming
/// back without paying (`?canceled=1`) changes nothing by itself: a link can bring anyone
/// here, so closing the checkout is the buyer's own click.
#[component]
pub fn PurchasePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = params.with_untracked(|p| p.get("id").unwrap_or_default());
    let canceled = query.with_untracked(|q| q.get("canceled").is_some());
    let detail = Resource::new(
        {
            let id = id.clone();
            move || id.clone()
        },
        load_purchase,
    );
    view! {
        <Title text="Purchase"/>
        <main id="main" class="narrow">
            <p><a href="/billing" class="link">"← Back to Billing"</a></p>
            <Suspense fallback=|| view! { <Loading what="your purchase"/> }>
                {move || {
                    let id = id.clone();
                    Suspend::new(async move {
                        match detail.await {
                            Ok(data) => view! { <PurchaseTracker id data canceled/> }.into_any(),
                            Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </main>
    }
}

/// The purchase as it stands, looked at again every second while its payment is pending, and
/// the way to close a checkout the buyer left: an island.
#[island]
fn PurchaseTracker(id: String, data: PurchaseDetail, canceled: bool) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let abandon = FormAction::<AbandonCheckout>::new();
    // The purchase as the page came with it, looked at again in the browser on each tick.
    let current = RwSignal::new(data);
    Effect::new(move |_| {
        let tick = tick.get();
        if tick > 0 {
            let id = id.clone();
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = load_purchase(id).await {
                    current.set(fresh);
                }
            });
        }
    });
    // While a payment is pending, look again every second.
    Effect::new(move |_| {
        if current.with(|d| d.purchase.status.is_pending()) {
            set_timeout(
                move || tick.update(|t| *t += 1),
                Duration::from_millis(1000),
            );
        }
    });
    Effect::new(move |_| {
        if abandon.value().get().is_some() {
            tick.update(|t| *t += 1);
        }
    });
    move || view! { <PurchaseOutcome data=current.get() canceled abandon/> }
}

#[component]
fn PurchaseOutcome(
    data: PurchaseDetail,
    canceled: bool,
    abandon: FormAction<AbandonCheckout>,
) -> impl IntoView {
    let PurchaseDetail {
        purchase,
        balance,
        test_mode,
        workspace_id,
        workspace_name,
        unit,
    } = data;
    crate::format::show_amounts_in(&unit);
    let details = purchase.support_details(&workspace_id, &workspace_name);
    let credits = purchase.total_credits();
    let reason = purchase
        .failure_reason
        .clone()
        .unwrap_or_else(|| "The payment did not go through.".into());
    let (title, body) = match purchase.status {
        PurchaseStatus::Succeeded => (
            "Credits added".to_owned(),
            format!(
                "{} added to {workspace_name}. The balance is now {}.",
                unit.amount(credits),
                unit.amount(balance)
            ),
        ),
        PurchaseStatus::Open if canceled => (
            "You left the payment page".to_owned(),
            "Nothing has been charged. The checkout stays open for a day in case you go back to it; cancel it if you don't want to buy.".to_owned(),
        ),
        PurchaseStatus::Open | PurchaseStatus::Processing => (
            "Processing your payment…".to_owned(),
            "Your credits appear as soon as the payment provider confirms the payment, usually within seconds. You can leave this page: nothing will be lost.".to_owned(),
        ),
        PurchaseStatus::Failed => (
            "Payment failed".to_owned(),
            format!("{reason} No credits were added. Try again with another card, or ask your bank why the payment was refused."),
        ),
        PurchaseStatus::Canceled => (
            "Checkout canceled".to_owned(),
            "You left the payment page before paying. Nothing was charged and no credits were added.".to_owned(),
        ),
        PurchaseStatus::Reversed => (
            "Purchase reversed".to_owned(),
            format!(
                "{reason} {} of credits that were still unused were taken back.",
                unit.amount(purchase.reversed_credits)
            ),
        ),
    };
    let closable = canceled && purchase.status == PurchaseStatus::Open;
    let pending = purchase.status.is_pending() && !closable;
    let purchase_id = purchase.id.clone();
    let closing = abandon.pending();
    let retry = matches!(
        purchase.status,
        PurchaseStatus::Failed | PurchaseStatus::Canceled
    );
    view! {
        <section class="card purchase-outcome" aria-labelledby="outcome-heading" data-testid="purchase-outcome" data-status=purchase.status.as_str()>
            <div class="card-head">
                <h1 id="outcome-heading">{title}</h1>
                <TestModeBadge test_mode/>
            </div>
            <p role=if pending { "status" } else { "alert" } aria-live="polite">
                {pending.then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
                {body}
            </p>
            <dl class="summary">
                <div><dt>"Item"</dt><dd>{purchase.description.clone()}</dd></div>
                <div><dt>"Amount"</dt><dd>{format!("{} {}", purchase.amount, purchase.amount.currency().as_str().to_ascii_uppercase())}</dd></div>
                <div><dt>"Credits"</dt><dd>{unit.figure(credits)}</dd></div>
                <div><dt>"Status"</dt><dd><PurchaseStatusBadge status=purchase.status/></dd></div>
                {purchase.payment_method.clone().map(|m| view! { <div><dt>"Paid with"</dt><dd>{m}</dd></div> })}
                <div><dt>"Balance"</dt><dd data-testid="balance">{unit.figure(balance)}</dd></div>
            </dl>
            {closable.then(|| view! {
                <ServerForm action=abandon>
                    <input type="hidden" name="id" value=purchase_id.clone()/>
                    <button type="submit" class="button primary" data-testid="cancel-checkout" disabled=move || closing.get() aria-busy=move || closing.get().to_string()>
                        {move || if closing.get() { "Canceling…" } else { "Cancel this checkout" }}
                    </button>
                </ServerForm>
                {move || abandon.value().get().and_then(|r| r.err()).map(|e| view! { <p class="notice notice-error" role="alert">{e.to_string()}</p> })}
            })}
            <div class="actions">
                {purchase.receipt_url.clone().map(|url| view! { <a class="button" href=url target="_blank" rel="noopener">"View receipt"</a> })}
                {retry.then(|| view! { <a class="button primary" href="/billing#buy-credits">"Try again"</a> })}
                <a class="button" href="/billing">"Back to Billing"</a>
                <CopySupportDetails details/>
            </div>
        </section>
    }
}
