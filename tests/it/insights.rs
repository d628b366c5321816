//! Insights (migration 0006): the demand forecast and reordering from it,
//! sales anomalies, the data-quality rules, and who may call them.

use sqlx::PgConnection;

use crate::common::*;
use crate::procedures::Shop;

/// The seeded year ends 2025-12-31 (`--as-of 2026-01-01`).
const AS_OF: &str = "2026-01-01";

/// A new product, outside the seed's catalogue, with its own preferred supplier.
async fn new_product(admin: &mut PgConnection, sku: &str, name: &str) {
    sqlx::query(
        "INSERT INTO inventory.products (sku, name, category, unit_cost, list_price, preferred_supplier_id)
         SELECT $1, $2, 'Cables', 2, 5, min(supplier_id) FROM inventory.suppliers",
    )
    .bind(sku)
    .bind(name)
    .execute(&mut *admin)
    .await
    .unwrap();
}

/// A fulfilled order of `quantity` units of `sku` on `day`, written directly
/// (as the seed does): the anomaly and forecast functions read orders only.
async fn sale_on(admin: &mut PgConnection, sku: &str, day: &str, quantity: i32) {
    sqlx::query(
        "WITH o AS (
             INSERT INTO inventory.sales_orders (order_number, reseller_id, warehouse_id, ordered_at, status, source)
             SELECT 'IT-' || md5(random()::text), min(r.reseller_id), 1, $2::date + time '11:00', 'fulfilled', 'seed'
               FROM inventory.resellers r
             RETURNING sales_order_id)
         INSERT INTO inventory.sales_order_lines (sales_order_id, line_no, product_id, quantity, unit_price)
         SELECT o.sales_order_id, 1, p.product_id, $3, p.list_price FROM o, inventory.products p WHERE p.sku = $1",
    )
    .bind(sku)
    .bind(day)
    .bind(quantity)
    .execute(&mut *admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn anomalies_find_a_spike_and_not_a_flat_product() {
    let shop = Shop::new("ins_anom").await;
    let mut admin = shop.db.admin().await;
    // A seeded product sells 5,000 units on one day; a new product sells
    // exactly 3 units every day of the period.
    let spiky: String = sqlx::query_scalar("SELECT min(sku) FROM inventory.products")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    sale_on(&mut admin, &spiky, "2025-12-10", 5000).await;
    new_product(&mut admin, "FLAT-0001", "Flat seller").await;
    let days: Vec<String> = sqlx::query_scalar(
        "SELECT d::date::text FROM generate_series(date '2025-10-02', date '2025-12-31', interval '1 day') d",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for day in &days {
        sale_on(&mut admin, "FLAT-0001", day, 3).await;
    }

    let mut reporting = shop.as_group("dept_reporting").await;
    let rows: Vec<(String, chrono::NaiveDate, i64, f64, f64)> = sqlx::query_as(
        "SELECT sku, day, units, expected::float8, score::float8
           FROM api.sales_anomalies('2025-10-02', '2026-01-01')",
    )
    .fetch_all(&mut reporting)
    .await
    .unwrap();
    let top = rows.first().expect("the spike is found");
    assert_eq!(top.0, spiky, "the spike scores highest: {rows:?}");
    assert_eq!(top.1.to_string(), "2025-12-10");
    assert!(top.2 >= 5000 && top.3 < 100.0 && top.4 >= 6.0, "{top:?}");
    assert!(
        rows.iter().all(|r| r.0 != "FLAT-0001"),
        "a flat product has no anomaly: {rows:?}"
    );
    // A lower threshold finds more, never fewer; every score reaches it.
    let lower: Vec<f64> = sqlx::query_scalar(
        "SELECT score::float8 FROM api.sales_anomalies('2025-10-02', '2026-01-01', 3)",
    )
    .fetch_all(&mut reporting)
    .await
    .unwrap();
    assert!(lower.len() >= rows.len() && lower.iter().all(|s| *s >= 3.0));

    // The command: the last N days up to today.
    let url = shop.url_for("dept_reporting");
    let out = stockops(
        &["report", "anomalies", "--days", "1000", "--format", "json"],
        Some(&url),
        None,
    );
    assert_success(&out, "report anomalies");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = json.as_array().unwrap();
    assert!(
        found
            .iter()
            .any(|r| r["sku"] == spiky.as_str() && r["day"] == "2025-12-10"),
        "{json}"
    );
    assert!(found.iter().all(|r| r["sku"] != "FLAT-0001"), "{json}");
    let out = stockops(
        &["report", "anomalies", "--threshold", "0"],
        Some(&url),
        None,
    );
    assert_code(&out, 2, "a zero threshold is a usage error");
}

#[tokio::test]
async fn the_forecast_is_sensible_weekly_and_feeds_reordering() {
    let shop = Shop::new("ins_fcst").await;
    let mut purchasing = shop.as_group("dept_purchasing").await;
    let rows: Vec<(String, String, f64, f64, f64, f64, i64)> = sqlx::query_as(
        "SELECT sku, warehouse, forecast_units::float8, per_day::float8, weekday_units::float8,
                weekend_units::float8, history_units
           FROM api.demand_forecast(14, 8, $1::date)",
    )
    .bind(AS_OF)
    .fetch_all(&mut purchasing)
    .await
    .unwrap();
    assert!(
        rows.len() > 10,
        "a forecast per product sold: {}",
        rows.len()
    );
    for r in &rows {
        assert!(
            r.2 >= 0.0 && r.3 >= 0.0 && r.4 >= 0.0 && r.5 >= 0.0,
            "{r:?}"
        );
        assert!(r.6 > 0, "only pairs with a history: {r:?}");
        assert!(
            (r.2 / 14.0 - r.3).abs() < 0.01,
            "per_day is units / days: {r:?}"
        );
    }
    // The seed sells far less at weekends, and so does the forecast.
    let weekday: f64 = rows.iter().map(|r| r.4).sum();
    let weekend: f64 = rows.iter().map(|r| r.5).sum();
    assert!(
        weekend < 0.6 * weekday,
        "weekday {weekday}, weekend {weekend}"
    );
    // In total, about the recent level: within a factor 2 of the last 8 weeks.
    let forecast_per_day: f64 = rows.iter().map(|r| r.3).sum();
    let history_per_day = rows.iter().map(|r| r.6).sum::<i64>() as f64 / 56.0;
    let ratio = forecast_per_day / history_per_day;
    assert!((0.5..2.0).contains(&ratio), "forecast / history {ratio}");
    // Nothing sold in the last 8 weeks before a date: nothing forecast.
    let none: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api.demand_forecast(14, 8, '2020-01-01')")
            .fetch_one(&mut purchasing)
            .await
            .unwrap();
    assert_eq!(none, 0);
    let err = sqlx::query("SELECT * FROM api.demand_forecast(0)")
        .fetch_all(&mut purchasing)
        .await
        .unwrap_err();
    assert_eq!(sqlx_state(&err), "SO002");

    // Reordering from the forecast: reorder_needs's very columns.
    let needs: Vec<String> = sqlx::query_scalar(
        "SELECT string_agg(n, ',' ORDER BY o) FROM pg_proc p,
                unnest(p.proargnames, p.proargmodes::text[]) WITH ORDINALITY AS a(n, m, o)
          WHERE p.oid = $1::regproc AND m = 't' GROUP BY p.oid",
    )
    .bind("api.reorder_needs")
    .fetch_all(&mut purchasing)
    .await
    .unwrap();
    let forecast: Vec<String> = sqlx::query_scalar(
        "SELECT string_agg(n, ',' ORDER BY o) FROM pg_proc p,
                unnest(p.proargnames, p.proargmodes::text[]) WITH ORDINALITY AS a(n, m, o)
          WHERE p.oid = $1::regproc AND m = 't' GROUP BY p.oid",
    )
    .bind("api.reorder_forecast")
    .fetch_all(&mut purchasing)
    .await
    .unwrap();
    assert_eq!(needs, forecast);
    let url = shop.url_for("dept_purchasing");
    for args in [
        &["report", "reorder", "--forecast", "--format", "json"][..],
        &["report", "forecast", "--format", "csv"][..],
    ] {
        assert_success(&stockops(args, Some(&url), None), &args.join(" "));
    }
    // The existing report is unchanged.
    assert_success(
        &stockops(&["report", "reorder", "--format", "json"], Some(&url), None),
        "report reorder",
    );
}

fn sqlx_state(err: &sqlx::Error) -> String {
    sqlstate(err).unwrap_or_else(|| format!("no SQLSTATE: {err}"))
}

#[tokio::test]
async fn check_data_is_clean_when_seeded_and_finds_every_planted_defect() {
    let shop = Shop::new("ins_dq").await;
    let url = shop.url_for("dept_reporting");
    let out = stockops(&["check", "data", "--json"], Some(&url), None);
    assert_success(&out, "check data on a fresh seed");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["clean"], true, "{json}");

    // Plant one defect per rule, as a superuser would (or a bad restore).
    let mut admin = shop.db.admin().await;
    sqlx::raw_sql(
        r#"
        -- level vs ledger: a level moved without its movement
        UPDATE inventory.stock_levels SET on_hand = on_hand + 7
         WHERE (product_id, warehouse_id) = (SELECT product_id, warehouse_id FROM inventory.stock_levels
                                              ORDER BY 1, 2 LIMIT 1);
        -- a reservation no submitted order holds
        UPDATE inventory.stock_levels SET reserved = reserved + 1
         WHERE (product_id, warehouse_id) = (SELECT product_id, warehouse_id FROM inventory.stock_levels
                                              WHERE on_hand > reserved ORDER BY 1 DESC, 2 DESC LIMIT 1);
        -- an order with no line, a sent purchase order with no line
        INSERT INTO inventory.sales_orders (order_number, reseller_id, warehouse_id, ordered_at, status)
        SELECT 'IT-EMPTY', min(reseller_id), 1, now(), 'submitted' FROM inventory.resellers;
        INSERT INTO inventory.purchase_orders (po_number, supplier_id, warehouse_id, status, sent_at)
        SELECT 'IT-PO-EMPTY', min(supplier_id), 1, 'sent', now() FROM inventory.suppliers;
        -- a fulfilled order whose stock never moved
        WITH o AS (INSERT INTO inventory.sales_orders (order_number, reseller_id, warehouse_id, ordered_at, status)
                   SELECT 'IT-NOMOVE', min(reseller_id), 1, now(), 'fulfilled' FROM inventory.resellers
                   RETURNING sales_order_id)
        INSERT INTO inventory.sales_order_lines SELECT o.sales_order_id, 1, min(p.product_id), 1, 1
          FROM o, inventory.products p GROUP BY o.sales_order_id;
        -- a partner binding to a login that was dropped
        INSERT INTO inventory.partner_logins (login, reseller_id)
        SELECT 'it_ins_dq_ghost', min(reseller_id) FROM inventory.resellers;
        -- duplicates: a SKU but for its dash, a product name but for case and spaces,
        -- a reseller's and a supplier's name
        INSERT INTO inventory.products (sku, name, category, unit_cost, list_price, preferred_supplier_id)
        SELECT replace(sku, '-', ''), 'Another name', category, unit_cost, list_price, preferred_supplier_id
          FROM inventory.products ORDER BY sku LIMIT 1;
        INSERT INTO inventory.products (sku, name, category, unit_cost, list_price, preferred_supplier_id)
        SELECT 'IT-DUPNAME', '  ' || upper(name) || ' ', category, unit_cost, list_price, preferred_supplier_id
          FROM inventory.products ORDER BY sku DESC LIMIT 1;
        INSERT INTO inventory.resellers (code, name, region_id)
        SELECT 'IT-DUP', lower(name), region_id FROM inventory.resellers ORDER BY code LIMIT 1;
        INSERT INTO inventory.suppliers (code, name, lead_time_days)
        SELECT 'IT-DUP', upper(name), 5 FROM inventory.suppliers ORDER BY code LIMIT 1;
        -- meaningless values: a placeholder category, no price, priced below cost, no supplier
        UPDATE inventory.products SET category = 'N/A' WHERE sku = (SELECT sku FROM inventory.products ORDER BY sku OFFSET 2 LIMIT 1);
        UPDATE inventory.products SET list_price = 0 WHERE sku = (SELECT sku FROM inventory.products ORDER BY sku OFFSET 3 LIMIT 1);
        UPDATE inventory.products SET list_price = unit_cost - 1
         WHERE sku = (SELECT sku FROM inventory.products WHERE unit_cost > 1 ORDER BY sku OFFSET 4 LIMIT 1);
        UPDATE inventory.products SET preferred_supplier_id = NULL WHERE sku = (SELECT sku FROM inventory.products ORDER BY sku OFFSET 5 LIMIT 1);
        "#,
    )
    .execute(&mut admin)
    .await
    .unwrap();
    // What the schema itself prevents needs no rule: a line without its order.
    let err = sqlx::query(
        "INSERT INTO inventory.sales_order_lines VALUES (-1, 1, (SELECT min(product_id) FROM inventory.products), 1, 1)",
    )
    .execute(&mut admin)
    .await
    .unwrap_err();
    assert_eq!(sqlx_state(&err), "23503", "foreign key");

    let out = stockops(&["check", "data", "--json"], Some(&url), None);
    assert_code(&out, 3, "check data with findings");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["clean"], false);
    let mut rules: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["count"].as_i64().unwrap() >= 1, "{f}");
            assert!(!f["example"].as_str().unwrap().is_empty(), "{f}");
            f["rule"].as_str().unwrap()
        })
        .collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        [
            "duplicate_product_names",
            "duplicate_reseller_names",
            "duplicate_skus",
            "duplicate_supplier_names",
            "fulfilled_orders_without_movements",
            "level_vs_ledger",
            "partner_logins_without_role",
            "products_priced_below_cost",
            "products_without_category",
            "products_without_price",
            "products_without_supplier",
            "purchase_orders_without_lines",
            "reserved_vs_open_orders",
            "sales_orders_without_lines",
        ],
        "{json}"
    );
    // Errors first; the level's example names the product, warehouse and both sums.
    let first = &json["findings"][0];
    assert_eq!(first["severity"], "error", "{json}");
    let level = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "level_vs_ledger")
        .unwrap();
    assert_eq!(level["count"], 1);
    assert!(
        level["example"].as_str().unwrap().contains("ledger"),
        "{level}"
    );
    // The table form says the same and exits the same.
    let out = stockops(&["check", "data"], Some(&url), None);
    assert_code(&out, 3, "check data, table");
    assert!(stdout(&out).contains("level_vs_ledger"), "{}", stdout(&out));
}

