//! Backups against the real PostgreSQL, pg_dump and S3 server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;

use crate::common::*;

/// A key pair on disk: recipients file and identity file.
pub struct Keys {
    pub recipients: PathBuf,
    pub identity: PathBuf,
}

impl Keys {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let id = age::x25519::Identity::generate();
        let recipients = dir.join("recipients.txt");
        let identity = dir.join("identity.txt");
        std::fs::write(
            &recipients,
            format!("# operations key\n{}\n", id.to_public()),
        )
        .unwrap();
        std::fs::write(&identity, format!("{}\n", id.to_string().expose_secret())).unwrap();
        Self {
            recipients,
            identity,
        }
    }
}

/// The environment of a backup job: repository, recipients, S3 credentials.
pub fn job_env(repo: &str, keys: &Keys) -> Vec<(String, String)> {
    let mut env = s3_env();
    env.push(("STOCKOPS_REPO".into(), repo.to_string()));
    env.push((
        "STOCKOPS_AGE_RECIPIENTS".into(),
        keys.recipients.display().to_string(),
    ));
    env
}

pub fn with_identity(mut env: Vec<(String, String)>, keys: &Keys) -> Vec<(String, String)> {
    env.push((
        "STOCKOPS_AGE_IDENTITY".into(),
        keys.identity.display().to_string(),
    ));
    env
}

pub fn s3_repo(tag: &str) -> String {
    format!("s3://{}/it-{tag}-{}", s3_bucket(), std::process::id())
}

/// `stockops backup --json`, returning the id.
pub fn backup(db: &TestDb, env: &[(String, String)]) -> String {
    let out = stockops_env(&["backup", "--json"], Some(&db.url), None, env);
    assert_success(&out, "backup");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["bytes_stored"].as_u64().unwrap() > 0);
    v["id"].as_str().unwrap().to_string()
}

async fn seeded(tag: &str, scale: &str) -> TestDb {
    let db = TestDb::provisioned(tag).await;
    assert_success(
        &db.run(&["seed", "--scale", scale, "--as-of", "2026-01-01"]),
        "seed",
    );
    db
}

fn sh(script: &str) -> std::process::Output {
    Command::new("bash").arg("-c").arg(script).output().unwrap()
}

