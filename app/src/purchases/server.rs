// A server function takes one argument per field of its form, and the `#[server]` macro's
// generated code does not carry an item's own `allow`, so the lint is allowed here.
#![allow(clippy::too_many_arguments)]

use super::{CheckoutStarted, PurchaseDetail, PurchaseSection, PurchaseView, SavedCard};
use crate::error::AppError;
use leptos::prelude::*;

/// The Buy credits section: packs, saved cards and purchases of the current workspace.
#[server(endpoint = "load_purchases", output = crate::codec::TextJson)]
pub async fn load_purchases() -> Result<PurchaseSection, AppError> {
    let (backend, viewer) = crate::backend::billing_viewer()
        .await
        .map_err(AppError::answer)?;
    // Packs and Auto-reload are the workspace's balance; a member shown only their project's
    // pool is not shown them.
    if viewer.pool.is_some() {
        return Err(AppError::PoolOnly.answer());
    }
    backend
        .purchase_section(&viewer)
        .await
        .map_err(AppError::answer)
}

/// Opens a checkout for a pack (`pack_id`) or a custom amount (`custom_credits`) and returns
/// the payment page to send the browser to. Billing managers only.
#[server(endpoint = "start_checkout", output = crate::codec::TextJson)]
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
    let (backend, viewer) = crate::backend::billing_viewer().await?;
    if !viewer.can_manage_billing {
        return Err(AppError::Forbidden);
    }
    let choice = match (
        pack_id.filter(|p| !p.trim().is_empty()),
        custom_credits.filter(|c| !c.trim().is_empty()),
    ) {
        (Some(pack), None) => super::PurchaseChoice::Pack(pack.trim().to_owned()),
        (None, Some(credits)) => super::PurchaseChoice::Custom(
            backend
                .custom_terms()
                .parse(&credits)
                .map_err(|e| AppError::Invalid(format!("Custom amount: {e}.")))?,
        ),
        _ => {
            return Err(AppError::Invalid(
                "Choose a pack or enter a custom amount.".into(),
            ))
        }
    };
    let origin = crate::request::request_origin()?;
    backend.start_checkout(&viewer, choice, &origin).await
}

/// One purchase of the current workspace, for the return page.
#[server(endpoint = "load_purchase", output = crate::codec::TextJson)]
pub async fn load_purchase(id: String) -> Result<PurchaseDetail, AppError> {
    let (backend, viewer) = crate::backend::billing_viewer()
        .await
        .map_err(AppError::answer)?;
    backend
        .purchase(&viewer, &id)
        .await
        .map_err(AppError::answer)
}

/// The buyer came back without paying: closes the checkout so it can no longer be paid.
#[server(endpoint = "abandon_checkout", output = crate::codec::TextJson)]
pub async fn abandon_checkout(id: String) -> Result<PurchaseView, AppError> {
    let (backend, viewer) = crate::backend::billing_viewer()
        .await
        .map_err(AppError::answer)?;
    if !viewer.can_manage_billing {
        return Err(AppError::Forbidden.answer());
    }
    backend
        .abandon_checkout(&viewer, &id)
        .await
        .map_err(AppError::answer)
}

/// Saves Auto-reload's settings (billing managers only). Turning it on below the threshold
/// tops up first and saves nothing if that charge fails. Returns a sentence saying what
/// happened.
#[server(endpoint = "save_auto_reload", output = crate::codec::TextJson)]
pub async fn save_auto_reload(
    enabled: Option<String>,
    threshold: String,
    mode: Option<String>,
    target: Option<String>,
    fixed_credits: Option<String>,
    pack_id: Option<String>,
    monthly_cap: String,
    payment_method: Option<String>,
) -> Result<String, AppError> {
    use crate::domain::{AutoReloadSettings, Currency, ReloadAmount, ReloadMode};
    let result = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        // Amounts are typed in the deployment's unit: credits, or money.
        let unit = viewer.unit.clone();
        let credits = |field: &str, text: &str| {
            unit.parse_amount(&text.replace(' ', ""))
                .map_err(|e| AppError::Invalid(format!("{field}: {e}.")))
        };
        // Only the chosen mode's field is read; the form shows no other.
        let mode = match mode.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            None => ReloadMode::Target,
            Some(m) => ReloadMode::parse(m).map_err(|_| {
                AppError::Invalid(
                    "Choose what each reload buys: a target balance, a fixed amount or a pack."
                        .into(),
                )
            })?,
        };
        let amount = match mode {
            ReloadMode::Target => ReloadAmount::Target(credits(
                "Target balance",
                target.as_deref().unwrap_or_default(),
            )?),
            ReloadMode::Fixed => ReloadAmount::Fixed(credits(
                if unit.is_money() {
                    "Amount to buy each time"
                } else {
                    "Credits to buy each time"
                },
                fixed_credits.as_deref().unwrap_or_default(),
            )?),
            ReloadMode::Pack => ReloadAmount::Pack(
                pack_id
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| AppError::Invalid("Choose the pack each reload buys.".into()))?,
            ),
        };
        let settings = AutoReloadSettings {
            enabled: enabled.is_some_and(|v| v == "on" || v == "true"),
            threshold: credits("Threshold", &threshold)?,
            amount,
            monthly_cap: crate::domain::Money::parse_major(&monthly_cap, &Currency::usd())
                .map_err(|e| AppError::Invalid(format!("Monthly cap: {e}.")))?,
        };
        backend
            .save_auto_reload(&viewer, settings, payment_method)
            .await
    }
    .await;
    result.map_err(AppError::answer)
}

/// "Try again" after declined Auto-reload payments (billing managers only): once the
/// back-off after the last decline has passed, lifts the pause and tries the card once more.
#[server(endpoint = "try_again_auto_reload", output = crate::codec::TextJson)]
pub async fn try_again_auto_reload() -> Result<String, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        backend.try_again_auto_reload(&viewer).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Opens the payment page where a billing manager confirms an Auto-reload payment that the
/// bank wanted authenticated.
#[server(endpoint = "confirm_reload", output = crate::codec::TextJson)]
pub async fn confirm_reload() -> Result<CheckoutStarted, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        if !viewer.can_manage_billing {
            return Err(AppError::Forbidden);
        }
        let origin = crate::request::request_origin()?;
        backend.confirm_reload(&viewer, &origin).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Reads the workspace's saved cards from the payment provider again and returns them.
/// Billing managers only.
#[server(endpoint = "refresh_cards", output = crate::codec::TextJson)]
pub async fn refresh_cards() -> Result<Vec<SavedCard>, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        backend.refresh_cards(&viewer).await
    }
    .await;
    result.map_err(AppError::answer)
}
