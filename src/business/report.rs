//! Read-only reports, always through the `api` functions, as the connected
//! role: a department login sees what its grants allow and nothing more.

use chrono::NaiveDate;
use sqlx::PgConnection;

use crate::business::procedures::Row;

/// Which report, with its parameters.
#[derive(Debug, Clone)]
pub enum Report {
    Stock {
        warehouse: Option<String>,
        status: Option<String>,
    },
    Reorder {
        window_days: i32,
    },
    /// `api.reorder_forecast`: reorder_needs's columns, velocity from the forecast.
    ReorderForecast {
        days: i32,
    },
    Forecast {
        days: i32,
        history_weeks: i32,
    },
    Anomalies {
        from: NaiveDate,
        to: NaiveDate,
        threshold: f64,
    },
    Suppliers {
        from: NaiveDate,
        to: NaiveDate,
    },
    Sales {
        from: NaiveDate,
        to: NaiveDate,
        by: String,
    },
    Margins {
        from: NaiveDate,
        to: NaiveDate,
        by: String,
    },
}

/// The columns of `api.stock_status`; exports and department tools rely on them.
pub const STOCK_COLUMNS: [&str; 7] = [
    "sku",
    "warehouse",
    "on_hand",
    "reserved",
    "on_order",
    "reorder_point",
    "status",
];

impl Report {
    /// The header, also when there is no row.
    pub fn columns(&self) -> Vec<String> {
        let cols: &[&str] = match self {
            Report::Stock { .. } => &STOCK_COLUMNS,
            Report::Reorder { .. } | Report::ReorderForecast { .. } => &[
                "sku",
                "warehouse",
                "available",
                "on_order",
                "reorder_point",
                "daily_velocity",
                "lead_time_days",
                "suggested_quantity",
                "supplier",
            ],
            Report::Suppliers { .. } => &[
                "supplier",
                "name",
                "purchase_orders",
                "received",
                "on_time_rate",
                "avg_lead_days",
                "fill_rate",
            ],
            Report::Sales { .. } => &["bucket", "orders", "units", "revenue"],
            Report::Forecast { .. } => &[
                "sku",
                "warehouse",
                "days",
                "forecast_units",
                "per_day",
                "weekday_units",
                "weekend_units",
                "history_units",
            ],
            Report::Anomalies { .. } => &["sku", "day", "units", "expected", "score"],
            Report::Margins { .. } => {
                &["bucket", "units", "revenue", "cost", "margin", "margin_pct"]
            }
        };
        cols.iter().map(|c| c.to_string()).collect()
    }
}

/// Run a report; `limit` 0 means every row.
pub async fn run(
    conn: &mut PgConnection,
    report: &Report,
    limit: usize,
) -> anyhow::Result<Vec<Row>> {
    let limit = if limit == 0 { i64::MAX } else { limit as i64 };
    let rows: Vec<String> = match report {
        Report::Stock { warehouse, status } => {
            sqlx::query_scalar(
                "SELECT row_to_json(t)::text FROM api.stock_status(p_warehouse => $1) AS t
                  WHERE $2::text IS NULL OR t.status = $2 LIMIT $3",
            )
            .bind(warehouse)
            .bind(status)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        }
        Report::Reorder { window_days } => {
            sqlx::query_scalar("SELECT row_to_json(t)::text FROM api.reorder_needs(p_window_days => $1) AS t LIMIT $2")
                .bind(window_days)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
        }
        Report::ReorderForecast { days } => {
            sqlx::query_scalar("SELECT row_to_json(t)::text FROM api.reorder_forecast(p_days => $1) AS t LIMIT $2")
                .bind(days)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
        }
        Report::Forecast { days, history_weeks } => {
            sqlx::query_scalar(
                "SELECT row_to_json(t)::text FROM api.demand_forecast(p_days => $1, p_history_weeks => $2) AS t LIMIT $3",
            )
            .bind(days)
            .bind(history_weeks)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        }
        Report::Anomalies { from, to, threshold } => {
            sqlx::query_scalar(
                "SELECT row_to_json(t)::text FROM api.sales_anomalies(p_from => $1, p_to => $2, p_z => $3::numeric) AS t LIMIT $4",
            )
            .bind(from)
            .bind(to)
            .bind(threshold)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        }
        Report::Suppliers { from, to } => {
            sqlx::query_scalar(
                "SELECT row_to_json(t)::text FROM api.supplier_performance(p_from => $1, p_to => $2) AS t LIMIT $3",
            )
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        }
        Report::Sales { from, to, by } | Report::Margins { from, to, by } => {
            let function = if matches!(report, Report::Sales { .. }) { "sales_summary" } else { "margins" };
            sqlx::query_scalar(&format!(
                "SELECT row_to_json(t)::text FROM api.{function}(p_from => $1, p_to => $2, p_by => $3) AS t LIMIT $4"
            ))
            .bind(from)
            .bind(to)
            .bind(by)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
        }
    }
    .map_err(crate::db::explain)?;
    rows.iter()
        .map(|r| match serde_json::from_str(r)? {
            serde_json::Value::Object(m) => Ok(m),
            other => anyhow::bail!("unexpected report row {other}"),
        })
        .collect()
}
