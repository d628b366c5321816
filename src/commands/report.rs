//! `stockops report stock [--warehouse W] [--status S] [--limit N] [--format table|csv|json]`.

use anyhow::Context;
use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};

use crate::cli::{Format, ReportCommand, StockStatus};
use crate::config::Settings;
use crate::exit;
use crate::report::{self, STOCK_COLUMNS};

pub async fn run(settings: &Settings, cmd: ReportCommand) -> anyhow::Result<u8> {
    let ReportCommand::Stock(args) = cmd;
    let mut conn = super::connect(settings).await?;
    let status = args.status.map(|s| match s {
        StockStatus::Ok => "ok",
        StockStatus::Low => "low",
        StockStatus::Out => "out",
    });
    let rows = report::stock(&mut conn, args.warehouse.as_deref(), status, args.limit)
        .await
        .context("reading api.stock_status")?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(STOCK_COLUMNS)?;
            for r in &rows {
                w.write_record(r.fields())?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_BORDERS_ONLY);
            table.set_header(STOCK_COLUMNS);
            for r in &rows {
                table.add_row(r.fields());
            }
            for i in 2..6 {
                if let Some(col) = table.column_mut(i) {
                    col.set_cell_alignment(CellAlignment::Right);
                }
            }
            println!("{table}");
            println!("{} row(s)", rows.len());
        }
    }
    Ok(exit::SUCCESS)
}
