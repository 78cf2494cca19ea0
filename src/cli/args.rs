//! Clap value parsers: arguments become the domain's newtypes as they are read, so a bad
//! value is refused in one line (clap names the flag) before the database is opened.

use crate::clock::Millis;
use app::domain::{BillingManagers, Credits, Currency, MemberView, Modality, Role, WorkspaceId};

/// A workspace id such as `ws_k3j5…`.
pub(crate) fn workspace(text: &str) -> Result<WorkspaceId, String> {
    WorkspaceId::parse(text.trim()).map_err(|_| "not a workspace id (they look like ws_…)".into())
}

/// A whole number of credits, zero included; thousands separators are allowed.
pub(crate) fn credits(text: &str) -> Result<Credits, String> {
    Credits::parse(&text.replace(',', "")).map_err(|_| "a whole number of credits".into())
}

/// A whole number of credits above zero.
pub(crate) fn positive_credits(text: &str) -> Result<Credits, String> {
    Credits::positive(credits(text)?.get())
        .map_err(|_| "a whole number of credits above zero".into())
}

/// A role, spelled as the API spells it.
pub(crate) fn role(text: &str) -> Result<Role, String> {
    Role::parse(text.trim()).map_err(|_| "owner, admin, billing_admin, member or guest".into())
}

/// Who may buy credits.
pub(crate) fn billing_managers(text: &str) -> Result<BillingManagers, String> {
    BillingManagers::parse(text.trim()).map_err(|_| "admins or owner_only".into())
}

pub(crate) fn member_view(text: &str) -> Result<MemberView, String> {
    MemberView::parse(text.trim()).map_err(|_| "balance or pool".into())
}

/// How a model's work is measured.
pub(crate) fn modality(text: &str) -> Result<Modality, String> {
    Modality::parse(text.trim()).map_err(|_| "text, image or video".into())
}

/// A currency code such as usd.
pub(crate) fn currency(text: &str) -> Result<Currency, String> {
    Currency::parse(text.trim()).map_err(|e| e.to_string())
}

/// A time in RFC 3339, such as 2026-12-31T23:59:59Z.
pub(crate) fn time(text: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|d| d.timestamp_millis())
        .map_err(|_| "a time such as 2026-12-31T23:59:59Z".into())
}

/// A name people read (a pack's, a plan's): 1 to 60 characters.
pub(crate) fn display_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err("1 to 60 characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_into_the_domain_types_or_say_what_is_expected() {
        assert!(workspace(" ws_abcdefgh ").is_ok());
        assert_eq!(
            workspace("acme").unwrap_err(),
            "not a workspace id (they look like ws_…)"
        );
        assert_eq!(credits("25,000").unwrap().get(), 25_000);
        assert_eq!(credits("0").unwrap(), Credits::ZERO);
        assert!(positive_credits("0").is_err());
        assert!(credits("1.5").is_err());
        assert_eq!(role("billing_admin").unwrap(), Role::BillingAdmin);
        assert!(role("boss").is_err());
        assert_eq!(
            billing_managers("owner_only").unwrap(),
            BillingManagers::OwnerOnly
        );
        assert!(modality("audio").is_err());
        assert!(currency("usd").is_ok());
        assert_eq!(time("1970-01-01T00:00:01Z").unwrap(), 1_000);
        assert!(time("tomorrow").is_err());
        assert!(display_name("  ").is_err());
        assert_eq!(display_name(" Team ").unwrap(), "Team");
    }
}
