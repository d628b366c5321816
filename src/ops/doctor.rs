//! `stockops doctor`: is this server, and its backup repository, hardened?
//!
//! Each check reads the server's own view of itself (settings,
//! `pg_hba_file_rules`, `pg_authid`, the catalogs, a provisioning plan that is
//! rolled back) or the repository, and turns what is wrong into a
//! [`Finding`] with a severity, the evidence and the fix. A check that cannot
//! run (a privilege the connected role lacks, a repository that cannot be
//! read) says so as a finding of its own: an unchecked item is never reported
//! as fine.

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use sqlx::PgConnection;
use tokio::io::AsyncReadExt;

use crate::db::provision::{self, Declaration, Mode};
use crate::recovery::drill;
use crate::repository::storage::WriteStore;
use crate::repository::{backups, catalog};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
        }
    }
}

/// Something wrong, with what shows it and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The check that found it (stable: scripts may match on it).
    pub check: &'static str,
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
    pub fix: String,
}

/// One check and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub about: &'static str,
    /// `ok`, `findings` or `not checked`.
    pub result: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub checks: Vec<CheckResult>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    fn add(&mut self, check: &'static str, about: &'static str, r: anyhow::Result<Vec<Finding>>) {
        let result = match r {
            Ok(found) if found.is_empty() => "ok",
            Ok(found) => {
                self.findings.extend(found);
                "findings"
            }
            Err(e) => {
                self.findings.push(Finding {
                    check,
                    severity: Severity::Medium,
                    title: format!("{about}: not checked"),
                    evidence: crate::exit::one_line(&e),
                    fix: "run doctor as a superuser (it reads pg_hba_file_rules and pg_authid) \
                          with the repository and its credentials configured"
                        .into(),
                });
                "not checked"
            }
        };
        self.checks.push(CheckResult {
            check,
            about,
            result,
        });
    }
}

#[derive(Debug, Clone)]
pub struct DoctorOptions {
    pub max_backup_age: Duration,
    pub max_drill_age: Duration,
    /// Logins allowed to be superuser or to bypass row-level security,
    /// besides the roles the declaration gives those attributes.
    pub allow_superuser: Vec<String>,
}

/// Run every check: the server's, then the repository's when there is one.
pub async fn run(
    conn: &mut PgConnection,
    store: Option<&dyn WriteStore>,
    opts: &DoctorOptions,
) -> anyhow::Result<Report> {
    let decl = Declaration::embedded()?;
    let mut r = Report::default();
    r.add("tls", "TLS", tls(conn).await);
    r.add(
        "password_encryption",
        "password hashing",
        password_encryption(conn).await,
    );
    r.add("hba", "pg_hba.conf rules", hba(conn).await);
    r.add(
        "privileged_logins",
        "superuser and BYPASSRLS logins",
        privileged_logins(conn, &decl, &opts.allow_superuser).await,
    );
    r.add(
        "md5_passwords",
        "stored password hashes",
        md5_passwords(conn).await,
    );
    r.add(
        "public_privileges",
        "PUBLIC privileges on the database and schemas",
        public_privileges(conn).await,
    );
    r.add(
        "schema_create",
        "CREATE on schemas",
        schema_create(conn).await,
    );
    r.add(
        "security_definer",
        "SECURITY DEFINER functions",
        security_definer(conn).await,
    );
    r.add(
        "forced_rls",
        "forced row-level security",
        forced_rls(conn, &decl).await,
    );
    r.add("pgaudit", "pgaudit", pgaudit(conn).await);
    r.add("logging", "server logging", logging(conn).await);
    r.add(
        "drift",
        "roles, grants and policies",
        drift(conn, &decl).await,
    );
    r.add(
        "role_text",
        "role settings and comments (what the next backup's roles hold)",
        role_text(conn).await,
    );
    match store {
        None => r.findings.push(Finding {
            check: "repository",
            severity: Severity::Medium,
            title: "no backup repository configured: backups, drills and encryption not checked"
                .into(),
            evidence: "neither --repo, STOCKOPS_REPO nor the config file's repo is set".into(),
            fix: "set STOCKOPS_REPO (s3://BUCKET/PREFIX) as the backup job has it".into(),
        }),
        Some(store) => {
            // One listing (and one read of each manifest) for both checks.
            let listings = backups::list(store).await;
            let (age, believed) = match &listings {
                Ok(l) => (backup_age(store, l, opts.max_backup_age), Ok(manifests(l))),
                Err(e) => (Err(anyhow::anyhow!("{e:#}")), Err(anyhow::anyhow!("{e:#}"))),
            };
            r.add("backup_age", "newest backup", age);
            r.add(
                "drill",
                "newest drill",
                drill_age(store, opts.max_drill_age).await,
            );
            r.add(
                "manifests",
                "manifests against the objects the store holds",
                believed,
            );
            r.add(
                "encryption",
                "repository encryption",
                encryption(store).await,
            );
        }
    }
    r.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(r)
}

