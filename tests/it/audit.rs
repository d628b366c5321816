//! The audit log under concurrency and under attack.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::common::*;
use crate::procedures::{stocked_sku, Shop};

async fn sales_calls(shop: &Shop, n: usize) {
    let mut admin = shop.db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", n as i32).await;
    let mut sales = shop.as_group("dept_sales").await;
    for _ in 0..n {
        sqlx::query("SELECT api.record_sale('RES-0001', $1, 'WH-PAR', 1)")
            .bind(&sku)
            .execute(&mut sales)
            .await
            .unwrap();
    }
}

fn verify(shop: &Shop, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    stockops(&args, Some(&shop.url_for("dept_audit")), None)
}

/// The head `audit verify --json` reports.
fn head(shop: &Shop) -> String {
    let out = verify(shop, &["--json"]);
    assert_success(&out, "audit verify");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["head"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tampering_is_named() {
    let shop = Shop::new("tamper").await;
    sales_calls(&shop, 10).await;
    let first_head = head(&shop);
    sales_calls(&shop, 10).await;
    let full_head = head(&shop);
    assert!(
        first_head.starts_with("10:") && full_head.starts_with("20:"),
        "{first_head} {full_head}"
    );
    let mut admin = shop.db.admin().await;
    sqlx::raw_sql("SET session_replication_role = replica")
        .execute(&mut admin)
        .await
        .unwrap();

    // 1. One record altered.
    sqlx::raw_sql("UPDATE audit.events SET arguments = jsonb_set(arguments, '{p_quantity}', '100') WHERE event_id = 5")
        .execute(&mut admin)
        .await
        .unwrap();
    let out = verify(&shop, &[]);
    assert_code(&out, 1, "verify after an update");
    assert!(
        stderr(&out).contains("event 5 (position 5)") && stderr(&out).contains("altered"),
        "{}",
        stderr(&out)
    );
    sqlx::raw_sql("UPDATE audit.events SET arguments = jsonb_set(arguments, '{p_quantity}', '1') WHERE event_id = 5")
        .execute(&mut admin)
        .await
        .unwrap();
    assert_success(&verify(&shop, &[]), "verify after undoing the update");

    // 2. One record deleted.
    sqlx::raw_sql("CREATE TEMP TABLE saved AS SELECT * FROM audit.events WHERE event_id = 7; DELETE FROM audit.events WHERE event_id = 7")
        .execute(&mut admin)
        .await
        .unwrap();
    let out = verify(&shop, &[]);
    assert_code(&out, 1, "verify after a delete");
    assert!(
        stderr(&out).contains("event 7 (position 7) was sealed and is gone"),
        "{}",
        stderr(&out)
    );
    sqlx::raw_sql("INSERT INTO audit.events OVERRIDING SYSTEM VALUE SELECT * FROM saved")
        .execute(&mut admin)
        .await
        .unwrap();
    assert_success(&verify(&shop, &[]), "verify after restoring the row");

    // 3. The tail cut off, seals and state made consistent: only the head
    //    recorded earlier tells.
    sqlx::raw_sql(
        "DELETE FROM audit.events WHERE event_id > 10;
         DELETE FROM audit.seals WHERE first_position > 10;
         UPDATE audit.seal_state SET sealed_through = 10, position = 10, horizon_id = 10,
                head = (SELECT head FROM audit.seals ORDER BY first_position DESC LIMIT 1);",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    assert_success(
        &verify(&shop, &["--no-seal", "--expect-head", &first_head]),
        "the older head is still there",
    );
    let out = verify(&shop, &["--no-seal", "--expect-head", &full_head]);
    assert_code(&out, 1, "verify with the newer head");
    let err = stderr(&out);
    assert!(
        err.contains("position 20, is missing") && err.contains("ends at position 10"),
        "{err}"
    );

    // 4. A head that does not match its position.
    let forged = format!("10:{}", "0".repeat(64));
    let out = verify(&shop, &["--no-seal", "--expect-head", &forged]);
    assert_code(&out, 1, "verify with a forged head");
    assert!(stderr(&out).contains("rewritten"), "{}", stderr(&out));
}

#[tokio::test]
async fn concurrent_sales_and_receipts_keep_every_invariant() {
    let seconds: u64 = std::env::var("STOCKOPS_TEST_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let shop = Shop::new("concurrency").await;
    let mut admin = shop.db.admin().await;
    let skus: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM inventory.products ORDER BY sku LIMIT 3")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit.events")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..32u64 {
        let group = if client % 2 == 0 {
            "dept_sales"
        } else {
            "dept_stock"
        };
        let mut conn = shop.as_group(group).await;
        let (skus, ok, refused) = (skus.clone(), ok.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(client);
            while Instant::now() < deadline {
                let sku = &skus[rng.gen_range(0..skus.len())];
                let (a, b) = if rng.gen_bool(0.5) {
                    ("WH-PAR", "WH-LYO")
                } else {
                    ("WH-LYO", "WH-PAR")
                };
                let q: i32 = rng.gen_range(1..=3);
                let result = if group == "dept_sales" {
                    sqlx::query("SELECT api.record_sale('RES-0001', $1, $2, $3)")
                        .bind(sku)
                        .bind(a)
                        .bind(q)
                        .execute(&mut conn)
                        .await
                } else {
                    match rng.gen_range(0..10) {
                        0..=5 => {
                            sqlx::query("SELECT api.receive_stock($1, $2, $3)")
                                .bind(sku)
                                .bind(a)
                                .bind(q)
                                .execute(&mut conn)
                                .await
                        }
                        6..=8 => {
                            sqlx::query("SELECT api.transfer_stock($1, $2, $3, $4)")
                                .bind(sku)
                                .bind(a)
                                .bind(b)
                                .bind(q)
                                .execute(&mut conn)
                                .await
                        }
                        _ => {
                            sqlx::query("SELECT api.adjust_stock($1, $2, -1, 'breakage')")
                                .bind(sku)
                                .bind(a)
                                .execute(&mut conn)
                                .await
                        }
                    }
                };
                match result {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) if sqlstate(&e).as_deref() == Some("SO003") => {
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => return Err(format!("client {client}: {e} ({:?})", sqlstate(&e))),
                };
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no call may fail except for insufficient stock (no deadlock, no error)");
    }
    let ok = ok.load(Ordering::Relaxed) as i64;
    assert!(ok > 200, "only {ok} successful calls");
    eprintln!(
        "{ok} calls succeeded, {} refused for insufficient stock",
        refused.load(Ordering::Relaxed)
    );

    let mismatches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory.stock_levels l
           FULL JOIN (SELECT product_id, warehouse_id, sum(quantity) AS total FROM inventory.stock_movements GROUP BY 1, 2) m
             USING (product_id, warehouse_id)
          WHERE l.on_hand IS DISTINCT FROM m.total OR l.on_hand < 0",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(mismatches, 0);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM audit.events")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        events - events_before,
        ok,
        "one audit record per successful call, none for the refused"
    );
    let out = stockops(
        &["audit", "verify", "--json"],
        Some(&shop.url_for("dept_audit")),
        None,
    );
    assert_success(&out, "audit verify");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["chained"].as_i64().unwrap() + v["unsealed"].as_i64().unwrap(),
        events
    );
}
