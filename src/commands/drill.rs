//! `stockops drill [ID] [--target-url URL] [--max-rto SECS] [--max-rpo SECS] [--keep] [--json]`
//! and `stockops drills list`.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{DrillArgs, DrillsCommand};
use crate::config::Settings;
use crate::exit;
use crate::pipeline::crypto::Identities;
use crate::recovery::drill::{self, DrillOptions};
use crate::repository::backups;

pub async fn run(settings: &Settings, args: DrillArgs) -> anyhow::Result<u8> {
    let identities = Identities::load(settings.identity_file.as_deref())?;
    let target = match &args.target_url {
        Some(url) => Some((
            url.parse::<sqlx::postgres::PgConnectOptions>()
                .map_err(|e| {
                    exit::usage(format!("--target-url is not a valid database URL ({e})"))
                })?,
            url.clone(),
        )),
        None => None,
    };
    let store = super::repository(settings).await?;
    if args.physical {
        return physical(settings, &args, store.as_ref(), &identities).await;
    }
    let m = backups::resolve_kind(
        store.as_ref(),
        &args.id,
        crate::repository::catalog::LOGICAL,
    )
    .await?;
    tracing::info!(id = %m.id, "drill started");
    let opts = DrillOptions {
        target,
        max_rto: args.max_rto,
        max_rpo: args.max_rpo,
        keep: args.keep,
        redact: drill::Redact::from_env(settings.identity_file.as_deref()),
    };
    let started = std::time::Instant::now();
    let result = drill::run(store.as_ref(), &m, &identities, opts).await;
    let figures = match &result {
        Ok(r) => vec![
            ("rto_seconds", r.rto_seconds),
            ("rpo_seconds", r.rpo_seconds),
        ],
        Err(_) => vec![],
    };
    crate::ops::metrics::record_or_warn(
        args.metrics_file.as_deref(),
        "drill",
        matches!(&result, Ok(r) if r.ok),
        started.elapsed().as_secs_f64(),
        &figures,
    );
    let report = result?;
    print_report(&report, args.json)
}

/// Print a drill report; a failed check is the error.
fn print_report(report: &drill::DrillReport, json: bool) -> anyhow::Result<u8> {
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "drill of backup {} (snapshot {}) on {}",
            report.backup, report.snapshot_at, report.target
        );
        for p in &report.phases {
            println!("  {:>7.2}s  {}", p.seconds, p.name);
        }
        for c in &report.checks {
            println!(
                "  {}  {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        println!(
            "RTO {:.1}s (start to verified database), RPO {:.0}s (now minus the backup's snapshot)",
            report.rto_seconds, report.rpo_seconds
        );
    }
    if !report.ok {
        let first = report
            .checks
            .iter()
            .find(|c| !c.ok)
            .expect("a failed check");
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!("drill failed: {}: {}", first.name, first.detail),
        )
        .into());
    }
    Ok(exit::SUCCESS)
}

pub async fn list(settings: &Settings, cmd: DrillsCommand) -> anyhow::Result<u8> {
    let DrillsCommand::List(args) = cmd;
    let store = super::repository(settings).await?;
    let reports = drill::list(store.as_ref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(exit::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["drill (UTC)", "backup", "result", "RTO", "RPO"]);
    for r in &reports {
        table.add_row([
            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.backup.clone(),
            if r.ok {
                "passed".into()
            } else {
                "FAILED".into()
            },
            format!("{:.1}s", r.rto_seconds),
            format!("{:.0}s", r.rpo_seconds),
        ]);
    }
    println!("{table}");
    Ok(exit::SUCCESS)
}

/// `drill --physical [ID] [--to-time TS]`: a point-in-time recovery drill.
async fn physical(
    settings: &Settings,
    args: &DrillArgs,
    store: &dyn crate::repository::storage::WriteStore,
    identities: &Identities,
) -> anyhow::Result<u8> {
    let m = backups::resolve_kind(store, &args.id, crate::repository::catalog::PHYSICAL).await?;
    let to_time = match &args.to_time {
        Some(t) => Some(crate::recovery::physical::parse_time(t)?),
        None => None,
    };
    let opts = crate::recovery::physical::DrillOptions {
        to_time,
        max_rto: args.max_rto,
        max_rpo: args.max_rpo,
        keep: args.keep,
        repo: settings
            .repo
            .clone()
            .ok_or_else(|| exit::usage("no backup repository: set --repo or STOCKOPS_REPO"))?,
        s3_path_style: settings.s3_path_style,
        identity_file: settings.identity_file.clone().ok_or_else(|| {
            exit::usage("no age identity: set --identity-file or STOCKOPS_AGE_IDENTITY")
        })?,
        timeout: std::time::Duration::from_secs(3600),
    };
    tracing::info!(id = %m.id, "point-in-time recovery drill started");
    let started = std::time::Instant::now();
    let result = crate::recovery::physical::drill(store, &m, identities, &opts).await;
    let figures = match &result {
        Ok(r) => vec![
            ("rto_seconds", r.rto_seconds),
            ("rpo_seconds", r.rpo_seconds),
        ],
        Err(_) => vec![],
    };
    crate::ops::metrics::record_or_warn(
        args.metrics_file.as_deref(),
        "drill",
        matches!(&result, Ok(r) if r.ok),
        started.elapsed().as_secs_f64(),
        &figures,
    );
    print_report(&result?, args.json)
}
