//! Exit codes, all in one place. They are part of the command-line contract:
//! scripts and schedulers alert on them, so a code never changes meaning.

use crate::db::DbError;

/// The operation succeeded (for `--check`: the server matches the declaration).
pub const SUCCESS: u8 = 0;
/// The operation did not happen or did not verify; stderr says why.
pub const FAILURE: u8 = 1;
/// Bad command line or configuration: nothing was attempted.
pub const USAGE: u8 = 2;
/// `provision --check`: the server differs from the declaration; `doctor`: a high finding;
/// `check data`: a data-quality rule found something.
pub const DRIFT: u8 = 3;
/// The database could not be reached or refused the login.
pub const UNREACHABLE: u8 = 4;
/// The connected role lacks a privilege the operation needs.
pub const PERMISSION: u8 = 5;
/// Another stockops run holds the lock for this operation.
pub const LOCK_HELD: u8 = 6;
/// Stopped by SIGTERM or SIGINT before it finished; nothing half-done was
/// kept (`schedule`: a job in flight was aborted by the stop).
pub const INTERRUPTED: u8 = 7;
/// `wal fetch`: the archive does not hold the WAL file asked for (routine at
/// the end of every recovery: PostgreSQL asks for the next file until one is
/// missing).
pub const NOT_FOUND: u8 = 8;
/// `wal fetch`: the file could not be restored for any other reason
/// (repository unreachable, wrong key, corrupt object, bad configuration).
/// PostgreSQL takes a code above 125 as fatal and stops recovery, where 1 to
/// 125 would mean "no such file" and end it early (126 and 127 it reports as
/// "command not executable" and "not found": 128, as git's fatal errors).
pub const RECOVERY_ABORT: u8 = 128;

/// The table printed by `--help`.
pub const HELP: &str = "\
Exit codes:
  0  success (provision --check: no drift)
  1  the operation failed or did not verify; stderr says why
  2  bad command line or configuration; nothing was attempted
  3  provision --check: the server differs from the declaration;
     doctor: at least one high finding; check data: a data-quality finding
  4  the database is unreachable or refused the login
  5  the connected role lacks a privilege the operation needs
  6  another stockops run holds the lock for this operation
  7  stopped by SIGTERM or SIGINT; nothing half-done was kept
     (schedule: a job in flight was aborted by the stop)
  8  wal fetch: the archive does not hold that WAL file
128  wal fetch: the file could not be restored for another reason
     (PostgreSQL then stops recovery instead of ending it early)";

/// An error that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

impl Coded {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Usage error: bad input, nothing attempted.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Coded::new(USAGE, message).into()
}

/// Stopped by a signal: `what` says what was undone.
pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
    Coded::new(INTERRUPTED, message).into()
}

/// The exit code for an error: an explicit [`Coded`] wins, then the kind of
/// database failure found anywhere in the chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(coded) = cause.downcast_ref::<Coded>() {
            return coded.code;
        }
        if let Some(db) = cause.downcast_ref::<DbError>() {
            return db.exit_code();
        }
        if let Some(sqlx) = cause.downcast_ref::<sqlx::Error>() {
            return DbError::code_for(sqlx);
        }
    }
    FAILURE
}

/// The error and its causes on one line, outermost first.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// The reader of our output went away (`stockops ... | head`): not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<csv::Error>().is_some_and(|e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}
