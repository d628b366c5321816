//! `stockops backup --physical`: a base backup of the whole cluster, streamed
//! end to end with the same discipline as the logical backup.
//!
//! ```text
//! pg_basebackup -D - -Ft -X fetch ─► sha256 ─► zstd ─► sha256 ─► age ─► sha256 ─► parts ─► upload
//!   (replication protocol)           └──────────── blocking thread ───────────┘   bounded   (async)
//! ```
//!
//! `-X fetch` puts the WAL from the backup's start to its end into the tar:
//! the backup restores on its own to a consistent cluster, whatever state
//! the WAL archive is in, and pg_basebackup does not wait on
//! `archive_command` (with `-X none` it waits until the last segment is
//! archived, and hangs while archiving fails). The archive is needed only to
//! recover past the backup's end. (`-X stream` cannot write to standard
//! output.) The cost: the server must keep that WAL until the backup ends,
//! which `wal_keep_size` or a working archive guarantee.
//!
//! Steps: (1) the repository lock, as for logical backups, and the server's
//! facts (version, WAL segment size, the REPLICATION attribute); (2) stream
//! pg_basebackup into a multipart upload, read it to its end, check its exit
//! status, complete the upload and check the stored size; (3) read the WAL
//! start and end points from its report; (4) the encrypted metadata; (5) the
//! manifest, last. On any error before that, what was written is removed.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;

use super::logical::{
    check_size, check_stop, confirm_lock, lock, seal_bytes, stream_child, tool, BackupOptions,
};
use crate::backup::wal;
use crate::db;
use crate::exit;
use crate::pipeline::crypto::Recipients;
use crate::repository::catalog::{self, Manifest, PhysicalMetadata, StoredObject, WalRange};
use crate::repository::storage::WriteStore;

/// What `stockops backup --physical --json` prints.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub id: String,
    pub kind: String,
    pub repository: String,
    pub bytes_in: u64,
    pub bytes_stored: u64,
    pub ratio: f64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub wal: WalRange,
    pub consistent_at: DateTime<Utc>,
}

/// The server, as the backup needs to know it.
struct Server {
    database: String,
    version: String,
    major: u32,
    segment_size: u64,
    size_estimate: u64,
}

