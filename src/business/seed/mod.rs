//! `stockops seed`: a deterministic year in the life of a technology
//! wholesaler, loaded with COPY.
//!
//! The data is simulated day by day, so it is coherent the way real data is:
//! sales follow weekly and yearly seasons, a trend and promotions, and never
//! sell stock that is not there; stock that falls to the reorder point is
//! ordered from the product's supplier, whose lead time and reliability make
//! deliveries early, late or partial; the ledger is the only way stock moves,
//! and the levels equal its sums (the ledger trigger maintains them).
//!
//! The same `--rng-seed`, `--scale` and `--as-of` give the same rows. The whole
//! load is one transaction, into a provisioned database whose domain tables
//! are empty: a failed seed leaves nothing behind.

mod catalog;
mod copy;
mod sim;

use std::time::Instant;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::exit;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub scale: f64,
    pub rng_seed: u64,
    /// The simulated year ends the day before this date.
    pub as_of: NaiveDate,
}

/// Rows loaded per table, and the time taken.
#[derive(Debug, Default, Serialize)]
pub struct SeedSummary {
    pub scale: f64,
    pub rng_seed: u64,
    pub as_of: String,
    pub rows: std::collections::BTreeMap<String, u64>,
    pub total_rows: u64,
    pub database_bytes: i64,
    pub seconds: f64,
}

const DOMAIN_TABLES: [&str; 11] = [
    "regions",
    "warehouses",
    "suppliers",
    "products",
    "resellers",
    "partner_logins",
    "purchase_orders",
    "purchase_order_lines",
    "sales_orders",
    "sales_order_lines",
    "stock_movements",
];

pub async fn run(conn: &mut PgConnection, opts: &SeedOptions) -> anyhow::Result<SeedSummary> {
    if !(opts.scale > 0.0 && opts.scale <= 1000.0) {
        return Err(exit::usage(format!(
            "--scale must be in (0, 1000], got {}",
            opts.scale
        )));
    }
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    ensure_empty(&mut tx).await?;
    sqlx::raw_sql("SET LOCAL synchronous_commit = off; SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    let suspended = suspend_constraints(&mut tx).await?;
    let mut rows = sim::Simulation::new(opts).run(&mut tx).await?;
    restore_constraints(&mut tx, suspended).await?;
    reset_sequences(&mut tx).await?;
    tx.commit().await.context("committing the seed")?;
    sqlx::raw_sql(
        "ANALYZE inventory.products, inventory.stock_levels, inventory.stock_movements, \
                   inventory.sales_orders, inventory.sales_order_lines, inventory.purchase_orders, \
                   inventory.purchase_order_lines",
    )
    .execute(&mut *conn)
    .await?;
    let levels: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory.stock_levels")
        .fetch_one(&mut *conn)
        .await?;
    rows.insert("stock_levels".into(), levels as u64);
    let database_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut *conn)
        .await?;
    Ok(SeedSummary {
        scale: opts.scale,
        rng_seed: opts.rng_seed,
        as_of: opts.as_of.to_string(),
        total_rows: rows.values().sum(),
        rows,
        database_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn ensure_empty(conn: &mut PgConnection) -> anyhow::Result<()> {
    for table in DOMAIN_TABLES {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM inventory.{table})");
        let any: bool = sqlx::query_scalar(&sql)
            .fetch_one(&mut *conn)
            .await
            .with_context(|| {
                format!("reading inventory.{table}; has `stockops provision` run on this database?")
            })?;
        if any {
            bail!(
                "inventory.{table} already has rows: seed loads only into a freshly provisioned, empty database \
                 (it never mixes fictitious data with real data)"
            );
        }
    }
    Ok(())
}

/// Foreign keys and secondary indexes, dropped for the bulk load and created
/// again after it, inside the same transaction: one validating pass per key
/// and one sort per index instead of a lookup and an insertion per row. If
/// anything fails, the rollback restores them untouched.
struct Suspended {
    foreign_keys: Vec<(String, String, String)>,
    indexes: Vec<String>,
}

async fn suspend_constraints(conn: &mut PgConnection) -> anyhow::Result<Suspended> {
    let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid)
           FROM pg_constraint
          WHERE contype = 'f' AND connamespace = 'inventory'::regnamespace
          ORDER BY conrelid::regclass::text, conname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          WHERE c.relnamespace = 'inventory'::regnamespace
            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
          ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (table, name, _) in &foreign_keys {
        sqlx::raw_sql(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
            .execute(&mut *conn)
            .await
            .context("suspending foreign keys for the bulk load (seed must run as the owner or a superuser)")?;
    }
    for (index, _) in &indexes {
        sqlx::raw_sql(&format!("DROP INDEX {index}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(Suspended {
        foreign_keys,
        indexes: indexes.into_iter().map(|(_, def)| def).collect(),
    })
}

async fn restore_constraints(conn: &mut PgConnection, s: Suspended) -> anyhow::Result<()> {
    for def in &s.indexes {
        sqlx::raw_sql(def).execute(&mut *conn).await?;
    }
    for (table, name, def) in &s.foreign_keys {
        sqlx::raw_sql(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("restoring {name} on {table}: the generated data broke it"))?;
    }
    Ok(())
}

/// Move every identity sequence past the ids the seed wrote.
async fn reset_sequences(conn: &mut PgConnection) -> anyhow::Result<()> {
    let sql = r#"
        SELECT format('SELECT setval(%L, coalesce((SELECT max(%I) FROM %I.%I), 0) + 1, false)',
                      pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname),
                      a.attname, n.nspname, c.relname)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'inventory' AND a.attidentity <> '' AND NOT a.attisdropped"#;
    let statements: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *conn).await?;
    for s in statements {
        sqlx::raw_sql(&s).execute(&mut *conn).await?;
    }
    Ok(())
}
