//! Phases 2, 4 and 5: privileges on the database, default privileges,
//! ownership, privileges on every object of the managed schemas and on their
//! columns, and the `search_path` of their `SECURITY DEFINER` functions.
//!
//! What the declaration grants is granted; every other privilege on these
//! objects, to any role or to PUBLIC, is revoked. Owners' implicit rights are
//! left alone. Unset ACLs are read through `acldefault`, so PUBLIC's implicit
//! `EXECUTE` on new functions and `CONNECT`/`TEMPORARY` on the database count
//! as grants to revoke. The declaration never grants a column privilege nor a
//! grant option: every column grant (`attacl`) and every `WITH GRANT OPTION`
//! is drift, revoked with `CASCADE` so that what a holder of the option passed
//! on goes with it.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

use super::declaration::{Declaration, ObjectKind, MANAGED_SCHEMAS};
use super::Change;
use crate::db::ident;

/// One exploded ACL entry on the server.
#[derive(Debug, sqlx::FromRow)]
struct AclRow {
    /// d, n, r (tables, views), S (sequences), f (functions)
    kind: String,
    /// The name the declaration uses: schema, schema.table or schema.function.
    name: String,
    /// The SQL to name the object in GRANT/REVOKE (function with its arguments).
    target: String,
    grantee: String,
    privilege: String,
    /// Granted `WITH GRANT OPTION`.
    grantable: bool,
}

const ACL_QUERY: &str = r#"
WITH objects AS (
    SELECT 'd' AS kind, '' AS name, quote_ident(datname) AS target, datdba AS owner,
           coalesce(datacl, acldefault('d'::"char", datdba)) AS acl
      FROM pg_database WHERE datname = current_database()
    UNION ALL
    SELECT 'n', nspname, quote_ident(nspname), nspowner, coalesce(nspacl, acldefault('n'::"char", nspowner))
      FROM pg_namespace WHERE nspname = ANY($1)
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'S' ELSE 'r' END,
           n.nspname || '.' || c.relname,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           c.relowner,
           coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    UNION ALL
    SELECT 'f', n.nspname || '.' || p.proname, p.oid::regprocedure::text, p.proowner,
           coalesce(p.proacl, acldefault('f'::"char", p.proowner))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY($1)
)
SELECT o.kind, o.name, o.target,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
       a.privilege_type AS privilege, a.is_grantable AS grantable
  FROM objects o CROSS JOIN LATERAL aclexplode(o.acl) a
 WHERE a.grantee <> o.owner AND (o.kind = 'd') <> $2
"#;

fn kind_of(code: &str) -> ObjectKind {
    match code {
        "d" => ObjectKind::Database,
        "n" => ObjectKind::Schema,
        "S" => ObjectKind::Sequence,
        "f" => ObjectKind::Function,
        _ => ObjectKind::Table,
    }
}

/// Phase 2: the database's own privileges, and default privileges for objects
/// the owner will create.
pub async fn plan_database(
    conn: &mut PgConnection,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let mut changes = diff(conn, decl, false).await?;
    changes.extend(default_privileges(conn, decl).await?);
    Ok(changes)
}

/// Phase 5: schemas, the objects in them, and their columns.
pub async fn plan_objects(
    conn: &mut PgConnection,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let mut changes = diff(conn, decl, true).await?;
    changes.extend(column_privileges(conn).await?);
    Ok(changes)
}

