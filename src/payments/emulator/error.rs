//! The emulator's errors, in Stripe's shape and with Stripe's status codes, so a client
//! raises the same error class against it as against Stripe.

use crate::db::StoreError;
use crate::payments::cards;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// An error answer: `{"error": {"type", "code"?, "param"?, "message", …}}`.
#[derive(Debug)]
pub(crate) struct EmuError {
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

impl EmuError {
    fn request(
        status: StatusCode,
        code: Option<&str>,
        param: Option<&str>,
        message: String,
    ) -> Self {
        let mut error = json!({"type": "invalid_request_error", "message": message});
        if let Some(code) = code {
            error["code"] = json!(code);
        }
        if let Some(param) = param {
            error["param"] = json!(param);
        }
        EmuError {
            status,
            body: json!({ "error": error }),
        }
    }

    /// 400 without a code: a request Stripe would refuse for a reason of its own.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::request(StatusCode::BAD_REQUEST, None, None, message.into())
    }

    /// 400 `parameter_missing`.
    pub fn missing_param(param: &str) -> Self {
        Self::request(
            StatusCode::BAD_REQUEST,
            Some("parameter_missing"),
            Some(param),
            format!("Missing required param: {param}."),
        )
    }

    /// 400 `parameter_invalid_integer`.
    pub fn bad_integer(param: &str) -> Self {
        Self::request(
            StatusCode::BAD_REQUEST,
            Some("parameter_invalid_integer"),
            Some(param),
            format!("Invalid integer: {param}"),
        )
    }

    /// 400 `parameter_invalid_empty`, `parameter_unknown` and the like: `param` is wrong.
    pub fn bad_param(code: &str, param: &str, message: impl Into<String>) -> Self {
        Self::request(
            StatusCode::BAD_REQUEST,
            Some(code),
            Some(param),
            message.into(),
        )
    }

    /// 404 `resource_missing`: the object the URL names does not exist.
    pub fn missing(what: &str, id: &str) -> Self {
        Self::request(
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            Some("id"),
            format!("No such {what}: '{id}'"),
        )
    }

    /// 400 `resource_missing`: an object named by a parameter does not exist (Stripe answers
    /// 400 here, not 404: the URL itself was found).
    pub fn missing_in_param(what: &str, id: &str, param: &str) -> Self {
        Self::request(
            StatusCode::BAD_REQUEST,
            Some("resource_missing"),
            Some(param),
            format!("No such {what}: '{id}'"),
        )
    }

    /// 400 `idempotency_error`: a key reused for another request.
    pub fn idempotency(message: String) -> Self {
        EmuError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": {"type": "idempotency_error", "message": message}}),
        }
    }

    /// 401: no key or a key other than Tally's own.
    pub fn unauthorised(message: &str) -> Self {
        Self::request(StatusCode::UNAUTHORIZED, None, None, message.to_owned())
    }

    /// 404 for a URL the emulator does not serve, in Stripe's words and shape.
    pub fn unknown_url(method: &str, path: &str) -> Self {
        Self::request(
            StatusCode::NOT_FOUND,
            None,
            None,
            format!(
                "Unrecognized request URL ({method}: {path}). The test-mode emulator serves the \
                 Stripe calls listed in Tally's README."
            ),
        )
    }

    /// 404 while test mode is off.
    pub fn off() -> Self {
        Self::request(
            StatusCode::NOT_FOUND,
            None,
            None,
            "The test-mode emulator is off: Tally is using Stripe.".to_owned(),
        )
    }

    /// 402 for a declined card, with the failed intent inside, as Stripe sends it.
    pub fn card(code: &str, decline_code: &str, payment_intent: &Value) -> Self {
        EmuError {
            status: StatusCode::PAYMENT_REQUIRED,
            body: json!({"error": {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": cards::decline_message(decline_code),
                "payment_intent": payment_intent,
            }}),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for EmuError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "test-mode emulator storage failed");
        EmuError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({"error": {"type": "api_error", "message": "The test-mode emulator could not store its data."}}),
        }
    }
}

impl From<sqlx::Error> for EmuError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err).into()
    }
}

impl IntoResponse for EmuError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
