//! Recovery drills in a scratch cluster of their own.

use crate::backup::{backup, job_env, with_identity, Keys};
use crate::common::*;

/// A seeded database with some audited activity, so a drill has a chain to check.
pub async fn with_sales(tag: &str, scale: &str) -> TestDb {
    let db = TestDb::provisioned(tag).await;
    assert_success(
        &db.run(&["seed", "--scale", scale, "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let sku: String = sqlx::query_scalar(
        "SELECT p.sku FROM inventory.stock_levels l JOIN inventory.products p USING (product_id)
          WHERE l.warehouse_id = 1 AND l.on_hand > 5 ORDER BY 1 LIMIT 1",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    for _ in 0..3 {
        sqlx::query("SELECT api.record_sale('RES-0001', $1, 'WH-PAR', 1)")
            .bind(&sku)
            .execute(&mut admin)
            .await
            .unwrap();
    }
    db
}

#[tokio::test]
async fn a_drill_proves_the_backup_and_a_budget_can_fail_it() {
    let db = with_sales("dr_drill", "0.05").await;
    let dir = temp_dir("dr_drill");
    let keys = Keys::new(&dir);
    let env = with_identity(
        job_env(&format!("file://{}", dir.join("repo").display()), &keys),
        &keys,
    );
    let id = backup(&db, &env);

    let out = stockops_env(&["drill", "--json", "--max-rto", "600"], None, None, &env);
    assert_success(&out, "drill");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["backup"], id.as_str());
    assert_eq!(report["ok"], true, "{report}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 10, "{report}");
    for name in [
        "row counts and fingerprints",
        "audit chain and its head at backup time",
        "smoke calls as dept_sales",
        "smoke calls as reseller",
    ] {
        assert!(
            checks.iter().any(|c| c["name"] == name && c["ok"] == true),
            "{name} in {report}"
        );
    }
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0);
    let scratch = report["target"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert!(
        !std::path::Path::new(&scratch).exists(),
        "the scratch cluster is removed"
    );

    // An RPO budget the backup cannot meet fails the drill, and the report says so.
    let out = stockops_env(&["drill", &id, "--max-rpo", "0"], None, None, &env);
    assert_code(&out, 1, "drill over its RPO budget");
    assert!(stderr(&out).contains("RPO budget"), "{}", stderr(&out));
    let out = stockops_env(&["drills", "list", "--json"], None, None, &env);
    assert_success(&out, "drills list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results: Vec<bool> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(results, vec![true, false]);
}

#[tokio::test]
async fn a_drill_names_what_is_wrong_with_a_backup() {
    let db = with_sales("dr_fail", "0.02").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql("SELECT audit.seal(); SELECT pg_sleep(0.05);")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql("SELECT audit.seal();")
        .execute(&mut admin)
        .await
        .unwrap();
    let dir = temp_dir("dr_fail");
    let keys = Keys::new(&dir);
    let repo_dir = dir.join("repo");
    let env = with_identity(
        job_env(&format!("file://{}", repo_dir.display()), &keys),
        &keys,
    );
    let drill = |id: &str, env: &[(String, String)]| stockops_env(&["drill", id], None, None, env);
    let expect_failure = |out: std::process::Output, what: &str, needle: &str| {
        assert_code(&out, 1, what);
        assert!(stderr(&out).contains(needle), "{what}: {}", stderr(&out));
    };

    // Damaged objects.
    let good = backup(&db, &env);
    let data = repo_dir.join(format!("backups/{good}/data.dump.zst.age"));
    let original = std::fs::read(&data).unwrap();
    let mut flipped = original.clone();
    let at = flipped.len() - 200;
    flipped[at] ^= 0x01;
    std::fs::write(&data, &flipped).unwrap();
    expect_failure(
        drill(&good, &env),
        "drill of a flipped byte",
        "does not decrypt to the end",
    );
    std::fs::write(&data, &original[..original.len() / 2]).unwrap();
    expect_failure(
        drill(&good, &env),
        "drill of a truncated object",
        "does not decrypt to the end",
    );
    std::fs::write(&data, &original).unwrap();

    // A wrong identity.
    let other = Keys::new(&dir.join("other"));
    let wrong = with_identity(
        job_env(&format!("file://{}", repo_dir.display()), &keys),
        &other,
    );
    expect_failure(
        drill(&good, &wrong),
        "drill with a wrong identity",
        "no identity matches the recipients",
    );

    // A tampered audit record in the backed-up database.
    sqlx::raw_sql(
        "SET session_replication_role = replica;
         UPDATE audit.events SET arguments = jsonb_set(arguments, '{p_quantity}', '50') WHERE event_id = 2;
         SET session_replication_role = origin;",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let tampered = backup(&db, &env);
    expect_failure(
        drill(&tampered, &env),
        "drill of a tampered audit log",
        "event 2 (position 2)",
    );

    // A dropped policy in the backed-up database.
    sqlx::raw_sql(
        "SET session_replication_role = replica;
         UPDATE audit.events SET arguments = jsonb_set(arguments, '{p_quantity}', '1') WHERE event_id = 2;
         SET session_replication_role = origin;
         DROP POLICY reseller_own ON inventory.sales_orders;",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let no_policy = backup(&db, &env);
    expect_failure(
        drill(&no_policy, &env),
        "drill of a backup without a policy",
        "policy reseller_own on inventory.sales_orders is missing",
    );

    // Every run left its report.
    let out = stockops_env(&["drills", "list", "--json"], None, None, &env);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert!(list.as_array().unwrap().iter().all(|r| r["ok"] == false));
    assert_success(
        &db.run(&["provision"]),
        "restore the policy in the shared test database",
    );
}