async fn diff(
    conn: &mut PgConnection,
    decl: &Declaration,
    objects: bool,
) -> anyhow::Result<Vec<Change>> {
    let rows: Vec<AclRow> = sqlx::query_as(ACL_QUERY)
        .bind(MANAGED_SCHEMAS.as_slice())
        .bind(objects)
        .fetch_all(&mut *conn)
        .await?;
    // Current grants and the SQL name of every object that exists.
    let mut have: BTreeMap<(ObjectKind, String, String), BTreeSet<String>> = BTreeMap::new();
    let mut grantable: BTreeSet<(ObjectKind, String, String, String)> = BTreeSet::new();
    let mut targets: BTreeMap<(ObjectKind, String), BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        let kind = kind_of(&row.kind);
        targets
            .entry((kind, row.name.clone()))
            .or_default()
            .insert(row.target.clone());
        if row.grantable {
            grantable.insert((
                kind,
                row.target.clone(),
                row.privilege.clone(),
                row.grantee.clone(),
            ));
        }
        have.entry((kind, row.target, row.privilege))
            .or_default()
            .insert(row.grantee);
    }
    for (kind, name, target) in existing_objects(conn, objects).await? {
        targets.entry((kind, name)).or_default().insert(target);
    }
    // Declared grants, expanded to every overload / the real target name.
    let mut want: BTreeMap<(ObjectKind, String, String), BTreeSet<String>> = BTreeMap::new();
    for ((kind, name, privilege), roles) in decl.wanted() {
        if !objects && kind != ObjectKind::Database || objects && kind == ObjectKind::Database {
            continue;
        }
        match targets.get(&(kind, name.clone())) {
            Some(ts) => {
                for t in ts {
                    want.entry((kind, t.clone(), privilege.clone()))
                        .or_default()
                        .extend(roles.iter().cloned());
                }
            }
            None if objects => anyhow::bail!(
                "roles/grants.toml names {} {name}, which does not exist after the migrations",
                kind.keyword().to_lowercase()
            ),
            None => {}
        }
    }
    let mut changes = Vec::new();
    let keys: BTreeSet<_> = have.keys().chain(want.keys()).cloned().collect();
    let empty = BTreeSet::new();
    for key in keys {
        let (kind, target, privilege) = &key;
        let h = have.get(&key).unwrap_or(&empty);
        let w = want.get(&key).unwrap_or(&empty);
        let what = format!("{} {}", kind.keyword().to_lowercase(), target);
        // The database's own privileges are a kind apart: pg_dump keeps them
        // outside its archive, so a restored database differs in them alone.
        let change_kind = if *kind == ObjectKind::Database {
            "database"
        } else {
            "privilege"
        };
        for role in w.difference(h) {
            changes.push(Change::new(
                change_kind,
                format!("{privilege} on {what} is declared for {role} but not granted"),
                format!(
                    "GRANT {privilege} ON {} {target} TO {};",
                    kind.keyword(),
                    grantee(role)
                ),
            ));
        }
        for role in h.difference(w) {
            let option =
                grantable.contains(&(*kind, target.clone(), privilege.clone(), role.clone()));
            changes.push(Change::new(
                change_kind,
                format!(
                    "{privilege} on {what} is granted to {role}{} but not declared",
                    if option { " WITH GRANT OPTION" } else { "" }
                ),
                format!(
                    "REVOKE {privilege} ON {} {target} FROM {}{};",
                    kind.keyword(),
                    grantee(role),
                    if option { " CASCADE" } else { "" }
                ),
            ));
        }
        for role in h.intersection(w) {
            if grantable.contains(&(*kind, target.clone(), privilege.clone(), role.clone())) {
                changes.push(Change::new(
                    change_kind,
                    format!(
                        "{privilege} on {what} is granted to {role} WITH GRANT OPTION, declared without it"
                    ),
                    format!(
                        "REVOKE GRANT OPTION FOR {privilege} ON {} {target} FROM {} CASCADE;",
                        kind.keyword(),
                        grantee(role)
                    ),
                ));
            }
        }
    }
    Ok(changes)
}

