use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code, kept lower-case as Stripe spells it (`usd`, `eur`).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

/// Why an amount of money is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("a currency is a three-letter ISO code such as usd")]
    BadCurrency,
    #[error("an amount of money cannot be negative")]
    Negative,
}

impl Currency {
    /// Parses a three-letter code in either case.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let code = code.trim();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Currency(code.to_ascii_lowercase()))
        } else {
            Err(MoneyError::BadCurrency)
        }
    }

    pub fn usd() -> Self {
        Currency("usd".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Minor units per major unit. Zero-decimal currencies (Stripe's list) have none.
    /// Digits after the decimal point in this currency's amounts.
    pub fn decimals(&self) -> u32 {
        match self.0.as_str() {
            "bif" | "clp" | "djf" | "gnf" | "jpy" | "kmf" | "krw" | "mga" | "pyg" | "rwf"
            | "ugx" | "vnd" | "vuv" | "xaf" | "xof" | "xpf" => 0,
            _ => 2,
        }
    }

    /// A number written in this currency's way: `$12.50`, or `12.50 CHF` for currencies
    /// without a symbol here.
    pub fn dress(&self, number: &str) -> String {
        match self.symbol() {
            Some(symbol) => format!("{symbol}{number}"),
            None => format!("{number} {}", self.0.to_ascii_uppercase()),
        }
    }

    fn symbol(&self) -> Option<&'static str> {
        match self.0.as_str() {
            "usd" => Some("$"),
            "eur" => Some("€"),
            "gbp" => Some("£"),
            "jpy" => Some("¥"),
            _ => None,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

/// An amount of money: integer minor units (cents) plus its currency. Never a float.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: i64,
    currency: Currency,
}

impl Money {
    /// Builds a non-negative amount in minor units.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Money {
            amount: amount_minor,
            currency,
        })
    }

    /// The most an amount typed by a person may be, in major units (a million).
    pub const MAX_TYPED_MAJOR: i64 = 1_000_000;

    /// Parses an amount typed in major units, as people write it ("50", "49.99", "$12.50",
    /// "1,000", "12.50 CHF"), with no more decimals than `currency` has. The one money parser: the Billing
    /// page and the command line both read prices with it.
    pub fn parse_major(text: &str, currency: &Currency) -> Result<Money, String> {
        // As Money prints it too: a leading symbol, or the code after the number.
        let text = text.trim();
        let code = currency.as_str();
        let text = match text.len().checked_sub(code.len()) {
            Some(at) if text.is_char_boundary(at) && text[at..].eq_ignore_ascii_case(code) => {
                text[..at].trim_end()
            }
            _ => text,
        };
        let text: String = text
            .trim_start_matches(['$', '€', '£', '¥'])
            .chars()
            .filter(|c| *c != ',' && *c != '_')
            .collect();
        let decimals = currency.decimals() as usize;
        let (major, minor) = text.split_once('.').unwrap_or((&text, ""));
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        let example = if decimals == 0 { "500" } else { "50 or 49.99" };
        if !digits(major) || minor.len() > decimals || !(minor.is_empty() || digits(minor)) {
            return Err(format!("Enter an amount such as {example}"));
        }
        let too_large = || format!("The largest amount is {}", Money::MAX_TYPED_MAJOR);
        let major: i64 = major.parse().map_err(|_| too_large())?;
        if major > Money::MAX_TYPED_MAJOR {
            return Err(too_large());
        }
        let minor: i64 = if decimals == 0 {
            0
        } else {
            format!("{minor:0<decimals$}").parse().unwrap_or(0)
        };
        let scale = 10_i64.pow(decimals as u32);
        Money::new(major * scale + minor, currency.clone()).map_err(|e| e.to_string())
    }

    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: 0,
            currency,
        }
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }
}

