//! `stockops doctor [--json]`.

use crate::cli::DoctorArgs;
use crate::config::Settings;
use crate::exit;

pub async fn run(_settings: &Settings, _args: DoctorArgs) -> anyhow::Result<u8> {
    Err(exit::usage("stockops doctor is not available yet"))
}
