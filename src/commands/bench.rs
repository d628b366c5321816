//! `stockops bench procedures [--clients 1,4,16] [--seconds 10] [--json]`.

use crate::bench;
use crate::cli::BenchCommand;
use crate::config::Settings;
use crate::exit;

pub async fn run(settings: &Settings, cmd: BenchCommand) -> anyhow::Result<u8> {
    let BenchCommand::Procedures(args) = cmd;
    if args.clients.is_empty() || args.clients.contains(&0) || args.seconds == 0 {
        return Err(exit::usage(
            "--clients takes positive counts and --seconds a positive number",
        ));
    }
    let opts = settings.connect_options()?;
    let rows = bench::procedures(&opts, &args.clients, args.seconds, args.keep).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::SUCCESS);
    }
    println!(
        "audited api.record_sale vs the same sale without its audit record ({} s each)",
        args.seconds
    );
    println!(
        "{:>8}  {:>16}  {:>16}  {:>6}",
        "clients", "baseline calls/s", "audited calls/s", "ratio"
    );
    for r in rows {
        println!(
            "{:>8}  {:>16.0}  {:>16.0}  {:>6.2}",
            r.clients, r.baseline_calls_per_s, r.audited_calls_per_s, r.ratio
        );
    }
    Ok(exit::SUCCESS)
}
