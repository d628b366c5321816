//! `stockops schedule` with seconds-level cron expressions, and SIGTERM in
//! the middle of a backup (the scheduler's and a plain `stockops backup`).
//!
//! A backup is made slow on purpose with a pg_dump wrapper (STOCKOPS_PG_BIN)
//! that hands the real pg_dump's output on at a fixed rate, so "mid-upload"
//! is a state the test waits for, not a race it hopes to win.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backup::{job_env, s3_repo, with_identity, Keys};
use crate::common::*;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A directory to use as STOCKOPS_PG_BIN whose pg_dump passes the real one's
/// output on `chunk` bytes at a time, one chunk every `pause` seconds.
pub fn slow_pg_bin(dir: &Path, chunk: usize, pause: f64) -> PathBuf {
    let bin = dir.join("slow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\n\
         # pg_dump, throttled for the tests: {chunk} bytes every {pause} s.\n\
         exec perl -e 'open(my $in, \"-|\", @ARGV) or die \"pg_dump: $!\\n\"; $| = 1;\n\
           while (read($in, my $b, {chunk})) {{ print $b; select(undef, undef, undef, {pause}); }}\n\
           close($in); exit($? ? 1 : 0);' {PG_BIN}/pg_dump \"$@\"\n"
    );
    let path = bin.join("pg_dump");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Every other client program as it is (pg_dumpall, pg_restore).
    for entry in std::fs::read_dir(PG_BIN).unwrap() {
        let entry = entry.unwrap();
        let link = bin.join(entry.file_name());
        if !link.exists() {
            std::os::unix::fs::symlink(entry.path(), link).unwrap();
        }
    }
    bin
}

fn write_config(dir: &Path, schedule: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("stockops.toml");
    std::fs::write(&path, schedule).unwrap();
    path
}

pub(crate) fn sigterm(pid: u32) {
    // SAFETY: kill(2) takes two integers.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
}

/// A running process whose stdout is read line by line, and stderr kept.
pub(crate) struct Proc {
    pub(crate) child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Every stdout line so far, parsed where it is JSON.
    log: Vec<Value>,
}

