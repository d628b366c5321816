//! Login roles for people and programs: each a member of one managed group,
//! partner logins bound to their reseller or supplier for row-level security.

use anyhow::{bail, Context};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use crate::db::provision::declaration::{Declaration, Partner};
use crate::db::scram::{self, Secret};
use crate::db::{ident, literal};
use crate::exit;

/// What `users add` is asked to create.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub reseller: Option<&'a str>,
    pub supplier: Option<&'a str>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct UserRow {
    pub name: String,
    pub group: String,
    pub can_login: bool,
    pub reseller: Option<String>,
    pub supplier: Option<String>,
    pub open_sessions: i64,
}

/// Login names: lowercase identifiers that need no quoting.
pub fn validate_name(name: &str, decl: &Declaration) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(exit::usage(format!(
            "invalid login name {name:?}: use 1 to 63 lowercase letters, digits and underscores, starting with a letter"
        )));
    }
    if name.starts_with("pg_") || decl.roles.contains_key(name) {
        return Err(exit::usage(format!(
            "{name} is reserved (a PostgreSQL or stockops role); choose another login name"
        )));
    }
    Ok(())
}

fn check_binding(user: &NewUser, decl: &Declaration) -> anyhow::Result<Option<Partner>> {
    let Some(group) = decl.roles.get(user.group).filter(|r| r.group) else {
        let groups: Vec<&str> = decl.groups().map(|(n, _)| n.as_str()).collect();
        return Err(exit::usage(format!(
            "unknown group {:?}; choose one of: {}",
            user.group,
            groups.join(", ")
        )));
    };
    match (group.partner, user.reseller, user.supplier) {
        (Some(Partner::Reseller), Some(_), None)
        | (Some(Partner::Supplier), None, Some(_))
        | (None, None, None) => Ok(group.partner),
        (Some(Partner::Reseller), _, _) => Err(exit::usage(
            "--role reseller needs --reseller CODE (and no --supplier)",
        )),
        (Some(Partner::Supplier), _, _) => Err(exit::usage(
            "--role supplier needs --supplier CODE (and no --reseller)",
        )),
        (None, _, _) => Err(exit::usage(format!(
            "--reseller and --supplier apply only to the reseller and supplier groups, not {}",
            user.group
        ))),
    }
}

/// Create the login, its membership and its partner binding, in one transaction.
pub async fn add(
    conn: &mut PgConnection,
    decl: &Declaration,
    user: &NewUser<'_>,
    password: &Secret,
) -> anyhow::Result<()> {
    validate_name(user.name, decl)?;
    let partner = check_binding(user, decl)?;
    let mut tx = conn.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(user.name)
            .fetch_one(&mut *tx)
            .await?;
    if exists {
        return Err(exit::usage(format!(
            "role {} already exists; use `stockops users rotate-password {}` to change its password",
            user.name, user.name
        )));
    }
    let group_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(user.group)
            .fetch_one(&mut *tx)
            .await?;
    if !group_exists {
        bail!(
            "group {} does not exist on the server; run `stockops provision` first",
            user.group
        );
    }
    let binding = match partner {
        Some(Partner::Reseller) => Some((
            "reseller_id",
            lookup(&mut tx, "resellers", "reseller_id", user.reseller.unwrap()).await?,
        )),
        Some(Partner::Supplier) => Some((
            "supplier_id",
            lookup(&mut tx, "suppliers", "supplier_id", user.supplier.unwrap()).await?,
        )),
        None => None,
    };
    let sql = format!(
        "CREATE ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT \
         IN ROLE {group} PASSWORD {verifier}; COMMENT ON ROLE {name} IS {comment};",
        name = ident(user.name),
        group = ident(user.group),
        verifier = literal(&scram::verifier(password)),
        comment = literal(&format!("stockops user, member of {}", user.group)),
    );
    sqlx::raw_sql(&sql)
        .execute(&mut *tx)
        .await
        .context("creating the login role")?;
    if let Some((column, id)) = binding {
        sqlx::query(&format!(
            "INSERT INTO inventory.partner_logins (login, {column}) VALUES ($1, $2)"
        ))
        .bind(user.name)
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("binding the login to its partner")?;
    }
    tx.commit().await?;
    Ok(())
}

