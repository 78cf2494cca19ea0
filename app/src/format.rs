//! How amounts and dates are shown to people.

use crate::domain::CreditUnit;
use chrono::{DateTime, Utc};
use leptos::prelude::{provide_context, use_context};

/// The unit amounts are shown in on this page: what [`show_amounts_in`] provided, else
/// credits.
pub fn unit() -> CreditUnit {
    use_context::<CreditUnit>().unwrap_or_default()
}

/// Shows every amount below the calling component in `unit`. Each page calls it with its
/// viewer's unit before it builds its parts.
pub fn show_amounts_in(unit: &CreditUnit) {
    provide_context(unit.clone());
}

/// `1 Dec 2026`.
pub fn date(at: &DateTime<Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

/// `21 Nov 2026, 14:05 UTC`.
pub fn date_time(at: &DateTime<Utc>) -> String {
    at.format("%-d %b %Y, %H:%M UTC").to_string()
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
    fn dates_are_short_and_in_utc() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(date(&at), "1 Dec 2026");
        assert_eq!(date_time(&at), "1 Dec 2026, 00:00 UTC");
    }
}
