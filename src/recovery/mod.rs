//! Getting data back: restores and the drills that prove them.
//!
//! - [`logical`]: a logical backup streamed through age and zstd into
//!   `pg_restore`, then checked against the backup's fingerprints.
//! - [`physical`]: point-in-time recovery from a base backup and the WAL
//!   archive, into a new data directory beside production.
//! - [`drill`]: a timed restore into a scratch cluster of our own, checked
//!   and reported, the report stored beside the backup.
//! - [`untar`]: extracting an untrusted tar with an allow-list.

pub mod drill;
pub mod logical;
pub mod physical;
pub mod untar;
