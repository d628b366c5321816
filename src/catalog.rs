//! The repository's layout and the manifest format (docs/backup-format.md).
//!
//! ```text
//! backups/<ID>/data.dump.zst.age       pg_dump custom archive, zstd, age
//! backups/<ID>/globals.sql.zst.age     pg_dumpall --globals-only --no-role-passwords, zstd, age
//! backups/<ID>/metadata.json.age       row counts, fingerprints, audit head, plaintext digests (age)
//! backups/<ID>/manifest.json           written last: without it the backup does not exist
//! ```
//!
//! The manifest is the only plaintext object. It holds what `verify` needs
//! without a key (stored sizes and SHA-256) and what scheduling needs (times),
//! nothing about the business: table names, row counts and fingerprints are
//! in the encrypted metadata.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pipeline::{Digest, Digests};

pub const FORMAT: u32 = 1;
pub const PREFIX: &str = "backups/";
pub const MANIFEST: &str = "manifest.json";
pub const DATA: &str = "data.dump.zst.age";
pub const GLOBALS: &str = "globals.sql.zst.age";
pub const METADATA: &str = "metadata.json.age";

pub fn key(id: &str, object: &str) -> String {
    format!("{PREFIX}{id}/{object}")
}

/// A new backup id: UTC time to the second, then 4 random hex digits.
/// Ids sort by time.
pub fn new_id(now: DateTime<Utc>) -> String {
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    )
}

pub fn is_id(s: &str) -> bool {
    s.len() == 21
        && s.as_bytes()[8] == b'T'
        && s.as_bytes()[15] == b'Z'
        && s.as_bytes()[16] == b'-'
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 15 | 16 => true,
            17..=20 => c.is_ascii_hexdigit(),
            _ => c.is_ascii_digit(),
        })
}

/// One stored object, as the manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredObject {
    pub name: String,
    pub key: String,
    pub stored: Digest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub kind: String,
    pub database: String,
    pub server_version: String,
    pub stockops_version: String,
    pub started_at: DateTime<Utc>,
    /// The instant the dump's snapshot shows the database at.
    pub snapshot_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// age recipients (public keys) the objects are encrypted to.
    pub recipients: Vec<String>,
    pub compression: String,
    pub objects: Vec<StoredObject>,
}

impl Manifest {
    pub fn object(&self, name: &str) -> Option<&StoredObject> {
        self.objects.iter().find(|o| o.name == name)
    }

    /// The server's major version, for picking matching client programs.
    pub fn server_major(&self) -> u32 {
        self.server_version
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15)
    }
}

/// Per-table proof of content, taken in the dump's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableFingerprint {
    pub schema: String,
    pub table: String,
    pub rows: i64,
    /// Sum of a 64-bit hash of every row (order-independent).
    pub fingerprint: String,
    /// How rows were hashed: "record" (hash_record_extended) or "text" (hashtextextended of row::text).
    #[serde(default)]
    pub method: String,
}

/// The encrypted part of a backup's description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    pub format: u32,
    pub id: String,
    pub snapshot: String,
    pub tables: Vec<TableFingerprint>,
    /// Audit chain head at the snapshot (POSITION:HASH), if the schema has one.
    pub audit_head: Option<String>,
    pub data: Digests,
    pub globals: Digests,
    pub pg_dump_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_parse() {
        let a = new_id("2026-01-02T03:04:05Z".parse().unwrap());
        let b = new_id("2026-11-02T03:04:05Z".parse().unwrap());
        assert!(a < b);
        assert!(is_id(&a), "{a}");
        assert!(a.starts_with("20260102T030405Z-"));
        assert!(!is_id("latest") && !is_id("20260102T030405Z-zzzz"));
    }
}
