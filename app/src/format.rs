//! How amounts and dates are shown to people.

use chrono::{DateTime, Utc};

/// `+1,000` or `-25`: signed credits with thousands separators.
pub fn signed_credits(amount: i64) -> String {
    let grouped = crate::domain::Credits::new(amount.abs())
        .map(|c| c.to_string())
        .unwrap_or_else(|_| amount.abs().to_string());
    if amount > 0 {
        format!("+{grouped}")
    } else if amount < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// `1 Dec 2026`.
pub fn date(at: &DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

/// `21 Nov 2026, 14:05 UTC`.
pub fn date_time(at: &DateTime<Utc>) -> String {
    at.format("%-d %b %Y, %H:%M UTC").to_string()
}

/// `1 credit` or `1,500 credits`.
pub fn credits_phrase(credits: crate::domain::Credits) -> String {
    if credits.get() == 1 {
        "1 credit".into()
    } else {
        format!("{credits} credits")
    }
}

/// The text with its first letter upper-case (error messages start lower-case).
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn amounts_carry_their_sign() {
        assert_eq!(signed_credits(1_000), "+1,000");
        assert_eq!(signed_credits(-25), "-25");
        assert_eq!(signed_credits(0), "0");
    }

    #[test]
    fn dates_are_short_and_in_utc() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(date(&at), "1 Dec 2026");
        assert_eq!(date_time(&at), "1 Dec 2026, 00:00 UTC");
    }
}
