//! `stockops import legacy --sqlite FILE`: a legacy SQLite database built
//! here, reconciled twice with the same result; catalogue differences
//! reported, stock differences applied as audited adjustments.

use std::path::Path;

use serde_json::Value;
use sqlx::PgConnection;

use crate::common::*;

async fn level(conn: &mut PgConnection, sku: &str, warehouse: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce((SELECT l.on_hand::bigint FROM inventory.stock_levels l
           JOIN inventory.products p USING (product_id) JOIN inventory.warehouses w USING (warehouse_id)
          WHERE p.sku = $1 AND w.code = $2), 0)",
    )
    .bind(sku)
    .bind(warehouse)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// A legacy file with French names, lower-case codes and stray spaces.
fn legacy_file(
    path: &Path,
    products: &[(&str, &str, &str)],
    resellers: &[(&str, &str)],
    stock: &[(&str, &str, &str)],
) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE produits (ref_produit TEXT PRIMARY KEY, nom TEXT, categorie TEXT, prix REAL);
         CREATE TABLE revendeurs (code_revendeur TEXT PRIMARY KEY, nom TEXT, region TEXT);
         CREATE TABLE stocks (ref_produit TEXT, entrepot TEXT, quantite);",
    )
    .unwrap();
    for (sku, name, category) in products {
        conn.execute(
            "INSERT INTO produits VALUES (?1, ?2, ?3, 9.5)",
            (sku, name, category),
        )
        .unwrap();
    }
    for (code, name) in resellers {
        conn.execute(
            "INSERT INTO revendeurs VALUES (?1, ?2, 'Nord')",
            (code, name),
        )
        .unwrap();
    }
    for (sku, warehouse, quantity) in stock {
        conn.execute(
            "INSERT INTO stocks VALUES (?1, ?2, ?3)",
            (sku, warehouse, quantity),
        )
        .unwrap();
    }
}

fn import(db_url: &str, file: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec![
        "import",
        "legacy",
        "--sqlite",
        file.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = stockops(&args, Some(db_url), None);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

fn actions(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}: {}",
                f["entity"], f["key"], f["field"], f["action"]
            )
            .replace('"', "")
        })
        .collect()
}

