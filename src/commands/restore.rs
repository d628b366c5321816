//! `stockops restore ID|latest --target-url URL [--force] [--with-globals] [--json]`.

use crate::cli::RestoreArgs;
use crate::config::Settings;
use crate::exit;
use crate::pipeline::crypto::Identities;
use crate::recovery::logical::{self as restore, RestoreOptions};
use crate::repository::backups;

pub async fn run(settings: &Settings, args: RestoreArgs) -> anyhow::Result<u8> {
    let identities = Identities::load(settings.identity_file.as_deref())?;
    if args.physical {
        return physical(settings, args, &identities).await;
    }
    let target_url = args.target_url.clone().unwrap_or_default();
    let target = target_url.parse::<sqlx::postgres::PgConnectOptions>().map_err(|e| {
        exit::usage(format!("--target-url is not a valid database URL ({e}); expected postgres://USER@HOST:PORT/DBNAME"))
    })?;
    if url::Url::parse(&target_url).is_ok_and(|u| u.password().is_some()) {
        tracing::warn!(
            "the password in --target-url is visible to other local users (ps); prefer PGPASSFILE"
        );
    }
    let store = super::repository(settings).await?;
    let m = backups::resolve_kind(
        store.as_ref(),
        &args.id,
        crate::repository::catalog::LOGICAL,
    )
    .await?;
    tracing::info!(id = %m.id, snapshot = %m.snapshot_at, target = %crate::db::describe(&target), "restoring");
    let opts = RestoreOptions {
        force: args.force,
        with_globals: args.with_globals,
        regrant_memberships: args.regrant_memberships,
        jobs: args.jobs,
    };
    let report = restore::run(
        store.as_ref(),
        &m,
        &identities,
        &target,
        Some(&target_url),
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
        for w in &report.roles_withheld {
            println!("NOT APPLIED {w}");
        }
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

/// `restore --physical ID --target-dir DIR --to-time TS|--to-lsn LSN|--latest`.
async fn physical(
    settings: &Settings,
    args: RestoreArgs,
    identities: &Identities,
) -> anyhow::Result<u8> {
    use crate::recovery::physical::{self as pitr, PitrOptions, Target};
    let target = match (&args.to_time, &args.to_lsn, args.latest) {
        (Some(t), None, false) => Target::Time(pitr::parse_time(t)?),
        (None, Some(l), false) => {
            if crate::backup::wal::parse_lsn(l).is_none() {
                return Err(exit::usage(format!(
                    "--to-lsn {l:?} is not a WAL position (e.g. 0/3000060)"
                )));
            }
            Target::Lsn(l.clone())
        }
        (None, None, true) => Target::Latest,
        _ => return Err(exit::usage(
            "restore --physical needs one recovery target: --to-time TS, --to-lsn LSN or --latest",
        )),
    };
    let repo = settings
        .repo
        .clone()
        .ok_or_else(|| exit::usage("no backup repository: set --repo or STOCKOPS_REPO"))?;
    let identity_file = settings.identity_file.clone().ok_or_else(|| {
        exit::usage("no age identity: set --identity-file or STOCKOPS_AGE_IDENTITY")
    })?;
    let store = super::repository(settings).await?;
    let m = backups::resolve_kind(
        store.as_ref(),
        &args.id,
        crate::repository::catalog::PHYSICAL,
    )
    .await?;
    let opts = PitrOptions {
        target,
        target_dir: std::path::absolute(
            args.target_dir
                .as_deref()
                .unwrap_or(std::path::Path::new(".")),
        )?,
        port: match args.port {
            Some(p) => p,
            None => pitr::free_port()?,
        },
        repo,
        s3_path_style: settings.s3_path_style,
        identity_file,
        timeout: std::time::Duration::from_secs(args.recovery_timeout),
        throwaway: false,
    };
    tracing::info!(id = %m.id, dir = %opts.target_dir.display(), port = opts.port, "physical restore");
    let report = pitr::run(store.as_ref(), &m, identities, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "restored backup {} into {} to {} in {:.1}s: promoted at {} on timeline {}, last replayed commit {}; \
             the server runs on port {} (socket in {}): stop it with pg_ctl -D {} stop",
            report.backup,
            report.target_dir,
            report.target,
            report.seconds,
            report.lsn,
            report.timeline,
            report.reached_time.as_deref().unwrap_or("(none)"),
            report.port,
            report.target_dir,
            report.target_dir
        );
    }
    Ok(exit::SUCCESS)
}
