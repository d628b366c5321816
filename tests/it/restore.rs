//! Restores: complete and proven, or refused, or rolled back; never half.

use sqlx::Connection;

use crate::backup::{backup, job_env, with_identity, Keys};
use crate::common::*;

async fn seeded(tag: &str) -> TestDb {
    let db = TestDb::provisioned(tag).await;
    assert_success(
        &db.run(&["seed", "--scale", "0.05", "--as-of", "2026-01-01"]),
        "seed",
    );
    db
}

fn restore(
    env: &[(String, String)],
    id: &str,
    target: &TestDb,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["restore", id, "--target-url", &target.url, "--json"];
    args.extend_from_slice(extra);
    stockops_env(&args, None, None, env)
}

async fn user_tables(db: &TestDb) -> i64 {
    let mut c = db.admin().await;
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND n.nspname IN ('inventory', 'audit', 'public')",
    )
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_restore_is_proven_complete_and_refuses_a_full_target() {
    use_s3_env();
    let db = seeded("rs_round").await;
    let dir = temp_dir("rs_round");
    let keys = Keys::new(&dir);
    let env = with_identity(job_env(&crate::backup::s3_repo("restore"), &keys), &keys);
    let id = backup(&db, &env);
    let target = TestDb::new("rs_round_target").await;
    let out = restore(&env, &id, &target, &[]);
    assert_success(&out, "restore into an empty database");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["mismatches"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(report["tables_checked"].as_u64().unwrap() >= 15);
    let (mut a, mut b) = (db.admin().await, target.admin().await);
    let q = "SELECT count(*) FROM inventory.stock_movements";
    let (x, y): (i64, i64) = (
        sqlx::query_scalar(q).fetch_one(&mut a).await.unwrap(),
        sqlx::query_scalar(q).fetch_one(&mut b).await.unwrap(),
    );
    assert_eq!(x, y);
    // Everything in the archive is as declared; only the database's own
    // privileges (which pg_dump keeps outside its archive) need provision.
    let check = stockops(&["provision", "--check"], Some(&target.url), None);
    let drift = stdout(&check);
    assert!(
        drift.lines().all(|l| l.contains(" on database ")),
        "{drift}"
    );
    assert_success(
        &stockops(&["provision"], Some(&target.url), None),
        "provision after restore",
    );
    assert_code(
        &stockops(&["provision", "--check"], Some(&target.url), None),
        0,
        "check after provision",
    );

    let out = restore(&env, &id, &target, &[]);
    assert_code(&out, 1, "restore into a database with tables");
    assert!(
        stderr(&out).contains("is not empty") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    assert_success(
        &restore(&env, "latest", &target, &["--force"]),
        "restore --force",
    );

    // In parallel, through a private spool file that does not outlive the restore.
    let spool = temp_dir("rs_round_spool");
    let mut spool_env = env.clone();
    spool_env.push(("STOCKOPS_SPOOL_DIR".into(), spool.display().to_string()));
    let parallel = TestDb::new("rs_round_jobs").await;
    let out = restore(&spool_env, &id, &parallel, &["--jobs", "2"]);
    assert_success(&out, "restore --jobs 2");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["mismatches"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "the spool file is removed"
    );
}

#[tokio::test]
async fn a_damaged_backup_or_a_wrong_key_leaves_the_target_untouched() {
    let db = seeded("rs_damage").await;
    let dir = temp_dir("rs_damage");
    let keys = Keys::new(&dir);
    let repo_dir = dir.join("repo");
    let env = with_identity(
        job_env(&format!("file://{}", repo_dir.display()), &keys),
        &keys,
    );
    let id = backup(&db, &env);
    let target = TestDb::new("rs_damage_target").await;

    // Wrong key: named, before the target is touched.
    let other = Keys::new(&dir.join("other"));
    let out = restore(
        &with_identity(
            job_env(&format!("file://{}", repo_dir.display()), &keys),
            &other,
        ),
        &id,
        &target,
        &[],
    );
    assert_code(&out, 1, "restore with a wrong identity");
    assert!(
        stderr(&out).contains("no identity matches the recipients of backup"),
        "{}",
        stderr(&out)
    );
    assert_eq!(user_tables(&target).await, 0);

    // A flipped byte near the end: age's authentication fails mid-stream, pg_restore rolls back.
    let data = repo_dir.join(format!("backups/{id}/data.dump.zst.age"));
    let mut bytes = std::fs::read(&data).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x10;
    std::fs::write(&data, &bytes).unwrap();
    let out = restore(&env, &id, &target, &[]);
    assert_code(&out, 1, "restore of a corrupted backup");
    assert!(
        stderr(&out).contains("does not decrypt to the end")
            || stderr(&out).contains("pg_restore failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        user_tables(&target).await,
        0,
        "nothing half-restored remains"
    );

    // Truncated: the same.
    bytes[at] ^= 0x10;
    std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
    let out = restore(&env, &id, &target, &[]);
    assert_code(&out, 1, "restore of a truncated backup");
    assert_eq!(user_tables(&target).await, 0);

    // No manifest: no backup.
    std::fs::remove_file(repo_dir.join(format!("backups/{id}/manifest.json"))).unwrap();
    let out = restore(&env, &id, &target, &[]);
    assert_code(&out, 1, "restore without a manifest");
    assert!(stderr(&out).contains("has no manifest"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_restore_that_does_not_match_its_backup_is_named() {
    let db = seeded("rs_mismatch").await;
    let dir = temp_dir("rs_mismatch");
    let keys = Keys::new(&dir);
    let repo_dir = dir.join("repo");
    let env = with_identity(
        job_env(&format!("file://{}", repo_dir.display()), &keys),
        &keys,
    );
    let id = backup(&db, &env);
    // Rewrite the backup's metadata as if products had one row more.
    let meta_path = repo_dir.join(format!("backups/{id}/metadata.json.age"));
    let secret = std::fs::read_to_string(&keys.identity).unwrap();
    let ids = stockops::pipeline::crypto::Identities::parse(&secret).unwrap();
    let (plain, _) =
        stockops::pipeline::open(&std::fs::read(&meta_path).unwrap()[..], Vec::new(), &ids)
            .unwrap();
    let mut meta: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    for t in meta["tables"].as_array_mut().unwrap() {
        if t["table"] == "products" {
            t["rows"] = serde_json::json!(t["rows"].as_i64().unwrap() + 1);
        }
    }
    let recipients = stockops::pipeline::crypto::Recipients::parse(
        &std::fs::read_to_string(&keys.recipients).unwrap(),
    )
    .unwrap();
    let compression = stockops::pipeline::Compression {
        level: 3,
        workers: 0,
    };
    let (sealed, _) = stockops::backup::logical::seal_bytes(
        serde_json::to_vec(&meta).unwrap(),
        &recipients,
        compression,
    )
    .unwrap();
    std::fs::write(&meta_path, sealed).unwrap();

    let target = TestDb::new("rs_mismatch_target").await;
    let out = restore(&env, &id, &target, &[]);
    assert_code(&out, 1, "a restore that differs from the backup");
    assert!(
        stderr(&out).contains("inventory.products") && stderr(&out).contains("the backup has"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn with_globals_recreates_missing_roles_without_passwords() {
    let db = seeded("rs_globals").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql("DROP ROLE IF EXISTS it_glob_clerk; CREATE ROLE it_glob_clerk LOGIN PASSWORD 'clerk-password-123' IN ROLE dept_sales")
        .execute(&mut admin)
        .await
        .unwrap();
    let dir = temp_dir("rs_globals");
    let keys = Keys::new(&dir);
    let env = with_identity(
        job_env(&format!("file://{}", dir.join("repo").display()), &keys),
        &keys,
    );
    let id = backup(&db, &env);
    sqlx::raw_sql("DROP ROLE it_glob_clerk")
        .execute(&mut admin)
        .await
        .unwrap();
    let target = TestDb::new("rs_globals_target").await;
    let out = restore(&env, &id, &target, &["--with-globals"]);
    assert_success(&out, "restore --with-globals");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["roles_created"], 1, "{report}");
    let (login, member, password): (bool, bool, Option<String>) = sqlx::query_as(
        "SELECT rolcanlogin, pg_has_role('it_glob_clerk', 'dept_sales', 'MEMBER'), rolpassword
           FROM pg_authid WHERE rolname = 'it_glob_clerk'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(login && member, "the role and its membership are back");
    assert_eq!(password, None, "never a password");
    sqlx::raw_sql("DROP ROLE it_glob_clerk")
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restore_on_another_cluster_is_identical_to_the_source() {
    let db = seeded("rs_other").await;
    let dir = temp_dir("rs_other");
    let keys = Keys::new(&dir);
    let env = with_identity(
        job_env(&format!("file://{}", dir.join("repo").display()), &keys),
        &keys,
    );
    let id = backup(&db, &env);
    // Another cluster: a scratch one, as the drill starts.
    let cluster = stockops::recovery::drill::ScratchCluster::start(15, false).unwrap();
    let mut admin = sqlx::postgres::PgConnection::connect_with(&cluster.options("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE DATABASE copy")
        .execute(&mut admin)
        .await
        .unwrap();
    let socket = cluster.dir.display().to_string();
    let target = format!(
        "postgres://postgres@localhost:{}/copy?host={socket}",
        cluster.port
    );
    let out = stockops_env(
        &[
            "restore",
            &id,
            "--target-url",
            &target,
            "--with-globals",
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "restore on another cluster");
    // Compare full plain-text dumps of both databases.
    let dump = |host: &str, port: &str, db: &str| {
        let out = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
            .args([
                "--no-password",
                "-h",
                host,
                "-p",
                port,
                "-U",
                "postgres",
                db,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // pg_dump's \restrict / \unrestrict lines carry a random key per dump.
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let admin_url = admin_url();
    let src_socket = admin_url.split("host=").nth(1).unwrap();
    let src_port = std::env::var("STOCKOPS_TEST_PG_PORT").unwrap();
    let a = dump(src_socket, &src_port, &db.name);
    let b = dump(&socket, &cluster.port.to_string(), "copy");
    assert!(a.len() > 100_000, "the source dump holds the data");
    if a != b {
        let first = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        panic!(
            "the dumps differ first at line {first}:\n  source: {:?}\n  copy:   {:?}",
            a.lines().nth(first),
            b.lines().nth(first)
        );
    }
}

#[tokio::test]
async fn an_unreachable_target_is_named() {
    let db = seeded("rs_unreach").await;
    let dir = temp_dir("rs_unreach");
    let keys = Keys::new(&dir);
    let env = with_identity(
        job_env(&format!("file://{}", dir.join("repo").display()), &keys),
        &keys,
    );
    let id = backup(&db, &env);
    let out = stockops_env(
        &[
            "restore",
            &id,
            "--target-url",
            "postgres://postgres@127.0.0.1:1/nowhere",
        ],
        None,
        None,
        &env,
    );
    assert_code(&out, 4, "restore to an unreachable target");
    assert!(
        stderr(&out).contains("cannot reach the database at postgres@127.0.0.1:1/nowhere"),
        "{}",
        stderr(&out)
    );
    let out = stockops_env(
        &[
            "drill",
            &id,
            "--target-url",
            "postgres://postgres@127.0.0.1:1/nowhere",
        ],
        None,
        None,
        &env,
    );
    assert!(
        !out.status.success(),
        "a drill against an unreachable target fails"
    );
    assert!(
        stderr(&out).contains("cannot reach the database"),
        "{}",
        stderr(&out)
    );
}
