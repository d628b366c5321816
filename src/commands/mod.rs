//! One file per subcommand: resolve settings, call the domain module, print
//! the result. Returns the exit code on success; errors carry theirs.

mod audit;
mod bench;
mod call;
mod provision;
mod report;
mod seed;
mod users;

use crate::cli::{Cli, Command};
use crate::config::Settings;

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Provision(args) => provision::run(&settings, args).await,
        Command::Users(cmd) => users::run(&settings, cmd).await,
        Command::Seed(args) => seed::run(&settings, args).await,
        Command::Report(cmd) => report::run(&settings, cmd).await,
        Command::Call(args) => call::run(&settings, args).await,
        Command::Audit(cmd) => audit::run(&settings, cmd).await,
        Command::Bench(cmd) => bench::run(&settings, cmd).await,
    }
}

/// Connect to the configured database.
pub(crate) async fn connect(settings: &Settings) -> anyhow::Result<sqlx::PgConnection> {
    let opts = settings.connect_options()?;
    Ok(crate::db::connect(&opts).await?)
}
