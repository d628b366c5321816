//! The repository's layout and the manifest format (docs/backup-format.md).
//!
//! ```text
//! backups/<ID>/data.dump.zst.age       pg_dump custom archive, zstd, age
//! backups/<ID>/globals.sql.zst.age     pg_dumpall --globals-only --no-role-passwords, zstd, age
//!                                      (for people to read; never executed by stockops)
//! backups/<ID>/roles.json.zst.age      roles, memberships, settings as data (crate::backup::globals), zstd, age
//! backups/<ID>/metadata.json.age       row counts, fingerprints, audit head, plaintext digests (age)
//! backups/<ID>/manifest.json           written last: without it the backup does not exist
//!
//! backups/<ID>/base.tar.zst.age        physical: pg_basebackup -Ft -X fetch, zstd, age
//! backups/<ID>/metadata.json.age       physical: plaintext digests, WAL positions, label (age)
//!
//! wal/<TIMELINE>/<FILE>.<SHA256>.zst.age   one archived WAL file (segment, .history,
//!                                          .backup, .partial), zstd, age; SHA256 of the
//!                                          plaintext (see crate::backup::wal)
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
pub const ROLES: &str = "roles.json.zst.age";
pub const METADATA: &str = "metadata.json.age";
pub const BASE: &str = "base.tar.zst.age";

/// What a backup holds: a `pg_dump` archive of one database, or a base
/// backup of the whole cluster (its files, as `pg_basebackup` sends them).
pub const LOGICAL: &str = "logical";
pub const PHYSICAL: &str = "physical";

fn logical() -> String {
    LOGICAL.to_string()
}

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
    /// `logical` or `physical`; manifests written before physical backups
    /// existed have no such field and are logical.
    #[serde(default = "logical")]
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
    /// Physical backups: where in the WAL the backup starts and ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal: Option<WalRange>,
}

/// The WAL a physical backup needs: recovery replays from `start_lsn` and
/// is consistent once it passes `stop_lsn`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalRange {
    pub timeline: u32,
    pub start_lsn: String,
    pub stop_lsn: String,
    /// The WAL file holding `start_lsn` (what `wal verify --from-backup` starts at).
    pub start_segment: String,
    pub stop_segment: String,
    #[serde(deserialize_with = "segment_size")]
    pub segment_size: u64,
    /// The backup's tar carries the WAL from start to stop (`-X fetch`): it
    /// restores on its own, the archive is needed only to go further.
    pub includes_wal: bool,
}

/// A WAL segment size as initdb allows it, a power of two from 1 MiB to
/// 1 GiB: the WAL arithmetic divides by it, and anyone who can write to the
/// bucket can write a manifest (a size of 0 made `prune` panic).
fn segment_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let size = u64::deserialize(d)?;
    if size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size) {
        return Ok(size);
    }
    Err(serde::de::Error::custom(format!(
        "segment_size {size} is not a WAL segment size (a power of two from 1 MiB to 1 GiB)"
    )))
}

/// The encrypted part of a physical backup's description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhysicalMetadata {
    pub format: u32,
    pub id: String,
    pub base: Digests,
    pub wal: WalRange,
    /// pg_basebackup's `--verbose` report (checkpoint, WAL start and end points).
    pub log: String,
    pub pg_basebackup_version: String,
}

impl Manifest {
    pub fn is_physical(&self) -> bool {
        self.kind == PHYSICAL
    }

    /// Logical restores and drills refuse a physical backup, saying what to do.
    pub fn require_logical(&self) -> Result<(), String> {
        if self.is_physical() {
            return Err(format!(
                "backup {} is a physical base backup of the whole cluster: `stockops restore` and `drill` \
                 restore logical backups (pg_dump); pick a logical one (`stockops backups list`), or restore \
                 this one by hand with pg_basebackup's tar format (docs/backup-format.md)",
                self.id
            ));
        }
        Ok(())
    }

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

