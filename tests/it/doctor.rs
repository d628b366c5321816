//! `stockops doctor`: each weakness planted in a cluster of our own is named,
//! with its evidence, and goes away once fixed; the repository checks see a
//! stale backup, a missing or failed drill and an object that is not
//! encrypted. The clean bill on a hardened server is the production
//! simulation's (tests/it/deploy.rs).

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::Connection;
use stockops::recovery::drill::{DrillCheck, DrillReport, ScratchCluster};

use crate::backup::{backup, job_env, Keys};
use crate::common::*;

/// Each statement on its own (ALTER SYSTEM refuses a transaction block).
async fn exec_each(conn: &mut sqlx::PgConnection, statements: &[&str]) {
    for sql in statements {
        sqlx::raw_sql(sql)
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// pg_reload_conf() only signals the postmaster: wait until a new session
/// sees the setting (bounded).
async fn wait_for_setting(url: &str, name: &str, value: &str) {
    for _ in 0..100 {
        let mut conn = connect(url).await;
        let now: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        if now == value {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{name} never became {value:?} after pg_reload_conf()");
}

fn doctor(args: &[&str], url: &str, env: &[(String, String)]) -> (Option<i32>, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let out = stockops_env(&all, Some(url), None, env);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", stderr(&out)));
    (out.status.code(), report)
}

/// The high findings of one check, as "title | evidence".
fn high(report: &Value, check: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && f["severity"] == "high")
        .map(|f| format!("{} | {}", f["title"], f["evidence"]))
        .collect()
}

fn result(report: &Value, check: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check} in {report}"))["result"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_found(report: &Value, check: &str, needle: &str) {
    let found = high(report, check);
    assert!(
        found.iter().any(|f| f.contains(needle)),
        "expected a high {check} finding mentioning {needle:?}, got {found:#?}"
    );
}

#[tokio::test]
async fn doctor_names_each_weakness_planted_in_a_cluster() {
    let cluster = ScratchCluster::start(15, false).expect("scratch cluster");
    let url = |db: &str| {
        format!(
            "postgres://postgres@localhost:{}/{db}?host={}",
            cluster.port,
            cluster.dir.display()
        )
    };
    let mut admin = connect(&url("postgres")).await;
    sqlx::raw_sql("CREATE DATABASE inventory")
        .execute(&mut admin)
        .await
        .unwrap();
    assert_success(
        &stockops(&["provision"], Some(&url("inventory")), None),
        "provision",
    );

    // A provisioned database on a default cluster: the cluster's own defaults
    // are findings, the database's provisioning is not.
    let (code, report) = doctor(&[], &url("inventory"), &[]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_found(&report, "tls", "ssl = off");
    assert_found(&report, "pgaudit", "shared_preload_libraries = ''");
    for check in [
        "password_encryption",
        "privileged_logins",
        "md5_passwords",
        "schema_create",
        "security_definer",
        "forced_rls",
        "drift",
    ] {
        assert_eq!(result(&report, check), "ok", "{check}: {report:#}");
    }

    // Plant one weakness per check.
    let data = cluster.dir.join("data");
    // (A scratch cluster authenticates by peer: the trust line is planted too.)
    let mut hba = format!(
        "local all all trust\n{}",
        std::fs::read_to_string(data.join("pg_hba.conf")).unwrap()
    );
    hba.push_str("host all weak_md5 10.0.0.0/8 md5\nhostssl all all 10.1.0.0/16 password\n");
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    let mut db = connect(&url("inventory")).await;
    exec_each(
        &mut db,
        &[
            "ALTER SYSTEM SET password_encryption = 'md5'",
            "ALTER SYSTEM SET log_line_prefix = '%m '",
            "SELECT pg_reload_conf()",
            "SET password_encryption = 'md5'",
            "CREATE ROLE weak_md5 LOGIN PASSWORD 'not-a-real-secret'",
            "CREATE ROLE weak_super LOGIN SUPERUSER",
            "CREATE ROLE weak_bypass LOGIN BYPASSRLS",
            "GRANT CONNECT ON DATABASE inventory TO PUBLIC",
            "GRANT USAGE ON SCHEMA inventory TO PUBLIC",
            "GRANT CREATE ON SCHEMA public TO PUBLIC",
            "CREATE FUNCTION public.weak_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
            "CREATE FUNCTION public.temp_first_definer() RETURNS int LANGUAGE sql SECURITY DEFINER \
             SET search_path = pg_temp, pg_catalog AS 'SELECT 1'",
            "ALTER TABLE inventory.suppliers NO FORCE ROW LEVEL SECURITY",
        ],
    )
    .await;
    db.close().await.unwrap();
    wait_for_setting(&url("inventory"), "password_encryption", "md5").await;

    let (code, report) = doctor(&[], &url("inventory"), &[]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_found(
        &report,
        "password_encryption",
        "password_encryption = 'md5'",
    );
    assert_found(&report, "hba", "local all all trust");
    assert_found(&report, "hba", "weak_md5 10.0.0.0 md5");
    assert_found(&report, "hba", "10.1.0.0 password");
    assert_found(&report, "hba", "admits TCP logins without TLS");
    assert_found(
        &report,
        "privileged_logins",
        "login weak_super is a superuser",
    );
    assert_found(
        &report,
        "privileged_logins",
        "login weak_bypass bypasses row-level security",
    );
    assert_found(&report, "md5_passwords", "weak_md5");
    assert_found(
        &report,
        "schema_create",
        "PUBLIC may create objects in schema public",
    );
    assert_found(&report, "security_definer", "public.weak_definer()");
    assert_found(&report, "security_definer", "public.temp_first_definer()");
    assert_found(
        &report,
        "forced_rls",
        "inventory.suppliers: relrowsecurity = true, relforcerowsecurity = false",
    );
    assert_found(&report, "drift", "inventory.suppliers");
    let medium: BTreeSet<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "medium")
        .map(|f| f["evidence"].as_str().unwrap().to_string())
        .collect();
    for evidence in [
        "CONNECT is granted to PUBLIC",
        "USAGE on schema inventory is granted to PUBLIC",
        "log_connections = off",
        "log_statement = 'none'",
    ] {
        assert!(medium.contains(evidence), "{evidence}: {medium:#?}");
    }
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "logging" && f["evidence"] == "log_line_prefix = '%m '"),
        "{report:#}"
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["fix"].as_str().unwrap().is_empty()),
        "every finding names a fix"
    );

    // The fixes doctor names make the findings go away.
    assert_success(
        &stockops(&["provision"], Some(&url("inventory")), None),
        "provision",
    );
    let mut db = connect(&url("inventory")).await;
    exec_each(
        &mut db,
        &[
            "ALTER SYSTEM SET password_encryption = 'scram-sha-256'",
            "SELECT pg_reload_conf()",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            "ALTER FUNCTION public.weak_definer() SET search_path = pg_catalog, pg_temp",
            "ALTER FUNCTION public.temp_first_definer() SET search_path = pg_catalog, pg_temp",
            "DROP ROLE weak_super",
            "ALTER ROLE weak_bypass NOBYPASSRLS",
            "SET password_encryption = 'scram-sha-256'",
            "ALTER ROLE weak_md5 PASSWORD 'another'",
        ],
    )
    .await;
    db.close().await.unwrap();
    wait_for_setting(&url("inventory"), "password_encryption", "scram-sha-256").await;
    let (_, report) = doctor(&[], &url("inventory"), &[]);
    for check in [
        "password_encryption",
        "privileged_logins",
        "md5_passwords",
        "schema_create",
        "security_definer",
        "forced_rls",
        "drift",
    ] {
        assert_eq!(result(&report, check), "ok", "{check}: {report:#}");
    }
    admin.close().await.unwrap();
}

