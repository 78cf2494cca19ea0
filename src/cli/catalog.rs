//! `tally pack …`, `tally plan …` and `tally rate …`: what is on sale, what plans include and
//! what AI work costs.

use super::{args, Context};
use anyhow::bail;
use app::domain::{Credits, Currency, Modality};
use clap::Subcommand;

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
        #[arg(long, value_parser = args::display_name)]
        name: String,
        #[arg(long, value_parser = args::positive_credits)]
        credits: Credits,
        /// The price in the currency's major unit, e.g. 22.50.
        #[arg(long)]
        price: String,
        #[arg(long, default_value = "usd", value_parser = args::currency)]
        currency: Currency,
        /// Extra credits while a promotion runs.
        #[arg(long, value_parser = args::credits)]
        bonus: Option<Credits>,
        /// When the promotion starts and ends, RFC 3339.
        #[arg(long, value_parser = args::time)]
        bonus_from: Option<i64>,
        #[arg(long, value_parser = args::time)]
        bonus_until: Option<i64>,
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
        #[arg(long, value_parser = args::display_name)]
        name: String,
        /// Credits per paid seat per month (annual invoices grant twelve months' worth).
        #[arg(long, value_parser = args::credits)]
        credits_per_seat: Credits,
        /// Credits roll over instead of expiring at the end of their period.
        #[arg(long)]
        rollover: bool,
    },
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
        #[arg(long, value_parser = args::modality)]
        modality: Modality,
        /// Credits per rate unit, up to three decimals, e.g. 1.5
        #[arg(long)]
        credits: String,
        /// The name people see; the model id when omitted.
        #[arg(long)]
        label: Option<String>,
    },
}

/// Runs one `pack` command.
pub(super) async fn packs(command: PackCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        PackCommand::List => {
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
        PackCommand::Set {
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
        } => {
            let id = parse_name("--id", &id, 60, "-_")?;
            let bonus = bonus.unwrap_or(Credits::ZERO);
            let pack = crate::payments::PackRecord {
                id,
                name,
                credits: credits.get(),
                price_minor: parse_price(&price, &currency)?,
                currency: currency.as_str().to_owned(),
                active: !inactive,
                bonus_credits: bonus.get(),
                bonus_starts_at: bonus_from,
                bonus_ends_at: bonus_until,
                sort_order: order,
            };
            store.upsert_pack(&pack, now).await?;
            eprintln!("Pack {} saved ({} credits).", pack.id, credits);
        }
    }
    Ok(())
}

/// Runs one `plan` command.
pub(super) async fn plans(command: PlanCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        PlanCommand::List => {
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
        PlanCommand::Set {
            id,
            name,
            credits_per_seat,
            rollover,
        } => {
            let id = id.trim().to_owned();
            if id.is_empty()
                || id.len() > 60
                || !id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                bail!("--id must be 1 to 60 lower-case letters, digits or dashes");
            }
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
    }
    Ok(())
}

/// Runs one `rate` command.
pub(super) async fn rates(command: RateCommand, ctx: &Context) -> anyhow::Result<()> {
    let (store, now) = (&ctx.store, ctx.now);
    match command {
        RateCommand::List => {
            for rate in store.rates().await? {
                println!("{}\t{}\t{}", rate.model, rate.modality, rate.describe());
            }
        }
        RateCommand::Set {
            model,
            modality,
            credits,
            label,
        } => {
            let model = parse_name("--model", &model, 100, "-_.:/")?;
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
    }
    Ok(())
}

/// A catalog name (a pack id, a model): 1 to `max` ASCII letters, digits or `punctuation`.
fn parse_name(flag: &str, text: &str, max: usize, punctuation: &str) -> anyhow::Result<String> {
    let name = text.trim();
    let fits = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || punctuation.contains(c));
    if !fits {
        let marks: Vec<String> = punctuation.chars().map(String::from).collect();
        bail!(
            "{flag} is 1 to {max} letters, digits or {}",
            marks.join(" ")
        );
    }
    Ok(name.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_are_letters_digits_and_the_allowed_marks() {
        assert_eq!(
            parse_name("--id", " pack_team ", 60, "-_").unwrap(),
            "pack_team"
        );
        assert!(parse_name("--id", "", 60, "-_").is_err());
        assert!(parse_name("--id", "pack team", 60, "-_").is_err());
        assert!(parse_name("--id", &"x".repeat(61), 60, "-_").is_err());
        let err = parse_name("--model", "a/b?", 100, "-_.:/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--model is 1 to 100 letters, digits or - _ . : /"
        );
    }

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
}
