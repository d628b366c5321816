//! `stockops export stock --csv FILE|-`.

use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;

use anyhow::Context;

use crate::business::etl::export_stock;
use crate::cli::{ExportCommand, ExportStockArgs};
use crate::config::Settings;
use crate::exit;
use crate::private_file::PrivateDir;

pub async fn run(settings: &Settings, cmd: ExportCommand) -> anyhow::Result<u8> {
    let ExportCommand::Stock(args) = cmd;
    stock(settings, args).await
}

async fn stock(settings: &Settings, args: ExportStockArgs) -> anyhow::Result<u8> {
    let mut conn = super::connect(settings).await?;
    if args.csv.as_os_str() == "-" {
        if args.json {
            return Err(exit::usage(
                "--json reports on a file; it cannot share standard output with --csv -",
            ));
        }
        let out = std::io::stdout().lock();
        export_stock(&mut conn, BufWriter::new(out)).await?;
        return Ok(exit::SUCCESS);
    }
    // Written in a private directory beside its name (a name planted there
    // is never followed) and renamed: readers never see half a file.
    let dir = PrivateDir::beside(&args.csv, "stockops-export")
        .with_context(|| format!("creating a private directory beside {}", args.csv.display()))?;
    let (tmp, file) = dir
        .create("export.csv.partial")
        .with_context(|| format!("creating the export in {}", dir.path().display()))?;
    let mut out = BufWriter::new(file);
    let summary = export_stock(&mut conn, &mut out).await.and_then(|s| {
        out.flush()?;
        // Readable as an export always was, once complete.
        out.get_ref()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        out.get_ref().sync_all()?;
        Ok(s)
    })?;
    std::fs::rename(&tmp, &args.csv)
        .with_context(|| format!("renaming to {}", args.csv.display()))?;
    drop(dir);
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        v["file"] = args.csv.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "wrote {} products, {} warehouses, to {}",
            summary.products,
            summary.warehouses.len(),
            args.csv.display()
        );
    }
    Ok(exit::SUCCESS)
}
