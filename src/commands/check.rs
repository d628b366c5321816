//! `stockops check data [--json]`: the data-quality rules of
//! `api.data_quality`, one line per rule that finds something.

use crate::business::procedures::Row;
use crate::cli::{CheckCommand, Format};
use crate::config::Settings;
use crate::exit;
use crate::output::write_rows;

const COLUMNS: [&str; 5] = ["rule", "severity", "count", "example", "description"];

pub async fn run(settings: &Settings, cmd: CheckCommand) -> anyhow::Result<u8> {
    let CheckCommand::Data(args) = cmd;
    let mut conn = super::connect(settings).await?;
    let findings = data_quality(&mut conn).await?;
    if args.json {
        let doc = serde_json::json!({ "clean": findings.is_empty(), "findings": findings });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if findings.is_empty() {
        println!("data quality: every rule passes");
    } else {
        let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        write_rows(
            &mut std::io::stdout().lock(),
            &findings,
            &columns,
            Format::Table,
        )?;
    }
    if findings.is_empty() {
        Ok(exit::SUCCESS)
    } else {
        eprintln!(
            "{} data-quality rule(s) found something: see `docs/procedures.md` (data quality) for each rule and its fix",
            findings.len()
        );
        Ok(exit::DRIFT)
    }
}

/// Every finding of `api.data_quality`, errors first.
pub(crate) async fn data_quality(conn: &mut sqlx::PgConnection) -> anyhow::Result<Vec<Row>> {
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(t)::text FROM api.data_quality() AS t")
            .fetch_all(&mut *conn)
            .await
            .map_err(crate::db::explain)?;
    rows.iter()
        .map(|r| match serde_json::from_str(r)? {
            serde_json::Value::Object(m) => Ok(m),
            other => anyhow::bail!("unexpected data-quality row {other}"),
        })
        .collect()
}
