//! The Distributech ETL: order files as they come from the field, loaded
//! through the audited api as an etl login; the stock export.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sqlx::PgConnection;

use crate::common::*;
use crate::procedures::Shop;

/// Resellers served by a warehouse of their own region, and SKUs given
/// plenty of stock in every warehouse (so stock never decides, unless a
/// line asks for more than all of it).
pub(crate) async fn fixture(
    admin: &mut PgConnection,
    resellers: i64,
    skus: i64,
) -> (Vec<String>, Vec<String>) {
    let r: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT r.code FROM inventory.resellers r
           JOIN inventory.warehouses w ON w.region_id = r.region_id AND w.active
          WHERE r.active ORDER BY r.code LIMIT $1",
    )
    .bind(resellers)
    .fetch_all(&mut *admin)
    .await
    .unwrap();
    let s: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM inventory.products ORDER BY sku LIMIT $1")
            .bind(skus)
            .fetch_all(&mut *admin)
            .await
            .unwrap();
    assert_eq!(
        (r.len() as i64, s.len() as i64),
        (resellers, skus),
        "the seed has enough"
    );
    sqlx::query(
        "INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, reason)
         SELECT p.product_id, w.warehouse_id, 'adjustment', 1000, 'etl test stock'
           FROM inventory.products p CROSS JOIN inventory.warehouses w WHERE p.sku = ANY ($1)",
    )
    .bind(&s)
    .execute(&mut *admin)
    .await
    .unwrap();
    (r, s)
}

pub(crate) fn import(url: &str, file: &Path, extra: &[&str]) -> Output {
    let path = file.to_str().unwrap();
    let mut args = vec!["import", "orders", "--csv", path];
    args.extend_from_slice(extra);
    stockops(&args, Some(url), None)
}

