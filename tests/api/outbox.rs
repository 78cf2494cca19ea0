//! The notification outbox delivered to a workspace's endpoint: signed, retried with pauses,
//! once per item even with two senders, and closed for workspaces without an endpoint.

use crate::fixture::{usage, Fixture};
use crate::support::get_text;
use app::domain::{Credits, GrantKind};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tally::notifications::outbox::{deliver_outbox, Round};
use tally::outbound::{AddressPolicy, Outbound, OutboundConfig};

/// A receiver that records what it is sent and answers with a status the test sets.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        receiver.status.store(200, Ordering::SeqCst);
        let app = Router::new()
            .route(
                "/hooks/tally",
                post(
                    |State(r): State<Receiver>, headers: HeaderMap, body: String| async move {
                        r.got.lock().unwrap().push((headers, body));
                        StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap()
                    },
                ),
            )
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/tally", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn got(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }
}

/// An outbound client that may reach receivers on this machine.
fn local_outbound() -> Outbound {
    Outbound::new(&OutboundConfig {
        policy: AddressPolicy {
            allow_private: true,
        },
        extra_ca_pem: None,
    })
    .unwrap()
}

/// One delivery round at `at` (the app's clock is moved there).
async fn round(f: &Fixture, outbound: &Outbound, at: i64) -> Round {
    f.app.clock.set(at);
    deliver_outbox(
        &f.app.store,
        outbound,
        &*f.app.clock,
        &app::domain::CreditUnit::Credits,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn notifications_reach_the_endpoint_signed_retried_and_once() {
    let f = Fixture::new().await;
    let (receiver, url) = Receiver::start().await;
    let endpoint = f
        .app
        .store
        .set_webhook_endpoint(&f.acme, &url, f.app.now())
        .await
        .unwrap();
    let http = local_outbound();

    // A dip below the Low Balance line in Acme; the endpoint is down at first.
    let now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    receiver.status.store(503, Ordering::SeqCst);
    let first = round(&f, &http, now).await;
    assert_eq!((first.delivered, first.failed), (0, 1));
    // Not again before its pause is over.
    assert_eq!(round(&f, &http, now + 1_000).await, Round::default());
    assert_eq!(receiver.got().len(), 1);

    // Thirty seconds later the endpoint is back: delivered, and never again.
    receiver.status.store(204, Ordering::SeqCst);
    let later = now + 30_000;
    let second = round(&f, &http, later).await;
    assert_eq!(second.delivered, 1);
    assert_eq!(round(&f, &http, later + 3_600_000).await.delivered, 0);
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    let (headers, body) = &got[1];
    assert_eq!(
        headers["tally-delivery"], got[0].0["tally-delivery"],
        "a retry carries the same delivery id"
    );
    verify_signature(
        &endpoint.secret,
        headers["tally-signature"].to_str().unwrap(),
        body,
        later / 1000,
    );
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["type"], "credit_balance_low");
    assert_eq!(sent["workspace_id"], f.acme.as_str());
    // Its amounts are written in the deployment's unit as it is sent (and signed so).
    let text = sent["body"].as_str().unwrap();
    assert!(
        text.contains(" credits left, at or below the low-balance line of 500."),
        "{text}"
    );

    // Globex has no endpoint: its notifications stay in the app, and the outbox closes them.
    f.app
        .store
        .charge(&f.globex, Credits::new(300).unwrap(), &usage(2), later)
        .await
        .unwrap();
    let skipped = round(&f, &http, later + 1).await;
    assert!(skipped.skipped >= 1, "{skipped:?}");
    assert_eq!(
        receiver.got().len(),
        2,
        "nothing of Globex reaches Acme's endpoint"
    );

    // Two senders at once (two instances): the depleted alert is sent once.
    let left = f.app.store.summary(&f.acme, later).await.unwrap().available;
    f.app
        .store
        .charge(&f.acme, Credits::new(left).unwrap(), &usage(3), later + 2)
        .await
        .unwrap();
    f.app.clock.set(later + 3);
    let (a, b) = tokio::join!(
        deliver_outbox(
            &f.app.store,
            &http,
            &*f.app.clock,
            &app::domain::CreditUnit::Credits
        ),
        deliver_outbox(
            &f.app.store,
            &http,
            &*f.app.clock,
            &app::domain::CreditUnit::Credits
        )
    );
    assert_eq!(a.unwrap().delivered + b.unwrap().delivered, 1);
    let got = receiver.got();
    assert_eq!(got.len(), 3);
    let sent: Value = serde_json::from_str(&got[2].1).unwrap();
    assert_eq!(sent["type"], "credit_balance_depleted");
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_given_up_after_eight_tries() {
    let f = Fixture::new().await;
    let (receiver, url) = Receiver::start().await;
    receiver.status.store(500, Ordering::SeqCst);
    f.app
        .store
        .set_webhook_endpoint(&f.acme, &url, f.app.now())
        .await
        .unwrap();
    let http = local_outbound();
    let mut now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    for attempt in 1..=tally::notifications::outbox::MAX_ATTEMPTS {
        let r = round(&f, &http, now).await;
        assert_eq!(r.failed, 1, "try {attempt}");
        now += tally::notifications::outbox::retry_after(attempt);
    }
    assert_eq!(
        receiver.got().len(),
        tally::notifications::outbox::MAX_ATTEMPTS as usize
    );
    assert_eq!(round(&f, &http, now + 86_400_000).await, Round::default());
    let (outcome, error): (String, String) = sqlx::query_as(
        "SELECT outcome, last_error FROM notification_outbox WHERE workspace_id = $1 AND kind = 'credit_balance_low'",
    )
    .bind(f.acme.as_str())
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "gave_up");
    assert!(error.contains("500"), "{error}");
}

#[tokio::test]
async fn billing_managers_set_the_endpoint_in_the_app_and_members_cannot() {
    // Local receivers allowed, as in development.
    let f = Fixture::with_app(
        crate::support::TestApp::spawn_with(|c| c.outbound.policy.allow_private = true).await,
    )
    .await;
    let (receiver, url) = Receiver::start().await;
    let owner = f
        .app
        .sign_in("owner@acme.test", crate::fixture::PASSWORD)
        .await;
    let save = |client: reqwest::Client, form: Vec<(&'static str, String)>| {
        let target = f.app.url("/api/save_endpoint");
        async move { client.post(target).form(&form).send().await.unwrap() }
    };
    let refused = save(owner.clone(), vec![("url", "ftp://127.0.0.1/x".into())]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("https://"));
    let saved = save(owner.clone(), vec![("url", url.clone())]).await;
    assert_eq!(saved.status(), 200);
    let saved: Value = saved.json().await.unwrap();
    let secret = saved["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tallywh_"));

    let member = f
        .app
        .sign_in("member@acme.test", crate::fixture::PASSWORD)
        .await;
    let forbidden = save(member.clone(), vec![("url", url.clone())]).await;
    assert_eq!(forbidden.status(), 403);
    let page = |client: reqwest::Client| {
        let target = f.app.url("/notifications");
        async move { get_text(&client, target).await }
    };
    assert!(!page(member)
        .await
        .contains("Send notifications to your systems"));

    // A dip is delivered with the secret the owner was shown, and the log says so.
    let now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    let http = local_outbound();
    assert_eq!(round(&f, &http, now).await.delivered, 1);
    let (headers, body) = receiver.got().remove(0);
    verify_signature(
        &secret,
        headers["tally-signature"].to_str().unwrap(),
        &body,
        now / 1000,
    );
    let html = page(owner.clone()).await;
    assert!(html.contains("Send notifications to your systems"));
    assert!(html.contains(&url), "the endpoint is shown");
    assert!(
        html.contains("credit balance low") && html.contains("Delivered"),
        "the log shows the delivery"
    );

    // Stopping: later notifications stay in the app only.
    let stopped = save(owner, vec![("remove", "1".into())]).await;
    assert_eq!(stopped.status(), 200);
    assert_eq!(f.app.store.webhook_endpoint(&f.acme).await.unwrap(), None);
}

