//! `stockops backup`: one full logical backup, streamed end to end.
//!
//! ```text
//! pg_dump -Fc -Z0 --snapshot ─► sha256 ─► zstd ─► sha256 ─► age ─► sha256 ─► parts ─► upload
//!          (child process)      └──────────── blocking thread ───────────┘   bounded   (async)
//! ```
//!
//! No temporary file, no plaintext on disk; memory is bounded by the part
//! size times the parts in flight. Steps:
//! 1. take the repository lock (a PostgreSQL advisory lock: it dies with the
//!    process, so a lock can never outlive its holder);
//! 2. open a REPEATABLE READ transaction and export its snapshot;
//! 3. stream `pg_dump --snapshot` through the pipeline into a multipart
//!    upload while, in the same snapshot, counting and fingerprinting every
//!    table and reading the audit chain's head;
//! 4. read the child to its end and check its exit status, complete the
//!    upload and check the stored size;
//! 5. store the globals (roles, memberships, settings; no passwords), as
//!    data read from the catalog in the same snapshot (crate::backup::globals) and as
//!    `pg_dumpall` text for people to read, and the encrypted metadata;
//! 6. write the manifest, last. On any error before that, the upload is
//!    aborted and what was written is removed: without a manifest a backup
//!    does not exist, and `backups prune` clears whatever a crash leaves.
//!
//! A stop signal (SIGTERM, SIGINT: [`BackupOptions::stop`]) takes the same
//! error path: pg_dump is killed, the upload aborted, the objects already
//! stored removed, no manifest written, and the error says so
//! ([`crate::exit::INTERRUPTED`]).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use super::fingerprint;
use crate::db;
use crate::exit;
use crate::pipeline::crypto::Recipients;
use crate::pipeline::{self, Compression, Digests, Parts};
use crate::repository::catalog::{self, Manifest, Metadata, StoredObject};
use crate::repository::storage::{ObjectInfo, WriteStore};

/// How to back up.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub compression: Compression,
    /// Bytes per uploaded part (S3's minimum is 5 MiB).
    pub part_size: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Object Lock requested: every object's retention is confirmed with HEAD.
    pub object_lock: Option<crate::repository::storage::ObjectLock>,
    /// Cancelled by a stop signal: the backup is abandoned cleanly.
    pub stop: CancellationToken,
}

/// The error of a backup stopped by a signal.
pub(super) fn aborted() -> anyhow::Error {
    exit::interrupted("backup aborted by signal: nothing was kept")
}

/// Fail with [`aborted`] once a stop was requested (between steps).
pub(super) fn check_stop(stop: &CancellationToken) -> anyhow::Result<()> {
    if stop.is_cancelled() {
        return Err(aborted());
    }
    Ok(())
}

/// What `stockops backup --json` prints.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub id: String,
    pub repository: String,
    pub database: String,
    pub bytes_in: u64,
    pub bytes_stored: u64,
    pub ratio: f64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub tables: usize,
    pub audit_head: Option<String>,
    pub snapshot_at: DateTime<Utc>,
}

/// Everything the snapshot transaction learns.
struct Snapshot {
    id: String,
    at: DateTime<Utc>,
    database: String,
    server_version: String,
    server_major: u32,
    size_estimate: u64,
}

/// Advisory lock key for "backup of this database into this repository".
fn lock_key(repository: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("stockops.backup:{repository}").as_bytes());
    i64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// Take the backup lock on `conn`, or fail with exit code 6 naming the holder.
