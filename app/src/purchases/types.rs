use crate::domain::{
    Credits, CustomAmountTerms, Money, PurchaseOrigin, PurchaseStatus, WorkspaceId,
};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A pack on sale, as the purchase section shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackOffer {
    pub id: String,
    pub name: String,
    pub credits: Credits,
    /// Extra credits while a promotion runs (zero otherwise).
    pub bonus: Credits,
    #[serde(deserialize_with = "crate::codec::utc_option")]
    pub bonus_ends_at: Option<DateTime<Utc>>,
    pub price: Money,
    /// Price per 1,000 credits, bonus included.
    pub per_thousand: Money,
    pub best_value: bool,
}

/// What the buyer picked in the purchase section: a pack, or a custom amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    Pack(PackOffer),
    Custom,
}

impl PackOffer {
    /// Credits the buyer receives, bonus included.
    pub fn total_credits(&self) -> Credits {
        self.credits.checked_add(self.bonus).unwrap_or(self.credits)
    }
}

/// A card saved with the payment provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCard {
    pub id: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub is_default: bool,
}

impl SavedCard {
    /// "Visa •••• 4242".
    pub fn label(&self) -> String {
        format!("{} •••• {}", brand_label(&self.brand), self.last4)
    }

    /// "08/2030".
    pub fn expiry(&self) -> String {
        format!("{:02}/{}", self.exp_month, self.exp_year)
    }
}

/// A card brand as people write it.
pub fn brand_label(brand: &str) -> String {
    match brand {
        "visa" => "Visa".into(),
        "mastercard" => "Mastercard".into(),
        "amex" => "American Express".into(),
        "discover" => "Discover".into(),
        "jcb" => "JCB".into(),
        "diners" => "Diners Club".into(),
        "unionpay" => "UnionPay".into(),
        "" => "Card".into(),
        other => crate::format::capitalised(other),
    }
}

/// One purchase: a receipt line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseView {
    pub id: String,
    #[serde(deserialize_with = "crate::codec::utc")]
    pub created_at: DateTime<Utc>,
    pub origin: PurchaseOrigin,
    pub description: String,
    pub credits: Credits,
    pub bonus: Credits,
    pub amount: Money,
    pub status: PurchaseStatus,
    pub payment_method: Option<String>,
    pub receipt_url: Option<String>,
    /// Why the payment failed, in the provider's words.
    pub failure_reason: Option<String>,
    /// Credits taken back after a dispute or refund.
    pub reversed_credits: Credits,
}

impl PurchaseView {
    /// Credits the purchase adds, bonus included.
    pub fn total_credits(&self) -> Credits {
        self.credits.checked_add(self.bonus).unwrap_or(self.credits)
    }

    /// The lines support needs to find this purchase, ready to paste.
    pub fn support_details(&self, workspace: &WorkspaceId, workspace_name: &str) -> String {
        format!(
            "Workspace: {workspace_name} ({workspace})\nPurchase: {}\nTime: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC\nItem: {}\nAmount: {} {}\nCredits: {}\nStatus: {}",
            self.id,
            // From its parts, not a format string: the purchase page's island builds this too.
            self.created_at.year(),
            self.created_at.month(),
            self.created_at.day(),
            self.created_at.hour(),
            self.created_at.minute(),
            self.created_at.second(),
            self.description,
            self.amount,
            self.amount.currency().as_str().to_ascii_uppercase(),
            self.total_credits(),
            self.status.label(),
        )
    }
}

/// The Buy credits section of the Billing page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseSection {
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    /// Payments go to the test-mode emulator or a Stripe test key.
    pub test_mode: bool,
    /// The viewer may buy (billing managers only). Everyone else gets the catalog alone: no
    /// saved cards and no purchases.
    pub can_buy: bool,
    pub who_can_buy: String,
    pub packs: Vec<PackOffer>,
    pub custom: CustomAmountTerms,
    pub cards: Vec<SavedCard>,
    /// Set when the saved cards could not be read from the payment provider.
    pub cards_error: Option<String>,
    /// Newest first.
    pub purchases: Vec<PurchaseView>,
    /// Set when the deployment sells credits to paid plans only and this workspace is on none:
    /// the page says how to upgrade instead of offering to buy.
    #[serde(default)]
    pub upgrade: Option<UpgradeNote>,
}

