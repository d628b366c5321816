//! Throughput measurements, each printed beside its baseline measured in the
//! same run. They run in a scratch database of their own, created, provisioned
//! and seeded for the purpose and dropped afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use crate::db::ident;
use crate::provision::{self, Declaration, Mode};
use crate::scram::Secret;
use crate::seed::{self, SeedOptions};
use crate::users::{self, NewUser};

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
    let name = format!("stockops_bench_{}", std::process::id());
    let mut conn = connect(admin).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {}", ident(&name)))
        .execute(&mut conn)
        .await
        .context("creating the scratch database (the bench needs CREATEDB)")?;
    let opts = admin.clone().database(&name);
    let result = run_procedures(&opts, &name, clients, seconds).await;
    if !keep {
        sqlx::raw_sql(&format!("DROP DATABASE {} WITH (FORCE)", ident(&name)))
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {}", ident(&name)))
            .execute(&mut conn)
            .await?;
    } else {
        tracing::info!(database = %name, login = %name, "kept the scratch database and its login");
    }
    result
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

async fn connect(opts: &PgConnectOptions) -> anyhow::Result<PgConnection> {
    Ok(PgConnection::connect_with(&opts.clone().disable_statement_logging()).await?)
}
