use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount of credits Tally accepts in one movement or balance: a trillion.
///
/// A bound keeps every sum of a workspace's movements far inside `i64`, so arithmetic on
/// parsed amounts cannot overflow, and it turns absurd input into a clear error.
pub const MAX_CREDITS: i64 = 1_000_000_000_000;

/// A non-negative whole number of credits.
///
/// Credits are integers everywhere: there are no fractional credits and no floats on the path
/// of an amount. The field is private; [`Credits::new`] is the only way in.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Credits(i64);

/// Why a number is not a valid amount of credits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    #[error("credits cannot be negative")]
    Negative,
    #[error("credits must be above zero")]
    Zero,
    #[error("credits cannot exceed {MAX_CREDITS}")]
    TooLarge,
    #[error("credits must be a whole number")]
    NotANumber,
}

impl Credits {
    /// Zero credits.
    pub const ZERO: Credits = Credits(0);

    /// Parses a count of credits, rejecting negatives and amounts above [`MAX_CREDITS`].
    pub fn new(value: i64) -> Result<Self, CreditsError> {
        if value < 0 {
            Err(CreditsError::Negative)
        } else if value > MAX_CREDITS {
            Err(CreditsError::TooLarge)
        } else {
            Ok(Credits(value))
        }
    }

    /// Parses a strictly positive amount, as every charge and grant must be.
    pub fn positive(value: i64) -> Result<Self, CreditsError> {
        match Self::new(value)? {
            Credits(0) => Err(CreditsError::Zero),
            credits => Ok(credits),
        }
    }

    /// Parses decimal text such as `"1500"` (surrounding spaces and `_`/`,` separators allowed).
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        let digits: String = text
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != ',')
            .collect();
        if digits.starts_with('-') {
            return Err(CreditsError::Negative);
        }
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(CreditsError::NotANumber);
        }
        digits
            .parse::<i64>()
            .map_err(|_| CreditsError::TooLarge)
            .and_then(Self::new)
    }

    /// The number of credits.
    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Adds, failing when the sum would pass [`MAX_CREDITS`].
    pub fn checked_add(self, other: Credits) -> Option<Credits> {
        Credits::new(self.0.checked_add(other.0)?).ok()
    }

    /// Subtracts, failing when the result would be negative.
    pub fn checked_sub(self, other: Credits) -> Option<Credits> {
        Credits::new(self.0.checked_sub(other.0)?).ok()
    }

    /// Subtracts, stopping at zero.
    pub fn saturating_sub(self, other: Credits) -> Credits {
        Credits((self.0 - other.0).max(0))
    }

    pub fn min(self, other: Credits) -> Credits {
        Credits(self.0.min(other.0))
    }
}

impl<'de> Deserialize<'de> for Credits {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Credits::new(value).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Credits {
    /// Groups thousands with commas: `12,500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&group_thousands(self.0))
    }
}

/// Formats a signed integer with comma thousands separators, e.g. `-12,500`.
pub fn group_thousands(value: i64) -> String {
    let mut out = String::new();
    push_grouped(&mut out, value);
    out
}

/// Appends `value` to `out` with comma thousands separators. Every amount on a page passes
/// here (a Billing page shows some three hundred), so the digits are written into a buffer
/// on the stack rather than through an intermediate string.
pub fn push_grouped(out: &mut String, value: i64) {
    // Twenty digits, six separators and a sign.
    let mut buf = [0_u8; 27];
    let mut at = buf.len();
    let mut rest = value.unsigned_abs();
    let mut written = 0;
    loop {
        if written > 0 && written % 3 == 0 {
            at -= 1;
            buf[at] = b',';
        }
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        written += 1;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn credits_add_subtract_and_compare_within_their_bounds() {
        let n = |v: i64| Credits::new(v).unwrap();
        assert_eq!(n(3).checked_add(n(4)), Some(n(7)));
        assert_eq!(n(MAX_CREDITS).checked_add(n(1)), None);
        assert_eq!(n(10).checked_sub(n(3)), Some(n(7)));
        assert_eq!(n(3).checked_sub(n(10)), None);
        assert_eq!(n(10).saturating_sub(n(3)), n(7));
        assert_eq!(n(3).saturating_sub(n(10)), n(0));
        assert_eq!(n(3).min(n(10)), n(3));
        assert_eq!(n(10).min(n(3)), n(3));
    }

    #[test]
    fn negative_credits_are_rejected() {
        assert_eq!(Credits::new(-1), Err(CreditsError::Negative));
        assert_eq!(Credits::parse("-5"), Err(CreditsError::Negative));
    }

    #[test]
    fn zero_is_not_positive_and_says_so() {
        assert_eq!(Credits::positive(0), Err(CreditsError::Zero));
        assert_eq!(
            Credits::positive(0).unwrap_err().to_string(),
            "credits must be above zero"
        );
        assert_eq!(Credits::positive(-1), Err(CreditsError::Negative));
        assert_eq!(Credits::positive(1).map(Credits::get), Ok(1));
    }

    #[test]
    fn amounts_above_the_limit_are_rejected() {
        assert_eq!(Credits::new(MAX_CREDITS + 1), Err(CreditsError::TooLarge));
        assert_eq!(
            Credits::parse("99999999999999999999999"),
            Err(CreditsError::TooLarge)
        );
    }

    #[test]
    fn text_with_separators_parses() {
        assert_eq!(Credits::parse(" 12,500 ").map(Credits::get), Ok(12_500));
        assert_eq!(Credits::parse("1_000").map(Credits::get), Ok(1_000));
        assert_eq!(Credits::parse("12.5"), Err(CreditsError::NotANumber));
        assert_eq!(Credits::parse(""), Err(CreditsError::NotANumber));
    }

    #[test]
    fn display_groups_thousands() {
        assert_eq!(Credits::new(0).unwrap().to_string(), "0");
        assert_eq!(Credits::new(999).unwrap().to_string(), "999");
        assert_eq!(Credits::new(1_000).unwrap().to_string(), "1,000");
        assert_eq!(Credits::new(1_234_567).unwrap().to_string(), "1,234,567");
        assert_eq!(group_thousands(-12_500), "-12,500");
        assert_eq!(group_thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn deserializing_rejects_negative_amounts() {
        assert!(serde_json::from_str::<Credits>("-3").is_err());
        assert_eq!(serde_json::from_str::<Credits>("7").unwrap().get(), 7);
    }

    proptest! {
        #[test]
        fn display_round_trips_through_parse(value in 0..=MAX_CREDITS) {
            let credits = Credits::new(value).unwrap();
            prop_assert_eq!(Credits::parse(&credits.to_string()), Ok(credits));
        }

        #[test]
        fn grouped_numbers_read_back_in_groups_of_three(value in any::<i64>()) {
            let grouped = group_thousands(value);
            prop_assert_eq!(grouped.replace(',', "").parse::<i64>(), Ok(value));
            let digits = grouped.trim_start_matches('-');
            let groups: Vec<&str> = digits.split(',').collect();
            prop_assert!((1..=3).contains(&groups[0].len()), "{}", grouped);
            prop_assert!(groups[1..].iter().all(|g| g.len() == 3), "{}", grouped);
        }

        #[test]
        fn checked_sub_never_goes_negative(a in 0..=MAX_CREDITS, b in 0..=MAX_CREDITS) {
            let (a, b) = (Credits::new(a).unwrap(), Credits::new(b).unwrap());
            match a.checked_sub(b) {
                Some(rest) => prop_assert_eq!(rest.get() + b.get(), a.get()),
                None => prop_assert!(b > a),
            }
        }
    }
}
