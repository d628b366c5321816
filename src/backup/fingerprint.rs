//! Row counts and content fingerprints, computed the same way at backup time
//! (in the dump's snapshot) and after a restore, so a restore can prove
//! itself complete. A table's fingerprint is the sum of a 64-bit hash of
//! each row: independent of row order, sensitive to any change.
//!
//! The hash is `hash_record_extended(row, 0)` (the column types' own hash
//! functions: no text conversion, about twice as fast); a table with a column
//! type that has no hash function (json, geometric types) falls back to
//! `hashtextextended(row::text, 0)`. The method is recorded with the
//! fingerprint. Both are PostgreSQL's own hash functions: compare
//! fingerprints on the same major version.

use sqlx::PgConnection;

use crate::db::ident;
use crate::repository::catalog::TableFingerprint;

/// Settings that fix every row's text form, whatever the server's defaults.
/// `row_security = off` makes a role subject to row-level security fail
/// loudly instead of counting only the rows it may see. The timeouts a
/// hardened server sets for interactive sessions are lifted for this one
/// transaction (as pg_dump does for its own): it scans every table, then
/// waits idle while the dump streams from its snapshot.
pub const SESSION_SETTINGS: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; \
     SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; \
     SET LOCAL row_security = off; SET LOCAL statement_timeout = 0; \
     SET LOCAL idle_in_transaction_session_timeout = 0";

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
        out.push(table_fingerprint(conn, schema, table).await?);
    }
    Ok(out)
}

/// The SQL that fingerprints one table by `method` ("record" or "text").
pub fn query(schema: &str, table: &str, method: &str) -> String {
    let hash = if method == "record" {
        "hash_record_extended(t, 0)"
    } else {
        "hashtextextended(t::text, 0)"
    };
    format!(
        "SELECT count(*), coalesce(sum({hash}), 0)::text FROM ONLY {}.{} AS t",
        ident(schema),
        ident(table)
    )
}

/// One table, by record hashing when its column types allow, else by text.
async fn table_fingerprint(
    conn: &mut PgConnection,
    schema: String,
    table: String,
) -> anyhow::Result<TableFingerprint> {
    sqlx::raw_sql("SAVEPOINT stockops_fingerprint")
        .execute(&mut *conn)
        .await?;
    let by_record: Result<(i64, String), sqlx::Error> =
        sqlx::query_as(&query(&schema, &table, "record"))
            .fetch_one(&mut *conn)
            .await;
    let (method, (rows, fingerprint)) = match by_record {
        Ok(r) => {
            sqlx::raw_sql("RELEASE SAVEPOINT stockops_fingerprint")
                .execute(&mut *conn)
                .await?;
            ("record", r)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42883") => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT stockops_fingerprint")
                .execute(&mut *conn)
                .await?;
            (
                "text",
                sqlx::query_as(&query(&schema, &table, "text"))
                    .fetch_one(&mut *conn)
                    .await?,
            )
        }
        Err(e) => return Err(e.into()),
    };
    Ok(TableFingerprint {
        schema,
        table,
        rows,
        fingerprint,
        method: method.to_string(),
    })
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
