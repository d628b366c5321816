//! stockops: a hardened PostgreSQL deployment and operations toolkit for an
//! inventory database.
//!
//! # Layering
//!
//! Dependencies flow one way, from the command layer to the domain modules to
//! the infrastructure, never back:
//!
//! ```text
//! cli, commands            argument parsing; one file per subcommand, anyhow + context
//!   │
//!   ├── provision          declaration (roles/), migrations, reconcile, drift
//!   ├── users              login roles bound to groups and partners
//!   ├── seed               deterministic fictitious data, loaded with COPY
//!   ├── procedures         calling api functions from their catalog signature
//!   ├── report             read-only reports through the api functions
//!   ├── etl                order files in, stock state out, through the api
//!   ├── audit              verifying the hash chain of the audit log
//!   ├── backup, backups    taking backups; listing and verifying them
//!   ├── globals            the cluster's roles as data: captured, validated, applied
//!   ├── wal                archiving WAL files one by one; finding gaps
//!   ├── pitr               physical restore to a point in time, beside production
//!   ├── doctor             hardening checks of the server and the repository
//!   ├── watch              the live stock feed (LISTEN/NOTIFY)
//!   └── bench              throughput measurements with a baseline in the same run
//!         │
//!         └── pipeline, storage, catalog, crypto,     (infrastructure)
//!             config, db, exit, logging, output, scram,
//!             untar (extracting an untrusted tar with an allow-list)
//! ```
//!
//! `pipeline` (byte-stream stages) knows nothing of S3; `storage` (object
//! stores) knows nothing of manifests; `catalog` is the repository layout
//! and manifest format.
//!
//! `config` merges flags, environment and the TOML file once, without I/O
//! beyond reading that file, into typed settings passed explicitly to each
//! command. `exit` holds every exit code in one place. `interrupt` turns
//! SIGTERM and SIGINT into a value the work checks, so a stopped command
//! takes its ordinary error path and leaves nothing half-done.

pub mod audit;
pub mod backup;
pub mod backups;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod db;
pub mod doctor;
pub mod drill;
pub mod etl;
pub mod exit;
pub mod globals;
pub mod interrupt;
pub mod legacy;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod pitr;
pub mod private_file;
pub mod procedures;
pub mod provision;
pub mod prune;
pub mod report;
pub mod restore;
pub mod schedule;
pub mod scram;
pub mod seed;
pub mod storage;
pub mod untar;
pub mod users;
pub mod wal;
pub mod watch;
