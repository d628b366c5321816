//! `stockops schedule [--once] [--stop-timeout SECS]`.

use std::ffi::OsString;

use clap::ValueEnum;

use crate::cli::{GlobalArgs, ScheduleArgs};
use crate::config::Settings;
use crate::exit;
use crate::interrupt::Signals;
use crate::ops::schedule::{self, Launcher, Schedule};

pub async fn run(
    settings: &Settings,
    global: &GlobalArgs,
    args: ScheduleArgs,
) -> anyhow::Result<u8> {
    // 1. The whole [schedule] section checked before anything runs.
    let plan = Schedule::new(&settings.schedule).map_err(|e| exit::usage(e.to_string()))?;
    let program = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find the stockops binary to run the jobs: {e}"))?;
    let launcher = Launcher {
        program,
        global_args: (0..global.verbose).map(|_| OsString::from("-v")).collect(),
        env: child_env(global),
        stop_timeout: std::time::Duration::from_secs(args.stop_timeout),
    };
    // 2. From here SIGTERM and SIGINT stop the scheduler, cleanly.
    let signals = Signals::install()?;
    let summary = if args.once {
        schedule::run_each_once(plan, launcher, signals).await
    } else {
        schedule::run(plan, launcher, signals).await
    };
    // 3. The exit code: a job cut short by the stop first, then failures (--once).
    let (code, error) = if !summary.aborted.is_empty() {
        let jobs = names(&summary.aborted);
        let signal = summary.signal.unwrap_or("a signal");
        (
            exit::INTERRUPTED,
            Some(format!(
                "stopped by {signal}: aborted {jobs} in flight (nothing half-done was kept)"
            )),
        )
    } else if !summary.failed.is_empty() {
        let jobs = names(&summary.failed);
        (
            exit::FAILURE,
            Some(format!("{jobs} failed; their errors are in the log above")),
        )
    } else {
        (exit::SUCCESS, None)
    };
    schedule::log_stopped(code);
    match error {
        Some(message) => Err(exit::Coded::new(code, message).into()),
        None => Ok(code),
    }
}

fn names(kinds: &[schedule::Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The settings this process was given by flag or environment, as the
/// environment variables the jobs read them from (the config file they read
/// themselves, through `STOCKOPS_CONFIG`). A password in the database URL thus
/// travels in the environment, never on a command line.
fn child_env(g: &GlobalArgs) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(&str, OsString)> = Vec::new();
    let mut set = |key: &'static str, value: Option<OsString>| {
        if let Some(v) = value {
            env.push((key, v));
        }
    };
    set("STOCKOPS_CONFIG", g.config.clone().map(Into::into));
    set("DATABASE_URL", g.database_url.clone().map(Into::into));
    set("STOCKOPS_REPO", g.repo.clone().map(Into::into));
    set(
        "STOCKOPS_S3_PATH_STYLE",
        g.s3_path_style.map(|b| b.to_string().into()),
    );
    set(
        "STOCKOPS_S3_TIMEOUT_SECS",
        g.s3_timeout_secs.map(|s| s.to_string().into()),
    );
    set(
        "STOCKOPS_AGE_RECIPIENTS",
        g.recipients_file.clone().map(Into::into),
    );
    set(
        "STOCKOPS_AGE_IDENTITY",
        g.identity_file.clone().map(Into::into),
    );
    set(
        "STOCKOPS_LOG_FORMAT",
        g.log_format
            .to_possible_value()
            .map(|v| v.get_name().to_string().into()),
    );
    env.into_iter().map(|(k, v)| (k.into(), v)).collect()
}
