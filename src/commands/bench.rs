//! `stockops bench procedures [--clients 1,4,16] [--seconds 10] [--json]`,
//! `stockops bench import [--rows 1000000] [--json]`,
//! `stockops bench watch [--changes 1000] [--gap-ms 5] [--json]`,
//! `stockops bench forecast [--holdout-weeks 4] [--history-weeks 8] [--json]`.

use crate::bench;
use crate::cli::{BenchCommand, BenchForecastArgs, BenchImportArgs, BenchWatchArgs};
use crate::config::Settings;
use crate::exit;

pub async fn run(settings: &Settings, cmd: BenchCommand) -> anyhow::Result<u8> {
    let args = match cmd {
        BenchCommand::Procedures(args) => args,
        BenchCommand::Import(args) => return import(settings, args).await,
        BenchCommand::Watch(args) => return watch(settings, args).await,
        BenchCommand::Forecast(args) => return forecast(settings, args).await,
    };
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

async fn import(settings: &Settings, args: BenchImportArgs) -> anyhow::Result<u8> {
    if args.rows == 0 {
        return Err(exit::usage("--rows takes a positive count"));
    }
    let opts = settings.connect_options()?;
    let r = bench::import(&opts, args.rows, args.batch_size as usize, args.keep).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(exit::SUCCESS);
    }
    println!(
        "import orders of {} lines ({} orders, {} lines a call) vs COPY of the same clean rows",
        r.rows, r.orders, r.batch_size
    );
    println!("{:>8}  {:>10}  {:>12}", "", "seconds", "lines/s");
    println!(
        "{:>8}  {:>10.2}  {:>12.0}",
        "COPY", r.copy_seconds, r.copy_rows_per_s
    );
    println!(
        "{:>8}  {:>10.2}  {:>12.0}",
        "import", r.import_seconds, r.import_rows_per_s
    );
    println!("ratio {:.2} (goal: at most 2.0)", r.ratio);
    Ok(exit::SUCCESS)
}

async fn watch(settings: &Settings, args: BenchWatchArgs) -> anyhow::Result<u8> {
    let opts = settings.connect_options()?;
    let r = bench::watch(
        &opts,
        args.changes as usize,
        std::time::Duration::from_millis(args.gap_ms),
        args.keep,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(exit::SUCCESS);
    }
    println!(
        "latency from sending the committing call to the line ready, {} changes, {} ms apart",
        r.changes, args.gap_ms
    );
    println!(
        "{:>32}  {:>8}  {:>8}  {:>8}",
        "", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "{:>32}  {:>8.2}  {:>8.2}  {:>8.2}",
        "bare NOTIFY (baseline)", r.notify_p50_ms, r.notify_p99_ms, r.notify_max_ms
    );
    println!(
        "{:>32}  {:>8.2}  {:>8.2}  {:>8.2}",
        "api.adjust_stock → watch line", r.watch_p50_ms, r.watch_p99_ms, r.watch_max_ms
    );
    println!("p99 ratio {:.2} (goal: p99 under 100 ms)", r.p99_ratio);
    Ok(exit::SUCCESS)
}

async fn forecast(settings: &Settings, args: BenchForecastArgs) -> anyhow::Result<u8> {
    if !(args.scale > 0.0 && args.scale <= 10.0) {
        return Err(exit::usage("--scale takes a volume between 0 and 10"));
    }
    let opts = settings.connect_options()?;
    let r = bench::forecast(
        &opts,
        args.scale,
        args.history_weeks,
        args.holdout_weeks,
        args.keep,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(exit::SUCCESS);
    }
    println!(
        "{} held-out weeks ({} to {}) forecast from {} weeks before; seed scale {}",
        r.holdout_weeks, r.holdout_from, r.holdout_to, r.history_weeks, r.scale
    );
    println!(
        "{} product × warehouse series, {} points, {:.3} units sold per point",
        r.series, r.points, r.actual_mean
    );
    println!("{:>28}  {:>8}  {:>8}", "", "MAE", "bias");
    println!(
        "{:>28}  {:>8.3}  {:>+7.1}%",
        "naive (same day last week)",
        r.naive_mae,
        r.naive_bias * 100.0
    );
    println!(
        "{:>28}  {:>8.3}  {:>+7.1}%",
        "api.demand_forecast",
        r.forecast_mae,
        r.forecast_bias * 100.0
    );
    println!(
        "MAE ratio {:.3} (below 1: the forecast beats the naive one)",
        r.ratio
    );
    Ok(exit::SUCCESS)
}
