//! Contract tests of the Stripe gateway against an independent fake Stripe: `localstripe`
//! (PyPI, 1.15.10), started on a random loopback port for this run.
//!
//! localstripe differs from Stripe in a few documented ways, which a small proxy between the
//! gateway and localstripe smooths over, so the gateway's own code stays as it is for Stripe:
//! - it serves a customer's cards only at `GET /v1/payment_methods?customer=…&type=card`,
//!   not at `GET /v1/customers/{id}/payment_methods`: the proxy rewrites the path;
//! - it refuses parameters it does not know (`description` on a payment intent): the proxy
//!   drops them;
//! - its objects lack fields Stripe always sends and async-stripe requires (payment intent
//!   `amount_capturable`, `amount_received`, `confirmation_method`, an error's `type`; charge
//!   `amount_captured`, `paid`, `disputed`, …; event `pending_webhooks`): the proxy fills them
//!   with the values Stripe would send;
//! - its webhooks carry those gaps too, so the proxy checks localstripe's signature, fills the
//!   event, signs it again with the same secret and passes it to Tally's `/webhooks/stripe`.
//!
//! Without localstripe the tests are skipped with a message, except under `CI=true`, where
//! they fail.

mod support;

use app::domain::{Credits, PaymentObservation, PurchaseOrigin, PurchaseStatus, WorkspaceId};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use support::TestApp;
use tally::payments::{NewPurchase, OffSessionCharge, PurchaseRecord};

const WEBHOOK_SECRET: &str = "whsec_contract_tests";

/// Starts Python code that serves localstripe on `127.0.0.1:port` only, with a fresh store
/// and without its shared pickle file.
const LAUNCHER: &str = r#"
import sys
from aiohttp import web
from localstripe import server
from localstripe.resources import store
store.dump_to_disk = lambda: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"#;

struct LocalStripe {
    base: String,
    _child: tokio::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn localstripe() -> Option<LocalStripe> {
    let port = free_port();
    let spawned = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(LAUNCHER)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let unavailable = |why: String| {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("localstripe is required under CI=true: {why}");
        }
        eprintln!("SKIPPED: localstripe is not available ({why}); install it with `pip install localstripe==1.15.10`");
        None
    };
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => return unavailable(format!("python3 did not start: {err}")),
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(Some(status)) = child.try_wait() {
            return unavailable(format!("it exited with {status}"));
        }
        if client
            .get(format!("{base}/v1/balance"))
            .basic_auth("sk_test_x", Some(""))
            .send()
            .await
            .is_ok()
        {
            return Some(LocalStripe {
                base,
                _child: child,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unavailable("it did not answer within 10 s".into())
}

/// Where the proxy forwards to.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    /// Tally's webhook, once the app is up.
    tally: std::sync::Arc<tokio::sync::OnceCell<String>>,
    http: reqwest::Client,
}

/// Fills what localstripe leaves out, with the values Stripe sends, everywhere in a body.
fn fill(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(fill),
        Value::Object(map) => {
            for child in map.values_mut() {
                fill(child);
            }
            let kind = map
                .get("object")
                .and_then(|o| o.as_str())
                .unwrap_or("")
                .to_owned();
            let amount = map.get("amount").cloned().unwrap_or(json!(0));
            let succeeded = map.get("status") == Some(&json!("succeeded"));
            if kind == "payment_intent" {
                if let Some(Value::Object(error)) = map.get_mut("last_payment_error") {
                    error.entry("type").or_insert(json!("card_error"));
                }
            }
            let mut default = |key: &str, v: Value| {
                if map.get(key).is_none_or(Value::is_null) {
                    map.insert(key.to_owned(), v);
                }
            };
            match kind.as_str() {
                "payment_intent" => {
                    default("amount_capturable", json!(0));
                    default("confirmation_method", json!("automatic"));
                    default("payment_method_types", json!(["card"]));
                    default("amount_received", if succeeded { amount } else { json!(0) });
                }
                "charge" => {
                    default("amount_captured", if succeeded { amount } else { json!(0) });
                    default("amount_refunded", json!(0));
                    default("billing_details", json!({}));
                    default("disputed", json!(false));
                    default("paid", json!(succeeded));
                    default("refunded", json!(false));
                    default("metadata", json!({}));
                    default("captured", json!(succeeded));
                }
                "payment_method" => default("billing_details", json!({})),
                "event" => default("pending_webhooks", json!(0)),
                _ => {}
            }
        }
        _ => {}
    }
}

/// Forwards a Stripe API call to localstripe, adjusted as the module's notes say.
async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut path = format!("/v1/{path}");
    let mut query = query.unwrap_or_default();
    if let Some(customer) = path
        .strip_prefix("/v1/customers/")
        .and_then(|rest| rest.strip_suffix("/payment_methods"))
        .map(str::to_owned)
    {
        path = "/v1/payment_methods".into();
        query = format!("customer={customer}&{query}");
    }
    let body: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let body: Vec<(String, String)> = body
        .into_iter()
        .filter(|(k, _)| !(path == "/v1/payment_intents" && k == "description"))
        .collect();
    let mut request = proxy
        .http
        .request(method, format!("{}{path}?{query}", proxy.upstream))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&body).unwrap());
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth);
    }
    let answer = request.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut value: Value = answer.json().await.unwrap_or(json!({}));
    fill(&mut value);
    (status, axum::Json(value)).into_response()
}

