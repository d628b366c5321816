//! One file per subcommand: resolve settings, call the domain module, print
//! the result. Returns the exit code on success; errors carry theirs.

mod audit;
mod backup;
mod backups;
mod bench;
mod call;
mod check;
mod completions;
mod doctor;
mod drill;
mod export;
mod import;
mod legacy;
mod provision;
mod report;
mod restore;
mod schedule;
mod seed;
mod users;
mod wal;
mod watch;

use crate::cli::{Cli, Command};
use crate::config::Settings;

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    // `wal fetch` maps every failure, reading the settings included.
    if let Command::Wal(crate::cli::WalCommand::Fetch(args)) = &cli.command {
        let name = args.name.clone();
        return dispatch(cli)
            .await
            .map_err(|e| wal::fetch_failure(&name, e));
    }
    dispatch(cli).await
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Provision(args) => provision::run(&settings, args).await,
        Command::Users(cmd) => users::run(&settings, cmd).await,
        Command::Seed(args) => seed::run(&settings, args).await,
        Command::Report(cmd) => report::run(&settings, cmd).await,
        Command::Call(args) => call::run(&settings, args).await,
        Command::Audit(cmd) => audit::run(&settings, cmd).await,
        Command::Bench(cmd) => bench::run(&settings, cmd).await,
        // Dropped on a stop signal: the import's transaction is rolled back.
        Command::Import(cmd) => {
            crate::interrupt::cancelled("import", import::run(&settings, cmd)).await
        }
        Command::Export(cmd) => export::run(&settings, cmd).await,
        Command::Backup(args) => backup::run(&settings, args).await,
        Command::Backups(cmd) => backups::run(&settings, cmd).await,
        Command::Restore(args) => restore::run(&settings, args).await,
        Command::Wal(cmd) => wal::run(&settings, cmd).await,
        // Dropped on a stop signal: the scratch cluster's destructor stops and removes it.
        Command::Drill(args) => {
            crate::interrupt::cancelled("drill", drill::run(&settings, args)).await
        }
        Command::Drills(cmd) => drill::list(&settings, cmd).await,
        Command::Watch(args) => watch::run(&settings, args).await,
        Command::Doctor(args) => doctor::run(&settings, args).await,
        Command::Check(cmd) => check::run(&settings, cmd).await,
        Command::Schedule(args) => schedule::run(&settings, &cli.global, args).await,
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}

/// Connect to the configured database.
pub(crate) async fn connect(settings: &Settings) -> anyhow::Result<sqlx::PgConnection> {
    let opts = settings.connect_options()?;
    Ok(crate::db::connect(&opts).await?)
}

/// The repository, for writing.
pub(crate) async fn repository(
    settings: &Settings,
) -> anyhow::Result<Box<dyn crate::repository::storage::WriteStore>> {
    let url = settings.repo.as_deref().ok_or_else(|| {
        crate::exit::usage("no backup repository: set --repo or STOCKOPS_REPO (s3://BUCKET/PREFIX or file:///PATH)")
    })?;
    let opts = crate::repository::storage::S3Options {
        path_style: settings.s3_path_style,
        concurrency: settings.upload_concurrency,
        timeout: std::time::Duration::from_secs(settings.s3_timeout_secs),
        object_lock: settings.object_lock,
    };
    crate::repository::storage::open(url, &opts)
        .await
        .map_err(|e| crate::exit::usage(format!("{e:#}")))
}
