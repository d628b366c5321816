//! `stockops backup [--json] [--metrics-file FILE] [--zstd-level N] ...`.

use std::io::IsTerminal;
use std::time::Instant;

use crate::backup::{self, logical::BackupOptions};
use crate::cli::BackupArgs;
use crate::config::Settings;
use crate::exit;
use crate::pipeline::crypto::Recipients;
use crate::pipeline::Compression;

pub async fn run(settings: &Settings, args: BackupArgs) -> anyhow::Result<u8> {
    // From here SIGTERM and SIGINT abort the backup cleanly instead of killing
    // the process mid-upload.
    let stop = crate::interrupt::token()?;
    // Fail closed before connecting to anything: no usable recipient, no backup.
    let recipients = Recipients::load(settings.recipients_file.as_deref())?;
    let mut settings = settings.clone();
    settings.upload_concurrency = args.upload_concurrency as usize;
    settings.object_lock =
        args.object_lock_days
            .map(|days| crate::repository::storage::ObjectLock {
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
        stop,
    };
    let started = Instant::now();
    if args.physical {
        return physical(
            &settings,
            &args,
            store.as_ref(),
            &recipients,
            &opts,
            started,
        )
        .await;
    }
    let result = backup::logical::run(
        &db_opts,
        settings.database_url.as_deref(),
        store.as_ref(),
        &recipients,
        &opts,
    )
    .await;
    record_metrics(
        &args,
        started,
        result.as_ref().ok().map(|s| (s.bytes_in, s.bytes_stored)),
    );
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

/// `backup --physical`: a base backup of the whole cluster.
async fn physical(
    settings: &Settings,
    args: &BackupArgs,
    store: &dyn crate::repository::storage::WriteStore,
    recipients: &Recipients,
    opts: &BackupOptions,
    started: Instant,
) -> anyhow::Result<u8> {
    let db_opts = settings.connect_options()?;
    let result = backup::physical::run(
        &db_opts,
        settings.database_url.as_deref(),
        store,
        recipients,
        opts,
    )
    .await;
    record_metrics(
        args,
        started,
        result.as_ref().ok().map(|s| (s.bytes_in, s.bytes_stored)),
    );
    let summary = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{}", summary.id);
        eprintln!(
            "physical backup {}: {:.1} MB in, {:.1} MB stored ({:.0}%), {:.1}s, {:.1} MB/s; WAL {} to {} on timeline {}",
            summary.id,
            summary.bytes_in as f64 / 1e6,
            summary.bytes_stored as f64 / 1e6,
            summary.ratio * 100.0,
            summary.seconds,
            summary.mb_per_s,
            summary.wal.start_lsn,
            summary.wal.stop_lsn,
            summary.wal.timeline
        );
    }
    Ok(exit::SUCCESS)
}

/// The backup's metrics: its sizes on success, the failure time otherwise.
fn record_metrics(args: &BackupArgs, started: Instant, sizes: Option<(u64, u64)>) {
    let figures = match sizes {
        Some((plain, stored)) => vec![
            ("bytes{kind=\"plain\"}", plain as f64),
            ("bytes{kind=\"stored\"}", stored as f64),
        ],
        None => vec![],
    };
    crate::ops::metrics::record_or_warn(
        args.metrics_file.as_deref(),
        "backup",
        sizes.is_some(),
        started.elapsed().as_secs_f64(),
        &figures,
    );
}