fn finding(
    check: &'static str,
    severity: Severity,
    title: impl Into<String>,
    evidence: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check,
        severity,
        title: title.into(),
        evidence: evidence.into(),
        fix: fix.into(),
    }
}

async fn setting(conn: &mut PgConnection, name: &str) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT current_setting($1, true)")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?)
}

async fn tls(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let ssl = setting(conn, "ssl").await?.unwrap_or_default();
    if ssl != "on" {
        return Ok(vec![finding(
            "tls",
            Severity::High,
            "TLS is off: passwords and stock data cross the network in clear",
            format!("ssl = {ssl}"),
            "ssl = on with a certificate (deploy/postgresql.conf), and hostssl lines only in pg_hba.conf",
        )]);
    }
    let min = setting(conn, "ssl_min_protocol_version")
        .await?
        .unwrap_or_default();
    if !matches!(min.as_str(), "TLSv1.2" | "TLSv1.3") {
        return Ok(vec![finding(
            "tls",
            Severity::High,
            "TLS accepts protocol versions older than 1.2",
            format!("ssl_min_protocol_version = '{min}'"),
            "ssl_min_protocol_version = 'TLSv1.3' (or 'TLSv1.2' for old clients)",
        )]);
    }
    Ok(vec![])
}

async fn password_encryption(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let v = setting(conn, "password_encryption")
        .await?
        .unwrap_or_default();
    if v == "scram-sha-256" {
        return Ok(vec![]);
    }
    Ok(vec![finding(
        "password_encryption",
        Severity::High,
        "new passwords are stored as MD5 hashes",
        format!("password_encryption = '{v}'"),
        "password_encryption = 'scram-sha-256', then rotate every login's password \
         (stockops users rotate-password NAME)",
    )])
}

#[derive(sqlx::FromRow)]
struct HbaRule {
    line_number: Option<i32>,
    r#type: Option<String>,
    database: Option<Vec<String>>,
    user_name: Option<Vec<String>>,
    address: Option<String>,
    auth_method: Option<String>,
    error: Option<String>,
}

impl HbaRule {
    fn describe(&self) -> String {
        let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(",")).unwrap_or_default();
        format!(
            "pg_hba.conf line {}: {} {} {} {} {}",
            self.line_number.unwrap_or_default(),
            self.r#type.as_deref().unwrap_or("?"),
            list(&self.database),
            list(&self.user_name),
            self.address.as_deref().unwrap_or(""),
            self.auth_method.as_deref().unwrap_or("?"),
        )
        .replace("  ", " ")
    }
}

