//! `stockops restore`: stream a backup from the repository through age and
//! zstd into `pg_restore`, then prove the restore complete.
//!
//! Steps:
//! 1. decrypt the backup's metadata first: a wrong identity fails here, before
//!    the target is touched, naming the backup's recipients;
//! 2. refuse a target that already holds tables, unless `--force`;
//! 3. with `--with-globals`, create the roles the target cluster lacks, with
//!    their settings and memberships, from the backup's roles stored as data
//!    (never passwords, never SUPERUSER, never SQL text: see crate::backup::globals);
//! 4. stream the archive into `pg_restore --single-transaction --exit-on-error`:
//!    a corrupted or truncated object, caught by age's authentication, makes
//!    pg_restore roll everything back, so nothing half-restored remains;
//! 5. recompute every table's row count and fingerprint on the target, the
//!    way the backup computed them in its snapshot, and name any difference.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use tokio_util::io::SyncIoBridge;

use crate::backup::globals;
use crate::backup::{fingerprint, logical::tool};
use crate::db;
use crate::exit;
use crate::pipeline;
use crate::pipeline::crypto::Identities;
use crate::repository::backups;
use crate::repository::catalog::{Manifest, TableFingerprint};
use crate::repository::storage::ReadStore;

#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    pub force: bool,
    pub with_globals: bool,
    /// With `with_globals`: also grant the backup's memberships between
    /// roles the target already has (perhaps revoked there on purpose).
    pub regrant_memberships: bool,
    /// pg_restore jobs; above 1 the archive is spooled decrypted to a private
    /// temporary file (parallel restore needs a seekable archive).
    pub jobs: u32,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub id: String,
    pub target: String,
    pub tables_checked: usize,
    pub rows: i64,
    pub roles_created: usize,
    /// What the backup's roles hold that the restore did not apply, and why
    /// (a superuser attribute, a membership reaching the server's files).
    pub roles_withheld: Vec<String>,
    pub seconds: f64,
    pub audit_head: Option<String>,
    /// Tables whose count or fingerprint differs from the backup's (empty: complete).
    pub mismatches: Vec<String>,
}

pub async fn run(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    target: &PgConnectOptions,
    target_url: Option<&str>,
    opts: RestoreOptions,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    m.require_logical()
        .map_err(|e| crate::exit::Coded::new(crate::exit::FAILURE, e))?;
    // 1. The metadata: proves the identity fits before anything else.
    let meta = backups::metadata(store, m, ids).await?;
    // 2. The target.
    let mut conn = db::connect(target).await?;
    let (database, tables): (String, i64) = sqlx::query_as(
        "SELECT current_database()::text, (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                                              AND n.nspname NOT LIKE 'pg\\_%')",
    )
    .fetch_one(&mut conn)
    .await?;
    if tables > 0 && !opts.force {
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!(
                "target database {database} is not empty ({tables} tables); restore refuses to overwrite it \
                 without --force (which drops and recreates every object the backup contains)"
            ),
        )
        .into());
    }
    // 3. Roles first, when asked.
    let roles = if opts.with_globals {
        restore_globals(store, m, ids, &mut conn, &database, opts).await?
    } else {
        globals::Applied::default()
    };
    // 4. The data.
    let env = db::libpq_env(target, target_url);
    if opts.jobs > 1 {
        spooled_restore(store, m, ids, &env, &database, opts).await?;
    } else {
        stream_restore(store, m, ids, &env, &database, opts.force).await?;
    }
    // 5. The proof.
    let (mismatches, rows) = compare(&mut conn, &meta.tables).await?;
    Ok(Report {
        id: m.id.clone(),
        target: database,
        tables_checked: meta.tables.len(),
        rows,
        roles_created: roles.created.len(),
        roles_withheld: roles.withheld,
        seconds: started.elapsed().as_secs_f64(),
        audit_head: meta.audit_head,
        mismatches,
    })
}

