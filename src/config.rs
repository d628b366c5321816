//! Settings: flags, then environment variables (both through clap), then the
//! optional TOML file. Merged once into [`Settings`], which each command
//! receives explicitly; there is no global configuration.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;

use crate::cli::GlobalArgs;
use crate::exit;

/// The TOML file, as written. Unknown keys are an error naming the key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub repo: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_timeout_secs: Option<u64>,
    pub recipients_file: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

/// `[schedule]`: cron expressions (croner syntax, seconds optional) for the
/// jobs `stockops schedule` runs, as written; [`crate::schedule`] parses and
/// checks them. A job without an expression is not scheduled.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub backup: Option<String>,
    pub verify: Option<String>,
    pub prune: Option<String>,
    pub drill: Option<String>,
    /// Where each job writes `stockops_<job>.prom`.
    pub metrics_dir: Option<PathBuf>,
    #[serde(default)]
    pub keep: KeepConfig,
}

/// `[schedule.keep]`: the retention the scheduled prune applies.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepConfig {
    pub last: Option<usize>,
    pub daily: Option<usize>,
    pub weekly: Option<usize>,
    pub monthly: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| exit::usage(format!("cannot read config file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| {
            exit::usage(format!(
                "config file {}: {}",
                path.display(),
                crate::exit::one_line(&e)
            ))
        })
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message().trim()))
    }
}

/// Resolved settings, passed to commands.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the database URL came from, for messages (never the URL itself).
    pub database_url: Option<String>,
    pub repo: Option<String>,
    pub s3_path_style: bool,
    pub recipients_file: Option<PathBuf>,
    pub identity_file: Option<PathBuf>,
    /// S3 parts uploaded at once (set by `backup --upload-concurrency`).
    pub upload_concurrency: usize,
    /// Seconds to wait for an S3 answer before the attempt is retried.
    pub s3_timeout_secs: u64,
    /// Object Lock for new objects (set by `backup --object-lock-days`).
    pub object_lock: Option<crate::storage::ObjectLock>,
    /// The `[schedule]` section, for `stockops schedule` (file only).
    pub schedule: ScheduleConfig,
}

impl Settings {
    /// Merge flags and environment (already in `args`) with the config file.
    pub fn resolve(args: &GlobalArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let from_env = std::env::var("DATABASE_URL").ok();
        if password_on_command_line(args.database_url.as_deref(), from_env.as_deref()) {
            tracing::warn!(
                "the database URL given with --database-url holds a password, which every local user \
                 can read in `ps`; give the password with PGPASSWORD or a .pgpass file (PGPASSFILE), \
                 or the whole URL with DATABASE_URL or the config file"
            );
        }
        Ok(Self::merge(args, file))
    }

    fn merge(args: &GlobalArgs, file: FileConfig) -> Self {
        Self {
            database_url: args.database_url.clone().or(file.database_url),
            repo: args.repo.clone().or(file.repo),
            s3_path_style: args.s3_path_style.or(file.s3_path_style).unwrap_or(false),
            recipients_file: args.recipients_file.clone().or(file.recipients_file),
            identity_file: args.identity_file.clone().or(file.identity_file),
            upload_concurrency: 2,
            s3_timeout_secs: args
                .s3_timeout_secs
                .or(file.s3_timeout_secs)
                .unwrap_or(60)
                .max(1),
            object_lock: None,
            schedule: file.schedule,
        }
    }

    /// Connection options: the URL if one was given, else libpq's PG* variables.
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        match &self.database_url {
            Some(url) => url.parse::<PgConnectOptions>().map_err(|e| {
                exit::usage(format!(
                    "the database URL is not valid ({e}); expected postgres://USER@HOST:PORT/DBNAME"
                ))
            }),
            None => Ok(PgConnectOptions::new()),
        }
        .context("resolving the database connection")
    }
}

/// Whether the URL clap resolved came from the command line (clap prefers
/// the flag to `DATABASE_URL`, so a value other than the variable's is the
/// flag's) and carries a password.
fn password_on_command_line(resolved: Option<&str>, from_env: Option<&str>) -> bool {
    let Some(url) = resolved.filter(|u| Some(*u) != from_env) else {
        return false;
    };
    url::Url::parse(url).is_ok_and(|u| u.password().is_some_and(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_flag_is_noticed_not_one_in_the_environment() {
        let with = "postgres://app:s3cret@db/inv";
        assert!(password_on_command_line(Some(with), None));
        assert!(password_on_command_line(
            Some(with),
            Some("postgres://other@db/inv")
        ));
        assert!(!password_on_command_line(Some(with), Some(with)));
        assert!(!password_on_command_line(
            Some("postgres://app@db/inv"),
            None
        ));
        assert!(!password_on_command_line(
            Some("postgres://app:@db/inv"),
            None
        ));
        assert!(!password_on_command_line(None, None));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = FileConfig::parse("database_url = \"postgres://x\"\nreop = \"file:///tmp\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("reop"), "{err}");
    }

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../deploy/stockops.example.toml");
        let cfg = FileConfig::parse(text).expect("example config parses");
        assert!(cfg.repo.is_some());
        assert_eq!(cfg.schedule.backup.as_deref(), Some("0 15 2 * * *"));
        assert_eq!(cfg.schedule.keep.daily, Some(7));
    }

    #[test]
    fn schedule_keys_are_checked_too() {
        let err = FileConfig::parse("[schedule]\nbackups = \"0 0 2 * * *\"\n").unwrap_err();
        assert!(err.to_string().contains("backups"), "{err}");
        let err = FileConfig::parse("[schedule.keep]\nhourly = 3\n").unwrap_err();
        assert!(err.to_string().contains("hourly"), "{err}");
        let cfg = FileConfig::parse("[schedule]\nverify = \"0 0 4 * * *\"\n").unwrap();
        assert!(cfg.schedule.backup.is_none());
        assert_eq!(cfg.schedule.keep, KeepConfig::default());
    }
}