async fn lookup(conn: &mut PgConnection, table: &str, id: &str, code: &str) -> anyhow::Result<i32> {
    let found: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT {id} FROM inventory.{table} WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await
    .with_context(|| {
        format!("looking up {code} in inventory.{table}; has `stockops provision` run?")
    })?;
    found.ok_or_else(|| {
        exit::usage(format!(
            "unknown {} code {code:?}: no such row in inventory.{table}",
            table.trim_end_matches('s')
        ))
    })
}

/// Members of the managed groups, with their binding and open sessions.
pub async fn list(conn: &mut PgConnection, decl: &Declaration) -> anyhow::Result<Vec<UserRow>> {
    let groups: Vec<String> = decl.groups().map(|(n, _)| n.clone()).collect();
    let rows = sqlx::query_as(
        r#"SELECT r.rolname::text AS name, g.rolname::text AS "group", r.rolcanlogin AS can_login,
                  re.code AS reseller, su.code AS supplier,
                  (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname) AS open_sessions
             FROM pg_auth_members m
             JOIN pg_roles r ON r.oid = m.member
             JOIN pg_roles g ON g.oid = m.roleid
             LEFT JOIN inventory.partner_logins b ON b.login = r.rolname
             LEFT JOIN inventory.resellers re ON re.reseller_id = b.reseller_id
             LEFT JOIN inventory.suppliers su ON su.supplier_id = b.supplier_id
            WHERE g.rolname = ANY($1)
            ORDER BY g.rolname, r.rolname"#,
    )
    .bind(&groups)
    .fetch_all(&mut *conn)
    .await
    .context("listing users; has `stockops provision` run?")?;
    Ok(rows)
}

/// Refuse to touch roles that `stockops users` does not manage.
async fn require_managed(
    conn: &mut PgConnection,
    decl: &Declaration,
    name: &str,
    allow_declared_logins: bool,
) -> anyhow::Result<()> {
    if allow_declared_logins && decl.roles.get(name).is_some_and(|r| r.login) {
        return Ok(());
    }
    validate_name(name, decl)?;
    let managed = list(conn, decl).await?.iter().any(|u| u.name == name);
    if !managed {
        return Err(exit::usage(format!(
            "{name} is not a stockops user (a member of one of the managed groups); see `stockops users list`"
        )));
    }
    Ok(())
}

/// NOLOGIN, then end the login's open sessions. Returns how many were ended.
pub async fn disable(
    conn: &mut PgConnection,
    decl: &Declaration,
    name: &str,
) -> anyhow::Result<i64> {
    require_managed(conn, decl, name, false).await?;
    sqlx::raw_sql(&format!("ALTER ROLE {} WITH NOLOGIN", ident(name)))
        .execute(&mut *conn)
        .await?;
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1) t",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    Ok(ended)
}

/// LOGIN again, for a login disabled earlier.
pub async fn enable(conn: &mut PgConnection, decl: &Declaration, name: &str) -> anyhow::Result<()> {
    require_managed(conn, decl, name, false).await?;
    sqlx::raw_sql(&format!("ALTER ROLE {} WITH LOGIN", ident(name)))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Set a new password (as a SCRAM verifier).
pub async fn rotate_password(
    conn: &mut PgConnection,
    decl: &Declaration,
    name: &str,
    password: &Secret,
) -> anyhow::Result<()> {
    require_managed(conn, decl, name, true).await?;
    let sql = format!(
        "ALTER ROLE {} WITH PASSWORD {}",
        ident(name),
        literal(&scram::verifier(password))
    );
    sqlx::raw_sql(&sql).execute(&mut *conn).await?;
    Ok(())
}