#[tokio::test]
async fn a_backup_restores_with_the_standard_tools_and_shows_no_business_data() {
    use_s3_env();
    let db = seeded("bk_std", "0.05").await;
    let dir = temp_dir("bk_std");
    let keys = Keys::new(&dir);
    let repo = s3_repo("std");
    let env = job_env(&repo, &keys);
    let id = backup(&db, &env);

    // Fetch the objects as any S3 client would, and open them with age, zstd, pg_restore.
    let store = open_store(&repo).await;
    let objects = store.list(&format!("backups/{id}/")).await.unwrap();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o.key.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "data.dump.zst.age",
            "globals.sql.zst.age",
            "manifest.json",
            "metadata.json.age",
            "roles.json.zst.age"
        ]
    );
    let mut stored = Vec::new();
    for o in &objects {
        let bytes = store.get(&o.key).await.unwrap();
        std::fs::write(dir.join(o.key.rsplit('/').next().unwrap()), &bytes).unwrap();
        stored.push(bytes);
    }
    let out = sh(&format!(
        "age -d -i {id_file} {dir}/data.dump.zst.age | zstd -d | pg_restore -l",
        id_file = keys.identity.display(),
        dir = dir.display()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toc = String::from_utf8_lossy(&out.stdout);
    assert!(toc.contains("TABLE DATA inventory products"), "{toc}");
    assert!(toc.contains("TABLE DATA audit events"), "{toc}");
    let out = sh(&format!(
        "set -o pipefail; age -d -i {} {}/globals.sql.zst.age | zstd -d",
        keys.identity.display(),
        dir.display()
    ));
    assert!(out.status.success());
    let globals = String::from_utf8_lossy(&out.stdout);
    assert!(globals.contains("CREATE ROLE dept_sales"), "{globals}");
    assert!(
        !globals.contains("SCRAM-SHA-256"),
        "globals must carry no password"
    );
    let out = sh(&format!(
        "set -o pipefail; age -d -i {} {}/roles.json.zst.age | zstd -d",
        keys.identity.display(),
        dir.display()
    ));
    assert!(out.status.success());
    let roles: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "dept_sales" && r["login"] == false),
        "{roles}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("SCRAM-SHA-256"),
        "roles must carry no password"
    );

    // Nothing readable: no product, reseller or supplier name in any stored byte.
    let mut admin = db.admin().await;
    let names: Vec<String> = sqlx::query_scalar(
        "(SELECT name FROM inventory.products ORDER BY product_id LIMIT 40)
         UNION ALL (SELECT name FROM inventory.resellers LIMIT 10)
         UNION ALL (SELECT name FROM inventory.suppliers LIMIT 5)
         UNION ALL SELECT 'sales_order_lines'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for bytes in &stored {
        for name in &names {
            assert!(
                !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
                "{name:?} is readable in the repository"
            );
        }
    }

    // Listed, shown and verified, to the plaintext and the archive's contents.
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert_success(&out, "backups list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["complete"], true);
    let out = stockops_env(
        &["backups", "verify", "latest", "--json"],
        None,
        None,
        &with_identity(env.clone(), &keys),
    );
    assert_success(&out, "backups verify latest");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deep"], true);
    assert!(v["toc_entries"].as_u64().unwrap() > 50);
    let out = stockops_env(
        &["backups", "show", &id, "--json"],
        None,
        None,
        &with_identity(env.clone(), &keys),
    );
    assert_success(&out, "backups show");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let products = shown["metadata"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "products")
        .unwrap()
        .clone();
    assert_eq!(products["rows"], 100);
    assert!(shown["metadata"]["audit_head"]
        .as_str()
        .unwrap()
        .starts_with("0:"));
}

#[tokio::test]
async fn recipients_are_refused_before_anything_is_touched() {
    let dir = temp_dir("bk_recipients");
    let repo_dir = dir.join("repo");
    let repo = format!("file://{}", repo_dir.display());
    let keys = Keys::new(&dir);
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "# nobody\n").unwrap();
    let malformed = dir.join("malformed.txt");
    std::fs::write(&malformed, "age1thisisnotakey\n").unwrap();
    let private = dir.join("private.txt");
    std::fs::copy(&keys.identity, &private).unwrap();
    // Port 1 is closed: had it tried to connect, it would have exited 4.
    let url = "postgres://nobody@127.0.0.1:1/nothing";
    let cases: [(Option<&Path>, &str); 5] = [
        (None, "no age recipients"),
        (Some(&empty), "holds no recipient"),
        (Some(&malformed), "not an age recipient"),
        (Some(&private), "private key"),
        (
            Some(Path::new("/nonexistent/recipients.txt")),
            "cannot read",
        ),
    ];
    for (file, expected) in cases {
        let mut env = vec![("STOCKOPS_REPO".to_string(), repo.clone())];
        if let Some(f) = file {
            env.push(("STOCKOPS_AGE_RECIPIENTS".into(), f.display().to_string()));
        }
        let out = stockops_env(&["backup"], Some(url), None, &env);
        assert_code(&out, 2, expected);
        assert!(
            stderr(&out).contains(expected),
            "{expected}: {}",
            stderr(&out)
        );
        assert!(!repo_dir.exists(), "the repository must stay untouched");
    }
}

#[tokio::test]
async fn one_backup_at_a_time() {
    let db = seeded("bk_lock", "0.02").await;
    let dir = temp_dir("bk_lock");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let env = job_env(&repo, &keys);
    let store = open_store(&repo).await;
    let mut holder = db.admin().await;
    stockops::backup::logical::lock(&mut holder, &store.describe())
        .await
        .unwrap();
    let out = stockops_env(&["backup"], Some(&db.url), None, &env);
    assert_code(&out, 6, "second backup while the lock is held");
    assert!(
        stderr(&out).contains("another backup of this database"),
        "{}",
        stderr(&out)
    );
    assert!(
        store.list("").await.unwrap().is_empty(),
        "the refused run touched nothing"
    );
    drop(holder);
    tokio::time::sleep(Duration::from_millis(200)).await;
    backup(&db, &env);
}