impl Proc {
    pub(crate) fn spawn(args: &[&str], url: Option<&str>, env: &[(String, String)]) -> Self {
        let mut child = command(args, url, env).spawn().expect("spawn stockops");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
            log: Vec::new(),
        }
    }

    fn take_line(&mut self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                self.log.push(v);
                true
            }
            Err(_) => false,
        }
    }

    /// Read lines until `done` holds for the log, or fail after `limit`.
    fn wait_for(&mut self, what: &str, limit: Duration, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.log) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.fail(&format!("{what}: not seen within {limit:?}"));
            }
            if !self.take_line(left.min(Duration::from_millis(200))) {
                if let Some(status) = self.child.try_wait().unwrap() {
                    while self.take_line(Duration::from_millis(100)) {}
                    self.fail(&format!("{what}: the process ended first ({status})"));
                }
            }
        }
    }

    /// Wait for the exit, at most `limit`; then read what is left of stdout.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.fail(&format!("still running {limit:?} after SIGTERM"));
            }
            self.take_line(Duration::from_millis(100));
        };
        while self.take_line(Duration::from_secs(2)) {}
        status
    }

    fn fail(&mut self, message: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log: Vec<String> = self.log.iter().map(|v| v.to_string()).collect();
        panic!("{message}\nstdout:\n{}", log.join("\n"));
    }

    /// Everything written to stderr (once the process has ended).
    pub(crate) fn stderr(&mut self) -> String {
        let thread = self.stderr.take().expect("stderr read once");
        thread.join().unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave a scheduler running: stop it as
        // an operator would, then for good.
        if let Ok(None) = self.child.try_wait() {
            sigterm(self.child.id());
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn runs<'a>(log: &'a [Value], job: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    log.iter()
        .filter(move |v| v["event"] == "run" && v["job"] == job)
}

fn count(log: &[Value], job: &str, outcome: &str) -> usize {
    runs(log, job).filter(|v| v["outcome"] == outcome).count()
}

fn time(v: &Value, key: &str) -> chrono::DateTime<chrono::Utc> {
    v[key].as_str().unwrap().parse().unwrap()
}

fn metric(file: &Path, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
}

#[test]
fn an_invalid_cron_expression_is_a_usage_error_naming_its_key() {
    let dir = temp_dir("sch_cron");
    let config = write_config(
        &dir,
        "[schedule]\nbackup = \"*/2 * * * * *\"\nverify = \"0 0 25 * * *\"\n",
    );
    let config = config.to_str().unwrap();
    let out = stockops(&["--config", config, "schedule"], None, None);
    assert_code(&out, 2, "an hour of 25");
    let err = stderr(&out);
    assert!(err.contains("schedule.verify"), "{err}");
    assert!(err.contains("\"0 0 25 * * *\""), "{err}");
    assert!(stdout(&out).is_empty(), "nothing started: {}", stdout(&out));

    let config = write_config(&dir, "[schedule]\nbackup = \"every night\"\n");
    let out = stockops(
        &["--config", config.to_str().unwrap(), "schedule", "--once"],
        None,
        None,
    );
    assert_code(&out, 2, "not a cron expression");
    assert!(stderr(&out).contains("schedule.backup"), "{}", stderr(&out));

    let config = write_config(&dir, "[schedule]\nprune = \"0 45 3 * * *\"\n");
    let out = stockops(
        &["--config", config.to_str().unwrap(), "schedule"],
        None,
        None,
    );
    assert_code(&out, 2, "prune without a retention");
    assert!(stderr(&out).contains("[schedule.keep]"), "{}", stderr(&out));
}

#[tokio::test]
async fn jobs_run_on_their_schedule_and_a_kind_never_overlaps_itself() {
    let db = TestDb::provisioned("sch_run").await;
    let dir = temp_dir("sch_run");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let metrics = dir.join("metrics");
    let config = write_config(
        &dir,
        &format!(
            "[schedule]\n\
             backup = \"*/2 * * * * *\"\n\
             verify = \"*/3 * * * * *\"\n\
             prune = \"*/5 * * * * *\"\n\
             metrics_dir = \"{}\"\n\
             [schedule.keep]\nlast = 3\n",
            metrics.display()
        ),
    );
    // A backup of the provisioned database takes a few seconds: longer than
    // the two between backup ticks.
    let mut env = with_identity(job_env(&repo, &keys), &keys);
    let bin = slow_pg_bin(&dir, 8 * 1024, 0.2);
    env.push(("STOCKOPS_PG_BIN".into(), bin.display().to_string()));
    let config = config.to_str().unwrap();
    let args = ["--config", config, "schedule", "--stop-timeout", "20"];
    let mut sched = Proc::spawn(&args, Some(&db.url), &env);

    sched.wait_for("the started line", Duration::from_secs(10), |log| {
        log.iter().any(|v| v["event"] == "started")
    });
    let started = sched.log[0].clone();
    assert_eq!(started["jobs"].as_array().unwrap().len(), 3, "{started}");
    assert!(started["jobs"][0]["next_run"].is_string(), "{started}");

    sched.wait_for("a successful backup", Duration::from_secs(60), |log| {
        count(log, "backup", "ok") >= 1
    });
    // Read now: the next backup cannot end within the next second.
    let backup_prom = metrics.join("stockops_backup.prom");
    assert_eq!(
        metric(&backup_prom, "stockops_backup_last_run_success"),
        Some(1.0),
        "{}",
        std::fs::read_to_string(&backup_prom).unwrap_or_default()
    );
    assert!(metric(&backup_prom, "stockops_backup_bytes{kind=\"stored\"}").unwrap() > 0.0);

    sched.wait_for(
        "two backups, a skipped tick, a verify and a prune",
        Duration::from_secs(90),
        |log| {
            count(log, "backup", "ok") >= 2
                && count(log, "backup", "skipped") >= 1
                && count(log, "verify", "ok") >= 1
                && count(log, "prune", "ok") >= 1
        },
    );
    for job in ["verify", "prune"] {
        let file = metrics.join(format!("stockops_{job}.prom"));
        assert!(
            metric(
                &file,
                &format!("stockops_{job}_last_success_timestamp_seconds")
            )
            .is_some(),
            "{job}: {}",
            std::fs::read_to_string(&file).unwrap_or_default()
        );
    }

    sigterm(sched.child.id());
    let status = sched.wait_exit(Duration::from_secs(40));
    let log = std::mem::take(&mut sched.log);
    let stderr = sched.stderr();
    let aborted = log.iter().any(|v| v["outcome"] == "aborted");
    assert_eq!(
        status.code(),
        Some(if aborted { 7 } else { 0 }),
        "exit 7 exactly when a job in flight was aborted\nstderr:\n{stderr}"
    );
    assert!(log
        .iter()
        .any(|v| v["event"] == "stopping" && v["signal"] == "SIGTERM"));
    assert_eq!(log.last().unwrap()["event"], "stopped");

    // Every run line is complete, and the backups' intervals never intersect.
    let mut backups: Vec<&Value> = runs(&log, "backup")
        .filter(|v| v["outcome"] != "skipped")
        .collect();
    for v in &backups {
        assert!(v["seconds"].as_f64().unwrap() >= 0.0, "{v}");
        assert!(v["finished_at"].is_string() && v["pid"].is_u64(), "{v}");
        assert_ne!(v["exit_code"], 6, "a backup found the lock taken: {v}");
    }
    backups.sort_by_key(|v| time(v, "started_at"));
    for pair in backups.windows(2) {
        assert!(
            time(pair[0], "finished_at") <= time(pair[1], "started_at"),
            "two backup runs overlap:\n{}\n{}",
            pair[0],
            pair[1]
        );
    }
    // A skip is logged at a tick that fell inside a run.
    let skip = runs(&log, "backup")
        .find(|v| v["outcome"] == "skipped")
        .unwrap();
    let tick = time(skip, "started_at");
    assert!(
        backups
            .iter()
            .any(|b| time(b, "started_at") <= tick && tick <= time(b, "finished_at")),
        "{skip} falls in no backup run"
    );

    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert_success(&out, "backups list");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let complete = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["complete"] == true)
        .count();
    assert!((2..=3).contains(&complete), "{list}");
}