pub async fn lock(conn: &mut PgConnection, repository: &str) -> anyhow::Result<()> {
    let key = lock_key(repository);
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    if got {
        return Ok(());
    }
    let holder: Option<(i32, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a USING (pid)
          WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .unwrap_or(None);
    let who = match holder {
        Some((pid, app, start)) => format!(
            " (server pid {pid}, {}, running since {})",
            app.unwrap_or_default(),
            start.map(|s| s.to_rfc3339()).unwrap_or_default()
        ),
        None => String::new(),
    };
    Err(exit::Coded::new(
        exit::LOCK_HELD,
        format!(
            "another backup of this database into {repository} is running{who}; nothing was done"
        ),
    )
    .into())
}

/// Run one backup. `url` is the database URL the settings gave, if any (for
/// the password handed to pg_dump through its environment).
pub async fn run(
    db_opts: &PgConnectOptions,
    url: Option<&str>,
    store: &dyn WriteStore,
    recipients: &Recipients,
    opts: &BackupOptions,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let started_at = Utc::now();
    let repository = store.describe();
    // 1. The lock, on a connection held for the whole run.
    let mut lock_conn = db::connect(db_opts).await?;
    lock(&mut lock_conn, &repository).await?;
    // 2. The snapshot everything is taken in.
    let mut snap_conn = db::connect(db_opts).await?;
    let mut tx = snap_conn.begin().await?;
    let snapshot = export_snapshot(&mut tx).await?;
    let id = catalog::new_id(started_at);
    tracing::info!(%id, database = %snapshot.database, %repository, "backup started");
    let env = db::libpq_env(db_opts, url);
    // 3.-4. The data, streamed; fingerprints and audit head meanwhile.
    let data_key = catalog::key(&id, catalog::DATA);
    let stream = stream_dump(store, &data_key, &env, &snapshot, recipients, opts);
    let facts = async {
        let work = async {
            let tables = fingerprint::tables(&mut tx).await?;
            let head = fingerprint::audit_head(&mut tx).await?;
            let roles = crate::backup::globals::capture(&mut tx).await?;
            anyhow::Ok((tables, head, roles))
        };
        tokio::select! {
            facts = work => facts,
            _ = opts.stop.cancelled() => Err(aborted()),
        }
    };
    let (data, facts) = tokio::join!(stream, facts);
    let written = std::cell::RefCell::new(Vec::<String>::new());
    let result = async {
        let (data_digests, data_info) = data?;
        written.borrow_mut().push(data_key.clone());
        let (tables, audit_head, roles) =
            facts.context("fingerprinting the tables in the dump's snapshot")?;
        tx.commit().await?;
        // 5. Globals and metadata.
        check_stop(&opts.stop)?;
        let globals_key = catalog::key(&id, catalog::GLOBALS);
        let globals = dump_globals(&env, &snapshot, recipients, opts.compression).await?;
        let (globals_digests, globals_bytes) = globals;
        let globals_info = store.put(&globals_key, globals_bytes).await?;
        written.borrow_mut().push(globals_key.clone());
        let roles_key = catalog::key(&id, catalog::ROLES);
        let (roles_bytes, roles_digests) = seal_bytes(
            serde_json::to_vec_pretty(&roles)?,
            recipients,
            opts.compression,
        )?;
        let roles_info = store.put(&roles_key, roles_bytes).await?;
        written.borrow_mut().push(roles_key.clone());
        let metadata = Metadata {
            format: catalog::FORMAT,
            id: id.clone(),
            snapshot: snapshot.id.clone(),
            tables: tables.clone(),
            audit_head: audit_head.clone(),
            data: data_digests.clone(),
            globals: globals_digests.clone(),
            roles: Some(roles_digests.clone()),
            pg_dump_version: tool_version(&snapshot, "pg_dump"),
        };
        let metadata_key = catalog::key(&id, catalog::METADATA);
        let sealed = seal_bytes(
            serde_json::to_vec_pretty(&metadata)?,
            recipients,
            opts.compression,
        )?;
        let metadata_stored = sealed.1.stored.clone();
        store.put(&metadata_key, sealed.0).await?;
        written.borrow_mut().push(metadata_key.clone());
        // 6. The manifest, last.
        let manifest = Manifest {
            format: catalog::FORMAT,
            id: id.clone(),
            kind: "logical".into(),
            database: snapshot.database.clone(),
            server_version: snapshot.server_version.clone(),
            stockops_version: env!("CARGO_PKG_VERSION").into(),
            started_at,
            snapshot_at: snapshot.at,
            finished_at: Utc::now(),
            recipients: recipients.public(),
            compression: format!("zstd level {}", opts.compression.level),
            objects: vec![
                StoredObject {
                    name: "data".into(),
                    key: data_key.clone(),
                    stored: data_digests.stored.clone(),
                },
                StoredObject {
                    name: "globals".into(),
                    key: globals_key.clone(),
                    stored: globals_digests.stored.clone(),
                },
                StoredObject {
                    name: "roles".into(),
                    key: roles_key.clone(),
                    stored: roles_digests.stored.clone(),
                },
                StoredObject {
                    name: "metadata".into(),
                    key: metadata_key,
                    stored: metadata_stored,
                },
            ],
            wal: None,
        };
        check_size(&data_info, &data_digests)?;
        check_size(&globals_info, &globals_digests)?;
        check_size(&roles_info, &roles_digests)?;
        check_stop(&opts.stop)?;
        let manifest_key = catalog::key(&id, catalog::MANIFEST);
        if let Some(lock) = opts.object_lock {
            for o in &manifest.objects {
                confirm_lock(store, &o.key, lock).await?;
            }
        }
        store
            .put(&manifest_key, serde_json::to_vec_pretty(&manifest)?)
            .await?;
        if let Some(lock) = opts.object_lock {
            if let Err(e) = confirm_lock(store, &manifest_key, lock).await {
                let _ = store.delete(&manifest_key).await;
                return Err(e);
            }
        }
        anyhow::Ok((data_digests, tables.len(), audit_head))
    }
    .await;
    match result {
        Ok((digests, tables, audit_head)) => {
            let seconds = started.elapsed().as_secs_f64();
            let summary = Summary {
                id,
                repository,
                database: snapshot.database,
                bytes_in: digests.plain.bytes,
                bytes_stored: digests.stored.bytes,
                ratio: digests.stored.bytes as f64 / digests.plain.bytes.max(1) as f64,
                seconds,
                mb_per_s: digests.plain.bytes as f64 / 1e6 / seconds.max(1e-9),
                tables,
                audit_head,
                snapshot_at: snapshot.at,
            };
            tracing::info!(id = %summary.id, bytes_in = summary.bytes_in, bytes_stored = summary.bytes_stored,
                           seconds = format!("{seconds:.1}"), "backup complete");
            Ok(summary)
        }
        Err(e) => {
            for key in written.into_inner() {
                if let Err(d) = store.delete(&key).await {
                    tracing::warn!(%key, error = %d, "could not remove a partial backup object; `backups prune` will");
                }
            }
            if opts.stop.is_cancelled() {
                tracing::warn!(%id, "backup aborted by signal: upload aborted, no manifest written");
                return Err(aborted());
            }
            Err(e.context(format!(
                "backup {id} failed; no manifest was written, so it does not exist"
            )))
        }
    }
}

/// Read the retention back: a server that ignored the lock headers fails the backup.
pub(super) async fn confirm_lock(
    store: &dyn WriteStore,
    key: &str,
    lock: crate::repository::storage::ObjectLock,
) -> anyhow::Result<()> {
    let min = std::time::SystemTime::now()
        + std::time::Duration::from_secs(u64::from(lock.days) * 86_400 - 3600);
    match store.retention(key).await? {
        Some(r) if r.until >= min => Ok(()),
        Some(r) => bail!("{key} is locked only until {:?}, short of the {} days asked", r.until, lock.days),
        None => bail!(
            "{key} carries no retention after upload: the server accepted the Object Lock headers and ignored them \
             (several S3-compatible servers do); this repository cannot hold locked backups"
        ),
    }
}

pub(super) fn check_size(info: &ObjectInfo, digests: &Digests) -> anyhow::Result<()> {
    if info.size != digests.stored.bytes {
        bail!(
            "the repository holds {} bytes for {}, {} were sent",
            info.size,
            info.key,
            digests.stored.bytes
        );
    }
    Ok(())
}

async fn export_snapshot(conn: &mut PgConnection) -> anyhow::Result<Snapshot> {
    sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await?;
    sqlx::raw_sql(fingerprint::SESSION_SETTINGS)
        .execute(&mut *conn)
        .await?;
    let (id, at, database, version, num, size): (String, DateTime<Utc>, String, String, i32, i64) = sqlx::query_as(
        "SELECT pg_export_snapshot(), now(), current_database()::text, current_setting('server_version'),
                current_setting('server_version_num')::int, pg_database_size(current_database())",
    )
    .fetch_one(&mut *conn)
    .await
    .context("exporting the snapshot")?;
    Ok(Snapshot {
        id,
        at,
        database,
        server_version: version,
        server_major: (num / 10000) as u32,
        size_estimate: size.max(0) as u64,
    })
}

/// The PostgreSQL client program matching the server's major version.
pub fn tool(major: u32, name: &str) -> String {
    if let Ok(dir) = std::env::var("STOCKOPS_PG_BIN") {
        return format!("{dir}/{name}");
    }
    let candidate = format!("/usr/lib/postgresql/{major}/bin/{name}");
    if std::path::Path::new(&candidate).exists() {
        candidate
    } else {
        name.to_string()
    }
}

fn tool_version(snapshot: &Snapshot, name: &str) -> String {
    Command::new(tool(snapshot.server_major, name))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Keeps the last bytes a child wrote to stderr, for the error message.
fn tail_of(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all).trim().to_string();
        let mut start = text.len().saturating_sub(2000);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_string()
    })
}

