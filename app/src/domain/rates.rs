use super::kinds::{spelled_enum, UnknownValue};
use super::{CreditUnit, Credits};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of AI work a model does, and so how its usage is counted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Counted in tokens, priced per 1,000.
    Text,
    /// Counted in generated assets.
    Image,
    /// Counted in seconds of output.
    Video,
}

spelled_enum!(Modality, "modality", {
    Text => "text",
    Image => "image",
    Video => "video",
});

impl Modality {
    /// How many units one rate covers: text is priced per 1,000 tokens.
    pub const fn units_per_rate(self) -> i64 {
        match self {
            Modality::Text => 1_000,
            Modality::Image | Modality::Video => 1,
        }
    }

    /// The unit as people read it in a rate ("per 1K tokens").
    pub const fn rate_unit(self) -> &'static str {
        match self {
            Modality::Text => "per 1K tokens",
            Modality::Image => "per image",
            Modality::Video => "per second",
        }
    }

    /// What the size of one action counts.
    pub const fn unit_name(self) -> &'static str {
        match self {
            Modality::Text => "tokens",
            Modality::Image => "images",
            Modality::Video => "seconds",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Modality::Text => "Text",
            Modality::Image => "Image",
            Modality::Video => "Video",
        }
    }
}

/// A model's price: thousandths of a credit per rate unit, so rates may have fractions while
/// every charge stays a whole number of credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub model: String,
    pub label: String,
    pub modality: Modality,
    pub millicredits: i64,
}

/// Why a price cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("units must be a whole number above zero")]
    BadUnits,
    #[error("that action would cost more credits than Tally accepts")]
    TooLarge,
}

impl Rate {
    /// The credits `units` cost at this rate, rounded up to a whole credit (a tiny action still
    /// costs one credit; nobody is charged a fraction).
    pub fn price(&self, units: i64) -> Result<Credits, PriceError> {
        if units <= 0 {
            return Err(PriceError::BadUnits);
        }
        let per = i128::from(self.modality.units_per_rate()) * 1_000;
        let milli = i128::from(units) * i128::from(self.millicredits);
        let credits = (milli + per - 1) / per;
        i64::try_from(credits.max(1))
            .ok()
            .and_then(|c| Credits::new(c).ok())
            .ok_or(PriceError::TooLarge)
    }

    /// The rate as people read it: `1.5 credits per 1K tokens`.
    pub fn describe(&self) -> String {
        self.describe_in(&CreditUnit::Credits)
    }

    /// The rate in `unit`: `1.5 credits per 1K tokens`, or `$0.015 per 1K tokens`.
    pub fn describe_in(&self, unit: &CreditUnit) -> String {
        format!(
            "{} {}",
            unit.rate(self.millicredits),
            self.modality.rate_unit()
        )
    }
}

/// Thousandths as a decimal: 1500 → `1.5`, 2000 → `2`, 125 → `0.125`.
pub fn format_milli(milli: i64) -> String {
    let whole = milli / 1_000;
    let frac = (milli % 1_000).abs();
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

/// Parses a decimal rate such as `1.5` or `0.125` into thousandths (at most three decimals).
pub fn parse_milli(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || (!frac.is_empty() && !digits(frac)) || frac.len() > 3 {
        return Err("a rate is a positive decimal with at most three decimals, such as 1.5".into());
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| "that rate is too large".to_string())?;
    let frac: i64 = format!("{frac:0<3}").parse().unwrap_or(0);
    let milli = whole
        .checked_mul(1_000)
        .and_then(|w| w.checked_add(frac))
        .filter(|m| *m > 0 && *m <= 1_000_000_000)
        .ok_or_else(|| "a rate must be above zero and at most 1,000,000 credits".to_string())?;
    Ok(milli)
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.model, self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(modality: Modality, millicredits: i64) -> Rate {
        Rate {
            model: "m".into(),
            label: "M".into(),
            modality,
            millicredits,
        }
    }

    #[test]
    fn a_rate_reads_in_its_own_unit() {
        let cases = [
            (
                Modality::Text,
                "1.5 credits per 1K tokens",
                "tokens",
                "Text",
            ),
            (Modality::Image, "1.5 credits per image", "images", "Image"),
            (
                Modality::Video,
                "1.5 credits per second",
                "seconds",
                "Video",
            ),
        ];
        for (modality, described, unit, label) in cases {
            let r = rate(modality, 1_500);
            assert_eq!(r.describe(), described);
            assert_eq!(r.to_string(), format!("m: {described}"));
            assert_eq!(modality.unit_name(), unit);
            assert_eq!(modality.label(), label);
        }
    }

    #[test]
    fn whole_rates_parse_and_malformed_ones_say_how_to_write_them() {
        assert_eq!(parse_milli("2"), Ok(2_000));
        assert_eq!(parse_milli("0.125"), Ok(125));
        let how =
            Err("a rate is a positive decimal with at most three decimals, such as 1.5".to_owned());
        for bad in ["", ".5", "1.2345", "1,5"] {
            assert_eq!(parse_milli(bad), how, "{bad:?}");
        }
    }

    #[test]
    fn text_is_priced_per_thousand_tokens_and_rounded_up() {
        let text = rate(Modality::Text, 1_500);
        assert_eq!(
            text.price(1_000).unwrap().get(),
            2,
            "1.5 credits round up to 2"
        );
        assert_eq!(text.price(2_000).unwrap().get(), 3);
        assert_eq!(
            text.price(1).unwrap().get(),
            1,
            "the smallest action costs one credit"
        );
    }

    #[test]
    fn images_and_video_are_priced_per_unit() {
        assert_eq!(rate(Modality::Image, 40_000).price(3).unwrap().get(), 120);
        assert_eq!(rate(Modality::Video, 12_500).price(10).unwrap().get(), 125);
    }

    #[test]
    fn bad_units_are_refused() {
        assert_eq!(
            rate(Modality::Image, 1_000).price(0),
            Err(PriceError::BadUnits)
        );
        assert_eq!(
            rate(Modality::Image, 1_000_000_000).price(i64::MAX),
            Err(PriceError::TooLarge)
        );
    }

    #[test]
    fn rates_parse_and_print_as_decimals() {
        assert_eq!(parse_milli("1.5"), Ok(1_500));
        assert_eq!(parse_milli("0.125"), Ok(125));
        assert_eq!(parse_milli("40"), Ok(40_000));
        assert!(parse_milli("0").is_err());
        assert!(parse_milli("1.2345").is_err());
        assert!(parse_milli("-1").is_err());
        assert!(parse_milli("abc").is_err());
        assert_eq!(format_milli(1_500), "1.5");
        assert_eq!(format_milli(125), "0.125");
        assert_eq!(format_milli(40_000), "40");
    }

    proptest! {
        #[test]
        fn prices_never_undercharge(milli in 1..1_000_000_i64, units in 1..10_000_000_i64, modality in prop::sample::select(Modality::ALL.to_vec())) {
            let r = rate(modality, milli);
            let credits = r.price(units).unwrap().get();
            let exact_milli = i128::from(units) * i128::from(milli);
            let charged_milli = i128::from(credits) * i128::from(modality.units_per_rate()) * 1_000;
            prop_assert!(charged_milli >= exact_milli, "never less than the exact cost");
            prop_assert!(credits == 1 || charged_milli - exact_milli < i128::from(modality.units_per_rate()) * 1_000, "at most one credit over");
        }

        #[test]
        fn decimal_rates_round_trip(milli in 1..1_000_000_000_i64) {
            prop_assert_eq!(parse_milli(&format_milli(milli)), Ok(milli));
        }
    }
}