    /// Check every field that reaches a path, a key, a file or a command
    /// line against a strict grammar: the manifest is plaintext in the
    /// repository, and whoever can write there can write it.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: &str, v: &str| {
            Err(format!(
                "manifest of backup {:?}: {what} {v:?} is not valid; the manifest was altered or damaged",
                self.id.escape_debug().to_string()
            ))
        };
        if !is_id(&self.id) {
            return bad("the id", &self.id);
        }
        if self.kind != LOGICAL && self.kind != PHYSICAL {
            return bad("the kind", &self.kind);
        }
        if !is_database_name(&self.database) {
            return bad("the database name", &self.database);
        }
        if !self
            .server_version
            .starts_with(|c: char| c.is_ascii_digit())
            || self.server_version.chars().any(char::is_control)
        {
            return bad("the server version", &self.server_version);
        }
        let mut seen = std::collections::BTreeSet::new();
        for o in &self.objects {
            let file = match (self.kind.as_str(), o.name.as_str()) {
                (LOGICAL, "data") => DATA,
                (LOGICAL, "globals") => GLOBALS,
                (LOGICAL, "roles") => ROLES,
                (PHYSICAL, "base") => BASE,
                (_, "metadata") => METADATA,
                _ => return bad("the object name", &o.name),
            };
            if !seen.insert(o.name.as_str()) {
                return bad("the object name (listed twice)", &o.name);
            }
            // The one key that name has in this backup's directory: never
            // another backup's objects, a WAL file or `../`.
            if o.key != key(&self.id, file) {
                return bad(&format!("object {}'s key", o.name), &o.key);
            }
            if o.stored.sha256.len() != 64
                || !o.stored.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return bad(&format!("object {}'s sha256", o.name), &o.stored.sha256);
            }
        }
        match (&self.wal, self.is_physical()) {
            (Some(w), true) => self.validate_wal(w),
            (None, false) => Ok(()),
            (Some(_), false) => bad("the kind (a logical backup with a WAL range)", &self.kind),
            (None, true) => bad(
                "the kind (a physical backup without a WAL range)",
                &self.kind,
            ),
        }
    }

    fn validate_wal(&self, w: &WalRange) -> Result<(), String> {
        let bad = |what: &str, v: &str| {
            Err(format!(
                "manifest of backup {}: {what} {v:?} is not valid; the manifest was altered or damaged",
                self.id
            ))
        };
        if w.timeline == 0 {
            return bad("the timeline", "0");
        }
        for lsn in [&w.start_lsn, &w.stop_lsn] {
            if !is_lsn(lsn) {
                return bad("the WAL position", lsn);
            }
        }
        for seg in [&w.start_segment, &w.stop_segment] {
            if seg.len() != 24 || !seg.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("the WAL segment name", seg);
            }
        }
        if !w.segment_size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&w.segment_size) {
            return bad("the WAL segment size", &w.segment_size.to_string());
        }
        Ok(())
    }
}

/// `X/X`: two groups of 1 to 8 hex digits, as PostgreSQL prints an LSN.
fn is_lsn(s: &str) -> bool {
    let hex = |p: &str| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
    s.split_once('/').is_some_and(|(a, b)| hex(a) && hex(b))
}

