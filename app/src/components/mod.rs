mod auto_reload;
mod credits_card;
mod insufficient;
mod notices;
mod plan;
mod purchase;
mod top_bar;
mod transactions;
mod usage_chart;

pub use auto_reload::AutoReloadCard;
pub use credits_card::{BucketList, CreditsCard};
pub use insufficient::InsufficientCredits;
pub use notices::{ErrorPanel, Loading};
pub use plan::{CreditsHelp, PlanCard, UpcomingExpiries};
pub use purchase::{
    BuyCredits, CopySupportDetails, PurchaseList, PurchaseStatusBadge, SavedCards, TestModeBadge,
};
pub use top_bar::TopBar;
pub use transactions::TransactionTable;
pub use usage_chart::UsageChart;
