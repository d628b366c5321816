//! provision: idempotence, dry run, drift detection and repair, migrations.

use crate::common::*;

#[tokio::test]
async fn provision_twice_changes_nothing_and_check_passes() {
    let db = TestDb::new("idem").await;
    let first = db.run(&["provision"]);
    assert_success(&first, "first provision");
    assert!(stdout(&first).contains("applied"), "{}", stdout(&first));

    let second = db.run(&["provision", "--json"]);
    assert_success(&second, "second provision");
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["changes"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["in_sync"], true);

    let check = db.run(&["provision", "--check"]);
    assert_code(&check, 0, "check after provision");
    assert!(stdout(&check).contains("in sync"));
}

#[tokio::test]
async fn dry_run_prints_statements_and_changes_nothing() {
    let db = TestDb::new("dry").await;
    let out = db.run(&["provision", "--dry-run"]);
    assert_success(&out, "dry run");
    let text = stdout(&out);
    assert!(text.contains("CREATE SCHEMA inventory"), "{text}");
    assert!(text.contains("FORCE ROW LEVEL SECURITY"), "{text}");
    assert!(text.contains("REVOKE CONNECT ON DATABASE"), "{text}");
    let mut admin = db.admin().await;
    let exists: bool = sqlx::query_scalar("SELECT to_regnamespace('inventory') IS NOT NULL")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!exists, "dry run must not create the schema");
    let public_connect: bool = sqlx::query_scalar(
        "SELECT has_database_privilege('public', current_database(), 'CONNECT')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(public_connect, "dry run must not revoke anything");
}

#[tokio::test]
async fn drift_is_named_and_repaired() {
    let db = TestDb::provisioned("drift").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(
        "GRANT SELECT ON inventory.products TO dept_sales;
         ALTER ROLE dept_stock WITH LOGIN;
         DROP POLICY reseller_own ON inventory.sales_orders;
         ALTER POLICY supplier_own ON inventory.purchase_orders USING (true);
         GRANT EXECUTE ON FUNCTION api.stock_status(text) TO PUBLIC;
         ALTER TABLE inventory.suppliers NO FORCE ROW LEVEL SECURITY;
         GRANT dept_audit TO stockops_monitor;",
    )
    .execute(&mut admin)
    .await
    .unwrap();

    let check = db.run(&["provision", "--check"]);
    let result = std::panic::catch_unwind(|| {
        assert_code(&check, 3, "check on a drifted server");
        let text = stdout(&check);
        for expected in [
            "SELECT on table inventory.products is granted to dept_sales but not declared",
            "role dept_stock has LOGIN, declared NOLOGIN",
            "policy reseller_own on inventory.sales_orders is missing",
            "policy supplier_own on inventory.purchase_orders differs from the declaration",
            "EXECUTE on function api.stock_status(text) is granted to PUBLIC but not declared",
            "row-level security is not forced on inventory.suppliers",
            "role stockops_monitor is a member of dept_audit, not declared",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    });
    // Repair even if an assertion failed, so the shared roles stay sane.
    let repair = db.run(&["provision"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert_success(&repair, "repairing provision");
    assert_code(&db.run(&["provision", "--check"]), 0, "check after repair");

    let login: bool =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'dept_stock'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(!login);
    let granted: bool = sqlx::query_scalar(
        "SELECT has_table_privilege('dept_sales', 'inventory.products', 'SELECT')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(!granted);
}

#[tokio::test]
async fn edited_migration_is_refused() {
    let db = TestDb::provisioned("checksum").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql("UPDATE public._sqlx_migrations SET checksum = '\\x00' WHERE version = 1")
        .execute(&mut admin)
        .await
        .unwrap();
    let out = db.run(&["provision"]);
    assert_code(&out, 1, "provision with a changed migration");
    assert!(
        stderr(&out).contains("was changed after it was applied"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn role_without_createrole_gets_a_clear_error() {
    let db = TestDb::new("weak").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(&format!(
        "DROP ROLE IF EXISTS it_weak_admin; CREATE ROLE it_weak_admin LOGIN PASSWORD 'weak-admin-password';
         GRANT ALL ON DATABASE {} TO it_weak_admin;",
        db.name
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let opts = db.tcp_options("it_weak_admin", "weak-admin-password");
    let url = format!(
        "postgres://it_weak_admin:weak-admin-password@{}:{}/{}",
        opts.get_host(),
        opts.get_port(),
        db.name
    );
    let out = stockops(&["provision"], Some(&url), None);
    assert_code(&out, 5, "provision as a role without CREATEROLE");
    let err = stderr(&out);
    assert!(err.contains("lacks CREATEROLE"), "{err}");
    assert!(
        !err.contains("weak-admin-password"),
        "the password leaked: {err}"
    );
    let exists: bool = sqlx::query_scalar("SELECT to_regnamespace('inventory') IS NOT NULL")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn every_security_definer_function_pins_search_path() {
    let db = TestDb::provisioned("secdef").await;
    let mut admin = db.admin().await;
    let (total, unpinned): (i64, Vec<String>) = sqlx::query_as(
        "SELECT count(*), coalesce(array_agg(p.oid::regprocedure::text) FILTER (
                    WHERE NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')),
                  '{}')
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(total > 0, "expected SECURITY DEFINER functions in the api");
    assert!(unpinned.is_empty(), "unpinned: {unpinned:?}");
}
