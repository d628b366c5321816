//! `stockops audit verify|tail|export`.

use std::fs::File;
use std::io::{BufWriter, Write};

use crate::business::audit::{self, Head};
use crate::business::procedures::Row;
use crate::cli::{AuditCommand, AuditExportArgs, Format};
use crate::config::Settings;
use crate::exit;
use crate::output::{cell, write_rows};

const EVENT_COLUMNS: [&str; 11] = [
    "event_id",
    "occurred_at",
    "login",
    "acting_role",
    "function_name",
    "arguments",
    "result",
    "client_addr",
    "application_name",
    "txid",
    "sealed",
];

pub async fn run(settings: &Settings, cmd: AuditCommand) -> anyhow::Result<u8> {
    let mut conn = super::connect(settings).await?;
    match cmd {
        AuditCommand::Verify(args) => {
            let expect: Option<Head> = args.expect_head.as_deref().map(str::parse).transpose()?;
            let v = audit::verify(&mut conn, !args.no_seal, expect).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if v.problem.is_none() {
                println!(
                    "audit log verified: {} record(s) chained, {} not sealed yet; head {}",
                    v.chained, v.unsealed, v.head
                );
            }
            if let Some(problem) = v.problem {
                return Err(exit::Coded::new(
                    exit::FAILURE,
                    format!("audit log does not verify: {problem}"),
                )
                .into());
            }
        }
        AuditCommand::Tail(args) => {
            let sql = if args.format == Format::Table {
                // The columns that fit a terminal; csv and json carry them all.
                "SELECT row_to_json(t)::text FROM (SELECT event_id, occurred_at, login, acting_role, function_name,
                        arguments, result, sealed FROM api.audit_tail(p_count => $1)) AS t"
            } else {
                "SELECT row_to_json(t)::text FROM api.audit_tail(p_count => $1) AS t"
            };
            let rows = fetch(&mut conn, sql, args.count).await?;
            let columns: Vec<String> = EVENT_COLUMNS.iter().map(|c| c.to_string()).collect();
            write_rows(&mut std::io::stdout().lock(), &rows, &columns, args.format)?;
        }
        AuditCommand::Export(args) => export(&mut conn, &args).await?,
        AuditCommand::Seal => {
            let n = audit::seal(&mut conn).await?;
            println!("sealed {n} event(s)");
        }
    }
    Ok(exit::SUCCESS)
}

async fn fetch(conn: &mut sqlx::PgConnection, sql: &str, n: i32) -> anyhow::Result<Vec<Row>> {
    let rows: Vec<String> = sqlx::query_scalar(sql)
        .bind(n)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::db::explain)?;
    rows.iter().map(|r| Ok(serde_json::from_str(r)?)).collect()
}

/// Page through the period, writing as it goes: memory stays flat.
async fn export(conn: &mut sqlx::PgConnection, args: &AuditExportArgs) -> anyhow::Result<()> {
    if args.format == Format::Table {
        return Err(exit::usage(
            "audit export writes csv or json; use `audit tail` for a table",
        ));
    }
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).map_err(|e| {
                exit::usage(format!("cannot create {}: {e}", path.display()))
            })?))
        }
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let mut sink = match args.format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(EVENT_COLUMNS)?;
            Sink::Csv(Box::new(w))
        }
        _ => Sink::Json(out, 0),
    };
    let mut after = 0i64;
    loop {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT row_to_json(t)::text FROM api.audit_events(p_from => $1::timestamptz, p_to => $2::timestamptz,
                                                               p_after_event => $3, p_limit => 1000) AS t",
        )
        .bind(&args.from)
        .bind(&args.to)
        .bind(after)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::db::explain)?;
        if rows.is_empty() {
            break;
        }
        for text in &rows {
            let row: Row = serde_json::from_str(text)?;
            after = row
                .get("event_id")
                .and_then(|v| v.as_i64())
                .unwrap_or(after);
            match &mut sink {
                Sink::Csv(w) => w.write_record(
                    EVENT_COLUMNS
                        .iter()
                        .map(|c| row.get(*c).map(cell).unwrap_or_default()),
                )?,
                Sink::Json(w, n) => {
                    write!(w, "{}\n{text}", if *n == 0 { "[" } else { "," })?;
                    *n += 1;
                }
            }
        }
    }
    match sink {
        Sink::Csv(w) => w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing the export: {}", e.error()))?
            .flush()?,
        Sink::Json(mut w, n) => {
            writeln!(w, "{}]", if n == 0 { "[" } else { "\n" })?;
            w.flush()?;
        }
    }
    Ok(())
}

enum Sink {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Json(Box<dyn Write>, u64),
}
