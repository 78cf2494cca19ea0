use super::{ActionResult, StudioView};
use crate::error::AppError;
use leptos::prelude::*;

/// The Studio: models to pick from and, for everyone but guests (who see nothing of
/// billing), the balance.
#[server(output = crate::codec::TextJson)]
pub async fn load_studio() -> Result<StudioView, AppError> {
    let view = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let rates = backend.rates().await?;
        let balance = if viewer.role.can_view_billing() {
            Some(backend.credits(&viewer, 0).await?.balance)
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
#[server(output = crate::codec::TextJson)]
pub async fn run_action(model: String, units: String) -> Result<ActionResult, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let units: i64 = units
            .trim()
            .parse()
            .ok()
            .filter(|u| *u > 0)
            .ok_or_else(|| {
                AppError::Invalid("Enter a size above zero, as a whole number.".into())
            })?;
        backend.run_action(&viewer, model.trim(), units).await
    };
    result.await.map_err(AppError::answer)
}

/// A member asks the billing managers for credits; false when they already asked this hour.
#[server(output = crate::codec::TextJson)]
pub async fn ask_admin() -> Result<bool, AppError> {
    let asked = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.request_credits(&viewer).await
    };
    asked.await.map_err(AppError::answer)
}
