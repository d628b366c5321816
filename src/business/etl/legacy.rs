//! `stockops import legacy --sqlite FILE`: Distributech's legacy local stock
//! database, read, mapped and reconciled through `api.reconcile_legacy`
//! (migration 0005) as an `etl` login.
//!
//! The file is opened read-only. Its tables are found by name, French or
//! English (`produits`/`products`, `revendeurs`/`resellers`,
//! `stocks`/`stock`), and so are their columns (see [`PRODUCT`],
//! [`RESELLER`], [`STOCK`]); a table or column that cannot be found is named
//! in the error, nothing is sent. Codes are trimmed and upper-cased, as the
//! central database writes them.

use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

/// Accepted names: (table names, [(field, column names)]).
type Shape = (
    &'static [&'static str],
    &'static [(&'static str, &'static [&'static str])],
);

pub const PRODUCT: Shape = (
    &["produits", "products", "produit", "product"],
    &[
        ("sku", &["ref_produit", "reference", "sku", "ref"]),
        ("name", &["nom", "name", "designation", "libelle"]),
        ("category", &["categorie", "category"]),
    ],
);

pub const RESELLER: Shape = (
    &["revendeurs", "resellers", "revendeur", "reseller"],
    &[
        ("code", &["code_revendeur", "code", "revendeur", "reseller"]),
        ("name", &["nom", "name", "raison_sociale"]),
    ],
);

pub const STOCK: Shape = (
    &["stocks", "stock", "etat_stock", "inventaire"],
    &[
        ("sku", &["ref_produit", "reference", "sku", "ref"]),
        ("warehouse", &["entrepot", "warehouse", "depot"]),
        ("quantity", &["quantite", "quantity", "qte", "stock"]),
    ],
);

/// What was read from the file, as the api takes it.
#[derive(Debug, Default)]
pub struct Legacy {
    pub products: Vec<Value>,
    pub resellers: Vec<Value>,
    pub stock: Vec<Value>,
}

/// Read the legacy file. `warehouse` is used for stock rows when the stock
/// table has no warehouse column (a single-site system).
pub fn read(path: &Path, warehouse: Option<&str>) -> anyhow::Result<Legacy> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} as SQLite", path.display()))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    let products = rows(&conn, &tables, PRODUCT, &[], |f| {
        Ok(json!({"sku": code(&f[0]), "name": text(&f[1]), "category": text(&f[2])}))
    })?;
    let resellers = rows(&conn, &tables, RESELLER, &[], |f| {
        Ok(json!({"code": code(&f[0]), "name": text(&f[1])}))
    })?;
    let optional: &[&str] = if warehouse.is_some() {
        &["warehouse"]
    } else {
        &[]
    };
    let stock = rows(&conn, &tables, STOCK, optional, |f| {
        let wh = match (&f[1], warehouse) {
            (v, _) if !matches!(v, rusqlite::types::Value::Null) => code(v),
            (_, Some(w)) => Value::String(w.trim().to_uppercase()),
            (_, None) => Value::Null,
        };
        Ok(json!({"sku": code(&f[0]), "warehouse": wh, "quantity": count(&f[2])}))
    })?;
    Ok(Legacy {
        products,
        resellers,
        stock,
    })
}

/// Every row of the table `shape` names, its fields in the shape's order.
/// Fields in `optional` may be missing from the table (read as NULL).
fn rows(
    conn: &rusqlite::Connection,
    tables: &[String],
    (names, fields): Shape,
    optional: &[&str],
    map: impl Fn(&[rusqlite::types::Value]) -> anyhow::Result<Value>,
) -> anyhow::Result<Vec<Value>> {
    let Some(table) = tables
        .iter()
        .find(|t| names.contains(&t.to_lowercase().as_str()))
    else {
        bail!(
            "no {} table in the legacy file (looked for {}; found {})",
            names[0],
            names.join(", "),
            tables.join(", ")
        );
    };
    let columns: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{}')",
            table.replace('\'', "''")
        ))?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    let mut select = Vec::new();
    for (field, accepted) in fields {
        match columns
            .iter()
            .find(|c| accepted.contains(&c.to_lowercase().as_str()))
        {
            Some(c) => select.push(format!("\"{}\"", c.replace('"', "\"\""))),
            None if optional.contains(field) => select.push("NULL".into()),
            None => bail!(
                "table {table} of the legacy file has no {field} column (looked for {}; found {})",
                accepted.join(", "),
                columns.join(", ")
            ),
        }
    }
    let sql = format!(
        "SELECT {} FROM \"{}\"",
        select.join(", "),
        table.replace('"', "\"\"")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values: Vec<rusqlite::types::Value> = (0..fields.len())
            .map(|i| row.get(i))
            .collect::<Result<_, _>>()?;
        out.push(map(&values)?);
    }
    Ok(out)
}

fn text(v: &rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::String(i.to_string()),
        V::Real(f) => Value::String(f.to_string()),
        V::Text(s) => Value::String(s.trim().to_string()),
        V::Blob(b) => Value::String(String::from_utf8_lossy(b).trim().to_string()),
    }
}

fn code(v: &rusqlite::types::Value) -> Value {
    match text(v) {
        Value::String(s) => Value::String(s.to_uppercase()),
        other => other,
    }
}

/// A stock count: integers, whole reals and numeric text; anything else is
/// sent as NULL and reported as "not a count".
fn count(v: &rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    let n = match v {
        V::Integer(i) => Some(*i),
        V::Real(f) if f.fract() == 0.0 => Some(*f as i64),
        V::Text(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n.filter(|n| i32::try_from(*n).is_ok()) {
        Some(n) => json!(n),
        None => Value::Null,
    }
}

/// One difference, as `api.reconcile_legacy` reports it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Finding {
    pub entity: String,
    pub key: String,
    pub field: Option<String>,
    pub legacy: Option<String>,
    pub central: Option<String>,
    pub action: String,
}

/// Send what was read; with `apply` false nothing is kept.
pub async fn reconcile(
    conn: &mut PgConnection,
    source: &str,
    legacy: &Legacy,
    apply: bool,
) -> anyhow::Result<Vec<Finding>> {
    let mut tx = conn.begin().await?;
    let findings: Vec<Finding> =
        sqlx::query_as("SELECT * FROM api.reconcile_legacy($1, $2, $3, $4, $5)")
            .bind(source)
            .bind(Value::Array(legacy.products.clone()))
            .bind(Value::Array(legacy.resellers.clone()))
            .bind(Value::Array(legacy.stock.clone()))
            .bind(apply)
            .fetch_all(&mut *tx)
            .await?;
    if apply {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(findings)
}
