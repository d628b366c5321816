//! `stockops import orders --csv FILE [--reseller CODE] [--strict] [--json]`.

use chrono::{Days, Utc};

use crate::business::etl::import::default_rejects_path;
use crate::business::etl::{import_orders, ImportOptions, ImportSummary};
use crate::cli::{ImportCommand, ImportOrdersArgs};
use crate::config::Settings;
use crate::exit;

pub async fn run(settings: &Settings, cmd: ImportCommand) -> anyhow::Result<u8> {
    match cmd {
        ImportCommand::Orders(args) => orders(settings, args).await,
        ImportCommand::Legacy(args) => super::legacy::run(settings, args).await,
    }
}

async fn orders(settings: &Settings, args: ImportOrdersArgs) -> anyhow::Result<u8> {
    if !args.csv.is_file() {
        return Err(exit::usage(format!(
            "{} is not a file; give the order file with --csv FILE",
            args.csv.display()
        )));
    }
    let opts = ImportOptions {
        source: args.csv.file_name().map_or_else(
            || args.csv.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        reseller: args.reseller.map(|r| r.trim().to_uppercase()),
        warehouse: args.warehouse,
        strict: args.strict,
        batch_size: args.batch_size as usize,
        rejects_path: args
            .rejects
            .unwrap_or_else(|| default_rejects_path(&args.csv)),
        // An order dated tomorrow may come from a reseller east of us; later is impossible.
        latest_date: Utc::now().date_naive() + Days::new(1),
    };
    let mut conn = super::connect(settings).await?;
    require_etl(&mut conn).await?;
    let summary = import_orders(&mut conn, &args.csv, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    if !summary.committed {
        eprintln!(
            "stockops: {} line(s) rejected and --strict given: nothing was loaded; see {}",
            summary.rejected, summary.rejects_file
        );
        return Ok(exit::FAILURE);
    }
    Ok(exit::SUCCESS)
}

/// Say who imports order files before the server refuses the call with a
/// bare "permission denied" (the server's check is what protects).
async fn require_etl(conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let (login, member): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'etl') \
                THEN pg_has_role(current_user, 'etl', 'MEMBER') ELSE false END",
    )
    .fetch_one(&mut *conn)
    .await?;
    if member {
        return Ok(());
    }
    Err(exit::Coded::new(
        exit::PERMISSION,
        format!(
            "login {login} is not a member of etl: order files are imported by etl logins \
             (stockops users add NAME --role etl); a reseller submits its own orders with api.submit_order"
        ),
    )
    .into())
}

fn print_summary(s: &ImportSummary) {
    println!(
        "{}: read {}, loaded {}, duplicates {}, rejected {} ({:.1}s, {}, {:?}-separated)",
        s.file, s.read, s.loaded, s.duplicates, s.rejected, s.seconds, s.encoding, s.delimiter
    );
    for (reason, n) in &s.rejected_by_reason {
        println!("  rejected {reason:<22} {n:>8}");
    }
    if s.is_noop() && s.committed {
        println!(
            "nothing new: no line was loaded ({} already imported, {} rejected)",
            s.duplicates, s.rejected
        );
    }
    if s.rejected > 0 {
        println!(
            "rejected lines: {} and inventory.import_rejects",
            s.rejects_file
        );
    }
}
