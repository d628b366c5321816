//! stockops: a hardened PostgreSQL deployment and operations toolkit for an
//! inventory database.
//!
//! # Layout
//!
//! Each folder is one part of the system; its opening comment says what it
//! holds. Dependencies flow one way, from the command layer to the domains to
//! the infrastructure, never back:
//!
//! ```text
//! cli, commands        argument parsing; one file per subcommand, anyhow + context
//!   │
//!   ├── db             connections, provisioning (roles/, migrations, drift), logins
//!   ├── business       procedures, reports, ETL, audit chain, the live feed, seed data
//!   ├── backup         logical, physical and WAL backups; roles captured as data
//!   ├── recovery       logical restore, point-in-time recovery, drills
//!   ├── ops            schedule, metrics, doctor
//!   └── bench          throughput measurements with a baseline in the same run
//!         │
//!         ├── repository     object stores, the catalog of manifests, listing,
//!         │                  verification, retention
//!         └── pipeline       byte-stream stages (hash, zstd, age) and the age keys
//!             config, exit, logging, output, interrupt, private_file
//! ```
//!
//! `pipeline` knows nothing of S3; `repository::storage` knows nothing of
//! manifests; `repository::catalog` is the repository layout and manifest
//! format. docs/architecture.md draws the data flow of a backup and a restore.
//!
//! `config` merges flags, environment and the TOML file once, without I/O
//! beyond reading that file, into typed settings passed explicitly to each
//! command. `exit` holds every exit code in one place. `interrupt` turns
//! SIGTERM and SIGINT into a value the work checks, so a stopped command
//! takes its ordinary error path and leaves nothing half-done.

pub mod backup;
pub mod bench;
pub mod business;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod exit;
pub mod interrupt;
pub mod logging;
pub mod ops;
pub mod output;
pub mod pipeline;
pub mod private_file;
pub mod recovery;
pub mod repository;
