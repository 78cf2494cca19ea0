//! `tally pool …`: earmarked pools, as the API's `/api/v1/pools` carves them.

use super::args;
use super::Context;
use crate::ledger::NewPool;
use crate::spend::{Scope, SpendError};
use anyhow::bail;
use app::domain::{Credits, WorkspaceId};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum PoolCommand {
    /// List the workspace's pools with what each has left.
    List {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
    },
    /// Carve credits out of the balance for one project or API key, or change the claim of
    /// the pool it has.
    Set {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        /// `project` or `api_key`.
        #[arg(long, value_parser = scope)]
        scope: Scope,
        /// The project's name, or the API key's id.
        #[arg(long)]
        target: String,
        /// Credits the pool keeps for its scope.
        #[arg(long, value_parser = args::credits)]
        credits: Credits,
        /// Once the pool is spent, let its scope go on with the shared balance.
        #[arg(long)]
        overflow: bool,
    },
    /// Remove a pool: what it kept goes back to the shared balance.
    Remove {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        /// The pool's id (`pool_…`), as `list` shows it.
        #[arg(long)]
        id: String,
    },
}

fn scope(text: &str) -> Result<Scope, String> {
    match Scope::parse(text) {
        Some(scope @ (Scope::Project | Scope::ApiKey)) => Ok(scope),
        _ => Err("must be project or api_key".to_owned()),
    }
}

/// Runs one `pool` command.
pub(super) async fn pools(command: PoolCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        PoolCommand::List { workspace } => {
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            println!("id\tscope\ttarget\tremaining\toverflow");
            for p in store.pools(&workspace).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    p.id,
                    p.scope.as_str(),
                    p.label,
                    p.remaining,
                    if p.overflow { "yes" } else { "no" }
                );
            }
        }
        PoolCommand::Set {
            workspace,
            scope,
            target,
            credits,
            overflow,
        } => {
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let target = store
                .budget_target(&workspace, scope, target.trim())
                .await?;
            let existing = store
                .pools(&workspace)
                .await?
                .into_iter()
                .find(|p| p.scope == scope && p.target == target);
            let pool = match existing {
                // One pool per project or key: setting it again changes its claim.
                Some(pool) => {
                    store
                        .change_pool(&workspace, &pool.id, Some(credits), Some(overflow), now)
                        .await?
                }
                None => {
                    let new = NewPool {
                        scope,
                        target,
                        credits: Credits::positive(credits.get())
                            .map_err(|e| anyhow::anyhow!("credits: {e}"))?,
                        overflow,
                    };
                    store.create_pool(&workspace, &new, now).await?
                }
            };
            eprintln!("Pool of {} credits for {}.", pool.remaining, pool.label);
            println!("{}", pool.id);
        }
        PoolCommand::Remove { workspace, id } => {
            match store.remove_pool(&workspace, &id, now).await {
                Err(SpendError::NotFound) => bail!("workspace {workspace} has no pool {id}"),
                other => other?,
            }
            println!("Removed {id}.");
        }
    }
    Ok(())
}
