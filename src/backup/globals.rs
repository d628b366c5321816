//! The cluster's roles, as data: captured from the catalog at backup time,
//! stored as JSON (`roles.json.zst.age`), and applied on restore with quoted
//! identifiers and literals the server itself quotes.
//!
//! A backup's globals are not trusted. Any login can store text in its own
//! role settings (`ALTER ROLE CURRENT_USER SET application_name = E'...'`),
//! and anyone who can write to the repository and knows its public
//! recipients can forge the whole object. So nothing here is ever executed as
//! SQL text: every statement is a fixed template from this file, filled by
//! PostgreSQL's `format()` with `%I` (identifiers) and `%L` (literals) from
//! values bound as parameters. And a restore never grants what only a
//! superuser should hand out:
//!
//! - `SUPERUSER` is never given (the role is created without it, and the
//!   report says so);
//! - memberships in the predefined roles that reach the server's files or
//!   programs (`pg_execute_server_program`, `pg_read_server_files`,
//!   `pg_write_server_files`) are never granted;
//! - roles that already exist in the target are left as they are: their
//!   attributes, settings and comments are not touched, and memberships
//!   between two existing roles (perhaps revoked on purpose) are re-granted
//!   only when asked ([`ApplyOptions::regrant_memberships`]).
//!
//! `pg_dumpall --globals-only` text is still stored beside it for people to
//! read (`globals.sql.zst.age`); stockops never executes it.

use std::collections::BTreeSet;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

pub const FORMAT: u32 = 1;

/// Memberships a restore never grants: each lets its members read or write
/// the server's files or run programs as the server's OS user.
pub const NEVER_GRANTED: &[&str] = &[
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
];

/// Settings whose value is a list the server stores quoted element by
/// element (PostgreSQL's `GUC_LIST_QUOTE`): they are applied one literal per
/// element, as `pg_dumpall` does, so they round-trip exactly.
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "shared_preload_libraries",
    "local_preload_libraries",
    "unix_socket_directories",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Globals {
    pub format: u32,
    pub roles: Vec<Role>,
    pub memberships: Vec<Membership>,
    pub settings: Vec<RoleSetting>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub login: bool,
    pub replication: bool,
    pub bypassrls: bool,
    pub connection_limit: i32,
    pub valid_until: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Membership {
    /// The role granted.
    pub role: String,
    /// The role it is granted to.
    pub member: String,
    pub admin_option: bool,
}

/// `ALTER ROLE role [IN DATABASE db] SET name = value`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoleSetting {
    pub role: String,
    /// `true`: set in the backed-up database only (applied to the restore's
    /// target database); `false`: set for every database.
    pub in_database: bool,
    pub name: String,
    pub value: String,
}

/// Why a piece of the globals cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("globals format {0}, this stockops reads format {FORMAT}")]
    Format(u32),
    #[error("role name {0:?} is empty, longer than 63 bytes or holds a NUL")]
    RoleName(String),
    #[error("role {0:?} appears twice")]
    Duplicate(String),
    #[error("connection limit {1} of role {0:?} is below -1")]
    ConnectionLimit(String, i32),
    #[error("setting name {0:?} is not a configuration parameter name")]
    SettingName(String),
    #[error("setting {0} holds a NUL byte")]
    Nul(String),
}

/// A role name as PostgreSQL accepts one (`NAMEDATALEN - 1` bytes, no NUL).
fn role_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(Invalid::RoleName(name.to_string()));
    }
    Ok(())
}

