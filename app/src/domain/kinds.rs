use serde::{Deserialize, Serialize};
use std::fmt;

/// A value that names none of the known variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// Generates `as_str`, `parse`, `ALL`, `Display`, `FromStr` and `TryFrom<String>` for a fieldless enum whose
/// wire and database spelling is snake_case.
macro_rules! spelled_enum {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case spelling used in JSON, SQL and URLs.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the snake_case spelling.
            pub fn parse(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownValue { what: $what, value: other.chars().take(40).collect() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        // Lets database rows decode the spelling straight into the enum.
        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::parse(&s)
            }
        }
    };
}
pub(crate) use spelled_enum;

/// The kind of a grant (a lot of credits). The kind decides expiry rules and its place in
/// the drawdown order.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantKind {
    Free,
    Promotional,
    Subscription,
    Purchased,
}

spelled_enum!(GrantKind, "grant kind", {
    Free => "free",
    Promotional => "promotional",
    Subscription => "subscription",
    Purchased => "purchased",
});

impl GrantKind {
    /// Place in the drawdown order among lots with the same expiry: limited-time credits
    /// (free, then promotional, then subscription) are used before purchased ones.
    pub const fn drawdown_rank(self) -> u8 {
        match self {
            GrantKind::Free => 0,
            GrantKind::Promotional => 1,
            GrantKind::Subscription => 2,
            GrantKind::Purchased => 3,
        }
    }

    /// A label for people.
    pub const fn label(self) -> &'static str {
        match self {
            GrantKind::Free => "Free",
            GrantKind::Promotional => "Promotional",
            GrantKind::Subscription => "Subscription",
            GrantKind::Purchased => "Purchased",
        }
    }
}

/// The type of a journal entry. Every movement of credits is exactly one of these.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    Purchase,
    AutoReload,
    Grant,
    Consumption,
    Refund,
    Expiry,
    Adjustment,
}

spelled_enum!(EntryType, "transaction type", {
    Purchase => "purchase",
    AutoReload => "auto_reload",
    Grant => "grant",
    Consumption => "consumption",
    Refund => "refund",
    Expiry => "expiry",
    Adjustment => "adjustment",
});

impl EntryType {
    /// A label for people.
    pub const fn label(self) -> &'static str {
        match self {
            EntryType::Purchase => "Purchase",
            EntryType::AutoReload => "Auto-reload",
            EntryType::Grant => "Grant",
            EntryType::Consumption => "Usage",
            EntryType::Refund => "Refund",
            EntryType::Expiry => "Expiry",
            EntryType::Adjustment => "Adjustment",
        }
    }

    /// Entries that add credits to the workspace (counted in "lifetime added").
    pub const fn adds_credits(self) -> bool {
        matches!(
            self,
            EntryType::Purchase | EntryType::AutoReload | EntryType::Grant
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_time_credits_rank_before_purchased_ones() {
        let ranks: Vec<u8> = [
            GrantKind::Free,
            GrantKind::Promotional,
            GrantKind::Subscription,
            GrantKind::Purchased,
        ]
        .iter()
        .map(|k| k.drawdown_rank())
        .collect();
        assert_eq!(ranks, [0, 1, 2, 3]);
    }

    #[test]
    fn people_read_each_kind_and_type_by_its_own_label() {
        assert_eq!(GrantKind::Promotional.label(), "Promotional");
        assert_eq!(GrantKind::Purchased.label(), "Purchased");
        assert_eq!(EntryType::AutoReload.label(), "Auto-reload");
        assert_eq!(EntryType::Consumption.label(), "Usage");
        let labels: std::collections::HashSet<_> =
            EntryType::ALL.iter().map(|t| t.label()).collect();
        assert_eq!(labels.len(), EntryType::ALL.len());
    }

    #[test]
    fn only_purchases_reloads_and_grants_add_credits() {
        let adding: Vec<_> = EntryType::ALL
            .iter()
            .filter(|t| t.adds_credits())
            .copied()
            .collect();
        assert_eq!(
            adding,
            [EntryType::Purchase, EntryType::AutoReload, EntryType::Grant]
        );
    }

    #[test]
    fn every_entry_type_round_trips_through_its_spelling() {
        for t in EntryType::ALL {
            assert_eq!(EntryType::parse(t.as_str()), Ok(*t));
            assert_eq!(
                serde_json::to_string(t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert!(EntryType::parse("withdrawal").is_err());
    }

    #[test]
    fn limited_time_kinds_rank_before_purchased() {
        let mut kinds = GrantKind::ALL.to_vec();
        kinds.sort_by_key(|k| k.drawdown_rank());
        assert_eq!(
            kinds,
            [
                GrantKind::Free,
                GrantKind::Promotional,
                GrantKind::Subscription,
                GrantKind::Purchased
            ]
        );
    }
}