fn import_json(url: &str, file: &Path, extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.push("--json");
    let out = import(url, file, &args);
    assert_success(&out, "import orders");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn counts(v: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    (n("read"), n("loaded"), n("duplicates"), n("rejected"))
}

fn by_reason(v: &Value) -> BTreeMap<String, u64> {
    v["rejected_by_reason"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(c as u32).expect("a Latin-1 character"))
        .collect()
}

#[tokio::test]
async fn a_messy_file_loads_its_good_lines_and_says_why_for_each_other() {
    let shop = Shop::new("etlmsg").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 2, 4).await;
    let (r0, r1) = (&r[0], &r[1]);
    let lower = r1.to_lowercase();
    // Latin-1, semicolons, CRLF, French headers with accents and stray
    // blanks, decimal commas, both date formats, lowercase codes.
    let good = [
        format!("W1; 03/02/2025 ;{r0};{};2;12,50", s[0]),
        format!("W1;03/02/2025;{r0};{};1;1 234,00", s[1]),
        format!("W2;2025-02-04;{lower};{};3;99", s[0].to_lowercase()),
        format!("W2;2025-02-04;{r1};{};1;0,99", s[2]),
        format!("W3;5/2/2025;{r1};{};4;10", s[3]),
    ];
    let bad = [
        (format!("W1;03/02/2025;{r0};{};2;12,50", s[0]), "duplicate"),
        (format!("W2;2025-02-04;{r1};{};1;0,99", s[2]), "duplicate"),
        (format!("W4;2025-02-04;{r0};{};;5", s[0]), "missing_field"),
        (format!("W4;2025-02-04;{r0}"), "missing_field"),
        (
            format!("W4;2025-02-04;{r0};{};deux;5", s[1]),
            "malformed_number",
        ),
        (
            format!("W4;2025-02-04;{r0};{};0;5", s[2]),
            "non_positive_quantity",
        ),
        (
            format!("W4;2025-02-04;{r0};{};-3;5", s[3]),
            "non_positive_quantity",
        ),
        (
            format!("W5;31/02/2025;{r0};{};1;5", s[0]),
            "impossible_date",
        ),
        (
            format!("W5;2025-13-01;{r0};{};1;5", s[1]),
            "impossible_date",
        ),
        (
            format!("W5;2025-02-06;{r0};{};1;-5", s[2]),
            "price_out_of_range",
        ),
        (
            format!("W5;2025-02-06;{r0};{};1;0", s[3]),
            "price_out_of_range",
        ),
        (
            format!("W6;2025-02-06;RES-9999;{};1;5", s[0]),
            "unknown_reseller",
        ),
        (format!("W6;2025-02-06;{r0};NOPE-0000;1;5"), "unknown_sku"),
        (format!("W1;03/02/2025;{r0};{};7;12,50", s[0]), "conflict"),
        (
            format!("W7;2025-02-06;{r0};{};999999;5", s[0]),
            "insufficient_stock",
        ),
        (
            format!("W8;2025-02-06;{r0};{};1;5;extra", s[1]),
            "wrong_field_count",
        ),
    ];
    let mut text = String::from(
        " Réf. Commande ;Date commande;REVENDEUR;Réf produit;Quantité;Prix unitaire\r\n",
    );
    for line in good.iter().chain(bad.iter().map(|(l, _)| l)) {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str(";;;;;\r\n\r\n");
    let dir = temp_dir("etlmsg");
    let file = dir.join("commandes_semaine_06.csv");
    std::fs::write(&file, latin1(&text)).unwrap();
    let url = shop.url_for("etl");

    let v = import_json(&url, &file, &[]);
    assert_eq!(counts(&v), (21, 5, 2, 14), "{v}");
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (_, reason) in bad.iter().filter(|(_, r)| *r != "duplicate") {
        *want.entry(reason.to_string()).or_default() += 1;
    }
    assert_eq!(by_reason(&v), want);
    assert_eq!(v["encoding"], "latin-1");
    assert_eq!(v["delimiter"], ";");

    // The reject file: one line per reject, with its reason and the line as read.
    let rejects = dir.join("commandes_semaine_06.csv.rejects.csv");
    let mut rdr = csv::Reader::from_path(&rejects).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 14);
    for row in &rows {
        let line: usize = row[0].parse().unwrap();
        let (raw, reason) = &bad[line - 2 - good.len()];
        assert_eq!((&row[1], &row[3]), (*reason, raw.as_str()), "line {line}");
    }
    // The quarantine table holds the same.
    let quarantined: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, count(*) FROM inventory.import_rejects
          WHERE source_file = 'commandes_semaine_06.csv' GROUP BY reason ORDER BY reason",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let quarantined: BTreeMap<String, u64> = quarantined
        .into_iter()
        .map(|(r, n)| (r, n as u64))
        .collect();
    assert_eq!(quarantined, want);

    // What loaded is submitted orders holding reservations, recorded as the etl login.
    let lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.sales_orders o JOIN inventory.sales_order_lines l USING (sales_order_id)
          WHERE o.source = 'import' AND o.status = 'submitted'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(lines, 5);
    let price: String = sqlx::query_scalar(
        "SELECT l.unit_price::text FROM inventory.sales_order_lines l JOIN inventory.products p USING (product_id)
           JOIN inventory.sales_orders o USING (sales_order_id) WHERE o.external_ref = 'W1' AND p.sku = $1",
    )
    .bind(&s[1])
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(price, "1234.00");
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT acting_role FROM audit.events WHERE function_name IN ('api.import_order_lines', 'api.quarantine_order_lines')",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(roles, vec!["etl".to_string()]);

    // Again: nothing new, and it says so.
    let state = db_state(&mut admin).await;
    let out = import(&url, &file, &[]);
    assert_success(&out, "import again");
    assert!(stdout(&out).contains("nothing new"), "{}", stdout(&out));
    let v = import_json(&url, &file, &[]);
    assert_eq!(counts(&v), (21, 0, 7, 14), "{v}");
    assert_eq!(v["nothing_new"], true);
    assert_eq!(db_state(&mut admin).await, state);

    // The same lines as a UTF-8 file with BOM, commas, English headers in
    // another order, ISO dates and decimal points: the same lines, so duplicates.
    let mut text = String::from("\u{feff}SKU,Quantity,Unit-Price,Order Date,Reseller,Order_Ref\n");
    for l in &good {
        let f: Vec<&str> = l.split(';').map(str::trim).collect();
        let date = match f[1].split('/').collect::<Vec<_>>().as_slice() {
            [d, m, y] => format!("{y}-{m:0>2}-{d:0>2}"),
            _ => f[1].to_string(),
        };
        let price = f[5].replace(' ', "").replace(',', ".");
        text.push_str(&format!(
            "{},{},\"{}\",{},{},{}\n",
            f[3], f[4], price, date, f[2], f[0]
        ));
    }
    let english = dir.join("orders.csv");
    std::fs::write(&english, text).unwrap();
    let v = import_json(&url, &english, &[]);
    assert_eq!(counts(&v), (5, 0, 5, 0), "{v}");
    assert_eq!(
        (v["encoding"].as_str(), v["delimiter"].as_str()),
        (Some("utf-8"), Some(","))
    );
    assert_eq!(db_state(&mut admin).await, state);
}

