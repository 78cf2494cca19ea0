//! Password hashing with argon2id, always off the async executor: hashing takes tens of
//! milliseconds of CPU on purpose, which would stall every other request on that thread.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest password Tally accepts.
pub const MIN_LENGTH: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes a new password (argon2id, default parameters, random salt).
pub async fn hash(password: String) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hashing(e.to_string()))?
}

/// A hash of a random password nobody knows, verified when the email is unknown so that a
/// wrong email takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(salt.as_str().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// Checks a password against a stored hash; `None` (no such user) checks a decoy and fails.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash_text = stored.unwrap_or_else(|| decoy_hash().to_owned());
        let Ok(hash) = PasswordHash::new(&hash_text) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        ok && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify("wrong horse".into(), Some(hash)).await);
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify("anything at all".into(), None).await);
    }

    #[tokio::test]
    async fn short_passwords_are_refused() {
        assert!(matches!(
            hash("short".into()).await,
            Err(PasswordError::TooShort)
        ));
    }
}
