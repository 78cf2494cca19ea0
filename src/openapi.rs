//! The API's OpenAPI 3.1 description, generated from the handlers' annotations and served at
//! `GET /api/openapi.json`, and a reference page that shows it at `GET /api/docs` (Swagger UI,
//! vendored from npm and served with the site's files: nothing is fetched from elsewhere). A
//! test holds the description against the route list, so a route added without a description
//! fails the build's tests.

use crate::api::{self, ErrorAnswer};
use crate::routing::RouteBook;
use crate::state::AppState;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

/// The description: every operation of the API, its schemas and its ways in.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally",
        description = "Prepaid AI credits: the credit gate every AI action passes before any provider work starts, the workspace's balance and history, and the operator's grants. Errors are JSON `{\"error\": {\"code\", \"message\"}}`; amounts are whole credits.",
    ),
    paths(
        api::usage::charge,
        api::usage::reserve,
        api::usage::settle,
        api::usage::release,
        api::usage::refund,
        api::credits::get_credits,
        api::budgets::list_budgets,
        api::budgets::create_budget,
        api::budgets::get_budget,
        api::budgets::update_budget,
        api::budgets::remove_budget,
        api::pools::list_pools,
        api::pools::create_pool,
        api::pools::update_pool,
        api::pools::remove_pool,
        api::operator::grant,
        api::operator::create_api_key,
        api::operator::list_api_keys,
        api::operator::revoke_api_key,
        api::operator::create_portal_session,
        api::provisioning::create_workspace,
        api::provisioning::list_workspaces,
        api::provisioning::get_workspace,
        api::provisioning::update_workspace,
        api::provisioning::put_member,
        api::provisioning::list_members,
        api::provisioning::remove_member,
        crate::web::export::history_csv,
        openapi_json,
        reference_page,
    ),
    components(schemas(
        ErrorAnswer,
        api::ErrorCode,
        crate::notifications::NotificationPayload
    )),
    modifiers(&WaysIn, &Notifications, &OperatorSpendControls),
    tags(
        (name = "credit gate", description = "Charge, hold, settle, release and refund credits, exactly once per idempotency key."),
        (name = "billing", description = "The workspace's balance, Auto-reload and history."),
        (name = "budgets", description = "Spend limits below the workspace — per member, API key or project — that the credit gate enforces in the same transaction as each charge."),
        (name = "operator", description = "What the people who run Tally do, with the operator token."),
        (name = "meta", description = "This description."),
    )
)]
pub struct ApiDoc;

/// The three ways in: a workspace API key, the operator token, a person's session.
struct WaysIn;

impl utoipa::Modify for WaysIn {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme(
            "api_key",
            bearer("A workspace API key (`tly_…`), for the product's server: `Authorization: Bearer <key>`."),
        );
        components.add_security_scheme(
            "operator",
            bearer("The operator token (`TALLY_OPERATOR_TOKEN`); without one configured, operator routes answer 404."),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                app::request::SESSION_COOKIE,
                "A person's session from signing in; state-changing requests must come from Tally's own pages (Origin checked).",
            ))),
        );
    }
}

/// The operator's budgets and pools: the same operations as `/api/v1/budgets…` and
/// `/api/v1/pools…`, on the workspace in the path and for the operator token alone. They are
/// written out from the workspace's own, so the two cannot drift apart.
struct OperatorSpendControls;

