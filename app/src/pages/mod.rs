mod billing;
mod history;
mod login;
mod not_found;

pub use billing::BillingPage;
pub use history::HistoryPage;
pub use login::LoginPage;
pub use not_found::NotFound;
