use crate::billing::{load_billing, BillingOverview};
use crate::components::{
    BucketList, CreditsCard, ErrorPanel, Loading, TopBar, TransactionTable, UsageChart,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Billing → AI credits for the current workspace.
#[component]
pub fn BillingPage() -> impl IntoView {
    let query = use_query_map();
    let overview = Resource::new(move || query.with(|q| q.get("usage_by")), load_billing);
    view! {
        <Title text="Billing"/>
        <Suspense fallback=|| view! { <Loading what="your credits"/> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(data) => view! { <BillingView data/> }.into_any(),
                    Err(error) => view! { <main id="main" class="narrow"><ErrorPanel error/></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn BillingView(data: BillingOverview) -> impl IntoView {
    let BillingOverview {
        viewer,
        credits,
        usage,
    } = data;
    let read_only = !viewer.can_manage_billing;
    let who_can_buy = viewer.who_can_buy.clone();
    let workspace_name = viewer.workspace.name.clone();
    let recent = credits.transactions.clone();
    let buckets = credits.buckets.clone();
    view! {
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
                <BucketList buckets/>
            </div>
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
        </main>
    }
}
