//! `export stock`: the stock state per product as CSV
//! (`etat_stock_par_produit.csv`), streamed from `api.stock_by_product` a row
//! at a time.
//!
//! Columns, always in this order: `sku, name, category`, then
//! `on_hand_<WAREHOUSE>` for every warehouse in code order, then
//! `on_hand_total, reserved, on_order, reorder_point, status`. The text
//! columns pass through [`spreadsheet_safe`], as the reject file's do.

use std::io::Write;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::PgConnection;

use super::import::spreadsheet_safe;

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct ExportSummary {
    pub products: u64,
    pub warehouses: Vec<String>,
    pub columns: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    sku: String,
    name: String,
    category: String,
    warehouses: Vec<String>,
    on_hand: Vec<i32>,
    on_hand_total: i32,
    reserved: i32,
    on_order: i32,
    reorder_point: i32,
    status: String,
}

/// The header for these warehouses.
pub fn columns(warehouses: &[String]) -> Vec<String> {
    let mut cols: Vec<String> = ["sku", "name", "category"].map(String::from).to_vec();
    cols.extend(warehouses.iter().map(|w| format!("on_hand_{w}")));
    cols.extend(
        [
            "on_hand_total",
            "reserved",
            "on_order",
            "reorder_point",
            "status",
        ]
        .map(String::from),
    );
    cols
}

/// Stream the stock state into `out`; the header comes with the first row
/// (which names the warehouses), or alone when there is no product.
pub async fn export_stock(
    conn: &mut PgConnection,
    out: impl Write,
) -> anyhow::Result<ExportSummary> {
    let mut w = csv::Writer::from_writer(out);
    let mut summary = ExportSummary {
        products: 0,
        warehouses: Vec::new(),
        columns: Vec::new(),
    };
    let mut rows =
        sqlx::query_as::<_, Row>("SELECT * FROM api.stock_by_product()").fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        if summary.products == 0 {
            summary.warehouses = row.warehouses.clone();
            summary.columns = columns(&row.warehouses);
            w.write_record(&summary.columns)?;
        } else if row.warehouses != summary.warehouses {
            anyhow::bail!("the warehouses changed during the export; run it again");
        }
        // Text a person typed into the catalogue is never a live formula
        // in a spreadsheet; the figures are numbers and stay as they are.
        let mut record: Vec<String> = [&row.sku, &row.name, &row.category]
            .map(|t| spreadsheet_safe(t).into_owned())
            .to_vec();
        record.extend(row.on_hand.iter().map(i32::to_string));
        record.extend([
            row.on_hand_total.to_string(),
            row.reserved.to_string(),
            row.on_order.to_string(),
            row.reorder_point.to_string(),
            row.status,
        ]);
        w.write_record(&record)?;
        summary.products += 1;
    }
    if summary.products == 0 {
        summary.columns = columns(&[]);
        w.write_record(&summary.columns)?;
    }
    w.flush()?;
    Ok(summary)
}
