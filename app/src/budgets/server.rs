use super::BudgetsPage;
use crate::billing::BudgetLine;
use crate::error::AppError;
use leptos::prelude::*;

/// The workspace's budgets and what a new one can be on. Billing managers only.
#[server(endpoint = "load_budgets")]
pub async fn load_budgets() -> Result<BudgetsPage, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.budgets(&viewer).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Adds a budget. Billing managers only.
#[server(endpoint = "add_budget")]
pub async fn add_budget(
    scope: String,
    target: String,
    period: String,
    limit: String,
    enforcement: String,
) -> Result<BudgetLine, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let form = super::BudgetForm {
            scope,
            target,
            period,
            limit,
            enforcement,
        };
        backend.add_budget(&viewer, &form).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Changes a budget's limit and enforcement. Billing managers only.
#[server(endpoint = "change_budget")]
pub async fn change_budget(
    id: String,
    limit: String,
    enforcement: String,
) -> Result<BudgetLine, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend
            .change_budget(&viewer, &id, &limit, &enforcement)
            .await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Removes a budget; charges stop counting against it. Billing managers only.
#[server(endpoint = "remove_budget")]
pub async fn remove_budget(id: String) -> Result<String, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.remove_budget(&viewer, &id).await
    }
    .await;
    result.map_err(AppError::answer)
}