impl PurchaseSection {
    /// What the Buy credits island reads, and no more: its props travel in the page and are
    /// read in the browser, where every field's type costs bundle size. The purchases, the
    /// workspace and the other saved cards stay on the server.
    pub fn buy_options(&self) -> BuyOptions {
        BuyOptions {
            test_mode: self.test_mode,
            can_buy: self.can_buy,
            who_can_buy: self.who_can_buy.clone(),
            packs: self.packs.clone(),
            custom: self.custom.clone(),
            default_card: self.cards.iter().find(|c| c.is_default).cloned(),
            upgrade: self.upgrade.clone(),
        }
    }
}

/// The Buy credits card's choices: the packs, the custom amount's terms, and the card a
/// checkout would offer first. Read on the server only; its buying form (an island) gets the
/// fields it needs from it, never the rest of the purchase section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuyOptions {
    pub test_mode: bool,
    pub can_buy: bool,
    pub who_can_buy: String,
    pub packs: Vec<PackOffer>,
    pub custom: CustomAmountTerms,
    /// The workspace's default saved card, if it has one.
    pub default_card: Option<SavedCard>,
    pub upgrade: Option<UpgradeNote>,
}

/// How a free workspace can come to buy credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeNote {
    pub message: String,
    /// The host product's page where the plan is changed, when the deployment names one.
    pub url: Option<String>,
}

/// What a billing manager chose to buy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PurchaseChoice {
    Pack(String),
    Custom(Credits),
}

/// A checkout that has been opened with the payment provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutStarted {
    pub purchase_id: String,
    /// The provider's hosted payment page.
    pub url: String,
}

/// The purchase return page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseDetail {
    pub purchase: PurchaseView,
    pub balance: Credits,
    pub test_mode: bool,
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    /// The unit this deployment shows amounts in.
    pub unit: crate::domain::CreditUnit,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn card(id: &str, is_default: bool) -> SavedCard {
        SavedCard {
            id: id.into(),
            brand: "visa".into(),
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2030,
            is_default,
        }
    }

    /// A pack bought at 2023-11-14 22:13:20 UTC, still open.
    fn purchase() -> PurchaseView {
        PurchaseView {
            id: "pur_private_history".into(),
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            origin: PurchaseOrigin::Pack,
            description: "Starter pack".into(),
            credits: Credits::new(5_000).unwrap(),
            bonus: Credits::new(250).unwrap(),
            amount: Money::new(500, Currency::usd()).unwrap(),
            status: PurchaseStatus::Open,
            payment_method: None,
            receipt_url: None,
            failure_reason: None,
            reversed_credits: Credits::ZERO,
        }
    }

    #[test]
    fn support_details_name_the_purchase_with_its_time_in_utc_to_the_second() {
        let workspace = WorkspaceId::parse("ws_acmeai0demo0000001").unwrap();
        let details = purchase().support_details(&workspace, "Acme AI");
        let mut lines = details.lines();
        assert_eq!(
            lines.next(),
            Some("Workspace: Acme AI (ws_acmeai0demo0000001)")
        );
        assert_eq!(lines.next(), Some("Purchase: pur_private_history"));
        assert_eq!(lines.next(), Some("Time: 2023-11-14 22:13:20 UTC"));
        assert_eq!(lines.next(), Some("Item: Starter pack"));
        assert!(lines
            .next()
            .is_some_and(|l| l.starts_with("Amount: ") && l.ends_with(" USD")));
        assert!(lines
            .next()
            .is_some_and(|l| l.starts_with("Credits: 5") && l.contains("250")));
        assert!(lines.next().is_some_and(|l| l.starts_with("Status: ")));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn the_buy_island_gets_the_default_card_and_never_the_purchases() {
        let usd = |minor| Money::new(minor, Currency::usd()).unwrap();
        let section = PurchaseSection {
            workspace_id: WorkspaceId::parse("ws_secretworkspace01").unwrap(),
            workspace_name: "Acme AI".into(),
            test_mode: true,
            can_buy: true,
            who_can_buy: "Owners and admins.".into(),
            packs: Vec::new(),
            custom: CustomAmountTerms {
                increment: Credits::new(100).unwrap(),
                min: Credits::new(100).unwrap(),
                max: Credits::new(100_000).unwrap(),
                price_per_increment: usd(100),
            },
            cards: vec![card("pm_other", false), card("pm_default", true)],
            cards_error: None,
            purchases: vec![purchase()],
            upgrade: None,
        };
        let options = section.buy_options();
        assert_eq!(options.default_card, Some(card("pm_default", true)));
        let props = serde_json::to_string(&options).unwrap();
        for private in ["pur_private_history", "pm_other", "ws_secretworkspace01"] {
            assert!(!props.contains(private), "{private} in {props}");
        }
    }
}