async fn hba(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let rules: Vec<HbaRule> = sqlx::query_as(
        "SELECT line_number, type, database, user_name, address, auth_method, error \
         FROM pg_hba_file_rules ORDER BY line_number",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for rule in &rules {
        let method = rule.auth_method.as_deref().unwrap_or_default();
        let kind = rule.r#type.as_deref().unwrap_or_default();
        if let Some(error) = &rule.error {
            out.push(finding(
                "hba",
                Severity::High,
                "a pg_hba.conf line does not parse: the server ignores the whole file on reload",
                format!("{}: {error}", rule.describe()),
                "fix the line, then SELECT pg_reload_conf()",
            ));
            continue;
        }
        match method {
            "trust" => out.push(finding(
                "hba",
                Severity::High,
                "a pg_hba.conf line admits logins without any password (trust)",
                rule.describe(),
                "peer for local administration, scram-sha-256 over hostssl for everything else",
            )),
            "md5" | "password" => out.push(finding(
                "hba",
                Severity::High,
                format!("a pg_hba.conf line accepts {method} authentication"),
                rule.describe(),
                "scram-sha-256 (md5 hashes can be replayed; password sends it in clear)",
            )),
            _ => {}
        }
        if matches!(kind, "host" | "hostnossl") && method != "reject" {
            out.push(finding(
                "hba",
                Severity::High,
                "a pg_hba.conf line admits TCP logins without TLS",
                rule.describe(),
                "hostssl for every TCP line; end with `hostnossl all all all reject`",
            ));
        }
    }
    Ok(out)
}

async fn privileged_logins(
    conn: &mut PgConnection,
    decl: &Declaration,
    allowed: &[String],
) -> anyhow::Result<Vec<Finding>> {
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles \
         WHERE rolcanlogin AND (rolsuper OR rolbypassrls) ORDER BY rolname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for (name, superuser, bypass) in rows {
        let declared = decl.roles.get(&name);
        let expected_super = allowed.contains(&name) || declared.is_some_and(|d| d.superuser);
        let expected_bypass = expected_super || declared.is_some_and(|d| d.bypassrls);
        if superuser && !expected_super {
            out.push(finding(
                "privileged_logins",
                Severity::High,
                format!("login {name} is a superuser"),
                format!("pg_roles: {name} rolsuper = true, rolcanlogin = true"),
                format!(
                    "ALTER ROLE {name} NOSUPERUSER (or list it with --allow-superuser if it is the DBA's)"
                ),
            ));
        } else if bypass && !expected_bypass {
            out.push(finding(
                "privileged_logins",
                Severity::High,
                format!("login {name} bypasses row-level security"),
                format!("pg_roles: {name} rolbypassrls = true"),
                format!("ALTER ROLE {name} NOBYPASSRLS (only stockops_backup needs it)"),
            ));
        }
    }
    Ok(out)
}

async fn md5_passwords(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT rolname FROM pg_authid WHERE rolpassword LIKE 'md5%' ORDER BY rolname",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(names
        .into_iter()
        .map(|name| {
            finding(
                "md5_passwords",
                Severity::High,
                format!("the password of {name} is stored as an MD5 hash"),
                format!("pg_authid: {name} rolpassword starts with md5"),
                format!("stockops users rotate-password {name} (stored as SCRAM)"),
            )
        })
        .collect())
}

async fn public_privileges(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    let (connect, temp): (bool, bool) = sqlx::query_as(
        "SELECT has_database_privilege('public', current_database(), 'CONNECT'), \
                has_database_privilege('public', current_database(), 'TEMPORARY')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if connect {
        out.push(finding(
            "public_privileges",
            Severity::Medium,
            "every role of the cluster may connect to this database",
            "CONNECT is granted to PUBLIC",
            "stockops provision (it revokes CONNECT from PUBLIC and grants it to the groups)",
        ));
    }
    if temp {
        out.push(finding(
            "public_privileges",
            Severity::Low,
            "every role may create temporary tables in this database",
            "TEMPORARY is granted to PUBLIC",
            "REVOKE TEMPORARY ON DATABASE <db> FROM PUBLIC",
        ));
    }
    let usage: Vec<String> = sqlx::query_scalar(
        "SELECT nspname FROM pg_namespace \
         WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') \
           AND nspname NOT LIKE 'pg\\_%' \
           AND has_schema_privilege('public', oid, 'USAGE') ORDER BY nspname",
    )
    .fetch_all(&mut *conn)
    .await?;
    for schema in usage {
        out.push(finding(
            "public_privileges",
            Severity::Medium,
            format!("every role may use schema {schema}"),
            format!("USAGE on schema {schema} is granted to PUBLIC"),
            format!("REVOKE USAGE ON SCHEMA {schema} FROM PUBLIC, or stockops provision"),
        ));
    }
    Ok(out)
}

