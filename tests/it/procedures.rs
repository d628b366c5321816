//! The api: the role × function matrix, partners' own rows, clean failures,
//! and text that stays text.

use std::collections::BTreeSet;

use sqlx::PgConnection;

use crate::common::*;

/// Which api functions each group may execute: the contract of roles/grants.toml,
/// written out independently here.
pub const MATRIX: &[(&str, &[&str])] = &[
    (
        "dept_stock",
        &[
            "receive_stock",
            "adjust_stock",
            "transfer_stock",
            "stock_status",
            "stock_changes",
            "stock_changes_head",
            "stock_feed",
            "stock_feed_position",
            "stock_by_product",
            "reorder_needs",
            "demand_forecast",
            "reorder_forecast",
            "sales_anomalies",
            "data_quality",
        ],
    ),
    (
        "dept_sales",
        &[
            "record_sale",
            "record_return",
            "fulfil_order",
            "stock_status",
            "stock_changes",
            "stock_changes_head",
            "stock_feed",
            "stock_feed_position",
            "stock_by_product",
            "sales_summary",
        ],
    ),
    (
        "dept_purchasing",
        &[
            "create_purchase_order",
            "send_purchase_order",
            "cancel_purchase_order",
            "stock_status",
            "stock_changes",
            "stock_changes_head",
            "stock_feed",
            "stock_feed_position",
            "stock_by_product",
            "reorder_needs",
            "supplier_performance",
            "demand_forecast",
            "reorder_forecast",
            "sales_anomalies",
        ],
    ),
    (
        "dept_reporting",
        &[
            "stock_status",
            "stock_changes",
            "stock_changes_head",
            "stock_feed",
            "stock_feed_position",
            "stock_by_product",
            "reorder_needs",
            "supplier_performance",
            "sales_summary",
            "margins",
            "demand_forecast",
            "reorder_forecast",
            "sales_anomalies",
            "data_quality",
        ],
    ),
    (
        "dept_audit",
        &[
            "audit_events",
            "audit_tail",
            "audit_chain",
            "audit_unsealed",
            "audit_seal",
        ],
    ),
    (
        "etl",
        &[
            "import_order_lines",
            "quarantine_order_lines",
            "reconcile_legacy",
            "stock_by_product",
        ],
    ),
    ("reseller", &["my_orders", "submit_order"]),
    (
        "supplier",
        &["my_purchase_orders", "confirm_purchase_order"],
    ),
];

/// A provisioned, lightly seeded database with one login per group.
pub struct Shop {
    pub db: TestDb,
    pub logins: Vec<(String, String, String)>,
}

impl Shop {
    pub async fn new(tag: &str) -> Self {
        let db = TestDb::provisioned(tag).await;
        assert_success(
            &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
            "seed",
        );
        let mut logins = Vec::new();
        for (group, _) in MATRIX {
            let login = format!("it_{tag}_{group}");
            let partner = match *group {
                "reseller" => Some(("--reseller", "RES-0001")),
                "supplier" => Some(("--supplier", "SUP-001")),
                _ => None,
            };
            let password = db.add_user(&login, group, partner).await;
            logins.push((group.to_string(), login, password));
        }
        Self { db, logins }
    }

    pub async fn as_group(&self, group: &str) -> PgConnection {
        let (_, login, password) = self
            .logins
            .iter()
            .find(|(g, _, _)| g == group)
            .expect("a login per group");
        self.db
            .login(login, password)
            .await
            .expect("login connects")
    }

    pub fn url_for(&self, group: &str) -> String {
        let (_, login, password) = self.logins.iter().find(|(g, _, _)| g == group).unwrap();
        let o = self.db.tcp_options(login, password);
        format!(
            "postgres://{login}:{password}@{}:{}/{}",
            o.get_host(),
            o.get_port(),
            self.db.name
        )
    }
}

/// A SKU with at least `min` available in `warehouse`.
pub async fn stocked_sku(conn: &mut PgConnection, warehouse: &str, min: i32) -> (String, i32) {
    sqlx::query_as(
        "SELECT p.sku, l.on_hand - l.reserved FROM inventory.stock_levels l
           JOIN inventory.products p USING (product_id) JOIN inventory.warehouses w USING (warehouse_id)
          WHERE w.code = $1 AND l.on_hand - l.reserved >= $2 ORDER BY p.sku LIMIT 1",
    )
    .bind(warehouse)
    .bind(min)
    .fetch_one(conn)
    .await
    .expect("a stocked sku")
}

