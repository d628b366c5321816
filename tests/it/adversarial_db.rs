//! Hostile tests on the database boundary (issue 14, findings 6, 7 and 8):
//! each is what a login, a partner or an operator working behind
//! provision's back would try.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::common::*;
use crate::procedures::stocked_sku;
use crate::watch::{login_url, Watcher};

/// `api.adjust_stock` as `conn`; returns the movement id.
async fn adjust_id(conn: &mut PgConnection, sku: &str, warehouse: &str, delta: i32) -> i64 {
    sqlx::query_scalar("SELECT api.adjust_stock($1, $2, $3, 'adversarial test')")
        .bind(sku)
        .bind(warehouse)
        .bind(delta)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Lines until every id in `want` was printed or `within` passed.
fn collect_until(w: &Watcher, want: &BTreeSet<i64>, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut lines = Vec::new();
    let mut missing = want.clone();
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match w.next(left) {
            Some(line) => {
                if let Some(id) = line["movement_id"].as_i64() {
                    missing.remove(&id);
                }
                lines.push(line);
            }
            None => break,
        }
    }
    lines
}

async fn ledger_ids_after(admin: &mut PgConnection, after: i64) -> BTreeSet<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT movement_id FROM inventory.stock_movements WHERE movement_id > $1",
    )
    .bind(after)
    .fetch_all(admin)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn head(admin: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT max(movement_id) FROM inventory.stock_movements")
        .fetch_one(admin)
        .await
        .unwrap()
}

/// Every printed line is a movement committed after `start`, printed once.
async fn assert_only_real(admin: &mut PgConnection, lines: &[Value], start: i64) {
    let real = ledger_ids_after(admin, start).await;
    let mut printed = BTreeSet::new();
    for line in lines {
        let id = line["movement_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("a line that is not a movement: {line}"));
        assert!(
            real.contains(&id),
            "printed movement {id}, which is not a movement committed after the watcher started: {line}"
        );
        assert!(printed.insert(id), "movement {id} printed twice");
    }
}

/// A department login sends notifications shaped like the feed's (a replay of
/// an old movement id, a "bulk" announcement ending at a huge id, a huge id, a
/// movement as JSON), then silences its own session and records a sale:
/// nothing forged is printed, and the real movements committed afterwards are.
#[tokio::test]
async fn forged_notifications_print_nothing_and_never_freeze_the_feed() {
    let db = TestDb::provisioned("adv_notify").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 5).await;
    let watch_pw = db.add_user("it_adv_watcher", "dept_reporting", None).await;
    let sales_pw = db.add_user("it_adv_forger", "dept_sales", None).await;
    let stock_pw = db.add_user("it_adv_clerk", "dept_stock", None).await;
    let start = head(&mut admin).await;
    let watcher = Watcher::start(&login_url(&db, "it_adv_watcher", &watch_pw), &[]);

    let mut forger = db.login("it_adv_forger", &sales_pw).await.unwrap();
    let fake_movement = serde_json::json!({
        "movement_id": start + 1, "sku": sku, "warehouse": "WH-PAR", "kind": "sale",
        "quantity": -999, "old_level": 1000, "new_level": 1, "occurred_at": "2026-01-01T00:00:00Z",
        "actor": "it_adv_clerk"
    })
    .to_string();
    for payload in [
        start.to_string(),
        format!("{start},{}", start - 1),
        "bulk 5 1 9223372036854775000".to_string(),
        "9223372036854775000".to_string(),
        fake_movement,
    ] {
        sqlx::query("SELECT pg_notify('stockops_stock', $1)")
            .bind(&payload)
            .execute(&mut forger)
            .await
            .unwrap();
    }
    // The forger also tries to keep its own movements unannounced.
    sqlx::raw_sql("SET stockops.watchers_seen = '99999999999999:0'")
        .execute(&mut forger)
        .await
        .unwrap();
    let sale: i64 = sqlx::query_scalar("SELECT api.record_sale('RES-0001', $1, 'WH-PAR', 1)")
        .bind(&sku)
        .fetch_one(&mut forger)
        .await
        .unwrap();
    let sale_movement: i64 = sqlx::query_scalar(
        "SELECT max(movement_id) FROM inventory.stock_movements WHERE sales_order_id = $1",
    )
    .bind(sale)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let mut clerk = db.login("it_adv_clerk", &stock_pw).await.unwrap();
    let adjusted = adjust_id(&mut clerk, &sku, "WH-PAR", 2).await;

    let want: BTreeSet<i64> = [sale_movement, adjusted].into();
    let mut lines = collect_until(&watcher, &want, Duration::from_secs(10));
    // Anything else the forgeries might still bring.
    while let Some(line) = watcher.next(Duration::from_millis(700)) {
        lines.push(line);
    }
    assert_only_real(&mut admin, &lines, start).await;
    let printed: BTreeSet<i64> = lines
        .iter()
        .filter_map(|l| l["movement_id"].as_i64())
        .collect();
    assert!(
        want.is_subset(&printed),
        "the real movements {want:?} were not all printed after the forgeries: {lines:?}"
    );
    forger.close().await.unwrap();
    clerk.close().await.unwrap();
    drop(watcher);
    for r in ["it_adv_watcher", "it_adv_forger", "it_adv_clerk"] {
        drop_role(r).await;
    }
}

