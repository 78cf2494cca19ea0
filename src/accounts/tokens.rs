//! Secrets handed to people and programs (session tokens, API keys). Only their SHA-256
//! hashes are stored: they are long and random, so a fast hash is enough.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random secret: `prefix` plus 32 random bytes in hex.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex(&bytes))
}

/// The hash stored in place of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `given` is `expected`, in time that depends on neither: the comparison runs over
/// their hashes, so not even the length leaks.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hash_to_stable_hex() {
        let a = new_secret("tly_");
        assert!(a.starts_with("tly_") && a.len() == 4 + 64);
        assert_ne!(a, new_secret("tly_"));
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_eq!(hash_secret(&a).len(), 64);
    }

    #[test]
    fn only_the_same_secret_matches() {
        assert!(same_secret("sk_test_abc", "sk_test_abc"));
        assert!(!same_secret("sk_test_abd", "sk_test_abc"));
        assert!(!same_secret("sk_test_ab", "sk_test_abc"));
        assert!(!same_secret("", "sk_test_abc"));
    }
}