#[tokio::test]
async fn doctor_checks_backups_drills_and_encryption_in_the_repository() {
    let db = TestDb::provisioned("doctor_repo").await;
    let dir = temp_dir("doctor-repo");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let env = job_env(&repo, &keys);
    let id = backup(&db, &env);

    let (_, report) = doctor(&[], &db.url, &env);
    assert_eq!(result(&report, "backup_age"), "ok", "{report:#}");
    assert_eq!(result(&report, "encryption"), "ok", "{report:#}");
    assert_found(&report, "drill", "no recovery drill has ever run");

    let (code, report) = doctor(&["--max-backup-age-hours", "0"], &db.url, &env);
    assert_eq!(code, Some(3));
    assert_found(&report, "backup_age", &format!("backup {id} snapshot at"));

    // A plain object beside the backup, and a failed drill ten days ago.
    let store = open_store(&repo).await;
    store
        .put(
            &format!("backups/{id}/notes.sql"),
            b"COPY inventory.products FROM stdin;\n".to_vec(),
        )
        .await
        .unwrap();
    let started = chrono::Utc::now() - chrono::Duration::days(10);
    let report = DrillReport {
        backup: id.clone(),
        snapshot_at: started,
        started_at: started,
        target: "scratch".into(),
        phases: vec![],
        rto_seconds: 1.0,
        rpo_seconds: 1.0,
        max_rto_seconds: None,
        max_rpo_seconds: None,
        checks: vec![DrillCheck {
            name: "audit chain".into(),
            ok: false,
            detail: "event 7 does not match its seal".into(),
        }],
        ok: false,
    };
    store
        .put(
            &format!("drills/{id}/{}.json", started.format("%Y%m%dT%H%M%SZ")),
            serde_json::to_vec(&report).unwrap(),
        )
        .await
        .unwrap();
    let (code, report) = doctor(&[], &db.url, &env);
    assert_eq!(code, Some(3));
    assert_found(&report, "encryption", &format!("backups/{id}/notes.sql"));
    assert_found(&report, "drill", "event 7 does not match its seal");
    assert_found(&report, "drill", "10.0 days old (policy: 8.0 days)");
    assert_eq!(result(&report, "backup_age"), "ok", "{report:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn doctor_without_a_repository_says_what_it_did_not_check() {
    let db = TestDb::provisioned("doctor_norepo").await;
    let out = stockops(&["doctor"], Some(&db.url), None);
    let text = stdout(&out);
    assert!(
        text.contains(
            "no backup repository configured: backups, drills and encryption not checked"
        ),
        "{text}"
    );
    assert!(text.contains("evidence: "), "{text}");
    assert!(text.contains("fix: "), "{text}");
    // The test cluster admits local logins with trust: a high finding.
    assert_code(&out, 3, "doctor on the test cluster");
    assert!(stderr(&out).contains("high finding(s)"), "{}", stderr(&out));
}
