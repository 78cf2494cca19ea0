//! The unit a deployment shows amounts of credits in: credits, or money.
//!
//! The ledger always counts whole credits. A deployment may instead show every amount as
//! money, where one credit is a fixed number of the currency's minor units (1 credit = $0.01,
//! say). The conversion is exact both ways: an amount of credits is always a whole number of
//! minor units, and an amount typed in money is refused unless it is a whole number of
//! credits, so nothing is ever rounded.

use super::credits::{group_thousands, push_grouped};
use super::{Credits, Currency, Money};
use serde::{Deserialize, Serialize};

/// How amounts of credits are shown and typed.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "UnitFields")]
pub enum CreditUnit {
    /// Whole credits: `1,500 credits`.
    #[default]
    Credits,
    /// Money: one credit is `minor_per_credit` minor units of `currency` (`$15.00`).
    Money {
        currency: Currency,
        minor_per_credit: i64,
    },
}

/// A unit as it is read: its fields side by side, checked into a [`CreditUnit`] after. Serde
/// reads a tagged enum by buffering the whole object first, and that reader would be in the
/// browser's bundle for this one type; a flat struct is read as it arrives.
#[derive(Deserialize)]
struct UnitFields {
    kind: UnitKind,
    currency: Option<Currency>,
    minor_per_credit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum UnitKind {
    Credits,
    Money,
}

impl TryFrom<UnitFields> for CreditUnit {
    type Error = &'static str;

    fn try_from(fields: UnitFields) -> Result<Self, Self::Error> {
        match (fields.kind, fields.currency, fields.minor_per_credit) {
            (UnitKind::Credits, _, _) => Ok(Self::Credits),
            (UnitKind::Money, Some(currency), Some(minor_per_credit)) => Ok(Self::Money {
                currency,
                minor_per_credit,
            }),
            (UnitKind::Money, None, _) => Err("missing field `currency`"),
            (UnitKind::Money, Some(_), None) => Err("missing field `minor_per_credit`"),
        }
    }
}

/// Why a unit setting is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("the unit is `credits` or a three-letter currency code such as usd")]
    BadUnit,
    #[error("the value of one credit is a whole number of minor units from 1 to 1000000")]
    BadValue,
}

impl CreditUnit {
    /// The most minor units one credit may be worth: keeps every balance's money far inside
    /// `i64` (a trillion credits at a million minor units each).
    pub const MAX_MINOR_PER_CREDIT: i64 = 1_000_000;

    /// Reads a deployment's setting: `credits`, or a currency code and what one credit is
    /// worth in its minor units.
    pub fn parse(unit: &str, minor_per_credit: i64) -> Result<CreditUnit, UnitError> {
        let unit = unit.trim();
        if unit.eq_ignore_ascii_case("credits") {
            return Ok(CreditUnit::Credits);
        }
        let currency = Currency::parse(unit).map_err(|_| UnitError::BadUnit)?;
        if !(1..=Self::MAX_MINOR_PER_CREDIT).contains(&minor_per_credit) {
            return Err(UnitError::BadValue);
        }
        Ok(CreditUnit::Money {
            currency,
            minor_per_credit,
        })
    }

    /// Are amounts shown in money?
    pub fn is_money(&self) -> bool {
        matches!(self, CreditUnit::Money { .. })
    }

    /// An amount of credits as money, when amounts are shown in money.
    pub fn money(&self, credits: Credits) -> Option<Money> {
        match self {
            CreditUnit::Credits => None,
            CreditUnit::Money {
                currency,
                minor_per_credit,
            } => Money::new(credits.get() * minor_per_credit, currency.clone()).ok(),
        }
    }

    /// What a field's label calls the unit: `credits`, or the currency's code (`USD`).
    pub fn noun(&self) -> String {
        match self {
            CreditUnit::Credits => "credits".to_owned(),
            CreditUnit::Money { currency, .. } => currency.as_str().to_ascii_uppercase(),
        }
    }

