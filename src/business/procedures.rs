//! Calling `api` functions generically: the signature comes from the catalog,
//! arguments are bound as text and cast server-side to the declared types, and
//! each result row comes back as a JSON object in column order.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::db::ident;
use crate::exit;

/// One result row, columns in order.
pub type Row = Map<String, Value>;

/// The input parameters of an api function.
#[derive(Debug, Clone)]
pub struct Signature {
    pub name: String,
    /// (name, type) in declaration order.
    pub params: Vec<(String, String)>,
    /// How many trailing parameters have defaults.
    pub defaults: usize,
    /// Returns one value rather than rows of named columns.
    pub scalar: bool,
}

impl Signature {
    pub fn describe(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, (n, t))| {
                if i >= self.params.len() - self.defaults {
                    format!("[{n} {t}]")
                } else {
                    format!("{n} {t}")
                }
            })
            .collect();
        format!("api.{}({})", self.name, params.join(", "))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Look an api function up in the catalog.
pub async fn signature(conn: &mut PgConnection, name: &str) -> anyhow::Result<Signature> {
    let name = name.strip_prefix("api.").unwrap_or(name);
    if !valid_name(name) {
        return Err(exit::usage(format!("invalid procedure name {name:?}")));
    }
    let found: Vec<(Vec<String>, Vec<String>, i16, bool)> = sqlx::query_as(
        r#"SELECT ARRAY(SELECT a.name FROM unnest(coalesce(p.proargnames, array_fill(''::text, ARRAY[cardinality(coalesce(p.proallargtypes, p.proargtypes::oid[]))])),
                                               coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[cardinality(p.proargtypes::oid[])])))
                                  WITH ORDINALITY AS a(name, mode, i)
                         WHERE a.mode IN ('i', 'b', 'v') ORDER BY a.i),
                  ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS x(t, i) ORDER BY x.i),
                  p.pronargdefaults,
                  NOT coalesce('t' = ANY (p.proargmodes) OR 'o' = ANY (p.proargmodes), false)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'api' AND p.proname = $1"#,
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .context("reading the api catalog")?;
    match found.as_slice() {
        [(names, types, defaults, scalar)] => Ok(Signature {
            name: name.to_string(),
            params: names.iter().cloned().zip(types.iter().cloned()).collect(),
            defaults: *defaults as usize,
            scalar: *scalar,
        }),
        [] => {
            let available = available(conn).await.unwrap_or_default();
            Err(exit::usage(format!(
                "unknown procedure api.{name}; this login may call: {}",
                if available.is_empty() {
                    "nothing".to_string()
                } else {
                    available.join(", ")
                }
            )))
        }
        _ => Err(exit::usage(format!(
            "api.{name} is overloaded; call it with SQL"
        ))),
    }
}

/// The api functions the connected role may execute.
pub async fn available(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'api' AND has_function_privilege(p.oid, 'EXECUTE') ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Match `NAME=VALUE` arguments to the signature (the `p_` prefix is optional).
pub fn bind_args(
    sig: &Signature,
    args: &[(String, String)],
) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in args {
        let full = if sig.params.iter().any(|(n, _)| n == name) {
            name.clone()
        } else {
            format!("p_{name}")
        };
        if !sig.params.iter().any(|(n, _)| *n == full) {
            return Err(exit::usage(format!(
                "{} has no parameter {name}; it is {}",
                sig.name,
                sig.describe()
            )));
        }
        if given.insert(full, value.clone()).is_some() {
            return Err(exit::usage(format!("parameter {name} is given twice")));
        }
    }
    let required = sig.params.len() - sig.defaults;
    let mut bound = Vec::new();
    for (i, (name, ty)) in sig.params.iter().enumerate() {
        match given.remove(name) {
            Some(v) => bound.push((name.clone(), ty.clone(), v)),
            None if i < required => {
                return Err(exit::usage(format!(
                    "missing --arg {name}=VALUE; the signature is {}",
                    sig.describe()
                )))
            }
            None => {}
        }
    }
    Ok(bound)
}

/// Call `api.NAME` with bound arguments and return its rows.
pub async fn call(
    conn: &mut PgConnection,
    sig: &Signature,
    bound: &[(String, String, String)],
) -> anyhow::Result<Vec<Row>> {
    let named: Vec<String> = bound
        .iter()
        .enumerate()
        .map(|(i, (name, ty, _))| format!("{} => ${}::{}", ident(name), i + 1, ty))
        .collect();
    let function = format!("api.{}({})", ident(&sig.name), named.join(", "));
    let sql = if sig.scalar {
        format!(
            "SELECT json_build_object({}, {function})::text",
            crate::db::literal(&sig.name)
        )
    } else {
        format!("SELECT row_to_json(t)::text FROM {function} AS t")
    };
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for (_, _, value) in bound {
        query = query.bind(value);
    }
    let rows = query
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::db::explain)?;
    rows.iter()
        .map(|r| match serde_json::from_str::<Value>(r)? {
            Value::Object(m) => Ok(m),
            other => Ok(Map::from_iter([(sig.name.clone(), other)])),
        })
        .collect()
}