/// A database name fit for a message, a file name and a command line:
/// 1 to 63 bytes of letters, digits, `_`, `-`, `.` and `$`, not starting
/// with `-` or `.`.
fn is_database_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
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
    /// The roles as data (crate::backup::globals); backups taken before it existed
    /// have none, and `restore --with-globals` refuses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Digests>,
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

    #[test]
    fn a_segment_size_initdb_would_refuse_is_refused() {
        let with = |size: &str| {
            format!(
                r#"{{"format":1,"id":"20260102T030405Z-beef","kind":"physical","database":"inventory",
                "server_version":"15.8","stockops_version":"0.1.0","started_at":"2026-01-02T03:04:05Z",
                "snapshot_at":"2026-01-02T03:04:06Z","finished_at":"2026-01-02T03:04:07Z",
                "recipients":[],"compression":"zstd level 3","objects":[],"wal":{{"timeline":1,
                "start_lsn":"2/19000028","stop_lsn":"2/19434C18","start_segment":"000000010000000200000019",
                "stop_segment":"000000010000000200000019","segment_size":{size},"includes_wal":true}}}}"#
            )
        };
        for good in ["1048576", "16777216", "1073741824"] {
            let m: Manifest = serde_json::from_str(&with(good)).unwrap();
            assert_eq!(m.wal.unwrap().segment_size.to_string(), good);
        }
        // Found by fuzz/fuzz_targets/manifest.rs: 0 divided by zero in prune.
        for bad in ["0", "1", "16777215", "524288", "2147483648", "8589934592"] {
            let err = serde_json::from_str::<Manifest>(&with(bad)).unwrap_err();
            assert!(
                err.to_string().contains("not a WAL segment size"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn manifests_without_a_kind_are_logical() {
        let old = r#"{"format":1,"id":"20260102T030405Z-abcd","database":"inventory",
            "server_version":"15.8","stockops_version":"0.1.0","started_at":"2026-01-02T03:04:05Z",
            "snapshot_at":"2026-01-02T03:04:06Z","finished_at":"2026-01-02T03:04:07Z",
            "recipients":[],"compression":"zstd level 3","objects":[]}"#;
        let m: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!(m.kind, LOGICAL);
        assert!(!m.is_physical() && m.require_logical().is_ok() && m.wal.is_none());
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            !json.contains("\"wal\""),
            "no wal field on logical manifests: {json}"
        );
    }
    #[test]
    fn forged_manifest_fields_are_refused() {
        let id = "20260102T030405Z-abcd";
        let digest = Digest {
            bytes: 1,
            sha256: "0".repeat(64),
        };
        let good = Manifest {
            format: FORMAT,
            id: id.into(),
            kind: PHYSICAL.into(),
            database: "inventory".into(),
            server_version: "15.8 (Debian 15.8-1.pgdg120+1)".into(),
            stockops_version: "0.1.0".into(),
            started_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            snapshot_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            finished_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            recipients: vec![],
            compression: "zstd level 3".into(),
            objects: vec![StoredObject {
                name: "base".into(),
                key: key(id, BASE),
                stored: digest,
            }],
            wal: Some(WalRange {
                timeline: 1,
                start_lsn: "0/2000028".into(),
                stop_lsn: "0/2000100".into(),
                start_segment: "000000010000000000000002".into(),
                stop_segment: "000000010000000000000002".into(),
                segment_size: 16 << 20,
                includes_wal: true,
            }),
        };
        assert_eq!(good.validate(), Ok(()));
        type Forgery = Box<dyn Fn(&mut Manifest)>;
        let forged: Vec<Forgery> = vec![
            Box::new(|m| m.id = "../../etc".into()),
            Box::new(|m| m.kind = "shell".into()),
            Box::new(|m| m.database = "x'; DROP DATABASE y; --".into()),
            Box::new(|m| m.database = "-c evil".into()),
            Box::new(|m| m.objects[0].key = "backups/../etc/passwd".into()),
            Box::new(|m| m.objects[0].key = key("20260102T030405Z-ffff", BASE)),
            Box::new(|m| m.objects[0].name = "script".into()),
            Box::new(|m| m.objects[0].stored.sha256 = "x".into()),
            Box::new(|m| m.wal.as_mut().unwrap().timeline = 0),
            Box::new(|m| m.wal.as_mut().unwrap().stop_lsn = "0/1'\nrestore_command='sh".into()),
            Box::new(|m| {
                m.wal.as_mut().unwrap().start_segment = "../../../../etc/shadow0000".into()
            }),
            Box::new(|m| m.wal.as_mut().unwrap().segment_size = 12345),
            Box::new(|m| m.wal = None),
        ];
        for (n, forge) in forged.iter().enumerate() {
            let mut m = good.clone();
            forge(&mut m);
            assert!(m.validate().is_err(), "forgery {n} passed");
        }
    }
}
