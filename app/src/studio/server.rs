use super::{ActionResult, NotificationsView, RatesView, StudioView};
use crate::error::AppError;
use leptos::prelude::*;

/// The rate table, for everyone who may open Billing.
#[server]
pub async fn load_rates() -> Result<RatesView, AppError> {
    let view = async {
        let (services, viewer) = crate::services::billing_viewer().await?;
        Ok(RatesView {
            rates: services.rates().await?,
            viewer,
        })
    };
    view.await.map_err(AppError::answer)
}

/// The Studio: models to pick from and, for everyone but guests (who see nothing of
/// billing), the balance.
#[server]
pub async fn load_studio() -> Result<StudioView, AppError> {
    let view = async {
        let (services, viewer) = crate::services::current_viewer().await?;
        let rates = services.rates().await?;
        let balance = if viewer.role.can_view_billing() {
            Some(services.credits(&viewer, 0).await?.balance)
        } else {
            None
        };
        Ok(StudioView {
            viewer,
            rates,
            balance,
        })
    };
    view.await.map_err(AppError::answer)
}

/// Runs a simulated AI action through the credit gate: hold the estimate, do the work, settle
/// the real cost.
#[server]
pub async fn run_action(model: String, units: String) -> Result<ActionResult, AppError> {
    let result = async {
        let (services, viewer) = crate::services::current_viewer().await?;
        let units: i64 = units
            .trim()
            .parse()
            .ok()
            .filter(|u| *u > 0)
            .ok_or_else(|| {
                AppError::Invalid("Enter a size above zero, as a whole number.".into())
            })?;
        services.run_action(&viewer, model.trim(), units).await
    };
    result.await.map_err(AppError::answer)
}

/// A member asks the billing managers for credits; false when they already asked this hour.
#[server]
pub async fn ask_admin() -> Result<bool, AppError> {
    let asked = async {
        let (services, viewer) = crate::services::current_viewer().await?;
        services.request_credits(&viewer).await
    };
    asked.await.map_err(AppError::answer)
}

/// The notifications the signed-in person may see in this workspace.
#[server]
pub async fn load_notifications() -> Result<NotificationsView, AppError> {
    let view = async {
        let (services, viewer) = crate::services::billing_viewer().await?;
        let items = services.notifications(&viewer).await?;
        let webhook = if viewer.can_manage_billing {
            Some(services.webhook(&viewer).await?)
        } else {
            None
        };
        Ok(NotificationsView {
            viewer,
            items,
            webhook,
        })
    };
    view.await.map_err(AppError::answer)
}

/// Sets the workspace's webhook endpoint (billing managers only), or removes it when
/// `remove` is set. A new endpoint gets a new signing secret, returned once.
#[server(endpoint = "save_webhook")]
pub async fn save_webhook(
    url: Option<String>,
    remove: Option<String>,
) -> Result<super::WebhookSaved, AppError> {
    let result = async {
        let (services, viewer) = crate::services::billing_viewer().await?;
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let url = if remove.is_some() {
            None
        } else {
            Some(url.unwrap_or_default())
        };
        services.save_webhook(&viewer, url).await
    }
    .await;
    result.map_err(AppError::answer)
}