    /// The figure alone, as a balance shows it: `1,500` or `$15.00`.
    pub fn figure(&self, credits: Credits) -> String {
        self.signed_figure(credits.get(), false)
    }

    /// The amount in words: `1 credit`, `1,500 credits` or `$15.00`.
    pub fn amount(&self, credits: Credits) -> String {
        match self {
            CreditUnit::Credits if credits.get() == 1 => "1 credit".to_owned(),
            CreditUnit::Credits => format!("{credits} credits"),
            CreditUnit::Money { .. } => self.figure(credits),
        }
    }

    /// A movement with its sign: `+1,000`, `-25`, `+$10.00`, `-$0.25` (zero has none).
    pub fn signed(&self, amount: i64) -> String {
        self.signed_figure(amount, true)
    }

    fn signed_figure(&self, amount: i64, plus: bool) -> String {
        let sign = match amount {
            a if a < 0 => "-",
            a if a > 0 && plus => "+",
            _ => "",
        };
        let magnitude = amount.unsigned_abs().min(i64::MAX as u64) as i64;
        match self {
            CreditUnit::Credits => {
                let mut figure = String::with_capacity(sign.len() + 26);
                figure.push_str(sign);
                push_grouped(&mut figure, magnitude);
                figure
            }
            CreditUnit::Money {
                currency,
                minor_per_credit,
            } => match Money::new(
                magnitude.saturating_mul(*minor_per_credit),
                currency.clone(),
            ) {
                Ok(money) => format!("{sign}{money}"),
                Err(_) => format!("{sign}{}", group_thousands(magnitude)),
            },
        }
    }

    /// What a form field holds for `credits`, ready to be typed over: `1500` or `15.00`
    /// (no symbol, no separators).
    pub fn input_value(&self, credits: Credits) -> String {
        match self {
            CreditUnit::Credits => credits.get().to_string(),
            CreditUnit::Money {
                currency,
                minor_per_credit,
            } => {
                let minor = credits.get() * minor_per_credit;
                let decimals = currency.decimals();
                if decimals == 0 {
                    return minor.to_string();
                }
                let scale = 10_i64.pow(decimals);
                format!(
                    "{}.{:0width$}",
                    minor / scale,
                    minor % scale,
                    width = decimals as usize
                )
            }
        }
    }

    /// The `step` of a number field in this unit: one credit.
    pub fn input_step(&self) -> String {
        match self {
            CreditUnit::Credits => "1".to_owned(),
            CreditUnit::Money { .. } => self.input_value(Credits::new(1).unwrap_or_default()),
        }
    }

