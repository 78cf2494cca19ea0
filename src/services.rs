//! The server's implementation of what the UI's server functions need.

use crate::billing::{self, ReadError};
use crate::clock::Clock;
use crate::store::{Store, StoreError};
use app::billing::{CreditsView, HistoryFilter, Transaction, Viewer, WorkspaceChoice};
use app::domain::WorkspaceId;
use app::error::AppError;
use app::services::Services;
use std::sync::Arc;

/// The ledger and accounts, behind the UI's [`Services`] trait.
#[derive(Clone, Debug)]
pub struct TallyServices {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

fn internal(err: impl std::fmt::Display) -> AppError {
    tracing::error!(error = %err, "server function failed");
    AppError::Internal
}

impl From<ReadError> for AppError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::Cursor(err) => AppError::Invalid(err.to_string()),
            ReadError::Ledger(err) => internal(err),
        }
    }
}

impl TallyServices {
    async fn workspace(
        &self,
        id: &WorkspaceId,
    ) -> Result<crate::accounts::WorkspaceRecord, AppError> {
        self.store
            .workspace(id)
            .await
            .map_err(internal)?
            .ok_or(AppError::NotFound)
    }
}

#[async_trait::async_trait]
impl Services for TallyServices {
    async fn viewer(&self, session_token: &str) -> Result<Option<Viewer>, AppError> {
        let now = self.clock.now_ms();
        let Some(session) = self
            .store
            .session(session_token, now)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        let memberships = self
            .store
            .memberships(&session.user_id)
            .await
            .map_err(internal)?;
        let Some(current) = memberships
            .iter()
            .find(|m| m.workspace.id == session.workspace_id)
            .cloned()
        else {
            // The membership was removed since the session began.
            return Ok(None);
        };
        let choice = |m: &crate::accounts::Membership| WorkspaceChoice {
            id: m.workspace.id.clone(),
            name: m.workspace.name.clone(),
            role: m.role,
        };
        Ok(Some(Viewer {
            email: session.email,
            role: current.role,
            workspace: choice(&current),
            workspaces: memberships.iter().map(choice).collect(),
            can_manage_billing: current
                .role
                .can_manage_billing(current.workspace.billing_managers),
            who_can_buy: current.workspace.billing_managers.who_can_buy().to_owned(),
        }))
    }

    async fn credits(&self, workspace: &WorkspaceId, limit: u32) -> Result<CreditsView, AppError> {
        let record = self.workspace(workspace).await?;
        Ok(billing::credits_view(&self.store, &record, self.clock.now_ms(), limit, None).await?)
    }

    async fn history(
        &self,
        workspace: &WorkspaceId,
        filter: &HistoryFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Transaction>, Option<String>), AppError> {
        let record = self.workspace(workspace).await?;
        Ok(billing::history(&self.store, &record, filter, cursor, limit).await?)
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        internal(err)
    }
}
