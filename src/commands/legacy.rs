//! `stockops import legacy --sqlite FILE [--warehouse CODE] [--dry-run] [--json]`.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::business::etl::legacy;
use crate::cli::ImportLegacyArgs;
use crate::config::Settings;
use crate::exit;

pub async fn run(settings: &Settings, args: ImportLegacyArgs) -> anyhow::Result<u8> {
    if !args.sqlite.is_file() {
        return Err(exit::usage(format!(
            "{} is not a file; give the legacy database with --sqlite FILE",
            args.sqlite.display()
        )));
    }
    let path = args.sqlite.clone();
    let warehouse = args.warehouse.clone();
    let read = tokio::task::spawn_blocking(move || legacy::read(&path, warehouse.as_deref()))
        .await?
        .map_err(|e| exit::usage(exit::one_line(&e)))?;
    let source = args
        .sqlite
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.sqlite.display().to_string());
    let mut conn = super::connect(settings).await?;
    let findings = legacy::reconcile(&mut conn, &source, &read, !args.dry_run).await?;
    let adjusted = findings
        .iter()
        .filter(|f| f.action.starts_with("adjusted") || f.action.starts_with("would adjust"))
        .count();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "source": source,
                "read": {
                    "products": read.products.len(),
                    "resellers": read.resellers.len(),
                    "stock": read.stock.len(),
                },
                "applied": !args.dry_run,
                "adjusted": adjusted,
                "findings": findings,
            }))?
        );
        return Ok(exit::SUCCESS);
    }
    if !findings.is_empty() {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY);
        table.set_header(["what", "key", "field", "legacy", "central", "action"]);
        for f in &findings {
            table.add_row([
                f.entity.as_str(),
                f.key.as_str(),
                f.field.as_deref().unwrap_or(""),
                f.legacy.as_deref().unwrap_or(""),
                f.central.as_deref().unwrap_or(""),
                f.action.as_str(),
            ]);
        }
        println!("{table}");
    }
    println!(
        "{source}: {} products, {} resellers, {} stock counts read; {} level(s) {}, {} other difference(s) reported",
        read.products.len(),
        read.resellers.len(),
        read.stock.len(),
        adjusted,
        if args.dry_run { "would be adjusted (dry run)" } else { "adjusted" },
        findings.len() - adjusted
    );
    Ok(exit::SUCCESS)
}
