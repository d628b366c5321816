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
/// jobs `stockops schedule` runs, as written; [`crate::ops::schedule`] parses and
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
    pub object_lock: Option<crate::repository::storage::ObjectLock>,
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
        let argv: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for flag in flags_with_password(&argv) {
            tracing::warn!(
                "the database URL given with {flag} holds a password, which every local user \
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

/// The flags on the command line (`--database-url`, `--target-url`, ...)
/// whose value is a URL carrying a password: `ps` shows it to every local
/// user. An environment variable or the config file is not on it.
fn flags_with_password(argv: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, arg) in argv.iter().enumerate() {
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), v),
            _ => {
                let before = i.checked_sub(1).map(|p| argv[p].as_str());
                let flag = before.filter(|b| b.starts_with("--") && !b.contains('='));
                (flag.unwrap_or("the command line").to_string(), arg.as_str())
            }
        };
        let has_password = url::Url::parse(value).is_ok_and(|u| {
            matches!(u.scheme(), "postgres" | "postgresql")
                && u.password().is_some_and(|p| !p.is_empty())
        });
        if has_password {
            found.push(flag);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_any_url_flag_is_noticed() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            flags_with_password(&argv(
                "--database-url postgres://app:s3cret@db/inv restore latest --target-url=postgresql://r:pw@h/t"
            )),
            ["--database-url", "--target-url"]
        );
        assert!(flags_with_password(&argv(
            "--database-url postgres://app@db/inv restore --target-url postgres://r:@h/t --repo s3://k:x@b/p"
        ))
        .is_empty());
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
