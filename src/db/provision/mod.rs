//! `stockops provision`: reconcile a database to the migrations in
//! `migrations/` and the declaration in `roles/`.
//!
//! Everything happens in one transaction under an advisory lock, so a
//! provision either lands completely or not at all, and two runs never
//! interleave. Each phase compares the server with the declaration and
//! returns the [`Change`]s that would close the gap; the change is executed
//! at once so that later phases see its effect. `--dry-run` and `--check`
//! run the very same phases and roll back, so what they report is exactly what
//! a real run would do.
//!
//! Phases, in order:
//! 1. roles: create missing roles, correct attributes, comments, memberships;
//! 2. database privileges and default privileges (before any object exists);
//! 3. migrations, applied as `inventory_owner`, checksummed;
//! 4. ownership of every object in the managed schemas;
//! 5. privileges on schemas, tables, columns, sequences and functions, and
//!    the `search_path` of `SECURITY DEFINER` functions;
//! 6. row-level security and policies.
//!
//! After a real run the phases run once more; any change left means the
//! server did not converge, and the transaction is rolled back.

pub mod declaration;
mod migrations;
mod policies;
mod privileges;
mod roles;

use anyhow::Context;
use serde::Serialize;
use sqlx::{Acquire, PgConnection, Postgres, Transaction};

pub use declaration::Declaration;

use crate::exit;

/// One statement that brings the server closer to the declaration.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// role, membership, database, default-privilege, migration, owner, privilege, definer, rls, policy
    pub kind: &'static str,
    /// What differs, in words.
    pub description: String,
    /// The statement that fixes it.
    pub sql: String,
}

impl Change {
    pub fn new(kind: &'static str, description: impl Into<String>, sql: impl Into<String>) -> Self {
        Self {
            kind,
            description: description.into(),
            sql: sql.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Make the changes and commit.
    Apply,
    /// Compute the changes, roll back.
    Plan,
}

/// Advisory lock key for provisioning ("stockops" folded into 63 bits).
const LOCK_KEY: i64 = 0x5354_4f43_4b4f_5053;

/// Run every phase. In [`Mode::Plan`] nothing is committed.
pub async fn run(
    conn: &mut PgConnection,
    decl: &Declaration,
    mode: Mode,
) -> anyhow::Result<Vec<Change>> {
    let mut tx = conn
        .begin()
        .await
        .context("starting the provisioning transaction")?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Err(exit::Coded::new(
            exit::LOCK_HELD,
            "another stockops provision is running on this database; wait for it to finish",
        )
        .into());
    }
    preflight(&mut tx).await?;
    let changes = phases(&mut tx, decl).await?;
    match mode {
        Mode::Plan => tx.rollback().await?,
        Mode::Apply => {
            let left = phases(&mut tx, decl).await?;
            if let Some(first) = left.first() {
                anyhow::bail!(
                    "provision did not converge ({} change(s) still needed, first: {}); nothing was committed",
                    left.len(),
                    first.description
                );
            }
            tx.commit()
                .await
                .context("committing the provisioning transaction")?;
        }
    }
    Ok(changes)
}

async fn phases(
    tx: &mut Transaction<'_, Postgres>,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let mut all = Vec::new();
    let conn = tx.acquire().await?;
    let planned = roles::plan(conn, decl).await?;
    all.extend(execute(conn, planned).await?);
    let planned = privileges::plan_database(conn, decl).await?;
    all.extend(execute(conn, planned).await?);
    all.extend(migrations::apply(conn, &decl.owner).await?);
    let planned = privileges::plan_ownership(conn, decl).await?;
    all.extend(execute(conn, planned).await?);
    let planned = privileges::plan_objects(conn, decl).await?;
    all.extend(execute(conn, planned).await?);
    let planned = privileges::plan_definers(conn).await?;
    all.extend(execute(conn, planned).await?);
    let planned = policies::plan(conn, decl).await?;
    all.extend(execute(conn, planned).await?);
    Ok(all)
}

async fn execute(conn: &mut PgConnection, changes: Vec<Change>) -> anyhow::Result<Vec<Change>> {
    for change in &changes {
        tracing::debug!(kind = change.kind, sql = %change.sql, "{}", change.description);
        sqlx::raw_sql(&change.sql)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("{} ({})", change.description, change.sql))?;
    }
    Ok(changes)
}

/// Refuse early, naming the privilege, when the connected role cannot provision.
async fn preflight(conn: &mut PgConnection) -> anyhow::Result<()> {
    let (user, superuser, createrole): (String, bool, bool) = sqlx::query_as(
        "SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !superuser && !createrole {
        return Err(exit::Coded::new(
            exit::PERMISSION,
            format!(
                "role {user} lacks CREATEROLE, needed to create and alter the roles declared in roles/roles.toml \
                 (and SUPERUSER to give stockops_backup BYPASSRLS); connect as a superuser such as postgres"
            ),
        )
        .into());
    }
    Ok(())
}
