use crate::startup::AppState;
use app::services::{read_cookie, SESSION_COOKIE};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// Sends people without a live session from the Billing pages to the sign-in page, and
/// signed-in people from the sign-in page to Billing. Guests and other roles are decided by
/// the pages themselves.
pub async fn page_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let guarded = path == "/billing"
        || path.starts_with("/billing/")
        || path == "/studio"
        || path == "/notifications";
    let is_login = path == "/login";
    if request.method() != Method::GET || !(guarded || is_login) {
        return next.run(request).await;
    }
    let signed_in = match read_cookie(request.headers(), SESSION_COOKIE) {
        None => false,
        Some(token) => match state.store.session(&token, state.clock.now_ms()).await {
            Ok(session) => session.is_some(),
            Err(err) => {
                tracing::error!(error = %err, "session lookup failed");
                return crate::api::ApiError::Internal(err.to_string()).into_response();
            }
        },
    };
    match (signed_in, guarded) {
        (false, true) => Redirect::to("/login").into_response(),
        (true, false) => Redirect::to("/billing").into_response(),
        _ => next.run(request).await,
    }
}
