//! Stripe's published test card numbers and what each does, as the test-mode emulator
//! plays them.

/// What happens when a test card is used.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CardBehaviour {
    /// Every charge succeeds.
    Succeeds,
    /// Every charge is declined with this decline code.
    Declines(&'static str),
    /// Saving the card works, every charge fails (Stripe's `...0341`).
    AttachesThenDeclines,
    /// Charges need the cardholder to authenticate: fine while they are at the checkout page,
    /// refused off-session with `authentication_required`.
    RequiresAuthentication,
    /// The charge succeeds, then the cardholder disputes it.
    Disputed,
}

/// A test card.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    /// Stripe's ready-made test payment method for the card (`pm_card_visa`), usable
    /// wherever a payment method id is.
    pub payment_method: &'static str,
    pub brand: &'static str,
    pub behaviour: CardBehaviour,
    /// A short description for the checkout page's hint list.
    pub hint: &'static str,
}

/// The cards the emulator knows. Any other number is refused, as Stripe's test mode does with
/// real card numbers.
pub const TEST_CARDS: &[TestCard] = &[
    TestCard {
        number: "4242424242424242",
        payment_method: "pm_card_visa",
        brand: "visa",
        behaviour: CardBehaviour::Succeeds,
        hint: "succeeds",
    },
    TestCard {
        number: "5555555555554444",
        payment_method: "pm_card_mastercard",
        brand: "mastercard",
        behaviour: CardBehaviour::Succeeds,
        hint: "succeeds (Mastercard)",
    },
    TestCard {
        number: "4000000000000002",
        payment_method: "pm_card_visa_chargeDeclined",
        brand: "visa",
        behaviour: CardBehaviour::Declines("generic_decline"),
        hint: "is declined",
    },
    TestCard {
        number: "4000000000009995",
        payment_method: "pm_card_visa_chargeDeclinedInsufficientFunds",
        brand: "visa",
        behaviour: CardBehaviour::Declines("insufficient_funds"),
        hint: "is declined for insufficient funds",
    },
    TestCard {
        number: "4000000000000341",
        payment_method: "pm_card_chargeCustomerFail",
        brand: "visa",
        behaviour: CardBehaviour::AttachesThenDeclines,
        hint: "can be saved, but charges fail",
    },
    TestCard {
        number: "4000002760003184",
        payment_method: "pm_card_authenticationRequired",
        brand: "visa",
        behaviour: CardBehaviour::RequiresAuthentication,
        hint: "always asks the cardholder to authenticate",
    },
    TestCard {
        number: "4000000000000259",
        payment_method: "pm_card_createDispute",
        brand: "visa",
        behaviour: CardBehaviour::Disputed,
        hint: "succeeds, then is disputed",
    },
];

/// Finds a test card by its number, ignoring spaces and dashes.
pub fn test_card(number: &str) -> Option<&'static TestCard> {
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    TEST_CARDS.iter().find(|card| card.number == digits)
}

/// Finds a test card by its ready-made payment method id (`pm_card_visa`).
pub fn test_method(id: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|card| card.payment_method == id)
}

/// Groups a card number in fours for display.
pub fn spaced(number: &str) -> String {
    number
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The message Stripe gives for a decline code.
pub fn decline_message(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "Your card has insufficient funds.",
        "authentication_required" => {
            "Your card was declined. This transaction requires authentication."
        }
        _ => "Your card was declined.",
    }
}

/// The card error Stripe reports for a decline code: `authentication_required` for a bank
/// that wants the cardholder, `card_declined` for the rest.
pub fn error_code(decline_code: &str) -> &'static str {
    if decline_code == "authentication_required" {
        "authentication_required"
    } else {
        "card_declined"
    }
}

/// Parses an expiry typed as `MM/YY` or `MM/YYYY` into (month, four-digit year).
pub fn parse_expiry(text: &str) -> Option<(u32, u32)> {
    let (month, year) = text.trim().split_once('/')?;
    let month: u32 = month.trim().parse().ok()?;
    let year_text = year.trim();
    let mut year: u32 = year_text.parse().ok()?;
    if year_text.len() == 2 {
        year += 2000;
    }
    ((1..=12).contains(&month) && (2000..=2100).contains(&year)).then_some((month, year))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_are_found_however_they_are_typed() {
        assert_eq!(
            test_card("4242 4242 4242 4242").map(|c| c.behaviour),
            Some(CardBehaviour::Succeeds)
        );
        assert_eq!(
            test_card("4000-0000-0000-0002").map(|c| c.behaviour),
            Some(CardBehaviour::Declines("generic_decline"))
        );
        assert!(test_card("4111 1111 1111 1112").is_none());
        assert_eq!(
            test_method("pm_card_visa").map(|c| c.number),
            Some("4242424242424242")
        );
        assert!(test_method("pm_card_unknown").is_none());
        assert_eq!(spaced("4242424242424242"), "4242 4242 4242 4242");
    }

    #[test]
    fn expiry_dates_take_two_or_four_digit_years() {
        assert_eq!(parse_expiry("12/34"), Some((12, 2034)));
        assert_eq!(parse_expiry("01/2030"), Some((1, 2030)));
        assert_eq!(parse_expiry("13/30"), None);
        assert_eq!(parse_expiry("soon"), None);
    }
}