/// A login sets the session cache 0004's trigger trusted, hoping its movement
/// goes unannounced: the wake-up is sent anyway and the line comes at once.
#[tokio::test]
async fn a_login_cannot_silence_the_wake_up_of_its_movements() {
    let db = TestDb::provisioned("adv_silence").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 5).await;
    let watch_pw = db.add_user("it_adv_watcher2", "dept_reporting", None).await;
    let stock_pw = db.add_user("it_adv_quiet", "dept_stock", None).await;
    let watcher = Watcher::start(&login_url(&db, "it_adv_watcher2", &watch_pw), &[]);
    let mut listener = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    listener
        .listen(stockops::business::watch::CHANNEL)
        .await
        .unwrap();

    let mut quiet = db.login("it_adv_quiet", &stock_pw).await.unwrap();
    for setting in [
        "SET stockops.watchers_seen = '99999999999999:0'",
        "SET application_name = 'stockops watch'",
    ] {
        sqlx::raw_sql(setting).execute(&mut quiet).await.unwrap();
    }
    let t = Instant::now();
    let id = adjust_id(&mut quiet, &sku, "WH-PAR", 1).await;
    tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("the movement of a session that set stockops.watchers_seen woke the watchers")
        .unwrap();
    let line = watcher
        .next(Duration::from_secs(5))
        .expect("the movement printed");
    assert_eq!(line["movement_id"], id, "{line}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "printed {:?} after the commit: woken, not swept",
        t.elapsed()
    );
    quiet.close().await.unwrap();
    drop(watcher);
    drop_role("it_adv_watcher2").await;
    drop_role("it_adv_quiet").await;
}

/// Two transactions: the one holding the lower id commits last. It is still
/// printed, whether it began before the watcher started (no notification
/// ever comes for it) or after.
#[tokio::test]
async fn a_lower_id_committed_after_a_higher_one_is_still_printed() {
    let db = TestDb::provisioned("adv_late").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 5).await;
    let (other, _) = stocked_sku(&mut admin, "WH-LYO", 5).await;
    let watch_pw = db.add_user("it_adv_watcher3", "dept_reporting", None).await;
    let slow_pw = db.add_user("it_adv_slow", "dept_stock", None).await;
    let fast_pw = db.add_user("it_adv_fast", "dept_stock", None).await;
    let mut slow = db.login("it_adv_slow", &slow_pw).await.unwrap();
    let mut fast = db.login("it_adv_fast", &fast_pw).await.unwrap();
    let start = head(&mut admin).await;

    // 1. The slow transaction takes its id before the watcher starts.
    let mut tx = slow.begin().await.unwrap();
    let low = adjust_id(&mut tx, &sku, "WH-PAR", 1).await;
    let watcher = Watcher::start(&login_url(&db, "it_adv_watcher3", &watch_pw), &[]);
    let high = adjust_id(&mut fast, &other, "WH-LYO", 2).await;
    assert!(low < high);
    let lines = collect_until(&watcher, &[high].into(), Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{lines:?}");
    tx.commit().await.unwrap();
    let late = collect_until(&watcher, &[low].into(), Duration::from_secs(10));
    assert_eq!(
        late.iter()
            .map(|l| l["movement_id"].as_i64())
            .collect::<Vec<_>>(),
        vec![Some(low)],
        "the lower id committed last was not printed: {late:?}"
    );

    // 2. Both after the watcher started.
    let mut tx = slow.begin().await.unwrap();
    let low2 = adjust_id(&mut tx, &sku, "WH-PAR", 3).await;
    let high2 = adjust_id(&mut fast, &other, "WH-LYO", 4).await;
    let lines = collect_until(&watcher, &[high2].into(), Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{lines:?}");
    tx.commit().await.unwrap();
    let late = collect_until(&watcher, &[low2].into(), Duration::from_secs(10));
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["movement_id"], low2);
    assert_eq!(late[0]["quantity"], 3);

    // 3. A rolled-back id below a printed one is never printed, and the feed
    //    goes on.
    let mut tx = slow.begin().await.unwrap();
    adjust_id(&mut tx, &sku, "WH-PAR", 5).await;
    let high3 = adjust_id(&mut fast, &other, "WH-LYO", 6).await;
    tx.rollback().await.unwrap();
    let after = adjust_id(&mut fast, &other, "WH-LYO", 7).await;
    let mut lines = collect_until(&watcher, &[high3, after].into(), Duration::from_secs(10));
    while let Some(line) = watcher.next(Duration::from_millis(3500)) {
        lines.push(line);
    }
    let ids: Vec<i64> = lines
        .iter()
        .filter_map(|l| l["movement_id"].as_i64())
        .collect();
    assert_eq!(ids, vec![high3, after], "{lines:?}");
    let mut all = Vec::new();
    all.extend([low, high, low2, high2, high3, after]);
    assert_eq!(
        ledger_ids_after(&mut admin, start).await,
        all.into_iter().collect()
    );
    slow.close().await.unwrap();
    fast.close().await.unwrap();
    drop(watcher);
    for r in ["it_adv_watcher3", "it_adv_slow", "it_adv_fast"] {
        drop_role(r).await;
    }
}