#[tokio::test]
async fn insights_are_granted_by_group() {
    let shop = Shop::new("ins_priv").await;
    let calls = [
        "SELECT count(*) FROM api.demand_forecast()",
        "SELECT count(*) FROM api.reorder_forecast()",
        "SELECT count(*) FROM api.sales_anomalies('2025-10-01', '2026-01-01')",
        "SELECT count(*) FROM api.data_quality()",
    ];
    let allowed: &[(&str, &[bool; 4])] = &[
        ("dept_stock", &[true, true, true, true]),
        ("dept_purchasing", &[true, true, true, false]),
        ("dept_reporting", &[true, true, true, true]),
        ("dept_sales", &[false, false, false, false]),
        ("dept_audit", &[false, false, false, false]),
        ("reseller", &[false, false, false, false]),
    ];
    for (group, may) in allowed {
        let mut conn = shop.as_group(group).await;
        for (sql, may) in calls.iter().zip(may.iter()) {
            let result = sqlx::query(sql).execute(&mut conn).await;
            match (may, result) {
                (true, Ok(_)) => {}
                (false, Err(e)) => assert_eq!(sqlx_state(&e), "42501", "{group}: {sql}"),
                (true, Err(e)) => panic!("{group} may run {sql}: {e}"),
                (false, Ok(_)) => panic!("{group} may not run {sql}"),
            }
        }
    }
    // The command maps the refusal to exit 5.
    let out = stockops(&["check", "data"], Some(&shop.url_for("dept_sales")), None);
    assert_code(&out, 5, "check data as dept_sales");
}

#[tokio::test]
async fn bench_forecast_scores_both_forecasts_on_held_out_weeks() {
    // A scratch database of its own, created and dropped by the bench.
    let url = admin_url();
    let out = stockops(
        &[
            "bench",
            "forecast",
            "--scale",
            "0.05",
            "--holdout-weeks",
            "2",
            "--json",
        ],
        Some(&url),
        None,
    );
    assert_success(&out, "bench forecast");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["holdout_weeks"], 2);
    assert!(
        r["points"].as_i64().unwrap() == r["series"].as_i64().unwrap() * 14,
        "{r}"
    );
    let (forecast, naive) = (
        r["forecast_mae"].as_f64().unwrap(),
        r["naive_mae"].as_f64().unwrap(),
    );
    // The seed's weeks have a strong shape and a steady level: the forecast
    // must beat repeating last week (0.78 of its error when this was written).
    assert!(forecast > 0.0 && forecast < naive, "{r}");
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'stockops\\_bench\\_forecast\\_%'",
    )
    .fetch_one(&mut connect(&url).await)
    .await
    .unwrap();
    assert_eq!(left, 0, "the scratch database is dropped");
}
