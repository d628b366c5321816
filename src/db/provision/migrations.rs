//! Phase 3: the SQL migrations in `migrations/`, embedded and checksummed by
//! sqlx, applied inside the provisioning transaction as the owner role.
//!
//! The bookkeeping table is sqlx's own (`public._sqlx_migrations`, same
//! columns), so `sqlx migrate info` reads it; the apply loop is ours because
//! sqlx commits each migration on its own, and provisioning must be one
//! transaction with the roles and grants around it.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use sqlx::migrate::Migrator;
use sqlx::PgConnection;

use super::Change;
use crate::db::ident;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS public._sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Apply every pending migration as `owner`; refuse if an applied one changed.
pub async fn apply(conn: &mut PgConnection, owner: &str) -> anyhow::Result<Vec<Change>> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        sqlx::raw_sql(BOOKKEEPING).execute(&mut *conn).await?;
    }
    let applied: BTreeMap<i64, (Vec<u8>, bool)> = sqlx::query_as::<_, (i64, Vec<u8>, bool)>(
        "SELECT version, checksum, success FROM public._sqlx_migrations",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(v, c, s)| (v, (c, s)))
    .collect();
    let mut changes = Vec::new();
    for m in MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        if let Some((checksum, success)) = applied.get(&m.version) {
            if !success {
                bail!("migration {} ({}) is recorded as failed; repair it by hand before provisioning", m.version, m.description);
            }
            if checksum.as_slice() != m.checksum.as_ref() {
                bail!(
                    "migration {} ({}) was changed after it was applied: released migrations are never edited; \
                     add a new migration instead",
                    m.version,
                    m.description
                );
            }
            continue;
        }
        let started = Instant::now();
        let sql = format!("SET LOCAL ROLE {};\n{}\nRESET ROLE;", ident(owner), m.sql);
        sqlx::raw_sql(&sql)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("applying migration {} ({})", m.version, m.description))?;
        sqlx::query(
            "INSERT INTO public._sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, $2, true, $3, $4)",
        )
        .bind(m.version)
        .bind(m.description.as_ref())
        .bind(m.checksum.as_ref())
        .bind(started.elapsed().as_nanos() as i64)
        .execute(&mut *conn)
        .await?;
        changes.push(Change::new(
            "migration",
            format!("migration {} ({}) is pending", m.version, m.description),
            sql,
        ));
    }
    for version in applied.keys() {
        if !MIGRATOR.iter().any(|m| m.version == *version) {
            bail!("the database has migration {version}, which this stockops does not know: it is older than the schema; upgrade stockops");
        }
    }
    Ok(changes)
}
