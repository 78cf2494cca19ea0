use super::{EndpointSaved, NotificationsView};
use crate::error::AppError;
use leptos::prelude::*;

/// The notifications the signed-in person may see in this workspace.
#[server(output = crate::codec::TextJson)]
pub async fn load_notifications() -> Result<NotificationsView, AppError> {
    let view = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        let items = backend.notifications(&viewer).await?;
        let endpoint = if viewer.can_manage_billing {
            Some(backend.notification_endpoint(&viewer).await?)
        } else {
            None
        };
        Ok(NotificationsView {
            viewer,
            items,
            endpoint,
        })
    };
    view.await.map_err(AppError::answer)
}

/// Sets the workspace's webhook endpoint (billing managers only), or removes it when
/// `remove` is set. A new endpoint gets a new signing secret, returned once.
#[server(endpoint = "save_endpoint", output = crate::codec::TextJson)]
pub async fn save_endpoint(
    url: Option<String>,
    remove: Option<String>,
) -> Result<EndpointSaved, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let url = if remove.is_some() {
            None
        } else {
            Some(url.unwrap_or_default())
        };
        backend.save_notification_endpoint(&viewer, url).await
    }
    .await;
    result.map_err(AppError::answer)
}