/// Everything the imports decide: imported lines and stock levels.
async fn db_state(conn: &mut PgConnection) -> (Vec<String>, Vec<String>) {
    let lines: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', r.code, o.external_ref, p.sku, l.quantity, l.unit_price, o.ordered_at::date,
                          o.status, w.code)
           FROM inventory.sales_orders o JOIN inventory.sales_order_lines l USING (sales_order_id)
           JOIN inventory.products p USING (product_id) JOIN inventory.resellers r USING (reseller_id)
           JOIN inventory.warehouses w ON w.warehouse_id = o.warehouse_id
          WHERE o.source = 'import' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let levels: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws('|', p.sku, w.code, l.on_hand, l.reserved) FROM inventory.stock_levels l
           JOIN inventory.products p USING (product_id) JOIN inventory.warehouses w USING (warehouse_id) ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (lines, levels)
}

#[tokio::test]
async fn any_order_or_repetition_of_the_same_lines_gives_the_same_state() {
    let mut reference: Option<(Vec<String>, Vec<String>)> = None;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for case in 0..4 {
        let db = TestDb::provisioned(&format!("etlprop{case}")).await;
        assert_success(
            &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
            "seed",
        );
        let mut admin = db.admin().await;
        let (r, s) = fixture(&mut admin, 3, 12).await;
        let login = format!("it_etlprop_{case}");
        let password = db.add_user(&login, "etl", None).await;
        let o = db.tcp_options(&login, &password);
        let url = format!(
            "postgres://{login}:{password}@{}:{}/{}",
            o.get_host(),
            o.get_port(),
            db.name
        );

        // The same 40 valid lines (drawn from a fixed seed), each order of
        // one reseller and one date, each sku once per order.
        let mut base = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut lines: Vec<String> = Vec::new();
        for order in 0..10 {
            let reseller = &r[base.gen_range(0..r.len())];
            let day = base.gen_range(1..28);
            let mut skus = s.clone();
            skus.shuffle(&mut base);
            for sku in skus.iter().take(4) {
                let qty = base.gen_range(1..6);
                let cents = base.gen_range(100..90000);
                lines.push(format!(
                    "P{order};{day:02}/03/2025;{reseller};{sku};{qty};{},{:02}",
                    cents / 100,
                    cents % 100
                ));
            }
        }
        // Shuffled, some lines repeated, split over two files, small batches.
        let mut file_lines = lines.clone();
        for _ in 0..rng.gen_range(0..15) {
            let l = lines[rng.gen_range(0..lines.len())].clone();
            file_lines.push(l);
        }
        file_lines.shuffle(&mut rng);
        let cut = rng.gen_range(0..file_lines.len());
        let dir = temp_dir("etlprop");
        let (mut loaded, mut duplicates) = (0, 0);
        for (i, part) in [&file_lines[..cut], &file_lines[cut..]].iter().enumerate() {
            let file = dir.join(format!("part{i}.csv"));
            let mut text = String::from(
                "ref_commande;date_commande;revendeur;ref_produit;quantite;prix_unitaire\n",
            );
            for l in part.iter() {
                text.push_str(l);
                text.push('\n');
            }
            std::fs::write(&file, text).unwrap();
            let batch = rng.gen_range(1..9).to_string();
            let v = import_json(&url, &file, &["--batch-size", &batch]);
            assert_eq!(v["rejected"], 0, "{v}");
            loaded += v["loaded"].as_u64().unwrap();
            duplicates += v["duplicates"].as_u64().unwrap();
        }
        assert_eq!(loaded as usize, lines.len(), "case {case}");
        assert_eq!(
            (loaded + duplicates) as usize,
            file_lines.len(),
            "case {case}"
        );
        let state = db_state(&mut admin).await;
        assert_eq!(state.0.len(), lines.len());
        match &reference {
            None => reference = Some(state),
            Some(first) => assert_eq!(&state, first, "case {case} ended elsewhere"),
        }
    }
}

