//! Domain types shared by the server and the browser.
//!
//! Raw input becomes one of these types in exactly one place (the edge: an HTTP handler, a
//! CLI argument, a database row), so the rules and the UI never see unchecked data.

mod auto_reload;
mod credits;
mod ids;
mod kinds;
mod money;
mod packs;
mod rates;
mod roles;
mod storefront;
mod subscriptions;
mod unit;

pub use auto_reload::{
    backoff_after, decide, month_start, price_of, reload_credits, AutoReloadSettings, DeclineState,
    PackDeal, ReloadAmount, ReloadDecision, ReloadMode, ReloadState, SettingsError, SkipReason,
    TryAgainError, PAUSE_AFTER_DECLINES,
};
pub use credits::{Credits, CreditsError, MAX_CREDITS};
pub use ids::{IdError, WorkspaceId};
pub use kinds::{EntryType, GrantKind, UnknownValue};
pub use money::{Currency, Money, MoneyError};
pub use packs::{
    best_value, bonus_at, next_step, price_per_thousand, CustomAmountError, CustomAmountTerms,
    PaymentObservation, PurchaseOrigin, PurchaseStatus, PurchaseStep,
};
pub use rates::{format_milli, parse_milli, Modality, PriceError, Rate};
pub use roles::{BillingManagers, MemberView, RecoveryAction, Role};
pub use storefront::{BuyingPolicy, Storefront, TermsError};
pub use subscriptions::{
    invoice_grant, BillingInterval, NoGrant, PaidInvoice, PlanTerms, SubscriptionGrant,
    SubscriptionStatus,
};
pub use unit::{CreditUnit, UnitError};
