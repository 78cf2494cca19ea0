//! The API's one error type and its mapping to HTTP: every failure is JSON of the shape
//! `{"error": {"code": "...", "message": "..."}}`.

use crate::db::StoreError;
use crate::ledger::LedgerError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Every `error.code` the API answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    IdempotencyConflict,
    NotRefundable,
    ReservationExpired,
    ReservationResolved,
    /// The request names things that do not fit together (two people as one, say).
    Conflict,
    InvalidSignature,
    InsufficientCredits,
    /// A budget below the workspace refused the action (its limit is in the answer).
    BudgetExceeded,
    /// A frequency cap refused the action (its limit is in the answer, `Retry-After` says
    /// when it resets).
    RateLimited,
    Overloaded,
    Unavailable,
    Internal,
}

/// The API's error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorAnswer {
    pub error: ErrorDetail,
}

/// What went wrong, as a code to act on and a sentence to show.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request`: malformed or out-of-range input.
    #[error("{0}")]
    Invalid(String),
    /// 401 `unauthenticated`: no or bad credentials.
    #[error("sign in, or send a workspace API key as 'Authorization: Bearer <key>'")]
    Unauthenticated,
    /// 403 `forbidden`: the role may not do this.
    #[error("your role in this workspace does not allow this")]
    Forbidden,
    /// 403 `forbidden`: refunds, settles and releases come from the product's server.
    #[error("only the product's server may do this: call it with a workspace API key")]
    ApiKeyRequired,
    /// 403 `forbidden`: a request with a session cookie that another site sent.
    #[error("this request did not come from Tally's own pages, so it was refused")]
    CrossSite,
    /// 404 `not_found`: unknown id, or an id of another workspace.
    #[error("not found")]
    NotFound,
    /// 409 `idempotency_conflict`: the key was used before with another request body.
    #[error("this idempotency_key was already used with a different request; use a new key for a new request")]
    IdempotencyConflict,
    /// 409 with its own code: the request conflicts with the state of the resource.
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// 400 `invalid_signature`: a webhook whose signature or timestamp does not verify.
    #[error("the Stripe-Signature header does not verify (wrong secret, altered body, or older than 5 minutes)")]
    BadSignature,
    /// 503 `overloaded`: the credit gate's queue is full; nothing was charged. `Retry-After`.
    #[error("the credit gate is busy; nothing was charged. Try again in a second")]
    Overloaded,
    /// 503 `unavailable`: a service Tally depends on did not answer; try again later.
    #[error("{0}")]
    Unavailable(String),
    /// 500 `internal`: logged in full, reported without details.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
            ApiError::Forbidden | ApiError::ApiKeyRequired | ApiError::CrossSite => {
                (StatusCode::FORBIDDEN, ErrorCode::Forbidden)
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::IdempotencyConflict => (StatusCode::CONFLICT, ErrorCode::IdempotencyConflict),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
            ApiError::BadSignature => (StatusCode::BAD_REQUEST, ErrorCode::InvalidSignature),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                "something went wrong on our side; try again".to_owned()
            }
            other => other.to_string(),
        };
        let body = Json(ErrorAnswer {
            error: ErrorDetail { code, message },
        });
        if matches!(self, ApiError::Overloaded) {
            return (status, [(axum::http::header::RETRY_AFTER, "1")], body).into_response();
        }
        (status, body).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> Self {
        match err {
            LedgerError::UnknownWorkspace => ApiError::NotFound,
            LedgerError::Invalid(message) => ApiError::Invalid(message.to_owned()),
            LedgerError::Store(err) => err.into(),
            LedgerError::Insufficient(_) => {
                ApiError::Internal("insufficient credits outside the credit gate".into())
            }
            LedgerError::IdempotencyConflict => ApiError::IdempotencyConflict,
            LedgerError::EntryNotFound => ApiError::NotFound,
            LedgerError::BadCursor => ApiError::Invalid(LedgerError::BadCursor.to_string()),
            LedgerError::Overloaded => ApiError::Overloaded,
            LedgerError::NotRefundable(why) => ApiError::Conflict {
                code: ErrorCode::NotRefundable,
                message: why.to_string(),
            },
            LedgerError::ReservationNotFound => ApiError::NotFound,
            LedgerError::ReservationExpired => ApiError::Conflict {
                code: ErrorCode::ReservationExpired,
                message: "the hold expired and was released by itself; reserve again".into(),
            },
            LedgerError::ReservationResolved => ApiError::Conflict {
                code: ErrorCode::ReservationResolved,
                message: "the reservation was already resolved".into(),
            },
        }
    }
}

impl From<crate::payments::PaymentsError> for ApiError {
    fn from(err: crate::payments::PaymentsError) -> Self {
        use crate::payments::{GatewayError, PaymentsError};
        match err {
            PaymentsError::UnknownPack | PaymentsError::UnknownPurchase => ApiError::NotFound,
            PaymentsError::Invalid(message) => ApiError::Invalid(message),
            // The workspace's plan, not the request, is what stands in the way.
            PaymentsError::PlanRequired(why) => ApiError::Conflict {
                code: ErrorCode::Conflict,
                message: why.to_owned(),
            },
            PaymentsError::Gateway(GatewayError::Unavailable(detail)) => {
                ApiError::Unavailable(format!("the payment provider did not answer: {detail}"))
            }
            PaymentsError::Gateway(other) => ApiError::Internal(other.to_string()),
            PaymentsError::Ledger(err) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overloaded_gate_says_when_to_come_back() {
        let response = ApiError::from(LedgerError::Overloaded).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
    }
}
