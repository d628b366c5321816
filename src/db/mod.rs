//! The database side: connections and the classification of their failures,
//! the declared schema and roles reconciled onto a server (`provision`), login
//! roles for people and programs (`users`), and passwords sent only as SCRAM
//! verifiers (`scram`).
//!
//! This module holds connections and the classification of database failures
//! into exit codes; it knows nothing of backups.

pub mod provision;
pub mod scram;
pub mod users;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::exit;

/// A database failure, classified for the operator.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach the database at {target}: {source}")]
    Unreachable {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("permission denied: {0}")]
    Permission(String),
}

impl DbError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DbError::Unreachable { .. } => exit::UNREACHABLE,
            DbError::Permission(_) => exit::PERMISSION,
        }
    }

    /// Exit code for a bare sqlx error met anywhere in a chain.
    pub fn code_for(err: &sqlx::Error) -> u8 {
        match err {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("42501") => exit::PERMISSION,
                Some(c) if c.starts_with("28") => exit::UNREACHABLE,
                _ => exit::FAILURE,
            },
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => {
                exit::UNREACHABLE
            }
            _ => exit::FAILURE,
        }
    }
}

/// SQLSTATE of a database error, if it is one.
pub fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// `user@host:port/db`, never the password.
pub fn describe(opts: &PgConnectOptions) -> String {
    format!(
        "{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or(opts.get_username())
    )
}

/// Connect once, with a bounded wait, mapping failures to [`DbError`].
pub async fn connect(opts: &PgConnectOptions) -> Result<PgConnection, DbError> {
    let opts = opts
        .clone()
        .application_name("stockops")
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(5));
    let target = describe(&opts);
    tracing::info!(%target, "connecting");
    let attempt = tokio::time::timeout(Duration::from_secs(15), PgConnection::connect_with(&opts));
    match attempt.await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) if sqlstate(&source).as_deref() == Some("42501") => {
            Err(DbError::Permission(source.to_string()))
        }
        Ok(Err(source)) => Err(DbError::Unreachable { target, source }),
        Err(_) => Err(DbError::Unreachable {
            target,
            source: sqlx::Error::PoolTimedOut,
        }),
    }
}

/// Quote an identifier for SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote a string literal for SQL.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A database error as the operator should read it: the server's message, its
/// SQLSTATE and hint, and the exit code its class calls for.
pub fn explain(err: sqlx::Error) -> anyhow::Error {
    let code = DbError::code_for(&err);
    match &err {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            let hint = pg
                .and_then(|p| p.hint())
                .map(|h| format!("; hint: {h}"))
                .unwrap_or_default();
            let state = db.code().map(|c| format!(" [{c}]")).unwrap_or_default();
            exit::Coded::new(code, format!("{}{state}{hint}", db.message())).into()
        }
        _ => anyhow::Error::new(err),
    }
}

/// libpq environment for a child program (pg_dump, pg_restore) reaching the
/// same database: host, port, user, database, sslmode, and the password
/// from the URL when it has one. Secrets go through the environment, never
/// the command line.
pub fn libpq_env(opts: &PgConnectOptions, url: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PGHOST".to_string(),
            opts.get_socket()
                .map(|s| s.display().to_string())
                .unwrap_or_else(|| opts.get_host().to_string()),
        ),
        ("PGPORT".to_string(), opts.get_port().to_string()),
        ("PGUSER".to_string(), opts.get_username().to_string()),
        ("PGAPPNAME".to_string(), "stockops".to_string()),
    ];
    if let Some(db) = opts.get_database() {
        env.push(("PGDATABASE".to_string(), db.to_string()));
    }
    if let Some(parsed) = url.and_then(|u| url::Url::parse(u).ok()) {
        if let Some(password) = parsed.password() {
            let decoded = percent_encoding::percent_decode_str(password)
                .decode_utf8_lossy()
                .into_owned();
            env.push(("PGPASSWORD".to_string(), decoded));
        }
        for (k, v) in parsed.query_pairs() {
            if k == "sslmode" {
                env.push(("PGSSLMODE".to_string(), v.into_owned()));
            }
        }
    }
    env
}
