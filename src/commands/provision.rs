//! `stockops provision [--dry-run] [--check] [--json]`.

use std::time::Instant;

use crate::cli::ProvisionArgs;
use crate::config::Settings;
use crate::db::provision::{self, Declaration, Mode};
use crate::exit;

pub async fn run(settings: &Settings, args: ProvisionArgs) -> anyhow::Result<u8> {
    let decl = Declaration::embedded()?;
    let mut conn = super::connect(settings).await?;
    let started = Instant::now();
    let mode = if args.dry_run || args.check {
        Mode::Plan
    } else {
        Mode::Apply
    };
    let changes = provision::run(&mut conn, &decl, mode).await?;
    let seconds = started.elapsed().as_secs_f64();
    let code = if args.check && !changes.is_empty() {
        exit::DRIFT
    } else {
        exit::SUCCESS
    };
    if args.json {
        let out = serde_json::json!({
            "mode": if args.check { "check" } else if args.dry_run { "dry-run" } else { "apply" },
            "in_sync": changes.is_empty(),
            "changes": changes,
            "seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(code);
    }
    if args.check {
        for c in &changes {
            println!("drift: {}", c.description);
        }
        if changes.is_empty() {
            println!("in sync: the server matches roles/ and migrations/");
        } else {
            eprintln!(
                "stockops: {} difference(s); `stockops provision` repairs them",
                changes.len()
            );
        }
    } else if args.dry_run {
        println!(
            "-- stockops provision --dry-run: {} statement(s); nothing was changed",
            changes.len()
        );
        for c in &changes {
            println!("-- {}\n{}", c.description, c.sql);
        }
    } else {
        for c in &changes {
            tracing::info!(kind = c.kind, "{}", c.description);
        }
        tracing::info!(
            changes = changes.len(),
            seconds = format!("{seconds:.2}"),
            "provisioned"
        );
        if changes.is_empty() {
            println!("nothing to do: the server already matches roles/ and migrations/");
        } else {
            println!("applied {} change(s) in {seconds:.2}s", changes.len());
        }
    }
    Ok(code)
}
