//! Row counts and content fingerprints, computed the same way at backup time
//! (in the dump's snapshot) and after a restore, so a restore can prove
//! itself complete. A table's fingerprint is the sum of a 64-bit hash of
//! each row's text form: independent of row order, sensitive to any change.

use sqlx::PgConnection;

use crate::catalog::TableFingerprint;
use crate::db::ident;

/// Settings that fix every row's text form, whatever the server's defaults.
/// `row_security = off` makes a role subject to row-level security fail
/// loudly instead of counting only the rows it may see.
pub const SESSION_SETTINGS: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; \
     SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; \
     SET LOCAL row_security = off";

/// Every user table (leaf tables only: partitions are counted once).
pub async fn tables(conn: &mut PgConnection) -> anyhow::Result<Vec<TableFingerprint>> {
    let list: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_%' AND c.relpersistence = 'p'
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(list.len());
    for (schema, table) in list {
        let (rows, fingerprint): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM ONLY {}.{} AS t",
            ident(&schema),
            ident(&table)
        ))
        .fetch_one(&mut *conn)
        .await?;
        out.push(TableFingerprint {
            schema,
            table,
            rows,
            fingerprint,
        });
    }
    Ok(out)
}

/// The audit chain's head (POSITION:HASH), if this database has the audit schema.
pub async fn audit_head(conn: &mut PgConnection) -> anyhow::Result<Option<String>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('audit.seal_state') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "SELECT position::text || ':' || encode(head, 'hex') FROM audit.seal_state",
    )
    .fetch_optional(&mut *conn)
    .await?)
}
