//! `stockops watch`: committed movements appear with their levels, rolled-back
//! ones never do, filters hold, and the watcher survives a server restart.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use stockops::recovery::drill::ScratchCluster;

use crate::common::*;
use crate::procedures::stocked_sku;

/// A running `stockops watch`, its JSON lines and its log lines.
pub struct Watcher {
    child: Child,
    lines: mpsc::Receiver<Value>,
    log: mpsc::Receiver<String>,
}

impl Watcher {
    pub fn start(url: &str, args: &[&str]) -> Self {
        let mut all = vec!["watch"];
        all.extend_from_slice(args);
        let mut child = command(&all, Some(url), &[("STOCKOPS_LOG".into(), "info".into())])
            .spawn()
            .expect("spawn stockops watch");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("watch printed a line that is not JSON ({e}): {line}")
                });
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let w = Self { child, lines, log };
        w.wait_log("watching stock changes", Duration::from_secs(20));
        w
    }

    pub fn wait_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("watch never logged {needle:?} within {within:?}"),
            }
        }
    }

    pub fn next(&self, within: Duration) -> Option<Value> {
        self.lines.recv_timeout(within).ok()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn adjust(conn: &mut PgConnection, sku: &str, warehouse: &str, delta: i32) {
    sqlx::query("SELECT api.adjust_stock($1, $2, $3, 'watch test')")
        .bind(sku)
        .bind(warehouse)
        .bind(delta)
        .execute(conn)
        .await
        .unwrap();
}

async fn level(conn: &mut PgConnection, sku: &str, warehouse: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT l.on_hand::bigint FROM inventory.stock_levels l
           JOIN inventory.products p USING (product_id) JOIN inventory.warehouses w USING (warehouse_id)
          WHERE p.sku = $1 AND w.code = $2",
    )
    .bind(sku)
    .bind(warehouse)
    .fetch_one(conn)
    .await
    .unwrap()
}

pub fn login_url(db: &TestDb, user: &str, password: &str) -> String {
    let host = std::env::var("STOCKOPS_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("STOCKOPS_TEST_PG_PORT").unwrap();
    format!("postgres://{user}:{password}@{host}:{port}/{}", db.name)
}

#[tokio::test]
async fn watch_prints_committed_movements_with_their_levels_and_never_rolled_back_ones() {
    let db = TestDb::provisioned("watch").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 5).await;
    let (other, _) = stocked_sku(&mut admin, "WH-LYO", 5).await;
    let watcher_pw = db
        .add_user("it_watch_reporting", "dept_reporting", None)
        .await;
    let stock_pw = db.add_user("it_watch_stock", "dept_stock", None).await;
    let mut clerk = db.login("it_watch_stock", &stock_pw).await.unwrap();

    let all = Watcher::start(&login_url(&db, "it_watch_reporting", &watcher_pw), &[]);
    let only = Watcher::start(
        &login_url(&db, "it_watch_reporting", &watcher_pw),
        &["--warehouse", "WH-PAR", "--sku", &sku],
    );

    // Rolled back: never printed.
    let before = level(&mut admin, &sku, "WH-PAR").await;
    let mut tx = clerk.begin().await.unwrap();
    adjust(&mut tx, &sku, "WH-PAR", 7).await;
    tx.rollback().await.unwrap();
    // Committed: printed, with the level before and after.
    let t = Instant::now();
    adjust(&mut clerk, &sku, "WH-PAR", -2).await;
    let line = all
        .next(Duration::from_secs(5))
        .expect("the committed change");
    let latency = t.elapsed();
    assert_eq!(line["sku"], sku.as_str(), "{line}");
    assert_eq!(line["warehouse"], "WH-PAR");
    assert_eq!(line["kind"], "adjustment");
    assert_eq!(line["quantity"], -2);
    assert_eq!(line["old_level"], before, "{line}");
    assert_eq!(line["new_level"], before - 2, "{line}");
    assert_eq!(line["actor"], "it_watch_stock");
    assert!(
        latency < Duration::from_secs(1),
        "printed {latency:?} after the commit"
    );
    // Another warehouse and SKU: the filtered watcher does not print it.
    let lyo = level(&mut admin, &other, "WH-LYO").await;
    adjust(&mut clerk, &other, "WH-LYO", 3).await;
    let line = all.next(Duration::from_secs(5)).expect("the second change");
    assert_eq!(line["sku"], other.as_str());
    assert_eq!(line["old_level"], lyo);
    assert_eq!(line["new_level"], lyo + 3);
    let mine = only
        .next(Duration::from_secs(5))
        .expect("the filtered change");
    assert_eq!(mine["sku"], sku.as_str());
    assert_eq!(mine["quantity"], -2);
    assert!(
        only.next(Duration::from_millis(500)).is_none(),
        "the filtered watcher printed a change of another warehouse or SKU"
    );
    assert!(
        all.next(Duration::from_millis(500)).is_none(),
        "the rolled-back change was printed"
    );

    // The notification carries ids only; a reseller gets nothing from the api.
    let reseller_pw = db
        .add_user(
            "it_watch_reseller",
            "reseller",
            Some(("--reseller", "RES-0001")),
        )
        .await;
    let mut reseller = db.login("it_watch_reseller", &reseller_pw).await.unwrap();
    let err = sqlx::query("SELECT * FROM api.stock_changes(p_after => 0)")
        .fetch_all(&mut reseller)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42501"), "{err}");
    drop_role("it_watch_reseller").await;
    drop(all);
    drop(only);
    clerk.close().await.unwrap();
    drop_role("it_watch_stock").await;
    drop_role("it_watch_reporting").await;
}

