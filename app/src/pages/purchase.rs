use crate::components::{
    announce, post_form, read_lists_again, CopySupportDetails, ErrorPanel, ListSubmit, Loading,
    PurchaseStatusBadge, TestModeBadge,
};
use crate::domain::PurchaseStatus;
use crate::purchases::{load_purchase, AbandonCheckout, PurchaseDetail};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// The id of the purchase's part of the page, which the island reads again.
const OUTCOME: [&str; 1] = ["purchase-outcome-region"];

/// The client the page is read again through (every server function's is the same).
type PageClient = <AbandonCheckout as ServerFn>::Client;

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
                    Suspend::new(async move {
                        match detail.await {
                            Ok(data) => {
                                let pending = waits(&data);
                                view! {
                                    <PurchaseTracker pending>
                                        <div id="purchase-outcome-region">
                                            <PurchaseOutcome data canceled/>
                                        </div>
                                    </PurchaseTracker>
                                }
                                .into_any()
                            }
                            Err(error) => view! { <ErrorPanel error/> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </main>
    }
}

/// Whether the page keeps looking: until the payment provider has the last word. A buyer
/// back from the payment page without paying may still have had a payment attempt refused.
fn waits(data: &PurchaseDetail) -> bool {
    data.purchase.status.is_pending()
}

/// Keeps the purchase current: its part of the page (the children, the server's HTML) is read
/// again every second while the payment is pending, and closing a checkout the buyer left is
/// sent from here and shown in place. An island.
#[island]
fn PurchaseTracker(
    /// The payment is pending: look again until it is not.
    pending: bool,
    children: Children,
) -> impl IntoView {
    // In the browser only: an effect never runs on the server.
    Effect::new(move |_| {
        if pending {
            look_again(FIRST_LOOK_MS);
        }
    });
    let on_submit = move |ev: leptos::web_sys::SubmitEvent| {
        let Some(mut sent) = ListSubmit::take(&ev, &[AbandonCheckout::url()]) else {
            return;
        };
        leptos::task::spawn_local(async move {
            match post_form::<AbandonCheckout>(std::mem::take(&mut sent.body)).await {
                Ok(_) => read_lists_again::<PageClient>(&OUTCOME).await,
                Err(error) => announce("abandon-outcome", Err(error)),
            }
            sent.done();
        });
    };
    // The refusal's region is the island's own, outside the part read again each second.
    view! {
        <div on:submit=on_submit>{children()}</div>
        <div id="abandon-outcome" aria-live="polite"></div>
    }
}

/// The first look again, a second after the page; each later one waits a second longer, up to
/// [`LAST_LOOK_MS`] (a checkout left open waits a day at most).
const FIRST_LOOK_MS: u64 = 1_000;
const LAST_LOOK_MS: u64 = 10_000;

/// Reads the purchase's part of the page again after `wait` ms, and again after that while
/// the server still says it waits (`data-pending` on the outcome).
fn look_again(wait: u64) {
    set_timeout(
        move || {
            leptos::task::spawn_local(async move {
                read_lists_again::<PageClient>(&OUTCOME).await;
                let waiting = document()
                    .query_selector("#purchase-outcome-region [data-pending=\"true\"]")
                    .ok()
                    .flatten()
                    .is_some();
                if waiting {
                    look_again((wait + 1_000).min(LAST_LOOK_MS));
                }
            });
        },
        Duration::from_millis(wait),
    );
}

#[component]
fn PurchaseOutcome(data: PurchaseDetail, canceled: bool) -> impl IntoView {
    let waiting = waits(&data);
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
    // Said as "Processing…" with a spinner (a checkout the buyer left is said otherwise).
    let processing = waiting && !closable;
    let purchase_id = purchase.id.clone();
    let retry = matches!(
        purchase.status,
        PurchaseStatus::Failed | PurchaseStatus::Canceled
    );
    view! {
        <section class="card purchase-outcome" aria-labelledby="outcome-heading" data-testid="purchase-outcome" data-status=purchase.status.as_str() data-pending=waiting.to_string()>
            <div class="card-head">
                <h1 id="outcome-heading">{title}</h1>
                <TestModeBadge test_mode/>
            </div>
            <p role=if processing { "status" } else { "alert" } aria-live="polite">
                {processing.then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
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
                <form action=AbandonCheckout::url() method="post">
                    <input type="hidden" name="id" value=purchase_id.clone()/>
                    <button type="submit" class="button primary" data-testid="cancel-checkout" data-busy="Canceling…" aria-busy="false">"Cancel this checkout"</button>
                </form>
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
