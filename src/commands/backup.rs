//! `stockops backup [--json] [--metrics-file FILE] [--zstd-level N] ...`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use crate::backup::{self, BackupOptions};
use crate::cli::BackupArgs;
use crate::config::Settings;
use crate::crypto::Recipients;
use crate::exit;
use crate::pipeline::Compression;

pub async fn run(settings: &Settings, args: BackupArgs) -> anyhow::Result<u8> {
    // Fail closed before connecting to anything: no usable recipient, no backup.
    let recipients = Recipients::load(settings.recipients_file.as_deref())?;
    let mut settings = settings.clone();
    settings.upload_concurrency = args.upload_concurrency as usize;
    settings.object_lock = args
        .object_lock_days
        .map(|days| crate::storage::ObjectLock {
            compliance: args.object_lock_mode == crate::cli::LockMode::Compliance,
            days,
        });
    let store = super::repository(&settings).await?;
    let db_opts = settings.connect_options()?;
    let workers = args.zstd_workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    });
    let opts = BackupOptions {
        compression: Compression {
            level: args.zstd_level,
            workers,
        },
        part_size: args.part_size_mib as usize * 1024 * 1024,
        progress: !args.json && std::io::stderr().is_terminal(),
        object_lock: settings.object_lock,
    };
    let started = Instant::now();
    let result = backup::run(
        &db_opts,
        settings.database_url.as_deref(),
        store.as_ref(),
        &recipients,
        &opts,
    )
    .await;
    if let Some(path) = &args.metrics_file {
        let written = match &result {
            Ok(s) => write_metrics(path, Some((s.seconds, s.bytes_in, s.bytes_stored))),
            Err(_) => write_metrics(path, None),
        };
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), error = %e, "could not write the metrics file");
        }
    }
    let summary = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{}", summary.id);
        eprintln!(
            "backup {} of {}: {:.1} MB in, {:.1} MB stored ({:.0}%), {:.1}s, {:.1} MB/s; {} tables fingerprinted",
            summary.id,
            summary.database,
            summary.bytes_in as f64 / 1e6,
            summary.bytes_stored as f64 / 1e6,
            summary.ratio * 100.0,
            started.elapsed().as_secs_f64(),
            summary.mb_per_s,
            summary.tables
        );
    }
    Ok(exit::SUCCESS)
}

/// Prometheus textfile metrics, replaced atomically; a failure keeps the last
/// success's figures and only moves the failure time.
fn write_metrics(path: &Path, success: Option<(f64, u64, u64)>) -> std::io::Result<()> {
    let now = chrono::Utc::now().timestamp() as f64;
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    if let Ok(old) = std::fs::read_to_string(path) {
        for line in old.lines().filter(|l| !l.starts_with('#')) {
            if let Some((k, v)) = line.rsplit_once(' ') {
                if let Ok(v) = v.parse() {
                    values.insert(k.to_string(), v);
                }
            }
        }
    }
    match success {
        Some((seconds, bytes_in, bytes_stored)) => {
            values.insert("stockops_backup_last_success_timestamp_seconds".into(), now);
            values.insert("stockops_backup_duration_seconds".into(), seconds);
            values.insert(
                "stockops_backup_bytes{kind=\"plain\"}".into(),
                bytes_in as f64,
            );
            values.insert(
                "stockops_backup_bytes{kind=\"stored\"}".into(),
                bytes_stored as f64,
            );
            values.insert("stockops_backup_last_run_success".into(), 1.0);
        }
        None => {
            values.insert("stockops_backup_last_failure_timestamp_seconds".into(), now);
            values.insert("stockops_backup_last_run_success".into(), 0.0);
        }
    }
    let mut text = String::from("# stockops backup metrics (node_exporter textfile format)\n");
    for (k, v) in values {
        text.push_str(&format!("{k} {v}\n"));
    }
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
