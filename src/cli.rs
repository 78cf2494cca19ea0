//! The operator command line (API.md): one binary, `tally`.

use crate::accounts::{password, Email};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::Store;
use crate::startup::Application;
use anyhow::{bail, Context};
use app::domain::{Credits, Role, WorkspaceId};
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
    Grant {
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
    },
}

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace; prints its id alone on stdout.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Change who may buy credits and where the Low Balance line is.
    Settings {
        #[arg(long)]
        workspace: String,
        /// admins (owner, admins, billing admins) or owner_only
        #[arg(long)]
        billing_managers: Option<String>,
        /// The Low Balance badge and alert show at or below this many credits.
        #[arg(long)]
        low_balance_threshold: Option<String>,
    },
    /// Send the workspace's notifications to an HTTPS endpoint as signed webhooks; prints the
    /// signing secret once. `--remove` stops the deliveries.
    Webhook {
        #[arg(long)]
        workspace: String,
        #[arg(long, required_unless_present = "remove")]
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        remove: bool,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a person to a workspace with a role; prints the user id on stdout.
    Add {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        email: String,
        /// owner, admin, billing_admin, member or guest
        #[arg(long)]
        role: String,
        /// At least 8 characters. Without it, an existing password is kept, and a new person
        /// gets a generated one, printed on stderr.
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum PackCommand {
    /// List the packs on sale.
    List,
    /// Create or change a pack.
    Set {
        /// A short id such as pack_team.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        credits: String,
        /// The price in the currency's major unit, e.g. 22.50.
        #[arg(long)]
        price: String,
        #[arg(long, default_value = "usd")]
        currency: String,
        /// Extra credits while a promotion runs.
        #[arg(long)]
        bonus: Option<String>,
        /// When the promotion starts and ends, RFC 3339.
        #[arg(long)]
        bonus_from: Option<String>,
        #[arg(long)]
        bonus_until: Option<String>,
        /// Place in the catalog (smallest first).
        #[arg(long, default_value_t = 0)]
        order: i64,
        /// Take the pack off sale (purchases already made are kept).
        #[arg(long)]
        inactive: bool,
    },
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// List the plans.
    List,
    /// Create or change a plan. Stripe prices name it in their `tally_plan` metadata (or
    /// use its id as their lookup key).
    Set {
        /// The id Stripe prices name, such as team.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Credits per paid seat per month (annual invoices grant twelve months' worth).
        #[arg(long)]
        credits_per_seat: String,
        /// Credits roll over instead of expiring at the end of their period.
        #[arg(long)]
        rollover: bool,
    },
}

/// Parses a price such as `22.50` in `currency` into minor units, above zero.
fn parse_price(text: &str, currency: &app::domain::Currency) -> anyhow::Result<i64> {
    let price = app::domain::Money::parse_major(text, currency)
        .map_err(|e| anyhow::anyhow!("--price: {e}"))?;
    if price.amount_minor() == 0 {
        bail!("--price must be above zero");
    }
    Ok(price.amount_minor())
}

fn parse_time(flag: &str, text: Option<String>) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(t.trim())
            .map(|d| d.timestamp_millis())
            .with_context(|| format!("{flag} is a time such as 2026-12-31T23:59:59Z"))
    })
    .transpose()
}

#[derive(Subcommand)]
pub enum RateCommand {
    /// List every model's rate.
    List,
    /// Create or change a model's rate.
    Set {
        #[arg(long)]
        model: String,
        /// text (priced per 1,000 tokens), image (per image) or video (per second)
        #[arg(long)]
        modality: String,
        /// Credits per rate unit, up to three decimals, e.g. 1.5
        #[arg(long)]
        credits: String,
        /// The name people see; the model id when omitted.
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key; prints the secret once, alone on stdout.
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long, default_value = "API key")]
        name: String,
    },
}

