//! `stockops schedule`: backup, verify, prune and drill on cron schedules, in
//! the foreground, for containers that have no systemd timer or cron.
//!
//! Each job is this same binary run as a child process (own process group,
//! the scheduler's environment plus the settings it was given), so a job
//! behaves exactly as the command an operator would type, with its own exit
//! code, metrics file and clean-up on SIGTERM. The scheduler:
//!
//! 1. parses every cron expression before anything runs (croner syntax, the
//!    seconds field optional, in the local time zone);
//! 2. runs one loop per job kind: sleep to the next occurrence, then start a
//!    run unless the previous run of that kind is still going (that tick is
//!    logged as skipped, never queued), so kinds overlap, runs of one kind
//!    never do;
//! 3. logs each run as one JSON line on stdout (job, start, end, seconds,
//!    exit code, outcome: ok, failed, skipped, aborted), and its own life
//!    (started, with each job's next run; stopping; stopped);
//! 4. on SIGTERM or SIGINT starts nothing more, forwards SIGTERM to the jobs
//!    in flight, waits for them up to a bound, then SIGKILLs their process
//!    groups, and reports whether any was cut short.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::ScheduleConfig;
use crate::interrupt::Signals;

/// The kinds of job, in the order `--once` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Backup,
    Verify,
    Prune,
    Drill,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Backup, Kind::Verify, Kind::Prune, Kind::Drill];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Verify => "verify",
            Kind::Prune => "prune",
            Kind::Drill => "drill",
        }
    }

    fn expression(self, cfg: &ScheduleConfig) -> Option<&str> {
        match self {
            Kind::Backup => cfg.backup.as_deref(),
            Kind::Verify => cfg.verify.as_deref(),
            Kind::Prune => cfg.prune.as_deref(),
            Kind::Drill => cfg.drill.as_deref(),
        }
    }

    /// The subcommand that does this job, without the metrics file.
    fn command(self, cfg: &ScheduleConfig) -> Vec<OsString> {
        let mut args: Vec<String> = match self {
            Kind::Backup => vec!["backup".into()],
            Kind::Verify => vec!["backups".into(), "verify".into(), "latest".into()],
            Kind::Prune => vec!["backups".into(), "prune".into()],
            Kind::Drill => vec!["drill".into(), "latest".into()],
        };
        if self == Kind::Prune {
            let keep = cfg.keep;
            for (flag, n) in [
                ("--keep-last", keep.last),
                ("--keep-daily", keep.daily),
                ("--keep-weekly", keep.weekly),
                ("--keep-monthly", keep.monthly),
            ] {
                if let Some(n) = n {
                    args.extend([flag.to_string(), n.to_string()]);
                }
            }
        }
        args.into_iter().map(OsString::from).collect()
    }
}

/// A configuration the scheduler refuses, before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "schedule.{key} = {expression:?} is not a valid cron expression: {message}; \
         expected [SEC] MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK, e.g. \"0 15 2 * * *\""
    )]
    Cron {
        key: &'static str,
        expression: String,
        message: String,
    },
    #[error(
        "the config file's [schedule] section sets no job: give a cron expression to at \
         least one of backup, verify, prune, drill"
    )]
    NothingScheduled,
    #[error(
        "schedule.prune is set but [schedule.keep] is empty: give at least one of last, \
         daily, weekly, monthly (prune never guesses a retention)"
    )]
    NoRetention,
    #[error("schedule.metrics_dir {path}: {source}; create it or fix the path")]
    MetricsDir {
        path: String,
        source: std::io::Error,
    },
}

/// One scheduled job.
#[derive(Debug)]
pub struct Job {
    pub kind: Kind,
    pub expression: String,
    cron: Cron,
    args: Vec<OsString>,
}

