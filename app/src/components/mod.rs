mod credits_card;
mod notices;
mod top_bar;
mod transactions;

pub use credits_card::{BucketList, CreditsCard};
pub use notices::{ErrorPanel, Loading};
pub use top_bar::TopBar;
pub use transactions::TransactionTable;
