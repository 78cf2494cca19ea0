use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code, kept lower-case as Stripe spells it (`usd`, `eur`).
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
    fn decimals(&self) -> u32 {
        match self.0.as_str() {
            "bif" | "clp" | "djf" | "gnf" | "jpy" | "kmf" | "krw" | "mga" | "pyg" | "rwf"
            | "ugx" | "vnd" | "vuv" | "xaf" | "xof" | "xpf" => 0,
            _ => 2,
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
        match self.currency.symbol() {
            Some(symbol) => write!(f, "{symbol}{number}"),
            None => write!(
                f,
                "{number} {}",
                self.currency.as_str().to_ascii_uppercase()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
