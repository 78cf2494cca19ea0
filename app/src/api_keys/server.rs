use super::{ApiKeyView, ApiKeysPage, NewApiKey};
use crate::error::AppError;
use leptos::prelude::*;

/// The workspace's API keys. Owners only.
#[server(endpoint = "load_api_keys", output = crate::codec::TextJson)]
pub async fn load_api_keys() -> Result<ApiKeysPage, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let keys = backend.api_keys(&viewer).await?;
        Ok(ApiKeysPage { viewer, keys })
    }
    .await;
    result.map_err(AppError::answer)
}

/// Makes an API key named `name`; its secret is in the answer only. Owners only.
///
/// A plain form post (the page's script not running) is refused before anything is made: its
/// answer becomes a redirect back to the page, so the secret would reach no one and the person
/// would hold a key they could never use.
#[server(endpoint = "create_api_key", output = crate::codec::TextJson)]
pub async fn create_api_key(name: String) -> Result<NewApiKey, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        if crate::request::is_plain_form_post() {
            return Err(AppError::Invalid(
                "A new key’s secret is shown once, on the page, and that needs JavaScript: \
                 turn it on and create the key again."
                    .into(),
            ));
        }
        backend.create_api_key(&viewer, &name).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Revokes the key `id`: it stops working at once. Owners only.
#[server(endpoint = "revoke_api_key", output = crate::codec::TextJson)]
pub async fn revoke_api_key(id: String) -> Result<ApiKeyView, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.revoke_api_key(&viewer, &id).await
    }
    .await;
    result.map_err(AppError::answer)
}
