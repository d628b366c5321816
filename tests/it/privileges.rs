//! The privilege matrix, tried for real as a login member of every group.

use std::collections::BTreeSet;

use crate::common::*;

/// Tables each partner group may SELECT (under row-level security).
fn partner_reads(group: &str) -> &'static [&'static str] {
    match group {
        "reseller" => &[
            "inventory.resellers",
            "inventory.sales_orders",
            "inventory.sales_order_lines",
            "inventory.partner_logins",
        ],
        "supplier" => &[
            "inventory.suppliers",
            "inventory.purchase_orders",
            "inventory.purchase_order_lines",
            "inventory.partner_logins",
        ],
        _ => &[],
    }
}

const GROUPS: [&str; 8] = [
    "dept_stock",
    "dept_sales",
    "dept_purchasing",
    "dept_reporting",
    "dept_audit",
    "etl",
    "reseller",
    "supplier",
];

#[tokio::test]
async fn groups_can_touch_no_table_but_their_partner_reads() {
    let db = TestDb::provisioned("matrix").await;
    let out = db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]);
    assert_success(&out, "seed");
    let mut admin = db.admin().await;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname || '.' || c.relname, (SELECT quote_ident(attname) FROM pg_attribute
                 WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('inventory', 'audit') AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(tables.len() >= 13, "{tables:?}");

    let mut denied = 0;
    for group in GROUPS {
        let login = format!("it_m_{group}");
        let partner = match group {
            "reseller" => Some(("--reseller", "RES-0001")),
            "supplier" => Some(("--supplier", "SUP-001")),
            _ => None,
        };
        let password = db.add_user(&login, group, partner).await;
        let mut conn = db.login(&login, &password).await.expect("login connects");
        let allowed: BTreeSet<&str> = partner_reads(group).iter().copied().collect();
        for (table, column) in &tables {
            for (verb, sql) in [
                ("SELECT", format!("SELECT 1 FROM {table} LIMIT 1")),
                ("INSERT", format!("INSERT INTO {table} DEFAULT VALUES")),
                (
                    "UPDATE",
                    format!("UPDATE {table} SET {column} = {column} WHERE false"),
                ),
                ("DELETE", format!("DELETE FROM {table} WHERE false")),
                ("TRUNCATE", format!("TRUNCATE {table}")),
            ] {
                let result = sqlx::raw_sql(&sql).execute(&mut conn).await;
                let may = verb == "SELECT" && allowed.contains(table.as_str());
                match (&result, may) {
                    (Ok(_), true) => {}
                    (Err(e), false) if sqlstate(e).as_deref() == Some("42501") => denied += 1,
                    _ => panic!(
                        "{login} ({group}) {verb} on {table}: expected {}, got {result:?}",
                        if may { "success" } else { "permission denied" }
                    ),
                }
            }
        }
    }
    assert!(denied > 400, "only {denied} denials checked");
}

#[tokio::test]
async fn public_has_nothing_on_the_schemas_or_the_database() {
    let db = TestDb::provisioned("public").await;
    let mut admin = db.admin().await;
    let public: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname || ':' || a.privilege_type
           FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n'::\"char\", n.nspowner))) a
          WHERE n.nspname IN ('inventory', 'api', 'audit') AND a.grantee = 0
         UNION ALL
         SELECT 'database:' || a.privilege_type
           FROM pg_database d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d'::\"char\", d.datdba))) a
          WHERE d.datname = current_database() AND a.grantee = 0
         UNION ALL
         SELECT p.oid::regprocedure::text
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f'::\"char\", p.proowner))) a
          WHERE n.nspname IN ('inventory', 'api', 'audit') AND a.grantee = 0",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(public.is_empty(), "PUBLIC still has: {public:?}");
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT pg_get_userbyid(c.relowner)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('inventory', 'api', 'audit')",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(owners, vec!["inventory_owner".to_string()]);
}

#[tokio::test]
async fn stock_report_follows_the_function_grants() {
    let db = TestDb::provisioned("fngrant").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    for (group, may) in [
        ("dept_reporting", true),
        ("dept_stock", true),
        ("dept_audit", false),
        ("supplier", false),
    ] {
        let login = format!("it_f_{group}");
        let partner = (group == "supplier").then_some(("--supplier", "SUP-002"));
        let password = db.add_user(&login, group, partner).await;
        let mut conn = db.login(&login, &password).await.unwrap();
        let result: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM api.stock_status()")
            .fetch_one(&mut conn)
            .await;
        match result {
            Ok(n) if may => assert!(n > 0, "{group} sees an empty report"),
            Err(e) if !may => assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{group}: {e}"),
            other => panic!("{group}: unexpected {other:?}"),
        }
    }
}