/// pg_dump → pipeline → multipart upload. Returns the digests and what the store holds.
async fn stream_dump(
    store: &dyn WriteStore,
    key: &str,
    env: &[(String, String)],
    snapshot: &Snapshot,
    recipients: &Recipients,
    opts: &BackupOptions,
) -> anyhow::Result<(Digests, ObjectInfo)> {
    let mut cmd = Command::new(tool(snapshot.server_major, "pg_dump"));
    cmd.args(["--format=custom", "--compress=0", "--no-password"])
        .arg(format!("--snapshot={}", snapshot.id))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (digests, info, _) = stream_child(
        store,
        key,
        cmd,
        "pg_dump",
        snapshot.size_estimate,
        recipients,
        opts,
    )
    .await?;
    Ok((digests, info))
}

/// A child's standard output → pipeline → multipart upload. Returns the
/// digests, what the store holds and the end of the child's stderr.
pub(crate) async fn stream_child(
    store: &dyn WriteStore,
    key: &str,
    mut cmd: Command,
    what: &str,
    estimate: u64,
    recipients: &Recipients,
    opts: &BackupOptions,
) -> anyhow::Result<(Digests, ObjectInfo, String)> {
    let mut upload = store.start_upload(key).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let spawned = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what} (is the PostgreSQL client installed?)"));
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = upload.abort().await;
            return Err(e);
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let stderr = tail_of(child.stderr.take().expect("piped"));
    let bar = progress_bar(opts.progress, estimate);
    let recipients_list = recipients.clone();
    let compression = opts.compression;
    let part_size = opts.part_size;
    let bar2 = bar.clone();
    let pipeline = tokio::task::spawn_blocking(move || {
        let parts = Parts::new(tx, part_size);
        let (parts, digests) = pipeline::seal(stdout, parts, &recipients_list, compression, |n| {
            if let Some(b) = &bar2 {
                b.set_position(n);
            }
        })?;
        parts.finish()?;
        std::io::Result::Ok(digests)
    });
    let mut upload_error = None;
    let mut stopped = false;
    loop {
        let sent = tokio::select! {
            part = rx.recv() => match part {
                Some(part) => tokio::select! {
                    sent = upload.part(part) => sent,
                    _ = opts.stop.cancelled() => { stopped = true; break }
                },
                None => break,
            },
            _ = opts.stop.cancelled() => { stopped = true; break }
        };
        if let Err(e) = sent {
            upload_error = Some(e);
            break;
        }
    }
    if stopped {
        // pg_dump's end closes the pipeline's input; the dropped receiver its output.
        let _ = child.kill();
    }
    drop(rx);
    let sealed = pipeline.await.context("the compression thread panicked")?;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    let stderr = stderr.join().unwrap_or_default();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let failure = if stopped {
        Some(aborted())
    } else if let Some(e) = upload_error {
        Some(anyhow::Error::new(e).context(format!("uploading {what}'s output")))
    } else if !status.success() {
        Some(anyhow::anyhow!("{what} failed ({status}): {stderr}"))
    } else {
        sealed
            .as_ref()
            .err()
            .map(|e| anyhow::anyhow!("compressing and encrypting {what}'s output: {e}"))
    };
    if let Some(e) = failure {
        if let Err(a) = upload.abort().await {
            tracing::warn!(error = %a, "could not abort the upload; `backups prune` will");
        }
        return Err(e);
    }
    let digests = sealed.expect("checked");
    let info = upload.complete().await.context("completing the upload")?;
    Ok((digests, info, stderr))
}