/// Column privileges in the managed schemas: none is declared, so every one
/// (but the owner's) is drift. A table-level REVOKE leaves them in place.
async fn column_privileges(conn: &mut PgConnection) -> anyhow::Result<Vec<Change>> {
    let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
        r#"SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname),
                  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                  x.privilege_type, x.is_grantable
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL aclexplode(a.attacl) x
            WHERE n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attacl IS NOT NULL AND x.grantee <> c.relowner
            ORDER BY 1, 2, 3, 4, 5 DESC"#,
    )
    .bind(MANAGED_SCHEMAS.as_slice())
    .fetch_all(&mut *conn)
    .await?;
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for (table, column, role, privilege, option) in rows {
        // One entry per grantor: one REVOKE per grantee is enough.
        if !seen.insert((
            table.clone(),
            column.clone(),
            role.clone(),
            privilege.clone(),
        )) {
            continue;
        }
        changes.push(Change::new(
            "privilege",
            format!(
                "{privilege} ({column}) on table {table} is granted to {role}{} but column privileges are never declared",
                if option { " WITH GRANT OPTION" } else { "" }
            ),
            format!(
                "REVOKE {privilege} ({column}) ON TABLE {table} FROM {} CASCADE;",
                grantee(&role)
            ),
        ));
    }
    Ok(changes)
}

/// Every `SECURITY DEFINER` function in the managed schemas pins a
/// `search_path` that ends with `pg_temp` (named last, it is searched last;
/// left out, it is searched first for tables and types).
pub async fn plan_definers(conn: &mut PgConnection) -> anyhow::Result<Vec<Change>> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        r#"SELECT p.oid::regprocedure::text,
                  (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c
                    WHERE c LIKE 'search\_path=%' LIMIT 1)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = ANY($1) AND p.prosecdef
            ORDER BY 1"#,
    )
    .bind(MANAGED_SCHEMAS.as_slice())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(function, path)| {
            let fixed = definer_search_path(path.as_deref())?;
            Some(Change::new(
                "definer",
                format!(
                    "SECURITY DEFINER function {function} has search_path {}, which does not end with pg_temp",
                    path.as_deref().map_or("unset".to_string(), |p| format!("'{p}'"))
                ),
                format!("ALTER FUNCTION {function} SET search_path = {fixed};"),
            ))
        })
        .collect())
}

/// The search_path a definer function should have, when its own (as stored
/// in `proconfig`) does not end with `pg_temp`: the same schemas, `pg_temp`
/// moved last. A list that is not plain names becomes `pg_catalog, pg_temp`.
fn definer_search_path(current: Option<&str>) -> Option<String> {
    let items: Vec<&str> = current
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.last() == Some(&"pg_temp") {
        return None;
    }
    let plain = |s: &&str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut kept: Vec<&str> = if items.iter().all(plain) {
        items.into_iter().filter(|s| *s != "pg_temp").collect()
    } else {
        Vec::new()
    };
    if kept.is_empty() {
        kept.push("pg_catalog");
    }
    kept.push("pg_temp");
    Some(kept.join(", "))
}

/// Objects that exist even when no ACL row mentions them (owner-only ACLs).
async fn existing_objects(
    conn: &mut PgConnection,
    objects: bool,
) -> anyhow::Result<Vec<(ObjectKind, String, String)>> {
    if !objects {
        let db: String = sqlx::query_scalar("SELECT quote_ident(current_database())")
            .fetch_one(&mut *conn)
            .await?;
        return Ok(vec![(ObjectKind::Database, String::new(), db)]);
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        r#"SELECT 'n', nspname, quote_ident(nspname) FROM pg_namespace WHERE nspname = ANY($1)
           UNION ALL
           SELECT CASE WHEN c.relkind = 'S' THEN 'S' ELSE 'r' END, n.nspname || '.' || c.relname,
                  quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           UNION ALL
           SELECT 'f', n.nspname || '.' || p.proname, p.oid::regprocedure::text
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1)"#,
    )
    .bind(MANAGED_SCHEMAS.as_slice())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(k, n, t)| (kind_of(&k), n, t))
        .collect())
}

fn grantee(role: &str) -> String {
    if role == "PUBLIC" {
        "PUBLIC".into()
    } else {
        ident(role)
    }
}

