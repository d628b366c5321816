//! WAL archiving and physical backups against a real PostgreSQL (a scratch
//! cluster of our own whose archive_command is this binary) and the real S3
//! server of `scripts/testenv.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, PgConnection};
use stockops::recovery::drill::ScratchCluster;

use crate::backup::{job_env, s3_repo, with_identity, Keys};
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_stockops");
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A config file the server's archiver reads (the repository and the
/// recipients; S3 credentials come from the environment it inherits).
fn config_file(dir: &Path, repo: &str, keys: &Keys) -> PathBuf {
    let path = dir.join("stockops.toml");
    std::fs::write(
        &path,
        format!(
            "repo = \"{repo}\"\ns3_path_style = true\nrecipients_file = \"{}\"\n",
            keys.recipients.display()
        ),
    )
    .unwrap();
    path
}

/// Make the files readable by the postgres OS user the cluster runs as.
fn open_up(dir: &Path) {
    let out = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
}

fn as_postgres(program: &str, args: &[&str]) -> Output {
    let exe = format!("{PG_BIN}/{program}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args).output().unwrap()
}

/// `pg_ctl ACTION -D DIR -w` as the postgres OS user, with `-l LOG -t 60`
/// and any `extra` options for start and restart; it must succeed.
fn pg_ctl(action: &str, dir: &Path, log: Option<&Path>, extra: &[&str]) {
    let mut args = vec!["-D", dir.to_str().unwrap(), "-w"];
    if let Some(log) = log {
        args.extend(["-l", log.to_str().unwrap(), "-t", "60"]);
    }
    args.extend(extra);
    args.push(action);
    let out = as_postgres("pg_ctl", &args);
    assert!(
        out.status.success(),
        "pg_ctl {action} -D {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) async fn connect_to(cluster: &ScratchCluster) -> PgConnection {
    PgConnection::connect_with(&cluster.options("postgres").disable_statement_logging())
        .await
        .unwrap()
}

/// A scratch cluster whose archive_command is `stockops --config FILE wal push --ahead 2 %p`.
async fn archiving_cluster(config: &Path) -> ScratchCluster {
    use_s3_env();
    let cluster = ScratchCluster::start(15, false).expect("a scratch cluster");
    let mut conn = connect_to(&cluster).await;
    // --ahead: each call may push the next ready files too; the later calls find them archived.
    let command = format!("{BIN} --config {} wal push --ahead 2 %p", config.display());
    for sql in [
        "ALTER SYSTEM SET archive_mode = 'on'".to_string(),
        format!("ALTER SYSTEM SET archive_command = '{command}'"),
        "ALTER SYSTEM SET wal_level = 'replica'".to_string(),
        // Archived segments stay in pg_wal, to compare with what fetch returns.
        "ALTER SYSTEM SET wal_keep_size = '1GB'".to_string(),
    ] {
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    pg_ctl(
        "restart",
        &cluster.dir.join("data"),
        Some(&cluster.dir.join("log")),
        &[],
    );
    cluster
}

/// What an archiving test starts from: its directory, keys and repository
/// (Garage), a scratch cluster archiving there, and the environment of a
/// job that may also decrypt.
pub(crate) struct Archiving {
    pub(crate) dir: PathBuf,
    pub(crate) keys: Keys,
    pub(crate) repo: String,
    pub(crate) cluster: ScratchCluster,
    pub(crate) env: Vec<(String, String)>,
}

impl Archiving {
    pub(crate) async fn start(name: &str) -> Self {
        let dir = temp_dir(name);
        let keys = Keys::new(&dir.join("keys"));
        let repo = s3_repo(&name.replace('_', "-"));
        let config = config_file(&dir, &repo, &keys);
        open_up(&dir);
        // The private key stays root's: recoveries must not need the
        // postgres OS user to read it.
        std::fs::set_permissions(
            &keys.identity,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let cluster = archiving_cluster(&config).await;
        let env = with_identity(job_env(&repo, &keys), &keys);
        Self {
            dir,
            keys,
            repo,
            cluster,
            env,
        }
    }
}

/// A URL of one of the cluster's databases, as postgres over its socket.
pub(crate) fn url_of(cluster: &ScratchCluster, database: &str) -> String {
    format!(
        "postgres://postgres@localhost:{}/{database}?host={}",
        cluster.port,
        cluster.dir.display()
    )
}

/// Write some WAL and switch segments `n` times.
pub(crate) async fn activity(conn: &mut PgConnection, n: usize) {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS churn (id int, pad text)")
        .execute(&mut *conn)
        .await
        .unwrap();
    for _ in 0..n {
        sqlx::raw_sql(
            "INSERT INTO churn SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g; SELECT pg_switch_wal();",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// Wait (at most 60 s) until the archiver has archived `last` or later; fail on its failures.
pub(crate) async fn wait_archived(conn: &mut PgConnection, last: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (archived, failed, failed_wal): (Option<String>, i64, Option<String>) = sqlx::query_as(
            "SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(
            failed, 0,
            "archive_command failed for {failed_wal:?}: see the scratch cluster's log"
        );
        if archived.as_deref().is_some_and(|a| a >= last) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{last} not archived after 60 s (last archived: {archived:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn current_segment(conn: &mut PgConnection) -> String {
    sqlx::query_scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn archived_names(repo: &str) -> Vec<stockops::backup::wal::Archived> {
    let store = open_store(repo).await;
    store
        .list("wal/")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| stockops::backup::wal::parse_key(&o.key, o.size))
        .collect()
}

#[tokio::test]
async fn the_archiver_pushes_fetch_round_trips_and_verify_finds_a_gap() {
    let Archiving {
        dir,
        keys,
        repo,
        cluster,
        env,
    } = Archiving::start("wal_arch").await;
    let mut conn = connect_to(&cluster).await;

    // 1. The server archives through `stockops wal push`.
    let before = current_segment(&mut conn).await;
    activity(&mut conn, 4).await;
    let last = {
        // The segment before the current one is the last switched out.
        let cur = current_segment(&mut conn).await;
        let (tl, n) = stockops::backup::wal::segment_number(&cur, 16 << 20).unwrap();
        stockops::backup::wal::segment_name(tl, n - 1, 16 << 20)
    };
    wait_archived(&mut conn, &last).await;
    let archived = archived_names(&repo).await;
    let names: Vec<&str> = archived.iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&before.as_str()), "{before} in {names:?}");
    assert!(names.contains(&last.as_str()), "{last} in {names:?}");
    assert!(archived.iter().all(|a| a.key.ends_with(".zst.age")));

    // 2. Pushing the same segment again succeeds, quietly; a different file of that name fails.
    let segment = cluster.dir.join("data/pg_wal").join(&before);
    let original = std::fs::read(&segment).unwrap();
    let push =
        |path: &Path| stockops_env(&["wal", "push", path.to_str().unwrap()], None, None, &env);
    let out = push(&segment);
    assert_success(&out, "second push of an identical segment");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let impostor = other_dir.join(&before);
    let mut changed = original.clone();
    changed[4096] ^= 0xff;
    std::fs::write(&impostor, &changed).unwrap();
    let out = push(&impostor);
    assert_code(&out, 1, "push of a different file under an archived name");
    assert!(
        stderr(&out).contains("already archived") && stderr(&out).contains("different contents"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        archived_names(&repo)
            .await
            .iter()
            .filter(|a| a.name == before)
            .count(),
        1,
        "nothing was written"
    );

    // 3. fetch gives back the very bytes, through a temporary file.
    let restore_dir = dir.join("restore");
    std::fs::create_dir_all(&restore_dir).unwrap();
    let dest = restore_dir.join("RECOVERYXLOG");
    let fetch = |name: &str, dest: &Path, env: &[(String, String)]| {
        stockops_env(
            &["wal", "fetch", name, dest.to_str().unwrap()],
            None,
            None,
            env,
        )
    };
    assert_success(&fetch(&before, &dest, &env), "fetch");
    assert!(std::fs::read(&dest).unwrap() == original, "byte-identical");
    std::fs::remove_file(&dest).unwrap();

    // 4. A missing file: exit 8, nothing on stderr (routine at the end of recovery).
    let out = fetch("000000070000000000000001", &dest, &env);
    assert_code(&out, 8, "fetch of a missing segment");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // 5. The wrong key, and a flipped byte, fail clearly and leave nothing behind.
    let stranger = Keys::new(&dir.join("stranger"));
    let wrong = with_identity(job_env(&repo, &keys), &stranger);
    let out = fetch(&before, &dest, &wrong);
    assert_code(&out, 128, "fetch with the wrong identity");
    assert!(
        stderr(&out).contains("no identity matches"),
        "{}",
        stderr(&out)
    );
    let store = open_store(&repo).await;
    let victim = archived
        .iter()
        .find(|a| a.name == last)
        .expect("the last segment is archived");
    let mut bytes = store.get(&victim.key).await.unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    store.put(&victim.key, bytes).await.unwrap();
    let out = fetch(&last, &dest, &env);
    assert_code(&out, 128, "fetch of a corrupted object");
    assert!(stderr(&out).contains(&last), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(&restore_dir).unwrap().collect();
    assert!(left.is_empty(), "no partial file: {left:?}");

    // 6. wal verify: continuous, then a gap once a middle segment is gone.
    let out = stockops_env(&["wal", "verify", "--json"], None, None, &env);
    assert_success(&out, "wal verify");
    let mut middle: Vec<&stockops::backup::wal::Archived> = archived
        .iter()
        .filter(|a| a.kind == stockops::backup::wal::Kind::Segment)
        .collect();
    middle.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(middle.len() >= 3, "{middle:?}");
    let gone = middle[middle.len() / 2];
    store.delete(&gone.key).await.unwrap();
    let out = stockops_env(&["wal", "verify", "--json"], None, None, &env);
    assert_code(&out, 1, "wal verify with a gap");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let gap = &v["timelines"][0]["gaps"][0];
    assert_eq!(gap["from"], gone.name.as_str(), "{v}");
    assert_eq!(gap["missing"], 1, "{v}");
    assert!(stderr(&out).contains("not continuous"), "{}", stderr(&out));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_physical_backup_of_an_archiving_cluster_verifies_and_its_wal_follows() {
    let Archiving {
        dir,
        keys,
        repo,
        cluster,
        env,
    } = Archiving::start("wal_phys").await;
    let mut conn = connect_to(&cluster).await;
    activity(&mut conn, 1).await;
    let url = url_of(&cluster, "postgres");
    let out = stockops_env(&["backup", "--physical", "--json"], Some(&url), None, &env);
    assert_success(&out, "backup --physical");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["kind"], "physical");
    let stop_segment = s["wal"]["stop_segment"].as_str().unwrap().to_string();

    // The manifest is there, last, and says what the backup needs.
    let store = open_store(&repo).await;
    let m: serde_json::Value = serde_json::from_slice(
        &store
            .get(&format!("backups/{id}/manifest.json"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m["kind"], "physical");
    assert_eq!(m["wal"]["includes_wal"], true);
    assert!(m["wal"]["start_lsn"].as_str().unwrap().contains('/'));

    // The base backup opens with the standard tools and holds a backup_label.
    std::fs::write(
        dir.join("base.tar.zst.age"),
        store
            .get(&format!("backups/{id}/base.tar.zst.age"))
            .await
            .unwrap(),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; age -d -i {} {} | zstd -d | tar -t",
            keys.identity.display(),
            dir.join("base.tar.zst.age").display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.lines().any(|l| l == "backup_label"), "{listing}");
    assert!(
        listing.lines().any(|l| l.starts_with("pg_wal/0000")),
        "-X fetch: the WAL is in"
    );

    // list, show, verify (deep) work on it; a logical restore refuses it.
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert_success(&out, "backups list");
    assert!(stdout(&out).contains(&id));
    assert_success(
        &stockops_env(&["backups", "show", &id], None, None, &env),
        "backups show",
    );
    let out = stockops_env(&["backups", "verify", &id, "--json"], None, None, &env);
    assert_success(&out, "backups verify");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deep"], true, "{v}");
    let out = stockops_env(&["restore", &id, "--target-url", &url], None, None, &env);
    assert_code(&out, 1, "a logical restore of a physical backup");
    assert!(stderr(&out).contains("physical"), "{}", stderr(&out));
    let out = stockops_env(&["drill", "latest"], None, None, &env);
    assert_code(&out, 1, "a drill with only a physical backup");
    assert!(
        stderr(&out).contains("no complete logical backup"),
        "{}",
        stderr(&out)
    );

    // The archive continues the backup: verify from it, once its last segment is archived.
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    wait_archived(&mut conn, &stop_segment).await;
    let out = stockops_env(
        &["wal", "verify", "--from-backup", "latest", "--json"],
        None,
        None,
        &env,
    );
    assert_success(&out, "wal verify --from-backup latest");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["from_backup"], id.as_str());
    assert_eq!(v["timelines"][0]["from"], stop_segment.as_str(), "{v}");

    // Retention that understands WAL: a second physical backup, then keep only
    // it: the first goes, and with it the WAL before the second's start.
    activity(&mut conn, 2).await;
    let out = stockops_env(&["backup", "--physical", "--json"], Some(&url), None, &env);
    assert_success(&out, "second backup --physical");
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keep_from = second["wal"]["start_segment"].as_str().unwrap().to_string();
    let second_stop = second["wal"]["stop_segment"].as_str().unwrap().to_string();
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    wait_archived(&mut conn, &second_stop).await;
    let before_prune = archived_names(&repo).await;
    assert!(before_prune.iter().any(|a| a.name < keep_from));
    let out = stockops_env(
        &[
            "backups",
            "prune",
            "--keep-last",
            "1",
            "--grace-hours",
            "0",
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "prune --keep-last 1");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["wal"]["from_backup"], second["id"], "{plan}");
    assert!(plan["wal"]["expired"].as_u64().unwrap() >= 1, "{plan}");
    let after = archived_names(&repo).await;
    assert!(
        after.iter().all(|a| a.name[..24] >= keep_from[..]),
        "nothing before {keep_from} is left: {after:?}"
    );
    assert!(
        after.iter().any(|a| a.name == keep_from),
        "{keep_from} stays"
    );
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert!(!stdout(&out).contains(&id), "the first backup is pruned");
    let out = stockops_env(
        &["wal", "verify", "--from-backup", "latest"],
        None,
        None,
        &env,
    );
    assert_success(&out, "wal verify after prune");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn the_backup_role_takes_a_physical_backup_with_only_what_it_is_given() {
    use_s3_env();
    let db = TestDb::provisioned("wal_role").await;
    let mut admin = db.admin().await;
    let (replication, superuser): (bool, bool) = sqlx::query_as(
        "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'stockops_backup'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(
        replication && !superuser,
        "declared: replication, no superuser"
    );
    let password = "pw-stockops-backup-0123456789";
    sqlx::raw_sql(&format!("ALTER ROLE stockops_backup PASSWORD '{password}'"))
        .execute(&mut admin)
        .await
        .unwrap();
    let host = std::env::var("STOCKOPS_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("STOCKOPS_TEST_PG_PORT").expect("set by scripts/testenv.sh");
    let url = format!(
        "postgres://stockops_backup:{password}@{host}:{port}/{}",
        db.name
    );
    let dir = temp_dir("wal_role");
    let keys = Keys::new(&dir);
    let repo = s3_repo("wal-role");
    let env = job_env(&repo, &keys);
    let out = stockops_env(&["backup", "--physical", "--json"], Some(&url), None, &env);
    assert_success(&out, "backup --physical as stockops_backup");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = s["id"].as_str().unwrap();
    // Stored bytes verify without the key.
    let out = stockops_env(&["backups", "verify", id], None, None, &env);
    assert_success(&out, "backups verify (no identity)");

    // A login without REPLICATION is refused before anything is written, exit 5.
    let login = "it_wal_norepl";
    let pw = db.add_user(login, "dept_reporting", None).await;
    let url = format!("postgres://{login}:{pw}@{host}:{port}/{}", db.name);
    let repo2 = s3_repo("wal-role-refused");
    let out = stockops_env(
        &["backup", "--physical"],
        Some(&url),
        None,
        &job_env(&repo2, &keys),
    );
    assert_code(&out, 5, "backup --physical without REPLICATION");
    assert!(stderr(&out).contains("REPLICATION"), "{}", stderr(&out));
    let store = open_store(&repo2).await;
    assert!(store.list("backups/").await.unwrap().is_empty());
    drop_role(login).await;
}

/// Stops a restored server when the test ends, whatever happens.
pub(crate) struct Restored(pub(crate) PathBuf);

impl Drop for Restored {
    fn drop(&mut self) {
        let _ = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.0.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn rows(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(&mut *conn).await.unwrap()
}

#[tokio::test]
async fn someone_deleted_rows_and_a_point_in_time_restore_brings_them_back() {
    let Archiving {
        dir,
        keys: _,
        repo,
        cluster,
        env,
    } = Archiving::start("wal_pitr").await;
    let mut conn = connect_to(&cluster).await;
    sqlx::raw_sql(
        "CREATE TABLE movements (id int PRIMARY KEY, what text NOT NULL);
         INSERT INTO movements SELECT g, 'seeded ' || g FROM generate_series(1, 100) g;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let url = url_of(&cluster, "postgres");
    let out = stockops_env(&["backup", "--physical", "--json"], Some(&url), None, &env);
    assert_success(&out, "backup --physical");

    // Activity, the noted time, the accident, more activity.
    sqlx::raw_sql("INSERT INTO movements VALUES (101, 'before the accident')")
        .execute(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (noted, noted_lsn): (chrono::DateTime<chrono::Utc>, String) =
        sqlx::query_as("SELECT clock_timestamp(), pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::raw_sql("DELETE FROM movements WHERE id <= 50")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql("INSERT INTO movements VALUES (102, 'after the accident')")
        .execute(&mut conn)
        .await
        .unwrap();
    let last = current_segment(&mut conn).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    wait_archived(&mut conn, &last).await;

    // Recover to the noted time beside the running cluster.
    let target = dir.join("restored");
    let _guard = Restored(target.clone());
    let out = stockops_env(
        &[
            "restore",
            "--physical",
            "latest",
            "--target-dir",
            target.to_str().unwrap(),
            "--to-time",
            &noted.to_rfc3339(),
            "--recovery-timeout",
            "120",
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "restore --physical --to-time");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["timeline"].as_i64().unwrap() >= 2,
        "promoted: {report}"
    );
    let port = report["port"].as_u64().unwrap() as u16;
    let opts = sqlx::postgres::PgConnectOptions::new()
        .socket(&target)
        .port(port)
        .username("postgres")
        .database("postgres");
    let mut restored = PgConnection::connect_with(&opts).await.unwrap();
    let back = rows(
        &mut restored,
        "SELECT what FROM movements WHERE id <= 50 ORDER BY id",
    )
    .await;
    assert_eq!(back.len(), 50, "the deleted rows are back");
    let around = rows(
        &mut restored,
        "SELECT what FROM movements WHERE id > 100 ORDER BY id",
    )
    .await;
    assert_eq!(
        around,
        vec!["before the accident".to_string()],
        "the activity before the noted time is there, the one after is not"
    );
    // Production is untouched.
    let prod = rows(&mut conn, "SELECT what FROM movements WHERE id <= 50").await;
    assert!(prod.is_empty());
    // A restored server never archives into production's repository.
    let archive_mode: String = sqlx::query_scalar("SHOW archive_mode")
        .fetch_one(&mut restored)
        .await
        .unwrap();
    assert_eq!(archive_mode, "off");
    // The identity copy restore_command read is gone with the recovery.
    assert!(
        !target.join("stockops-restore-identity.txt").exists(),
        "the identity copy is removed once recovery is over"
    );
    restored.close().await.unwrap();

    // To the LSN noted with the time: the same state.
    let by_lsn = dir.join("by-lsn");
    let _guard_lsn = Restored(by_lsn.clone());
    let out = stockops_env(
        &[
            "restore",
            "--physical",
            "latest",
            "--target-dir",
            by_lsn.to_str().unwrap(),
            "--to-lsn",
            &noted_lsn,
            "--recovery-timeout",
            "120",
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "restore --physical --to-lsn");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["target"], format!("lsn {noted_lsn}"), "{report}");
    let opts = sqlx::postgres::PgConnectOptions::new()
        .socket(&by_lsn)
        .port(report["port"].as_u64().unwrap() as u16)
        .username("postgres")
        .database("postgres");
    let mut at_lsn = PgConnection::connect_with(&opts).await.unwrap();
    assert_eq!(
        rows(&mut at_lsn, "SELECT what FROM movements WHERE id <= 50")
            .await
            .len(),
        50,
        "the deleted rows are back"
    );
    assert_eq!(
        rows(
            &mut at_lsn,
            "SELECT what FROM movements WHERE id > 100 ORDER BY id"
        )
        .await,
        vec!["before the accident".to_string()]
    );
    at_lsn.close().await.unwrap();

    // A drill to the noted time: recovered, and its last replayed commit is before it.
    let out = stockops_env(
        &[
            "drill",
            "--physical",
            "--to-time",
            &noted.to_rfc3339(),
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "drill --physical --to-time");
    let drill: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(drill["ok"], true, "{drill}");
    let reached: chrono::DateTime<chrono::Utc> =
        drill["snapshot_at"].as_str().unwrap().parse().unwrap();
    assert!(reached <= noted, "replayed up to {reached}, target {noted}");
    assert!(
        drill["target"]
            .as_str()
            .unwrap()
            .contains(&noted.to_rfc3339()),
        "{drill}"
    );

    // To the end of the archive: everything, the accident included.
    let latest = dir.join("latest");
    let _guard_latest = Restored(latest.clone());
    let restore_latest = |target: &Path| {
        stockops_env(
            &[
                "restore",
                "--physical",
                "latest",
                "--target-dir",
                target.to_str().unwrap(),
                "--latest",
                "--recovery-timeout",
                "120",
                "--json",
            ],
            None,
            None,
            &env,
        )
    };
    let out = restore_latest(&latest);
    assert_success(&out, "restore --physical --latest");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let opts = sqlx::postgres::PgConnectOptions::new()
        .socket(&latest)
        .port(report["port"].as_u64().unwrap() as u16)
        .username("postgres")
        .database("postgres");
    let mut at_end = PgConnection::connect_with(&opts).await.unwrap();
    let after = rows(
        &mut at_end,
        "SELECT what FROM movements WHERE id > 100 ORDER BY id",
    )
    .await;
    assert_eq!(after, vec!["before the accident", "after the accident"]);
    at_end.close().await.unwrap();

    // A hole in the archive after the backup: --latest refuses rather than stop short there.
    let store = open_store(&repo).await;
    let segments: Vec<stockops::backup::wal::Archived> = archived_names(&repo)
        .await
        .into_iter()
        .filter(|a| a.kind == stockops::backup::wal::Kind::Segment)
        .collect();
    let hole = &segments[segments.len() - 2];
    // A corrupt segment there first: the fetch exits 128 and PostgreSQL stops
    // the recovery, rather than take it for the end of the archive.
    let good = store.get(&hole.key).await.unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    store.put(&hole.key, bad).await.unwrap();
    let corrupt = dir.join("corrupt");
    let _guard_corrupt = Restored(corrupt.clone());
    let out = restore_latest(&corrupt);
    assert_code(
        &out,
        1,
        "restore --physical --latest over a corrupt segment",
    );
    assert!(
        stderr(&out).contains(&format!("could not restore WAL file {}", hole.name))
            && stderr(&out).contains("exit code 128"),
        "{}",
        stderr(&out)
    );
    store.delete(&hole.key).await.unwrap();
    let holed = dir.join("holed");
    let _guard_holed = Restored(holed.clone());
    let out = restore_latest(&holed);
    assert_code(&out, 1, "restore --physical --latest over a hole");
    assert!(
        stderr(&out).contains("misses 1 segment"),
        "{}",
        stderr(&out)
    );
    assert!(!holed.exists(), "nothing was extracted");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn with_archive_timeout_60_s_a_physical_drill_measures_the_real_rpo() {
    let Archiving {
        dir: _,
        keys: _,
        repo,
        cluster,
        env,
    } = Archiving::start("wal_rpo").await;
    let mut conn = connect_to(&cluster).await;
    for sql in [
        "ALTER SYSTEM SET archive_timeout = '60s'",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    }
    sqlx::raw_sql("CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp())")
        .execute(&mut conn)
        .await
        .unwrap();
    let url = url_of(&cluster, "postgres");
    assert_success(
        &stockops_env(&["backup", "--physical"], Some(&url), None, &env),
        "backup --physical",
    );
    // Steady activity, and no manual switch: archive_timeout alone archives
    // the segment being written, once the backup's own switch is archived.
    sqlx::raw_sql("INSERT INTO ticks DEFAULT VALUES")
        .execute(&mut conn)
        .await
        .unwrap();
    let cur = current_segment(&mut conn).await;
    let (tl, n) = stockops::backup::wal::segment_number(&cur, 16 << 20).unwrap();
    let prev = stockops::backup::wal::segment_name(tl, n - 1, 16 << 20);
    wait_archived(&mut conn, &prev).await;
    let waited = Instant::now();
    // (The backup's history file, NAME.OFFSET.backup, may be archived meanwhile: segments only.)
    let archived_before = Some(prev);
    let deadline = Instant::now() + Duration::from_secs(100);
    loop {
        sqlx::raw_sql("INSERT INTO ticks DEFAULT VALUES")
            .execute(&mut conn)
            .await
            .unwrap();
        let (now, failed): (Option<String>, i64) =
            sqlx::query_as("SELECT last_archived_wal, failed_count FROM pg_stat_archiver")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(failed, 0, "archive_command failed");
        if now.map(|n| n[..24].to_string()) > archived_before {
            assert!(
                waited.elapsed() > Duration::from_secs(30),
                "archived after {:?}: not by archive_timeout",
                waited.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "archive_timeout archived nothing in 100 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let out = stockops_env(
        &["drill", "--physical", "--max-rpo", "60", "--json"],
        None,
        None,
        &env,
    );
    assert_success(&out, "drill --physical --max-rpo 60");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rpo = report["rpo_seconds"].as_f64().unwrap();
    assert!((0.0..=60.0).contains(&rpo), "RPO {rpo} s: {report}");
    assert_eq!(report["ok"], true, "{report}");
    // The report is stored like the logical drills'.
    let out = stockops_env(&["drills", "list", "--json"], None, None, &env);
    assert_success(&out, "drills list");
    assert!(stdout(&out).contains("point-in-time recovery"));

    // A hole in the archive after the backup fails the drill, naming it.
    let store = open_store(&repo).await;
    let last = archived_names(&repo)
        .await
        .into_iter()
        .filter(|a| a.kind == stockops::backup::wal::Kind::Segment)
        .max_by(|a, b| a.name.cmp(&b.name))
        .unwrap();
    // Make the newest segment a hole by archiving one more after it.
    sqlx::raw_sql("INSERT INTO ticks DEFAULT VALUES")
        .execute(&mut conn)
        .await
        .unwrap();
    let current = current_segment(&mut conn).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    wait_archived(&mut conn, &current).await;
    store.delete(&last.key).await.unwrap();
    let out = stockops_env(&["drill", "--physical", "--json"], None, None, &env);
    assert_code(&out, 1, "drill over a hole");
    assert!(
        stderr(&out).contains("WAL archive continuous"),
        "{}",
        stderr(&out)
    );
    conn.close().await.unwrap();
}

/// Lay the cluster out as Debian does: its configuration in `DIR/etc`, apart
/// from the data directory (which a base backup then does not carry), and
/// start it from there.
fn debian_layout(cluster: &ScratchCluster) {
    let data = cluster.dir.join("data");
    let etc = cluster.dir.join("etc");
    pg_ctl("stop", &data, None, &[]);
    std::fs::create_dir_all(&etc).unwrap();
    for f in ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
        std::fs::rename(data.join(f), etc.join(f)).unwrap();
    }
    let conf = etc.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "data_directory = '{}'\nhba_file = '{}'\nident_file = '{}'\n",
        data.display(),
        etc.join("pg_hba.conf").display(),
        etc.join("pg_ident.conf").display()
    ));
    std::fs::write(&conf, text).unwrap();
    open_up(&etc);
    let opts = format!(
        "-p {} -k {} -c listen_addresses=''",
        cluster.port,
        cluster.dir.display()
    );
    pg_ctl(
        "start",
        &etc,
        Some(&cluster.dir.join("log")),
        &["-o", &opts],
    );
}

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap()
}

/// The PITR runbook, run as written against a provisioned, seeded cluster in
/// the Debian layout: activity through the procedures, a noted time, a
/// supplier's open purchase orders deleted by hand, more activity; the
/// runbook recovers to the noted time beside production and copies the
/// orders back. Then a physical drill of the same cluster runs the logical
/// drill's checks in the recovered database.
#[tokio::test]
async fn the_pitr_runbook_brings_deleted_orders_back_and_the_drill_checks_the_copy() {
    let Archiving {
        dir,
        keys: _,
        repo: _,
        cluster,
        env,
    } = Archiving::start("wal_runbook").await;
    debian_layout(&cluster);
    let mut admin = connect_to(&cluster).await;
    sqlx::raw_sql("CREATE DATABASE inventory")
        .execute(&mut admin)
        .await
        .unwrap();
    let url = url_of(&cluster, "inventory");
    assert_success(
        &stockops_env(&["provision"], Some(&url), None, &env),
        "provision",
    );
    assert_success(
        &stockops_env(
            &["seed", "--scale", "0.02", "--as-of", "2026-01-01"],
            Some(&url),
            None,
            &env,
        ),
        "seed",
    );
    assert_success(
        &stockops_env(&["backup", "--physical"], Some(&url), None, &env),
        "backup --physical",
    );
    let mut conn = PgConnection::connect_with(
        &url.parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap()
            .disable_statement_logging(),
    )
    .await
    .unwrap();
    // The supplier with the most open orders, a product it supplies, a warehouse.
    let (supplier, sku, warehouse): (String, String, String) = sqlx::query_as(
        "SELECT s.code, (SELECT p.sku FROM inventory.products p ORDER BY p.sku LIMIT 1),
                (SELECT w.code FROM inventory.warehouses w ORDER BY w.code LIMIT 1)
           FROM inventory.suppliers s ORDER BY s.code LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let open_orders = format!(
        "SELECT count(*) FROM inventory.purchase_orders po JOIN inventory.suppliers s USING (supplier_id)
          WHERE s.code = '{supplier}' AND po.status IN ('draft', 'sent')
            AND NOT EXISTS (SELECT FROM inventory.stock_movements m WHERE m.purchase_order_id = po.purchase_order_id)"
    );
    let adjustments = |reason: &str| {
        format!("SELECT count(*) FROM inventory.stock_movements WHERE reason = '{reason}'")
    };
    // Activity through the procedures before the noted time: an order, an adjustment.
    let before = format!(
        "SET ROLE dept_purchasing;
         SELECT api.create_purchase_order('{supplier}', '[{{\"sku\": \"{sku}\", \"quantity\": 7}}]', '{warehouse}');
         RESET ROLE; SET ROLE dept_stock;
         SELECT api.adjust_stock('{sku}', '{warehouse}', 3, 'before the accident');
         RESET ROLE;"
    );
    sqlx::raw_sql(&before).execute(&mut conn).await.unwrap();
    let orders_before = count(&mut conn, &open_orders).await;
    assert!(orders_before >= 1, "{supplier} has open orders");
    let lines_before = count(
        &mut conn,
        "SELECT count(*) FROM inventory.purchase_order_lines",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let noted: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The accident, by hand as the owner, then more activity.
    let accident = format!(
        "BEGIN;
         CREATE TEMP TABLE doomed AS {};
         DELETE FROM inventory.purchase_order_lines WHERE purchase_order_id IN (SELECT purchase_order_id FROM doomed);
         DELETE FROM inventory.purchase_orders WHERE purchase_order_id IN (SELECT purchase_order_id FROM doomed);
         COMMIT;
         SET ROLE dept_stock;
         SELECT api.adjust_stock('{sku}', '{warehouse}', 2, 'after the accident');
         RESET ROLE;",
        open_orders.replacen("SELECT count(*)", "SELECT po.purchase_order_id", 1)
    );
    sqlx::raw_sql(&accident).execute(&mut conn).await.unwrap();
    assert_eq!(count(&mut conn, &open_orders).await, 0);
    let last = current_segment(&mut admin).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut admin)
        .await
        .unwrap();
    wait_archived(&mut admin, &last).await;

    // The runbook, as written.
    let pitr_dir = dir.join("pitr-1431");
    let _guard = Restored(pitr_dir.clone());
    let mut rb_env = env.clone();
    rb_env.extend([
        ("DATABASE_URL".to_string(), url.clone()),
        ("PGHOST".to_string(), cluster.dir.display().to_string()),
        ("PGPORT".to_string(), cluster.port.to_string()),
        ("SUPPLIER".to_string(), supplier.clone()),
        (
            "FROM".to_string(),
            (noted - chrono::Duration::minutes(10)).to_rfc3339(),
        ),
        ("TO".to_string(), chrono::Utc::now().to_rfc3339()),
        ("TARGET_TIME".to_string(), noted.to_rfc3339()),
        ("PITR_DIR".to_string(), pitr_dir.display().to_string()),
        (
            "PITR_PORT".to_string(),
            stockops::recovery::physical::free_port()
                .unwrap()
                .to_string(),
        ),
        ("STOCKOPS_LOG".to_string(), "warn".to_string()),
    ]);
    crate::runbooks::run_runbook("runbooks/pitr.md", &rb_env);

    // The orders and their lines are back; the activity after the noted time stayed.
    assert_eq!(count(&mut conn, &open_orders).await, orders_before);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM inventory.purchase_order_lines"
        )
        .await,
        lines_before
    );
    assert_eq!(
        count(&mut conn, &adjustments("after the accident")).await,
        1
    );
    assert_eq!(
        count(&mut conn, &adjustments("before the accident")).await,
        1
    );
    assert!(!pitr_dir.exists(), "the runbook removed the copy");

    // A physical drill of the same cluster checks the recovered inventory database.
    let out = stockops_env(&["drill", "--physical", "--json"], None, None, &env);
    assert_success(&out, "drill --physical");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "inventory: roles, grants, forced row-level security, api functions",
        "inventory: audit chain",
        "inventory: smoke calls as dept_stock",
        "inventory: smoke calls as supplier",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(report["ok"], true, "{report}");
    // A stop signal in the middle of a physical drill: exit 7, and its
    // recovered copy is stopped and removed.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    open_up(&tmp);
    let mut term_env = env.clone();
    term_env.push(("TMPDIR".into(), tmp.display().to_string()));
    let mut drill = crate::schedule::Proc::spawn(&["drill", "--physical"], None, &term_env);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (copy, postmaster) = loop {
        let found = std::fs::read_dir(&tmp).unwrap().flatten().find_map(|e| {
            let pid = std::fs::read_to_string(e.path().join("postmaster.pid")).ok()?;
            Some((e.path(), pid.lines().next()?.trim().parse::<i32>().ok()?))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            drill.child.try_wait().unwrap().is_none(),
            "the drill ended before its copy was up"
        );
        assert!(Instant::now() < deadline, "no recovered copy within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    crate::schedule::sigterm(drill.child.id());
    let status = drill.wait_exit(Duration::from_secs(60));
    let err = drill.stderr();
    assert_eq!(status.code(), Some(7), "stderr:\n{err}");
    assert!(!copy.exists(), "{} is left", copy.display());
    // The postmaster removes its pid file (what pg_ctl waits for) just before it exits.
    let gone_by = Instant::now() + Duration::from_secs(10);
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    while unsafe { libc::kill(postmaster, 0) } == 0 {
        let state = std::fs::read_to_string(format!("/proc/{postmaster}/stat")).unwrap_or_default();
        assert!(
            Instant::now() < gone_by,
            "the recovered copy's postmaster {postmaster} still runs: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A change the declaration forbids, and the next drill names it.
    sqlx::raw_sql("GRANT SELECT ON inventory.products TO dept_sales")
        .execute(&mut conn)
        .await
        .unwrap();
    let last = current_segment(&mut admin).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut admin)
        .await
        .unwrap();
    wait_archived(&mut admin, &last).await;
    let out = stockops_env(&["drill", "--physical", "--json"], None, None, &env);
    assert_code(&out, 1, "drill --physical of a drifted cluster");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "inventory: roles, grants, forced row-level security, api functions")
        .unwrap();
    assert_eq!(drift["ok"], false, "{report}");
    assert!(
        drift["detail"].as_str().unwrap().contains("products"),
        "{drift}"
    );
    conn.close().await.unwrap();
    admin.close().await.unwrap();
}

/// A recovered copy that goes on archiving makes timeline 2; recovery to the
/// end of the archive from timeline 1's backup follows it there, and a hole
/// where timeline 2 should carry on from timeline 1 is found by `wal verify`
/// and refused by `restore --latest`.
#[tokio::test]
async fn a_later_timeline_is_followed_and_a_hole_at_its_start_is_found() {
    let Archiving {
        dir,
        keys: _,
        repo,
        cluster,
        env,
    } = Archiving::start("wal_tl").await;
    let mut conn = connect_to(&cluster).await;
    activity(&mut conn, 1).await;
    let url = url_of(&cluster, "postgres");
    assert_success(
        &stockops_env(&["backup", "--physical"], Some(&url), None, &env),
        "backup --physical",
    );
    activity(&mut conn, 2).await;
    let last = current_segment(&mut conn).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    wait_archived(&mut conn, &last).await;
    // The production cluster stops: from here on, timeline 2 is the live one.
    conn.close().await.unwrap();
    drop(cluster);

    let restore_latest = |target: &Path| {
        stockops_env(
            &[
                "restore",
                "--physical",
                "latest",
                "--target-dir",
                target.to_str().unwrap(),
                "--latest",
                "--recovery-timeout",
                "120",
                "--json",
            ],
            None,
            None,
            &env,
        )
    };
    // Timeline 2: a copy recovered to the end, then archiving into the same repository.
    let copy = dir.join("tl2");
    let _guard = Restored(copy.clone());
    let out = restore_latest(&copy);
    assert_success(&out, "restore --physical --latest");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["timeline"], 2, "{report}");
    let port = report["port"].as_u64().unwrap() as u16;
    let opts = sqlx::postgres::PgConnectOptions::new()
        .socket(&copy)
        .port(port)
        .username("postgres")
        .database("postgres");
    let mut tl2 = PgConnection::connect_with(&opts).await.unwrap();
    sqlx::raw_sql("ALTER SYSTEM SET archive_mode = 'on'")
        .execute(&mut tl2)
        .await
        .unwrap();
    tl2.close().await.unwrap();
    pg_ctl(
        "restart",
        &copy,
        Some(&copy.join("stockops-restore.log")),
        &[],
    );
    // The history file was written while the copy did not archive.
    let history = copy.join("pg_wal/00000002.history");
    assert_success(
        &stockops_env(
            &["wal", "push", history.to_str().unwrap()],
            None,
            None,
            &env,
        ),
        "wal push 00000002.history",
    );
    let mut tl2 = PgConnection::connect_with(&opts).await.unwrap();
    activity(&mut tl2, 2).await;
    let newest = current_segment(&mut tl2).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut tl2)
        .await
        .unwrap();
    wait_archived(&mut tl2, &newest).await;
    tl2.close().await.unwrap();
    assert!(newest.starts_with("00000002"), "{newest}");

    // The archive joins up: verify follows timeline 2 from timeline 1's end.
    let out = stockops_env(
        &["wal", "verify", "--from-backup", "latest", "--json"],
        None,
        None,
        &env,
    );
    assert_success(&out, "wal verify over two timelines");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t2 = v["timelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["timeline"] == "00000002")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(t2["follows"], "00000001", "{v}");
    assert_eq!(t2["history"], true, "{v}");

    // Recovery from timeline 1's backup follows timeline 2 to its end.
    let followed = dir.join("followed");
    let _guard_followed = Restored(followed.clone());
    let out = restore_latest(&followed);
    assert_success(&out, "restore --latest across a timeline switch");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["timeline"], 3, "{report}");
    let reached = stockops::backup::wal::parse_lsn(report["lsn"].as_str().unwrap()).unwrap();
    let (_, newest_n) = stockops::backup::wal::segment_number(&newest, 16 * 1024 * 1024).unwrap();
    assert!(
        reached / (16 * 1024 * 1024) > newest_n,
        "recovered past {newest}: {report}"
    );

    // Timeline 2's first segment lost: a hole where it carries on from timeline 1.
    let first_tl2 = archived_names(&repo)
        .await
        .into_iter()
        .filter(|a| a.kind == stockops::backup::wal::Kind::Segment && a.timeline == 2)
        .min_by(|a, b| a.name.cmp(&b.name))
        .unwrap();
    open_store(&repo)
        .await
        .delete(&first_tl2.key)
        .await
        .unwrap();
    let out = stockops_env(
        &["wal", "verify", "--from-backup", "latest", "--json"],
        None,
        None,
        &env,
    );
    assert_code(&out, 1, "wal verify with timeline 2's first segment gone");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gap = v["timelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["timeline"] == "00000002")
        .map(|t| t["gaps"][0].clone())
        .unwrap();
    assert_eq!(gap["from"], first_tl2.name.as_str(), "{v}");
    let holed = dir.join("holed");
    let _guard_holed = Restored(holed.clone());
    let out = restore_latest(&holed);
    assert_code(
        &out,
        1,
        "restore --latest over a hole at timeline 2's start",
    );
    assert!(
        stderr(&out).contains(&format!("misses 1 segment(s) from {}", first_tl2.name)),
        "{}",
        stderr(&out)
    );
}

/// A stopped archiver leaves no gap, only silence: `wal verify
/// --max-age-minutes` fails on an archive whose newest file is too old, or
/// on an empty one.
#[test]
fn wal_verify_max_age_finds_an_archiver_gone_quiet() {
    let dir = temp_dir("wal_age");
    let keys = Keys::new(&dir.join("keys"));
    let repo = format!("file://{}", dir.join("repo").display());
    let env = job_env(&repo, &keys);
    let verify = |max: &str| {
        stockops_env(
            &["wal", "verify", "--max-age-minutes", max, "--json"],
            None,
            None,
            &env,
        )
    };
    let out = verify("60");
    assert_code(&out, 1, "wal verify --max-age-minutes of an empty archive");
    assert!(
        stderr(&out).contains("no WAL file is archived at all"),
        "{}",
        stderr(&out)
    );
    // One segment (its contents do not matter to push), archived three hours ago.
    let pg_wal = dir.join("pg_wal");
    std::fs::create_dir_all(&pg_wal).unwrap();
    let segment = pg_wal.join("000000010000000000000001");
    std::fs::write(&segment, vec![7u8; 1 << 20]).unwrap();
    assert_success(
        &stockops_env(
            &["wal", "push", segment.to_str().unwrap()],
            None,
            None,
            &env,
        ),
        "wal push",
    );
    let out = verify("60");
    assert_success(&out, "wal verify --max-age-minutes 60 right after a push");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["newest_age_seconds"].as_f64().unwrap() < 600.0, "{v}");
    let out = Command::new("find")
        .arg(dir.join("repo/wal"))
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "3 hours ago",
            "{}",
            "+",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = verify("60");
    assert_code(&out, 1, "wal verify --max-age-minutes 60, newest 3 h old");
    assert!(
        stderr(&out).contains("archived 3.0 h ago"),
        "{}",
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_success(&verify("240"), "wal verify --max-age-minutes 240");
}