/// The message, detail and hint of a server error, as one text.
fn error_text(err: &sqlx::Error) -> String {
    let db = err.as_database_error().expect("a server error");
    let pg = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .expect("a PostgreSQL error");
    format!(
        "{} | {} | {}",
        pg.message(),
        pg.detail().unwrap_or(""),
        pg.hint().unwrap_or("")
    )
}

/// The numbers in `text` once the given names (which hold digits) are removed.
fn numbers_in(text: &str, names: &[&str]) -> BTreeSet<i64> {
    let mut t = text.to_string();
    for n in names {
        t = t.replace(n, " ");
    }
    t.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A reseller asks a warehouse for more than it can supply, after another
/// reseller reserved some of the same sku there: the refusal names the sku,
/// the warehouse and the quantity asked, and none of the figures (on hand,
/// reserved, available) of that or any other warehouse. A sales login, which
/// may read availability, still gets them.
#[tokio::test]
async fn a_partners_refused_order_shows_no_stock_figures() {
    let db = TestDb::provisioned("adv_partner").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-LYO", 4).await;
    let other_pw = db
        .add_user(
            "it_adv_res_other",
            "reseller",
            Some(("--reseller", "RES-0002")),
        )
        .await;
    let prober_pw = db
        .add_user(
            "it_adv_res_prober",
            "reseller",
            Some(("--reseller", "RES-0001")),
        )
        .await;
    let sales_pw = db.add_user("it_adv_sales", "dept_sales", None).await;
    // Another partner's reservation in the same warehouse.
    let mut other = db.login("it_adv_res_other", &other_pw).await.unwrap();
    sqlx::query(
        "SELECT api.submit_order('WH-LYO', jsonb_build_array(jsonb_build_object('sku', $1::text, 'quantity', 3)))",
    )
    .bind(&sku)
    .execute(&mut other)
    .await
    .unwrap();
    let figures: Vec<(String, i32, i32)> = sqlx::query_as(
        "SELECT w.code, l.on_hand, l.reserved FROM inventory.stock_levels l
           JOIN inventory.products p USING (product_id) JOIN inventory.warehouses w USING (warehouse_id)
          WHERE p.sku = $1",
    )
    .bind(&sku)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let (_, on_hand, reserved) = figures
        .iter()
        .find(|(w, _, _)| w == "WH-LYO")
        .cloned()
        .unwrap();
    assert!(reserved >= 3);
    let asked = on_hand - reserved + 1;
    let mut secret: BTreeSet<i64> = BTreeSet::new();
    for (_, h, r) in &figures {
        secret.extend([*h as i64, *r as i64, (*h - *r) as i64]);
    }
    secret.remove(&(asked as i64));
    let codes: Vec<String> = figures.iter().map(|(w, _, _)| w.clone()).collect();
    let mut names: Vec<&str> = codes.iter().map(String::as_str).collect();
    names.push(&sku);

    let mut prober = db.login("it_adv_res_prober", &prober_pw).await.unwrap();
    let err = sqlx::query(
        "SELECT api.submit_order('WH-LYO', jsonb_build_array(jsonb_build_object('sku', $1::text, 'quantity', $2::int)))",
    )
    .bind(&sku)
    .bind(asked)
    .execute(&mut prober)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("SO003"), "{err}");
    let text = error_text(&err);
    let leaked: Vec<i64> = numbers_in(&text, &names)
        .intersection(&secret)
        .copied()
        .collect();
    assert!(
        leaked.is_empty(),
        "the partner's error shows stock figures {leaked:?} (levels {figures:?}): {text}"
    );
    assert!(
        text.contains(&sku) && text.contains("WH-LYO") && text.contains(&asked.to_string()),
        "the partner is not told what is wrong: {text}"
    );
    assert!(!text.contains("reserved"), "{text}");

    // A department that may read availability keeps the figures.
    let mut sales = db.login("it_adv_sales", &sales_pw).await.unwrap();
    let err = sqlx::query("SELECT api.record_sale('RES-0001', $1, 'WH-LYO', $2)")
        .bind(&sku)
        .bind(asked)
        .execute(&mut sales)
        .await
        .unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains(&format!("has {}", on_hand - reserved))
            && text.contains(&reserved.to_string()),
        "{text}"
    );
    for c in [other, prober, sales] {
        c.close().await.unwrap();
    }
    for r in ["it_adv_res_other", "it_adv_res_prober", "it_adv_sales"] {
        drop_role(r).await;
    }
}

