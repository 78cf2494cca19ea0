use crate::support::TestApp;
use app::domain::{Credits, GrantKind, Role, WorkspaceId};
use tally::accounts::{password, Email};
use tally::ledger::EntryMeta;

pub const PASSWORD: &str = "correct horse battery";

/// The operator token of [`Fixture::with_operator`].
pub const OPERATOR: &str = "operator-token-for-the-tests-0123456789";

/// Two workspaces: Acme (owner, admin, member, guest) and Globex (its own member). The Acme
/// owner also owns Globex. Each has an API key and some history.
pub struct Fixture {
    pub app: TestApp,
    pub acme: WorkspaceId,
    pub globex: WorkspaceId,
    pub acme_key: String,
    pub globex_key: String,
}

pub use crate::support::grant;

pub fn usage(i: usize) -> EntryMeta {
    EntryMeta {
        actor: "member@acme.test".into(),
        description: format!("Action {i}"),
        action: Some("studio.generate".into()),
        model: Some("atlas-text-large".into()),
        project: Some("Launch".into()),
        session: Some(format!("ses_{i}")),
        payment_ref: None,
        member_id: None,
        api_key_id: None,
    }
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with_app(TestApp::spawn().await).await
    }

    /// The fixture's workspaces and people on an app the test configured.
    pub async fn with_app(app: TestApp) -> Fixture {
        let store = app.store.clone();
        let now = app.now();
        let acme = store.create_workspace("Acme AI", now).await.unwrap();
        let globex = store.create_workspace("Globex", now).await.unwrap();
        let hash = password::hash(PASSWORD.into()).await.unwrap();
        for (email, role) in [
            ("owner@acme.test", Role::Owner),
            ("admin@acme.test", Role::Admin),
            ("billing@acme.test", Role::BillingAdmin),
            ("member@acme.test", Role::Member),
            ("guest@acme.test", Role::Guest),
        ] {
            let user = store
                .upsert_user(&Email::parse(email).unwrap(), Some(&hash), now)
                .await
                .unwrap();
            store.set_membership(&acme, &user, role, now).await.unwrap();
            if role == Role::Owner {
                store
                    .set_membership(&globex, &user, Role::Owner, now)
                    .await
                    .unwrap();
            }
        }
        let globex_member = store
            .upsert_user(
                &Email::parse("member@globex.test").unwrap(),
                Some(&hash),
                now,
            )
            .await
            .unwrap();
        store
            .set_membership(&globex, &globex_member, Role::Member, now)
            .await
            .unwrap();

        store
            .grant(
                &acme,
                &grant(GrantKind::Purchased, 1_000, None),
                now - 10_000,
            )
            .await
            .unwrap();
        store
            .grant(
                &acme,
                &grant(GrantKind::Promotional, 500, Some(now + 86_400_000)),
                now - 9_000,
            )
            .await
            .unwrap();
        store
            .charge(&acme, Credits::new(120).unwrap(), &usage(0), now - 8_000)
            .await
            .unwrap();
        store
            .grant(&globex, &grant(GrantKind::Free, 300, None), now - 5_000)
            .await
            .unwrap();

        for (model, modality, millicredits) in [
            ("atlas-text-large", app::domain::Modality::Text, 1_500),
            ("lumen-image-2", app::domain::Modality::Image, 40_000),
        ] {
            let rate = app::domain::Rate {
                model: model.into(),
                label: model.into(),
                modality,
                millicredits,
            };
            store.set_rate(&rate, now).await.unwrap();
        }
        let acme_key = store.create_api_key(&acme, "test", now).await.unwrap();
        let globex_key = store.create_api_key(&globex, "test", now).await.unwrap();
        Fixture {
            app,
            acme,
            globex,
            acme_key,
            globex_key,
        }
    }

    /// Signs the owner in and saves a card by buying the Team pack with `card` (a card that
    /// only declines when charged, such as `…0341`, is saved too).
    pub async fn owner_with_card(&self, card: &str) -> reqwest::Client {
        crate::support::buying::with_packs(&self.app).await;
        let owner = self.app.sign_in("owner@acme.test", PASSWORD).await;
        let (purchase, page) = crate::support::buying::open_team_checkout(&self.app, &owner).await;
        crate::support::buying::pay(&page, card).await;
        crate::support::buying::wait_for(&self.app, &purchase, |p| !p.status.is_pending()).await;
        owner
    }

    /// Spends Acme down to `left` credits.
    pub async fn spend_to(&self, left: i64) {
        let have = crate::support::buying::balance(&self.app, &self.acme).await;
        self.app
            .store
            .charge(
                &self.acme,
                Credits::new(have - left).unwrap(),
                &usage(1),
                self.app.now(),
            )
            .await
            .unwrap();
    }

    /// `POST path` with an API key and a JSON body.
    pub async fn post_with_key(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        TestApp::client()
            .post(self.app.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` with an API key.
    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        TestApp::client()
            .get(self.app.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

/// Reads a JSON error body and checks its shape.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("errors are JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["code"]
        .as_str()
        .expect("errors carry a code")
        .to_owned()
}

impl Fixture {
    /// The fixture on an app with the operator token [`OPERATOR`] configured.
    pub async fn with_operator() -> Fixture {
        Fixture::with_app(TestApp::spawn_with(|c| c.operator_token = Some(OPERATOR.into())).await)
            .await
    }

    /// Calls the operator API: the answer's status and JSON (null when there is none).
    pub async fn operator(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = TestApp::client()
            .request(method, self.app.url(path))
            .bearer_auth(OPERATOR);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or_default())
    }
}