#[tokio::test]
async fn export_matches_stock_status_row_for_row() {
    let shop = Shop::new("etlexp").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 1, 3).await;
    // Some reservations, so reserved is not zero everywhere.
    let dir = temp_dir("etlexp");
    let file = dir.join("orders.csv");
    let mut text = String::from("order_ref,order_date,reseller,sku,quantity,unit_price\n");
    for sku in &s {
        text.push_str(&format!("E1,2025-05-05,{},{sku},3,10\n", r[0]));
    }
    std::fs::write(&file, text).unwrap();
    import_json(&shop.url_for("etl"), &file, &[]);

    let out_file = dir.join("etat_stock_par_produit.csv");
    let out = stockops(
        &[
            "export",
            "stock",
            "--csv",
            out_file.to_str().unwrap(),
            "--json",
        ],
        Some(&shop.url_for("dept_reporting")),
        None,
    );
    assert_success(&out, "export stock");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warehouses: Vec<String> =
        sqlx::query_scalar("SELECT code FROM inventory.warehouses ORDER BY code")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    let mut header = vec!["sku".to_string(), "name".into(), "category".into()];
    header.extend(warehouses.iter().map(|w| format!("on_hand_{w}")));
    header.extend(
        [
            "on_hand_total",
            "reserved",
            "on_order",
            "reorder_point",
            "status",
        ]
        .map(String::from),
    );
    let mut rdr = csv::Reader::from_path(&out_file).unwrap();
    assert_eq!(rdr.headers().unwrap().iter().collect::<Vec<_>>(), header);
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.products")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(rows.len() as i64, products);
    assert_eq!(summary["products"].as_i64(), Some(products));

    // api.stock_status, per (sku, warehouse), summed per sku.
    let status: Vec<(String, String, i32, i32, i32, i32)> = sqlx::query_as(
        "SELECT sku, warehouse, on_hand, reserved, on_order, reorder_point FROM api.stock_status()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let mut per: BTreeMap<(String, String), (i32, i32, i32)> = BTreeMap::new();
    let mut points: BTreeMap<String, i32> = BTreeMap::new();
    for (sku, wh, on_hand, reserved, on_order, point) in &status {
        per.insert((sku.clone(), wh.clone()), (*on_hand, *reserved, *on_order));
        points.insert(sku.clone(), *point);
    }
    let n = warehouses.len();
    let mut skus_seen = BTreeSet::new();
    let mut reserved_seen = 0;
    for row in &rows {
        let sku = row[0].to_string();
        assert!(skus_seen.insert(sku.clone()), "{sku} twice");
        let (mut total, mut reserved, mut on_order) = (0, 0, 0);
        for (i, wh) in warehouses.iter().enumerate() {
            let (h, r, o) = per
                .get(&(sku.clone(), wh.clone()))
                .copied()
                .unwrap_or((0, 0, 0));
            assert_eq!(row[3 + i].parse::<i32>().unwrap(), h, "{sku} in {wh}");
            total += h;
            reserved += r;
            on_order += o;
        }
        let got: Vec<i32> = (3 + n..7 + n).map(|i| row[i].parse().unwrap()).collect();
        if let Some(point) = points.get(&sku) {
            assert_eq!(got, vec![total, reserved, on_order, *point], "{sku}");
        } else {
            assert_eq!(got[..3], [0, 0, 0], "{sku} has no level anywhere");
        }
        let point = got[3];
        let want = if total - reserved <= 0 {
            "out"
        } else if total - reserved <= point {
            "low"
        } else {
            "ok"
        };
        assert_eq!(&row[7 + n], want, "{sku}");
        reserved_seen += reserved;
    }
    assert!(reserved_seen >= 9, "the imported reservations show");
    let skus: BTreeSet<String> = status.iter().map(|r| r.0.clone()).collect();
    assert!(skus.is_subset(&skus_seen));

    // To standard output, the same bytes.
    let out = stockops(
        &["export", "stock", "--csv", "-"],
        Some(&shop.url_for("etl")),
        None,
    );
    assert_success(&out, "export stock --csv -");
    assert_eq!(out.stdout, std::fs::read(&out_file).unwrap());
    // A login that may not read stock may not export it.
    let out = stockops(
        &["export", "stock", "--csv", "-"],
        Some(&shop.url_for("dept_audit")),
        None,
    );
    assert_code(&out, 5, "export as dept_audit");
}

