//! Provisioning through the operator API: workspaces created, listed in pages, changed;
//! people added, re-roled and removed — and what a removal means for their session.

use crate::fixture::Fixture;
use crate::support::TestApp;
use serde_json::{json, Value};

async fn workspace_count(f: &Fixture) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workspaces")
        .fetch_one(f.app.store.pool())
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn workspaces_are_created_listed_in_pages_and_changed() {
    let f = Fixture::with_operator().await;
    let (status, made) = f.operator(reqwest::Method::POST,
        "/api/operator/workspaces",
        Some(json!({"name": "Initech", "billing_managers": "owner_only", "low_balance_threshold": 800})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            &made["name"],
            &made["billing_managers"],
            &made["low_balance_threshold"]
        ),
        (&json!("Initech"), &json!("owner_only"), &json!(800))
    );
    let (_, got) = f
        .operator(
            reqwest::Method::GET,
            &format!("/api/operator/workspaces/{id}"),
            None,
        )
        .await;
    assert_eq!(got, made);

    // Three workspaces (two from the fixture), a page of one at a time.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/operator/workspaces?limit=1&starting_after={a}"),
            None => "/api/operator/workspaces?limit=1".to_owned(),
        };
        let (status, page) = f.operator(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert_eq!(data.len(), 1);
        seen.push(data[0]["id"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            break;
        }
        after = seen.last().cloned();
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "{seen:?}");

    let (status, changed) = f
        .operator(
            reqwest::Method::POST,
            &format!("/api/operator/workspaces/{id}"),
            Some(json!({"name": "Initech Labs", "billing_managers": "admins"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &changed["name"],
            &changed["billing_managers"],
            &changed["low_balance_threshold"]
        ),
        (&json!("Initech Labs"), &json!("admins"), &json!(800)),
        "what was left out stays"
    );

    let before = workspace_count(&f).await;
    for body in [
        json!({"name": ""}),
        json!({"name": "Bad", "billing_managers": "everyone"}),
        json!({"name": "Bad", "low_balance_threshold": -1}),
        json!({"name": "Bad", "colour": "red"}),
    ] {
        let (status, _) = f
            .operator(
                reqwest::Method::POST,
                "/api/operator/workspaces",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(
        workspace_count(&f).await,
        before,
        "a refused creation leaves nothing"
    );
    let (status, _) = f
        .operator(
            reqwest::Method::GET,
            "/api/operator/workspaces/ws_nosuchworkspace",
            None,
        )
        .await;
    assert_eq!(status, 404);
    // A body is a JSON object: serde would read a struct from an array of its fields.
    let (status, _) = f
        .operator(
            reqwest::Method::POST,
            &format!("/api/operator/workspaces/{id}"),
            Some(json!(["Renamed by position", null])),
        )
        .await;
    assert_eq!(status, 400);
    let (_, unchanged) = f
        .operator(
            reqwest::Method::GET,
            &format!("/api/operator/workspaces/{id}"),
            None,
        )
        .await;
    assert_eq!(unchanged["name"], "Initech Labs");
    let (status, _) = f
        .operator(
            reqwest::Method::GET,
            "/api/operator/workspaces?limit=",
            None,
        )
        .await;
    assert_eq!(status, 400, "an empty limit is not the default");
}

#[tokio::test]
async fn people_are_added_re_roled_and_removed_and_a_removal_ends_their_access() {
    let f = Fixture::with_operator().await;
    let members = format!("/api/operator/workspaces/{}/members", f.acme);
    let ada =
        json!({"email": "ada@host.test", "name": "Ada", "external_id": "user_1", "role": "member"});
    let (status, added) = f
        .operator(reqwest::Method::POST, &members, Some(ada.clone()))
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["role"], "member");
    let mut promoted = ada.clone();
    promoted["role"] = json!("billing_admin");
    let (_, again) = f
        .operator(reqwest::Method::POST, &members, Some(promoted))
        .await;
    assert_eq!(
        (&again["user_id"], &again["role"]),
        (&added["user_id"], &json!("billing_admin"))
    );
    let (_, list) = f.operator(reqwest::Method::GET, &members, None).await;
    let adas: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["external_id"] == "user_1")
        .collect();
    assert_eq!(adas.len(), 1, "one person, one membership: {list}");

    // Signed in through the handoff, then removed: the next page asks them to sign in.
    let (_, link) = f.operator(reqwest::Method::POST,
        "/api/operator/portal_sessions",
        Some(json!({"workspace_id": f.acme.as_str(), "user": {"email": "ada@host.test", "external_id": "user_1"}, "role": "billing_admin"})),
    )
    .await;
    let browser = TestApp::client();
    assert_eq!(
        browser
            .get(link["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        browser
            .get(f.app.url("/billing"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let user = added["user_id"].as_str().unwrap();
    let (status, _) = f
        .operator(reqwest::Method::DELETE, &format!("{members}/{user}"), None)
        .await;
    assert_eq!(status, 204);
    let gone = browser.get(f.app.url("/billing")).send().await.unwrap();
    assert_eq!(
        (
            gone.status().as_u16(),
            gone.headers()["location"].to_str().unwrap()
        ),
        (303, "/login")
    );
    let (status, _) = f
        .operator(reqwest::Method::DELETE, &format!("{members}/{user}"), None)
        .await;
    assert_eq!(status, 404, "not a member any more");

    // An id and an email of two different people are refused.
    f.operator(
        reqwest::Method::POST,
        &members,
        Some(json!({"email": "bo@host.test", "external_id": "user_2", "role": "member"})),
    )
    .await;
    let (status, clash) = f
        .operator(
            reqwest::Method::POST,
            &members,
            Some(json!({"email": "bo@host.test", "external_id": "user_3", "role": "member"})),
        )
        .await;
    assert_eq!((status, &clash["error"]["code"]), (409, &json!("conflict")));
    let (status, _) = f
        .operator(
            reqwest::Method::POST,
            &members,
            Some(json!({"email": "not an email", "role": "member"})),
        )
        .await;
    assert_eq!(status, 400);
}