impl utoipa::Modify for OperatorSpendControls {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use serde_json::{json, Value};
        let own: Vec<(String, Value)> = doc
            .paths
            .paths
            .iter()
            .filter(|(path, _)| {
                path.starts_with("/api/v1/budgets") || path.starts_with("/api/v1/pools")
            })
            .filter_map(|(path, item)| Some((path.clone(), serde_json::to_value(item).ok()?)))
            .collect();
        for (path, mut item) in own {
            let Some(operations) = item.as_object_mut() else {
                continue;
            };
            for operation in operations.values_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(id)) = operation.get_mut("operationId") {
                    *id = format!("operator_{id}");
                }
                operation.insert("tags".into(), json!(["operator"]));
                operation.insert("security".into(), json!([{"operator": []}]));
                let mut parameters = vec![json!({
                    "name": "workspace_id", "in": "path", "required": true,
                    "description": "The workspace (`ws_…`).", "schema": {"type": "string"},
                })];
                if let Some(Value::Array(own)) = operation.remove("parameters") {
                    parameters.extend(own);
                }
                operation.insert("parameters".into(), Value::Array(parameters));
                if let Some(Value::Object(responses)) = operation.get_mut("responses") {
                    // Only the operator token opens these; no role is ever refused.
                    responses.remove("403");
                    responses.insert("401".into(), json!({"description": "No or bad operator token (`unauthenticated`).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}}));
                    responses.insert("404".into(), json!({"description": "Unknown workspace or id, an id of another workspace, or no operator token configured (`not_found`).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}}));
                }
            }
            let operator_path =
                path.replacen("/api/v1/", "/api/operator/workspaces/{workspace_id}/", 1);
            match serde_json::from_value(item) {
                Ok(item) => {
                    doc.paths.paths.insert(operator_path, item);
                }
                Err(err) => tracing::error!(error = %err, "an operator path was not described"),
            }
        }
    }
}

/// The notifications Tally posts to a workspace's endpoint, as OpenAPI 3.1's `webhooks`
/// (which utoipa has no field for, so it is added beside the document's own).
struct Notifications;

impl utoipa::Modify for Notifications {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let header = |name: &str, what: &str| serde_json::json!({"name": name, "in": "header", "required": true, "description": what, "schema": {"type": "string"}});
        let webhooks = serde_json::json!({
            "notification": {"post": {
                "summary": "A notification about the workspace's credits",
                "description": "Posted to the endpoint set on the Notifications page, retried with back-off for several hours until it answers 2xx. Check the signature over the raw body and ignore a `Tally-Delivery` seen before.",
                "operationId": "notification",
                "tags": ["billing"],
                "parameters": [
                    header("Tally-Signature", "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" with the endpoint's signing secret>`; refuse one older than five minutes."),
                    header("Tally-Delivery", "The same on every retry of one notification."),
                ],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotificationPayload"}}}},
                "responses": {"2XX": {"description": "Received; any other answer is retried."}},
            }}
        });
        doc.extensions
            .get_or_insert_with(Default::default)
            .insert("webhooks".to_owned(), webhooks);
    }
}

/// The description as JSON.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
#[tracing::instrument(skip_all)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The reference page's policy: its own scripts only (no eval, nothing inline); Swagger UI
/// sets style attributes as it renders, so styles may be inline.
const REFERENCE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page: a plain one that links the description, which Swagger UI then fills in.
const REFERENCE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tally API reference</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/vendor/swagger-ui.css">
</head>
<body>
<main id="reference">
<h1>Tally API reference</h1>
<p>The API's OpenAPI 3.1 description is at <a href="/api/openapi.json">/api/openapi.json</a>. This page shows it once its script has loaded.</p>
</main>
<script src="/vendor/swagger-ui-bundle.js"></script>
<script src="/api-docs.js"></script>
</body>
</html>
"#;

/// The API reference, for people.
#[utoipa::path(get, path = "/api/docs", tag = "meta", operation_id = "reference",
    responses((status = 200, description = "The API reference page (HTML), which reads this description.", content_type = "text/html", body = String)))]
#[tracing::instrument(skip_all)]
pub async fn reference_page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, REFERENCE_POLICY),
        ],
        REFERENCE_PAGE,
    )
}

/// The description's routes.
pub fn routes() -> RouteBook<AppState> {
    RouteBook::new()
        .get("/api/openapi.json", openapi_json)
        .get("/api/docs", reference_page)
}