#[tokio::test]
async fn endpoints_inside_the_network_are_refused_with_the_reason() {
    let f = Fixture::new().await;
    let owner = f
        .app
        .sign_in("owner@acme.test", crate::fixture::PASSWORD)
        .await;
    for (url, reason) in [
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.1/hook", "private network"),
        ("http://localhost:6379/", "https://"),
        ("https://localhost:6379/", "loopback"),
        ("https://[::1]:8443/x", "loopback"),
        ("https://[::ffff:192.168.0.1]/x", "private network"),
        ("https://100.64.1.1/x", "carrier network"),
        ("https://[fd00::1]/x", "unique-local"),
    ] {
        let response = owner
            .post(f.app.url("/api/save_endpoint"))
            .form(&[("url", url)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{url}");
        let body = response.text().await.unwrap();
        assert!(body.contains(reason), "{url}: {body}");
    }
    assert_eq!(f.app.store.webhook_endpoint(&f.acme).await.unwrap(), None);
}

#[tokio::test]
async fn a_delivery_to_an_address_that_became_internal_is_refused_without_probing_it() {
    let f = Fixture::new().await;
    let (receiver, url) = Receiver::start().await;
    // A name that resolves inside the network at delivery time, as after DNS rebinding: the
    // resolver's check refuses it before any connection.
    let url = url.replace("http://127.0.0.1", "https://localhost");
    f.app
        .store
        .set_webhook_endpoint(&f.acme, &url, f.app.now())
        .await
        .unwrap();
    let strict = Outbound::new(&OutboundConfig::default()).unwrap();
    let now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    let r = round(&f, &strict, now).await;
    assert_eq!(r.failed, 1);
    assert!(receiver.got().is_empty(), "nothing reached the receiver");
    let (error,): (String,) = sqlx::query_as(
        "SELECT last_error FROM notification_outbox WHERE workspace_id = $1 AND kind = 'credit_balance_low'",
    )
    .bind(f.acme.as_str())
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert!(error.contains("does not send to"), "{error}");
    assert!(
        !error.contains("answered") && !error.contains("reached"),
        "{error}"
    );
}

#[tokio::test]
async fn a_slow_endpoint_delays_only_its_own_workspace() {
    let f = Fixture::new().await;
    // Acme's endpoint takes a second to answer; Globex's answers at once.
    let slow = Router::new().route(
        "/hooks/tally",
        post(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hooks/tally", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow).await.unwrap() });
    let (fast, fast_url) = Receiver::start().await;
    let now = f.app.now();
    f.app
        .store
        .set_webhook_endpoint(&f.acme, &slow_url, now)
        .await
        .unwrap();
    f.app
        .store
        .set_webhook_endpoint(&f.globex, &fast_url, now)
        .await
        .unwrap();
    for i in 0..6 {
        f.app
            .store
            .request_credits(&f.acme, &format!("member{i}@acme.test"), now)
            .await
            .unwrap();
    }
    f.app
        .store
        .charge(&f.globex, Credits::new(300).unwrap(), &usage(2), now)
        .await
        .unwrap();
    let out = local_outbound();
    let started = std::time::Instant::now();
    let delivery = tokio::spawn({
        let (store, clock) = (f.app.store.clone(), f.app.clock.clone());
        async move {
            deliver_outbox(&store, &out, &*clock, &app::domain::CreditUnit::Credits)
                .await
                .unwrap()
        }
    });
    // Globex's delivery lands while Acme's endpoint is still thinking.
    crate::support::wait_until("Globex's delivery", || async { !fast.got().is_empty() }).await;
    assert!(
        started.elapsed() < std::time::Duration::from_millis(900),
        "without waiting for Acme: {:?}",
        started.elapsed()
    );
    let r = delivery.await.unwrap();
    assert_eq!(r.failed, 0);
    assert!(r.delivered >= 6 + fast.got().len(), "{r:?}");
    // Two at a time to Acme's endpoint: six take three seconds, not six.
    assert!(
        started.elapsed() < std::time::Duration::from_millis(5_500),
        "{:?}",
        started.elapsed()
    );
}

/// A certificate authority of the test's own, and certificates it signs.
mod certificates {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    pub struct Issued {
        pub cert: X509,
        pub key: PKey<Private>,
    }

    fn build(cn: &str, issuer: Option<&Issued>, authority: bool) -> Issued {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        let serial = BigNum::from_u32(rand_serial())
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        cert.set_serial_number(&serial).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
            .unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        if authority {
            cert.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
        } else {
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .build(&cert.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .unwrap();
            cert.append_extension(san).unwrap();
        }
        cert.sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())
            .unwrap();
        Issued {
            cert: cert.build(),
            key,
        }
    }

    fn rand_serial() -> u32 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    }

    pub fn authority() -> Issued {
        build("Tally test CA", None, true)
    }

    /// A certificate for `localhost`, signed by `ca` (or by itself without one).
    pub fn localhost(ca: Option<&Issued>) -> Issued {
        build("localhost", ca, false)
    }
}

/// An https receiver on this machine with the certificate given: records each request.
async fn tls_receiver(identity: &certificates::Issued) -> (Arc<Mutex<Vec<String>>>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let identity = tokio_native_tls::native_tls::Identity::from_pkcs8(
        &identity.cert.to_pem().unwrap(),
        &identity.key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        tokio_native_tls::native_tls::TlsAcceptor::new(identity).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/hooks/tally",
        listener.local_addr().unwrap().port()
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).to_string());
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (got, url)
}

#[tokio::test]
async fn deliveries_go_over_verified_tls() {
    let f = Fixture::with_app(
        crate::support::TestApp::spawn_with(|c| c.outbound.policy.allow_private = true).await,
    )
    .await;
    let ca = certificates::authority();
    let (got, url) = tls_receiver(&certificates::localhost(Some(&ca))).await;
    let endpoint = f
        .app
        .store
        .set_webhook_endpoint(&f.acme, &url, f.app.now())
        .await
        .unwrap();
    let trusting = Outbound::new(&OutboundConfig {
        policy: AddressPolicy {
            allow_private: true,
        },
        extra_ca_pem: Some(ca.cert.to_pem().unwrap()),
    })
    .unwrap();
    let now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    let r = round(&f, &trusting, now).await;
    assert_eq!((r.delivered, r.failed), (1, 0));
    let request = got.lock().unwrap().remove(0);
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    let sent = head
        .lines()
        .find_map(|l| l.strip_prefix("tally-signature: "))
        .unwrap();
    verify_signature(&endpoint.secret, sent, body, now / 1000);
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_fails_with_a_clear_error() {
    let f = Fixture::with_app(
        crate::support::TestApp::spawn_with(|c| c.outbound.policy.allow_private = true).await,
    )
    .await;
    // Self-signed: no authority Tally trusts vouches for it.
    let (got, url) = tls_receiver(&certificates::localhost(None)).await;
    f.app
        .store
        .set_webhook_endpoint(&f.acme, &url, f.app.now())
        .await
        .unwrap();
    let now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    let r = round(&f, &local_outbound(), now).await;
    assert_eq!((r.delivered, r.failed), (0, 1));
    assert!(got.lock().unwrap().is_empty(), "nothing was sent");
    let owner = f
        .app
        .sign_in("owner@acme.test", crate::fixture::PASSWORD)
        .await;
    let html = get_text(&owner, f.app.url("/notifications")).await;
    assert!(
        html.contains("TLS certificate could not be verified"),
        "the page says why"
    );
}

#[tokio::test]
async fn notifications_people_cause_are_limited_per_workspace_and_hour() {
    let f = Fixture::new().await;
    let now = f.app.now();
    let limit = tally::notifications::PEOPLE_PER_HOUR;
    let mut sent = 0;
    for i in 0..limit + 5 {
        if f.app
            .store
            .request_credits(&f.acme, &format!("member{i}@acme.test"), now)
            .await
            .unwrap()
        {
            sent += 1;
        }
    }
    assert_eq!(sent, limit, "the rest were dropped");
    let queued = |ws: &'static str| {
        let pool = f.app.store.pool().clone();
        let ws = if ws == "acme" {
            f.acme.to_string()
        } else {
            f.globex.to_string()
        };
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM notification_outbox WHERE workspace_id = $1 AND kind = 'credit_request'",
            )
            .bind(ws)
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };
    assert_eq!(queued("acme").await, limit);
    // Other workspaces are not held back, and balance alerts are never dropped.
    assert!(f
        .app
        .store
        .request_credits(&f.globex, "member@globex.test", now)
        .await
        .unwrap());
    assert_eq!(queued("globex").await, 1);
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    let (low,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM notification_outbox WHERE workspace_id = $1 AND kind = 'credit_balance_low'",
    )
    .bind(f.acme.as_str())
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert_eq!(low, 1);
    // An hour later people are heard again.
    assert!(f
        .app
        .store
        .request_credits(&f.acme, "late@acme.test", now + 3_600_001)
        .await
        .unwrap());
}

/// Checks a `Tally-Signature` header as a customer's receiver would: HMAC-SHA256 of
/// `{t}.{body}` under the endpoint's secret, computed here rather than by Tally's signer.
fn verify_signature(secret: &str, header: &str, body: &str, expected_t: i64) {
    use hmac::{Hmac, Mac};
    let (t, v1) = header.split_once(',').expect("t=…,v1=…");
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    assert_eq!(t, expected_t, "the signature's time is the sending time");
    let hex = v1.strip_prefix("v1=").unwrap();
    let mac_bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&mac_bytes)
        .expect("the signature verifies with the endpoint's secret");
}

