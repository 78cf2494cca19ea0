//! The error type of server functions: one variant for each thing a person can act on.
//! Internal causes are logged on the server and never sent to the browser.

use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No valid session: sign in again.
    #[error("Your session has ended. Please sign in again.")]
    Unauthenticated,
    /// Signed in, but this role may not see or do this.
    #[error("You don't have access to this.")]
    Forbidden,
    /// A member shown only their project's pool asked for the workspace's figures.
    #[error("Your workspace shows you the credits kept for your project, not its whole balance.")]
    PoolOnly,
    /// Unknown id, or an id of another workspace.
    #[error("We couldn't find that.")]
    NotFound,
    /// The request itself was wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// Something failed on the server; details are in its log.
    #[error("Something went wrong on our side. Please try again in a moment.")]
    Internal,
    /// The credit gate refused an AI action; nothing was charged.
    #[error("There aren't enough AI credits for this action.")]
    InsufficientCredits(crate::studio::Insufficient),
    /// A budget below the workspace refused an AI action; nothing was charged.
    #[error("{}", .0.message)]
    OverBudget(crate::studio::OverBudget),
    /// The request never reached the server, or its answer could not be read.
    #[error("We couldn't reach Tally. Check your connection and try again.")]
    Network,
}

impl FromServerFnError for AppError {
    type Encoder = crate::codec::TextJsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                AppError::Invalid(message)
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => AppError::Network,
            _ => AppError::Internal,
        }
    }
}

impl AppError {
    /// The HTTP status that goes with the error.
    #[cfg(feature = "ssr")]
    pub fn status(&self) -> http::StatusCode {
        match self {
            AppError::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::PoolOnly => http::StatusCode::FORBIDDEN,
            AppError::NotFound => http::StatusCode::NOT_FOUND,
            AppError::Invalid(_) => http::StatusCode::BAD_REQUEST,
            AppError::InsufficientCredits(_) | AppError::OverBudget(_) => {
                http::StatusCode::PAYMENT_REQUIRED
            }
            AppError::Internal | AppError::Network => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Sets the current response's status to match the error, and returns it; for server
    /// functions, so a refused call is a 403 and not a generic failure.
    #[cfg(feature = "ssr")]
    pub fn answer(self) -> AppError {
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(self.status());
        }
        self
    }
}
