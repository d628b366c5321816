//! `stockops report stock|reorder|suppliers|sales|margins|forecast|anomalies [--format table|csv|json]`.

use chrono::{Days, NaiveDate, Utc};

use crate::business::report::{self, Report};
use crate::cli::{PeriodArgs, ReportCommand, StockStatus};
use crate::config::Settings;
use crate::exit;
use crate::output::write_rows;

fn period(args: &PeriodArgs) -> anyhow::Result<(NaiveDate, NaiveDate)> {
    let to = args
        .to
        .unwrap_or_else(|| Utc::now().date_naive() + Days::new(1));
    let from = args.from.unwrap_or(to - Days::new(365));
    if from >= to {
        return Err(exit::usage(format!(
            "--from {from} is not before --to {to}"
        )));
    }
    Ok((from, to))
}

pub async fn run(settings: &Settings, cmd: ReportCommand) -> anyhow::Result<u8> {
    let (report, output) = match &cmd {
        ReportCommand::Stock(a) => {
            let status = a.status.map(|s| match s {
                StockStatus::Ok => "ok",
                StockStatus::Low => "low",
                StockStatus::Out => "out",
            });
            let r = Report::Stock {
                warehouse: a.warehouse.clone(),
                status: status.map(str::to_string),
            };
            (r, &a.output)
        }
        ReportCommand::Reorder(a) if a.forecast => (
            Report::ReorderForecast {
                days: a.window_days,
            },
            &a.output,
        ),
        ReportCommand::Reorder(a) => (
            Report::Reorder {
                window_days: a.window_days,
            },
            &a.output,
        ),
        ReportCommand::Forecast(a) => (
            Report::Forecast {
                days: a.days,
                history_weeks: a.history_weeks,
            },
            &a.output,
        ),
        ReportCommand::Anomalies(a) => {
            if !(a.threshold.is_finite() && a.threshold > 0.0) {
                return Err(exit::usage(format!(
                    "--threshold takes a positive score, got {}",
                    a.threshold
                )));
            }
            // The period ends with today: its day after is tomorrow.
            let to = Utc::now().date_naive() + Days::new(1);
            let r = Report::Anomalies {
                from: to - Days::new(a.days),
                to,
                threshold: a.threshold,
            };
            (r, &a.output)
        }
        ReportCommand::Suppliers(a) => {
            let (from, to) = period(a)?;
            (Report::Suppliers { from, to }, &a.output)
        }
        ReportCommand::Sales(a) => {
            let (from, to) = period(&a.period)?;
            let by = a.by.clone().unwrap_or_else(|| "month".into());
            (Report::Sales { from, to, by }, &a.period.output)
        }
        ReportCommand::Margins(a) => {
            let (from, to) = period(&a.period)?;
            let by = a.by.clone().unwrap_or_else(|| "category".into());
            (Report::Margins { from, to, by }, &a.period.output)
        }
    };
    let mut conn = super::connect(settings).await?;
    let rows = report::run(&mut conn, &report, output.limit).await?;
    write_rows(
        &mut std::io::stdout().lock(),
        &rows,
        &report.columns(),
        output.format,
    )?;
    Ok(exit::SUCCESS)
}