fn workspace_id(text: &str) -> anyhow::Result<WorkspaceId> {
    WorkspaceId::parse(text.trim())
        .with_context(|| format!("'{text}' is not a workspace id (they look like ws_…)"))
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
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

/// Runs one command. Output for scripts goes to stdout; messages for people to stderr.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = open_store(&config).await?;
    let now = clock.now_ms();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let outbound = crate::outbound::Outbound::new(&config.outbound)?;
            let app = Application::build(config, store.clone(), clock.clone()).await?;
            crate::jobs::spawn_background_jobs(store, clock, Some(app.payments()), outbound);
            eprintln!("Tally is serving on http://{}", app.addr());
            app.run_until_stopped()
                .await
                .context("the server stopped with an error")?;
        }
        Command::Migrate => eprintln!("The database schema is up to date."),
        Command::Audit => {
            let ids = store.workspace_ids().await?;
            let mut drifted = 0;
            for id in &ids {
                let audit = store.audit(id).await?;
                if !audit.balanced() {
                    drifted += 1;
                    eprintln!("DRIFT {id}: {audit:?}");
                }
            }
            if drifted > 0 {
                bail!("{drifted} of {} workspaces do not balance", ids.len());
            }
            eprintln!(
                "All {} workspaces balance: journal, lots, holds and running balances agree.",
                ids.len()
            );
        }
        Command::Demo => {
            let demo = crate::demo::seed(&store, now).await?;
            eprintln!("{}", demo.describe());
        }
        Command::Workspace(WorkspaceCommand::Create { name }) => {
            let id = store.create_workspace(&name, now).await?;
            println!("{id}");
        }
        Command::Workspace(WorkspaceCommand::Webhook {
            workspace,
            url,
            remove,
        }) => {
            let id = workspace_id(&workspace)?;
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
        Command::Workspace(WorkspaceCommand::Settings {
            workspace,
            billing_managers,
            low_balance_threshold,
        }) => {
            let id = workspace_id(&workspace)?;
            let Some(current) = store.workspace(&id).await? else {
                bail!("no workspace {id}")
            };
            let policy = match billing_managers {
                Some(text) => app::domain::BillingManagers::parse(text.trim())
                    .context("--billing-managers must be admins or owner_only")?,
                None => current.billing_managers,
            };
            let threshold = match low_balance_threshold {
                Some(text) => Credits::parse(&text)
                    .context("--low-balance-threshold must be a whole number of credits")?
                    .get(),
                None => current.low_balance_threshold,
            };
            store
                .update_workspace_settings(&id, threshold, policy)
                .await?;
            eprintln!(
                "{}: billing managers {}, Low Balance at or below {} credits.",
                current.name,
                policy,
                Credits::new(threshold).unwrap_or_default()
            );
        }
        Command::User(UserCommand::Add {
            workspace,
            email,
            role,
            password: given,
        }) => {
            let workspace = workspace_id(&workspace)?;
            let email = Email::parse(&email)?;
            let role = Role::parse(role.trim())
                .context("role must be owner, admin, billing_admin, member or guest")?;
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
            eprintln!(
                "{email} is now {} in {workspace}.",
                role.label().to_lowercase()
            );
            println!("{user_id}");
        }
        Command::Pack(PackCommand::List) => {
            for pack in store.active_packs().await? {
                let price = app::domain::Currency::parse(&pack.currency)
                    .ok()
                    .and_then(|c| app::domain::Money::new(pack.price_minor, c).ok())
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{} credits\t{} {}\tbonus {}",
                    pack.id,
                    pack.name,
                    pack.credits,
                    price,
                    pack.currency.to_ascii_uppercase(),
                    pack.bonus_credits
                );
            }
        }
        Command::Pack(PackCommand::Set {
            id,
            name,
            credits,
            price,
            currency,
            bonus,
            bonus_from,
            bonus_until,
            order,
            inactive,
        }) => {
            let id = id.trim().to_owned();
            if id.is_empty()
                || id.len() > 60
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                bail!("--id is 1 to 60 letters, digits, - or _");
            }
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 60 {
                bail!("--name is 1 to 60 characters");
            }
            let credits = Credits::parse(&credits)
                .ok()
                .filter(|c| !c.is_zero())
                .context("--credits is a whole number above zero")?;
            let currency = app::domain::Currency::parse(&currency)
                .map_err(|e| anyhow::anyhow!("--currency: {e}"))?;
            let bonus = match bonus {
                None => Credits::ZERO,
                Some(b) => Credits::parse(&b)
                    .ok()
                    .context("--bonus is a whole number")?,
            };
            let pack = crate::payments::PackRecord {
                id,
                name,
                credits: credits.get(),
                price_minor: parse_price(&price, &currency)?,
                currency: currency.as_str().to_owned(),
                active: !inactive,
                bonus_credits: bonus.get(),
                bonus_starts_at: parse_time("--bonus-from", bonus_from)?,
                bonus_ends_at: parse_time("--bonus-until", bonus_until)?,
                sort_order: order,
            };
            store.upsert_pack(&pack, now).await?;
            eprintln!("Pack {} saved ({} credits).", pack.id, credits);
        }
        Command::Plan(PlanCommand::List) => {
            for plan in store.plans().await? {
                println!(
                    "{}\t{}\t{} credits per seat a month\t{}",
                    plan.id,
                    plan.name,
                    plan.terms.credits_per_seat,
                    if plan.terms.rollover {
                        "rolls over"
                    } else {
                        "expires each period"
                    }
                );
            }
        }
        Command::Plan(PlanCommand::Set {
            id,
            name,
            credits_per_seat,
            rollover,
        }) => {
            let id = id.trim().to_owned();
            if id.is_empty()
                || id.len() > 60
                || !id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                bail!("--id must be 1 to 60 lower-case letters, digits or dashes");
            }
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 60 {
                bail!("--name must be 1 to 60 characters");
            }
            let credits_per_seat = Credits::parse(&credits_per_seat.replace(',', ""))
                .context("--credits-per-seat must be a whole number of credits")?;
            let plan = crate::payments::subscriptions::PlanRecord {
                id,
                name,
                terms: app::domain::PlanTerms {
                    credits_per_seat,
                    rollover,
                },
            };
            store.upsert_plan(&plan, now).await?;
            eprintln!(
                "Plan {} saved ({} credits per seat a month).",
                plan.id, credits_per_seat
            );
        }
        Command::Rate(RateCommand::List) => {
            for rate in store.rates().await? {
                println!("{}\t{}\t{}", rate.model, rate.modality, rate.describe());
            }
        }
        Command::Rate(RateCommand::Set {
            model,
            modality,
            credits,
            label,
        }) => {
            let model = model.trim().to_owned();
            if model.is_empty()
                || model.len() > 100
                || !model
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
            {
                bail!("--model is 1 to 100 letters, digits or - _ . : /");
            }
            let modality = app::domain::Modality::parse(modality.trim())
                .context("--modality must be text, image or video")?;
            let millicredits = app::domain::parse_milli(&credits)
                .map_err(|e| anyhow::anyhow!("--credits: {e}"))?;
            let rate = app::domain::Rate {
                label: label.unwrap_or_else(|| model.clone()),
                model,
                modality,
                millicredits,
            };
            store.set_rate(&rate, now).await?;
            eprintln!("{rate}");
        }
        Command::ApiKey(ApiKeyCommand::Create { workspace, name }) => {
            let workspace = workspace_id(&workspace)?;
            if store.workspace(&workspace).await?.is_none() {
                bail!("no workspace {workspace}");
            }
            let secret = store.create_api_key(&workspace, &name, now).await?;
            eprintln!("Keep this key safe: it is shown only once.");
            println!("{secret}");
        }
        Command::Grant {
            workspace,
            kind,
            credits,
            expires,
            note,
        } => {
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
            let granted =
                crate::grants::operator_grant(&store, &workspace, &request, "operator", now)
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
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_into_minor_units() {
        let usd = app::domain::Currency::usd();
        assert_eq!(parse_price("22.50", &usd).unwrap(), 2_250);
        assert_eq!(parse_price("5", &usd).unwrap(), 500);
        assert_eq!(parse_price("0.5", &usd).unwrap(), 50);
        assert!(parse_price("0", &usd).is_err());
        assert!(parse_price("-1", &usd).is_err());
        assert!(parse_price("1.234", &usd).is_err());
        assert!(parse_price("ten", &usd).is_err());
    }

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
