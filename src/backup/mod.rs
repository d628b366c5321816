//! Taking backups: reading a live server and writing what it holds to the
//! repository, encrypted, with a manifest written last.
//!
//! - [`logical`]: `pg_dump` of one database, streamed through zstd and age.
//! - [`physical`]: `pg_basebackup` of the whole cluster, the base of
//!   point-in-time recovery.
//! - [`wal`]: continuous archiving (`archive_command`, `restore_command`) and
//!   the check that the archive has no hole.
//! - [`globals`]: the cluster's roles captured as data beside a logical dump.
//! - [`fingerprint`]: per-table row counts and checksums a restore must match.

pub mod fingerprint;
pub mod globals;
pub mod logical;
pub mod physical;
pub mod wal;