#[tokio::test]
async fn each_group_executes_exactly_its_functions() {
    let shop = Shop::new("fnmatrix").await;
    let mut admin = shop.db.admin().await;
    let functions: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.proname::text, p.oid::regprocedure::text FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'api' ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let declared: BTreeSet<&str> = MATRIX.iter().flat_map(|(_, f)| f.iter().copied()).collect();
    let existing: BTreeSet<&str> = functions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        declared, existing,
        "every api function has its place in the matrix"
    );
    for (group, login, _) in &shop.logins {
        let allowed: BTreeSet<&str> = MATRIX
            .iter()
            .find(|(g, _)| g == group)
            .unwrap()
            .1
            .iter()
            .copied()
            .collect();
        for (name, signature) in &functions {
            let may: bool = sqlx::query_scalar("SELECT has_function_privilege($1, $2, 'EXECUTE')")
                .bind(login)
                .bind(signature)
                .fetch_one(&mut admin)
                .await
                .unwrap();
            assert_eq!(
                may,
                allowed.contains(name.as_str()),
                "{group} on {signature}"
            );
        }
    }
    // And for real: a forbidden write is refused before it does anything.
    let mut stock = shop.as_group("dept_stock").await;
    let err = sqlx::query("SELECT api.record_sale('RES-0001', 'X', 'WH-PAR', 1)")
        .execute(&mut stock)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"));
    let mut reporting = shop.as_group("dept_reporting").await;
    let err = sqlx::query("SELECT api.adjust_stock('X', 'WH-PAR', 1, 'r')")
        .execute(&mut reporting)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api.margins('2025-01-01', '2026-01-01')")
        .fetch_one(&mut reporting)
        .await
        .unwrap();
    assert!(n > 0);
}

#[tokio::test]
async fn audit_records_the_declared_groups() {
    let shop = Shop::new("acting").await;
    let mut admin = shop.db.admin().await;
    let body: String = sqlx::query_scalar(
        "SELECT prosrc FROM pg_proc WHERE oid = 'audit.record(text,jsonb,jsonb)'::regprocedure",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let decl = stockops::db::provision::Declaration::embedded().unwrap();
    for (group, _) in decl.groups() {
        assert!(
            body.contains(group.as_str()),
            "audit.record does not know group {group}"
        );
    }
    let mut sales = shop.as_group("dept_sales").await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 1).await;
    sqlx::query("SELECT api.record_sale('RES-0001', $1, 'WH-PAR', 1)")
        .bind(&sku)
        .execute(&mut sales)
        .await
        .unwrap();
    let (login, role): (String, String) = sqlx::query_as(
        "SELECT login::text, acting_role FROM audit.events ORDER BY event_id DESC LIMIT 1",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        (login.as_str(), role.as_str()),
        ("it_acting_dept_sales", "dept_sales")
    );
}

