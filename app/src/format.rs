//! How amounts and dates are shown to people.

use crate::domain::CreditUnit;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
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

/// The months' short names, January first.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

// Dates are put together from their parts rather than through chrono's format strings: the
// islands show dates too, and a format string's parser and printer would be in the browser's
// bundle for two fixed layouts.

/// `1 Dec 2026`.
pub fn date(at: &DateTime<Utc>) -> String {
    day(&at.date_naive())
}

/// `1 Dec 2026`, for a calendar day.
pub fn day(on: &NaiveDate) -> String {
    format!("{} {}", day_month(on), on.year())
}

/// `1 Dec`: a day of the chart's month-long window.
pub fn day_month(on: &NaiveDate) -> String {
    format!("{} {}", on.day(), MONTHS[on.month0() as usize])
}

/// `21 Nov 2026, 14:05 UTC`.
pub fn date_time(at: &DateTime<Utc>) -> String {
    format!("{}, {:02}:{:02} UTC", date(at), at.hour(), at.minute())
}

/// Appends `text` with the characters HTML gives a meaning escaped, so it reads as text in an
/// element or in a double-quoted attribute (for markup written as a string).
pub fn push_escaped(out: &mut String, text: &str) {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The text with its first letter upper-case (error messages start lower-case).
///
/// Only an ASCII letter changes: the texts are Tally's own words (messages, card brands'
/// identifiers), and Unicode's case tables would add some 14 KB to the browser's bundle for
/// nothing.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => std::iter::once(first.to_ascii_uppercase())
            .chain(chars)
            .collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_message_begins_with_a_capital() {
        assert_eq!(
            capitalised("the amount is too small."),
            "The amount is too small."
        );
        assert_eq!(capitalised("visa"), "Visa");
        assert_eq!(capitalised(""), "");
        // Only ASCII letters change (see the function).
        assert_eq!(capitalised("évian"), "évian");
    }

    #[test]
    fn dates_are_short_and_in_utc() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(date(&at), "1 Dec 2026");
        assert_eq!(date_time(&at), "1 Dec 2026, 00:00 UTC");
        let at = Utc.with_ymd_and_hms(2027, 1, 21, 14, 5, 59).unwrap();
        assert_eq!(date(&at), "21 Jan 2027");
        assert_eq!(date_time(&at), "21 Jan 2027, 14:05 UTC");
        let on = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(day(&on), "9 Mar 2026");
        assert_eq!(day_month(&on), "9 Mar");
    }
}
