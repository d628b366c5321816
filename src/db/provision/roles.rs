//! Phase 1: the declared roles, their attributes, comments and memberships.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use super::declaration::{Declaration, RoleDecl};
use super::Change;
use crate::db::{ident, literal};

#[derive(Debug, sqlx::FromRow)]
struct ServerRole {
    rolname: String,
    rolsuper: bool,
    rolinherit: bool,
    rolcreaterole: bool,
    rolcreatedb: bool,
    rolcanlogin: bool,
    rolreplication: bool,
    rolbypassrls: bool,
    comment: Option<String>,
}

/// The attributes as (keyword, declared, on the server).
fn attributes(
    decl: &RoleDecl,
    server: Option<&ServerRole>,
) -> Vec<(&'static str, bool, Option<bool>)> {
    vec![
        ("LOGIN", decl.login, server.map(|s| s.rolcanlogin)),
        ("SUPERUSER", decl.superuser, server.map(|s| s.rolsuper)),
        ("CREATEDB", decl.createdb, server.map(|s| s.rolcreatedb)),
        (
            "CREATEROLE",
            decl.createrole,
            server.map(|s| s.rolcreaterole),
        ),
        (
            "REPLICATION",
            decl.replication,
            server.map(|s| s.rolreplication),
        ),
        ("BYPASSRLS", decl.bypassrls, server.map(|s| s.rolbypassrls)),
        ("INHERIT", decl.inherit, server.map(|s| s.rolinherit)),
    ]
}

fn keyword(name: &str, on: bool) -> String {
    if on {
        name.to_string()
    } else {
        format!("NO{name}")
    }
}

pub async fn plan(conn: &mut PgConnection, decl: &Declaration) -> anyhow::Result<Vec<Change>> {
    let names: Vec<String> = decl.roles.keys().cloned().collect();
    let server: BTreeMap<String, ServerRole> = sqlx::query_as::<_, ServerRole>(
        "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                rolreplication, rolbypassrls, shobj_description(oid, 'pg_authid') AS comment
           FROM pg_roles WHERE rolname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.rolname.clone(), r))
    .collect();
    let mut changes = Vec::new();
    for (name, role) in &decl.roles {
        let current = server.get(name);
        changes.extend(role_changes(name, role, current));
    }
    changes.extend(membership_changes(conn, decl).await?);
    changes.extend(admin_membership(conn, decl).await?);
    Ok(changes)
}

fn role_changes(name: &str, role: &RoleDecl, current: Option<&ServerRole>) -> Vec<Change> {
    let mut changes = Vec::new();
    let attrs = attributes(role, current);
    match current {
        None => {
            let words: Vec<String> = attrs.iter().map(|(k, want, _)| keyword(k, *want)).collect();
            changes.push(Change::new(
                "role",
                format!("role {name} is missing"),
                format!("CREATE ROLE {} WITH {};", ident(name), words.join(" ")),
            ));
        }
        Some(_) => {
            for (k, want, have) in attrs {
                if have != Some(want) {
                    changes.push(Change::new(
                        "role",
                        format!(
                            "role {name} has {}, declared {}",
                            keyword(k, !want),
                            keyword(k, want)
                        ),
                        format!("ALTER ROLE {} WITH {};", ident(name), keyword(k, want)),
                    ));
                }
            }
        }
    }
    let have_comment = current.and_then(|c| c.comment.as_deref());
    if role.comment.as_deref() != have_comment {
        if let Some(comment) = &role.comment {
            changes.push(Change::new(
                "role",
                format!("role {name}: comment differs from the declaration"),
                format!("COMMENT ON ROLE {} IS {};", ident(name), literal(comment)),
            ));
        }
    }
    changes
}

async fn membership_changes(
    conn: &mut PgConnection,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let names: Vec<String> = decl.roles.keys().cloned().collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.rolname, g.rolname
           FROM pg_auth_members am
           JOIN pg_roles m ON m.oid = am.member
           JOIN pg_roles g ON g.oid = am.roleid
          WHERE m.rolname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let mut have: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (member, group) in &rows {
        have.entry(member.as_str())
            .or_default()
            .insert(group.as_str());
    }
    let mut changes = Vec::new();
    for (name, role) in &decl.roles {
        let want: BTreeSet<&str> = role.member_of.iter().map(String::as_str).collect();
        let current = have.remove(name.as_str()).unwrap_or_default();
        for group in want.difference(&current) {
            changes.push(Change::new(
                "membership",
                format!("role {name} is not a member of {group}, declared member"),
                format!("GRANT {} TO {};", ident(group), ident(name)),
            ));
        }
        for group in current.difference(&want) {
            changes.push(Change::new(
                "membership",
                format!("role {name} is a member of {group}, not declared"),
                format!("REVOKE {} FROM {};", ident(group), ident(name)),
            ));
        }
    }
    Ok(changes)
}

/// A provisioning role that is not a superuser must be a member of the owner
/// to create objects as it.
async fn admin_membership(
    conn: &mut PgConnection,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let (user, superuser, member): (String, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                coalesce((SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r WHERE r.rolname = $1), false)",
    )
    .bind(&decl.owner)
    .fetch_one(&mut *conn)
    .await?;
    if superuser || member {
        return Ok(Vec::new());
    }
    Ok(vec![Change::new(
        "membership",
        format!("provisioning role {user} is not a member of {}", decl.owner),
        format!("GRANT {} TO {};", ident(&decl.owner), ident(&user)),
    )])
}
