//! What the current request says about itself: its session cookie and the origin the
//! browser used.

use crate::error::AppError;
use leptos::prelude::*;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "tally_session";

/// Why a form posted on the way to this page was refused, handed to the page's render by the
/// server in a request extension (never in the address, where a link could write it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedChange(pub String);

/// Reads one cookie's value from request headers.
pub fn read_cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether a request asks for a page back (`Accept: text/html`): a form the browser posted
/// itself does, a page's script asking for a server function's answer does not.
pub fn asks_for_a_page(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Whether this request is a form the browser posted itself, not one a page's script sent.
pub fn is_plain_form_post() -> bool {
    use_context::<http::request::Parts>().is_some_and(|parts| asks_for_a_page(&parts.headers))
}

/// The scheme and host the browser used for this request (`http://127.0.0.1:3000`), for
/// links back to Tally from the payment page. Hosts are checked so a forged header cannot
/// build a link elsewhere out of odd characters.
pub fn request_origin() -> Result<String, AppError> {
    let parts = use_context::<http::request::Parts>().ok_or(AppError::Internal)?;
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .ok_or_else(|| AppError::Invalid("The request had no usable Host header.".into()))?;
    let scheme = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    Ok(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            "a=1; tally_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(
            read_cookie(&headers, SESSION_COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(read_cookie(&headers, "missing"), None);
    }
}
