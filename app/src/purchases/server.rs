use super::{CheckoutStarted, PurchaseDetail, PurchaseSection, PurchaseView};
use crate::error::AppError;
use leptos::prelude::*;

/// The Buy credits section: packs, saved cards and purchases of the current workspace.
#[server(endpoint = "load_purchases")]
pub async fn load_purchases() -> Result<PurchaseSection, AppError> {
    let (services, viewer) = crate::services::billing_viewer()
        .await
        .map_err(AppError::answer)?;
    services
        .purchase_section(&viewer)
        .await
        .map_err(AppError::answer)
}

/// Opens a checkout for a pack (`pack_id`) or a custom amount (`custom_credits`) and returns
/// the payment page to send the browser to. Billing managers only.
#[server(endpoint = "start_checkout")]
pub async fn start_checkout(
    pack_id: Option<String>,
    custom_credits: Option<String>,
) -> Result<CheckoutStarted, AppError> {
    open_checkout(pack_id, custom_credits)
        .await
        .map_err(AppError::answer)
}

#[cfg(feature = "ssr")]
async fn open_checkout(
    pack_id: Option<String>,
    custom_credits: Option<String>,
) -> Result<CheckoutStarted, AppError> {
    let (services, viewer) = crate::services::billing_viewer().await?;
    if !viewer.can_manage_billing {
        return Err(AppError::Forbidden);
    }
    let choice = match (
        pack_id.filter(|p| !p.trim().is_empty()),
        custom_credits.filter(|c| !c.trim().is_empty()),
    ) {
        (Some(pack), None) => super::PurchaseChoice::Pack(pack.trim().to_owned()),
        (None, Some(credits)) => super::PurchaseChoice::Custom(
            crate::domain::CustomAmountTerms::standard()
                .parse(&credits)
                .map_err(|e| AppError::Invalid(format!("Custom amount: {e}.")))?,
        ),
        _ => {
            return Err(AppError::Invalid(
                "Choose a pack or enter a custom amount.".into(),
            ))
        }
    };
    let origin = crate::services::request_origin()?;
    services.start_checkout(&viewer, choice, &origin).await
}

/// One purchase of the current workspace, for the return page.
#[server(endpoint = "load_purchase")]
pub async fn load_purchase(id: String) -> Result<PurchaseDetail, AppError> {
    let (services, viewer) = crate::services::billing_viewer()
        .await
        .map_err(AppError::answer)?;
    services
        .purchase(&viewer, &id)
        .await
        .map_err(AppError::answer)
}

/// The buyer came back without paying: closes the checkout so it can no longer be paid.
#[server(endpoint = "abandon_checkout")]
pub async fn abandon_checkout(id: String) -> Result<PurchaseView, AppError> {
    let (services, viewer) = crate::services::billing_viewer()
        .await
        .map_err(AppError::answer)?;
    if !viewer.can_manage_billing {
        return Err(AppError::Forbidden.answer());
    }
    services
        .abandon_checkout(&viewer, &id)
        .await
        .map_err(AppError::answer)
}
