//! The operator command line (API.md): one binary, `tally`. A file per group of commands:
//! [`operations`] (serve, migrate, audit, demo), [`workspaces`] (and API keys), [`people`],
//! [`catalog`] (packs, plans, rates), [`grants`], [`budgets`] and [`pools`].

mod args;
mod budgets;
mod catalog;
mod grants;
mod operations;
mod people;
mod pools;
mod workspaces;

pub use budgets::BudgetCommand;
pub use catalog::{PackCommand, PlanCommand, RateCommand};
pub use grants::GrantArgs;
pub use people::UserCommand;
pub use pools::PoolCommand;
pub use workspaces::{ApiKeyCommand, WorkspaceCommand};

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::Config;
use crate::db::Store;
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::sync::Arc;

// No Debug: the command line can carry a password (`user add --password`).
#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Prepaid AI credits: ledger, Billing page and credit gate"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run migrations if needed, then serve the site, API and webhooks (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Create (or refresh) the demo workspace "Acme AI"; print its logins and a new API key.
    Demo,
    /// Re-derive every workspace's balance from its journal and report any drift (exit 1).
    Audit,
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage people.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(name = "api-key", subcommand)]
    ApiKey(ApiKeyCommand),
    /// Show or change what AI work costs.
    #[command(subcommand)]
    Rate(RateCommand),
    /// Show or change the credit packs on sale.
    #[command(subcommand)]
    Pack(PackCommand),
    /// Subscription plans and the credits they include.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Grant free or promotional credits to a workspace.
    Grant(GrantArgs),
    /// Budgets below a workspace: per member, API key or project.
    #[command(subcommand)]
    Budget(BudgetCommand),
    /// Earmarked pools: credits of a workspace's balance kept for one project or API key.
    #[command(subcommand)]
    Pool(PoolCommand),
}

/// What every command works with.
pub(crate) struct Context {
    pub store: Store,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub now: Millis,
}

/// Runs one command. Output for scripts goes to stdout; messages for people to stderr.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&config).await?;
    let now = clock.now_ms();
    let ctx = Context {
        store,
        config,
        clock,
        now,
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => operations::serve(ctx).await,
        Command::Migrate => {
            eprintln!("The database schema is up to date.");
            Ok(())
        }
        Command::Audit => operations::audit(&ctx).await,
        Command::Demo => operations::demo(&ctx).await,
        Command::Workspace(command) => workspaces::workspaces(command, &ctx).await,
        Command::ApiKey(command) => workspaces::api_keys(command, &ctx).await,
        Command::Budget(command) => budgets::budgets(command, &ctx).await,
        Command::Pool(command) => pools::pools(command, &ctx).await,
        Command::User(command) => people::people(command, &ctx).await,
        Command::Pack(command) => catalog::packs(command, &ctx).await,
        Command::Plan(command) => catalog::plans(command, &ctx).await,
        Command::Rate(command) => catalog::rates(command, &ctx).await,
        Command::Grant(args) => grants::grant(args, &ctx).await,
    }
}

pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, &config.store)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact(&config.database_url)
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

/// Hides a password in a database URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// An error and its causes on one line, without the repeats that arise when a cause's text
/// is already part of the error's own message.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_never_printed() {
        assert_eq!(
            redact("postgres://tally:secret@db:5432/tally"),
            "postgres://tally:***@db:5432/tally"
        );
        assert_eq!(redact("sqlite://data/tally.db"), "sqlite://data/tally.db");
        assert_eq!(
            redact("postgres://postgres@db/tally"),
            "postgres://postgres@db/tally"
        );
    }

    #[test]
    fn error_chains_print_on_one_line_without_repeats() {
        let err = anyhow::anyhow!("connection refused").context("cannot open the database");
        assert_eq!(
            one_line(&err),
            "cannot open the database: connection refused"
        );
        let repeated = anyhow::anyhow!("x does not exist")
            .context("error returned from database: x does not exist");
        assert_eq!(
            one_line(&repeated),
            "error returned from database: x does not exist"
        );
    }
}
