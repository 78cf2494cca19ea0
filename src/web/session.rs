use crate::accounts::{password, Email};
use crate::startup::AppState;
use app::domain::WorkspaceId;
use app::services::{read_cookie, SESSION_COOKIE};
use axum::extract::{ConnectInfo, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
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

fn session_cookie(state: &AppState, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn back_to_login(reason: &str) -> Response {
    Redirect::to(&format!("/login?error={reason}")).into_response()
}

/// `POST /login`: checks the password (off the executor), rate-limits failures per email
/// and per client address across all instances, and starts a session.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(form): Form<SignInForm>,
) -> Response {
    if form.email.trim().is_empty() || form.password.is_empty() || form.password.len() > 1_000 {
        return back_to_login("missing");
    }
    let Ok(email) = Email::parse(&form.email) else {
        return back_to_login("invalid");
    };
    match attempt_sign_in(&state, &email, form.password, &client.ip().to_string()).await {
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
        Err(SignInRefused::Unavailable(err)) => {
            tracing::error!(error = %err, "sign-in failed");
            back_to_login("unavailable")
        }
    }
}

enum SignInRefused {
    RateLimited,
    Unavailable(crate::store::StoreError),
}

impl From<crate::store::StoreError> for SignInRefused {
    fn from(err: crate::store::StoreError) -> Self {
        SignInRefused::Unavailable(err)
    }
}

async fn attempt_sign_in(
    state: &AppState,
    email: &Email,
    password: String,
    client: &str,
) -> Result<Option<String>, SignInRefused> {
    let store = &state.store;
    let now = state.clock.now_ms();
    let email_key = format!("email:{email}");
    let client_key = format!("client:{client}");
    if store
        .login_failures_since(&email_key, now - WINDOW_MS)
        .await?
        >= MAX_FAILURES_PER_EMAIL
        || store
            .login_failures_since(&client_key, now - WINDOW_MS)
            .await?
            >= MAX_FAILURES_PER_CLIENT
    {
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
        _ => {
            store.record_login_failure(&email_key, now).await?;
            store.record_login_failure(&client_key, now).await?;
            return Ok(None);
        }
    };
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
pub async fn switch_workspace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SwitchForm>,
) -> Response {
    let Some(token) = read_cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    let result = async {
        let Some(session) = state.store.session(&token, state.clock.now_ms()).await? else {
            return Ok::<_, crate::store::StoreError>(Redirect::to("/login").into_response());
        };
        let Ok(target) = WorkspaceId::parse(&form.workspace_id) else {
            return Ok(crate::api::ApiError::NotFound.into_response());
        };
        let member = state
            .store
            .memberships(&session.user_id)
            .await?
            .iter()
            .any(|m| m.workspace.id == target);
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
