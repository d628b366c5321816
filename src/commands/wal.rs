//! `stockops wal push PATH`, `wal fetch NAME DEST`, `wal verify [--from-backup ID] [--json]`.
//!
//! push and fetch run once per WAL file, from the server's archiver and
//! startup process: no database connection, no progress bar, nothing on
//! standard output, and a missing file on fetch is a quiet exit 8.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::backup::wal::{self, Start};
use crate::cli::{WalCommand, WalFetchArgs, WalPushArgs, WalVerifyArgs};
use crate::config::Settings;
use crate::exit;
use crate::pipeline::crypto::{Identities, Recipients};
use crate::pipeline::Compression;
use crate::repository::backups;

pub async fn run(settings: &Settings, cmd: WalCommand) -> anyhow::Result<u8> {
    match cmd {
        WalCommand::Push(args) => push(settings, args).await,
        WalCommand::Fetch(args) => fetch(settings, args).await,
        WalCommand::Verify(args) => verify(settings, args).await,
    }
}

async fn push(settings: &Settings, args: WalPushArgs) -> anyhow::Result<u8> {
    let recipients = Recipients::load(settings.recipients_file.as_deref())?;
    let store = super::repository(settings).await?;
    let compression = Compression {
        level: args.zstd_level,
        workers: args.zstd_workers,
    };
    let pushed = wal::push(
        store.as_ref(),
        &args.path,
        &recipients,
        compression,
        args.ahead as usize,
    )
    .await?;
    if !pushed.already_archived {
        tracing::debug!(name = %pushed.name, stored = pushed.stored_bytes, "pushed");
    }
    Ok(exit::SUCCESS)
}

async fn fetch(settings: &Settings, args: WalFetchArgs) -> anyhow::Result<u8> {
    // A missing or bad identity is a configuration error, never "not there".
    let identities = Identities::load(settings.identity_file.as_deref())?;
    let store = super::repository(settings).await?;
    match wal::fetch(store.as_ref(), &args.name, &args.dest, &identities).await {
        Ok(f) => {
            tracing::debug!(name = %f.name, bytes = f.plain_bytes, "restored");
            Ok(exit::SUCCESS)
        }
        Err(e) if exit::code_for(&e) == exit::NOT_FOUND => {
            tracing::debug!("{e}");
            Ok(exit::NOT_FOUND)
        }
        Err(e) => Err(e),
    }
}

/// restore_command's exit: PostgreSQL takes codes 1 to 125 for "no such
/// file" and would end recovery there, silently short, so every failure but
/// a missing file exits [`exit::RECOVERY_ABORT`], which stops the recovery.
pub(super) fn fetch_failure(name: &str, e: anyhow::Error) -> anyhow::Error {
    if exit::code_for(&e) == exit::NOT_FOUND {
        return e;
    }
    exit::Coded::new(
        exit::RECOVERY_ABORT,
        format!(
            "could not restore WAL file {name} (exit {}: recovery stops here): {}",
            exit::RECOVERY_ABORT,
            exit::one_line(&e)
        ),
    )
    .into()
}

async fn verify(settings: &Settings, args: WalVerifyArgs) -> anyhow::Result<u8> {
    let store = super::repository(settings).await?;
    let mut segment_size = args.segment_size_mib * 1024 * 1024;
    if !segment_size.is_power_of_two() || !(1..=1024).contains(&args.segment_size_mib) {
        return Err(exit::usage(
            "--segment-size-mib must be a power of two from 1 to 1024",
        ));
    }
    let start = match &args.from_backup {
        Some(id) => {
            let m = backups::resolve_kind(store.as_ref(), id, crate::repository::catalog::PHYSICAL)
                .await?;
            let w = m
                .wal
                .clone()
                .ok_or_else(|| exit::usage(format!("backup {} records no WAL position", m.id)))?;
            segment_size = w.segment_size;
            // A backup that carries its own WAL needs the archive from
            // its last segment on (that one complete); else from its first.
            let segment = if w.includes_wal {
                w.stop_segment
            } else {
                w.start_segment
            };
            Some(Start {
                backup: m.id,
                timeline: w.timeline,
                segment,
            })
        }
        None => None,
    };
    let mut v = wal::verify(store.as_ref(), start.as_ref(), segment_size).await?;
    let stale = args.max_age_minutes.and_then(|max| {
        let limit = max as f64 * 60.0;
        match v.newest_age_seconds {
            Some(age) if age <= limit => None,
            Some(age) => Some(format!(
                "the newest WAL file was archived {} ago, more than --max-age-minutes {max}: \
                 is the archiver running? (pg_stat_archiver, archive_mode, archive_command)",
                crate::output::age(age)
            )),
            None => Some("no WAL file is archived at all: is archive_mode on?".to_string()),
        }
    });
    // The report says both; the exit names the gaps first.
    let continuous = v.ok;
    v.ok &= stale.is_none();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_verification(&v);
    }
    if !continuous {
        let gaps: u64 = v
            .timelines
            .iter()
            .flat_map(|t| &t.gaps)
            .map(|g| g.missing)
            .sum();
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!(
                "the WAL archive in {} is not continuous: {gaps} segment(s) missing, {} name(s) archived with different contents; \
                 recovery cannot pass a gap: take a new base backup (`stockops backup --physical`) and check archive_command \
                 (pg_stat_archiver.last_failed_wal)",
                v.repository,
                v.conflicts.len()
            ),
        )
        .into());
    }
    if let Some(why) = stale {
        return Err(exit::Coded::new(exit::FAILURE, why).into());
    }
    Ok(exit::SUCCESS)
}

fn print_verification(v: &wal::Verification) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["timeline", "from", "newest", "segments", "gaps"]);
    for t in &v.timelines {
        let gaps = if t.gaps.is_empty() {
            "none".to_string()
        } else {
            t.gaps
                .iter()
                .map(|g| format!("{}..{} ({})", g.from, g.to, g.missing))
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.add_row([
            t.timeline.clone(),
            t.from.clone(),
            t.newest.clone(),
            t.segments.to_string(),
            gaps,
        ]);
    }
    println!("{table}");
    for c in &v.conflicts {
        println!("CONFLICT {c}: archived more than once with different contents");
    }
    println!(
        "{} WAL object(s), {:.1} MB stored in {}{}{}: {}",
        v.objects,
        v.stored_bytes as f64 / 1e6,
        v.repository,
        v.from_backup
            .as_ref()
            .map(|b| format!(", from backup {b}"))
            .unwrap_or_default(),
        v.newest_age_seconds
            .map(|a| format!(", the newest archived {} ago", crate::output::age(a)))
            .unwrap_or_default(),
        if v.ok { "continuous" } else { "NOT OK" }
    );
}
