//! `tally grant …`: free and promotional credits from an operator.

use super::{args, Context};
use app::domain::{Credits, WorkspaceId};
use clap::Args;

/// Grant free or promotional credits to a workspace.
#[derive(Args)]
pub struct GrantArgs {
    #[arg(long, value_parser = args::workspace)]
    workspace: WorkspaceId,
    /// free or promotional
    #[arg(long)]
    kind: String,
    #[arg(long, value_parser = args::positive_credits)]
    credits: Credits,
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
