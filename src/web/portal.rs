//! `GET /portal/{token}`: the sign-in link the host product hands its people (see
//! `accounts::portal`). A good link starts a session and lands on Billing; a used, expired or
//! unknown one gets a page that says so, and no session.

use super::session::session_cookie;
use crate::accounts::portal::PortalOpened;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// The refusal page's policy: the site's stylesheet, nothing else.
const REFUSAL_POLICY: &str =
    "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn refusal(css_href: &str, status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Tally</title><link rel="stylesheet" href="{css_href}"></head>
<body><main id="main" class="narrow"><section class="card error-panel" role="alert">
<h1>{title}</h1><p>{body}</p>
<p><a class="button" href="/login">Sign in with a password instead</a></p>
</section></main></body>
</html>
"#
    );
    let mut response = (status, Html(page)).into_response();
    response.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(REFUSAL_POLICY),
    );
    response
}

#[tracing::instrument(skip_all)]
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let well_formed = token.len() <= 100
        && token.starts_with("ptl_")
        && token[4..].chars().all(|c| c.is_ascii_alphanumeric());
    let css = state.site_files.css_href();
    let opened = if well_formed {
        let ttl = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        match state
            .store
            .open_portal_link(&token, state.clock.now_ms(), ttl)
            .await
        {
            Ok(opened) => opened,
            Err(err) => {
                tracing::error!(error = %err, "a sign-in link could not be opened");
                return refusal(
                    &css,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable",
                    "Tally could not open this link just now. Go back and open Billing again in a minute.",
                );
            }
        }
    } else {
        PortalOpened::Unknown
    };
    match opened {
        PortalOpened::SignedIn { session_token } => {
            let mut response = Redirect::to("/billing").into_response();
            response.headers_mut().insert(
                SET_COOKIE,
                session_cookie(&state, &session_token, state.config.session_ttl.as_secs()),
            );
            response
        }
        PortalOpened::Used => refusal(
            &css,
            StatusCode::GONE,
            "This link was already used",
            "Each sign-in link works once. Go back to the product you came from and open Billing again for a new one.",
        ),
        PortalOpened::Expired => refusal(
            &css,
            StatusCode::GONE,
            "This link has expired",
            "Sign-in links work for five minutes. Go back to the product you came from and open Billing again for a new one.",
        ),
        PortalOpened::Unknown => refusal(
            &css,
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "It may have been copied incompletely. Go back to the product you came from and open Billing again.",
        ),
        PortalOpened::Mismatch => refusal(
            &css,
            StatusCode::CONFLICT,
            "This account could not be matched",
            "The product you came from and Tally know this email as two different people. Ask the workspace owner to sort it out.",
        ),
    }
}
