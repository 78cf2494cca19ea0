//! The text fields of the operator API's bodies, parsed once at the edge: an optional
//! printable text, a person's email, a role.

use super::ApiError;
use crate::accounts::Email;
use app::domain::Role;

/// Trimmed; `None` when absent or empty; refused when longer than `max` characters or holding
/// control characters.
pub(super) fn text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(ApiError::Invalid(format!(
                "{field} must be at most {max} printable characters"
            )))
        }
        other => Ok(other),
    }
}

/// A person's email, named `field` in the error.
pub(super) fn email(field: &str, value: &str) -> Result<Email, ApiError> {
    Email::parse(value).map_err(|e| ApiError::Invalid(format!("{field}: {e}")))
}

/// One of the five roles.
pub(super) fn role(value: &str) -> Result<Role, ApiError> {
    Role::parse(value.trim()).map_err(|_| {
        ApiError::Invalid("role must be owner, admin, billing_admin, member or guest".into())
    })
}

/// An id from a path, `prefix_` and up to 40 letters and digits in all; anything else is
/// nobody's id here, so a 404 rather than a 400.
pub(super) fn id<'a>(prefix: &str, id: &'a str) -> Result<&'a str, ApiError> {
    let ok = id.len() <= 40
        && id
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(id)
    } else {
        Err(ApiError::NotFound)
    }
}