impl fmt::Display for Money {
    /// `$12.50`, `€5.00`, `¥500`, or `12.50 CHF` for currencies without a symbol here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = self.currency.decimals();
        let scale = 10_i64.pow(decimals);
        let major = super::credits::group_thousands(self.amount / scale);
        let number = if decimals == 0 {
            major
        } else {
            format!(
                "{major}.{:0width$}",
                self.amount % scale,
                width = decimals as usize
            )
        };
        f.write_str(&self.currency.dress(&number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_amounts_are_read_into_minor_units() {
        let usd = Currency::usd();
        let read = |t: &str| Money::parse_major(t, &usd).map(|m| m.amount_minor());
        assert_eq!(read("22.50"), Ok(2_250));
        assert_eq!(read("$12.5"), Ok(1_250));
        assert_eq!(read("5"), Ok(500));
        assert_eq!(read("1,000"), Ok(100_000));
        assert_eq!(read("0"), Ok(0));
        assert_eq!(read("5."), Ok(500), "a trailing point is fine");
        for bad in ["-1", "1.234", "ten", "", ".5", "1e3", "1000001"] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let yen = Currency::parse("jpy").unwrap();
        assert_eq!(
            Money::parse_major("500", &yen).map(|m| m.amount_minor()),
            Ok(500)
        );
        assert!(
            Money::parse_major("5.00", &yen).is_err(),
            "yen has no decimals"
        );
    }

    proptest::proptest! {
        /// What Money prints (without its symbol and separators) reads back as itself.
        #[test]
        fn printed_amounts_read_back(cents in 0i64..100_000_000) {
            let usd = Currency::usd();
            let money = Money::new(cents, usd.clone()).unwrap();
            let printed = money.to_string();
            proptest::prop_assert_eq!(Money::parse_major(&printed, &usd), Ok(money));
        }
    }

    #[test]
    fn money_is_shown_with_its_currency() {
        let usd = Money::new(123_450, Currency::usd()).unwrap();
        assert_eq!(usd.to_string(), "$1,234.50");
        let eur = Money::new(500, Currency::parse("EUR").unwrap()).unwrap();
        assert_eq!(eur.to_string(), "€5.00");
        let jpy = Money::new(500, Currency::parse("jpy").unwrap()).unwrap();
        assert_eq!(jpy.to_string(), "¥500");
        let chf = Money::new(1_005, Currency::parse("chf").unwrap()).unwrap();
        assert_eq!(chf.to_string(), "10.05 CHF");
    }

    #[test]
    fn a_refused_amount_says_what_to_type_in_that_currency() {
        let usd = Currency::usd();
        let yen = Currency::parse("jpy").unwrap();
        for bad in ["", ".5", "ten"] {
            assert_eq!(
                Money::parse_major(bad, &usd),
                Err("Enter an amount such as 50 or 49.99".to_owned()),
                "{bad:?}"
            );
        }
        assert_eq!(
            Money::parse_major("5.00", &yen),
            Err("Enter an amount such as 500".to_owned())
        );
        assert_eq!(
            Money::parse_major("1000000", &usd).map(|m| m.amount_minor()),
            Ok(100_000_000),
            "the largest amount itself is allowed"
        );
        assert_eq!(
            Money::parse_major("1000001", &usd),
            Err("The largest amount is 1000000".to_owned())
        );
    }

    #[test]
    fn pounds_have_their_sign_and_a_currency_reads_back_as_its_code() {
        let gbp = Currency::parse("GBP").unwrap();
        assert_eq!(Money::new(250, gbp.clone()).unwrap().to_string(), "£2.50");
        assert_eq!(String::from(gbp), "gbp");
    }

    #[test]
    fn bad_currency_codes_are_rejected() {
        assert_eq!(Currency::parse("dollars"), Err(MoneyError::BadCurrency));
        assert_eq!(Currency::parse("u$d"), Err(MoneyError::BadCurrency));
        assert!(serde_json::from_str::<Currency>("\"us\"").is_err());
    }

    #[test]
    fn negative_money_is_rejected() {
        assert_eq!(Money::new(-1, Currency::usd()), Err(MoneyError::Negative));
    }
}
