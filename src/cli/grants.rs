//! `tally grant …`: free and promotional credits from an operator.

use super::{workspace_id, Context};
use anyhow::Context as _;
use app::domain::Credits;
use clap::Args;

/// Grant free or promotional credits to a workspace.
#[derive(Args)]
pub struct GrantArgs {
    #[arg(long)]
    workspace: String,
    /// free or promotional
    #[arg(long)]
    kind: String,
    #[arg(long)]
    credits: String,
    /// When the credits lapse, RFC 3339 (e.g. 2026-12-31T23:59:59Z).
    #[arg(long)]
    expires: Option<String>,
    #[arg(long)]
    note: Option<String>,
}

/// Grants the credits; prints the journal entry's id.
pub(super) async fn grant(args: GrantArgs, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    let GrantArgs {
        workspace,
        kind,
        credits,
        expires,
        note,
    } = args;
    let workspace = workspace_id(&workspace)?;
    let credits = Credits::parse(&credits)
        .ok()
        .filter(|c| !c.is_zero())
        .context("--credits must be a whole number above zero")?;
    let request = crate::grants::GrantRequest::parse(
        &kind,
        credits.get(),
        expires.as_deref(),
        note.as_deref(),
        None,
        now,
    )
    .map_err(|e| anyhow::anyhow!("--{}", e.0.replace("expires_at", "expires")))?;
    let granted = crate::grants::operator_grant(store, &workspace, &request, "operator", now)
        .await
        .map_err(|e| match e {
            crate::ledger::LedgerError::UnknownWorkspace => {
                anyhow::anyhow!("no workspace {workspace}")
            }
            other => anyhow::Error::new(other),
        })?;
    let available = store.summary(&workspace, now).await?.available;
    eprintln!(
        "Granted {credits} {} credits; the balance is now {}.",
        granted.kind.as_str(),
        Credits::new(available).unwrap_or_default()
    );
    println!("{}", granted.entry_id);
    Ok(())
}