/// Decrypt the archive into pg_restore's standard input.
async fn stream_restore(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    env: &[(String, String)],
    dbname: &str,
    clean: bool,
) -> anyhow::Result<()> {
    let data = m
        .object("data")
        .context("the manifest lists no data object")?;
    let major = m.server_major();
    let mut cmd = Command::new(tool(major, "pg_restore"));
    cmd.args(["--single-transaction", "--exit-on-error", "--no-password"]);
    if clean {
        cmd.args(["--clean", "--if-exists"]);
    }
    let mut child = cmd
        .arg(format!("--dbname={dbname}"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting pg_restore (is the PostgreSQL client installed?)")?;
    let stdin = child.stdin.take().expect("piped");
    let reader = store.open(&data.key).await?;
    let ids2 = ids.clone();
    let fed = tokio::task::spawn_blocking(move || {
        pipeline::open(SyncIoBridge::new(reader), stdin, &ids2)
    })
    .await?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match fed {
        Err(e) => bail!(
            "backup {}: the data object does not decrypt to the end ({e}); pg_restore rolled everything back{}",
            m.id,
            if stderr.is_empty() { String::new() } else { format!(" ({stderr})") }
        ),
        Ok((_, digests)) if digests.stored != data.stored => bail!(
            "backup {}: the data object read back as {} bytes sha256 {}, the manifest records {} bytes sha256 {}",
            m.id,
            digests.stored.bytes,
            digests.stored.sha256,
            data.stored.bytes,
            data.stored.sha256
        ),
        Ok(_) => {}
    }
    if !out.status.success() {
        bail!(
            "pg_restore failed ({}); it rolled everything back: {stderr}",
            out.status
        );
    }
    Ok(())
}

/// A private temporary file in a directory of its own (mode 0700, random
/// name, see [`crate::private_file`]), both removed when dropped, whatever
/// happened. Its name owes nothing to the backup: no manifest field reaches
/// a path.
struct Spool {
    _dir: crate::private_file::PrivateDir,
    path: std::path::PathBuf,
}

impl Spool {
    fn create(parent: &std::path::Path) -> anyhow::Result<(Self, std::fs::File)> {
        let dir = crate::private_file::PrivateDir::new_in(parent, "stockops-restore")
            .with_context(|| {
                format!("creating a private spool directory in {}", parent.display())
            })?;
        let (path, file) = dir.create("archive.dump").with_context(|| {
            format!(
                "creating the private spool file in {}",
                dir.path().display()
            )
        })?;
        Ok((Self { _dir: dir, path }, file))
    }
}

/// Decrypt the archive to a private file, then `pg_restore --jobs`. Without
/// a single transaction (pg_restore cannot combine it with jobs), a failure
/// can leave the target partly restored: the command fails and says so.
async fn spooled_restore(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    env: &[(String, String)],
    dbname: &str,
    opts: RestoreOptions,
) -> anyhow::Result<()> {
    let data = m
        .object("data")
        .context("the manifest lists no data object")?;
    let dir = std::env::var_os("STOCKOPS_SPOOL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let (spool, file) = Spool::create(&dir)?;
    let reader = store.open(&data.key).await?;
    let ids2 = ids.clone();
    let (_, digests) = tokio::task::spawn_blocking(move || {
        pipeline::open(
            SyncIoBridge::new(reader),
            std::io::BufWriter::new(file),
            &ids2,
        )
    })
    .await?
    .map_err(|e| {
        anyhow::anyhow!(
            "backup {}: the data object does not decrypt to the end ({e}); nothing was restored",
            m.id
        )
    })?;
    if digests.stored != data.stored {
        bail!(
            "backup {}: the data object does not match its manifest; nothing was restored",
            m.id
        );
    }
    let major = m.server_major();
    let mut cmd = Command::new(tool(major, "pg_restore"));
    cmd.args(["--exit-on-error", "--no-password"])
        .arg(format!("--jobs={}", opts.jobs));
    if opts.force {
        cmd.args(["--clean", "--if-exists"]);
    }
    let path = spool.path.clone();
    let env = env.to_vec();
    let dbname = dbname.to_string();
    let out = tokio::task::spawn_blocking(move || {
        cmd.arg(format!("--dbname={dbname}"))
            .arg(&path)
            .envs(env)
            .stdin(Stdio::null())
            .output()
    })
    .await?
    .context("starting pg_restore")?;
    drop(spool);
    if !out.status.success() {
        bail!(
            "pg_restore --jobs {} failed ({}); the target may be partly restored, drop it before trying again: {}",
            opts.jobs,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Create the roles the cluster lacks, from the backup's roles object (data,
/// validated, applied by [`globals::apply`]; never the `pg_dumpall` text).
async fn restore_globals(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    conn: &mut sqlx::PgConnection,
    database: &str,
    opts: RestoreOptions,
) -> anyhow::Result<globals::Applied> {
    let Some(g) = backups::roles(store, m, ids).await? else {
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!(
                "backup {} predates roles stored as data, and stockops never executes its globals.sql \
                 (any login can put SQL text into it); create the roles it needs by hand after reading \
                 it (docs/backup-format.md), then restore without --with-globals",
                m.id
            ),
        )
        .into());
    };
    let mut tx = conn.begin().await?;
    let applied = globals::apply(
        &mut tx,
        &g,
        database,
        globals::ApplyOptions {
            regrant_memberships: opts.regrant_memberships,
        },
    )
    .await?;
    tx.commit().await?;
    for w in &applied.withheld {
        tracing::warn!(backup = %m.id, "{w}");
    }
    Ok(applied)
}

/// Recompute the fingerprints on the target; returns the differences and the rows seen.
pub async fn compare(
    conn: &mut sqlx::PgConnection,
    want: &[TableFingerprint],
) -> anyhow::Result<(Vec<String>, i64)> {
    let mut tx = conn.begin().await?;
    sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(fingerprint::SESSION_SETTINGS)
        .execute(&mut *tx)
        .await?;
    let mut mismatches = Vec::new();
    let mut rows = 0;
    for t in want {
        let method = if t.method.is_empty() {
            "text"
        } else {
            t.method.as_str()
        };
        let got: Result<(i64, String), sqlx::Error> =
            sqlx::query_as(&fingerprint::query(&t.schema, &t.table, method))
                .fetch_one(&mut *tx)
                .await;
        match got {
            Ok((n, fp)) => {
                rows += n;
                if n != t.rows {
                    mismatches.push(format!(
                        "{}.{}: {} rows, the backup has {}",
                        t.schema, t.table, n, t.rows
                    ));
                } else if fp != t.fingerprint {
                    mismatches.push(format!(
                        "{}.{}: {} rows but different content",
                        t.schema, t.table, n
                    ));
                }
            }
            Err(e) => {
                mismatches.push(format!("{}.{}: {}", t.schema, t.table, e));
                break;
            }
        }
    }
    tx.rollback().await?;
    Ok((mismatches, rows))
}