/// Two instances (each its own pool) with three senders each, on PostgreSQL, where their
/// transactions truly overlap: every queued item reaches the endpoint exactly once, because
/// only the sender whose lease lands sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_instances_send_each_item_exactly_once() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        return;
    };
    let (receiver, url) = Receiver::start().await;
    let clock = tally::clock::ManualClock::new(1_790_000_000_000);
    let now = tally::clock::Clock::now_ms(&*clock);
    for i in 0..16 {
        let ws = db
            .store
            .create_workspace(&format!("Workspace {i}"), now)
            .await
            .unwrap();
        db.store.set_webhook_endpoint(&ws, &url, now).await.unwrap();
        db.store
            .grant(&ws, &crate::fixture::grant(GrantKind::Free, 100, None), now)
            .await
            .unwrap();
        db.store
            .charge(&ws, Credits::new(100).unwrap(), &usage(i), now)
            .await
            .unwrap();
    }
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notification_outbox")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(queued >= 16, "every workspace has its alerts queued");
    let other = tally::db::Store::connect(&db.url, &tally::db::StoreOptions::default())
        .await
        .unwrap();
    let http = Arc::new(local_outbound());
    let mut senders = Vec::new();
    for store in [db.store.clone(), other.clone()] {
        for _ in 0..3 {
            let (store, http, clock) = (store.clone(), http.clone(), clock.clone());
            senders.push(tokio::spawn(async move {
                deliver_outbox(&store, &http, &*clock, &app::domain::CreditUnit::Credits)
                    .await
                    .unwrap()
            }));
        }
    }
    let mut delivered = 0;
    for sender in senders {
        delivered += sender.await.unwrap().delivered;
    }
    assert_eq!(
        delivered as i64, queued,
        "each item sent by exactly one sender"
    );
    let got = receiver.got();
    let mut ids: Vec<String> = got
        .iter()
        .map(|(headers, _)| headers["tally-delivery"].to_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        got.len() as i64,
        queued,
        "no item reached the endpoint twice"
    );
    assert_eq!(ids.len() as i64, queued);
    other.close().await;
    db.finish().await;
}