/// Every SECURITY DEFINER function of the managed schemas, with the
/// search_path it pins (None when it pins none).
async fn definers(admin: &mut PgConnection) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        r#"SELECT p.oid::regprocedure::text,
                  (SELECT substr(c, 13) FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%')
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname IN ('api', 'audit', 'inventory') AND p.prosecdef
            ORDER BY 1"#,
    )
    .fetch_all(admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_definer_function_ends_its_search_path_with_pg_temp() {
    let db = TestDb::provisioned("adv_definer").await;
    let mut admin = db.admin().await;
    let all = definers(&mut admin).await;
    assert!(all.len() > 30, "{all:?}");
    let wrong: Vec<_> = all
        .iter()
        .filter(|(_, path)| {
            path.as_deref()
                .is_none_or(|p| p.rsplit(',').next().map(str::trim) != Some("pg_temp"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "SECURITY DEFINER functions whose search_path does not end with pg_temp: {wrong:?}"
    );

    // Altered behind provision's back: --check names it, provision repairs it.
    sqlx::raw_sql(
        "ALTER FUNCTION api.stock_status(text) SET search_path = pg_temp, pg_catalog;
         ALTER FUNCTION api.my_orders() RESET search_path;",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let check = db.run(&["provision", "--check"]);
    assert_code(
        &check,
        3,
        "check with a definer function without pg_temp last",
    );
    let text = stdout(&check);
    assert!(
        text.contains("api.stock_status(text)") && text.contains("api.my_orders()"),
        "{text}"
    );
    assert_success(&db.run(&["provision"]), "provision");
    assert_code(&db.run(&["provision", "--check"]), 0, "check after repair");
    let repaired: Vec<_> = definers(&mut admin)
        .await
        .into_iter()
        .filter(|(f, _)| f == "api.stock_status(text)" || f == "api.my_orders()")
        .collect();
    assert_eq!(
        repaired,
        vec![
            (
                "api.my_orders()".to_string(),
                Some("pg_catalog, pg_temp".to_string())
            ),
            (
                "api.stock_status(text)".to_string(),
                Some("pg_catalog, pg_temp".to_string())
            ),
        ]
    );
}

/// Grants made behind provision's back that a table-level diff misses: a
/// column privilege, a declared privilege given WITH GRANT OPTION, and what a
/// holder of that option passed on.
#[tokio::test]
async fn column_privileges_and_grant_options_are_drift() {
    let db = TestDb::provisioned("adv_attacl").await;
    let mut admin = db.admin().await;
    sqlx::raw_sql(
        "GRANT SELECT (unit_cost) ON inventory.products TO dept_sales;
         GRANT UPDATE (list_price) ON inventory.products TO reseller WITH GRANT OPTION;
         GRANT SELECT ON inventory.resellers TO reseller WITH GRANT OPTION;
         GRANT EXECUTE ON FUNCTION api.stock_status(text) TO dept_stock WITH GRANT OPTION;
         SET ROLE reseller;
         GRANT SELECT ON inventory.resellers TO dept_audit;
         RESET ROLE;
         SET ROLE reseller;
         GRANT UPDATE (list_price) ON inventory.products TO dept_reporting;
         RESET ROLE;",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let check = db.run(&["provision", "--check"]);
    assert_code(&check, 3, "check with column grants and grant options");
    let text = stdout(&check);
    for needle in [
        "SELECT (unit_cost) on table inventory.products is granted to dept_sales",
        "UPDATE (list_price) on table inventory.products is granted to reseller WITH GRANT OPTION",
        "UPDATE (list_price) on table inventory.products is granted to dept_reporting",
        "SELECT on table inventory.resellers is granted to reseller WITH GRANT OPTION",
        "SELECT on table inventory.resellers is granted to dept_audit",
        "EXECUTE on function api.stock_status(text) is granted to dept_stock WITH GRANT OPTION",
    ] {
        assert!(
            text.contains(needle),
            "--check does not say {needle:?}:\n{text}"
        );
    }
    assert_success(&db.run(&["provision"]), "provision");
    assert_code(&db.run(&["provision", "--check"]), 0, "check after repair");
    let privileges: (bool, bool, bool, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT has_column_privilege('dept_sales', 'inventory.products', 'unit_cost', 'SELECT'),
                has_column_privilege('reseller', 'inventory.products', 'list_price', 'UPDATE'),
                has_column_privilege('dept_reporting', 'inventory.products', 'list_price', 'UPDATE'),
                has_table_privilege('reseller', 'inventory.resellers', 'SELECT WITH GRANT OPTION'),
                has_table_privilege('reseller', 'inventory.resellers', 'SELECT'),
                has_table_privilege('dept_audit', 'inventory.resellers', 'SELECT'),
                has_function_privilege('dept_stock', 'api.stock_status(text)', 'EXECUTE WITH GRANT OPTION')",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        privileges,
        (false, false, false, false, true, false, false),
        "(sales unit_cost, reseller list_price, reporting list_price, reseller grant option, \
         reseller select, audit select, stock execute grant option)"
    );
    let attacl: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a
          WHERE a.attrelid = 'inventory.products'::regclass AND a.attacl IS NOT NULL
            AND cardinality(a.attacl) > 0",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(attacl.is_empty(), "column ACLs left: {attacl:?}");
}

/// A login holds the watch lock exclusively, hoping to keep watchers from
/// starting or to stop the wake-ups once it lets go: the watcher starts
/// anyway, prints what is committed meanwhile, and takes the lock once free.
#[tokio::test]
async fn holding_the_watch_lock_neither_blocks_nor_silences_the_feed() {
    let db = TestDb::provisioned("adv_lock").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 5).await;
    let watch_pw = db.add_user("it_adv_watcher4", "dept_reporting", None).await;
    let holder_pw = db.add_user("it_adv_holder", "dept_stock", None).await;
    let mut holder = db.login("it_adv_holder", &holder_pw).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(stockops::business::watch::WATCH_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    let watcher = Watcher::start(&login_url(&db, "it_adv_watcher4", &watch_pw), &[]);
    let id = adjust_id(&mut holder, &sku, "WH-PAR", 1).await;
    let line = watcher
        .next(Duration::from_secs(5))
        .expect("a movement while the lock is held");
    assert_eq!(line["movement_id"], id);

    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(stockops::business::watch::WATCH_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    // The watcher tries again at its next look (every 3 s).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let t = Instant::now();
    let id = adjust_id(&mut holder, &sku, "WH-PAR", 1).await;
    let line = watcher
        .next(Duration::from_secs(5))
        .expect("a movement once the lock is free");
    assert_eq!(line["movement_id"], id);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "printed {:?} after the commit: the watcher did not take the lock back",
        t.elapsed()
    );
    holder.close().await.unwrap();
    drop(watcher);
    drop_role("it_adv_watcher4").await;
    drop_role("it_adv_holder").await;
}
