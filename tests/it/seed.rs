//! seed: invariants of the generated data, and determinism.

use crate::common::*;

const FINGERPRINT: &str = "
SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (
  SELECT 'p' || md5(string_agg(format('%s,%s,%s,%s,%s,%s', sku, name, category, unit_cost, list_price, reorder_point), ';' ORDER BY sku)) FROM inventory.products
  UNION ALL SELECT 'o' || md5(string_agg(format('%s,%s,%s,%s', order_number, reseller_id, warehouse_id, ordered_at), ';' ORDER BY order_number)) FROM inventory.sales_orders
  UNION ALL SELECT 'l' || md5(string_agg(format('%s,%s,%s,%s,%s', sales_order_id, line_no, product_id, quantity, unit_price), ';' ORDER BY sales_order_id, line_no)) FROM inventory.sales_order_lines
  UNION ALL SELECT 'po' || md5(string_agg(format('%s,%s,%s,%s,%s', po_number, supplier_id, status, expected_date, received_at), ';' ORDER BY po_number)) FROM inventory.purchase_orders
  UNION ALL SELECT 'm' || md5(string_agg(format('%s,%s,%s,%s,%s', movement_id, product_id, warehouse_id, kind, quantity), ';' ORDER BY movement_id)) FROM inventory.stock_movements
  UNION ALL SELECT 's' || md5(string_agg(format('%s,%s,%s', product_id, warehouse_id, on_hand), ';' ORDER BY product_id, warehouse_id)) FROM inventory.stock_levels
) x(t)";

async fn seeded(tag: &str, rng_seed: &str) -> (TestDb, String) {
    let db = TestDb::provisioned(tag).await;
    let out = db.run(&[
        "seed",
        "--scale",
        "0.05",
        "--rng-seed",
        rng_seed,
        "--as-of",
        "2026-06-01",
        "--json",
    ]);
    assert_success(&out, "seed");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["rows"]["sales_order_lines"].as_u64().unwrap() > 1000,
        "{summary}"
    );
    let mut admin = db.admin().await;
    let fp: String = sqlx::query_scalar(FINGERPRINT)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    (db, fp)
}

#[tokio::test]
async fn levels_equal_the_ledger_and_nothing_is_negative() {
    let (db, _) = seeded("inv", "7").await;
    let mut admin = db.admin().await;
    let mismatches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.stock_levels l
           FULL JOIN (SELECT product_id, warehouse_id, sum(quantity) AS total
                        FROM inventory.stock_movements GROUP BY 1, 2) m USING (product_id, warehouse_id)
          WHERE l.on_hand IS DISTINCT FROM m.total",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(mismatches, 0, "levels differ from the ledger sums");
    let negative: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.stock_levels WHERE on_hand < 0 OR reserved < 0",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(negative, 0);
    // Every kind of movement and every purchase order state a year produces.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT kind FROM inventory.stock_movements ORDER BY 1")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "adjustment",
            "receipt",
            "return",
            "sale",
            "transfer_in",
            "transfer_out"
        ]
    );
    let late: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.purchase_orders WHERE status = 'received' AND received_at::date > expected_date",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let partial: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.purchase_order_lines WHERE quantity_received < quantity_ordered AND quantity_received > 0")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(late > 0 && partial > 0, "late {late}, partial {partial}");
    // The ledger refuses edits.
    let err =
        sqlx::raw_sql("UPDATE inventory.stock_movements SET quantity = 1 WHERE movement_id = 1")
            .execute(&mut admin)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn same_rng_seed_same_data_other_seed_other_data() {
    let (_a, fa) = seeded("det_a", "11").await;
    let (_b, fb) = seeded("det_b", "11").await;
    let (_c, fc) = seeded("det_c", "12").await;
    assert_eq!(fa, fb, "same seed must give the same rows");
    assert_ne!(fa, fc, "another seed must give other rows");
}

#[tokio::test]
async fn seed_refuses_a_database_with_data_and_leaves_it_alone() {
    let db = TestDb::provisioned("reseed").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "first seed",
    );
    let mut admin = db.admin().await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.stock_movements")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let again = db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]);
    assert_code(&again, 1, "second seed");
    assert!(
        stderr(&again).contains("already has rows"),
        "{}",
        stderr(&again)
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.stock_movements")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(before, after);
}
