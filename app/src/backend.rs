//! The backend: what server functions need from the server, provided as context by the
//! `tally` binary.
//!
//! `app` compiles to wasm too, so it cannot link the database or Stripe; the server
//! implements [`Backend`] and puts a [`BackendHandle`] into every request's context.

use crate::api_keys::{ApiKeyView, NewApiKey};
use crate::billing::UsageBreakdown;
use crate::billing::{CreditsView, HistoryFilter, Transaction, Viewer};
use crate::domain::Rate;
use crate::domain::WorkspaceId;
use crate::error::AppError;
use crate::notifications::NotificationView;
use crate::purchases::{
    CheckoutStarted, PurchaseChoice, PurchaseDetail, PurchaseSection, PurchaseView, SavedCard,
};
use crate::studio::ActionResult;
use leptos::prelude::*;
use std::sync::Arc;

/// The server's side of the Billing page.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The person behind a session token, in the workspace the session looks at; `None` when
    /// the token is unknown, expired, or the membership is gone.
    async fn viewer(&self, session_token: &str) -> Result<Option<Viewer>, AppError>;

    /// The Credits card: balance, buckets, Auto-reload and the `limit` newest movements (the
    /// card Auto-reload charges only for billing managers). Guests are refused.
    async fn credits(&self, viewer: &Viewer, limit: u32) -> Result<CreditsView, AppError>;

    /// The Billing page's figures for `viewer`: the Credits card with the `limit` newest
    /// movements, and (unless they see only their project's pool) the usage chart broken
    /// down `by` and the workspace's subscription plan, all read at once.
    async fn billing_overview(
        &self,
        viewer: Viewer,
        limit: u32,
        by: UsageBreakdown,
    ) -> Result<crate::billing::BillingOverview, AppError>;

    /// One page of history, newest first, and the cursor of the next page.
    async fn history(
        &self,
        workspace: &WorkspaceId,
        filter: &HistoryFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Transaction>, Option<String>), AppError>;

    /// Every model's rate.
    async fn rates(&self) -> Result<Vec<Rate>, AppError>;

    /// Runs a simulated AI action of `units` on `model` through the credit gate.
    async fn run_action(
        &self,
        viewer: &Viewer,
        model: &str,
        units: i64,
    ) -> Result<ActionResult, AppError>;

    /// Asks the workspace's billing managers for credits; false if asked within the hour.
    async fn request_credits(&self, viewer: &Viewer) -> Result<bool, AppError>;

    /// The workspace's notification endpoint and its latest deliveries.
    async fn notification_endpoint(
        &self,
        viewer: &Viewer,
    ) -> Result<crate::notifications::EndpointView, AppError>;

    /// Sets (`Some`) or removes (`None`) the workspace's notification endpoint; the caller has
    /// checked that the viewer may.
    async fn save_notification_endpoint(
        &self,
        viewer: &Viewer,
        url: Option<String>,
    ) -> Result<crate::notifications::EndpointSaved, AppError>;

    /// The newest notifications this person may see.
    async fn notifications(&self, viewer: &Viewer) -> Result<Vec<NotificationView>, AppError>;

    /// The terms a custom amount is bought on in this deployment.
    fn custom_terms(&self) -> crate::domain::CustomAmountTerms;

    /// The Buy credits section for this person: for billing managers with the saved cards and
    /// purchases, for everyone else the catalog alone.
    async fn purchase_section(&self, viewer: &Viewer) -> Result<PurchaseSection, AppError>;

    /// Opens a checkout; `origin` is the site's scheme and host, for the return links.
    /// The caller has checked that the viewer may buy.
    async fn start_checkout(
        &self,
        viewer: &Viewer,
        choice: PurchaseChoice,
        origin: &str,
    ) -> Result<CheckoutStarted, AppError>;

    /// One purchase of the viewer's workspace, for billing managers (another workspace's is
    /// not found).
    async fn purchase(&self, viewer: &Viewer, id: &str) -> Result<PurchaseDetail, AppError>;

    /// Saves Auto-reload's settings and the saved card it charges (`None`: the card in use,
    /// else the default); the caller has checked that the viewer may. Returns a sentence
    /// saying what happened.
    async fn save_auto_reload(
        &self,
        viewer: &Viewer,
        settings: crate::domain::AutoReloadSettings,
        card: Option<String>,
    ) -> Result<String, AppError>;

    /// Opens a checkout to confirm a reload the bank wanted authenticated.
    async fn confirm_reload(
        &self,
        viewer: &Viewer,
        origin: &str,
    ) -> Result<CheckoutStarted, AppError>;

    /// "Try again" after declined reloads, once the back-off allows; returns a sentence.
    async fn try_again_auto_reload(&self, viewer: &Viewer) -> Result<String, AppError>;

    /// Closes an unpaid checkout of the viewer's workspace.
    async fn abandon_checkout(&self, viewer: &Viewer, id: &str) -> Result<PurchaseView, AppError>;

    /// Reads the workspace's saved cards from the payment provider again (page views show
    /// the stored copy). Billing managers only.
    async fn refresh_cards(&self, viewer: &Viewer) -> Result<Vec<SavedCard>, AppError>;

    /// The workspace's API keys, newest first. Owners only.
    async fn api_keys(&self, viewer: &Viewer) -> Result<Vec<ApiKeyView>, AppError>;

    /// Makes an API key; its secret is in the answer only. Owners only.
    async fn create_api_key(&self, viewer: &Viewer, name: &str) -> Result<NewApiKey, AppError>;

    /// Revokes one of the workspace's keys (at once, everywhere). Owners only.
    async fn revoke_api_key(&self, viewer: &Viewer, id: &str) -> Result<ApiKeyView, AppError>;

    /// The Budgets page's data. Billing managers only.
    async fn budgets(&self, viewer: &Viewer) -> Result<crate::budgets::BudgetsPage, AppError>;

    /// Adds a budget. Billing managers only.
    async fn add_budget(
        &self,
        viewer: &Viewer,
        form: &crate::budgets::BudgetForm,
    ) -> Result<crate::billing::BudgetLine, AppError>;

    /// Changes a budget's limit and enforcement. Billing managers only.
    async fn change_budget(
        &self,
        viewer: &Viewer,
        id: &str,
        limit: &str,
        enforcement: &str,
    ) -> Result<crate::billing::BudgetLine, AppError>;

    /// Removes a budget; returns what it was on. Billing managers only.
    async fn remove_budget(&self, viewer: &Viewer, id: &str) -> Result<String, AppError>;

    /// Carves a pool out of the balance for a project or an API key. Billing managers only.
    async fn add_pool(
        &self,
        viewer: &Viewer,
        form: &crate::budgets::PoolForm,
    ) -> Result<crate::budgets::PoolLine, AppError>;

    /// Sets what a pool keeps and whether it overflows. Billing managers only.
    async fn change_pool(
        &self,
        viewer: &Viewer,
        id: &str,
        credits: &str,
        overflow: bool,
    ) -> Result<crate::budgets::PoolLine, AppError>;

    /// Removes a pool (its credits go back to the shared balance); returns what it was for.
    /// Billing managers only.
    async fn remove_pool(&self, viewer: &Viewer, id: &str) -> Result<String, AppError>;
}

