//! Read-only reports, always through the `api` functions, as the connected
//! role: a department login sees what its grants allow and nothing more.

use serde::Serialize;
use sqlx::PgConnection;

/// One row of `api.stock_status`.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct StockRow {
    pub sku: String,
    pub warehouse: String,
    pub on_hand: i32,
    pub reserved: i32,
    pub on_order: i32,
    pub reorder_point: i32,
    pub status: String,
}

pub const STOCK_COLUMNS: [&str; 7] = [
    "sku",
    "warehouse",
    "on_hand",
    "reserved",
    "on_order",
    "reorder_point",
    "status",
];

impl StockRow {
    pub fn fields(&self) -> [String; 7] {
        [
            self.sku.clone(),
            self.warehouse.clone(),
            self.on_hand.to_string(),
            self.reserved.to_string(),
            self.on_order.to_string(),
            self.reorder_point.to_string(),
            self.status.clone(),
        ]
    }
}

/// Stock per product and warehouse, optionally filtered.
pub async fn stock(
    conn: &mut PgConnection,
    warehouse: Option<&str>,
    status: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<StockRow>> {
    let limit = if limit == 0 { i64::MAX } else { limit as i64 };
    let rows = sqlx::query_as(
        "SELECT sku, warehouse, on_hand, reserved, on_order, reorder_point, status
           FROM api.stock_status(p_warehouse => $1)
          WHERE $2::text IS NULL OR status = $2
          LIMIT $3",
    )
    .bind(warehouse)
    .bind(status)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows)
}
