//! `stockops call PROCEDURE [--arg NAME=VALUE ...] [--format table|csv|json]`.

use crate::business::procedures;
use crate::cli::{CallArgs, Format};
use crate::config::Settings;
use crate::exit;
use crate::output::{cell, write_rows};

pub async fn run(settings: &Settings, args: CallArgs) -> anyhow::Result<u8> {
    let mut conn = super::connect(settings).await?;
    let sig = procedures::signature(&mut conn, &args.procedure).await?;
    let bound = procedures::bind_args(&sig, &args.args)?;
    let rows = procedures::call(&mut conn, &sig, &bound).await?;
    let format = if args.json { Format::Json } else { args.format };
    // One value (a new id, a status): print it bare, for scripts.
    if sig.scalar && format == Format::Table {
        if let Some(value) = rows.first().and_then(|r| r.values().next()) {
            println!("{}", cell(value));
            return Ok(exit::SUCCESS);
        }
    }
    write_rows(
        &mut std::io::stdout().lock(),
        &rows,
        std::slice::from_ref(&sig.name),
        format,
    )?;
    Ok(exit::SUCCESS)
}