/// A database whose dump is about 24 MB of incompressible hex, so a backup
/// spans several parts.
async fn with_ballast(tag: &str) -> TestDb {
    let db = TestDb::provisioned(tag).await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(
        "CREATE TABLE public.ballast AS
           SELECT i, decode(md5(random()::text || i) || md5(i || random()::text), 'hex') AS b
             FROM generate_series(1, 375000) AS i",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    db
}

/// S3 client of the test server, for what the store does not show (parts).
async fn s3_client() -> aws_sdk_s3::Client {
    use_s3_env();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let conf = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Multipart uploads open under the repository's prefix, and their part counts.
async fn open_uploads(s3: &aws_sdk_s3::Client, repo: &str) -> Vec<(String, usize)> {
    let rest = repo.strip_prefix("s3://").unwrap();
    let (bucket, prefix) = rest.split_once('/').unwrap();
    let page = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(format!("{prefix}/"))
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for u in page.uploads() {
        let (key, id) = (u.key().unwrap(), u.upload_id().unwrap());
        let parts = s3
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .send()
            .await
            .map(|p| p.parts().len())
            .unwrap_or(0);
        out.push((key.to_string(), parts));
    }
    out
}

/// Poll until an upload of the repository has at least one part stored.
async fn wait_mid_upload(s3: &aws_sdk_s3::Client, repo: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if open_uploads(s3, repo)
            .await
            .iter()
            .any(|(_, parts)| *parts >= 1)
        {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before a part was stored"
        );
        assert!(Instant::now() < deadline, "no part uploaded within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Nothing of the backup is left: no object, no manifest, no open upload;
/// and no pg_dump still reads the database.
async fn assert_nothing_kept(repo: &str, s3: &aws_sdk_s3::Client, db: &TestDb) {
    let store = open_store(repo).await;
    let objects = store.list("").await.unwrap();
    assert!(
        objects.iter().all(|o| !o.key.ends_with("manifest.json")),
        "a manifest was written: {objects:?}"
    );
    assert!(objects.is_empty(), "objects left behind: {objects:?}");
    let incomplete = store.incomplete_uploads().await.unwrap();
    assert!(incomplete.is_empty(), "open uploads: {incomplete:?}");
    assert!(open_uploads(s3, repo).await.is_empty());
    let mut admin = connect(&admin_url()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let dumps: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_dump'",
        )
        .bind(&db.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if dumps == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "pg_dump still connected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sigterm_to_a_backup_mid_upload_aborts_it_and_keeps_nothing() {
    let db = with_ballast("sch_bk_term").await;
    let dir = temp_dir("sch_bk_term");
    let keys = Keys::new(&dir);
    let repo = s3_repo("sch-bk-term");
    let mut env = job_env(&repo, &keys);
    let bin = slow_pg_bin(&dir, 256 * 1024, 0.1);
    env.push(("STOCKOPS_PG_BIN".into(), bin.display().to_string()));
    let s3 = s3_client().await;
    let metrics = dir.join("backup.prom");
    let metrics_arg = metrics.to_str().unwrap();
    let args = [
        "backup",
        "--part-size-mib",
        "5",
        "--metrics-file",
        metrics_arg,
    ];
    let mut backup = Proc::spawn(&args, Some(&db.url), &env);

    wait_mid_upload(&s3, &repo, &mut backup.child).await;
    let signalled = Instant::now();
    sigterm(backup.child.id());
    let status = backup.wait_exit(Duration::from_secs(30));
    let stderr = backup.stderr();
    assert_eq!(status.code(), Some(7), "stderr:\n{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(20));
    assert!(
        stderr.contains("backup aborted by signal: nothing was kept"),
        "{stderr}"
    );
    assert_eq!(
        metric(&metrics, "stockops_backup_last_run_success"),
        Some(0.0)
    );
    assert_nothing_kept(&repo, &s3, &db).await;
}

#[tokio::test]
async fn sigterm_to_the_scheduler_mid_backup_aborts_it_and_keeps_nothing() {
    let db = with_ballast("sch_term").await;
    let dir = temp_dir("sch_term");
    let keys = Keys::new(&dir);
    let repo = s3_repo("sch-term");
    let mut env = job_env(&repo, &keys);
    let bin = slow_pg_bin(&dir, 256 * 1024, 0.1);
    env.push(("STOCKOPS_PG_BIN".into(), bin.display().to_string()));
    let s3 = s3_client().await;
    let config = write_config(&dir, "[schedule]\nbackup = \"* * * * * *\"\n");
    let config = config.to_str().unwrap();
    let args = ["--config", config, "schedule", "--stop-timeout", "20"];
    let mut sched = Proc::spawn(&args, Some(&db.url), &env);

    wait_mid_upload(&s3, &repo, &mut sched.child).await;
    let signalled = Instant::now();
    sigterm(sched.child.id());
    let status = sched.wait_exit(Duration::from_secs(40));
    let took = signalled.elapsed();
    let log = std::mem::take(&mut sched.log);
    let stderr = sched.stderr();
    assert_eq!(status.code(), Some(7), "stderr:\n{stderr}");
    assert!(took < Duration::from_secs(20), "stopped in {took:?}");
    assert!(
        stderr.contains("backup aborted by signal: nothing was kept"),
        "{stderr}"
    );
    let aborted: Vec<&Value> = runs(&log, "backup")
        .filter(|v| v["outcome"] == "aborted")
        .collect();
    assert_eq!(aborted.len(), 1, "{log:?}");
    assert_eq!(aborted[0]["exit_code"], 7, "{}", aborted[0]);
    assert_eq!(count(&log, "backup", "ok"), 0, "{log:?}");
    let stopping = log.iter().find(|v| v["event"] == "stopping").unwrap();
    assert_eq!(stopping["running"], serde_json::json!(["backup"]));
    assert_eq!(log.last().unwrap()["exit_code"], 7);
    assert_nothing_kept(&repo, &s3, &db).await;
}

#[tokio::test]
async fn once_runs_each_job_in_order_and_fails_when_one_does() {
    let db = crate::drill::with_sales("sch_once", "0.05").await;
    let dir = temp_dir("sch_once");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let metrics = dir.join("metrics");
    let env = with_identity(job_env(&repo, &keys), &keys);
    let config = write_config(
        &dir,
        &format!(
            "[schedule]\n\
             drill = \"0 0 5 * * SUN\"\n\
             prune = \"0 45 3 * * *\"\n\
             verify = \"0 0 4 * * *\"\n\
             backup = \"0 15 2 * * *\"\n\
             metrics_dir = \"{}\"\n\
             [schedule.keep]\nlast = 3\ndaily = 7\n",
            metrics.display()
        ),
    );
    let config = config.to_str().unwrap();

    // Verify first, alone, on an empty repository: it fails, and so does --once.
    let only_verify = write_config(&dir.join("v"), "[schedule]\nverify = \"0 0 4 * * *\"\n");
    let out = stockops_env(
        &[
            "--config",
            only_verify.to_str().unwrap(),
            "schedule",
            "--once",
        ],
        Some(&db.url),
        None,
        &env,
    );
    assert_code(&out, 1, "--once with a failing job");
    assert!(stderr(&out).contains("verify failed"), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[1]["outcome"], "failed", "{lines:?}");
    assert_eq!(lines[1]["exit_code"], 1, "{lines:?}");

    let out = stockops_env(
        &["--config", config, "schedule", "--once"],
        Some(&db.url),
        None,
        &env,
    );
    assert_success(&out, "schedule --once");
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout is JSON lines only"))
        .collect();
    let order: Vec<(&str, &str)> = lines
        .iter()
        .filter(|v| v["event"] == "run")
        .map(|v| (v["job"].as_str().unwrap(), v["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            ("backup", "ok"),
            ("verify", "ok"),
            ("prune", "ok"),
            ("drill", "ok")
        ],
        "{}",
        stderr(&out)
    );
    assert_eq!(lines.last().unwrap()["event"], "stopped");
    for job in ["backup", "verify", "prune", "drill"] {
        let file = metrics.join(format!("stockops_{job}.prom"));
        assert_eq!(
            metric(&file, &format!("stockops_{job}_last_run_success")),
            Some(1.0),
            "{job}"
        );
    }
    assert!(metric(
        &metrics.join("stockops_drill.prom"),
        "stockops_drill_rto_seconds"
    )
    .is_some());
}

/// The scratch cluster of a running drill under `tmp`: its directory and
/// postmaster pid, once the server is up.
fn scratch_cluster(tmp: &Path) -> Option<(PathBuf, i32)> {
    for entry in std::fs::read_dir(tmp).ok()? {
        let dir = entry.ok()?.path();
        let name = dir.file_name()?.to_string_lossy().into_owned();
        if !name.starts_with("stockops-drill-") {
            continue;
        }
        let pidfile = std::fs::read_to_string(dir.join("data/postmaster.pid")).ok()?;
        let pid = pidfile.lines().next()?.trim().parse().ok()?;
        return Some((dir, pid));
    }
    None
}

#[tokio::test]
async fn sigterm_to_a_drill_removes_its_scratch_cluster() {
    let db = crate::drill::with_sales("sch_dr_term", "0.05").await;
    let dir = temp_dir("sch_dr_term");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let mut env = with_identity(job_env(&repo, &keys), &keys);
    crate::backup::backup(&db, &env);
    // The drill's scratch cluster goes under TMPDIR: this test's own.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    env.push(("TMPDIR".into(), tmp.display().to_string()));
    let mut drill = Proc::spawn(&["drill"], None, &env);

    let deadline = Instant::now() + Duration::from_secs(60);
    let (cluster, postmaster) = loop {
        if let Some(found) = scratch_cluster(&tmp) {
            break found;
        }
        assert!(
            drill.child.try_wait().unwrap().is_none(),
            "the drill ended before its scratch cluster was up"
        );
        assert!(Instant::now() < deadline, "no scratch cluster within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sigterm(drill.child.id());
    let status = drill.wait_exit(Duration::from_secs(30));
    let stderr = drill.stderr();
    assert_eq!(status.code(), Some(7), "stderr:\n{stderr}");
    assert!(
        stderr.contains("drill aborted by signal: nothing was kept"),
        "{stderr}"
    );
    assert!(!cluster.exists(), "{} is left", cluster.display());
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(postmaster, 0) } == 0;
    assert!(!alive, "the scratch postmaster {postmaster} still runs");
    let out = stockops_env(&["drills", "list", "--json"], None, None, &env);
    assert_success(&out, "drills list");
    assert_eq!(
        stdout(&out).trim(),
        "[]",
        "no report is stored for a cut drill"
    );
}
