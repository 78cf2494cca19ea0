//! The site's own origin, and whether a request or an address belongs to it.
//!
//! The site's origin is `TALLY_PUBLIC_URL` when it is set, else the scheme of the address
//! being checked with the `Host` the request was sent to (behind a proxy, set
//! `TALLY_PUBLIC_URL`). Addresses are compared as parsed URLs (scheme, host and port), never
//! as strings, so `https://billing.example.com.evil.test` is not mistaken for the site.
//!
//! This module is a leaf: it reads headers and URLs only.

use axum::http::{header, HeaderMap};
use url::{Origin, Url};

/// The origin an address belongs to, for `http`/`https` addresses with a host; `None` for
/// anything else (`javascript:`, `data:`, `null`, relative paths, garbage).
fn web_origin(address: &str) -> Option<Origin> {
    let url = Url::parse(address.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    Some(url.origin())
}

/// Whether `address` is an absolute `http(s)` address with a host.
pub fn is_web_address(address: &str) -> bool {
    web_origin(address).is_some()
}

/// The site's origin for an address of `scheme`: the public URL's, else the request's host.
fn site_origin(public_url: Option<&str>, headers: &HeaderMap, scheme: &str) -> Option<Origin> {
    match public_url {
        Some(public) => web_origin(public),
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            // A Host with a path, credentials or odd characters is not a host.
            if host.is_empty() || host.contains(['/', '@', '?', '#', '\\', ' ']) {
                return None;
            }
            web_origin(&format!("{scheme}://{host}"))
        }
    }
}

/// Whether `address` is an `http(s)` address on the site's own origin.
pub fn on_site(address: &str, public_url: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(origin) = web_origin(address) else {
        return false;
    };
    let scheme = match &origin {
        Origin::Tuple(scheme, _, _) => scheme.clone(),
        Origin::Opaque(_) => return false,
    };
    site_origin(public_url, headers, &scheme).is_some_and(|site| site == origin)
}

/// Where a request says it comes from: its `Origin`, or without one its `Referer`.
pub fn sender(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok())
}

/// Whether the request was sent by the site's own pages: its `Origin` (or, without one, its
/// `Referer`) is the site's origin. A request that says neither is not.
pub fn same_origin(public_url: Option<&str>, headers: &HeaderMap) -> bool {
    sender(headers).is_some_and(|from| on_site(from, public_url, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_request_host_is_the_site_without_a_public_url() {
        let h = headers(&[("host", "127.0.0.1:3000")]);
        assert!(on_site("http://127.0.0.1:3000/billing", None, &h));
        assert!(!on_site("http://127.0.0.1:3001/billing", None, &h));
        assert!(!on_site("http://localhost:3000/billing", None, &h));
        let h = headers(&[("host", "billing.example.com")]);
        assert!(on_site("https://billing.example.com/x", None, &h));
        assert!(on_site("https://billing.example.com:443/x", None, &h));
        assert!(!on_site(
            "https://billing.example.com.evil.test/x",
            None,
            &h
        ));
        assert!(!on_site("https://evil.test/?billing.example.com", None, &h));
    }

    #[test]
    fn a_public_url_decides_scheme_host_and_port() {
        let public = Some("https://billing.example.com");
        let h = headers(&[("host", "10.0.0.5:3000")]);
        assert!(on_site("https://billing.example.com/billing", public, &h));
        assert!(!on_site("http://billing.example.com/billing", public, &h));
        assert!(!on_site("https://billing.example.com:8443/", public, &h));
        assert!(!on_site("http://10.0.0.5:3000/", public, &h));
    }

    #[test]
    fn only_web_addresses_can_be_on_the_site() {
        let h = headers(&[("host", "127.0.0.1:3000")]);
        for address in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)//http://127.0.0.1:3000",
            "data:text/html,hi",
            "/billing",
            "//127.0.0.1:3000/billing",
            "null",
            "",
            "http://user@evil.test",
        ] {
            assert!(!on_site(address, None, &h), "{address}");
        }
        let odd = headers(&[("host", "evil.test/x")]);
        assert!(!on_site("http://evil.test/x", None, &odd));
    }

    #[test]
    fn origin_wins_over_referer_and_neither_is_refused() {
        let same = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(same_origin(None, &same));
        let cross = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example"),
            ("referer", "http://127.0.0.1:3000/billing"),
        ]);
        assert!(!same_origin(None, &cross), "a forged Referer does not help");
        let referer = headers(&[
            ("host", "127.0.0.1:3000"),
            ("referer", "http://127.0.0.1:3000/billing?x=1"),
        ]);
        assert!(same_origin(None, &referer));
        let null = headers(&[("host", "127.0.0.1:3000"), ("origin", "null")]);
        assert!(!same_origin(None, &null));
        assert!(!same_origin(None, &headers(&[("host", "127.0.0.1:3000")])));
    }
}
