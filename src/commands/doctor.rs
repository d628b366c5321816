//! `stockops doctor [--json] [--max-backup-age-hours H] [--max-drill-age-days D] [--allow-superuser ROLES]`.

use std::time::Duration;

use crate::cli::DoctorArgs;
use crate::config::Settings;
use crate::exit;
use crate::ops::doctor::{self, DoctorOptions, Severity};

pub async fn run(settings: &Settings, args: DoctorArgs) -> anyhow::Result<u8> {
    let store = match settings.repo {
        Some(_) => Some(super::repository(settings).await?),
        None => None,
    };
    let mut conn = super::connect(settings).await?;
    let opts = DoctorOptions {
        max_backup_age: Duration::from_secs(args.max_backup_age_hours * 3600),
        max_drill_age: Duration::from_secs(args.max_drill_age_days * 86400),
        allow_superuser: args.allow_superuser,
    };
    let report = doctor::run(&mut conn, store.as_deref(), &opts).await?;
    let high = report.count(Severity::High);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.findings {
            println!("{:<6}  {}: {}", f.severity.label(), f.check, f.title);
            println!("        evidence: {}", f.evidence);
            println!("        fix: {}", f.fix);
        }
        let ok: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.result == "ok")
            .map(|c| c.about)
            .collect();
        if !ok.is_empty() {
            println!("ok      {}", ok.join(", "));
        }
        println!(
            "{} high, {} medium, {} low finding(s) in {} checks",
            high,
            report.count(Severity::Medium),
            report.count(Severity::Low),
            report.checks.len()
        );
    }
    if high > 0 {
        return Err(exit::Coded::new(
            exit::DRIFT,
            format!("doctor: {high} high finding(s); each names its fix"),
        )
        .into());
    }
    Ok(exit::SUCCESS)
}
