//! The hosted checkout and receipt pages of the test-mode emulator: plain server-rendered
//! HTML forms, usable with a keyboard and a screen reader, that work without JavaScript.

use crate::payments::cards::{spaced, TEST_CARDS};
use app::domain::{Currency, Money};
use serde_json::Value;

/// What the buyer typed, shown again after an error (never the security code).
pub struct Echo {
    pub card_number: String,
    pub expiry: String,
    pub name: String,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    app::format::push_escaped(&mut out, text);
    out
}

fn money(amount: &Value, currency: &Value) -> String {
    let currency =
        Currency::parse(currency.as_str().unwrap_or("usd")).unwrap_or_else(|_| Currency::usd());
    let code = currency.as_str().to_ascii_uppercase();
    match Money::new(amount.as_i64().unwrap_or(0), currency) {
        Ok(m) => format!("{m} {code}"),
        Err(_) => "—".into(),
    }
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1f36;background:#f6f8fa}
.banner{background:#ffb020;color:#3d2a00;text-align:center;padding:.4rem;font-weight:600;font-size:.875rem}
main{max-width:56rem;margin:0 auto;padding:1.5rem 1rem;display:grid;gap:2rem;grid-template-columns:1fr}
@media(min-width:48rem){main{grid-template-columns:1fr 1fr}}
h1{font-size:1.1rem;margin:0 0 .25rem;color:#5a6275;font-weight:600}.amount{font-size:2rem;font-weight:700;margin:.25rem 0}
.panel{background:#fff;border:1px solid #d8dde6;border-radius:.5rem;padding:1.25rem}
label{display:block;font-weight:600;font-size:.9rem;margin:.75rem 0 .25rem}
input{width:100%;padding:.6rem .7rem;font:inherit;border:1px solid #b8c0cc;border-radius:.375rem}
input:focus{outline:3px solid #635bff55;border-color:#635bff}
.row{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}
button{margin-top:1.25rem;width:100%;padding:.75rem;font:inherit;font-weight:700;color:#fff;background:#4f46e5;border:0;border-radius:.375rem;cursor:pointer}
button:focus-visible{outline:3px solid #1a1f36;outline-offset:2px}
.error{background:#fdecec;border:1px solid #e5484d;color:#8c1d22;padding:.6rem .75rem;border-radius:.375rem;margin:0 0 .5rem}
.muted{color:#5a6275;font-size:.875rem}table{border-collapse:collapse;width:100%;font-size:.875rem}
td,th{text-align:left;padding:.3rem .4rem;border-bottom:1px solid #eef1f5}code{font-size:.85rem}
a{color:#4338ca}
"#;

/// The pages' Content-Security-Policy: their inline stylesheet by its hash, forms to this
/// site, and no scripts at all.
pub fn content_security_policy() -> axum::http::HeaderValue {
    static POLICY: std::sync::OnceLock<axum::http::HeaderValue> = std::sync::OnceLock::new();
    POLICY
        .get_or_init(|| {
            use base64::Engine as _;
            use sha2::Digest as _;
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(STYLE.as_bytes()));
            let policy = format!(
                "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            );
            axum::http::HeaderValue::from_str(&policy).expect("the policy is a header value")
        })
        .clone()
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Test mode checkout</title><style>{STYLE}</style></head><body>\
         <div class=\"banner\" role=\"note\">Test mode: no real money moves. Use a test card from the list.</div>{body}</body></html>",
        escape(title)
    )
}

/// The hosted payment page of an open checkout session selling `product`. `cancel` is its
/// cancel address, already checked to be on the site (without one the page links to Billing).
pub fn checkout(
    session: &Value,
    product: &str,
    cancel: Option<&str>,
    error: Option<&str>,
    echo: Option<Echo>,
) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let price = money(&session["amount_total"], &session["currency"]);
    let cancel = cancel.unwrap_or("/billing");
    let summary = format!(
        "<section class=\"panel\" aria-labelledby=\"what\"><h1 id=\"what\">Pay Tally</h1>\
         <p class=\"amount\" data-testid=\"checkout-amount\">{}</p><p>{}</p>\
         <p class=\"muted\">One-time payment. Your card is saved for future purchases and Auto-reload if you turn it on.</p>\
         <p><a href=\"{}\">← Back to Tally without paying</a></p></section>",
        escape(&price),
        escape(product),
        escape(cancel)
    );
    let echo = echo.unwrap_or(Echo {
        card_number: String::new(),
        expiry: String::new(),
        name: String::new(),
    });
    let error_html = error
        .map(|e| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"pay-error\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let described = if error.is_some() {
        " aria-describedby=\"pay-error\""
    } else {
        ""
    };
    let cards: String = TEST_CARDS
        .iter()
        .map(|c| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                spaced(c.number),
                escape(c.hint)
            )
        })
        .collect();
    let form = format!(
        "<section class=\"panel\" aria-labelledby=\"pay\"><h1 id=\"pay\">Card details</h1>{error_html}\
         <form method=\"post\" action=\"/_stripe/checkout/{id}\"{described}>\
         <label for=\"card_number\">Card number</label>\
         <input id=\"card_number\" name=\"card_number\" inputmode=\"numeric\" autocomplete=\"cc-number\" placeholder=\"4242 4242 4242 4242\" required value=\"{}\">\
         <div class=\"row\"><div><label for=\"expiry\">Expiry (MM/YY)</label>\
         <input id=\"expiry\" name=\"expiry\" autocomplete=\"cc-exp\" placeholder=\"12/34\" required value=\"{}\"></div>\
         <div><label for=\"cvc\">Security code</label>\
         <input id=\"cvc\" name=\"cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" placeholder=\"123\" required></div></div>\
         <label for=\"name\">Name on card</label>\
         <input id=\"name\" name=\"name\" autocomplete=\"cc-name\" value=\"{}\">\
         <button type=\"submit\">Pay {}</button></form>\
         <h2 class=\"muted\">Test cards (any future expiry, any 3 digits)</h2><table><tbody>{cards}</tbody></table></section>",
        escape(&echo.card_number),
        escape(&echo.expiry),
        escape(&echo.name),
        escape(&price),
    );
    document(
        product,
        &format!("<main id=\"main\">{summary}{form}</main>"),
    )
}

/// A receipt for a charge.
pub fn receipt(charge: &Value) -> String {
    let card = &charge["payment_method_details"]["card"];
    let body = format!(
        "<main id=\"main\"><section class=\"panel\"><h1>Receipt from Tally</h1>\
         <p class=\"amount\">{}</p><table><tbody>\
         <tr><th scope=\"row\">Receipt</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Item</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Paid with</th><td>{} •••• {}</td></tr>\
         <tr><th scope=\"row\">Date</th><td>{} UTC</td></tr></tbody></table></section></main>",
        escape(&money(&charge["amount"], &charge["currency"])),
        escape(charge["id"].as_str().unwrap_or_default()),
        escape(charge["description"].as_str().unwrap_or("AI credits")),
        escape(&app::purchases::brand_label(
            card["brand"].as_str().unwrap_or("card")
        )),
        escape(card["last4"].as_str().unwrap_or("")),
        chrono::DateTime::from_timestamp(charge["created"].as_i64().unwrap_or(0), 0)
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
    );
    document("Receipt", &body)
}

/// The page for a checkout that can no longer be paid: it shows nothing of the checkout.
pub fn closed(session: &Value) -> String {
    closed_because(match session["status"].as_str() {
        Some("complete") => "This checkout is already paid. You can close this page.",
        _ => "This checkout has closed. Start a new purchase from Tally's Billing page.",
    })
}

/// A checkout page that says only why it cannot be paid.
pub fn closed_because(reason: &str) -> String {
    document(
        "Checkout closed",
        &format!(
            "<main id=\"main\"><section class=\"panel\"><h1>Checkout closed</h1><p role=\"status\">{}</p>\
             <p><a href=\"/billing\">Go to Billing</a></p></section></main>",
            escape(reason)
        ),
    )
}

/// The page for an unknown checkout or receipt.
pub fn missing() -> String {
    document(
        "Not found",
        "<main id=\"main\"><section class=\"panel\"><h1>Not found</h1><p>This checkout or receipt does not exist. Start a new purchase from Tally's Billing page.</p></section></main>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_checkout_page_escapes_what_it_shows() {
        let session = json!({"id": "cs_test_1", "status": "open", "amount_total": 2000, "currency": "usd",
            "cancel_url": "http://x/?a=1&b=2"});
        let html = checkout(
            &session,
            "<b>Pack</b>",
            Some("http://x/?a=1&b=2"),
            Some("Bad \"card\""),
            None,
        );
        assert!(html.contains("&lt;b&gt;Pack&lt;/b&gt;"));
        assert!(html.contains("a=1&amp;b=2"));
        assert!(html.contains("Bad &quot;card&quot;"));
        assert!(html.contains("$20.00 USD"));
        assert!(html.contains("Test mode"));
    }
}