async fn schema_create(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END \
         FROM pg_namespace n, aclexplode(n.nspacl) a \
         WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(schema, grantee)| {
            finding(
                "schema_create",
                Severity::High,
                format!("{grantee} may create objects in schema {schema}"),
                format!("CREATE on schema {schema} is granted to {grantee}"),
                format!(
                    "REVOKE CREATE ON SCHEMA {schema} FROM {grantee} \
                     (an object planted there can hijack unqualified names)"
                ),
            )
        })
        .collect())
}

async fn security_definer(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) \
         FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.prosecdef \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c \
                           WHERE c LIKE 'search\\_path=%' AND c ~ '(^|[ ,=])pg_temp$') \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                           WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid \
                             AND d.deptype = 'e') \
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(names
        .into_iter()
        .map(|f| {
            finding(
                "security_definer",
                Severity::High,
                format!("SECURITY DEFINER function {f} has no pinned search_path ending with pg_temp"),
                format!("pg_proc: {f} prosecdef = true, proconfig without a search_path that ends with pg_temp"),
                format!(
                    "ALTER FUNCTION {f} SET search_path = pg_catalog, pg_temp \
                     (a caller's search_path, or its temporary schema searched first, could otherwise \
                     run its own code with the owner's rights)"
                ),
            )
        })
        .collect())
}

async fn forced_rls(conn: &mut PgConnection, decl: &Declaration) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    for table in decl.policies.keys() {
        let row: Option<(bool, bool)> = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class \
             WHERE oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await?;
        let evidence = match row {
            Some((true, true)) => continue,
            Some((enabled, forced)) => {
                format!("{table}: relrowsecurity = {enabled}, relforcerowsecurity = {forced}")
            }
            // A missing table is drift, reported by the drift check.
            None => continue,
        };
        out.push(finding(
            "forced_rls",
            Severity::High,
            format!("{table} is not under forced row-level security"),
            evidence,
            "stockops provision (roles/policies.toml declares it)",
        ));
    }
    Ok(out)
}

async fn pgaudit(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let preload = setting(conn, "shared_preload_libraries")
        .await?
        .unwrap_or_default();
    if !preload.split(',').any(|l| l.trim() == "pgaudit") {
        return Ok(vec![finding(
            "pgaudit",
            Severity::High,
            "pgaudit is not loaded: role and DDL changes leave no audit trail in the server log",
            format!("shared_preload_libraries = '{preload}'"),
            "install postgresql-15-pgaudit, shared_preload_libraries = 'pgaudit' and the \
             pgaudit.* settings of deploy/postgresql.conf, then restart",
        )]);
    }
    let log = setting(conn, "pgaudit.log").await?.unwrap_or_default();
    if log.is_empty() || log == "none" {
        return Ok(vec![finding(
            "pgaudit",
            Severity::Medium,
            "pgaudit is loaded but logs nothing",
            format!("pgaudit.log = '{log}'"),
            "pgaudit.log = 'ddl, role' (deploy/postgresql.conf)",
        )]);
    }
    Ok(vec![])
}

async fn logging(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    for (name, severity, why) in [
        (
            "log_connections",
            Severity::Medium,
            "who connected from where is not logged",
        ),
        (
            "log_disconnections",
            Severity::Low,
            "session ends and durations are not logged",
        ),
    ] {
        let v = setting(conn, name).await?.unwrap_or_default();
        if v != "on" {
            out.push(finding(
                "logging",
                severity,
                why,
                format!("{name} = {v}"),
                format!("{name} = on"),
            ));
        }
    }
    let statement = setting(conn, "log_statement").await?.unwrap_or_default();
    if statement == "none" {
        out.push(finding(
            "logging",
            Severity::Medium,
            "schema changes are not logged",
            "log_statement = 'none'",
            "log_statement = 'ddl'",
        ));
    }
    let prefix = setting(conn, "log_line_prefix").await?.unwrap_or_default();
    if !(prefix.contains("%u") && prefix.contains("%d")) {
        out.push(finding(
            "logging",
            Severity::Low,
            "log lines do not say which user and database they are about",
            format!("log_line_prefix = '{prefix}'"),
            "log_line_prefix = '%m [%p] %q%u@%d from %h app=%a '",
        ));
    }
    Ok(out)
}

