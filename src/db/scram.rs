//! Passwords: generated from the OS's random source, and sent to the server
//! only as SCRAM-SHA-256 verifiers (as psql's `\password` does), so the
//! plaintext never reaches the server, its statement log or pg_stat_activity.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

const ITERATIONS: u32 = 4096;

/// A password that never prints: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// 32 alphanumeric characters (about 190 bits) from the OS's random source.
    pub fn generate() -> Self {
        Self(
            OsRng
                .sample_iter(&Alphanumeric)
                .take(32)
                .map(char::from)
                .collect(),
        )
    }

    /// The plaintext; call only to show it once to the operator or to hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password`, with a random salt.
pub fn verifier(password: &Secret) -> String {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    verifier_with_salt(password.expose().as_bytes(), &salt, ITERATIONS)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn verifier_with_salt(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn generated_passwords_differ_and_are_long() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
    }

    #[test]
    fn verifier_has_postgres_shape() {
        let v = verifier_with_salt(b"secret", b"0123456789abcdef", 4096);
        let (head, keys) = v.split_once('$').unwrap().1.split_once('$').unwrap();
        assert!(head.starts_with("4096:"));
        assert_eq!(keys.split(':').count(), 2);
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
    }
}
