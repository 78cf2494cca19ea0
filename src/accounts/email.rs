use std::fmt;

/// An email address, trimmed and lower-cased so that sign-in is case-insensitive.
///
/// Deliberately light: one `@`, something on both sides, a dot in the domain, no spaces,
/// and at most 254 characters. Delivery is the real check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an email address")]
pub struct EmailError(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email, EmailError> {
        let email = text.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Email(email))
        } else {
            Err(EmailError(text.chars().take(60).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_to_lower_case() {
        assert_eq!(
            Email::parse("  Owner@Acme.TEST ").unwrap().as_str(),
            "owner@acme.test"
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "owner",
            "@acme.test",
            "owner@",
            "owner@acme",
            "a b@acme.test",
            "a@b@c.test",
            "a@.test",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
