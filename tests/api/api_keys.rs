//! API keys through the operator API: created with their secret shown once, listed with
//! their last use and never their secret, revoked so that they stop working at once.

use crate::fixture::Fixture;
use crate::support::get_text;
use crate::support::{wait_until, TestApp};
use serde_json::{json, Value};

async fn credits_with(f: &Fixture, key: &str) -> u16 {
    TestApp::client()
        .get(f.app.url("/api/billing/credits"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_key_is_shown_once_listed_with_its_last_use_and_revoked_at_once() {
    let f = Fixture::with_operator().await;
    let keys = format!("/api/operator/workspaces/{}/api_keys", f.acme);
    f.app.clock.advance(1_000);
    let (status, created) = f
        .operator(
            reqwest::Method::POST,
            &keys,
            Some(json!({"name": "Production backend"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tly_"));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["last_used_at"].is_null() && created["revoked_at"].is_null());

    // The key works; the list says so, and never shows a secret.
    assert_eq!(credits_with(&f, &secret).await, 200);
    wait_until("the key's use to be written down", || async {
        let (_, list) = f.operator(reqwest::Method::GET, &keys, None).await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str() && k["last_used_at"].is_string())
    })
    .await;
    let (_, list) = f.operator(reqwest::Method::GET, &keys, None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(
        list["data"][0]["name"], "Production backend",
        "newest first"
    );
    assert!(
        !list.to_string().contains("tly_"),
        "a secret in a list: {list}"
    );

    // Revoked: refused on the very next request, though this instance had just seen it.
    assert_eq!(credits_with(&f, &secret).await, 200);
    let (status, revoked) = f
        .operator(reqwest::Method::DELETE, &format!("{keys}/{id}"), None)
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(credits_with(&f, &secret).await, 401);
    // Again: the first revocation.
    let (status, again) = f
        .operator(reqwest::Method::DELETE, &format!("{keys}/{id}"), None)
        .await;
    assert_eq!(
        (status, &again["revoked_at"]),
        (200, &revoked["revoked_at"])
    );
    // The workspace's other key still works.
    assert_eq!(credits_with(&f, &f.acme_key).await, 200);
}

#[tokio::test]
async fn keys_of_another_workspace_and_other_callers_are_refused() {
    let f = Fixture::with_operator().await;
    let (_, created) = f
        .operator(
            reqwest::Method::POST,
            &format!("/api/operator/workspaces/{}/api_keys", f.globex),
            Some(json!({"name": "Globex"})),
        )
        .await;
    let globex_key = created["id"].as_str().unwrap();
    let (status, _) = f
        .operator(
            reqwest::Method::DELETE,
            &format!("/api/operator/workspaces/{}/api_keys/{globex_key}", f.acme),
            None,
        )
        .await;
    assert_eq!(status, 404, "another workspace's key is not found here");
    assert_eq!(
        credits_with(&f, created["secret"].as_str().unwrap()).await,
        200
    );
    for (path, status) in [
        ("/api/operator/workspaces/ws_nosuchworkspace/api_keys", 404),
        ("/api/operator/workspaces/not-an-id/api_keys", 404),
    ] {
        assert_eq!(f.operator(reqwest::Method::GET, path, None).await.0, status);
    }
    let (status, refused) = f
        .operator(
            reqwest::Method::POST,
            &format!("/api/operator/workspaces/{}/api_keys", f.acme),
            Some(json!({"name": "  "})),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    // A workspace's own key cannot manage keys.
    let listed = TestApp::client()
        .get(
            f.app
                .url(&format!("/api/operator/workspaces/{}/api_keys", f.acme)),
        )
        .bearer_auth(&f.acme_key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 401);
}

#[tokio::test]
async fn owners_make_see_and_revoke_keys_on_their_page_and_no_one_else_does() {
    let f = Fixture::new().await;
    let owner = f
        .app
        .sign_in("owner@acme.test", crate::fixture::PASSWORD)
        .await;
    let made: Value = owner
        .post(f.app.url("/api/create_api_key"))
        .form(&[("name", "Studio backend")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let id = made["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(credits_with(&f, &secret).await, 200);

    let page = get_text(&owner, f.app.url("/api-keys")).await;
    assert!(page.contains("Studio backend"), "the key is listed");
    assert!(
        !page.contains(&secret),
        "the secret is shown once, not on the page"
    );
    assert!(page.contains("href=\"/api-keys\""), "owners get the link");

    let revoked: Value = owner
        .post(f.app.url("/api/revoke_api_key"))
        .form(&[("id", id.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(credits_with(&f, &secret).await, 401, "revoked at once");

    // Another workspace's key is not found from here.
    let (globex_key, _) = f
        .app
        .store
        .create_named_api_key(&f.globex, "Globex", f.app.now())
        .await
        .unwrap();
    let globex_id = globex_key.id;
    let foreign = owner
        .post(f.app.url("/api/revoke_api_key"))
        .form(&[("id", globex_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);

    for email in ["admin@acme.test", "billing@acme.test", "member@acme.test"] {
        let person = f.app.sign_in(email, crate::fixture::PASSWORD).await;
        let page = person.get(f.app.url("/api-keys")).send().await.unwrap();
        assert_eq!(page.status(), 403, "{email}");
        let text = page.text().await.unwrap();
        assert!(text.contains("Only owners manage API keys"), "{email}");
        assert!(!text.contains("Studio backend"), "{email} sees no key");
        let billing = get_text(&person, f.app.url("/billing")).await;
        assert!(
            !billing.contains("href=\"/api-keys\""),
            "{email} gets no link"
        );
        let made = person
            .post(f.app.url("/api/create_api_key"))
            .form(&[("name", "Sneaky")])
            .send()
            .await
            .unwrap();
        assert_eq!(made.status(), 403, "{email}");
    }
    assert_eq!(f.app.store.api_keys(&f.acme).await.unwrap().len(), 2);
}

/// A form posted before the page's script runs (or with scripts off) and refused comes back to
/// its page, which says why once. The reason rides in a cookie of this site, never in the
/// address, where a link from anywhere could write one. Creating a key is such a refusal: its
/// secret could reach no one.
#[tokio::test]
async fn a_refused_plain_form_post_says_why_once_on_the_page_it_returns_to() {
    let f = Fixture::new().await;
    let owner = f
        .app
        .sign_in("owner@acme.test", crate::fixture::PASSWORD)
        .await;
    let back = f.app.url("/api-keys");
    let plain_post = |path: &str| {
        owner
            .post(f.app.url(path))
            .header(reqwest::header::ACCEPT, "text/html,application/xhtml+xml")
            .header(reqwest::header::REFERER, back.as_str())
    };
    let said = "That change was not made. A new key’s secret is shown once, on the page, and that needs JavaScript";
    let before = f.app.store.api_keys(&f.acme).await.unwrap();

    let refused = plain_post("/api/create_api_key")
        .form(&[("name", "Plain form")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        303,
        "sent back, not shown an error's JSON"
    );
    assert_eq!(
        refused.headers()["location"].to_str().unwrap(),
        back,
        "back to the page, with nothing added to its address"
    );
    assert!(refused.headers().get("serverfnerror").is_none());
    let page = get_text(&owner, back.as_str()).await;
    let notice = page
        .split('<')
        .find(|tag| tag.contains("refused-change"))
        .expect("the refusal's notice");
    assert!(notice.contains("role=\"alert\""), "said aloud: {notice}");
    assert!(notice.contains(said), "{notice}");
    let again = get_text(&owner, back.as_str()).await;
    assert!(!again.contains("That change was not made."), "once");
    assert_eq!(
        f.app.store.api_keys(&f.acme).await.unwrap().len(),
        before.len(),
        "no key made whose secret no one would see"
    );

    // A post that worked says nothing of the kind.
    let revoked = plain_post("/api/revoke_api_key")
        .form(&[("id", before[0].id.as_str())])
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_redirection(), "{}", revoked.status());
    assert!(!get_text(&owner, back.as_str())
        .await
        .contains("That change was not made."));
    // A script's post (a hydrated form) still gets the refusal itself, to say in place.
    let fetched = owner
        .post(f.app.url("/api/create_api_key"))
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::REFERER, back.as_str())
        .form(&[("name", "   ")])
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 400);
    assert!(fetched
        .text()
        .await
        .unwrap()
        .contains("Give the key a name"));
    // Another site's post is not sent anywhere with a reason to show.
    let stranger = f.app.browser();
    let foreign = stranger
        .post(f.app.url("/api/create_api_key"))
        .header(reqwest::header::ORIGIN, "https://elsewhere.test")
        .header(reqwest::header::ACCEPT, "text/html")
        .header(reqwest::header::REFERER, "https://elsewhere.test/form")
        .form(&[("name", "Sneaky")])
        .send()
        .await
        .unwrap();
    assert!(foreign.headers().get(reqwest::header::SET_COOKIE).is_none());
    assert_ne!(foreign.status(), 303);
    // The reason is never read from the address, where a link could write one.
    let forged = get_text(
        &owner,
        format!("{back}?__path=%2Fapi%2Fcreate_api_key&__err=eyJJbnZhbGlkIjoiQ2FsbCB1cyJ9"),
    )
    .await;
    assert!(!forged.contains("Call us"));
    assert_eq!(
        f.app.store.api_keys(&f.acme).await.unwrap().len(),
        before.len()
    );
}
