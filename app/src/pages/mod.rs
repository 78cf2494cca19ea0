mod api_keys;
mod billing;
mod history;
mod login;
mod not_found;
mod notifications;
mod purchase;
mod rates;
mod studio;

pub use api_keys::ApiKeysPage;
pub use billing::BillingPage;
pub use history::HistoryPage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use notifications::NotificationsPage;
pub use purchase::PurchasePage;
pub use rates::RatesPage;
pub use studio::StudioPage;
