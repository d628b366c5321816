//! Forced row-level security, seen through real partner logins.

use std::collections::BTreeSet;

use crate::common::*;

async fn ids(conn: &mut sqlx::PgConnection, sql: &str) -> BTreeSet<i64> {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_all(conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn resellers_and_suppliers_see_only_their_own_rows() {
    let db = TestDb::provisioned("rls").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.05", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let busiest: Vec<String> = sqlx::query_scalar(
        "SELECT r.code FROM inventory.resellers r JOIN inventory.sales_orders o USING (reseller_id)
          GROUP BY r.code ORDER BY count(*) DESC, r.code LIMIT 2",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let total_orders = ids(
        &mut admin,
        "SELECT sales_order_id FROM inventory.sales_orders",
    )
    .await;

    let pa = db
        .add_user(
            "it_rls_res_a",
            "reseller",
            Some(("--reseller", &busiest[0])),
        )
        .await;
    let pb = db
        .add_user(
            "it_rls_res_b",
            "reseller",
            Some(("--reseller", &busiest[1])),
        )
        .await;
    let mut a = db.login("it_rls_res_a", &pa).await.unwrap();
    let mut b = db.login("it_rls_res_b", &pb).await.unwrap();
    let orders_a = ids(&mut a, "SELECT sales_order_id FROM inventory.sales_orders").await;
    let orders_b = ids(&mut b, "SELECT sales_order_id FROM inventory.sales_orders").await;
    assert!(!orders_a.is_empty() && !orders_b.is_empty());
    assert!(orders_a.is_disjoint(&orders_b));
    assert!(orders_a.len() < total_orders.len() && orders_b.len() < total_orders.len());
    let expected_a = ids(
        &mut admin,
        &format!(
            "SELECT o.sales_order_id FROM inventory.sales_orders o JOIN inventory.resellers r USING (reseller_id)
              WHERE r.code = '{}'",
            busiest[0]
        ),
    )
    .await;
    assert_eq!(
        orders_a, expected_a,
        "reseller A sees exactly its own orders"
    );

    let line_orders_a = ids(
        &mut a,
        "SELECT DISTINCT sales_order_id FROM inventory.sales_order_lines",
    )
    .await;
    assert!(!line_orders_a.is_empty() && line_orders_a.is_subset(&orders_a));
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM inventory.resellers")
        .fetch_all(&mut a)
        .await
        .unwrap();
    assert_eq!(codes, vec![busiest[0].clone()]);
    let bindings: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.partner_logins")
        .fetch_one(&mut a)
        .await
        .unwrap();
    assert_eq!(bindings, 1, "a login sees only its own binding");
    let no_po = sqlx::query("SELECT 1 FROM inventory.purchase_orders")
        .fetch_all(&mut a)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&no_po).as_deref(), Some("42501"));

    let supplier: String = sqlx::query_scalar(
        "SELECT s.code FROM inventory.suppliers s JOIN inventory.purchase_orders p USING (supplier_id)
          GROUP BY s.code ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let ps = db
        .add_user("it_rls_sup", "supplier", Some(("--supplier", &supplier)))
        .await;
    let mut s = db.login("it_rls_sup", &ps).await.unwrap();
    let seen = ids(
        &mut s,
        "SELECT purchase_order_id::bigint FROM inventory.purchase_orders",
    )
    .await;
    let expected = ids(
        &mut admin,
        &format!(
            "SELECT p.purchase_order_id::bigint FROM inventory.purchase_orders p JOIN inventory.suppliers s USING (supplier_id)
              WHERE s.code = '{supplier}'"
        ),
    )
    .await;
    let all = ids(
        &mut admin,
        "SELECT purchase_order_id::bigint FROM inventory.purchase_orders",
    )
    .await;
    assert!(!seen.is_empty() && seen.len() < all.len());
    assert_eq!(seen, expected);
    let lines = ids(
        &mut s,
        "SELECT DISTINCT purchase_order_id::bigint FROM inventory.purchase_order_lines",
    )
    .await;
    assert!(lines.is_subset(&seen) && !lines.is_empty());
    let no_sales = sqlx::query("SELECT 1 FROM inventory.sales_orders")
        .fetch_all(&mut s)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&no_sales).as_deref(), Some("42501"));
}