#[tokio::test]
async fn legacy_stock_is_reconciled_once_and_the_catalogue_only_reported() {
    let db = TestDb::provisioned("legacy").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT p.sku, p.name, p.category, (l.on_hand - l.reserved)::bigint FROM inventory.stock_levels l
           JOIN inventory.products p USING (product_id) JOIN inventory.warehouses w USING (warehouse_id)
          WHERE w.code = 'WH-PAR' AND l.on_hand - l.reserved > 5 ORDER BY p.sku LIMIT 2",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let (a, a_name, a_cat, _) = rows[0].clone();
    let (b, _, b_cat, _) = rows[1].clone();
    let a_par = level(&mut admin, &a, "WH-PAR").await;
    let b_par = level(&mut admin, &b, "WH-PAR").await;
    let reseller: String =
        sqlx::query_scalar("SELECT name FROM inventory.resellers WHERE code = 'RES-0001'")
            .fetch_one(&mut admin)
            .await
            .unwrap();

    let dir = temp_dir("legacy");
    let file = dir.join("stock_local.sqlite");
    let a_lower = format!(" {} ", a.to_lowercase());
    legacy_file(
        &file,
        &[
            (&a_lower, &a_name, &a_cat),
            (&b, "Ancien nom", &b_cat),
            ("ZZ-UNKNOWN", "Inconnu", "Divers"),
        ],
        &[("res-0001", &reseller), ("RES-9999", "Revendeur disparu")],
        &[
            (&a, "wh-par", &(a_par + 5).to_string()),
            (&b, "WH-PAR", &(b_par - 3).to_string()),
            ("ZZ-UNKNOWN", "WH-PAR", "4"),
            (&b, "WH-NOWHERE", "4"),
            (&a, "WH-LYO", "beaucoup"),
        ],
    );

    // Dry run: everything named, nothing changed.
    let pw = db.add_user("it_legacy_etl", "etl", None).await;
    let etl_url = {
        let host = std::env::var("STOCKOPS_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let port = std::env::var("STOCKOPS_TEST_PG_PORT").unwrap();
        format!("postgres://it_legacy_etl:{pw}@{host}:{port}/{}", db.name)
    };
    let (out, report) = import(&etl_url, &file, &["--dry-run"]);
    assert_success(&out, "import legacy --dry-run");
    let expected = [
        format!("product {b} name: reported: the central catalogue is kept"),
        "product ZZ-UNKNOWN name: reported: not in the central catalogue".to_string(),
        "reseller RES-9999 name: reported: not in the central database".to_string(),
        format!("stock {a}@WH-PAR on_hand: would adjust by +5"),
        format!("stock {b}@WH-PAR on_hand: would adjust by -3"),
        "stock ZZ-UNKNOWN@WH-PAR on_hand: not applied: unknown product".to_string(),
        format!("stock {b}@WH-NOWHERE on_hand: not applied: unknown warehouse"),
        format!("stock {a}@WH-LYO on_hand: not applied: not a count"),
    ];
    let got = actions(&report);
    for e in &expected {
        assert!(got.contains(e), "missing {e:?} in {got:#?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    assert_eq!(
        level(&mut admin, &a, "WH-PAR").await,
        a_par,
        "a dry run changed a level"
    );

    // Applied: levels as counted, each adjustment audited with its reason.
    let (out, report) = import(&etl_url, &file, &[]);
    assert_success(&out, "import legacy");
    assert_eq!(report["adjusted"], 2, "{report:#}");
    assert_eq!(level(&mut admin, &a, "WH-PAR").await, a_par + 5);
    assert_eq!(level(&mut admin, &b, "WH-PAR").await, b_par - 3);
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT reason FROM inventory.stock_movements WHERE kind = 'adjustment' AND actor = 'it_legacy_etl' ORDER BY movement_id",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        reasons,
        vec![
            format!(
                "legacy reconciliation (stock_local.sqlite): {} counted, {a_par} recorded",
                a_par + 5
            ),
            format!(
                "legacy reconciliation (stock_local.sqlite): {} counted, {b_par} recorded",
                b_par - 3
            ),
        ]
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit.events WHERE function_name = 'api.reconcile_legacy' AND login = 'it_legacy_etl'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Again: nothing left to adjust, the same differences reported.
    let (out, again) = import(&etl_url, &file, &[]);
    assert_success(&out, "import legacy, twice");
    assert_eq!(again["adjusted"], 0, "{again:#}");
    let got = actions(&again);
    assert_eq!(got.len(), expected.len() - 2, "{got:#?}");
    assert_eq!(level(&mut admin, &a, "WH-PAR").await, a_par + 5);

    // Only etl logins reconcile; a file without the stock table is refused
    // before anything is sent.
    let stock_pw = db.add_user("it_legacy_clerk", "dept_stock", None).await;
    let clerk_url = etl_url.replace(
        &format!("it_legacy_etl:{pw}"),
        &format!("it_legacy_clerk:{stock_pw}"),
    );
    let (out, _) = import(&clerk_url, &file, &[]);
    assert_code(&out, 5, "a dept_stock login");
    let bare = dir.join("bare.sqlite");
    rusqlite::Connection::open(&bare)
        .unwrap()
        .execute_batch("CREATE TABLE produits (ref_produit TEXT, nom TEXT, categorie TEXT); CREATE TABLE revendeurs (code TEXT, nom TEXT);")
        .unwrap();
    let (out, _) = import(&etl_url, &bare, &[]);
    assert_code(&out, 2, "a file without a stock table");
    assert!(stderr(&out).contains("no stocks table"), "{}", stderr(&out));
    drop_role("it_legacy_etl").await;
    drop_role("it_legacy_clerk").await;
    std::fs::remove_dir_all(&dir).unwrap();
}