#[tokio::test]
async fn watch_reconnects_after_a_server_restart_and_catches_up() {
    let cluster = ScratchCluster::start(15, false).expect("scratch cluster");
    let url = |user: &str, db: &str| {
        format!(
            "postgres://{user}@localhost:{}/{db}?host={}",
            cluster.port,
            cluster.dir.display()
        )
    };
    let mut admin = connect(&url("postgres", "postgres")).await;
    sqlx::raw_sql("CREATE DATABASE inventory")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let admin_url = url("postgres", "inventory");
    assert_success(
        &stockops(&["provision"], Some(&admin_url), None),
        "provision",
    );
    assert_success(
        &stockops(
            &["seed", "--scale", "0.02", "--as-of", "2026-01-01"],
            Some(&admin_url),
            None,
        ),
        "seed",
    );
    assert_success(
        &stockops(
            &[
                "users",
                "add",
                "watcher",
                "--role",
                "dept_stock",
                "--password-stdin",
            ],
            Some(&admin_url),
            Some("watcher-password-0123456789\n"),
        ),
        "users add",
    );
    let mut conn = connect(&admin_url).await;
    let (sku, _) = stocked_sku(&mut conn, "WH-PAR", 5).await;
    // Only the cluster's OS user logs in by peer: the watcher by password.
    let watcher = Watcher::start(
        &url("watcher:watcher-password-0123456789", "inventory"),
        &[],
    );
    adjust(&mut conn, &sku, "WH-PAR", 1).await;
    assert_eq!(
        watcher
            .next(Duration::from_secs(5))
            .expect("before the restart")["quantity"],
        1
    );
    conn.close().await.unwrap();

    // Restart (fast shutdown ends every session), then commit a change at
    // once: the watcher may not be back yet, it must catch up.
    let data = cluster.dir.join("data");
    let out = std::process::Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            "/usr/lib/postgresql/15/bin/pg_ctl",
            "-D",
        ])
        .arg(&data)
        .arg("-l")
        .arg(cluster.dir.join("log"))
        .args(["-m", "fast", "-w", "-t", "60", "restart"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = connect(&admin_url).await;
    adjust(&mut conn, &sku, "WH-PAR", 2).await;
    watcher.wait_log("lost the connection to the server", Duration::from_secs(10));
    watcher.wait_log("reconnected to the server", Duration::from_secs(20));
    let line = watcher
        .next(Duration::from_secs(10))
        .expect("the change committed across the restart");
    assert_eq!(line["quantity"], 2, "{line}");
    // And live again afterwards.
    adjust(&mut conn, &sku, "WH-PAR", 3).await;
    let line = watcher
        .next(Duration::from_secs(5))
        .expect("after the restart");
    assert_eq!(line["quantity"], 3, "{line}");
    assert!(
        watcher.next(Duration::from_millis(300)).is_none(),
        "a change printed twice"
    );
    conn.close().await.unwrap();
}

/// The ledger notifies only while a watcher is connected (a notifying commit
/// takes a cluster-wide lock), and its payload is empty: a wake-up, nothing a
/// partner listening on the channel could learn from.
#[tokio::test]
async fn the_ledger_notifies_an_empty_wake_up_and_only_while_someone_watches() {
    let db = TestDb::provisioned("watch_gate").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let mut admin = db.admin().await;
    let (sku, _) = stocked_sku(&mut admin, "WH-PAR", 5).await;
    let mut eavesdropper = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    eavesdropper
        .listen(stockops::business::watch::CHANNEL)
        .await
        .unwrap();
    let quiet =
        async { tokio::time::timeout(Duration::from_millis(700), eavesdropper.recv()).await };
    adjust(&mut admin, &sku, "WH-PAR", 1).await;
    assert!(
        quiet.await.is_err(),
        "a notification was sent with no watcher connected"
    );

    let pw = db.add_user("it_watch_gate", "dept_stock", None).await;
    let watcher = Watcher::start(&login_url(&db, "it_watch_gate", &pw), &[]);
    adjust(&mut admin, &sku, "WH-PAR", 1).await;
    let n = tokio::time::timeout(Duration::from_secs(5), eavesdropper.recv())
        .await
        .expect("a notification while a watcher is connected")
        .unwrap();
    assert_eq!(n.payload(), "", "the wake-up carries nothing");
    assert_eq!(
        watcher
            .next(Duration::from_secs(5))
            .expect("the watcher's line")["sku"],
        sku.as_str()
    );
    drop(watcher);
    drop_role("it_watch_gate").await;
}
