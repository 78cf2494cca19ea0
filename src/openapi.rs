//! The API's OpenAPI 3.1 description, generated from the handlers' annotations and served at
//! `GET /api/openapi.json`. A test holds it against the route list, so a route added without
//! a description fails the build's tests.

use crate::api::{self, ErrorAnswer};
use crate::routing::RouteBook;
use crate::state::AppState;
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
        api::operator::grant,
        crate::web::export::history_csv,
        openapi_json,
    ),
    components(schemas(ErrorAnswer, api::ErrorCode)),
    modifiers(&WaysIn),
    tags(
        (name = "credit gate", description = "Charge, hold, settle, release and refund credits, exactly once per idempotency key."),
        (name = "billing", description = "The workspace's balance, Auto-reload and history."),
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

/// The description as JSON.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
#[tracing::instrument(skip_all)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The description's route.
pub fn routes() -> RouteBook<AppState> {
    RouteBook::new().get("/api/openapi.json", openapi_json)
}