    /// The `inputmode` of a field in this unit: a phone's keyboard with a decimal point for
    /// money, digits only for credits.
    pub fn input_mode(&self) -> &'static str {
        if self.is_money() {
            "decimal"
        } else {
            "numeric"
        }
    }

    /// Reads an amount a person typed in this unit. In money it must come to a whole number
    /// of credits. The error says what to type, starting lower-case to follow a field's name.
    pub fn parse_amount(&self, text: &str) -> Result<Credits, String> {
        match self {
            CreditUnit::Credits => Credits::parse(text)
                .map_err(|_| "enter a whole number of credits, such as 1500".to_owned()),
            CreditUnit::Money {
                currency,
                minor_per_credit,
            } => {
                let money = Money::parse_major(text, currency).map_err(|e| lower_first(&e))?;
                if money.amount_minor() % minor_per_credit != 0 {
                    let step = self.figure(Credits::new(1).unwrap_or_default());
                    return Err(format!("enter an amount in steps of {step}"));
                }
                Credits::new(money.amount_minor() / minor_per_credit).map_err(|e| e.to_string())
            }
        }
    }

    /// What a purchase adds, as its description says it: `25,000 AI credits`, or
    /// `$250.00 of AI credit`.
    pub fn bought(&self, credits: Credits) -> String {
        match self {
            CreditUnit::Credits if credits.get() == 1 => "1 AI credit".to_owned(),
            CreditUnit::Credits => format!("{credits} AI credits"),
            CreditUnit::Money { .. } => format!("{} of AI credit", self.figure(credits)),
        }
    }

    /// A placeholder for an amount in a text written before the unit is known (a
    /// notification the ledger records): [`CreditUnit::render`] turns it into
    /// [`CreditUnit::amount`] (`words`) or [`CreditUnit::figure`] when the text is shown.
    pub fn placeholder(credits: Credits, words: bool) -> String {
        let kind = if words { "amount" } else { "figure" };
        format!("[[{kind}:{}]]", credits.get())
    }

    /// `text` with each placeholder written in this unit; other text is left as it is.
    pub fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("[[") {
            out.push_str(&rest[..start]);
            let tail = &rest[start..];
            let parsed = tail.find("]]").and_then(|end| {
                let (kind, n) = tail[2..end].split_once(':')?;
                let credits = Credits::new(n.parse().ok()?).ok()?;
                let shown = match kind {
                    "amount" => self.amount(credits),
                    "figure" => self.figure(credits),
                    _ => return None,
                };
                Some((shown, end + 2))
            });
            match parsed {
                Some((shown, len)) => {
                    out.push_str(&shown);
                    rest = &tail[len..];
                }
                None => {
                    out.push_str("[[");
                    rest = &tail[2..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A rate in thousandths of a credit as people read it: `1.5 credits` or `$0.015`.
    pub fn rate(&self, millicredits: i64) -> String {
        match self {
            CreditUnit::Credits => format!("{} credits", super::format_milli(millicredits)),
            CreditUnit::Money {
                currency,
                minor_per_credit,
            } => {
                // Thousandths of a minor unit, shown with the currency's decimals and as many
                // more as the rate needs (at most three).
                let milli_minor = millicredits.saturating_mul(*minor_per_credit);
                let decimals = currency.decimals();
                let scale = 10_i64.pow(decimals) * 1_000;
                let whole = group_thousands(milli_minor / scale);
                let fraction = format!(
                    "{:0width$}",
                    milli_minor % scale,
                    width = decimals as usize + 3
                );
                let keep = fraction.trim_end_matches('0').len().max(decimals as usize);
                let number = if keep == 0 {
                    whole
                } else {
                    format!("{whole}.{}", &fraction[..keep])
                };
                currency.dress(&number)
            }
        }
    }
}

/// The text with its first letter lower-case: a message of Tally's own put mid-sentence. Only
/// an ASCII letter changes (see `format::capitalised`).
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => std::iter::once(first.to_ascii_lowercase())
            .chain(chars)
            .collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_unit_reads_back_what_it_writes_and_money_needs_both_fields() {
        for unit in [CreditUnit::Credits, CreditUnit::parse("eur", 150).unwrap()] {
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(serde_json::from_str::<CreditUnit>(&json).unwrap(), unit);
        }
        assert_eq!(
            serde_json::to_string(&CreditUnit::parse("usd", 1).unwrap()).unwrap(),
            r#"{"kind":"money","currency":"usd","minor_per_credit":1}"#
        );
        let read = |json: &str| serde_json::from_str::<CreditUnit>(json);
        assert_eq!(read(r#"{"kind":"credits"}"#).unwrap(), CreditUnit::Credits);
        assert!(read(r#"{"kind":"money","minor_per_credit":1}"#)
            .unwrap_err()
            .to_string()
            .contains("currency"));
        assert!(read(r#"{"kind":"money","currency":"usd"}"#).is_err());
        assert!(read(r#"{"kind":"coins"}"#).is_err());
        assert!(read(r#"{"kind":"money","currency":"dollars","minor_per_credit":1}"#).is_err());
    }

    fn cents() -> CreditUnit {
        CreditUnit::parse("usd", 1).unwrap()
    }

    #[test]
    fn a_deployment_reads_credits_or_a_currency_with_the_value_of_a_credit() {
        assert_eq!(CreditUnit::parse("credits", 1), Ok(CreditUnit::Credits));
        assert_eq!(CreditUnit::parse(" Credits ", 7), Ok(CreditUnit::Credits));
        assert_eq!(
            CreditUnit::parse("EUR", 10),
            Ok(CreditUnit::Money {
                currency: Currency::parse("eur").unwrap(),
                minor_per_credit: 10
            })
        );
        assert_eq!(CreditUnit::parse("dollars", 1), Err(UnitError::BadUnit));
        assert_eq!(CreditUnit::parse("usd", 0), Err(UnitError::BadValue));
        assert_eq!(CreditUnit::parse("usd", -1), Err(UnitError::BadValue));
        assert_eq!(
            CreditUnit::parse("usd", CreditUnit::MAX_MINOR_PER_CREDIT + 1),
            Err(UnitError::BadValue)
        );
    }

    #[test]
    fn credits_read_as_credits_by_default() {
        let unit = CreditUnit::default();
        let n = |v| Credits::new(v).unwrap();
        assert_eq!(unit.figure(n(1_500)), "1,500");
        assert_eq!(unit.amount(n(1)), "1 credit");
        assert_eq!(unit.amount(n(1_500)), "1,500 credits");
        assert_eq!(unit.signed(1_000), "+1,000");
        assert_eq!(unit.signed(-25), "-25");
        assert_eq!(unit.signed(0), "0");
        assert_eq!(unit.noun(), "credits");
        assert_eq!(unit.money(n(5)), None);
        assert_eq!(unit.rate(1_500), "1.5 credits");
        assert_eq!(unit.bought(n(25_000)), "25,000 AI credits");
        assert_eq!(unit.input_value(n(1_500)), "1500");
        assert_eq!(unit.input_step(), "1");
        assert_eq!(unit.input_mode(), "numeric");
    }

    #[test]
    fn money_reads_with_its_currency() {
        let usd = cents();
        let n = |v| Credits::new(v).unwrap();
        assert_eq!(usd.figure(n(150_000)), "$1,500.00");
        assert_eq!(usd.amount(n(1)), "$0.01");
        assert_eq!(usd.signed(1_000), "+$10.00");
        assert_eq!(usd.signed(-25), "-$0.25");
        assert_eq!(usd.signed(0), "$0.00");
        assert_eq!(usd.noun(), "USD");
        assert_eq!(usd.input_value(n(1_505)), "15.05");
        assert_eq!(usd.input_step(), "0.01");
        assert_eq!(usd.input_mode(), "decimal");
        assert_eq!(
            usd.money(n(1_505)),
            Some(Money::new(1_505, Currency::usd()).unwrap())
        );
        // A rate keeps the fractions of a cent it has.
        assert_eq!(usd.rate(1_500), "$0.015");
        assert_eq!(usd.bought(n(25_000)), "$250.00 of AI credit");
        assert_eq!(usd.rate(40_000), "$0.40");
        assert_eq!(usd.rate(125), "$0.00125");
        let chf = CreditUnit::parse("chf", 5).unwrap();
        assert_eq!(chf.figure(n(300)), "15.00 CHF");
        assert_eq!(chf.rate(1_000), "0.05 CHF");
        assert_eq!(chf.parse_amount("15.00 CHF").map(Credits::get), Ok(300));
        let yen = CreditUnit::parse("jpy", 1).unwrap();
        assert_eq!(yen.figure(n(1_500)), "¥1,500");
        assert_eq!(yen.input_value(n(1_500)), "1500");
        assert_eq!(yen.rate(1_500), "¥1.5");
    }

    #[test]
    fn typed_money_must_come_to_whole_credits() {
        let usd = cents();
        assert_eq!(usd.parse_amount("15.05").map(Credits::get), Ok(1_505));
        assert_eq!(usd.parse_amount("$1,000").map(Credits::get), Ok(100_000));
        let nickels = CreditUnit::parse("usd", 5).unwrap();
        assert_eq!(nickels.parse_amount("0.25").map(Credits::get), Ok(5));
        assert_eq!(
            nickels.parse_amount("0.26"),
            Err("enter an amount in steps of $0.05".to_owned())
        );
        assert_eq!(
            usd.parse_amount("ten"),
            Err("enter an amount such as 50 or 49.99".to_owned())
        );
        assert!(CreditUnit::Credits.parse_amount("1.5").is_err());
        assert_eq!(
            CreditUnit::Credits.parse_amount("1,500").map(Credits::get),
            Ok(1_500)
        );
    }

    #[test]
    fn placeholders_are_written_in_the_unit_when_shown() {
        let n = |v| Credits::new(v).unwrap();
        let text = format!(
            "{} left, at or below {}.",
            CreditUnit::placeholder(n(1_380), true),
            CreditUnit::placeholder(n(2_000), false)
        );
        assert_eq!(
            CreditUnit::Credits.render(&text),
            "1,380 credits left, at or below 2,000."
        );
        assert_eq!(cents().render(&text), "$13.80 left, at or below $20.00.");
        // Anything else is left alone, unfinished or unknown placeholders included.
        for plain in [
            "no amounts",
            "[[x:1]] and [[amount:-5]]",
            "[[amount:12",
            "a [[ b ]] c",
        ] {
            assert_eq!(cents().render(plain), plain);
        }
    }

    proptest! {
        /// Whatever a field shows reads back as the same credits, in either unit.
        #[test]
        fn an_amount_round_trips_through_its_field(
            credits in 0i64..10_000_000_000,
            minor_per_credit in 1i64..=1_000,
            zero_decimal in any::<bool>(),
        ) {
            let credits = Credits::new(credits).unwrap();
            let code = if zero_decimal { "jpy" } else { "usd" };
            for unit in [CreditUnit::Credits, CreditUnit::parse(code, minor_per_credit).unwrap()] {
                let typed = unit.input_value(credits);
                // Typed amounts stop at a million in major units, as every money field does.
                if unit.is_money() && typed.split('.').next().unwrap().parse::<i64>().unwrap() > Money::MAX_TYPED_MAJOR {
                    continue;
                }
                prop_assert_eq!(unit.parse_amount(&typed), Ok(credits));
                prop_assert_eq!(unit.parse_amount(&unit.figure(credits)), Ok(credits));
            }
        }

        /// Money is exactly the credits times the value of one: never rounded.
        #[test]
        fn money_is_exactly_credits_times_their_value(
            credits in 0i64..1_000_000_000_000,
            minor_per_credit in 1i64..=1_000_000,
        ) {
            let unit = CreditUnit::parse("eur", minor_per_credit).unwrap();
            let money = unit.money(Credits::new(credits).unwrap()).unwrap();
            prop_assert_eq!(money.amount_minor(), credits * minor_per_credit);
            prop_assert_eq!(money.currency().as_str(), "eur");
        }

        /// Rendering never loses the text around placeholders, and a rendered amount reads
        /// back as the credits it stood for.
        #[test]
        fn rendered_placeholders_read_back(before in "[a-z ]{0,12}", after in "[a-z .]{0,12}", credits in 0i64..100_000_000) {
            let c = Credits::new(credits).unwrap();
            let text = format!("{before}{}{after}", CreditUnit::placeholder(c, false));
            for unit in [CreditUnit::Credits, cents()] {
                let shown = unit.render(&text);
                prop_assert!(shown.starts_with(&before) && shown.ends_with(&after));
                let figure = &shown[before.len()..shown.len() - after.len()];
                prop_assert_eq!(unit.parse_amount(figure), Ok(c));
            }
        }

        /// A movement's sign survives in either unit, and its size reads back.
        #[test]
        fn a_signed_movement_keeps_its_sign(amount in -100_000_000i64..=100_000_000) {
            for unit in [CreditUnit::Credits, cents()] {
                let shown = unit.signed(amount);
                prop_assert_eq!(shown.starts_with('-'), amount < 0);
                prop_assert_eq!(shown.starts_with('+'), amount > 0);
                let size = shown.trim_start_matches(['+', '-']);
                prop_assert_eq!(unit.parse_amount(size).map(Credits::get), Ok(amount.abs()));
            }
        }
    }
}
