//! `stockops backups list|show|verify|prune`.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{BackupsCommand, PruneArgs, VerifyArgs};
use crate::config::Settings;
use crate::exit;
use crate::pipeline::crypto::Identities;
use crate::repository::backups;
use crate::repository::prune;
use crate::repository::storage::WriteStore;

pub async fn run(settings: &Settings, cmd: BackupsCommand) -> anyhow::Result<u8> {
    let store = super::repository(settings).await?;
    let store = store.as_ref();
    match cmd {
        BackupsCommand::List(args) => {
            let all = backups::list(store).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(exit::SUCCESS);
            }
            let mut table = Table::new();
            table.load_preset(UTF8_BORDERS_ONLY);
            table.set_header(["id", "state", "snapshot (UTC)", "database", "stored"]);
            for l in &all {
                let (snapshot, database) = l
                    .manifest
                    .as_ref()
                    .map(|m| {
                        (
                            m.snapshot_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            m.database.clone(),
                        )
                    })
                    .unwrap_or_default();
                let state = match &l.manifest {
                    _ if l.untrusted.is_some() => "UNTRUSTED (see below)",
                    _ if !l.damaged.is_empty() => "DAMAGED (see below)",
                    Some(m) if m.is_physical() => "complete (physical)",
                    Some(_) => "complete",
                    None => "INCOMPLETE (no manifest)",
                };
                table.add_row([
                    l.id.clone(),
                    state.into(),
                    snapshot,
                    database,
                    format!("{:.1} MB", l.stored_bytes as f64 / 1e6),
                ]);
            }
            println!("{table}");
            for l in &all {
                if let Some(why) = &l.untrusted {
                    println!("{why}");
                }
                for d in &l.damaged {
                    println!("backup {} is damaged: {d}", l.id);
                }
            }
            println!(
                "{} backup(s) in {}",
                all.iter().filter(|l| l.trusted().is_some()).count(),
                store.describe()
            );
        }
        BackupsCommand::Show(args) => {
            let m = backups::resolve(store, &args.id).await?;
            let identities = optional_identities(settings)?;
            if m.is_physical() {
                return show_physical(store, &m, identities.as_ref(), args.json).await;
            }
            let meta = match &identities {
                Some(ids) => Some(backups::metadata(store, &m, ids).await?),
                None => None,
            };
            if args.json {
                let out = serde_json::json!({ "manifest": m, "metadata": meta });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(exit::SUCCESS);
            }
            println!("backup      {}", m.id);
            println!(
                "database    {} (PostgreSQL {})",
                m.database, m.server_version
            );
            println!(
                "snapshot    {} (started {}, finished {})",
                m.snapshot_at, m.started_at, m.finished_at
            );
            println!("encrypted   to {}", m.recipients.join(", "));
            println!("compression {}", m.compression);
            for o in &m.objects {
                println!(
                    "object      {:<9} {:>12} bytes  sha256 {}",
                    o.name, o.stored.bytes, o.stored.sha256
                );
            }
            match meta {
                Some(meta) => {
                    println!("audit head  {}", meta.audit_head.as_deref().unwrap_or("(no audit schema)"));
                    println!("dump        {} bytes by {}", meta.data.plain.bytes, meta.pg_dump_version);
                    for t in &meta.tables {
                        println!("table       {}.{}: {} rows", t.schema, t.table, t.rows);
                    }
                }
                None => println!("(give --identity-file to see the encrypted metadata: tables, row counts, audit head)"),
            }
        }
        BackupsCommand::Verify(args) => {
            let started = std::time::Instant::now();
            // Read-only: dropping it on a signal leaves nothing behind.
            let result =
                crate::interrupt::cancelled("verify", verify(settings, store, &args)).await;
            crate::ops::metrics::record_or_warn(
                args.metrics_file.as_deref(),
                "verify",
                result.is_ok(),
                started.elapsed().as_secs_f64(),
                &[],
            );
            result?;
        }
        BackupsCommand::Prune(args) => {
            let started = std::time::Instant::now();
            let result = prune(store, &args).await;
            let figures = match &result {
                Ok((deleted, aborted)) => vec![
                    ("pruned_backups", *deleted as f64),
                    ("aborted_uploads", *aborted as f64),
                ],
                Err(_) => vec![],
            };
            crate::ops::metrics::record_or_warn(
                args.metrics_file.as_deref(),
                "prune",
                result.is_ok(),
                started.elapsed().as_secs_f64(),
                &figures,
            );
            result?;
        }
    }
    Ok(exit::SUCCESS)
}