/// Default privileges of the owner: functions it creates are not executable
/// by PUBLIC, and no other default grant exists.
async fn default_privileges(
    conn: &mut PgConnection,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let owner_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&decl.owner)
            .fetch_one(&mut *conn)
            .await?;
    if !owner_exists {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
        r#"WITH d AS (
             SELECT defaclobjtype::text AS objtype, n.nspname AS schema, defaclacl AS acl
               FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace
              WHERE a.defaclrole = $1::regrole
             UNION ALL
             SELECT 'f', NULL, acldefault('f'::"char", $1::regrole)
              WHERE NOT EXISTS (SELECT 1 FROM pg_default_acl
                                 WHERE defaclrole = $1::regrole AND defaclnamespace = 0 AND defaclobjtype = 'f'))
           SELECT d.objtype, d.schema,
                  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                  x.privilege_type
             FROM d CROSS JOIN LATERAL aclexplode(d.acl) x
            WHERE x.grantee <> $1::regrole"#,
    )
    .bind(&decl.owner)
    .fetch_all(&mut *conn)
    .await?;
    let mut changes = Vec::new();
    for (objtype, schema, role, privilege) in rows {
        // PUBLIC's USAGE on types is harmless and expected.
        if objtype == "T" && role == "PUBLIC" {
            continue;
        }
        let objects = match objtype.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            _ => "SCHEMAS",
        };
        let scope = schema
            .as_deref()
            .map(|s| format!(" IN SCHEMA {}", ident(s)))
            .unwrap_or_default();
        changes.push(Change::new(
            "default-privilege",
            format!(
                "new {} of {}{} get {privilege} for {role} by default",
                objects.to_lowercase(),
                decl.owner,
                scope.to_lowercase()
            ),
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {}{scope} REVOKE {privilege} ON {objects} FROM {};",
                ident(&decl.owner),
                grantee(&role)
            ),
        ));
    }
    Ok(changes)
}

/// Phase 4: every schema, table, standalone sequence and function in the
/// managed schemas belongs to the owner.
pub async fn plan_ownership(
    conn: &mut PgConnection,
    decl: &Declaration,
) -> anyhow::Result<Vec<Change>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        r#"SELECT 'SCHEMA', quote_ident(nspname), pg_get_userbyid(nspowner)
             FROM pg_namespace WHERE nspname = ANY($1)
           UNION ALL
           SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                 WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                  quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_userbyid(c.relowner)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
           UNION ALL
           SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                  p.oid::regprocedure::text, pg_get_userbyid(p.proowner)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1)"#,
    )
    .bind(MANAGED_SCHEMAS.as_slice())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, owner)| owner != &decl.owner)
        .map(|(kind, target, owner)| {
            Change::new(
                "owner",
                format!(
                    "{} {target} is owned by {owner}, declared {}",
                    kind.to_lowercase(),
                    decl.owner
                ),
                format!("ALTER {kind} {target} OWNER TO {};", ident(&decl.owner)),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::definer_search_path;

    #[test]
    fn definer_search_path_ends_with_pg_temp() {
        assert_eq!(definer_search_path(Some("pg_catalog, pg_temp")), None);
        assert_eq!(
            definer_search_path(Some("pg_catalog")).as_deref(),
            Some("pg_catalog, pg_temp")
        );
        assert_eq!(
            definer_search_path(Some("pg_temp, pg_catalog")).as_deref(),
            Some("pg_catalog, pg_temp")
        );
        assert_eq!(
            definer_search_path(Some("inventory, pg_catalog")).as_deref(),
            Some("inventory, pg_catalog, pg_temp")
        );
        assert_eq!(
            definer_search_path(None).as_deref(),
            Some("pg_catalog, pg_temp")
        );
        assert_eq!(
            definer_search_path(Some("\"$user\", public")).as_deref(),
            Some("pg_catalog, pg_temp")
        );
    }
}
