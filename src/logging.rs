//! Logging on stderr: readable text by default, one JSON object per line with
//! `--log-format json`. `STOCKOPS_LOG` takes a tracing filter
//! (`STOCKOPS_LOG=stockops=debug`). Reports go to stdout, never logs.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Install the global subscriber. `verbose` counts `-v` flags.
pub fn init(format: LogFormat, verbose: u8) -> anyhow::Result<()> {
    let default = match verbose {
        0 => "stockops=info,warn",
        1 => "stockops=debug,info",
        _ => "stockops=trace,debug",
    };
    let filter =
        EnvFilter::try_from_env("STOCKOPS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
