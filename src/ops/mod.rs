//! Running stockops unattended and checking it is safe to.
//!
//! - [`schedule`]: backup, verify, prune and drill on cron schedules, each
//!   job a child process of this same binary.
//! - [`metrics`]: Prometheus textfile metrics, replaced atomically.
//! - [`doctor`]: hardening checks of the server and the repository.

pub mod doctor;
pub mod metrics;
pub mod schedule;
