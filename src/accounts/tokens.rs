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
}
