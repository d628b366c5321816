//! The `stockops` binary: parse arguments, set up logging, run the command,
//! map the outcome to an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stockops::cli::Cli::parse();
    if let Err(err) = stockops::logging::init(cli.global.log_format, cli.global.verbose) {
        eprintln!("stockops: error: {err:#}");
        return ExitCode::from(stockops::exit::FAILURE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("stockops: error: cannot start the async runtime: {err}");
            return ExitCode::from(stockops::exit::FAILURE);
        }
    };
    let result = runtime.block_on(stockops::commands::run(cli));
    // Work a stop signal abandoned may still sit on a blocking thread (a read
    // of an object being verified): it must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) if stockops::exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let code = stockops::exit::code_for(&err);
            eprintln!("stockops: error: {}", stockops::exit::one_line(&err));
            ExitCode::from(code)
        }
    }
}