#[tokio::test]
async fn partners_see_and_touch_only_their_own_rows() {
    let shop = Shop::new("partners").await;
    let db = &shop.db;
    let mut admin = db.admin().await;
    let other = db
        .add_user(
            "it_partners_res_b",
            "reseller",
            Some(("--reseller", "RES-0002")),
        )
        .await;
    let mut a = shop.as_group("reseller").await;
    let mut b = db.login("it_partners_res_b", &other).await.unwrap();

    let (sku, _) = stocked_sku(&mut admin, "WH-LYO", 2).await;
    let order: String = sqlx::query_scalar("SELECT api.submit_order('WH-LYO', jsonb_build_array(jsonb_build_object('sku', $1::text, 'quantity', 2)), 'A-REF-1')")
        .bind(&sku)
        .fetch_one(&mut a)
        .await
        .unwrap();
    let mine: Vec<(String, String)> =
        sqlx::query_as("SELECT DISTINCT order_number, status FROM api.my_orders()")
            .fetch_all(&mut a)
            .await
            .unwrap();
    assert!(mine.contains(&(order.clone(), "submitted".to_string())));
    let expected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.sales_orders o JOIN inventory.resellers r USING (reseller_id) WHERE r.code = 'RES-0001'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(mine.len() as i64, expected, "A sees exactly its orders");
    let theirs: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT order_number FROM api.my_orders()")
            .fetch_all(&mut b)
            .await
            .unwrap();
    assert!(!theirs.contains(&order), "B must not see A's order");
    let reserved: i32 = sqlx::query_scalar(
        "SELECT l.reserved FROM inventory.stock_levels l JOIN inventory.products p USING (product_id)
           JOIN inventory.warehouses w USING (warehouse_id) WHERE p.sku = $1 AND w.code = 'WH-LYO'",
    )
    .bind(&sku)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(reserved, 2, "a submitted order reserves its stock");
    let err = sqlx::query("SELECT api.record_sale('RES-0002', $1, 'WH-LYO', 1)")
        .bind(&sku)
        .execute(&mut a)
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&err).as_deref(),
        Some("42501"),
        "a reseller cannot record sales"
    );

    // Sales fulfils it: the reservation becomes a sale.
    let mut sales = shop.as_group("dept_sales").await;
    sqlx::query("SELECT api.fulfil_order($1)")
        .bind(&order)
        .execute(&mut sales)
        .await
        .unwrap();
    let (reserved, sold): (i32, i64) = sqlx::query_as(
        "SELECT l.reserved, (SELECT count(*) FROM inventory.stock_movements m JOIN inventory.sales_orders o USING (sales_order_id)
                              WHERE o.order_number = $2 AND m.kind = 'sale')
           FROM inventory.stock_levels l JOIN inventory.products p USING (product_id)
           JOIN inventory.warehouses w USING (warehouse_id) WHERE p.sku = $1 AND w.code = 'WH-LYO'",
    )
    .bind(&sku)
    .bind(&order)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!((reserved, sold), (0, 1));

    // Suppliers: own purchase orders only; another supplier's is "unknown".
    let mut supplier = shop.as_group("supplier").await;
    let own: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT po_number FROM api.my_purchase_orders()")
            .fetch_all(&mut supplier)
            .await
            .unwrap();
    let expected: Vec<String> = sqlx::query_scalar(
        "SELECT po_number FROM inventory.purchase_orders JOIN inventory.suppliers s USING (supplier_id)
          WHERE s.code = 'SUP-001' AND status <> 'draft' ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let mut own_sorted = own.clone();
    own_sorted.sort();
    assert_eq!(own_sorted, expected);
    let foreign: String = sqlx::query_scalar(
        "SELECT po_number FROM inventory.purchase_orders JOIN inventory.suppliers s USING (supplier_id)
          WHERE s.code <> 'SUP-001' AND status = 'sent' LIMIT 1",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let err = sqlx::query("SELECT api.confirm_purchase_order($1)")
        .bind(&foreign)
        .execute(&mut supplier)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("SO001"), "{err}");
    if let Some(mine) = sqlx::query_scalar::<_, String>(
        "SELECT po_number FROM inventory.purchase_orders JOIN inventory.suppliers s USING (supplier_id)
          WHERE s.code = 'SUP-001' AND status = 'sent' LIMIT 1",
    )
    .fetch_optional(&mut admin)
    .await
    .unwrap()
    {
        sqlx::query("SELECT api.confirm_purchase_order($1)").bind(&mine).execute(&mut supplier).await.unwrap();
    }
}

