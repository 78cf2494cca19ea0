use super::{BillingOverview, HistoryPage};
use crate::error::AppError;
use leptos::prelude::*;

/// How many movements the Credits card lists.
pub const RECENT_MOVEMENTS: u32 = 5;
/// Rows per page of the full history.
pub const HISTORY_PAGE_SIZE: u32 = 25;

/// The Billing page of the signed-in person's current workspace.
#[server(output = crate::codec::TextJson)]
pub async fn load_billing(usage_by: Option<String>) -> Result<BillingOverview, AppError> {
    let overview = async {
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        let by = crate::billing::UsageBreakdown::from_query(usage_by.as_deref());
        backend.billing_overview(viewer, RECENT_MOVEMENTS, by).await
    };
    overview.await.map_err(AppError::answer)
}

/// One page of the current workspace's history, filtered by type and dates.
#[server(output = crate::codec::TextJson)]
pub async fn load_history(
    entry_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
) -> Result<HistoryPage, AppError> {
    let page = async {
        let filter =
            super::HistoryFilter::from_query(entry_type.as_deref(), from.as_deref(), to.as_deref())
                .map_err(AppError::Invalid)?;
        let (backend, viewer) = crate::backend::billing_viewer().await?;
        if viewer.pool.is_some() {
            return Err(AppError::PoolOnly);
        }
        let (transactions, next_cursor) = backend
            .history(
                &viewer.workspace.id,
                &filter,
                cursor.as_deref().filter(|c| !c.is_empty()),
                HISTORY_PAGE_SIZE,
            )
            .await?;
        Ok(HistoryPage {
            viewer,
            transactions,
            next_cursor,
        })
    };
    page.await.map_err(AppError::answer)
}
