use crate::accounts::{password, Email};
use crate::state::AppState;
use app::domain::WorkspaceId;
use app::request::{read_cookie, SESSION_COOKIE};
use axum::extract::{ConnectInfo, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::net::SocketAddr;

/// Failed sign-ins allowed per email, and per client address, in [`WINDOW_MS`].
const MAX_FAILURES_PER_EMAIL: i64 = 5;
const MAX_FAILURES_PER_CLIENT: i64 = 50;
const WINDOW_MS: i64 = 15 * 60 * 1000;

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) fn session_cookie(state: &AppState, value: &str, max_age_secs: u64) -> HeaderValue {
    let cookie = site_cookie(state, SESSION_COOKIE, value, "Lax", max_age_secs);
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cookie of this site: sent on every path, never readable by the page's scripts, kept
/// `max_age_secs`, and secure wherever the site is served over HTTPS.
pub(super) fn site_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    same_site: &str,
    max_age_secs: u64,
) -> String {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_secs}{secure}"
    )
}

fn back_to_login(reason: &str) -> Response {
    Redirect::to(&format!("/login?error={reason}")).into_response()
}

/// `POST /login`: checks the password (off the executor, a few at a time), rate-limits
/// failures per email and per client address across all instances, and starts a session.
/// The client is the TCP peer, or behind a trusted proxy the address it forwards.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let client = state.config.trusted_proxies.client(peer.ip(), &headers);
    if form.email.trim().is_empty() || form.password.is_empty() || form.password.len() > 1_000 {
        return back_to_login("missing");
    }
    let Ok(email) = Email::parse(&form.email) else {
        return back_to_login("invalid");
    };
    match attempt_sign_in(&state, &email, form.password, &client.to_string()).await {
        Ok(Some(token)) => {
            let mut response = Redirect::to("/billing").into_response();
            response.headers_mut().insert(
                SET_COOKIE,
                session_cookie(&state, &token, state.config.session_ttl.as_secs()),
            );
            response
        }
        Ok(None) => back_to_login("invalid"),
        Err(SignInRefused::RateLimited) => back_to_login("rate_limited"),
        Err(SignInRefused::Busy) => busy(),
        Err(SignInRefused::Unavailable(err)) => {
            tracing::error!(error = %err, "sign-in failed");
            back_to_login("unavailable")
        }
    }
}

enum SignInRefused {
    RateLimited,
    /// Every password verification slot is taken.
    Busy,
    Unavailable(crate::db::StoreError),
}

/// The answer when too many sign-ins arrive at once: 429, and when to try again.
fn busy() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(RETRY_AFTER, HeaderValue::from_static("2"))],
        Html(BUSY_PAGE),
    )
        .into_response()
}

const BUSY_PAGE: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Busy · Tally</title></head>
<body><main><h1>Many people are signing in right now</h1>
<p>Nothing is wrong with your account. Wait a couple of seconds and sign in again.</p>
<p><a href="/login">Back to sign-in</a></p></main></body></html>"#;

impl From<crate::db::StoreError> for SignInRefused {
    fn from(err: crate::db::StoreError) -> Self {
        SignInRefused::Unavailable(err)
    }
}

#[tracing::instrument(skip_all)]
async fn attempt_sign_in(
    state: &AppState,
    email: &Email,
    password: String,
    client: &str,
) -> Result<Option<String>, SignInRefused> {
    let store = &state.store;
    // Each verification takes a core for tens of milliseconds: a few at a time, and past a
    // short wait the rest are told to come back, so a burst cannot queue without end.
    let Ok(Ok(_permit)) = tokio::time::timeout(
        state.config.sign_in_wait,
        state.sign_ins.clone().acquire_owned(),
    )
    .await
    else {
        return Err(SignInRefused::Busy);
    };
    let now = state.clock.now_ms();
    let email_key = format!("email:{email}");
    let client_key = format!("client:{client}");
    // The attempt is written as a failure first and counted after (see
    // `count_sign_in_attempt`); a refused or successful one is taken back.
    let attempt = crate::db::new_id("att");
    let counts = store
        .count_sign_in_attempt(&attempt, &[&email_key, &client_key], now - WINDOW_MS, now)
        .await?;
    if counts[0] > MAX_FAILURES_PER_EMAIL || counts[1] > MAX_FAILURES_PER_CLIENT {
        store.forget_sign_in_attempt(&attempt).await?;
        return Err(SignInRefused::RateLimited);
    }
    let user = store.user_by_email(email).await?;
    let verified = password::verify(
        password,
        user.as_ref().and_then(|u| u.password_hash.clone()),
    )
    .await;
    let user = match (verified, user) {
        (true, Some(user)) => user,
        // The attempt stays written: it is the failure.
        _ => return Ok(None),
    };
    store.forget_sign_in_attempt(&attempt).await?;
    // Start in the first workspace by name; people without any membership cannot sign in.
    let Some(first) = store.memberships(&user.id).await?.into_iter().next() else {
        return Ok(None);
    };
    let ttl_ms = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let token = store
        .create_session(&user.id, &first.workspace.id, now, ttl_ms)
        .await?;
    Ok(Some(token))
}

/// `POST /logout`: ends the session and clears the cookie.
#[tracing::instrument(skip_all)]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = read_cookie(&headers, SESSION_COOKIE) {
        if let Err(err) = state.store.delete_session(&token).await {
            tracing::error!(error = %err, "could not delete a session");
        }
    }
    let mut response = Redirect::to("/login?notice=signed_out").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, "", 0));
    response
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    workspace_id: String,
}

/// `POST /session/workspace`: looks at another workspace the person belongs to. A workspace
/// they do not belong to is refused like an unknown one.
#[tracing::instrument(skip_all)]
pub async fn switch_workspace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SwitchForm>,
) -> Response {
    let Some(token) = read_cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    let result = async {
        let Some((_, memberships)) = state.store.signed_in(&token, state.clock.now_ms()).await?
        else {
            return Ok::<_, crate::db::StoreError>(Redirect::to("/login").into_response());
        };
        let Ok(target) = WorkspaceId::parse(&form.workspace_id) else {
            return Ok(crate::api::ApiError::NotFound.into_response());
        };
        let member = memberships.iter().any(|m| m.workspace.id == target);
        if !member {
            return Ok(crate::api::ApiError::NotFound.into_response());
        }
        state
            .store
            .switch_session_workspace(&token, &target)
            .await?;
        Ok(Redirect::to("/billing").into_response())
    }
    .await;
    result.unwrap_or_else(|err| crate::api::ApiError::from(err).into_response())
}