async fn drift(conn: &mut PgConnection, decl: &Declaration) -> anyhow::Result<Vec<Finding>> {
    let changes = provision::run(conn, decl, Mode::Plan).await?;
    if changes.is_empty() {
        return Ok(vec![]);
    }
    let mut evidence: Vec<String> = changes
        .iter()
        .take(5)
        .map(|c| c.description.clone())
        .collect();
    if changes.len() > 5 {
        evidence.push(format!("and {} more", changes.len() - 5));
    }
    Ok(vec![finding(
        "drift",
        Severity::High,
        format!(
            "the server differs from roles/ in {} place(s)",
            changes.len()
        ),
        evidence.join("; "),
        "stockops provision --dry-run to review, then stockops provision \
         (runbooks/provision-drift.md)",
    )])
}

fn age_text(d: chrono::Duration) -> String {
    crate::output::age(d.num_seconds() as f64)
}

fn backup_age(
    store: &dyn WriteStore,
    listings: &[backups::Listing],
    max: Duration,
) -> anyhow::Result<Vec<Finding>> {
    let newest = listings
        .iter()
        .filter_map(|l| l.trusted())
        .max_by_key(|m| m.snapshot_at);
    let Some(m) = newest else {
        return Ok(vec![finding(
            "backup_age",
            Severity::High,
            "the repository holds no complete backup",
            format!("{}: no manifest under backups/", store.describe()),
            "stockops backup, then schedule it (deploy/systemd/stockops-backup.timer)",
        )]);
    };
    let age = Utc::now() - m.snapshot_at;
    if age.to_std().unwrap_or_default() <= max {
        return Ok(vec![]);
    }
    Ok(vec![finding(
        "backup_age",
        Severity::High,
        format!(
            "the newest backup is {} old (policy: {})",
            age_text(age),
            age_text(chrono::Duration::from_std(max)?)
        ),
        format!("backup {} snapshot at {}", m.id, m.snapshot_at.to_rfc3339()),
        "look at the backup job's last run (runbooks/backup-failed.md), then stockops backup",
    )])
}

/// Role settings and comments holding a newline or SQL keywords: any login
/// can write its own, and the backup carries them. A restore applies them as
/// data, never as SQL, but someone tried something: worth a look.
async fn role_text(conn: &mut PgConnection) -> anyhow::Result<Vec<Finding>> {
    let g = crate::backup::globals::capture(conn).await?;
    let odd = g.suspicious();
    if odd.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![finding(
        "role_text",
        Severity::Medium,
        format!(
            "{} role setting(s) or comment(s) hold a newline or SQL keywords",
            odd.len()
        ),
        odd.join("; "),
        "read them (SELECT * FROM pg_db_role_setting); stockops restores them as data, never as SQL, \
         but a login that stores SQL in its settings is probing: see runbooks/compromised-login.md",
    )])
}

/// Backups whose manifest the store contradicts, or whose objects are
/// missing or of another size.
fn manifests(all: &[backups::Listing]) -> Vec<Finding> {
    let mut out = Vec::new();
    let untrusted: Vec<&str> = all.iter().filter_map(|l| l.untrusted.as_deref()).collect();
    if !untrusted.is_empty() {
        out.push(finding(
            "manifests",
            Severity::High,
            format!(
                "{} manifest(s) in the repository cannot be believed",
                untrusted.len()
            ),
            untrusted.join("; "),
            "stockops never picks them as latest nor prunes them; find who wrote them (the bucket's \
             access log) and follow runbooks/corrupted-backup.md",
        ));
    }
    let damaged: Vec<String> = all
        .iter()
        .flat_map(|l| l.damaged.iter().map(move |d| format!("{}: {d}", l.id)))
        .collect();
    if !damaged.is_empty() {
        out.push(finding(
            "manifests",
            Severity::High,
            format!("{} object(s) do not match their manifest", damaged.len()),
            damaged.join("; "),
            "stockops backups verify ID names what is wrong; take a new backup and follow \
             runbooks/corrupted-backup.md",
        ));
    }
    out
}

