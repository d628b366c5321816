//! `stockops seed [--scale N] [--rng-seed S] [--as-of DATE] [--json]`.

use crate::business::seed::{self, SeedOptions};
use crate::cli::SeedArgs;
use crate::config::Settings;
use crate::exit;

pub async fn run(settings: &Settings, args: SeedArgs) -> anyhow::Result<u8> {
    let as_of = args
        .as_of
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let opts = SeedOptions {
        scale: args.scale,
        rng_seed: args.rng_seed,
        as_of,
    };
    let mut conn = super::connect(settings).await?;
    tracing::info!(scale = opts.scale, rng_seed = opts.rng_seed, %as_of, "seeding");
    let summary = seed::run(&mut conn, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for (table, rows) in &summary.rows {
            println!("{table:>22}  {rows:>10}");
        }
        println!(
            "seeded {} rows in {:.1}s ({:.0} rows/s); database is {:.1} MiB",
            summary.total_rows,
            summary.seconds,
            summary.total_rows as f64 / summary.seconds.max(1e-9),
            summary.database_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(exit::SUCCESS)
}
