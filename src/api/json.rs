//! A JSON body extractor whose rejections use the API's error shape.

use super::ApiError;
use axum::extract::{FromRequest, Request};

/// Like `axum::Json`, but a malformed body, a missing field, an unknown field or a wrong
/// content type is a 400 `invalid_request` with the parser's message.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::Invalid(rejection.body_text())),
        }
    }
}