#[tokio::test]
async fn a_killed_backup_leaves_nothing_complete_and_no_lock() {
    let db = seeded("bk_kill", "0.3").await;
    let dir = temp_dir("bk_kill");
    let keys = Keys::new(&dir);
    let repo_dir = dir.join("repo");
    let repo = format!("file://{}", repo_dir.display());
    let env = job_env(&repo, &keys);
    let mut child = command(&["backup", "--part-size-mib", "5"], Some(&db.url), &env)
        .spawn()
        .unwrap();
    // Kill it once its upload is under way.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = walk(&repo_dir)
            .iter()
            .any(|p| p.to_string_lossy().contains(".partial-"));
        if partial {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backup never started uploading"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert_success(&out, "list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|b| b["complete"] == false),
        "{list}"
    );
    // Its lock died with it: the next backup runs, and is the only complete one.
    let id = backup(&db, &env);
    let out = stockops_env(&["backups", "verify", "latest", "--json"], None, None, &env);
    assert_success(&out, "verify");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    // Prune clears the leftovers and keeps the complete backup.
    let out = stockops_env(
        &["backups", "prune", "--keep-last", "5", "--grace-hours", "0"],
        None,
        None,
        &env,
    );
    assert_success(&out, "prune");
    assert!(
        !walk(&repo_dir)
            .iter()
            .any(|p| p.to_string_lossy().contains(".partial-")),
        "partial files remain"
    );
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
}

#[tokio::test]
async fn prune_keeps_exactly_what_the_policy_says_on_a_synthetic_history() {
    let dir = temp_dir("bk_prune");
    let repo_dir = dir.join("repo");
    let repo = format!("file://{}", repo_dir.display());
    // 120 days of one backup a day at 01:00, as manifests with a stand-in data object.
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for d in 0..120 {
        let day = start + chrono::Days::new(d);
        let at = format!("{day}T01:00:00Z");
        let id = format!("{}-{:04x}", day.format("%Y%m%dT010000Z"), d);
        let base = repo_dir.join(format!("backups/{id}"));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("data.dump.zst.age"), b"stand-in").unwrap();
        let manifest = serde_json::json!({
            "format": 1, "id": id, "kind": "logical", "database": "db", "server_version": "15.0",
            "stockops_version": "0", "started_at": at, "snapshot_at": at, "finished_at": at,
            "recipients": [], "compression": "zstd level 3", "objects": []
        });
        std::fs::write(base.join("manifest.json"), manifest.to_string()).unwrap();
    }
    let env = vec![("STOCKOPS_REPO".to_string(), repo.clone())];
    let args = [
        "backups",
        "prune",
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "3",
        "--json",
    ];
    let mut dry: Vec<&str> = args.to_vec();
    dry.push("--dry-run");
    let out = stockops_env(&dry, None, None, &env);
    assert_success(&out, "prune --dry-run");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut kept: Vec<String> = plan["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["snapshot_at"].as_str().unwrap()[..10].to_string())
        .collect();
    kept.sort();
    // Last day 2026-04-30 (Thursday). Daily: 04-24..04-30. Weekly (ISO, newest of
    // each): W18 04-30, W17 04-26, W16 04-19, W15 04-12. Monthly: 04-30, 03-31, 02-28.
    assert_eq!(
        kept,
        [
            "2026-02-28",
            "2026-03-31",
            "2026-04-12",
            "2026-04-19",
            "2026-04-24",
            "2026-04-25",
            "2026-04-26",
            "2026-04-27",
            "2026-04-28",
            "2026-04-29",
            "2026-04-30"
        ]
    );
    assert_eq!(
        std::fs::read_dir(repo_dir.join("backups")).unwrap().count(),
        120,
        "--dry-run deletes nothing"
    );
    let out = stockops_env(&args, None, None, &env);
    assert_success(&out, "prune");
    assert_eq!(
        std::fs::read_dir(repo_dir.join("backups")).unwrap().count(),
        11
    );
    // Without a policy, prune refuses rather than guess.
    let out = stockops_env(&["backups", "prune"], None, None, &env);
    assert_code(&out, 2, "prune without a policy");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn pg_dump_dying_fails_the_backup() {
    let db = seeded("bk_dumpdies", "0.3").await;
    let dir = temp_dir("bk_dumpdies");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let env = job_env(&repo, &keys);
    let child = command(&["backup"], Some(&db.url), &env).spawn().unwrap();
    let mut admin = connect(&admin_url()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let killed = loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = $1 AND application_name = 'stockops' AND query LIKE 'COPY %'",
        )
        .bind(&db.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if n > 0 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(killed > 0, "pg_dump's backend was never seen");
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1, "backup whose pg_dump died");
    assert!(stderr(&out).contains("pg_dump failed"), "{}", stderr(&out));
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|b| b["complete"] == false),
        "{list}"
    );
}

