//! Integration tests: the real `stockops` binary against a real PostgreSQL.
//!
//! The servers come from `scripts/testenv.sh up` (which `make test` runs);
//! its env file sets `STOCKOPS_TEST_ADMIN_URL`. Without it these tests fail,
//! they never skip. Each test works in a database of its own; roles are
//! cluster-wide, so the tests run one at a time (.config/nextest.toml).

mod common;

mod adversarial_db;
mod adversarial_fuzz;
mod adversarial_globals;
mod adversarial_input;
mod adversarial_recovery;
mod adversarial_repository;
mod audit;
mod backup;
mod cli;
mod deploy;
mod doctor;
mod drill;
mod etl;
mod faults;
mod insights;
mod legacy;
mod privileges;
mod procedures;
mod provision;
mod restore;
mod rls;
mod runbooks;
mod schedule;
mod seed;
mod storage;
mod users;
mod wal;
mod watch;
