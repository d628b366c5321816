//! Throughput measurements, each printed beside its baseline measured in the
//! same run. They run in a scratch database of their own, created, provisioned
//! and seeded for the purpose and dropped afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::business::seed::{self, SeedOptions};
use crate::db::ident;
use crate::db::provision::{self, Declaration, Mode};
use crate::db::scram::Secret;
use crate::db::users::{self, NewUser};

/// One line of the procedures benchmark.
#[derive(Debug, Serialize)]
pub struct ProcedureBench {
    pub clients: usize,
    /// The same api.record_sale transaction without its audit record.
    pub baseline_calls_per_s: f64,
    /// `api.record_sale`: the sale and its audit record, sealed into the chain.
    pub audited_calls_per_s: f64,
    pub ratio: f64,
}

const BASELINE: &str = "SELECT stockops_bench.record_sale_unaudited('RES-0001', $1, 'WH-PAR', 1)";

/// api.record_sale exactly, but for its audit.record call: created in the
/// scratch database only, owned by the same owner, same pinned search_path.
const BASELINE_FUNCTION: &str = r#"
CREATE SCHEMA stockops_bench;
CREATE FUNCTION stockops_bench.record_sale_unaudited(p_reseller text, p_sku text, p_warehouse text,
                                                     p_quantity integer, p_unit_price numeric DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    v_id bigint := inventory.sell(p_reseller, p_sku, p_warehouse, p_quantity, p_unit_price);
BEGIN
    RETURN v_id;
END
$$;
ALTER FUNCTION stockops_bench.record_sale_unaudited(text, text, text, integer, numeric) OWNER TO inventory_owner;
GRANT USAGE ON SCHEMA stockops_bench TO dept_sales;
GRANT EXECUTE ON FUNCTION stockops_bench.record_sale_unaudited(text, text, text, integer, numeric) TO dept_sales;
"#;
const AUDITED: &str = "SELECT api.record_sale('RES-0001', $1, 'WH-PAR', 1)";

/// Audited `api.record_sale` against the unaudited sale, at each client count.
pub async fn procedures(
    admin: &PgConnectOptions,
    clients: &[usize],
    seconds: u64,
    keep: bool,
) -> anyhow::Result<Vec<ProcedureBench>> {
    let scratch = Scratch::create(admin, format!("stockops_bench_{}", std::process::id())).await?;
    let result = run_procedures(&scratch.opts, &scratch.name, clients, seconds).await;
    scratch.finish(result, keep).await
}

async fn run_procedures(
    opts: &PgConnectOptions,
    login: &str,
    clients: &[usize],
    seconds: u64,
) -> anyhow::Result<Vec<ProcedureBench>> {
    let mut conn = connect(opts).await?;
    let decl = Declaration::embedded()?;
    provision::run(&mut conn, &decl, Mode::Apply).await?;
    let as_of = chrono::Utc::now().date_naive();
    seed::run(
        &mut conn,
        &SeedOptions {
            scale: 0.1,
            rng_seed: 1,
            as_of,
        },
    )
    .await?;
    sqlx::raw_sql(BASELINE_FUNCTION).execute(&mut conn).await?;
    // The calls run as a sales department login, as in production.
    let password = Secret::generate();
    let user = NewUser {
        name: login,
        group: "dept_sales",
        reseller: None,
        supplier: None,
    };
    users::add(&mut conn, &decl, &user, &password).await?;
    let opts = &opts.clone().username(login).password(password.expose());
    // One SKU per client, stocked for the whole run: the bench measures the
    // audit's cost, not contention on one row.
    let most = clients.iter().copied().max().unwrap_or(1);
    let skus: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM inventory.products ORDER BY sku LIMIT $1")
            .bind(most as i64)
            .fetch_all(&mut conn)
            .await?;
    for sku in &skus {
        sqlx::query("SELECT api.adjust_stock($1, 'WH-PAR', 100000000, 'benchmark stock')")
            .bind(sku)
            .execute(&mut conn)
            .await?;
    }
    let window = Duration::from_secs(seconds);
    // Warm both paths up (plans, caches) before measuring.
    measure(opts, BASELINE, &skus, most, Duration::from_secs(1)).await?;
    measure(opts, AUDITED, &skus, most, Duration::from_secs(1)).await?;
    let mut out = Vec::new();
    for &c in clients {
        let baseline = measure(opts, BASELINE, &skus, c, window).await?;
        let audited = measure(opts, AUDITED, &skus, c, window).await?;
        tracing::info!(clients = c, baseline, audited, "measured");
        out.push(ProcedureBench {
            clients: c,
            baseline_calls_per_s: baseline,
            audited_calls_per_s: audited,
            ratio: audited / baseline,
        });
    }
    Ok(out)
}

/// Calls per second of `sql` from `clients` connections during `window`.
async fn measure(
    opts: &PgConnectOptions,
    sql: &'static str,
    skus: &[String],
    clients: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(connect(opts).await?);
    }
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let sku = skus[i % skus.len()].clone();
        let (calls, stop) = (calls.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                sqlx::query(sql).bind(&sku).execute(&mut conn).await?;
                calls.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(calls.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// A scratch database a benchmark runs in, and the login of the same name
/// some benchmarks add: both dropped by [`Scratch::finish`] unless kept.
struct Scratch {
    admin: PgConnection,
    name: String,
    opts: PgConnectOptions,
}

impl Scratch {
    async fn create(admin: &PgConnectOptions, name: String) -> anyhow::Result<Self> {
        let mut conn = connect(admin).await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {}", ident(&name)))
            .execute(&mut conn)
            .await
            .context("creating the scratch database (the bench needs CREATEDB)")?;
        let opts = admin.clone().database(&name);
        Ok(Self {
            admin: conn,
            name,
            opts,
        })
    }

    /// Drop the database and its login (unless `keep`), then hand `result` on.
    async fn finish<T>(mut self, result: anyhow::Result<T>, keep: bool) -> anyhow::Result<T> {
        if keep {
            tracing::info!(database = %self.name, login = %self.name, "kept the scratch database and its login");
            return result;
        }
        sqlx::raw_sql(&format!("DROP DATABASE {} WITH (FORCE)", ident(&self.name)))
            .execute(&mut self.admin)
            .await?;
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {}", ident(&self.name)))
            .execute(&mut self.admin)
            .await?;
        result
    }
}

async fn connect(opts: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    Ok(PgConnection::connect_with(&opts.clone().disable_statement_logging()).await?)
}

// Import ------------------------------------------------------------------

/// The import benchmark: `import orders` of generated lines against `COPY`
/// of the same clean rows into the same tables, in the same run.
#[derive(Debug, Serialize)]
pub struct ImportBench {
    pub rows: u64,
    pub orders: u64,
    pub batch_size: usize,
    /// `import orders`, end to end: read, check, api calls, reservations, audit, commit.
    pub import_seconds: f64,
    /// `COPY` of the orders and their lines, in one transaction.
    pub copy_seconds: f64,
    pub import_rows_per_s: f64,
    pub copy_rows_per_s: f64,
    pub ratio: f64,
}

/// Generate `rows` order lines, then time the import (as an etl login) in one
/// scratch database and `COPY` of the same rows in its twin.
pub async fn import(
    admin: &PgConnectOptions,
    rows: u64,
    batch_size: usize,
    keep: bool,
) -> anyhow::Result<ImportBench> {
    let pid = std::process::id();
    let (db_import, db_copy, login) = (
        format!("stockops_bench_import_{pid}"),
        format!("stockops_bench_copy_{pid}"),
        format!("stockops_bench_etl_{pid}"),
    );
    // A new private directory: never one someone planted at a name they
    // could guess from the pid (mkdir fails on anything already there).
    let dir = std::env::temp_dir().join(format!(
        "stockops-bench-import-{pid}-{:016x}",
        rand::random::<u64>()
    ));
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut conn = connect(admin).await?;
    for db in [&db_import, &db_copy] {
        sqlx::raw_sql(&format!("CREATE DATABASE {}", ident(db)))
            .execute(&mut conn)
            .await
            .context("creating the scratch databases (the bench needs CREATEDB)")?;
    }
    let result = run_import(admin, &db_import, &db_copy, &login, &dir, rows, batch_size).await;
    if keep {
        tracing::info!(%db_import, %db_copy, %login, dir = %dir.display(), "kept the scratch databases, login and files");
    } else {
        for db in [&db_import, &db_copy] {
            sqlx::raw_sql(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                ident(db)
            ))
            .execute(&mut conn)
            .await?;
        }
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {}", ident(&login)))
            .execute(&mut conn)
            .await?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_import(
    admin: &PgConnectOptions,
    db_import: &str,
    db_copy: &str,
    login: &str,
    dir: &std::path::Path,
    rows: u64,
    batch_size: usize,
) -> anyhow::Result<ImportBench> {
    // 1. Both databases alike: provisioned, seeded, stocked for every line.
    let decl = Declaration::embedded()?;
    let mut dbs = Vec::new();
    for db in [db_import, db_copy] {
        let mut conn = connect(&admin.clone().database(db)).await?;
        provision::run(&mut conn, &decl, Mode::Apply).await?;
        let opts = SeedOptions {
            scale: 0.05,
            rng_seed: 1,
            as_of: NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid"),
        };
        seed::run(&mut conn, &opts).await?;
        sqlx::raw_sql(
            "INSERT INTO inventory.stock_movements (product_id, warehouse_id, kind, quantity, reason)
             SELECT p.product_id, w.warehouse_id, 'adjustment', 100000000, 'benchmark stock'
               FROM inventory.products p CROSS JOIN inventory.warehouses w;
             ANALYZE",
        )
        .execute(&mut conn)
        .await?;
        dbs.push(conn);
    }
    let password = Secret::generate();
    let user = NewUser {
        name: login,
        group: "etl",
        reseller: None,
        supplier: None,
    };
    users::add(&mut dbs[0], &decl, &user, &password).await?;

    // 2. The same lines twice: an order file, and COPY data for the twin.
    let csv_path = dir.join("orders.csv");
    let (orders_copy, lines_copy) = (dir.join("orders.copy"), dir.join("lines.copy"));
    let orders = generate_import(&mut dbs[1], rows, &csv_path, &orders_copy, &lines_copy).await?;

    // 3. The import, as an etl login, as in production.
    let mut etl = connect(
        &admin
            .clone()
            .database(db_import)
            .username(login)
            .password(password.expose()),
    )
    .await?;
    let opts = crate::business::etl::ImportOptions {
        source: "orders.csv".into(),
        reseller: None,
        warehouse: None,
        strict: true,
        batch_size,
        rejects_path: dir.join("orders.csv.rejects.csv"),
        latest_date: NaiveDate::from_ymd_opt(2026, 1, 1).expect("valid"),
    };
    let started = Instant::now();
    let summary = crate::business::etl::import_orders(&mut etl, &csv_path, &opts).await?;
    let import_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary.committed && summary.loaded == rows,
        "the generated lines did not all load: {summary:?}"
    );

    // 4. COPY of the same clean rows into the same tables.
    let copy = &mut dbs[1];
    let started = Instant::now();
    let mut tx = copy.begin().await?;
    copy_file(&mut tx, "COPY inventory.sales_orders (sales_order_id, order_number, reseller_id, warehouse_id, ordered_at, status, source, external_ref) FROM STDIN", &orders_copy).await?;
    copy_file(&mut tx, "COPY inventory.sales_order_lines (sales_order_id, line_no, product_id, quantity, unit_price) FROM STDIN", &lines_copy).await?;
    tx.commit().await?;
    let copy_seconds = started.elapsed().as_secs_f64();
    Ok(ImportBench {
        rows,
        orders,
        batch_size,
        import_seconds,
        copy_seconds,
        import_rows_per_s: rows as f64 / import_seconds,
        copy_rows_per_s: rows as f64 / copy_seconds,
        ratio: import_seconds / copy_seconds,
    })
}

async fn copy_file(
    conn: &mut PgConnection,
    statement: &str,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::Read;
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Write `rows` order lines as a field-style order file (semicolons, French
/// headers, decimal commas, DD/MM/YYYY) and as COPY data; returns the order count.
async fn generate_import(
    conn: &mut PgConnection,
    rows: u64,
    csv_path: &std::path::Path,
    orders_path: &std::path::Path,
    lines_path: &std::path::Path,
) -> anyhow::Result<u64> {
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    // The warehouse serving each reseller, as api.import_order_lines picks it.
    let resellers: Vec<(String, i32, Option<i16>)> = sqlx::query_as(
        "SELECT r.code, r.reseller_id,
                coalesce((SELECT w.warehouse_id FROM inventory.warehouses w WHERE w.region_id = r.region_id AND w.active ORDER BY w.code LIMIT 1),
                         (SELECT so.warehouse_id FROM inventory.sales_orders so WHERE so.reseller_id = r.reseller_id ORDER BY so.ordered_at DESC LIMIT 1))
           FROM inventory.resellers r WHERE r.active ORDER BY r.code",
    )
    .fetch_all(&mut *conn)
    .await?;
    let resellers: Vec<(String, i32, i16)> = resellers
        .into_iter()
        .filter_map(|(code, id, wh)| Some((code, id, wh?)))
        .collect();
    let products: Vec<(String, i32)> =
        sqlx::query_as("SELECT sku, product_id FROM inventory.products ORDER BY sku")
            .fetch_all(&mut *conn)
            .await?;
    let first_id: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(sales_order_id), 0) + 1000000 FROM inventory.sales_orders",
    )
    .fetch_one(&mut *conn)
    .await?;
    anyhow::ensure!(
        !resellers.is_empty() && products.len() >= 10,
        "the seed gave too few resellers or products"
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut csv = std::io::BufWriter::new(std::fs::File::create(csv_path)?);
    let mut orders = std::io::BufWriter::new(std::fs::File::create(orders_path)?);
    let mut lines = std::io::BufWriter::new(std::fs::File::create(lines_path)?);
    writeln!(
        csv,
        "Réf commande;Date commande;Revendeur;Réf produit;Quantité;Prix unitaire"
    )?;
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid");
    let (mut written, mut n) = (0u64, 0u64);
    while written < rows {
        let id = first_id + n as i64;
        let order_ref = format!("BENCH-{n:08}");
        let (code, reseller_id, warehouse_id) = &resellers[rng.gen_range(0..resellers.len())];
        let date = start + chrono::Days::new(rng.gen_range(0..365));
        writeln!(
            orders,
            "{id}\tSO-BENCH-{n:08}\t{reseller_id}\t{warehouse_id}\t{date} 00:00:00+00\tsubmitted\timport\t{order_ref}"
        )?;
        let k = (rng.gen_range(1..=9) as u64).min(rows - written) as usize;
        let first = rng.gen_range(0..products.len());
        let stride = 1 + rng.gen_range(0..products.len() / k.max(1));
        for line_no in 1..=k {
            let (sku, product_id) = &products[(first + (line_no - 1) * stride) % products.len()];
            let qty = rng.gen_range(1..=5);
            let cents: i64 = rng.gen_range(1000..100000);
            writeln!(
                csv,
                "{order_ref};{};{code};{sku};{qty};{},{:02}",
                date.format("%d/%m/%Y"),
                cents / 100,
                cents % 100
            )?;
            writeln!(
                lines,
                "{id}\t{line_no}\t{product_id}\t{qty}\t{}.{:02}",
                cents / 100,
                cents % 100
            )?;
        }
        written += k as u64;
        n += 1;
    }
    for w in [&mut csv, &mut orders, &mut lines] {
        w.flush()?;
    }
    Ok(n)
}

// Watch -------------------------------------------------------------------

/// Latency from a committing call to its line, for `stockops watch` and for
/// a bare NOTIFY on the same server, in the same run.
#[derive(Debug, Serialize)]
pub struct WatchBench {
    pub changes: usize,
    /// Bare `pg_notify` in an autocommit statement, to a LISTENing connection.
    pub notify_p50_ms: f64,
    pub notify_p99_ms: f64,
    pub notify_max_ms: f64,
    /// `api.adjust_stock` to the JSON line `stockops watch` prints.
    pub watch_p50_ms: f64,
    pub watch_p99_ms: f64,
    pub watch_max_ms: f64,
    pub p99_ratio: f64,
}

/// Timestamps each printed change: (movement id, when its line was ready).
struct Timed(tokio::sync::mpsc::UnboundedSender<(i64, Instant)>);

impl crate::business::watch::Sink for Timed {
    fn emit(&mut self, event: crate::business::watch::Event) -> std::io::Result<()> {
        let line = serde_json::to_string(&event)?;
        let crate::business::watch::Event::Change(c) = event;
        let _ = self.0.send((c.movement_id, Instant::now()));
        std::hint::black_box(line);
        Ok(())
    }
}

/// `changes` committed stock adjustments, one every `gap`, each timed from
/// the moment the call is sent to the moment its line is ready; then the
/// same count of bare notifications.
pub async fn watch(
    admin: &PgConnectOptions,
    changes: usize,
    gap: Duration,
    keep: bool,
) -> anyhow::Result<WatchBench> {
    let scratch = Scratch::create(
        admin,
        format!("stockops_bench_watch_{}", std::process::id()),
    )
    .await?;
    let result = run_watch(&scratch.opts, &scratch.name, changes, gap).await;
    scratch.finish(result, keep).await
}

async fn run_watch(
    opts: &PgConnectOptions,
    login: &str,
    changes: usize,
    gap: Duration,
) -> anyhow::Result<WatchBench> {
    let mut conn = connect(opts).await?;
    let decl = Declaration::embedded()?;
    provision::run(&mut conn, &decl, Mode::Apply).await?;
    seed::run(
        &mut conn,
        &SeedOptions {
            scale: 0.02,
            rng_seed: 1,
            as_of: chrono::Utc::now().date_naive(),
        },
    )
    .await?;
    let password = Secret::generate();
    let user = NewUser {
        name: login,
        group: "dept_stock",
        reseller: None,
        supplier: None,
    };
    users::add(&mut conn, &decl, &user, &password).await?;
    let sku: String = sqlx::query_scalar("SELECT sku FROM inventory.products ORDER BY sku LIMIT 1")
        .fetch_one(&mut conn)
        .await?;
    sqlx::query("SELECT api.adjust_stock($1, 'WH-PAR', 1000000, 'benchmark stock')")
        .bind(&sku)
        .execute(&mut conn)
        .await?;
    let opts = opts.clone().username(login).password(password.expose());

    // stockops watch, in process, as the same kind of login.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watch_opts = opts.clone();
    let watcher = tokio::spawn(async move {
        crate::business::watch::run(
            &watch_opts,
            &crate::business::watch::Filter::default(),
            &mut Timed(tx),
            Some(ready_tx),
        )
        .await
    });
    ready_rx.await.context("the watcher did not start")?;
    let mut writer = connect(&opts).await?;
    let mut sent = std::collections::HashMap::new();
    for i in 0..changes {
        let delta = if i % 2 == 0 { -1 } else { 1 };
        let t0 = Instant::now();
        let id: i64 =
            sqlx::query_scalar("SELECT api.adjust_stock($1, 'WH-PAR', $2, 'watch benchmark')")
                .bind(&sku)
                .bind(delta)
                .fetch_one(&mut writer)
                .await?;
        sent.insert(id, t0);
        tokio::time::sleep(gap).await;
    }
    let mut watch_ms = Vec::with_capacity(changes);
    while watch_ms.len() < changes {
        let (id, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("the watcher fell silent")?
            .context("the watcher stopped")?;
        if let Some(t0) = sent.get(&id) {
            watch_ms.push(at.duration_since(*t0).as_secs_f64() * 1000.0);
        }
    }
    watcher.abort();

    // Baseline: a bare notification, same connections, same pace.
    let mut listener = sqlx::postgres::PgListener::connect_with(
        &sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(opts.clone()),
    )
    .await?;
    listener.listen("stockops_bench").await?;
    let mut notify_ms = Vec::with_capacity(changes);
    for i in 0..changes {
        let t0 = Instant::now();
        sqlx::query("SELECT pg_notify('stockops_bench', $1)")
            .bind(i.to_string())
            .execute(&mut writer)
            .await?;
        let n = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .context("a bare notification never came")??;
        if n.payload() == i.to_string() {
            notify_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(gap).await;
    }
    let (n50, n99, nmax) = percentiles(&mut notify_ms);
    let (w50, w99, wmax) = percentiles(&mut watch_ms);
    Ok(WatchBench {
        changes,
        notify_p50_ms: n50,
        notify_p99_ms: n99,
        notify_max_ms: nmax,
        watch_p50_ms: w50,
        watch_p99_ms: w99,
        watch_max_ms: wmax,
        p99_ratio: w99 / n99,
    })
}

/// p50, p99 and max of `v` (sorted in place).
fn percentiles(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.50), at(0.99), v[v.len() - 1])
}

// Forecast ----------------------------------------------------------------

/// The forecast benchmark: the last weeks of a seeded year held out and
/// forecast from the weeks before them, by the demand forecast
/// (`inventory.forecast_daily`, what `api.demand_forecast` sums) and by a
/// naive forecast (each held-out day sells what the same weekday sold in the
/// last week before the hold-out), scored on the same product × warehouse ×
/// day points.
#[derive(Debug, Serialize)]
pub struct ForecastBench {
    pub scale: f64,
    pub history_weeks: i32,
    pub holdout_weeks: i32,
    pub holdout_from: NaiveDate,
    /// The day after the last held-out day.
    pub holdout_to: NaiveDate,
    /// Product × warehouse pairs with a sale in the history or the hold-out.
    pub series: i64,
    /// Pairs × held-out days.
    pub points: i64,
    /// Mean units actually sold per point.
    pub actual_mean: f64,
    /// Mean absolute error per point, units.
    pub forecast_mae: f64,
    pub naive_mae: f64,
    /// forecast_mae / naive_mae: below 1, the forecast is the better one.
    pub ratio: f64,
    /// Forecast units over actual units in the hold-out, minus 1.
    pub forecast_bias: f64,
    pub naive_bias: f64,
}

const FORECAST_SCORE: &str = r#"
WITH sold AS MATERIALIZED (
    SELECT l.product_id, o.warehouse_id, (o.ordered_at AT TIME ZONE 'UTC')::date AS day,
           sum(l.quantity)::numeric AS units
      FROM inventory.sales_orders o
      JOIN inventory.sales_order_lines l USING (sales_order_id)
     WHERE o.status = 'fulfilled'
       AND o.ordered_at >= ($1::date - 7 * $2)::timestamp AT TIME ZONE 'UTC'
       AND o.ordered_at < ($1::date + 7 * $3)::timestamp AT TIME ZONE 'UTC'
     GROUP BY 1, 2, 3
), fc AS MATERIALIZED (
    SELECT * FROM inventory.forecast_daily($1::date, 7 * $3, $2)
), pairs AS MATERIALIZED (
    SELECT DISTINCT product_id, warehouse_id FROM sold
), grid AS (
    SELECT p.product_id, p.warehouse_id, d.day::date AS day,
           -- naive: the same weekday of the last week before the hold-out
           ($1::date - 7 + ((d.day::date - $1::date) % 7)) AS naive_day
      FROM pairs p
     CROSS JOIN generate_series($1::date, $1::date + 7 * $3 - 1, interval '1 day') AS d(day)
), scored AS (
    SELECT coalesce(a.units, 0) AS actual, coalesce(f.units, 0) AS forecast, coalesce(n.units, 0) AS naive
      FROM grid g
      LEFT JOIN sold a ON a.product_id = g.product_id AND a.warehouse_id = g.warehouse_id AND a.day = g.day
      LEFT JOIN sold n ON n.product_id = g.product_id AND n.warehouse_id = g.warehouse_id AND n.day = g.naive_day
      LEFT JOIN fc f
             ON f.product_id = g.product_id AND f.warehouse_id = g.warehouse_id AND f.day = g.day
)
SELECT (SELECT count(*) FROM pairs), count(*),
       coalesce(avg(actual), 0)::float8,
       coalesce(avg(abs(forecast - actual)), 0)::float8,
       coalesce(avg(abs(naive - actual)), 0)::float8,
       coalesce(sum(forecast) / nullif(sum(actual), 0) - 1, 0)::float8,
       coalesce(sum(naive) / nullif(sum(actual), 0) - 1, 0)::float8
  FROM scored
"#;

/// Seed a scratch database, hold out its last `holdout_weeks` weeks and score
/// both forecasts on them.
pub async fn forecast(
    admin: &PgConnectOptions,
    scale: f64,
    history_weeks: i32,
    holdout_weeks: i32,
    keep: bool,
) -> anyhow::Result<ForecastBench> {
    let scratch = Scratch::create(
        admin,
        format!("stockops_bench_forecast_{}", std::process::id()),
    )
    .await?;
    let result = run_forecast(&scratch.opts, scale, history_weeks, holdout_weeks).await;
    scratch.finish(result, keep).await
}

async fn run_forecast(
    opts: &PgConnectOptions,
    scale: f64,
    history_weeks: i32,
    holdout_weeks: i32,
) -> anyhow::Result<ForecastBench> {
    // 1. A seeded year ending yesterday.
    let mut conn = connect(opts).await?;
    let decl = Declaration::embedded()?;
    provision::run(&mut conn, &decl, Mode::Apply).await?;
    let as_of = chrono::Utc::now().date_naive();
    seed::run(
        &mut conn,
        &SeedOptions {
            scale,
            rng_seed: 1,
            as_of,
        },
    )
    .await?;
    // 2. Its last weeks held out, forecast from the weeks before, scored.
    let holdout_from = as_of - chrono::Days::new(7 * holdout_weeks as u64);
    let (series, points, actual_mean, forecast_mae, naive_mae, forecast_bias, naive_bias): (
        i64,
        i64,
        f64,
        f64,
        f64,
        f64,
        f64,
    ) = sqlx::query_as(FORECAST_SCORE)
        .bind(holdout_from)
        .bind(history_weeks)
        .bind(holdout_weeks)
        .fetch_one(&mut conn)
        .await?;
    Ok(ForecastBench {
        scale,
        history_weeks,
        holdout_weeks,
        holdout_from,
        holdout_to: as_of,
        series,
        points,
        actual_mean,
        forecast_mae,
        naive_mae,
        ratio: if naive_mae > 0.0 {
            forecast_mae / naive_mae
        } else {
            f64::NAN
        },
        forecast_bias,
        naive_bias,
    })
}
