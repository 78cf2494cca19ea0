//! A change refused before the page's script runs: the reason shown, not a bare reload.
//!
//! Until a page has hydrated, or where scripts are off, its forms post straight to their
//! server functions, and Leptos answers a plain form post by sending the browser back to the
//! page it came from. When the function refused the change, its reason travelled only in that
//! answer's body, which the browser never shows: the person saw the same page again with
//! nothing said. This layer keeps the reason for the page they land on, in a cookie of a
//! minute that only this site writes, hands it to that page's render
//! ([`app::request::RefusedChange`]) and clears it once the page is shown. Never in the
//! address: a link from anywhere could then put words of its own on a Tally page.

use super::origin;
use super::session::site_cookie;
use crate::state::AppState;
use app::error::AppError;
use app::request::{asks_for_a_page, read_cookie, RefusedChange};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
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

/// The cookie's name. Over HTTPS it carries the `__Host-` prefix, which browsers accept only
/// from this very host, secure, for the whole site: no sibling subdomain can write one.
fn cookie_name(state: &AppState) -> &'static str {
    if state.config.secure_cookies {
        "__Host-tally_refusal"
    } else {
        "tally_refusal"
    }
}

/// Keeps a plain form post's refusal for the page the browser is sent back to, and hands it
/// to that page.
pub async fn carry_refusal(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let public_url = state.config.public_url.as_deref();
    // Only a post from one of this site's own pages is sent back with its reason: another
    // site's post (which carries no session, and is answered as such) is left as it was.
    let from_site = (request.method() == Method::POST
        && asks_for_a_page(request.headers())
        && origin::same_origin(public_url, request.headers()))
    .then(|| request.headers().clone());
    let name = cookie_name(&state);
    let carried = (request.method() == Method::GET)
        .then(|| read_cookie(request.headers(), name))
        .flatten();
    if let Some(reason) = carried.as_deref().and_then(decode) {
        request.extensions_mut().insert(RefusedChange(reason));
    }
    let response = next.run(request).await;
    if carried.is_some() && is_page(&response) {
        // Said once: the page that showed it clears it.
        return with_cookie(response, &site_cookie(&state, name, "", "Strict", 0));
    }
    let Some(site_headers) = from_site else {
        return response;
    };
    let headers = response.headers();
    if !headers.contains_key(SERVER_FN_ERROR) || !headers.contains_key(header::LOCATION) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let refusal = match axum::body::to_bytes(body, MOST_READ).await {
        Ok(bytes) => serde_json::from_slice::<AppError>(&bytes).unwrap_or(AppError::Internal),
        Err(_) => AppError::Internal,
    };
    // Back to the page, without the reason the server functions put in its address, and
    // never off the site.
    let back = parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(without_error_info)
        .filter(|back| origin::on_site(back, public_url, &site_headers))
        .unwrap_or_else(|| "/".to_owned());
    parts.status = StatusCode::SEE_OTHER;
    parts.headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&back).unwrap_or(HeaderValue::from_static("/")),
    );
    parts.headers.remove(SERVER_FN_ERROR);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let reason: String = refusal.to_string().chars().take(MOST_SHOWN).collect();
    let value = URL_SAFE_NO_PAD.encode(reason);
    with_cookie(
        Response::from_parts(parts, Body::empty()),
        &site_cookie(&state, name, &value, "Strict", 60),
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
