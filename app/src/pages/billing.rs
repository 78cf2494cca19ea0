use crate::billing::{load_billing, BillingOverview};
use crate::components::{
    AutoReloadCard, BucketList, BuyCredits, CreditsCard, CreditsHelp, ErrorPanel, Loading,
    PlanCard, PoolCard, PurchaseList, SavedCards, TopBar, TransactionTable, UpcomingExpiries,
    UsageChart, YourBudgets,
};
use crate::purchases::{load_purchases, PurchaseSection};
use leptos::either::Either;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Billing → AI credits for the current workspace.
#[component]
pub fn BillingPage() -> impl IntoView {
    let query = use_query_map();
    let overview = Resource::new(move || query.with(|q| q.get("usage_by")), load_billing);
    let purchases = Resource::new(|| (), |_| load_purchases());
    view! {
        <Title text="Billing"/>
        <Suspense fallback=|| view! { <Loading what="your credits"/> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(data) => {
                        let section = purchases.await;
                        Either::Left(view! { <BillingView data section/> })
                    }
                    Err(error) => Either::Right(view! { <main id="main" class="narrow"><ErrorPanel error/></main> }),
                }
            })}
        </Suspense>
    }
}

#[component]
fn BillingView(
    data: BillingOverview,
    section: Result<PurchaseSection, crate::error::AppError>,
) -> impl IntoView {
    let BillingOverview {
        viewer,
        credits,
        usage,
        plan,
    } = data;
    crate::format::show_amounts_in(&viewer.unit);
    let unit = viewer.unit.clone();
    let read_only = !viewer.can_manage_billing;
    let who_can_buy = viewer.who_can_buy.clone();
    let workspace_name = viewer.workspace.name.clone();
    let recent = credits.transactions.clone();
    let buckets = credits.buckets.clone();
    let auto_reload = credits.auto_reload.clone();
    let credits_budgets = credits.budgets.clone();
    if let Some(pool) = credits.pool.clone() {
        // A member shown only their project's pool: its figures and their budgets, nothing
        // of the workspace's balance, history, purchases or use.
        return Either::Left(view! {
            <TopBar viewer/>
            <main id="main">
                <div class="page-head">
                    <h1>"Billing"</h1>
                    <p class="muted">{format!("AI credits for {workspace_name}")}</p>
                </div>
                <PoolCard pool/>
                <YourBudgets budgets=credits_budgets/>
                <CreditsHelp/>
            </main>
        });
    }
    Either::Right(view! {
        <TopBar viewer/>
        <main id="main">
            <div class="page-head">
                <h1>"Billing"</h1>
                <p class="muted">{format!("AI credits for {workspace_name}")}</p>
            </div>
            {read_only.then(|| view! {
                <p class="notice notice-info" data-testid="read-only-note">
                    <strong>"You have read-only access. "</strong>
                    {who_can_buy}
                </p>
            })}
            <div class="grid">
                <CreditsCard credits/>
                <BucketList buckets=buckets.clone()/>
            </div>
            <YourBudgets budgets=credits_budgets/>
            <div class="grid">
                <PlanCard plan/>
                <UpcomingExpiries buckets/>
            </div>
            {match section {
                Ok(section) => {
                    let purchases = section.purchases.clone();
                    let cards = section.cards.clone();
                    let cards_error = section.cards_error.clone();
                    let workspace_id = section.workspace_id.clone();
                    let workspace_name = section.workspace_name.clone();
                    let can_manage = section.can_buy;
                    // Where buying needs a paid plan, a free workspace's Auto-reload is not set.
                    let can_reload = can_manage && section.upgrade.is_none();
                    let (packs, terms) = (section.packs.clone(), section.custom.clone());
                    Either::Left(view! {
                        <BuyCredits options=section.buy_options() unit=unit.clone()/>
                        <div class="grid">
                            {can_manage.then(|| view! { <SavedCards cards=cards.clone() error=cards_error/> })}
                            <AutoReloadCard panel=auto_reload cards packs terms can_manage=can_reload unit=unit.clone()/>
                        </div>
                        {can_manage.then(|| view! { <PurchaseList purchases workspace_id workspace_name/> })}
                    })
                }
                Err(error) => Either::Right(view! {
                    <section id="buy-credits" class="card">
                        <h2>"Buy credits"</h2>
                        <p class="notice notice-error" role="alert">{format!("Purchases could not be loaded. {error}")}</p>
                    </section>
                }),
            }}
            <UsageChart report=usage/>
            <section class="card" aria-labelledby="recent-heading">
                <div class="card-head">
                    <h2 id="recent-heading">"Recent activity"</h2>
                    <a href="/billing/history" class="link">"View full history"</a>
                </div>
                <TransactionTable
                    transactions=recent
                    caption="The five most recent credit movements"
                    empty="No credit activity yet. Purchases, grants and AI usage will show here as they happen."
                />
            </section>
            <CreditsHelp/>
        </main>
    })
}