/// Everything a failed call could have touched.
async fn snapshot(conn: &mut PgConnection) -> String {
    sqlx::query_scalar(
        "SELECT concat_ws('|',
            (SELECT sum(on_hand) FROM inventory.stock_levels), (SELECT sum(reserved) FROM inventory.stock_levels),
            (SELECT count(*) FROM inventory.stock_movements), (SELECT count(*) FROM audit.events),
            (SELECT count(*) FROM inventory.sales_orders), (SELECT count(*) FROM inventory.sales_order_lines),
            (SELECT count(*) FROM inventory.purchase_orders),
            (SELECT md5(string_agg(po_number || status, ',' ORDER BY po_number)) FROM inventory.purchase_orders),
            (SELECT sum(quantity_received) FROM inventory.purchase_order_lines))",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn bad_calls_fail_with_their_code_and_change_nothing() {
    let shop = Shop::new("badcalls").await;
    let mut admin = shop.db.admin().await;
    let (sku, available) = stocked_sku(&mut admin, "WH-PAR", 1).await;
    let received: String = sqlx::query_scalar(
        "SELECT po_number FROM inventory.purchase_orders WHERE status = 'received' LIMIT 1",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let asked = available + 1000;
    let insufficient = format!("sku {sku} in warehouse WH-PAR has {available}, asked {asked}");
    let cases: Vec<(&str, String, &str, String)> = vec![
        ("dept_sales", "SELECT api.record_sale('RES-0001', 'NO-SUCH-SKU', 'WH-PAR', 1)".to_string(), "SO001", "unknown sku 'NO-SUCH-SKU'".into()),
        ("dept_sales", format!("SELECT api.record_sale('RES-0001', '{sku}', 'WH-NOWHERE', 1)"), "SO001", "unknown warehouse".into()),
        ("dept_sales", format!("SELECT api.record_sale('RES-9999', '{sku}', 'WH-PAR', 1)"), "SO001", "unknown reseller".into()),
        ("dept_sales", format!("SELECT api.record_sale('RES-0001', '{sku}', 'WH-PAR', -1)"), "SO002", "positive".into()),
        ("dept_sales", format!("SELECT api.record_sale('RES-0001', '{sku}', 'WH-PAR', {asked})"), "SO003", insufficient),
        ("dept_stock", format!("SELECT api.receive_stock('{sku}', 'WH-PAR', 0)"), "SO002", "positive".into()),
        ("dept_stock", format!("SELECT api.adjust_stock('{sku}', 'WH-PAR', 5, '  ')"), "SO005", "p_reason is required".into()),
        ("dept_stock", format!("SELECT api.adjust_stock('{sku}', 'WH-PAR', -{asked}, 'count')"), "SO003", "asked".into()),
        ("dept_stock", format!("SELECT api.transfer_stock('{sku}', 'WH-PAR', 'WH-PAR', 1)"), "SO005", "both".into()),
        ("dept_stock", format!("SELECT api.receive_stock('{sku}', 'WH-PAR', 1, 'PO-NOPE')"), "SO001", "unknown purchase order".into()),
        ("dept_purchasing", "SELECT api.create_purchase_order('SUP-NOPE', '[{\"sku\": \"x\", \"quantity\": 1}]', 'WH-PAR')".into(), "SO001", "unknown supplier".into()),
        ("dept_purchasing", "SELECT api.create_purchase_order('SUP-001', '{\"sku\": 1}', 'WH-PAR')".into(), "SO005", "non-empty JSON array".into()),
        ("dept_purchasing", format!("SELECT api.create_purchase_order('SUP-001', '[{{\"sku\": \"{sku}\", \"quantity\": 0}}]', 'WH-PAR')"), "SO002", "positive whole number".into()),
        ("dept_purchasing", format!("SELECT api.send_purchase_order('{received}')"), "SO004", "only drafts can be sent".into()),
        ("dept_purchasing", format!("SELECT api.cancel_purchase_order('{received}', 'late')"), "SO004", "can be cancelled".into()),
        ("dept_sales", "SELECT api.record_return('SO-NOPE', 'x', 1)".into(), "SO001", "unknown sku".into()),
    ];
    let before = snapshot(&mut admin).await;
    for (group, sql, code, message) in &cases {
        let mut conn = shop.as_group(group).await;
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.expect_err(sql);
        let text = err.to_string();
        assert_eq!(sqlstate(&err).as_deref(), Some(*code), "{sql}: {text}");
        assert!(text.contains(message.as_str()), "{sql}: {text}");
    }
    assert_eq!(
        before,
        snapshot(&mut admin).await,
        "a failed call changed something"
    );
    // The command line carries the code and the message.
    let out = stockops(
        &[
            "call",
            "record_sale",
            "--arg",
            "reseller=RES-0001",
            "--arg",
            &format!("sku={sku}"),
            "--arg",
            "warehouse=WH-PAR",
            "--arg",
            &format!("quantity={asked}"),
        ],
        Some(&shop.url_for("dept_sales")),
        None,
    );
    assert_code(&out, 1, "call with insufficient stock");
    assert!(
        stderr(&out).contains("[SO003]") && stderr(&out).contains("has"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn text_arguments_are_stored_verbatim_and_do_nothing_else() {
    let shop = Shop::new("verbatim").await;
    let mut admin = shop.db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 1).await;
    let nasty =
        "'); DROP TABLE inventory.products; --\n\tcontrol:\u{1}\u{7f} quote:\" backslash:\\ é 🚚";
    let mut stock = shop.as_group("dept_stock").await;
    let movement: i64 = sqlx::query_scalar("SELECT api.adjust_stock($1, 'WH-PAR', 1, $2)")
        .bind(&sku)
        .bind(nasty)
        .fetch_one(&mut stock)
        .await
        .unwrap();
    let stored: String =
        sqlx::query_scalar("SELECT reason FROM inventory.stock_movements WHERE movement_id = $1")
            .bind(movement)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(stored, nasty);
    let audited: String = sqlx::query_scalar(
        "SELECT arguments ->> 'p_reason' FROM audit.events ORDER BY event_id DESC LIMIT 1",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(audited, nasty);
    // Through the command line too.
    let arg = format!("reason={nasty}");
    let out = stockops(
        &[
            "call",
            "adjust_stock",
            "--arg",
            &format!("sku={sku}"),
            "--arg",
            "warehouse=WH-PAR",
            "--arg",
            "delta=1",
            "--arg",
            &arg,
        ],
        Some(&shop.url_for("dept_stock")),
        None,
    );
    assert_success(&out, "call adjust_stock");
    let id: i64 = stdout(&out).trim().parse().expect("the movement id, bare");
    let stored: String =
        sqlx::query_scalar("SELECT reason FROM inventory.stock_movements WHERE movement_id = $1")
            .bind(id)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(stored, nasty);
    let products: bool = sqlx::query_scalar("SELECT to_regclass('inventory.products') IS NOT NULL")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(products);
    let out = stockops(
        &["audit", "verify"],
        Some(&shop.url_for("dept_audit")),
        None,
    );
    assert_success(&out, "audit verify");
}
