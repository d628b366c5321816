//! `stockops export stock --csv FILE|-`.

use std::io::{BufWriter, Write};

use anyhow::Context;

use crate::cli::{ExportCommand, ExportStockArgs};
use crate::config::Settings;
use crate::etl::export_stock;
use crate::exit;

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
    // Written beside its name and renamed: readers never see half a file.
    let mut tmp = args.csv.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut out = BufWriter::new(file);
    let result = export_stock(&mut conn, &mut out).await;
    let summary = match result.and_then(|s| {
        out.flush()?;
        out.get_ref().sync_all()?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &args.csv)
        .with_context(|| format!("renaming to {}", args.csv.display()))?;
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
