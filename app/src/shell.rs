use crate::pages::{
    ApiKeysPage, BillingPage, BudgetsPage, HistoryPage, LoginPage, NotFound, NotificationsPage,
    PurchasePage, RatesPage, StudioPage,
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The HTML document around the app, rendered on the server. Its Content-Security-Policy
/// allows scripts from the site and the page's own nonce only (Leptos puts it on the inline
/// scripts it writes), WebAssembly, and styles from the site.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <meta
                    name="description"
                    content="Your workspace's prepaid AI credits: balance, usage, purchases and Auto-reload."
                />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                // The bundle's files by the names the build gave them (hashed after their
                // contents, so browsers keep them for good; see the server's site_files).
                <HashedStylesheet options=options.clone() id="leptos"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[cfg(feature = "ssr")]
fn content_security_policy() {
    let (Some(response), Some(nonce)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        leptos::nonce::use_nonce(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The application: its routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Title formatter=|text: String| if text.is_empty() { "Tally".to_owned() } else { format!("{text} · Tally") }/>
        // `data-hydrated` turns "true" once the browser has hydrated the page's islands
        // (frontend/src/lib.rs), so tests and styles can tell.
        <div id="app" data-hydrated="false">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <Router>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=|| view! { <Redirect path="/billing"/> }/>
                    <Route path=path!("/login") view=LoginPage/>
                    <Route path=path!("/billing") view=BillingPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/history") view=HistoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/rates") view=RatesPage ssr=SsrMode::Async/>
                    <Route path=path!("/billing/purchases/:id") view=PurchasePage ssr=SsrMode::Async/>
                    <Route path=path!("/studio") view=StudioPage ssr=SsrMode::Async/>
                    <Route path=path!("/notifications") view=NotificationsPage ssr=SsrMode::Async/>
                    <Route path=path!("/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                    <Route path=path!("/budgets") view=BudgetsPage ssr=SsrMode::Async/>
                </Routes>
            </Router>
        </div>
    }
}