/// `word(.word)*`, each word `[A-Za-z_][A-Za-z0-9_$]*`: what the server's
/// grammar takes as a parameter name without quotes.
pub fn setting_name(name: &str) -> Result<Vec<&str>, Invalid> {
    let parts: Vec<&str> = name.split('.').collect();
    let word = |w: &str| {
        let mut c = w.chars();
        matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if name.len() > 200 || !parts.iter().all(|p| word(p)) {
        return Err(Invalid::SettingName(name.to_string()));
    }
    Ok(parts)
}

impl Globals {
    /// Parse and validate untrusted JSON (the decrypted `roles` object).
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Globals> {
        let g: Globals = serde_json::from_slice(bytes).context("the roles object is not valid")?;
        g.validate()?;
        Ok(g)
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.format != FORMAT {
            return Err(Invalid::Format(self.format));
        }
        let mut seen = BTreeSet::new();
        for r in &self.roles {
            role_name(&r.name)?;
            if !seen.insert(r.name.as_str()) {
                return Err(Invalid::Duplicate(r.name.clone()));
            }
            if r.connection_limit < -1 {
                return Err(Invalid::ConnectionLimit(r.name.clone(), r.connection_limit));
            }
            if r.comment.as_deref().is_some_and(|c| c.contains('\0')) {
                return Err(Invalid::Nul(format!("comment of {}", r.name)));
            }
        }
        for m in &self.memberships {
            role_name(&m.role)?;
            role_name(&m.member)?;
        }
        for s in &self.settings {
            role_name(&s.role)?;
            setting_name(&s.name)?;
            if s.value.contains('\0') {
                return Err(Invalid::Nul(s.name.clone()));
            }
        }
        Ok(())
    }

    /// Settings and comments that look like an attempt to smuggle SQL into
    /// a restore: a newline, or an SQL keyword that starts a statement.
    /// Harmless here (nothing is executed), but worth a look by a person:
    /// `doctor` reports them.
    pub fn suspicious(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.settings {
            if looks_like_sql(&s.value) {
                out.push(format!("setting {} of role {}", s.name, s.role));
            }
        }
        for r in &self.roles {
            if r.comment.as_deref().is_some_and(looks_like_sql) {
                out.push(format!("comment on role {}", r.name));
            }
        }
        out
    }
}

/// A newline, a semicolon followed by a keyword, or a keyword that starts
/// a statement changing roles or privileges.
pub fn looks_like_sql(text: &str) -> bool {
    if text.contains('\n') || text.contains('\r') {
        return true;
    }
    let upper = text.to_ascii_uppercase();
    const KEYWORDS: &[&str] = &[
        "GRANT ",
        "REVOKE ",
        "CREATE ROLE",
        "ALTER ROLE",
        "CREATE USER",
        "ALTER USER",
        "DROP ",
        "COPY ",
        "SUPERUSER",
    ];
    KEYWORDS.iter().any(|k| upper.contains(k))
}

/// Split a list setting the way the server stores it (`a, "B c", d`):
/// elements separated by commas, each bare or double-quoted with `""` for a
/// quote. `None` when it does not parse.
pub fn split_list(value: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        item.push('"');
                    }
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                item.push(c);
                chars.next();
            }
            if item.is_empty() {
                return if out.is_empty() && chars.peek().is_none() {
                    Some(out)
                } else {
                    None
                };
            }
        }
        out.push(item);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

