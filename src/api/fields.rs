//! The text fields of the operator API's bodies, parsed once at the edge: an optional
//! printable text, a person's email, a role.

use super::ApiError;
use crate::accounts::Email;
use app::domain::Role;

/// Trimmed; `None` when absent or empty; refused when longer than `max` characters as sent
/// (the OpenAPI description's `maxLength` counts surrounding spaces too) or holding control
/// characters.
pub(super) fn text(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = value else {
        return Ok(None);
    };
    let trimmed = raw.trim();
    if raw.chars().count() > max || trimmed.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "{field} must be at most {max} printable characters"
        )));
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// As [`text`], for a field whose description says `minLength: 1`: when present, an empty
/// string is refused rather than taken as absent.
pub(super) fn nonempty(
    field: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    if value.as_deref() == Some("") {
        return Err(ApiError::Invalid(format!("{field} must not be empty")));
    }
    text(field, value, max)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_measured_as_sent_and_trimmed_after() {
        assert_eq!(
            text("target", Some("  launch ".into()), 20).unwrap(),
            Some("launch".into())
        );
        assert_eq!(text("target", Some("   ".into()), 20).unwrap(), None);
        assert_eq!(text("target", None, 20).unwrap(), None);
        // 21 characters sent, 20 after trimming: still past the limit the description states.
        let padded = format!("\t{}", "x".repeat(20));
        assert!(text("target", Some(padded), 20).is_err());
        assert!(text("target", Some("a\u{7}b".into()), 20).is_err());
    }

    #[test]
    fn a_field_that_must_not_be_empty_refuses_the_empty_string_only() {
        assert!(nonempty("action", Some(String::new()), 20).is_err());
        assert_eq!(nonempty("action", None, 20).unwrap(), None);
        assert_eq!(nonempty("action", Some("  ".into()), 20).unwrap(), None);
        assert_eq!(
            nonempty("action", Some("video".into()), 20).unwrap(),
            Some("video".into())
        );
    }
}