/// The identity, when one is configured: these commands work without it.
fn optional_identities(settings: &Settings) -> anyhow::Result<Option<Identities>> {
    settings
        .identity_file
        .as_deref()
        .map(|p| Identities::load(Some(p)))
        .transpose()
}

/// `backups verify ID`: every check printed, the first failure the error.
async fn verify(
    settings: &Settings,
    store: &dyn WriteStore,
    args: &VerifyArgs,
) -> anyhow::Result<()> {
    let m = backups::resolve(store, &args.id).await?;
    let identities = optional_identities(settings)?;
    let v = backups::verify(store, &m, identities.as_ref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &v.checks {
            println!(
                "{} {:<20} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.object,
                c.detail
            );
        }
    }
    if !v.ok() {
        let first = v.checks.iter().find(|c| !c.ok).expect("a failed check");
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!(
                "backup {} does not verify: {}: {}",
                v.id, first.object, first.detail
            ),
        )
        .into());
    }
    if !args.json {
        let depth = if v.deep {
            "decrypted, plaintext and archive checked"
        } else {
            "stored bytes checked (no identity given)"
        };
        println!("backup {} verified: {depth}", v.id);
    }
    Ok(())
}

/// `backups prune`: the plan printed, then applied unless `--dry-run`; a
/// stop signal lets the backup being deleted finish and leaves the rest.
/// Returns the backups deleted and the stale uploads aborted.
async fn prune(store: &dyn WriteStore, args: &PruneArgs) -> anyhow::Result<(usize, usize)> {
    let stop = crate::interrupt::token()?;
    let policy = prune::Policy {
        keep_last: args.keep_last,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
    };
    let plan = prune::make_plan(
        store,
        policy,
        std::time::Duration::from_secs(args.grace_hours * 3600),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        for d in &plan.backups {
            let when = d
                .snapshot_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "-".into());
            let action = if d.keep {
                "keep  "
            } else if args.dry_run {
                "would delete"
            } else {
                "delete"
            };
            println!("{action} {}  {when}  {}", d.id, d.reasons.join(", "));
        }
        if let Some(w) = &plan.wal {
            println!(
                "{} {} WAL file(s), {:.1} MB, before {} (start of {}, the oldest physical backup kept): \
                 point-in-time recovery stays possible from {}",
                if args.dry_run { "would delete" } else { "delete" },
                w.expired,
                w.expired_bytes as f64 / 1e6,
                w.from_segment,
                w.from_backup,
                w.window_from.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        for u in &plan.stale_uploads {
            println!(
                "{} stale upload {u}",
                if args.dry_run { "would abort" } else { "abort" }
            );
        }
    }
    if args.dry_run {
        return Ok((0, 0));
    }
    let (deleted, aborted) = prune::apply(store, &plan, &stop).await?;
    eprintln!("pruned {deleted} backup(s), aborted {aborted} stale upload(s)");
    Ok((deleted, aborted))
}

/// `backups show` of a physical backup: its WAL range, and with an identity its metadata.
async fn show_physical(
    store: &dyn WriteStore,
    m: &crate::repository::catalog::Manifest,
    identities: Option<&Identities>,
    json: bool,
) -> anyhow::Result<u8> {
    let meta = match identities {
        Some(ids) => Some(backups::physical_metadata(store, m, ids).await?),
        None => None,
    };
    if json {
        let out = serde_json::json!({ "manifest": m, "metadata": meta });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::SUCCESS);
    }
    println!("backup      {} (physical: the whole cluster)", m.id);
    println!("server      PostgreSQL {}", m.server_version);
    println!(
        "consistent  {} (started {}, finished {})",
        m.snapshot_at, m.started_at, m.finished_at
    );
    if let Some(w) = &m.wal {
        println!(
            "wal         {} to {} on timeline {} (segments {} to {}{})",
            w.start_lsn,
            w.stop_lsn,
            w.timeline,
            w.start_segment,
            w.stop_segment,
            if w.includes_wal { ", included" } else { "" }
        );
    }
    println!("encrypted   to {}", m.recipients.join(", "));
    println!("compression {}", m.compression);
    for o in &m.objects {
        println!(
            "object      {:<9} {:>12} bytes  sha256 {}",
            o.name, o.stored.bytes, o.stored.sha256
        );
    }
    match meta {
        Some(meta) => println!(
            "base        {} bytes by {}",
            meta.base.plain.bytes, meta.pg_basebackup_version
        ),
        None => println!("(give --identity-file to see the encrypted metadata)"),
    }
    Ok(exit::SUCCESS)
}
