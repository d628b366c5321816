//! Phase 6: row-level security, enabled and forced, and the declared policies.
//!
//! Policy expressions are compared as the server normalises them: each
//! declared policy is created once under a probe name inside a savepoint, read
//! back from `pg_policies`, and the savepoint rolled back. A policy whose
//! command, roles or expressions differ is dropped and created again; a policy
//! on a declared table that the declaration does not name is dropped.

use std::collections::BTreeMap;

use anyhow::Context;
use sqlx::PgConnection;

use super::declaration::{Declaration, PolicyDecl};
use super::Change;
use crate::db::ident;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct ServerPolicy {
    policyname: String,
    permissive: String,
    roles: Vec<String>,
    cmd: String,
    qual: Option<String>,
    with_check: Option<String>,
}

impl ServerPolicy {
    fn same_as(&self, other: &ServerPolicy) -> bool {
        let mut a = self.roles.clone();
        let mut b = other.roles.clone();
        a.sort();
        b.sort();
        self.permissive == other.permissive
            && a == b
            && self.cmd == other.cmd
            && self.qual == other.qual
            && self.with_check == other.with_check
    }
}

fn quote_table(qualified: &str) -> String {
    let (schema, table) = qualified.split_once('.').expect("validated as qualified");
    format!("{}.{}", ident(schema), ident(table))
}

fn create_sql(table: &str, name: &str, p: &PolicyDecl) -> String {
    let roles: Vec<String> = p.to.iter().map(|r| ident(r)).collect();
    let mut sql = format!(
        "CREATE POLICY {} ON {} AS PERMISSIVE FOR {} TO {}",
        ident(name),
        quote_table(table),
        p.command.to_uppercase(),
        roles.join(", ")
    );
    if let Some(using) = &p.using {
        sql.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = &p.check {
        sql.push_str(&format!(" WITH CHECK ({check})"));
    }
    sql.push(';');
    sql
}

async fn server_policies(
    conn: &mut PgConnection,
    table: &str,
) -> anyhow::Result<Vec<ServerPolicy>> {
    let (schema, name) = table.split_once('.').expect("validated as qualified");
    Ok(sqlx::query_as(
        "SELECT policyname::text, permissive, roles::text[] AS roles, cmd, qual, with_check
           FROM pg_policies WHERE schemaname = $1 AND tablename = $2",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?)
}

/// The declared policies of `table` as the server would store them.
async fn normalised(
    conn: &mut PgConnection,
    table: &str,
    policies: &BTreeMap<String, PolicyDecl>,
) -> anyhow::Result<BTreeMap<String, ServerPolicy>> {
    sqlx::raw_sql("SAVEPOINT stockops_policy_probe")
        .execute(&mut *conn)
        .await?;
    let mut out = BTreeMap::new();
    let mut result = Ok(());
    for (name, p) in policies {
        let probe = format!("stockops_probe_{name}");
        if let Err(e) = sqlx::raw_sql(&create_sql(table, &probe, p))
            .execute(&mut *conn)
            .await
        {
            result = Err(anyhow::Error::new(e).context(format!(
                "roles/policies.toml: policy {name} on {table} is not valid SQL"
            )));
            break;
        }
    }
    if result.is_ok() {
        for mut sp in server_policies(conn, table).await? {
            if let Some(name) = sp.policyname.strip_prefix("stockops_probe_") {
                let name = name.to_string();
                sp.policyname = name.clone();
                out.insert(name, sp);
            }
        }
    }
    sqlx::raw_sql(
        "ROLLBACK TO SAVEPOINT stockops_policy_probe; RELEASE SAVEPOINT stockops_policy_probe",
    )
    .execute(&mut *conn)
    .await?;
    result.map(|_| out)
}

pub async fn plan(conn: &mut PgConnection, decl: &Declaration) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for (table, policies) in &decl.policies {
        let flags: Option<(bool, bool)> = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass($1)",
        )
        .bind(quote_table(table))
        .fetch_optional(&mut *conn)
        .await?;
        let (enabled, forced) = flags.with_context(|| {
            format!("roles/policies.toml names table {table}, which does not exist after the migrations")
        })?;
        let qt = quote_table(table);
        if !enabled {
            changes.push(Change::new(
                "rls",
                format!("row-level security is not enabled on {table}"),
                format!("ALTER TABLE {qt} ENABLE ROW LEVEL SECURITY;"),
            ));
        }
        if !forced {
            changes.push(Change::new(
                "rls",
                format!("row-level security is not forced on {table}"),
                format!("ALTER TABLE {qt} FORCE ROW LEVEL SECURITY;"),
            ));
        }
        let want = normalised(conn, table, policies).await?;
        let have: BTreeMap<String, ServerPolicy> = server_policies(conn, table)
            .await?
            .into_iter()
            .map(|p| (p.policyname.clone(), p))
            .collect();
        for (name, p) in policies {
            let create = create_sql(table, name, p);
            match (have.get(name), want.get(name)) {
                (None, _) => changes.push(Change::new(
                    "policy",
                    format!("policy {name} on {table} is missing"),
                    create,
                )),
                (Some(h), Some(w)) if !h.same_as(w) => changes.push(Change::new(
                    "policy",
                    format!("policy {name} on {table} differs from the declaration"),
                    format!("DROP POLICY {} ON {qt}; {create}", ident(name)),
                )),
                _ => {}
            }
        }
        for name in have.keys().filter(|n| !policies.contains_key(*n)) {
            changes.push(Change::new(
                "policy",
                format!("policy {name} on {table} is not declared"),
                format!("DROP POLICY {} ON {qt};", ident(name)),
            ));
        }
    }
    Ok(changes)
}
