use super::origin;
use crate::state::AppState;
use app::request::{read_cookie, SESSION_COOKIE};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// Refuses a request that changes state on a person's behalf unless the site's own pages sent
/// it: its `Origin` (or, without one, its `Referer`) must be the site's origin. That covers
/// every request with a session cookie (server functions, the API) and the session forms
/// (sign-in, sign-out, the workspace switcher) with or without one: a forged sign-in would sign
/// the victim into the attacker's workspace. A service calling with a workspace API key and no `Origin` is not a
/// browser and passes; so do requests without a session (Stripe's webhooks), which act for
/// nobody.
pub async fn same_origin_guard(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let reads_only = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let service =
        headers.contains_key(header::AUTHORIZATION) && !headers.contains_key(header::ORIGIN);
    let path = request.uri().path();
    // The session forms act on the browser's cookie even without one: a forged sign-in signs
    // the victim in as the attacker, a forged sign-out clears the cookie in its answer.
    let session_form = matches!(path, "/login" | "/logout" | "/session/workspace");
    let for_a_person = session_form || read_cookie(headers, SESSION_COOKIE).is_some();
    if reads_only
        || service
        || !for_a_person
        || origin::same_origin(state.config.public_url.as_deref(), headers)
    {
        return next.run(request).await;
    }
    tracing::info!(
        path,
        from = origin::sender(headers).unwrap_or("(none)"),
        "a state-changing request from another site was refused"
    );
    if path.starts_with("/api/") {
        return crate::api::ApiError::CrossSite.into_response();
    }
    (StatusCode::FORBIDDEN, Html(CROSS_SITE_PAGE)).into_response()
}

/// What a person sees when a form from another site tried to act for them.
const CROSS_SITE_PAGE: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Request refused · Tally</title></head>
<body><main><h1>That request came from another site</h1>
<p>Tally only acts on forms and buttons on its own pages, so nothing was changed. If you meant to do this, open Tally directly and try again there.</p>
<p><a href="/billing">Go to Billing</a></p></main></body></html>"#;

/// Sends people without a live session from the Billing pages to the sign-in page, and
/// signed-in people from the sign-in page to Billing. Guests and other roles are decided by
/// the pages themselves.
pub async fn page_guard(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    // The CSV export is not a page: it answers API keys too, and says 401 itself.
    let guarded = path == "/billing"
        || (path.starts_with("/billing/") && path != "/billing/history.csv")
        || path == "/studio"
        || path == "/notifications"
        || path == "/api-keys"
        || path == "/budgets";
    let is_login = path == "/login";
    if request.method() != Method::GET || !(guarded || is_login) {
        return next.run(request).await;
    }
    // Resolved once here; the page's server functions find it in the request.
    let viewer = match read_cookie(request.headers(), SESSION_COOKIE) {
        None => None,
        Some(token) => {
            let unit = &state.config.storefront.unit;
            match crate::backend::viewer_of(&state.store, &token, state.clock.now_ms(), unit).await
            {
                Ok(viewer) => viewer,
                Err(err) => {
                    tracing::error!(error = %err, "session lookup failed");
                    return crate::api::ApiError::Internal(err.to_string()).into_response();
                }
            }
        }
    };
    let signed_in = viewer.is_some();
    request
        .extensions_mut()
        .insert(app::backend::SignedIn(viewer));
    match (signed_in, guarded) {
        (false, true) => Redirect::to("/login").into_response(),
        (true, false) => Redirect::to("/billing").into_response(),
        _ => next.run(request).await,
    }
}
