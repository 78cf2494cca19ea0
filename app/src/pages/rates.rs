use crate::components::{ErrorPanel, Loading, TopBar};
use crate::domain::Modality;
use crate::rates::{load_rates, RatesView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// What AI work costs, one tab per modality. Read-only for everyone who may open Billing.
#[component]
pub fn RatesPage() -> impl IntoView {
    let rates = Resource::new(|| (), |_| load_rates());
    let query = use_query_map();
    view! {
        <Title text="AI credit rates"/>
        <Suspense fallback=|| view! { <Loading what="rates"/> }>
            {move || {
                // Tracked here, so switching tabs re-renders without fetching the rates again.
                let tab = query.with(|q| q.get("tab")).and_then(|t| Modality::parse(&t).ok()).unwrap_or(Modality::Text);
                Suspend::new(async move {
                    match rates.await {
                        Ok(data) => view! { <RatesTable data tab/> }.into_any(),
                        Err(error) => view! { <main id="main" class="narrow"><ErrorPanel error/></main> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn RatesTable(data: RatesView, tab: Modality) -> impl IntoView {
    let RatesView { viewer, rates } = data;
    crate::format::show_amounts_in(&viewer.unit);
    let unit = viewer.unit.clone();
    let tabs = Modality::ALL
        .iter()
        .map(|m| {
            let current = *m == tab;
            view! {
                <a href=format!("/billing/rates?tab={}", m.as_str()) class="tab" class:active=current aria-current=if current { "page" } else { "false" }>
                    {m.label()}
                </a>
            }
        })
        .collect_view();
    let shown: Vec<_> = rates.into_iter().filter(|r| r.modality == tab).collect();
    let body = if shown.is_empty() {
        view! { <p class="empty">"No models of this kind are available yet."</p> }.into_any()
    } else {
        let rows = shown
            .into_iter()
            .map(|r| view! {
                <tr data-model=r.model.clone()>
                    <th scope="row">{r.label.clone()}<span class="muted detail">{r.model.clone()}</span></th>
                    <td class="num">{r.describe_in(&unit)}</td>
                </tr>
            })
            .collect_view();
        view! {
            <table class="transactions rates">
                <caption class="visually-hidden">{format!("{} model rates", tab.label())}</caption>
                <thead><tr><th scope="col">"Model"</th><th scope="col" class="num">"Rate"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <TopBar viewer/>
        <main id="main">
            <div class="page-head">
                <p class="breadcrumb"><a href="/billing">"Billing"</a>" / Rates"</p>
                <h1>"AI credit rates"</h1>
                <p class="muted">"What each model's work costs. An action's cost follows the work it really did, rounded up to a whole credit."</p>
            </div>
            <section class="card">
                <nav class="tabs" aria-label="Kinds of AI work">{tabs}</nav>
                {body}
            </section>
        </main>
    }
}
