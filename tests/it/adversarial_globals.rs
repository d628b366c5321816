//! Hostile tests: a backup's roles come from what logins could write, so a
//! restore or a drill must never execute them, never hand out superuser
//! powers, and never re-grant what the target revoked on purpose.

use crate::backup::{backup, job_env, with_identity, Keys};
use crate::common::*;

const MALLORY: &str = "it_adv_mallory";
const EVIL: &str = "it_adv_evil";
const BOSS: &str = "it_adv_boss";

/// What a login can store in its own settings: a line that starts with
/// GRANT once `pg_dumpall` writes the setting out, quotes, backslashes.
fn hostile_application_name() -> String {
    format!(
        "x'\nGRANT pg_read_server_files TO {MALLORY};\nCREATE ROLE {EVIL} SUPERUSER; -- it''s \\ \\\\ \"q\""
    )
}

async fn settings_of(conn: &mut sqlx::PgConnection, role: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
          WHERE r.rolname = $1 AND s.setdatabase = 0 ORDER BY c",
    )
    .bind(role)
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn role_exists(conn: &mut sqlx::PgConnection, role: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn member_of(conn: &mut sqlx::PgConnection, member: &str, role: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid
                          JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = $1 AND m.rolname = $2)",
    )
    .bind(role)
    .bind(member)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// `stockops restore ID --target-url URL --with-globals --json EXTRA...`.
fn restore_with_globals(
    env: &[(String, String)],
    id: &str,
    target: &TestDb,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "restore",
        id,
        "--target-url",
        &target.url,
        "--with-globals",
        "--json",
    ];
    args.extend_from_slice(extra);
    stockops_env(&args, None, None, env)
}

/// A file repository under `dir` with a fresh key pair, as a backup job and
/// a restore see it.
fn file_repo(dir: &std::path::Path) -> Vec<(String, String)> {
    let keys = Keys::new(dir);
    with_identity(
        job_env(&format!("file://{}", dir.join("repo").display()), &keys),
        &keys,
    )
}

async fn cleanup() {
    for r in [EVIL, MALLORY, BOSS] {
        drop_role(r).await;
    }
}

#[tokio::test]
async fn sql_a_login_stores_in_its_settings_is_never_executed_and_round_trips() {
    cleanup().await;
    let db = TestDb::provisioned("adv_glob").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let password = db.add_user(MALLORY, "dept_sales", None).await;
    // 1. The attacker's move, made as the login itself.
    let mut mallory = db.login(MALLORY, &password).await.unwrap();
    sqlx::query(&format!(
        "ALTER ROLE CURRENT_USER SET application_name = {}",
        quote_literal(&hostile_application_name())
    ))
    .execute(&mut mallory)
    .await
    .unwrap();
    sqlx::raw_sql(r#"ALTER ROLE CURRENT_USER SET search_path = "it's a ""schema""", public"#)
        .execute(&mut mallory)
        .await
        .unwrap();
    drop(mallory);
    let mut admin = db.admin().await;
    let before = settings_of(&mut admin, MALLORY).await;
    assert_eq!(before.len(), 2, "{before:?}");

    let env = file_repo(&temp_dir("adv_glob"));
    let id = backup(&db, &env);

    // 2. A restore with globals into a cluster where the login exists:
    //    nothing of its text is executed.
    let target = TestDb::new("adv_glob_target").await;
    let out = restore_with_globals(&env, &id, &target, &[]);
    assert_success(&out, "restore --with-globals");
    assert!(
        !role_exists(&mut admin, EVIL).await,
        "a role was created from a setting's text"
    );
    assert!(
        !member_of(&mut admin, MALLORY, "pg_read_server_files").await,
        "a membership was granted from a setting's text"
    );

    // 3. A drill of the same backup succeeds (the old code failed on the
    //    setting's unterminated string).
    let out = stockops_env(&["drill", &id, "--json"], None, None, &env);
    assert_success(&out, "drill of a backup holding hostile settings");

    // 4. On a cluster without the login, it comes back with its settings
    //    byte for byte.
    drop_role(MALLORY).await;
    let target2 = TestDb::new("adv_glob_target2").await;
    let out = restore_with_globals(&env, &id, &target2, &[]);
    assert_success(&out, "restore --with-globals, login missing");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["roles_created"], 1, "{report}");
    assert_eq!(
        settings_of(&mut admin, MALLORY).await,
        before,
        "settings round-trip exactly"
    );
    assert!(member_of(&mut admin, MALLORY, "dept_sales").await);
    assert!(!role_exists(&mut admin, EVIL).await);
    cleanup().await;
}

