//! `stockops watch [--warehouse W] [--sku S]`.

use crate::business::watch::{self, Filter, JsonLines};
use crate::cli::WatchArgs;
use crate::config::Settings;
use crate::exit;

pub async fn run(settings: &Settings, args: WatchArgs) -> anyhow::Result<u8> {
    let opts = settings.connect_options()?;
    let filter = Filter {
        warehouse: args.warehouse,
        sku: args.sku,
    };
    watch::run(&opts, &filter, &mut JsonLines, None).await?;
    Ok(exit::SUCCESS)
}
