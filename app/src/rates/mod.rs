//! The Rates page: what each model's work costs in credits.

use crate::billing::Viewer;
use crate::domain::Rate;
use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The Rates page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesView {
    pub viewer: Viewer,
    pub rates: Vec<Rate>,
}

/// The rate table, for everyone who may open Billing.
#[server(output = crate::codec::TextJson)]
pub async fn load_rates() -> Result<RatesView, AppError> {
    let view = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        Ok(RatesView {
            rates: backend.rates().await?,
            viewer,
        })
    };
    view.await.map_err(AppError::answer)
}