/// The backend, as context.
#[derive(Clone)]
pub struct BackendHandle(pub Arc<dyn Backend>);

/// Who a page request is from, as the server's page guard resolved it before the page
/// rendered (in the request's extensions); the page's server functions read it instead of
/// looking the session up again.
#[derive(Clone, Debug)]
pub struct SignedIn(pub Option<Viewer>);

/// The backend and the signed-in person of the current request.
pub async fn current_viewer() -> Result<(Arc<dyn Backend>, Viewer), AppError> {
    let backend = use_context::<BackendHandle>().ok_or(AppError::Internal)?.0;
    let parts = use_context::<http::request::Parts>().ok_or(AppError::Internal)?;
    if let Some(SignedIn(resolved)) = parts.extensions.get::<SignedIn>() {
        let viewer = resolved.clone().ok_or(AppError::Unauthenticated)?;
        return Ok((backend, viewer));
    }
    let token = crate::request::read_cookie(&parts.headers, crate::request::SESSION_COOKIE)
        .ok_or(AppError::Unauthenticated)?;
    let viewer = backend
        .viewer(&token)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    Ok((backend, viewer))
}

/// Like [`current_viewer`], for the Billing pages, which guests may not open.
pub async fn billing_viewer() -> Result<(Arc<dyn Backend>, Viewer), AppError> {
    let (backend, viewer) = current_viewer().await?;
    if !viewer.role.can_view_billing() {
        return Err(AppError::Forbidden);
    }
    Ok((backend, viewer))
}
