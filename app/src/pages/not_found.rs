use leptos::prelude::*;
use leptos_meta::Title;

/// Shown for any path Tally does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <main id="main" class="narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. "<a href="/billing">"Go to Billing"</a></p>
        </main>
    }
}
