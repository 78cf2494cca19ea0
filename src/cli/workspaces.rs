//! `tally workspace …` and `tally api-key …`: workspaces, their settings, their notification
//! endpoint and their API keys.

use super::{args, Context};
use anyhow::bail;
use app::domain::{BillingManagers, Credits, MemberView, WorkspaceId};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace; prints its id alone on stdout.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List every workspace: id, name, billing managers, Low Balance line.
    List,
    /// Rename a workspace.
    Rename {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        #[arg(long)]
        name: String,
    },
    /// Change who may buy credits and where the Low Balance line is.
    Settings {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        /// admins (owner, admins, billing admins) or owner_only
        #[arg(long, value_parser = args::billing_managers)]
        billing_managers: Option<BillingManagers>,
        /// The Low Balance badge and alert show at or below this many credits.
        #[arg(long, value_parser = args::credits)]
        low_balance_threshold: Option<Credits>,
        /// What a member who works in one pooled project sees: balance (the workspace's) or
        /// pool (only that pool's figures).
        #[arg(long, value_parser = args::member_view)]
        member_view: Option<MemberView>,
    },
    /// Send the workspace's notifications to an HTTPS endpoint as signed webhooks; prints the
    /// signing secret once. `--remove` stops the deliveries.
    Webhook {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        #[arg(long, required_unless_present = "remove")]
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; prints the secret once, alone on stdout.
    Create {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        #[arg(long, default_value = "API key")]
        name: String,
    },
    /// List the workspace's API keys (never their secrets), newest first.
    List {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
    },
    /// Revoke an API key.
    Revoke {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        /// The key's id (`key_…`), as `list` shows it.
        #[arg(long)]
        id: String,
    },
}

/// Runs one `workspace` command.
pub(super) async fn workspaces(command: WorkspaceCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, config, now) = (&ctx.store, &ctx.config, ctx.now);
    match command {
        WorkspaceCommand::Create { name } => {
            let id = store.create_workspace(&name, now).await?;
            println!("{id}");
        }
        WorkspaceCommand::List => {
            println!("id\tname\tbilling managers\tlow balance at");
            let mut after = None;
            loop {
                let (page, more) = store.workspaces_page(after.as_ref(), 100).await?;
                for w in &page {
                    println!(
                        "{}\t{}\t{}\t{}",
                        w.id,
                        w.name,
                        w.billing_managers.as_str(),
                        w.low_balance_threshold
                    );
                }
                after = page.last().map(|w| w.id.clone());
                if !more {
                    break;
                }
            }
        }
        WorkspaceCommand::Rename { workspace, name } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                bail!("a workspace name has 1 to 100 characters");
            }
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            store.rename_workspace(&workspace, name).await?;
            eprintln!("{workspace} is now called {name}.");
        }
        WorkspaceCommand::Webhook {
            workspace,
            url,
            remove,
        } => {
            let id = workspace;
            if store.workspace(&id).await?.is_none() {
                bail!("no workspace {id}");
            }
            if remove {
                store.remove_webhook_endpoint(&id).await?;
                eprintln!("Notifications of {id} are no longer sent to an endpoint.");
            } else {
                let url = config
                    .outbound
                    .policy
                    .check_endpoint(url.as_deref().unwrap_or_default())
                    .await
                    .map_err(|e| anyhow::anyhow!("--url: {e}"))?;
                let endpoint = store.set_webhook_endpoint(&id, url.as_str(), now).await?;
                eprintln!(
                    "Notifications of {id} go to {url}. Verify Tally-Signature with this secret (shown once):"
                );
                println!("{}", endpoint.secret);
            }
        }
        WorkspaceCommand::Settings {
            workspace,
            billing_managers,
            low_balance_threshold,
            member_view,
        } => {
            let id = workspace;
            let Some(current) = store.workspace(&id).await? else {
                bail!("no workspace {id}")
            };
            let policy = billing_managers.unwrap_or(current.billing_managers);
            let view = member_view.unwrap_or(current.member_view);
            let threshold =
                low_balance_threshold.map_or(current.low_balance_threshold, Credits::get);
            store
                .update_workspace_settings(&id, threshold, policy, view)
                .await?;
            eprintln!(
                "{}: billing managers {}, Low Balance at or below {} credits, members in a pooled project see {view}.",
                current.name,
                policy,
                Credits::new(threshold).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Runs one `api-key` command.
pub(super) async fn api_keys(command: ApiKeyCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        ApiKeyCommand::Create { workspace, name } => {
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let (key, secret) = store.create_named_api_key(&workspace, &name, now).await?;
            eprintln!(
                "Keep this key safe: it is shown only once. Its id is {}.",
                key.id
            );
            println!("{secret}");
        }
        ApiKeyCommand::List { workspace } => {
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let when = |at: Option<i64>| {
                at.map(|t| crate::clock::to_datetime(t).to_rfc3339())
                    .unwrap_or_else(|| "-".into())
            };
            println!("id\tname\tcreated\tlast used\trevoked");
            for key in store.api_keys(&workspace).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.name,
                    when(Some(key.created_at)),
                    when(key.last_used_at),
                    when(key.revoked_at)
                );
            }
        }
        ApiKeyCommand::Revoke { workspace, id } => {
            let Some((key, _)) = store.revoke_api_key(&workspace, &id, now).await? else {
                bail!("workspace {workspace} has no API key {id}");
            };
            println!("Revoked {} ({}).", key.id, key.name);
        }
    }
    Ok(())
}