async fn drill_age(store: &dyn WriteStore, max: Duration) -> anyhow::Result<Vec<Finding>> {
    let Some(last) = drill::list(store).await?.pop() else {
        return Ok(vec![finding(
            "drill",
            Severity::High,
            "no recovery drill has ever run against this repository",
            format!("{}: nothing under drills/", store.describe()),
            "stockops drill, then schedule it weekly (runbooks/drill.md)",
        )]);
    };
    let mut out = Vec::new();
    if !last.ok {
        let failed: Vec<String> = last
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        out.push(finding(
            "drill",
            Severity::High,
            "the newest recovery drill failed",
            format!(
                "drill of backup {} at {}: {}",
                last.backup,
                last.started_at.to_rfc3339(),
                failed.join("; ")
            ),
            "runbooks/drill.md: find why, fix, drill again",
        ));
    }
    let age = Utc::now() - last.started_at;
    if age.to_std().unwrap_or_default() > max {
        out.push(finding(
            "drill",
            Severity::High,
            format!(
                "the newest recovery drill is {} old (policy: {})",
                age_text(age),
                age_text(chrono::Duration::from_std(max)?)
            ),
            format!(
                "drill of backup {} at {}",
                last.backup,
                last.started_at.to_rfc3339()
            ),
            "stockops drill (and check its timer: deploy/systemd/stockops-drill.timer)",
        ));
    }
    Ok(out)
}

/// Objects that are plain by design: manifests (names, sizes, digests) and
/// drill reports (timings and check results).
fn plain_by_design(key: &str) -> bool {
    (key.starts_with(catalog::PREFIX) && key.ends_with(&format!("/{}", catalog::MANIFEST)))
        || (key.starts_with("drills/") && key.ends_with(".json"))
}

const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// Objects whose first bytes are read at once: a WAL archive holds thousands
/// of small objects, and one read after the other is a round trip each.
const HEADER_READS_IN_FLIGHT: usize = 16;

async fn encryption(store: &dyn WriteStore) -> anyhow::Result<Vec<Finding>> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let keys: Vec<String> = store
        .list("")
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !plain_by_design(k))
        .collect();
    let checked = keys.len();
    let mut plain: Vec<String> = stream::iter(keys)
        .map(|key| async move {
            let mut reader = store.open(&key).await?;
            let mut head = Vec::with_capacity(AGE_HEADER.len());
            (&mut reader)
                .take(AGE_HEADER.len() as u64)
                .read_to_end(&mut head)
                .await?;
            anyhow::Ok((head != AGE_HEADER).then_some(key))
        })
        .buffer_unordered(HEADER_READS_IN_FLIGHT)
        .try_filter_map(|k| async move { Ok(k) })
        .try_collect()
        .await?;
    plain.sort();
    if plain.is_empty() {
        tracing::debug!(objects = checked, "every object is age-encrypted");
        return Ok(vec![]);
    }
    let mut evidence: Vec<String> = plain.iter().take(5).cloned().collect();
    if plain.len() > 5 {
        evidence.push(format!("and {} more", plain.len() - 5));
    }
    Ok(vec![finding(
        "encryption",
        Severity::High,
        format!(
            "{} object(s) in the repository are not age-encrypted",
            plain.len()
        ),
        format!("{}: {}", store.describe(), evidence.join(", ")),
        "find who wrote them (only stockops writes here, always encrypted) and remove them; \
         if they hold data, treat it as a leak (runbooks/ransomware.md)",
    )])
}