async fn server(conn: &mut sqlx::PgConnection) -> anyhow::Result<Server> {
    let (database, version, num, segment_size, size, replication): (
        String,
        String,
        i32,
        i64,
        Option<i64>,
        bool,
    ) = sqlx::query_as(
        "SELECT current_database()::text, current_setting('server_version'),
                    current_setting('server_version_num')::int,
                    pg_size_bytes(current_setting('wal_segment_size')),
                    (SELECT sum(pg_database_size(oid))::bigint FROM pg_database
                      WHERE has_database_privilege(oid, 'CONNECT')),
                    (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(&mut *conn)
    .await
    .context("reading the server's settings")?;
    if !replication {
        return Err(exit::Coded::new(
            exit::PERMISSION,
            "the connected role lacks the REPLICATION attribute a base backup needs: declare `replication = true` \
             for it in roles/roles.toml and run `stockops provision`, and admit it with a `replication` line in pg_hba.conf",
        )
        .into());
    }
    Ok(Server {
        database,
        version,
        major: (num / 10000) as u32,
        segment_size: segment_size as u64,
        size_estimate: size.unwrap_or(0).max(0) as u64,
    })
}

/// Run one physical backup. `url` is the database URL the settings gave, if
/// any (for the password handed to pg_basebackup through its environment).
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
    // 1. The lock, on a connection held for the whole run; the server's facts.
    let mut lock_conn = db::connect(db_opts).await?;
    lock(&mut lock_conn, &repository).await?;
    let srv = server(&mut lock_conn).await?;
    let id = catalog::new_id(started_at);
    tracing::info!(%id, %repository, "physical backup started");
    // 2. The base backup, streamed.
    let base_key = catalog::key(&id, catalog::BASE);
    let mut cmd = Command::new(tool(srv.major, "pg_basebackup"));
    cmd.args(["--pgdata=-", "--format=tar", "--wal-method=fetch"])
        .args(["--checkpoint=fast", "--verbose", "--no-password"])
        .arg(format!("--label=stockops {id}"))
        .envs(db::libpq_env(db_opts, url))
        // Its report is parsed: untranslated.
        .env("LC_ALL", "C")
        .env("LC_MESSAGES", "C");
    let streamed = stream_child(
        store,
        &base_key,
        cmd,
        "pg_basebackup",
        srv.size_estimate,
        recipients,
        opts,
    )
    .await;
    let (base, base_info, log) = match streamed {
        Ok(s) => s,
        Err(e) if opts.stop.is_cancelled() => {
            tracing::warn!(%id, "physical backup aborted by signal: upload aborted, no manifest written");
            return Err(e);
        }
        Err(e) => {
            return Err(e.context(format!(
                "physical backup {id} failed; no manifest was written, so it does not exist"
            )))
        }
    };
    let consistent_at = Utc::now();
    let mut written = vec![base_key.clone()];
    let result = async {
        check_size(&base_info, &base)?;
        // 3. Where in the WAL it starts and ends.
        let wal_range = wal_range(&log, srv.segment_size)?;
        check_stop(&opts.stop)?;
        // 4. The encrypted metadata.
        let metadata = PhysicalMetadata {
            format: catalog::FORMAT,
            id: id.clone(),
            base: base.clone(),
            wal: wal_range.clone(),
            log: log.clone(),
            pg_basebackup_version: version(srv.major),
        };
        let metadata_key = catalog::key(&id, catalog::METADATA);
        let (sealed, digests) = seal_bytes(
            serde_json::to_vec_pretty(&metadata)?,
            recipients,
            opts.compression,
        )?;
        store.put(&metadata_key, sealed).await?;
        written.push(metadata_key.clone());
        // 5. The manifest, last.
        let manifest = Manifest {
            format: catalog::FORMAT,
            id: id.clone(),
            kind: catalog::PHYSICAL.into(),
            database: srv.database.clone(),
            server_version: srv.version.clone(),
            stockops_version: env!("CARGO_PKG_VERSION").into(),
            started_at,
            snapshot_at: consistent_at,
            finished_at: Utc::now(),
            recipients: recipients.public(),
            compression: format!("zstd level {}", opts.compression.level),
            objects: vec![
                StoredObject {
                    name: "base".into(),
                    key: base_key.clone(),
                    stored: base.stored.clone(),
                },
                StoredObject {
                    name: "metadata".into(),
                    key: metadata_key,
                    stored: digests.stored,
                },
            ],
            wal: Some(wal_range.clone()),
        };
        check_stop(&opts.stop)?;
        if let Some(lock) = opts.object_lock {
            for o in &manifest.objects {
                confirm_lock(store, &o.key, lock).await?;
            }
        }
        let manifest_key = catalog::key(&id, catalog::MANIFEST);
        store
            .put(&manifest_key, serde_json::to_vec_pretty(&manifest)?)
            .await?;
        if let Some(lock) = opts.object_lock {
            if let Err(e) = confirm_lock(store, &manifest_key, lock).await {
                let _ = store.delete(&manifest_key).await;
                return Err(e);
            }
        }
        anyhow::Ok(wal_range)
    }
    .await;
    match result {
        Ok(wal) => {
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(%id, start = %wal.start_lsn, stop = %wal.stop_lsn, seconds = format!("{seconds:.1}"), "physical backup complete");
            Ok(Summary {
                id,
                kind: catalog::PHYSICAL.into(),
                repository,
                bytes_in: base.plain.bytes,
                bytes_stored: base.stored.bytes,
                ratio: base.stored.bytes as f64 / base.plain.bytes.max(1) as f64,
                seconds,
                mb_per_s: base.plain.bytes as f64 / 1e6 / seconds.max(1e-9),
                wal,
                consistent_at,
            })
        }
        Err(e) => {
            for key in written {
                if let Err(d) = store.delete(&key).await {
                    tracing::warn!(%key, error = %d, "could not remove a partial backup object; `backups prune` will");
                }
            }
            if opts.stop.is_cancelled() {
                return Err(super::logical::aborted());
            }
            Err(e.context(format!(
                "physical backup {id} failed; no manifest was written, so it does not exist"
            )))
        }
    }
}

fn version(major: u32) -> String {
    Command::new(tool(major, "pg_basebackup"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The WAL start and end points from pg_basebackup's `--verbose` report:
/// `write-ahead log start point: 0/2000028 on timeline 1`,
/// `write-ahead log end point: 0/2000100`.
pub fn wal_range(log: &str, segment_size: u64) -> anyhow::Result<WalRange> {
    let after = |marker: &str| {
        log.lines().find_map(|l| {
            l.split_once(marker)
                .map(|(_, rest)| rest.trim().to_string())
        })
    };
    let start = after("write-ahead log start point:");
    let stop = after("write-ahead log end point:");
    let (Some(start), Some(stop)) = (start, stop) else {
        bail!("pg_basebackup's report names no WAL start and end point: {log}");
    };
    let (start_lsn, timeline) = match start.split_once(" on timeline ") {
        Some((lsn, tl)) => (lsn.trim().to_string(), tl.trim().parse::<u32>().ok()),
        None => (start.clone(), None),
    };
    let (Some(timeline), Some(s), Some(e)) =
        (timeline, wal::parse_lsn(&start_lsn), wal::parse_lsn(&stop))
    else {
        bail!("cannot read pg_basebackup's WAL start point {start:?} and end point {stop:?}");
    };
    Ok(WalRange {
        timeline,
        start_segment: wal::lsn_segment(s, timeline, segment_size),
        // The segment holding the last byte before the end point.
        stop_segment: wal::lsn_segment(e.max(1) - 1, timeline, segment_size),
        start_lsn,
        stop_lsn: stop,
        segment_size,
        includes_wal: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_the_wal_range() {
        let log = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\n\
                   pg_basebackup: checkpoint completed\n\
                   pg_basebackup: write-ahead log start point: 0/5000028 on timeline 2\n\
                   pg_basebackup: write-ahead log end point: 0/6000000\n\
                   pg_basebackup: base backup completed";
        let r = wal_range(log, wal::DEFAULT_SEGMENT_SIZE).unwrap();
        assert_eq!(r.timeline, 2);
        assert_eq!(r.start_lsn, "0/5000028");
        assert_eq!(r.start_segment, "000000020000000000000005");
        assert_eq!(r.stop_segment, "000000020000000000000005");
        assert!(wal_range("pg_basebackup: base backup completed", 1 << 24).is_err());
    }
}