#[tokio::test]
async fn an_item_whose_sender_died_is_sent_after_its_lease_with_the_same_delivery_id() {
    let f = Fixture::new().await;
    let (receiver, url) = Receiver::start().await;
    let now = f.app.now();
    f.app
        .store
        .set_webhook_endpoint(&f.acme, &url, now)
        .await
        .unwrap();
    let left = f.app.store.summary(&f.acme, now).await.unwrap().available;
    f.app
        .store
        .charge(&f.acme, Credits::new(left).unwrap(), &usage(1), now)
        .await
        .unwrap();
    let (id, due): (String, i64) = sqlx::query_as(
        "SELECT id, next_attempt_at FROM notification_outbox WHERE workspace_id = $1 ORDER BY created_at, id LIMIT 1",
    )
    .bind(f.acme.as_str())
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    // A sender took the item's one-minute lease, then died before sending it.
    sqlx::query("UPDATE notification_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3")
        .bind(now + 60_000)
        .bind(&id)
        .bind(due)
        .execute(f.app.store.pool())
        .await
        .unwrap();
    let http = local_outbound();
    round(&f, &http, now + 1_000).await;
    assert!(
        receiver
            .got()
            .iter()
            .all(|(h, _)| h["tally-delivery"] != id.as_str()),
        "nobody sends it while the lease lasts"
    );
    // After the lease, another sender sends it, under the same delivery id.
    round(&f, &http, now + 61_000).await;
    let sent: Vec<_> = receiver
        .got()
        .into_iter()
        .filter(|(h, _)| h["tally-delivery"] == id.as_str())
        .collect();
    assert_eq!(sent.len(), 1);
    let (delivered,): (Option<i64>,) =
        sqlx::query_as("SELECT delivered_at FROM notification_outbox WHERE id = $1")
            .bind(&id)
            .fetch_one(f.app.store.pool())
            .await
            .unwrap();
    assert!(delivered.is_some());
}