impl Job {
    /// The first occurrence strictly after `after`.
    fn next_after(&self, after: DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

/// How jobs are started: which program, with which settings.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The stockops binary (`std::env::current_exe()`).
    pub program: PathBuf,
    /// Arguments before the subcommand (`-v`).
    pub global_args: Vec<OsString>,
    /// Settings the scheduler was given, as the environment variables that
    /// carry them (`STOCKOPS_CONFIG`, `STOCKOPS_REPO`, ...); the rest of the
    /// environment is inherited.
    pub env: Vec<(OsString, OsString)>,
    /// After forwarding SIGTERM, how long a job may take to stop before SIGKILL.
    pub stop_timeout: Duration,
}

/// The parsed schedule.
#[derive(Debug)]
pub struct Schedule {
    pub jobs: Vec<Job>,
}

/// Parse `expression` as croner does, seconds optional, no year field.
pub fn parse_cron(expression: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
}

impl Schedule {
    /// Check the `[schedule]` section: every expression parses and fires
    /// some day, prune has a retention, the metrics directory exists.
    pub fn new(cfg: &ScheduleConfig) -> Result<Self, ScheduleError> {
        let mut jobs = Vec::new();
        for kind in Kind::ALL {
            let Some(expression) = kind.expression(cfg) else {
                continue;
            };
            let invalid = |message: String| ScheduleError::Cron {
                key: kind.name(),
                expression: expression.to_string(),
                message,
            };
            let cron = parse_cron(expression)
                .map_err(|e| invalid(e.to_string().trim_end_matches('.').to_string()))?;
            cron.find_next_occurrence(&Local::now(), false)
                .map_err(|e| invalid(format!("it never fires ({e})")))?;
            let mut args = kind.command(cfg);
            if let Some(dir) = &cfg.metrics_dir {
                args.push("--metrics-file".into());
                args.push(dir.join(format!("stockops_{}.prom", kind.name())).into());
            }
            jobs.push(Job {
                kind,
                expression: expression.to_string(),
                cron,
                args,
            });
        }
        if jobs.is_empty() {
            return Err(ScheduleError::NothingScheduled);
        }
        if cfg.prune.is_some() && cfg.keep == Default::default() {
            return Err(ScheduleError::NoRetention);
        }
        if let Some(dir) = &cfg.metrics_dir {
            std::fs::create_dir_all(dir).map_err(|source| ScheduleError::MetricsDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(Self { jobs })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Skipped,
    /// Cut short by the scheduler's stop.
    Aborted,
}

/// One line of the run log.
#[derive(Debug, Serialize)]
struct RunLine {
    event: &'static str,
    job: Kind,
    outcome: Outcome,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    seconds: f64,
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Write one JSON object as one line on stdout.
fn emit(line: &impl Serialize) {
    match serde_json::to_string(line) {
        Ok(text) => println!("{text}"),
        Err(e) => tracing::error!(error = %e, "could not encode a run log line"),
    }
}

/// What a scheduler run ended with.
#[derive(Debug, Default)]
pub struct Summary {
    /// Runs that ended non-zero on their own.
    pub failed: Vec<Kind>,
    /// Runs the stop cut short.
    pub aborted: Vec<Kind>,
    /// The stop signal, if one came.
    pub signal: Option<&'static str>,
}

/// Jobs running now, for the "stopping" line.
type Running = Arc<Mutex<Vec<Kind>>>;

/// Run every job on its schedule until SIGTERM or SIGINT.
pub async fn run(schedule: Schedule, launcher: Launcher, mut signals: Signals) -> Summary {
    let stop = CancellationToken::new();
    let running: Running = Arc::default();
    log_started(&schedule);
    let launcher = Arc::new(launcher);
    let mut loops = tokio::task::JoinSet::new();
    for job in schedule.jobs {
        let ctx = (launcher.clone(), stop.clone(), running.clone());
        loops.spawn(job_loop(Arc::new(job), ctx));
    }
    let signal = signals.recv().await;
    log_stopping(signal, &running);
    stop.cancel();
    let mut summary = Summary {
        signal: Some(signal),
        ..Default::default()
    };
    while let Some(outcome) = loops.join_next().await {
        if let Ok(Some((kind, Outcome::Aborted))) = outcome {
            summary.aborted.push(kind);
        }
    }
    summary
}

/// `--once`: each job once, in order backup, verify, prune, drill; a stop
/// signal aborts the job in flight and skips the rest.
pub async fn run_each_once(
    schedule: Schedule,
    launcher: Launcher,
    mut signals: Signals,
) -> Summary {
    let stop = CancellationToken::new();
    let running: Running = Arc::default();
    log_started(&schedule);
    let watcher = {
        let (stop, running) = (stop.clone(), running.clone());
        tokio::spawn(async move {
            let signal = signals.recv().await;
            log_stopping(signal, &running);
            stop.cancel();
            signal
        })
    };
    let mut summary = Summary::default();
    for job in schedule.jobs {
        if stop.is_cancelled() {
            break;
        }
        match run_job(&job, &launcher, &stop, &running).await {
            Outcome::Failed => summary.failed.push(job.kind),
            Outcome::Aborted => summary.aborted.push(job.kind),
            Outcome::Ok | Outcome::Skipped => {}
        }
    }
    if stop.is_cancelled() {
        summary.signal = watcher.await.ok();
    } else {
        watcher.abort();
    }
    summary
}

/// The last line of the log.
pub fn log_stopped(exit_code: u8) {
    emit(&serde_json::json!({
        "event": "stopped",
        "at": Utc::now(),
        "exit_code": exit_code,
    }));
}

fn log_started(schedule: &Schedule) {
    let now = Local::now();
    let jobs: Vec<_> = schedule
        .jobs
        .iter()
        .map(|j| {
            serde_json::json!({
                "job": j.kind,
                "cron": j.expression,
                "next_run": j.next_after(now).map(|t| t.with_timezone(&Utc)),
            })
        })
        .collect();
    emit(&serde_json::json!({
        "event": "started",
        "at": Utc::now(),
        "pid": std::process::id(),
        "jobs": jobs,
    }));
}

fn log_stopping(signal: &str, running: &Running) {
    let running = running.lock().map(|r| r.clone()).unwrap_or_default();
    emit(&serde_json::json!({
        "event": "stopping",
        "at": Utc::now(),
        "signal": signal,
        "running": running,
    }));
}

/// One kind's loop: wait for each tick, start a run unless one is going.
/// Returns how the run in flight at the stop ended, if there was one.
async fn job_loop(
    job: Arc<Job>,
    (launcher, stop, running): (Arc<Launcher>, CancellationToken, Running),
) -> Option<(Kind, Outcome)> {
    let mut current: Option<tokio::task::JoinHandle<Outcome>> = None;
    let mut last_tick = Local::now();
    loop {
        // From the later of the last tick and now: a late wake-up never
        // replays the ticks it slept through.
        let Some(next) = job.next_after(last_tick.max(Local::now())) else {
            tracing::warn!(job = job.kind.name(), "no further occurrence: job ends");
            break;
        };
        let wait = (next - Local::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => break,
        }
        last_tick = next;
        if current.as_ref().is_some_and(|h| !h.is_finished()) {
            log_skipped(job.kind, next);
            continue;
        }
        let (job, launcher, stop, running) =
            (job.clone(), launcher.clone(), stop.clone(), running.clone());
        current = Some(tokio::spawn(async move {
            run_job(&job, &launcher, &stop, &running).await
        }));
    }
    let outcome = current?.await.unwrap_or(Outcome::Failed);
    Some((job.kind, outcome))
}

fn log_skipped(kind: Kind, tick: DateTime<Local>) {
    let at = tick.with_timezone(&Utc);
    emit(&RunLine {
        event: "run",
        job: kind,
        outcome: Outcome::Skipped,
        started_at: at,
        finished_at: at,
        seconds: 0.0,
        exit_code: None,
        signal: None,
        pid: None,
        detail: Some(format!("the previous {} run is still going", kind.name())),
    });
}

/// Start one run as a child process, wait for it (or stop it), log it.
async fn run_job(
    job: &Job,
    launcher: &Launcher,
    stop: &CancellationToken,
    running: &Running,
) -> Outcome {
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut line = RunLine {
        event: "run",
        job: job.kind,
        outcome: Outcome::Failed,
        started_at,
        finished_at: started_at,
        seconds: 0.0,
        exit_code: None,
        signal: None,
        pid: None,
        detail: None,
    };
    match spawn(job, launcher) {
        Err(e) => line.detail = Some(format!("cannot start {}: {e}", launcher.program.display())),
        Ok(mut child) => {
            line.pid = child.id();
            let errors = child.stderr.take().map(|e| tokio::spawn(relay_stderr(e)));
            set_running(running, job.kind, true);
            let (status, stopped) = tokio::select! {
                status = child.wait() => (status, false),
                _ = stop.cancelled() => (terminate(&mut child, launcher.stop_timeout).await, true),
            };
            set_running(running, job.kind, false);
            match status {
                Ok(status) => {
                    line.outcome = outcome_of(status, stopped);
                    line.exit_code = status.code();
                    line.signal = std::os::unix::process::ExitStatusExt::signal(&status);
                }
                Err(e) => line.detail = Some(format!("waiting for the job: {e}")),
            }
            // A grandchild may hold the pipe open after the job exited: don't wait for it.
            if let Some(task) = errors {
                let last = tokio::time::timeout(Duration::from_secs(2), task).await;
                if let Ok(Ok(Some(error))) = last {
                    line.detail = line.detail.or(Some(error));
                }
            }
        }
    }
    line.finished_at = Utc::now();
    line.seconds = clock.elapsed().as_secs_f64();
    emit(&line);
    line.outcome
}

/// Ok when it exited 0, even if a stop came meanwhile (it finished).
fn outcome_of(status: ExitStatus, stopped: bool) -> Outcome {
    match (status.success(), stopped) {
        (true, _) => Outcome::Ok,
        (false, true) => Outcome::Aborted,
        (false, false) => Outcome::Failed,
    }
}

fn set_running(running: &Running, kind: Kind, on: bool) {
    if let Ok(mut r) = running.lock() {
        r.retain(|k| *k != kind);
        if on {
            r.push(kind);
        }
    }
}

/// Copy a job's stderr onto ours, line by line; return its last
/// `stockops: error: ...` line, for the run log.
async fn relay_stderr(stderr: tokio::process::ChildStderr) -> Option<String> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut last_error = None;
    while let Ok(Some(text)) = lines.next_line().await {
        eprintln!("{text}");
        if let Some(error) = text.strip_prefix("stockops: error: ") {
            last_error = Some(error.to_string());
        }
    }
    last_error
}

/// The job as a child: its own process group (so a terminal's Ctrl-C reaches
/// only the scheduler, which decides), stdout onto our stderr (our stdout is
/// the run log), stderr relayed to ours.
fn spawn(job: &Job, launcher: &Launcher) -> std::io::Result<tokio::process::Child> {
    use std::os::fd::AsFd;
    let stdout = std::io::stderr().as_fd().try_clone_to_owned()?;
    tokio::process::Command::new(&launcher.program)
        .args(&launcher.global_args)
        .args(&job.args)
        .envs(launcher.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// SIGTERM, then at most `timeout` for the job to undo its work and exit,
/// then SIGKILL to its whole process group (pg_dump, pg_restore included).
async fn terminate(
    child: &mut tokio::process::Child,
    timeout: Duration,
) -> std::io::Result<ExitStatus> {
    if let Some(pid) = child.id() {
        send_signal(pid as i32, libc::SIGTERM);
    }
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pid) = child.id() {
                tracing::warn!(
                    pid,
                    "the job did not stop in time: SIGKILL to its process group"
                );
                send_signal(-(pid as i32), libc::SIGKILL);
            }
            child.wait().await
        }
    }
}

/// kill(2); a negative `pid` names a process group. The child is not reaped
/// yet when this is called, so the id cannot have been reused.
fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(pid, signal, error = %e, "could not signal the job");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeepConfig;

    fn cfg(backup: Option<&str>) -> ScheduleConfig {
        ScheduleConfig {
            backup: backup.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn seconds_are_optional() {
        let six = parse_cron("*/2 * * * * *").unwrap();
        let five = parse_cron("15 2 * * *").unwrap();
        let t = Local::now();
        let a = six.find_next_occurrence(&t, false).unwrap();
        assert!((a - t).num_seconds() <= 2);
        let b = five.find_next_occurrence(&t, false).unwrap();
        assert_eq!(b.format("%H:%M:%S").to_string(), "02:15:00");
        assert!(parse_cron("0 0 2 * * * 2030").is_err(), "no year field");
    }

    #[test]
    fn an_invalid_expression_names_its_key() {
        let err = Schedule::new(&cfg(Some("61 * * * * *"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("schedule.backup = \"61 * * * * *\""),
            "{text}"
        );
        let err = Schedule::new(&cfg(Some("0 0 30 2 *"))).unwrap_err();
        assert!(err.to_string().contains("never fires"), "{err}");
    }

    #[test]
    fn prune_needs_a_retention_and_gets_it() {
        let mut c = ScheduleConfig {
            prune: Some("0 45 3 * * *".into()),
            ..Default::default()
        };
        assert!(matches!(Schedule::new(&c), Err(ScheduleError::NoRetention)));
        c.keep = KeepConfig {
            last: Some(3),
            weekly: Some(5),
            ..Default::default()
        };
        let s = Schedule::new(&c).unwrap();
        let args: Vec<String> = s.jobs[0]
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["backups", "prune", "--keep-last", "3", "--keep-weekly", "5"]
        );
    }

    #[test]
    fn nothing_scheduled_is_refused_and_order_is_fixed() {
        assert!(matches!(
            Schedule::new(&cfg(None)),
            Err(ScheduleError::NothingScheduled)
        ));
        let c = ScheduleConfig {
            drill: Some("0 0 5 * * SUN".into()),
            verify: Some("0 0 4 * * *".into()),
            backup: Some("0 15 2 * * *".into()),
            metrics_dir: Some(std::env::temp_dir()),
            ..Default::default()
        };
        let s = Schedule::new(&c).unwrap();
        let kinds: Vec<Kind> = s.jobs.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, [Kind::Backup, Kind::Verify, Kind::Drill]);
        let last = s.jobs[2]
            .args
            .last()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(last.ends_with("stockops_drill.prom"), "{last}");
    }

    #[test]
    fn a_stop_turns_a_failure_into_an_abort_but_not_a_success() {
        use std::os::unix::process::ExitStatusExt;
        let ok = ExitStatus::from_raw(0);
        let seven = ExitStatus::from_raw(7 << 8);
        assert_eq!(outcome_of(ok, true), Outcome::Ok);
        assert_eq!(outcome_of(seven, true), Outcome::Aborted);
        assert_eq!(outcome_of(seven, false), Outcome::Failed);
    }
}