/// Read the roles from the catalog (no passwords: `pg_roles` never shows
/// them). Settings are those for every database and for the connected one.
pub async fn capture(conn: &mut PgConnection) -> anyhow::Result<Globals> {
    type RoleRow = (
        String,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        i32,
        Option<DateTime<Utc>>,
        Option<String>,
    );
    let rows: Vec<RoleRow> = sqlx::query_as(
        "SELECT rolname::text, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                rolreplication, rolbypassrls, rolconnlimit,
                CASE WHEN rolvaliduntil = 'infinity' THEN NULL ELSE rolvaliduntil END,
                shobj_description(oid, 'pg_authid')
           FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the roles")?;
    let roles = rows
        .into_iter()
        .map(|r| Role {
            name: r.0,
            superuser: r.1,
            inherit: r.2,
            createrole: r.3,
            createdb: r.4,
            login: r.5,
            replication: r.6,
            bypassrls: r.7,
            connection_limit: r.8,
            valid_until: r.9,
            comment: r.10,
        })
        .collect();
    let memberships = sqlx::query_as::<_, (String, String, bool)>(
        "SELECT r.rolname::text, m.rolname::text, a.admin_option
           FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the role memberships")?
    .into_iter()
    .map(|(role, member, admin_option)| Membership {
        role,
        member,
        admin_option,
    })
    .collect();
    let settings = sqlx::query_as::<_, (String, bool, String)>(
        "SELECT r.rolname::text, s.setdatabase <> 0, c
           FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
          WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
          ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .context("reading the role settings")?
    .into_iter()
    .filter_map(|(role, in_database, item)| {
        let (name, value) = item.split_once('=')?;
        Some(RoleSetting {
            role,
            in_database,
            name: name.to_string(),
            value: value.to_string(),
        })
    })
    .collect();
    Ok(Globals {
        format: FORMAT,
        roles,
        memberships,
        settings,
    })
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Also grant the backup's memberships between roles the target already
    /// has (which may have been revoked there on purpose).
    pub regrant_memberships: bool,
}

/// What [`apply`] did, and what it refused to do.
#[derive(Debug, Default, Serialize)]
pub struct Applied {
    pub created: Vec<String>,
    pub memberships_granted: usize,
    pub settings_applied: usize,
    /// What the backup holds that this restore did not apply, and why.
    pub withheld: Vec<String>,
}

/// Fill a fixed template with `format()` on the server, then run it. The
/// template is always a string literal of this file; `args` are bound.
async fn exec(conn: &mut PgConnection, template: &str, args: &[&str]) -> anyhow::Result<()> {
    let sql: String = sqlx::query_scalar("SELECT format($1, VARIADIC $2::text[])")
        .bind(template)
        .bind(args)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::raw_sql(&sql)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("restoring globals: {sql}"))?;
    Ok(())
}

/// `CREATE ROLE` with the recorded attributes, never `SUPERUSER`.
fn create_template(r: &Role) -> String {
    let flag = |on: bool, yes: &str, no: &str| if on { yes } else { no }.to_string();
    let mut t = vec![
        "CREATE ROLE %I WITH NOSUPERUSER".to_string(),
        flag(r.inherit, "INHERIT", "NOINHERIT"),
        flag(r.createrole, "CREATEROLE", "NOCREATEROLE"),
        flag(r.createdb, "CREATEDB", "NOCREATEDB"),
        flag(r.login, "LOGIN", "NOLOGIN"),
        flag(r.replication, "REPLICATION", "NOREPLICATION"),
        flag(r.bypassrls, "BYPASSRLS", "NOBYPASSRLS"),
        format!("CONNECTION LIMIT {}", r.connection_limit),
    ];
    if r.valid_until.is_some() {
        t.push("VALID UNTIL %L".into());
    }
    t.join(" ")
}

/// Create the roles the target lacks, with their settings, comments and
/// memberships, in the caller's transaction. `database` is the target
/// database (for settings made `IN DATABASE` the backed-up one).
pub async fn apply(
    conn: &mut PgConnection,
    g: &Globals,
    database: &str,
    opts: ApplyOptions,
) -> anyhow::Result<Applied> {
    g.validate()?;
    let existing: BTreeSet<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut done = Applied::default();
    // 1. The roles the target lacks.
    for r in g.roles.iter().filter(|r| !existing.contains(&r.name)) {
        let until = r.valid_until.map(|t| t.to_rfc3339());
        let mut args = vec![r.name.as_str()];
        args.extend(until.as_deref());
        exec(conn, &create_template(r), &args).await?;
        if r.superuser {
            done.withheld.push(format!(
                "role {} is a superuser in the backup; it was created without SUPERUSER \
                 (ALTER ROLE ... SUPERUSER by hand if it must be one)",
                r.name
            ));
        }
        if let Some(c) = &r.comment {
            exec(conn, "COMMENT ON ROLE %I IS %L", &[&r.name, c]).await?;
        }
        done.created.push(r.name.clone());
    }
    let created: BTreeSet<&str> = done.created.iter().map(String::as_str).collect();
    // 2. Settings and memberships of those roles only, unless asked.
    for s in g
        .settings
        .iter()
        .filter(|s| created.contains(s.role.as_str()))
    {
        match apply_setting(conn, s, database).await? {
            true => done.settings_applied += 1,
            false => done.withheld.push(format!(
                "setting {} of role {}: its list value does not parse",
                s.name, s.role
            )),
        }
    }
    let exists = |r: &str| existing.contains(r) || created.contains(r);
    for m in &g.memberships {
        if !(created.contains(m.member.as_str()) || opts.regrant_memberships) {
            continue;
        }
        if NEVER_GRANTED.contains(&m.role.as_str()) {
            done.withheld.push(format!(
                "membership of {} in {}: never granted by a restore",
                m.member, m.role
            ));
            continue;
        }
        if !exists(&m.role) || !exists(&m.member) {
            done.withheld.push(format!(
                "membership of {} in {}: the role does not exist here",
                m.member, m.role
            ));
            continue;
        }
        let template = if m.admin_option {
            "GRANT %I TO %I WITH ADMIN OPTION"
        } else {
            "GRANT %I TO %I"
        };
        exec(conn, template, &[&m.role, &m.member]).await?;
        done.memberships_granted += 1;
    }
    Ok(done)
}

/// One `ALTER ROLE ... SET`; `false` when a list value does not parse.
async fn apply_setting(
    conn: &mut PgConnection,
    s: &RoleSetting,
    database: &str,
) -> anyhow::Result<bool> {
    let parts = setting_name(&s.name)?;
    let values = if LIST_SETTINGS.contains(&s.name.to_ascii_lowercase().as_str()) {
        match split_list(&s.value) {
            Some(v) if !v.is_empty() => v,
            _ => return Ok(false),
        }
    } else {
        vec![s.value.clone()]
    };
    let mut template = String::from("ALTER ROLE %I ");
    let mut args: Vec<&str> = vec![&s.role];
    if s.in_database {
        template.push_str("IN DATABASE %I ");
        args.push(database);
    }
    template.push_str("SET ");
    template.push_str(&vec!["%I"; parts.len()].join("."));
    args.extend(parts.iter().copied());
    template.push_str(" = ");
    template.push_str(&vec!["%L"; values.len()].join(", "));
    args.extend(values.iter().map(String::as_str));
    exec(conn, &template, &args).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_like_the_server_stores_them() {
        assert_eq!(
            split_list(r#""$user", public"#).unwrap(),
            vec!["$user", "public"]
        );
        assert_eq!(
            split_list(r#"a,"b ""c"" d" , e"#).unwrap(),
            vec!["a", r#"b "c" d"#, "e"]
        );
        assert_eq!(split_list("").unwrap(), Vec::<String>::new());
        assert!(split_list(r#""open"#).is_none());
        assert!(split_list("a b").is_none());
        assert!(split_list("a,,b").is_none());
    }

    #[test]
    fn setting_names_follow_the_grammar() {
        assert_eq!(setting_name("search_path").unwrap(), vec!["search_path"]);
        assert_eq!(
            setting_name("stockops.watchers_seen").unwrap(),
            vec!["stockops", "watchers_seen"]
        );
        for bad in ["", "a b", "x = 1; DROP", "a..b", "1abc", "a.\"b\"", "a\nb"] {
            assert!(setting_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn forged_globals_are_refused_before_anything_is_applied() {
        let mut g = Globals {
            format: FORMAT,
            ..Default::default()
        };
        g.settings.push(RoleSetting {
            role: "x".into(),
            in_database: false,
            name: "application_name = 'a'; CREATE ROLE evil SUPERUSER; --".into(),
            value: "v".into(),
        });
        assert!(matches!(g.validate(), Err(Invalid::SettingName(_))));
        g.settings.clear();
        g.roles.push(Role {
            name: "r".repeat(64),
            superuser: false,
            inherit: true,
            createrole: false,
            createdb: false,
            login: true,
            replication: false,
            bypassrls: false,
            connection_limit: -1,
            valid_until: None,
            comment: None,
        });
        assert!(matches!(g.validate(), Err(Invalid::RoleName(_))));
        assert!(Globals::parse(
            br#"{"format": 2, "roles": [], "memberships": [], "settings": []}"#
        )
        .is_err());
    }

    #[test]
    fn the_create_template_never_grants_superuser() {
        let r = Role {
            name: "boss".into(),
            superuser: true,
            inherit: true,
            createrole: true,
            createdb: true,
            login: true,
            replication: false,
            bypassrls: false,
            connection_limit: 3,
            valid_until: None,
            comment: None,
        };
        let t = create_template(&r);
        assert!(
            t.contains("NOSUPERUSER") && !t.contains(" SUPERUSER"),
            "{t}"
        );
        assert!(t.contains("CONNECTION LIMIT 3"), "{t}");
    }

    #[test]
    fn sql_in_settings_is_noticed() {
        assert!(looks_like_sql("x\nGRANT pg_read_server_files TO me;"));
        assert!(looks_like_sql("a'; create role evil superuser; --"));
        assert!(!looks_like_sql("stockops watch"));
    }
}
