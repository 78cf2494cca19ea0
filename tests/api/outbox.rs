//! The notification outbox delivered to a workspace's endpoint: signed, retried with pauses,
//! once per item even with two senders, and closed for workspaces without an endpoint.

use crate::fixture::{usage, Fixture};
use app::domain::Credits;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tally::outbox::{check_url, deliver_outbox, signature, Round};

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

#[tokio::test]
async fn notifications_reach_the_endpoint_signed_retried_and_once() {
    let f = Fixture::new().await;
    let (receiver, url) = Receiver::start().await;
    let endpoint = f
        .app
        .store
        .set_webhook_endpoint(&f.acme, &check_url(&url).unwrap(), f.app.now())
        .await
        .unwrap();
    let http = tally::outbox::client();

    // A dip below the Low Balance line in Acme; the endpoint is down at first.
    let now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    receiver.status.store(503, Ordering::SeqCst);
    let first = deliver_outbox(&f.app.store, &http, now).await.unwrap();
    assert_eq!((first.delivered, first.failed), (0, 1));
    // Not again before its pause is over.
    assert_eq!(
        deliver_outbox(&f.app.store, &http, now + 1_000)
            .await
            .unwrap(),
        Round::default()
    );
    assert_eq!(receiver.got().len(), 1);

    // Thirty seconds later the endpoint is back: delivered, and never again.
    receiver.status.store(204, Ordering::SeqCst);
    let later = now + 30_000;
    let second = deliver_outbox(&f.app.store, &http, later).await.unwrap();
    assert_eq!(second.delivered, 1);
    assert_eq!(
        deliver_outbox(&f.app.store, &http, later + 3_600_000)
            .await
            .unwrap()
            .delivered,
        0
    );
    let got = receiver.got();
    assert_eq!(got.len(), 2);
    let (headers, body) = &got[1];
    assert_eq!(
        headers["tally-delivery"], got[0].0["tally-delivery"],
        "a retry carries the same delivery id"
    );
    let t = later / 1000;
    assert_eq!(
        headers["tally-signature"],
        signature(&endpoint.secret, t, body).as_str()
    );
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["type"], "credit_balance_low");
    assert_eq!(sent["workspace_id"], f.acme.as_str());

    // Globex has no endpoint: its notifications stay in the app, and the outbox closes them.
    f.app
        .store
        .charge(&f.globex, Credits::new(300).unwrap(), &usage(2), later)
        .await
        .unwrap();
    let skipped = deliver_outbox(&f.app.store, &http, later + 1)
        .await
        .unwrap();
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
    let (a, b) = tokio::join!(
        deliver_outbox(&f.app.store, &http, later + 3),
        deliver_outbox(&f.app.store, &http, later + 3)
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
    let http = tally::outbox::client();
    let mut now = f.app.now();
    f.app
        .store
        .charge(&f.acme, Credits::new(1_000).unwrap(), &usage(1), now)
        .await
        .unwrap();
    for attempt in 1..=tally::outbox::MAX_ATTEMPTS {
        let round = deliver_outbox(&f.app.store, &http, now).await.unwrap();
        assert_eq!(round.failed, 1, "try {attempt}");
        now += tally::outbox::retry_after(attempt);
    }
    assert_eq!(receiver.got().len(), tally::outbox::MAX_ATTEMPTS as usize);
    assert_eq!(
        deliver_outbox(&f.app.store, &http, now + 86_400_000)
            .await
            .unwrap(),
        Round::default()
    );
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
    let f = Fixture::new().await;
    let (receiver, url) = Receiver::start().await;
    let owner = f
        .app
        .sign_in("owner@acme.test", crate::fixture::PASSWORD)
        .await;
    let save = |client: reqwest::Client, form: Vec<(&'static str, String)>| {
        let target = f.app.url("/api/save_webhook");
        async move { client.post(target).form(&form).send().await.unwrap() }
    };
    let refused = save(
        owner.clone(),
        vec![("url", "http://hooks.example.com/x".into())],
    )
    .await;
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
        async move {
            client
                .get(target)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
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
    let http = tally::outbox::client();
    assert_eq!(
        deliver_outbox(&f.app.store, &http, now)
            .await
            .unwrap()
            .delivered,
        1
    );
    let (headers, body) = receiver.got().remove(0);
    assert_eq!(
        headers["tally-signature"],
        signature(&secret, now / 1000, &body).as_str()
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