#[tokio::test]
async fn a_restore_never_grants_superuser_nor_what_the_target_revoked() {
    cleanup().await;
    let db = TestDb::provisioned("adv_priv").await;
    db.add_user(MALLORY, "dept_sales", None).await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(&format!(
        "CREATE ROLE {BOSS} SUPERUSER NOLOGIN; GRANT pg_read_server_files TO {MALLORY}"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let env = file_repo(&temp_dir("adv_priv"));
    let id = backup(&db, &env);
    // The target cluster has since revoked the login's group on purpose,
    // and the superuser role is gone.
    sqlx::raw_sql(&format!(
        "REVOKE dept_sales FROM {MALLORY}; REVOKE pg_read_server_files FROM {MALLORY}; DROP ROLE {BOSS}"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let target = TestDb::new("adv_priv_target").await;
    let out = restore_with_globals(&env, &id, &target, &[]);
    assert_success(&out, "restore --with-globals");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = $1")
        .bind(BOSS)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!superuser, "a restore made a superuser");
    let withheld = report["roles_withheld"].to_string();
    assert!(
        withheld.contains(BOSS) && withheld.contains("SUPERUSER"),
        "{report}"
    );
    assert!(
        !member_of(&mut admin, MALLORY, "dept_sales").await,
        "a revoked membership came back"
    );
    // Asked to, it re-grants memberships, but never the server's files.
    let target2 = TestDb::new("adv_priv_target2").await;
    assert_success(
        &restore_with_globals(&env, &id, &target2, &["--regrant-memberships"]),
        "restore --regrant-memberships",
    );
    assert!(member_of(&mut admin, MALLORY, "dept_sales").await);
    assert!(!member_of(&mut admin, MALLORY, "pg_read_server_files").await);
    cleanup().await;
}

#[tokio::test]
async fn a_forged_roles_object_is_refused_before_any_role_is_created() {
    cleanup().await;
    let db = TestDb::provisioned("adv_forge").await;
    let dir = temp_dir("adv_forge");
    let keys = Keys::new(&dir);
    let repo = dir.join("repo");
    let env = with_identity(job_env(&format!("file://{}", repo.display()), &keys), &keys);
    let id = backup(&db, &env);
    // Whoever can write the bucket and read the public recipients can seal
    // a roles object of their own; it even matches a rewritten manifest.
    let forged = serde_json::json!({
        "format": 1,
        "roles": [{"name": EVIL, "superuser": false, "inherit": true, "createrole": false,
                   "createdb": false, "login": true, "replication": false, "bypassrls": false,
                   "connection_limit": -1, "valid_until": null, "comment": null}],
        "memberships": [],
        "settings": [{"role": EVIL, "in_database": false,
                      "name": "work_mem = '1MB'; CREATE ROLE it_adv_boss SUPERUSER; --", "value": "1"}],
    });
    let recipients = stockops::pipeline::crypto::Recipients::load(Some(&keys.recipients)).unwrap();
    let (sealed, digests) = stockops::backup::logical::seal_bytes(
        serde_json::to_vec(&forged).unwrap(),
        &recipients,
        stockops::pipeline::Compression {
            level: 3,
            workers: 0,
        },
    )
    .unwrap();
    let object = repo.join(format!("backups/{id}/roles.json.zst.age"));
    std::fs::write(&object, sealed).unwrap();
    let manifest_path = repo.join(format!("backups/{id}/manifest.json"));
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for o in manifest["objects"].as_array_mut().unwrap() {
        if o["name"] == "roles" {
            o["stored"] = serde_json::to_value(&digests.stored).unwrap();
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let target = TestDb::new("adv_forge_target").await;
    let out = restore_with_globals(&env, &id, &target, &[]);
    assert_code(&out, 1, "restore of a forged roles object");
    assert!(stderr(&out).contains("setting name"), "{}", stderr(&out));
    let mut admin = db.admin().await;
    assert!(!role_exists(&mut admin, EVIL).await);
    assert!(!role_exists(&mut admin, BOSS).await);
    cleanup().await;
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
