use crate::billing::{load_history, HistoryFilter, HistoryPage as Page};
use crate::components::{ErrorPanel, Loading, TopBar, TransactionTable};
use crate::domain::EntryType;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The full history of the current workspace: filters by type and date, cursor pages and a
/// CSV export of everything the filters select.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let query = use_query_map();
    let page = Resource::new(
        move || query.with(|q| (q.get("type"), q.get("from"), q.get("to"), q.get("cursor"))),
        |(entry_type, from, to, cursor)| load_history(entry_type, from, to, cursor),
    );
    view! {
        <Title text="Credit history"/>
        <Suspense fallback=|| view! { <Loading what="history"/> }>
            {move || Suspend::new(async move {
                let (entry_type, from, to, cursor) =
                    query.with_untracked(|q| (q.get("type"), q.get("from"), q.get("to"), q.get("cursor")));
                let filter = HistoryFilter::from_query(entry_type.as_deref(), from.as_deref(), to.as_deref())
                    .unwrap_or_default();
                let first_page = cursor.is_none_or(|c| c.is_empty());
                match page.await {
                    Ok(data) => view! { <HistoryView data filter first_page/> }.into_any(),
                    Err(error) => view! { <main id="main" class="narrow"><ErrorPanel error/></main> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn HistoryView(data: Page, filter: HistoryFilter, first_page: bool) -> impl IntoView {
    let Page {
        viewer,
        transactions,
        next_cursor,
    } = data;
    crate::format::show_amounts_in(&viewer.unit);
    let query = filter.query_string();
    let csv_href = if query.is_empty() {
        "/billing/history.csv".to_owned()
    } else {
        format!("/billing/history.csv?{query}")
    };
    let first_href = if query.is_empty() {
        "/billing/history".to_owned()
    } else {
        format!("/billing/history?{query}")
    };
    let next_href = next_cursor.map(|cursor| {
        if query.is_empty() {
            format!("/billing/history?cursor={cursor}")
        } else {
            format!("/billing/history?{query}&cursor={cursor}")
        }
    });
    let filtered = filter != HistoryFilter::default();
    let empty = if filtered {
        "No movements match these filters. Try another type or a wider date range."
    } else {
        "No credit activity yet. Purchases, grants and AI usage will show here as they happen."
    };
    let selected_type = filter.entry_type;
    view! {
        <TopBar viewer/>
        <main id="main">
            <div class="page-head">
                <p class="breadcrumb"><a href="/billing">"Billing"</a>" / History"</p>
                <h1>"Credit history"</h1>
            </div>
            <section class="card" aria-labelledby="filters-heading">
                <h2 id="filters-heading" class="visually-hidden">"Filters"</h2>
                <form method="get" action="/billing/history" class="filters">
                    <div class="field">
                        <label for="filter-type">"Type"</label>
                        <select id="filter-type" name="type">
                            <option value="" selected=selected_type.is_none()>"All types"</option>
                            {EntryType::ALL
                                .iter()
                                .map(|t| view! {
                                    <option value=t.as_str() selected=selected_type == Some(*t)>{t.label()}</option>
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="filter-from">"From"</label>
                        <input id="filter-from" name="from" type="date" value=filter.from.map(|d| d.to_string()).unwrap_or_default()/>
                    </div>
                    <div class="field">
                        <label for="filter-to">"To"</label>
                        <input id="filter-to" name="to" type="date" value=filter.to.map(|d| d.to_string()).unwrap_or_default()/>
                    </div>
                    <div class="actions">
                        <button type="submit" class="button primary">"Apply filters"</button>
                        {filtered.then(|| view! { <a class="button ghost" href="/billing/history">"Clear"</a> })}
                        <a class="button" href=csv_href download="tally-credit-history.csv">"Export CSV"</a>
                    </div>
                </form>
            </section>
            <section class="card" aria-labelledby="history-heading">
                <h2 id="history-heading">"Movements"</h2>
                <TransactionTable transactions caption="Credit movements, newest first" empty=empty/>
                <nav class="pager" aria-label="History pages">
                    {(!first_page).then(|| view! { <a class="button ghost" href=first_href.clone()>"Newest"</a> })}
                    {next_href.map(|href| view! { <a class="button" href=href rel="next">"Older movements"</a> })}
                </nav>
            </section>
        </main>
    }
}
