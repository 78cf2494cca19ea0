use super::BudgetsPage;
use crate::billing::BudgetLine;
use crate::error::AppError;
use leptos::prelude::*;

/// The workspace's budgets and what a new one can be on. Billing managers only.
#[server(endpoint = "load_budgets", output = crate::codec::TextJson)]
pub async fn load_budgets() -> Result<BudgetsPage, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.budgets(&viewer).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Adds a budget, or with an `action` a frequency cap. Billing managers only.
#[server(endpoint = "add_budget", output = crate::codec::TextJson)]
pub async fn add_budget(
    scope: String,
    target: String,
    period: String,
    limit: String,
    enforcement: String,
    action: Option<String>,
) -> Result<BudgetLine, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let form = super::BudgetForm {
            scope,
            target,
            period,
            limit,
            enforcement,
            action,
        };
        backend.add_budget(&viewer, &form).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Changes a budget's limit and enforcement. Billing managers only.
#[server(endpoint = "change_budget", output = crate::codec::TextJson)]
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
#[server(endpoint = "remove_budget", output = crate::codec::TextJson)]
pub async fn remove_budget(id: String) -> Result<String, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.remove_budget(&viewer, &id).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Carves credits of the balance out for a project or an API key. Billing managers only.
#[server(endpoint = "add_pool", output = crate::codec::TextJson)]
pub async fn add_pool(
    scope: String,
    target: String,
    credits: String,
    overflow: Option<String>,
) -> Result<super::PoolLine, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let form = super::PoolForm {
            scope,
            target,
            credits,
            overflow: overflow.is_some_and(|v| v == "on" || v == "true"),
        };
        backend.add_pool(&viewer, &form).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Changes what a pool keeps and whether its scope goes on with the shared balance after it.
/// Billing managers only.
#[server(endpoint = "change_pool", output = crate::codec::TextJson)]
pub async fn change_pool(
    id: String,
    credits: String,
    overflow: Option<String>,
) -> Result<super::PoolLine, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        let overflow = overflow.is_some_and(|v| v == "on" || v == "true");
        backend.change_pool(&viewer, &id, &credits, overflow).await
    }
    .await;
    result.map_err(AppError::answer)
}

/// Removes a pool: what it kept goes back to the shared balance. Billing managers only.
#[server(endpoint = "remove_pool", output = crate::codec::TextJson)]
pub async fn remove_pool(id: String) -> Result<String, AppError> {
    let result = async {
        let (backend, viewer) = crate::backend::current_viewer().await?;
        backend.remove_pool(&viewer, &id).await
    }
    .await;
    result.map_err(AppError::answer)
}