/// Takes localstripe's webhook, checks its signature, fills it, signs it again and hands it
/// to Tally.
async fn relay(State(proxy): State<Proxy>, headers: HeaderMap, body: String) -> StatusCode {
    let signature = headers
        .get("stripe-signature")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    match stripe_webhook::Webhook::construct_event_with_timestamp(
        &body,
        signature,
        WEBHOOK_SECRET,
        now,
    ) {
        // A parse error comes only after the signature and time checked out.
        Ok(_) | Err(stripe_webhook::WebhookError::BadParse(_)) => {}
        Err(_) => return StatusCode::BAD_REQUEST,
    }
    let mut event: Value = serde_json::from_str(&body).unwrap();
    fill(&mut event);
    let payload = event.to_string();
    let signature =
        stripe_webhook::Webhook::generate_test_header(&payload, WEBHOOK_SECRET, Some(now));
    let Some(tally) = proxy.tally.get() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let answer = proxy
        .http
        .post(tally)
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    StatusCode::from_u16(answer.status().as_u16()).unwrap()
}

struct Contract {
    app: TestApp,
    stripe: LocalStripe,
    workspace: WorkspaceId,
}

async fn contract() -> Option<Contract> {
    let stripe = localstripe().await?;
    let proxy = Proxy {
        upstream: stripe.base.clone(),
        tally: Default::default(),
        http: reqwest::Client::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_base = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/v1/{*path}", any(forward))
        .route("/hook", post(relay))
        .with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let app = TestApp::spawn_with(|config| {
        config.stripe_secret_key = Some("sk_test_contract".into());
        config.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
        config.stripe_api_base = Some(proxy_base.clone());
    })
    .await;
    let _ = proxy.tally.set(app.url("/webhooks/stripe"));
    let registered = reqwest::Client::new()
        .post(format!("{}/_config/webhooks/tally", stripe.base))
        .form(&[
            ("url", format!("{proxy_base}/hook")),
            ("secret", WEBHOOK_SECRET.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success());
    let workspace = app
        .store
        .create_workspace("Contract Co", app.now())
        .await
        .unwrap();
    Some(Contract {
        app,
        stripe,
        workspace,
    })
}

/// Saves a test card for a customer, as the browser does at a checkout.
async fn save_card(stripe: &LocalStripe, customer: &str, number: &str) -> String {
    let client = reqwest::Client::new();
    let method: Value = client
        .post(format!("{}/v1/payment_methods", stripe.base))
        .basic_auth("sk_test_contract", Some(""))
        .form(&[
            ("type", "card"),
            ("card[number]", number),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2034"),
            ("card[cvc]", "123"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = method["id"]
        .as_str()
        .expect("a payment method id")
        .to_owned();
    let attached = client
        .post(format!("{}/v1/payment_methods/{id}/attach", stripe.base))
        .basic_auth("sk_test_contract", Some(""))
        .form(&[("customer", customer)])
        .send()
        .await
        .unwrap();
    assert!(attached.status().is_success(), "attaching {number}");
    id
}

async fn purchase(c: &Contract, credits: i64, amount_minor: i64) -> PurchaseRecord {
    c.app
        .store
        .create_purchase(
            &NewPurchase {
                workspace_id: c.workspace.clone(),
                origin: PurchaseOrigin::AutoReload,
                pack_id: None,
                description: format!("Auto-reload: {credits} AI credits"),
                credits: Credits::new(credits).unwrap(),
                bonus_credits: Credits::ZERO,
                amount_minor,
                currency: "usd".into(),
                created_by: "auto-reload".into(),
            },
            c.app.now(),
        )
        .await
        .unwrap()
}

fn charge(customer: &str, method: &str, purchase: &PurchaseRecord) -> OffSessionCharge {
    OffSessionCharge {
        customer_id: customer.into(),
        payment_method_id: method.into(),
        purchase_id: purchase.id.clone(),
        workspace_id: purchase.workspace_id.to_string(),
        description: purchase.description.clone(),
        amount_minor: purchase.amount_minor,
        currency: purchase.currency.clone(),
        idempotency_key: format!("tally-charge-{}", purchase.id),
    }
}

async fn wait_for(c: &Contract, id: &str, status: PurchaseStatus) -> PurchaseRecord {
    // localstripe sends each webhook about a second late.
    for _ in 0..100 {
        let found = c.app.store.purchase_by_id(id).await.unwrap().unwrap();
        if found.status == status {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("purchase {id} never became {status:?}");
}

#[tokio::test]
async fn the_gateway_keeps_its_contract_with_a_fake_stripe() {
    let Some(c) = contract().await else { return };
    let gateway = c.app.payments.gateway();
    assert!(gateway.test_mode());

    // A customer per workspace.
    let customer = c
        .app
        .payments
        .customer(&c.workspace, "Contract Co")
        .await
        .unwrap();
    assert!(customer.starts_with("cus_"), "{customer}");
    let again = c
        .app
        .payments
        .customer(&c.workspace, "Contract Co")
        .await
        .unwrap();
    assert_eq!(again, customer, "created once, then reused");

    // Saved cards, read back through the gateway.
    let good = save_card(&c.stripe, &customer, "4242424242424242").await;
    let failing = save_card(&c.stripe, &customer, "4000000000000341").await;
    let cards = gateway.cards(&customer).await.unwrap();
    let mut last4: Vec<&str> = cards.iter().map(|card| card.last4.as_str()).collect();
    last4.sort();
    assert_eq!(last4, vec!["0341", "4242"]);
    assert_eq!(cards.iter().filter(|card| card.is_default).count(), 1);
    assert!(cards
        .iter()
        .all(|card| card.exp_year == 2034 && card.brand == "visa"));

    // A successful off-session charge, and its signed webhook crediting the purchase once.
    let before = c
        .app
        .store
        .summary(&c.workspace, c.app.now())
        .await
        .unwrap()
        .available;
    let paid = purchase(&c, 10_000, 1_200).await;
    let snapshot = gateway
        .charge_off_session(&charge(&customer, &good, &paid))
        .await
        .unwrap();
    assert_eq!(snapshot.observation, PaymentObservation::Paid);
    assert_eq!(snapshot.amount_minor, 1_200);
    assert_eq!(snapshot.purchase_id.as_deref(), Some(paid.id.as_str()));
    let intent = snapshot
        .payment_intent_id
        .clone()
        .expect("a payment intent");
    let reread = gateway.payment(&intent).await.unwrap();
    assert_eq!(reread.observation, PaymentObservation::Paid);
    let credited = wait_for(&c, &paid.id, PurchaseStatus::Succeeded).await;
    assert_eq!(credited.payment_intent_id.as_deref(), Some(intent.as_str()));
    let after = c
        .app
        .store
        .summary(&c.workspace, c.app.now())
        .await
        .unwrap()
        .available;
    assert_eq!(after, before + 10_000);

    // A card that attaches but cannot be charged: declined off-session, nothing credited.
    let declined = purchase(&c, 10_000, 1_200).await;
    let snapshot = gateway
        .charge_off_session(&charge(&customer, &failing, &declined))
        .await
        .unwrap();
    match &snapshot.observation {
        PaymentObservation::Failed(reason) => assert!(reason.contains("declined"), "{reason}"),
        other => panic!("expected a decline, got {other:?}"),
    }
    let failed = wait_for(&c, &declined.id, PurchaseStatus::Failed).await;
    assert!(failed
        .failure_reason
        .unwrap_or_default()
        .contains("declined"));
    let last = c
        .app
        .store
        .summary(&c.workspace, c.app.now())
        .await
        .unwrap()
        .available;
    assert_eq!(last, after, "a decline adds nothing");
    assert!(c.app.store.audit(&c.workspace).await.unwrap().balanced());
}
