//! Bearer tokens and API keys are stored only as SHA-256 hashes.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a raw token, as stored and looked up.
pub fn token_hash(raw: &str) -> Vec<u8> {
    Sha256::digest(raw.as_bytes()).to_vec()
}

/// Constant-time comparison of a presented token against a stored hash.
pub fn token_matches(raw: &str, stored_hash: &[u8]) -> bool {
    let presented = Sha256::digest(raw.as_bytes());
    presented.as_slice().ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1
        assert_eq!(hex::encode(token_hash("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(token_matches("abc", &token_hash("abc")));
        assert!(!token_matches("abd", &token_hash("abc")));
        assert!(!token_matches("abc", &[0u8; 31]));
    }
}