#[tokio::test]
async fn verify_catches_flipped_truncated_and_missing_objects() {
    let db = seeded("bk_verify", "0.02").await;
    let dir = temp_dir("bk_verify");
    let keys = Keys::new(&dir);
    let repo_dir = dir.join("repo");
    let repo = format!("file://{}", repo_dir.display());
    let env = job_env(&repo, &keys);
    let id = backup(&db, &env);
    let data = repo_dir.join(format!("backups/{id}/data.dump.zst.age"));
    let original = std::fs::read(&data).unwrap();
    let verify = |deep: bool| {
        let env = if deep {
            with_identity(env.clone(), &keys)
        } else {
            env.clone()
        };
        stockops_env(&["backups", "verify", &id], None, None, &env)
    };
    assert_success(&verify(true), "verify of an intact backup");

    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x40;
    std::fs::write(&data, &flipped).unwrap();
    let out = verify(false);
    assert_code(&out, 1, "a flipped byte");
    assert!(
        stderr(&out).contains("data") && stderr(&out).contains("sha256"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&data, &original[..original.len() - 1000]).unwrap();
    let out = verify(false);
    assert_code(&out, 1, "a truncated object");
    assert!(
        stderr(&out).contains("the manifest records"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&data, &original).unwrap();
    std::fs::remove_file(repo_dir.join(format!("backups/{id}/globals.sql.zst.age"))).unwrap();
    let out = verify(false);
    assert_code(&out, 1, "a missing object");
    assert!(
        stderr(&out).contains("globals") && stderr(&out).contains("missing"),
        "{}",
        stderr(&out)
    );

    std::fs::remove_file(repo_dir.join(format!("backups/{id}/manifest.json"))).unwrap();
    let out = verify(false);
    assert_code(&out, 1, "a missing manifest");
    assert!(stderr(&out).contains("has no manifest"), "{}", stderr(&out));

    // A wrong identity is named as such.
    let id2 = backup(&db, &env);
    let other = Keys::new(&temp_dir("bk_verify_other"));
    let out = stockops_env(
        &["backups", "verify", &id2],
        None,
        None,
        &with_identity(env.clone(), &other),
    );
    assert_code(&out, 1, "verify with a wrong identity");
    assert!(
        stderr(&out).contains("no identity matches the recipients of backup"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn tables_whose_types_cannot_be_hashed_are_fingerprinted_by_text() {
    let db = seeded("bk_fpmethod", "0.02").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(
        "CREATE TABLE public.field_notes (id int PRIMARY KEY, doc json, at point);
         INSERT INTO public.field_notes SELECT g, json_build_object('n', g), point(g, g) FROM generate_series(1, 50) g;",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let dir = temp_dir("bk_fpmethod");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let env = job_env(&repo, &keys);
    let id = backup(&db, &env);
    let out = stockops_env(
        &["backups", "show", &id, "--json"],
        None,
        None,
        &with_identity(env, &keys),
    );
    assert_success(&out, "show");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables = shown["metadata"]["tables"].as_array().unwrap();
    let find = |name: &str| tables.iter().find(|t| t["table"] == name).unwrap().clone();
    assert_eq!(find("field_notes")["method"], "text");
    assert_eq!(find("field_notes")["rows"], 50);
    assert_eq!(find("stock_movements")["method"], "record");
}

fn moto_env() -> Vec<(String, String)> {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run `make test` (scripts/testenv.sh starts moto)")
        })
    };
    vec![
        (
            "AWS_ENDPOINT_URL".into(),
            get("STOCKOPS_TEST_MOTO_ENDPOINT"),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
        (
            "AWS_ACCESS_KEY_ID".into(),
            get("STOCKOPS_TEST_MOTO_ACCESS_KEY_ID"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            get("STOCKOPS_TEST_MOTO_SECRET_ACCESS_KEY"),
        ),
        ("STOCKOPS_S3_PATH_STYLE".into(), "true".into()),
    ]
}

#[tokio::test]
async fn object_lock_is_applied_where_supported_and_refused_where_not() {
    let db = seeded("bk_lockdays", "0.02").await;
    let dir = temp_dir("bk_lockdays");
    let keys = Keys::new(&dir);

    // moto, with signatures checked: every object carries the retention, read back with HEAD.
    let bucket = std::env::var("STOCKOPS_TEST_MOTO_BUCKET").expect("STOCKOPS_TEST_MOTO_BUCKET");
    let repo = format!("s3://{bucket}/it-lock-{}", std::process::id());
    let mut env = moto_env();
    env.push(("STOCKOPS_REPO".into(), repo.clone()));
    env.push((
        "STOCKOPS_AGE_RECIPIENTS".into(),
        keys.recipients.display().to_string(),
    ));
    let out = stockops_env(
        &["backup", "--json", "--object-lock-days", "2"],
        Some(&db.url),
        None,
        &env,
    );
    assert_success(&out, "backup with object lock on moto");
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (k, v) in moto_env() {
        std::env::set_var(k, v);
    }
    let store = open_store(&repo).await;
    let objects = store.list(&format!("backups/{id}/")).await.unwrap();
    assert_eq!(objects.len(), 5);
    let soon = std::time::SystemTime::now() + Duration::from_secs(2 * 86_400 - 3_600);
    for o in &objects {
        let r = store
            .retention(&o.key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} is not locked", o.key));
        assert_eq!(r.mode, "GOVERNANCE");
        assert!(r.until > soon, "{} locked only until {:?}", o.key, r.until);
    }
    // A wrong secret is refused: moto checks signatures.
    let mut wrong = env.clone();
    wrong.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    wrong.push(("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into()));
    let out = stockops_env(&["backups", "list"], None, None, &wrong);
    assert!(
        !out.status.success() && stderr(&out).contains("SignatureDoesNotMatch"),
        "{}",
        stderr(&out)
    );

    // Garage ignores lock headers: refused up front, nothing written.
    let repo = s3_repo("nolock");
    let env = job_env(&repo, &keys);
    let out = stockops_env(
        &["backup", "--object-lock-days", "2"],
        Some(&db.url),
        None,
        &env,
    );
    assert_code(&out, 2, "object lock on Garage");
    assert!(
        stderr(&out).contains("does not support S3 Object Lock"),
        "{}",
        stderr(&out)
    );
    use_s3_env();
    let store = open_store(&repo).await;
    assert!(store.list("").await.unwrap().is_empty());
    assert!(store.incomplete_uploads().await.unwrap().is_empty());

    // A directory cannot lock anything.
    let repo = format!("file://{}", dir.join("repo").display());
    let out = stockops_env(
        &["backup", "--object-lock-days", "2"],
        Some(&db.url),
        None,
        &job_env(&repo, &keys),
    );
    assert_code(&out, 2, "object lock on a directory");
}

#[tokio::test]
async fn several_recipients_and_key_rotation() {
    let db = seeded("bk_rotate", "0.02").await;
    let dir = temp_dir("bk_rotate");
    let (ops, escrow, next) = (
        Keys::new(&dir.join("ops")),
        Keys::new(&dir.join("escrow")),
        Keys::new(&dir.join("next")),
    );
    let repo = format!("file://{}", dir.join("repo").display());
    let recipients = dir.join("recipients.txt");
    let public = |k: &Keys| std::fs::read_to_string(&k.recipients).unwrap();
    std::fs::write(&recipients, format!("{}{}", public(&ops), public(&escrow))).unwrap();
    let mut env = vec![
        ("STOCKOPS_REPO".to_string(), repo.clone()),
        (
            "STOCKOPS_AGE_RECIPIENTS".to_string(),
            recipients.display().to_string(),
        ),
        ("STOCKOPS_LOG".to_string(), "warn".to_string()),
    ];
    let metrics = dir.join("backup.prom");
    let out = stockops_env(
        &[
            "backup",
            "--json",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        Some(&db.url),
        None,
        &env,
    );
    assert_success(&out, "backup to two recipients");
    let old = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("stockops_backup_last_success_timestamp_seconds ")
            && prom.contains("stockops_backup_last_run_success 1"),
        "{prom}"
    );
    // Rotation: the recipients file now names the next key only.
    std::fs::write(&recipients, public(&next)).unwrap();
    let new = backup(&db, &env);
    let verify = |id: &str, k: &Keys| {
        let mut e = env.clone();
        e.push((
            "STOCKOPS_AGE_IDENTITY".into(),
            k.identity.display().to_string(),
        ));
        stockops_env(&["backups", "verify", id], None, None, &e)
    };
    assert_success(
        &verify(&old, &ops),
        "the operations key opens the old backup",
    );
    assert_success(
        &verify(&old, &escrow),
        "the escrow key opens the old backup",
    );
    assert_success(&verify(&new, &next), "the new key opens the new backup");
    let out = verify(&new, &ops);
    assert_code(&out, 1, "the retired key does not open the new backup");
    assert!(
        stderr(&out).contains("no identity matches the recipients of backup"),
        "{}",
        stderr(&out)
    );
    // A failed run keeps the last success's figures and says it failed.
    env.retain(|(k, _)| k != "STOCKOPS_REPO");
    env.push(("STOCKOPS_REPO".into(), repo));
    let out = stockops_env(
        &["backup", "--metrics-file", metrics.to_str().unwrap()],
        Some("postgres://nobody@127.0.0.1:1/x"),
        None,
        &env,
    );
    assert_code(&out, 4, "backup of an unreachable database");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("stockops_backup_last_run_success 0")
            && prom.contains("stockops_backup_last_success_timestamp_seconds "),
        "{prom}"
    );
}

/// The hardened server ends sessions idle in a transaction for 5 minutes; the
/// backup's snapshot transaction idles while pg_dump streams. Here the limit
/// is 1 s and pg_dump is throttled to take several: the backup must still
/// complete and verify.
#[tokio::test]
async fn backup_outlives_the_servers_idle_in_transaction_timeout() {
    let db = TestDb::provisioned("backup_idle").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(&format!(
        "ALTER DATABASE {} SET idle_in_transaction_session_timeout = '1s'",
        db.name
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let dir = temp_dir("backup-idle");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let mut env = job_env(&repo, &keys);
    let bin = crate::schedule::slow_pg_bin(&dir, 16 * 1024, 0.25);
    env.push(("STOCKOPS_PG_BIN".into(), bin.display().to_string()));
    let started = std::time::Instant::now();
    let id = backup(&db, &env);
    assert!(
        started.elapsed().as_secs_f64() > 2.0,
        "the throttled pg_dump should outlast the 1 s timeout ({:?})",
        started.elapsed()
    );
    let out = stockops_env(
        &["backups", "verify", &id],
        None,
        None,
        &with_identity(env, &keys),
    );
    assert_success(&out, "backups verify");
    std::fs::remove_dir_all(&dir).unwrap();
}
