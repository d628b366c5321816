//! The inventory's business side, always through the `api` schema as the
//! connected role, so a department login sees what its grants allow.
//!
//! - [`procedures`]: calling any `api` function from its catalog signature.
//! - [`report`]: read-only reports.
//! - [`etl`]: resellers' order files in, the stock state out, and the legacy
//!   SQLite stock database reconciled.
//! - [`audit`]: verifying the audit log's hash chain outside the database.
//! - [`watch`]: the live stock feed.
//! - [`seed`]: deterministic fictitious data for demos, drills and benchmarks.

pub mod audit;
pub mod etl;
pub mod procedures;
pub mod report;
pub mod seed;
pub mod watch;
