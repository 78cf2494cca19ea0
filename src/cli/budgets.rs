//! `tally budget …`: budgets below a workspace, as the API's `/api/v1/budgets` sets them.

use super::args;
use super::Context;
use crate::spend::{BudgetChange, Enforcement, NewBudget, Period, Scope, SpendError};
use anyhow::bail;
use app::domain::{Credits, WorkspaceId};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BudgetCommand {
    /// List the workspace's budgets with this period's use.
    List {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
    },
    /// Set a budget: create it, or change the limit of the one on the same target and period.
    Set {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        /// `member`, `api_key` or `project`.
        #[arg(long, value_parser = scope)]
        scope: Scope,
        /// A member's email or external id, an API key's id, or a project's name.
        #[arg(long)]
        target: String,
        /// `day`, `week`, `month` or `lifetime`.
        #[arg(long, value_parser = period)]
        period: Period,
        /// Credits per period (with --action: actions per period).
        #[arg(long, value_parser = args::positive_credits)]
        limit: Credits,
        /// Make it a frequency cap on this action (`video.generate`): count actions, not
        /// credits.
        #[arg(long)]
        action: Option<String>,
        /// Allow charges past the limit and only announce it.
        #[arg(long)]
        soft: bool,
        /// The share of the limit that announces the threshold.
        #[arg(long, default_value_t = 80)]
        threshold_percent: i64,
    },
    /// Remove a budget: charges stop counting against it.
    Remove {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        /// The budget's id (`bud_…`), as `list` shows it.
        #[arg(long)]
        id: String,
    },
}

fn scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).ok_or_else(|| "must be member, api_key or project".to_owned())
}

fn period(text: &str) -> Result<Period, String> {
    Period::parse(text).ok_or_else(|| "must be day, week, month or lifetime".to_owned())
}

/// Runs one `budget` command.
pub(super) async fn budgets(command: BudgetCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        BudgetCommand::List { workspace } => {
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            println!("id\tscope\ttarget\taction\tperiod\tlimit\tenforcement\tused\theld\tresets");
            for b in store.budgets(&workspace, now).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    b.id,
                    b.scope.as_str(),
                    b.label,
                    b.action.as_deref().unwrap_or("-"),
                    b.period.as_str(),
                    b.limit,
                    b.enforcement.as_str(),
                    b.used,
                    b.held,
                    b.resets_at
                        .map(|t| crate::clock::to_datetime(t).to_rfc3339())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        BudgetCommand::Set {
            workspace,
            scope,
            target,
            period,
            limit,
            action,
            soft,
            threshold_percent,
        } => {
            let action = action
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty());
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let target = store
                .budget_target(&workspace, scope, target.trim())
                .await?;
            let enforcement = if soft {
                Enforcement::Soft
            } else {
                Enforcement::Hard
            };
            let new = NewBudget {
                scope,
                target: target.clone(),
                action: action.clone(),
                period,
                limit,
                enforcement,
                threshold_percent,
            };
            let budget = match store.create_budget(&workspace, &new, now).await {
                Err(SpendError::Conflict(_)) => {
                    // One live budget per target and period: setting it again changes it.
                    let existing = store
                        .budgets(&workspace, now)
                        .await?
                        .into_iter()
                        .find(|b| {
                            b.scope == scope
                                && b.target == target
                                && b.period == period
                                && b.action == action
                        })
                        .ok_or_else(|| {
                            anyhow::anyhow!("the budget was removed meanwhile; try again")
                        })?;
                    let change = BudgetChange {
                        limit: Some(limit),
                        enforcement: Some(enforcement),
                        threshold_percent: Some(threshold_percent),
                    };
                    store
                        .update_budget(&workspace, &existing.id, &change, now)
                        .await?
                }
                other => other?,
            };
            eprintln!(
                "{} budget of {} credits per {} on {}.",
                app::format::capitalised(budget.enforcement.as_str()),
                budget.limit,
                budget.period.as_str(),
                budget.label
            );
            println!("{}", budget.id);
        }
        BudgetCommand::Remove { workspace, id } => {
            match store.remove_budget(&workspace, &id, now).await {
                Err(SpendError::NotFound) => bail!("workspace {workspace} has no budget {id}"),
                other => other?,
            }
            println!("Removed {id}.");
        }
    }
    Ok(())
}
