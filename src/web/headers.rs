//! Protective headers on every response.
//!
//! Pages rendered by the app carry their own Content-Security-Policy with a nonce (see the
//! app's shell); every other response gets a policy that allows nothing to run. All get
//! `frame-ancestors 'none'` and `X-Frame-Options: DENY` (no framing, so no clickjacking of
//! "Buy"), `X-Content-Type-Options: nosniff`, a `Referrer-Policy` that keeps addresses on the
//! site, and behind an https public address, HSTS.
//!
//! Caching: the bundle's files under hashed names (`/pkg/tally.<hash>.wasm`, see
//! `site_files`) are kept for a year and never asked for again (`immutable`); the site's other
//! files (`/vendor/…`, the icon, an unhashed bundle) may be kept but are checked again on use
//! (`no-cache`, answered `304 Not Modified` when unchanged); everything else — pages with
//! balances, API answers — is never stored (`no-store`). Answers are compressed (brotli or
//! gzip) for clients that ask, except the wasm bundle, which is sent as compressed at build
//! time (`.ci/precompress.mjs`) or as it is: compressing megabytes per request costs more than
//! it saves.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The policy of responses that are not the app's pages (JSON, forms' answers, files).
pub const LOCKED_DOWN: &str =
    "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The caching of a file whose name changes with its contents: kept for a year, never
/// revalidated.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether a path names one of the site's own files rather than a page or an API answer.
fn is_site_file(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/vendor/")
        || path == "/favicon.svg"
        || path == "/api-docs.js"
}

/// The response compression: brotli or gzip at a middling level (fast enough per request),
/// never for the wasm bundle (see the module's note) or what is compressed already.
pub fn compression() -> tower_http::compression::CompressionLayer<
    tower_http::compression::predicate::And<
        tower_http::compression::DefaultPredicate,
        tower_http::compression::predicate::NotForContentType,
    >,
> {
    use tower_http::compression::predicate::{NotForContentType, Predicate};
    use tower_http::compression::{CompressionLayer, CompressionLevel, DefaultPredicate};
    CompressionLayer::new()
        .quality(CompressionLevel::Precise(4))
        .compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new("application/wasm")),
        )
}

pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let site_file = is_site_file(path);
    let immutable = state.site_files.is_immutable(path);
    let mut response = next.run(request).await;
    // Only a file that was found is kept for good: a 404 for a hashed name (a site replaced
    // under a running server) must not stay in browsers for a year.
    let immutable = immutable && response.status().is_success();
    let headers = response.headers_mut();
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static(if immutable {
                IMMUTABLE
            } else if site_file {
                "no-cache"
            } else {
                "no-store"
            }),
        );
    }
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(LOCKED_DOWN),
        );
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let https = state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    if https {
        headers.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