#[tokio::test]
async fn an_etl_login_touches_no_table_and_only_its_functions() {
    let shop = Shop::new("etlpriv").await;
    let mut etl = shop.as_group("etl").await;
    for sql in [
        "SELECT 1 FROM inventory.sales_orders LIMIT 1",
        "SELECT 1 FROM inventory.import_rejects LIMIT 1",
        "INSERT INTO inventory.import_rejects (source_file, line_number, raw_line, reason) VALUES ('f', 1, 'x', 'conflict')",
        "UPDATE inventory.stock_levels SET reserved = 0 WHERE false",
        "DELETE FROM inventory.sales_order_lines WHERE false",
        "SELECT api.record_sale('RES-0001', 'X', 'WH-PAR', 1)",
        "SELECT count(*) FROM api.stock_status()",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut etl).await.unwrap_err();
        assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{sql}: {err}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api.stock_by_product()")
        .fetch_one(&mut etl)
        .await
        .unwrap();
    assert!(n > 0);
    // And the import function is the etl group's alone.
    let mut sales = shop.as_group("dept_sales").await;
    let err = sqlx::raw_sql(
        "SELECT * FROM api.import_order_lines('f', '{2}', '{A}', '{2025-01-01}', '{RES-0001}', '{X}', '{1}', '{1}')",
    )
    .execute(&mut sales)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{err}");
}

#[tokio::test]
async fn strict_keeps_nothing_on_a_reject_and_reseller_pins_the_file() {
    let shop = Shop::new("etlstrict").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 2, 2).await;
    let dir = temp_dir("etlstrict");
    let file = dir.join("orders.csv");
    std::fs::write(
        &file,
        format!(
            "order_ref;order_date;reseller;sku;quantity;unit_price\n\
             S1;2025-06-02;{0};{2};1;5\n\
             S1;2025-06-02;{1};{3};1;5\n",
            r[0], r[1], s[0], s[1]
        ),
    )
    .unwrap();
    let rejects: PathBuf = dir.join("elsewhere.csv");
    let url = shop.url_for("etl");
    let args = [
        "--strict",
        "--reseller",
        r[0].as_str(),
        "--rejects",
        rejects.to_str().unwrap(),
    ];
    let out = import(&url, &file, &args);
    assert_code(&out, 1, "import --strict with a reject");
    assert!(stderr(&out).contains("--strict"), "{}", stderr(&out));
    assert!(stdout(&out).contains("wrong_reseller"), "{}", stdout(&out));
    let kept: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM inventory.sales_orders WHERE source = 'import'),
                (SELECT count(*) FROM inventory.import_rejects)",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(kept, (0, 0), "nothing kept");
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(",wrong_reseller,"), "{text}");
    assert!(!dir.join("orders.csv.rejects.csv").exists());

    // Without --strict the good line loads and the exit is 0; a clean file with --strict too.
    let out = import(&url, &file, &["--reseller", &r[0]]);
    assert_success(&out, "import with a reject, not strict");
    let clean = dir.join("clean.csv");
    std::fs::write(
        &clean,
        format!(
            "order_ref;order_date;reseller;sku;quantity;unit_price\nS2;2025-06-03;{};{};1;5\n",
            r[0], s[1]
        ),
    )
    .unwrap();
    let v = import_json(&url, &clean, &["--strict"]);
    assert_eq!(counts(&v), (1, 1, 0, 0));
    // A file without the columns is refused whole.
    let junk = dir.join("junk.csv");
    std::fs::write(&junk, "a;b;c\n1;2;3\n").unwrap();
    let out = import(&url, &junk, &[]);
    assert_code(&out, 1, "import of a file without the columns");
    assert!(
        stderr(&out).contains("no column for order_ref"),
        "{}",
        stderr(&out)
    );
}
