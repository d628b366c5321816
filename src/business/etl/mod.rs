//! The Distributech ETL: resellers' weekly order files in, the stock state
//! per product out, both through the audited api and never around it.
//!
//! - [`reader`] turns an order file as it comes from the field (comma or
//!   semicolon, UTF-8 with or without BOM or Latin-1, decimal commas, French
//!   or English headers) into checked lines or rejects with a reason. Pure:
//!   no database.
//! - [`import`] streams those lines in batches to `api.import_order_lines`
//!   as an `etl` login, in one transaction, quarantines the rejects
//!   (`api.quarantine_order_lines`, and a reject file) and counts everything.
//! - [`export`] streams `api.stock_by_product` into `etat_stock_par_produit.csv`.
//!
//! Memory stays constant whatever the file size: one batch of lines at a
//! time in, one row at a time out.

pub mod export;
pub mod import;
pub mod legacy;
pub mod reader;

pub use export::{export_stock, ExportSummary};
pub use import::{import_orders, ImportOptions, ImportSummary};
pub use reader::{OrderLine, Reason};