fn progress_bar(enabled: bool, estimate: u64) -> Option<indicatif::ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = indicatif::ProgressBar::new(estimate);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} dump {bytes} of ~{total_bytes} read  {bytes_per_sec}  {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Compress and encrypt a small object in memory.
pub fn seal_bytes(
    data: Vec<u8>,
    recipients: &Recipients,
    compression: Compression,
) -> anyhow::Result<(Vec<u8>, Digests)> {
    let c = Compression {
        workers: 0,
        ..compression
    };
    Ok(pipeline::seal(
        &data[..],
        Vec::new(),
        recipients,
        c,
        |_| {},
    )?)
}

/// Roles, memberships and settings; never passwords.
async fn dump_globals(
    env: &[(String, String)],
    snapshot: &Snapshot,
    recipients: &Recipients,
    compression: Compression,
) -> anyhow::Result<(Digests, Vec<u8>)> {
    let program = tool(snapshot.server_major, "pg_dumpall");
    let database = snapshot.database.clone();
    let env = env.to_vec();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .args(["--globals-only", "--no-role-passwords", "--no-password"])
            .arg(format!("--database={database}"))
            .envs(env)
            .stdin(Stdio::null())
            .output()
    })
    .await?
    .context("starting pg_dumpall")?;
    if !out.status.success() {
        bail!(
            "pg_dumpall --globals-only failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let (sealed, digests) = seal_bytes(out.stdout, recipients, compression)?;
    Ok((digests, sealed))
}
