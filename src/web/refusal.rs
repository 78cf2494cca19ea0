//! A change refused before the page's script runs: the reason shown, not a bare reload.
//!
//! Until a page has hydrated, or where scripts are off, its forms post straight to their
//! server functions, and Leptos answers a plain form post by sending the browser back to the
//! page it came from. When the function refused the change, its reason travelled only in that
//! answer's body, which the browser never shows: the person saw the same page again with
//! nothing said. This layer keeps the reason for the page they land on, in a cookie of a
//! minute that only this server writes, hands it to that page's render
//! ([`app::request::RefusedChange`]) and clears it once the page is shown. Never in the
//! address: a link from anywhere could then put words of its own on a Tally page.

use crate::state::AppState;
use app::error::AppError;
use app::request::{read_cookie, RefusedChange, REFUSAL_COOKIE};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The header server functions put on an error's answer.
const SERVER_FN_ERROR: &str = "serverfnerror";

/// The most of an error's answer read: a refusal's reason is a sentence or two.
const MOST_READ: usize = 16 * 1024;

/// The longest reason a page shows.
const MOST_SHOWN: usize = 300;

/// Keeps a plain form post's refusal for the page the browser is sent back to, and hands it
/// to that page.
pub async fn carry_refusal(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let plain_form = request.method() == Method::POST && accepts_html(request.headers());
    let carried = (request.method() == Method::GET)
        .then(|| read_cookie(request.headers(), REFUSAL_COOKIE))
        .flatten();
    if let Some(reason) = carried.as_deref().and_then(decode) {
        request.extensions_mut().insert(RefusedChange(reason));
    }
    let response = next.run(request).await;
    if carried.is_some() && is_page(&response) {
        // Said once: the page that showed it clears it.
        return with_cookie(response, &cookie(&state, "", 0));
    }
    let headers = response.headers();
    if !plain_form
        || !headers.contains_key(SERVER_FN_ERROR)
        || !headers.contains_key(header::LOCATION)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let refusal = match axum::body::to_bytes(body, MOST_READ).await {
        Ok(bytes) => serde_json::from_slice::<AppError>(&bytes).unwrap_or(AppError::Internal),
        Err(_) => AppError::Internal,
    };
    parts.status = StatusCode::SEE_OTHER;
    // The reason goes in the cookie, not the address the server functions put it in.
    if let Some(back) = parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(without_error_info)
        .and_then(|back| HeaderValue::from_str(&back).ok())
    {
        parts.headers.insert(header::LOCATION, back);
    }
    parts.headers.remove(SERVER_FN_ERROR);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let value = URL_SAFE_NO_PAD.encode(refusal.to_string());
    with_cookie(
        Response::from_parts(parts, Body::empty()),
        &cookie(&state, &value, 60),
    )
}

/// `location` without the `__path` and `__err` pairs server functions add to its query.
fn without_error_info(location: &str) -> String {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let (query, fragment) = query.split_once('#').unwrap_or((query, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(key, _)| key);
            !pair.is_empty() && key != "__path" && key != "__err"
        })
        .collect();
    let mut back = path.to_owned();
    if !kept.is_empty() {
        back.push('?');
        back.push_str(&kept.join("&"));
    }
    if !fragment.is_empty() {
        back.push('#');
        back.push_str(fragment);
    }
    back
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Whether the answer is a page the person sees (not a redirect, a file or JSON).
fn is_page(response: &Response) -> bool {
    !response.status().is_redirection()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
}

/// The reason a cookie carries: URL-safe base64 of its text (a cookie's value allows no
/// spaces, commas or semicolons), cut to what a notice shows.
fn decode(value: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MOST_SHOWN).collect())
}

/// The refusal cookie with `value`, kept `max_age` seconds, sent to this site only.
fn cookie(state: &AppState, value: &str, max_age: u64) -> String {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{REFUSAL_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_loses_only_the_error_info() {
        assert_eq!(
            without_error_info("http://t.test/api-keys?__path=%2Fapi%2Fx&__err=eyJ9"),
            "http://t.test/api-keys"
        );
        assert_eq!(
            without_error_info("/billing?usage_by=model&__err=eyJ9&__path=x#buy"),
            "/billing?usage_by=model#buy"
        );
        assert_eq!(without_error_info("/budgets"), "/budgets");
    }

    #[test]
    fn a_reason_survives_the_cookie_and_nothing_else_is_read() {
        let reason = "Give the key a name of 1 to 100 characters, such as “Production backend”.";
        let value = URL_SAFE_NO_PAD.encode(reason);
        assert!(value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode(&value).as_deref(), Some(reason));
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("   ")), None);
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("x".repeat(1_000)))
                .unwrap()
                .len(),
            MOST_SHOWN
        );
    }
}
