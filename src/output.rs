//! Rendering rows (JSON objects in column order) as a table, CSV or JSON.

use std::io::Write;

use comfy_table::{presets::UTF8_BORDERS_ONLY, CellAlignment, Table};
use serde_json::Value;

use crate::business::procedures::Row;
use crate::cli::Format;

/// A cell as text: strings bare, null empty, anything else as JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Write `rows` in `format`; `columns` names the header when there are no rows.
pub fn write_rows(
    out: &mut dyn Write,
    rows: &[Row],
    columns: &[String],
    format: Format,
) -> anyhow::Result<()> {
    let columns: Vec<String> = match rows.first() {
        Some(first) => first.keys().cloned().collect(),
        None => columns.to_vec(),
    };
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(&columns)?;
            for r in rows {
                w.write_record(
                    columns
                        .iter()
                        .map(|c| r.get(c).map(cell).unwrap_or_default()),
                )?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_BORDERS_ONLY);
            table.set_header(&columns);
            for r in rows {
                table.add_row(
                    columns
                        .iter()
                        .map(|c| r.get(c).map(cell).unwrap_or_default()),
                );
            }
            if let Some(first) = rows.first() {
                for (i, c) in columns.iter().enumerate() {
                    if first.get(c).is_some_and(Value::is_number) {
                        if let Some(col) = table.column_mut(i) {
                            col.set_cell_alignment(CellAlignment::Right);
                        }
                    }
                }
            }
            writeln!(out, "{table}")?;
            writeln!(out, "{} row(s)", rows.len())?;
        }
    }
    Ok(())
}

/// A duration for people: 42 s, 12 min, 3.5 h, 2.0 days.
pub fn age(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86400.0)
    }
}
