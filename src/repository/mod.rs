//! The backup repository: where backups live and what they are made of.
//!
//! - [`storage`]: object stores (a directory, S3) behind one trait pair, a
//!   read-only [`storage::ReadStore`] and a [`storage::WriteStore`].
//! - [`catalog`]: the layout of objects and the manifest format
//!   (docs/backup-format.md), parsed and validated.
//! - [`backups`]: listing what exists, deciding which manifests to believe,
//!   and verifying a backup without its key.
//! - [`prune`]: the retention policy and the cleanup of crashed runs.
//!
//! Nothing here connects to PostgreSQL; everything read from the store is
//! untrusted until parsed.

pub mod backups;
pub mod catalog;
pub mod prune;
pub mod storage;
