//! `stockops schedule [--once]`.

use crate::cli::ScheduleArgs;
use crate::config::Settings;
use crate::exit;

pub async fn run(_settings: &Settings, _args: ScheduleArgs) -> anyhow::Result<u8> {
    Err(exit::usage("stockops schedule is not available yet"))
}
