//! `stockops restore ID|latest --target-url URL [--force] [--with-globals] [--json]`.

use crate::backups;
use crate::cli::RestoreArgs;
use crate::config::Settings;
use crate::crypto::Identities;
use crate::exit;
use crate::restore::{self, RestoreOptions};

pub async fn run(settings: &Settings, args: RestoreArgs) -> anyhow::Result<u8> {
    let identities = Identities::load(settings.identity_file.as_deref())?;
    let target = args.target_url.parse::<sqlx::postgres::PgConnectOptions>().map_err(|e| {
        exit::usage(format!("--target-url is not a valid database URL ({e}); expected postgres://USER@HOST:PORT/DBNAME"))
    })?;
    if url::Url::parse(&args.target_url).is_ok_and(|u| u.password().is_some()) {
        tracing::warn!(
            "the password in --target-url is visible to other local users (ps); prefer PGPASSFILE"
        );
    }
    let store = super::repository(settings).await?;
    let m = backups::resolve_kind(store.as_ref(), &args.id, crate::catalog::LOGICAL).await?;
    tracing::info!(id = %m.id, snapshot = %m.snapshot_at, target = %crate::db::describe(&target), "restoring");
    let opts = RestoreOptions {
        force: args.force,
        with_globals: args.with_globals,
        jobs: args.jobs,
    };
    let report = restore::run(
        store.as_ref(),
        &m,
        &identities,
        &target,
        Some(&args.target_url),
        opts,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "restored backup {} into {} in {:.1}s: {} tables, {} rows{}",
            report.id,
            report.target,
            report.seconds,
            report.tables_checked,
            report.rows,
            if report.roles_created > 0 {
                format!(", {} roles created", report.roles_created)
            } else {
                String::new()
            }
        );
        for m in &report.mismatches {
            println!("MISMATCH {m}");
        }
    }
    if let Some(first) = report.mismatches.first() {
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!(
                "the restore is not complete: {} table(s) differ from the backup, first {first}",
                report.mismatches.len()
            ),
        )
        .into());
    }
    if !args.json {
        println!("verified: every table's row count and fingerprint match the backup's snapshot");
    }
    Ok(exit::SUCCESS)
}
