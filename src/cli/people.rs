//! `tally user …`: people and their roles.

use super::{args, Context};
use crate::accounts::{password, Email};
use anyhow::bail;
use app::domain::{Role, WorkspaceId};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a person to a workspace with a role; prints the user id on stdout.
    Add {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        #[arg(long)]
        email: String,
        /// owner, admin, billing_admin, member or guest
        #[arg(long, value_parser = args::role)]
        role: Role,
        /// At least 8 characters. Without it, an existing password is kept, and a new person
        /// gets a generated one, printed on stderr.
        #[arg(long)]
        password: Option<String>,
        /// The one project they work in, as usage calls name it (`""` clears it). Where the
        /// workspace's member view is `pool` and the project has a pool, a member sees only it.
        #[arg(long)]
        project: Option<String>,
    },
    /// List a workspace's people: user id, email, role, the host product's id.
    List {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
    },
    /// Remove a person from a workspace (by email); they can no longer open it.
    Remove {
        #[arg(long, value_parser = args::workspace)]
        workspace: WorkspaceId,
        #[arg(long)]
        email: String,
    },
}

/// Runs one `user` command.
pub(super) async fn people(command: UserCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        UserCommand::Add {
            workspace,
            email,
            role,
            password: given,
            project,
        } => {
            let project = project.map(|p| p.trim().to_owned());
            if project.as_ref().is_some_and(|p| p.chars().count() > 200) {
                bail!("--project: a project's name has at most 200 characters");
            }
            let email = Email::parse(&email)?;
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let existing = store.user_by_email(&email).await?;
            let new_password = match (given, &existing) {
                (Some(p), _) => Some(p),
                (None, Some(_)) => None,
                (None, None) => {
                    let generated = crate::accounts::tokens::new_secret("")[..20].to_owned();
                    eprintln!("Password for {email}: {generated}");
                    Some(generated)
                }
            };
            let hash = match new_password {
                Some(p) => Some(password::hash(p).await?),
                None => None,
            };
            let user_id = store.upsert_user(&email, hash.as_deref(), now).await?;
            store
                .set_membership(&workspace, &user_id, role, now)
                .await?;
            if let Some(project) = &project {
                let project = Some(project.as_str()).filter(|p| !p.is_empty());
                store
                    .set_member_project(&workspace, &user_id, project)
                    .await?;
            }
            eprintln!(
                "{email} is now {} in {workspace}.",
                role.label().to_lowercase()
            );
            println!("{user_id}");
        }
        UserCommand::List { workspace } => {
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            println!("user\temail\trole\texternal id\tproject");
            for m in store.members(&workspace).await? {
                let external = m.external_id.as_deref().unwrap_or("-");
                let project = m.project.as_deref().unwrap_or("-");
                println!(
                    "{}\t{}\t{}\t{external}\t{project}",
                    m.user_id, m.email, m.role
                );
            }
        }
        UserCommand::Remove { workspace, email } => {
            let email = Email::parse(&email)?;
            let Some(user) = store.user_by_email(&email).await? else {
                bail!("nobody has the email {email}");
            };
            if !store.remove_member(&workspace, &user.id).await? {
                bail!("{email} is not a member of {workspace}");
            }
            eprintln!("{email} no longer belongs to {workspace}.");
        }
    }
    Ok(())
}
