use crate::error::AppError;
use leptos::prelude::*;

/// A polite loading line for screen readers and eyes alike.
#[component]
pub fn Loading(#[prop(into)] what: String) -> impl IntoView {
    view! { <p class="loading" role="status">{format!("Loading {what}…")}</p> }
}

/// What to show when a page's data could not be had, with the HTTP status to match when the
/// page is rendered on the server.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        let status = error.status();
        response.set_status(status);
    }
    let (title, body) = match &error {
        AppError::Forbidden => (
            "You don't have access to Billing",
            "Guests can't open Billing or see this workspace's credits. If you need something here, ask the workspace owner or the person who shared the work with you.".to_owned(),
        ),
        AppError::PoolOnly => (
            "Your project's credits are on Billing",
            "Your workspace keeps credits apart for the project you work in. You see those on Billing; the workspace's balance, history and purchases are for its billing managers.".to_owned(),
        ),
        AppError::Unauthenticated => ("Please sign in", error.to_string()),
        AppError::Invalid(_) => ("That request didn't work", error.to_string()),
        _ => ("Something went wrong", error.to_string()),
    };
    let sign_in = matches!(error, AppError::Unauthenticated);
    view! {
        <section class="card error-panel" role="alert" aria-labelledby="error-title">
            <h1 id="error-title">{title}</h1>
            <p>{body}</p>
            {sign_in.then(|| view! { <p><a class="button primary" href="/login">"Sign in"</a></p> })}
        </section>
    }
}

/// What an action answered, as one notice: `said` of its value on success (announced
/// politely), the error's sentence otherwise (announced at once). One view for both, so the
/// islands that show outcomes carry no type-erased views for them.
pub fn outcome<T>(result: Result<T, AppError>, said: impl FnOnce(T) -> String) -> impl IntoView {
    let (class, role, text) = notice(result.map(said));
    view! { <p class=class role=role>{text}</p> }
}

/// A notice's class, role and sentence: a success is said politely (`status`), an error at
/// once (`alert`). Shared by [`outcome`] and the lists' live regions
/// ([`super::announce`]).
pub(super) fn notice(answer: Result<String, AppError>) -> (&'static str, &'static str, String) {
    match answer {
        Ok(text) => ("notice notice-info", "status", text),
        Err(error) => ("notice notice-error", "alert", error.to_string()),
    }
}
