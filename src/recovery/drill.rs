//! `stockops drill`: prove, with figures, that a backup restores completely
//! and fast. Restore into a scratch cluster of our own (or a given empty
//! database), check everything, time every phase, store the report beside
//! the backup.
//!
//! Phases: (1) start the scratch cluster; (2) restore: fetch, decrypt,
//! decompress and `pg_restore`, streamed together (they overlap, so they are
//! timed as one), roles first; (3) provision the restored database (its
//! database-level grants are not in the archive) and check it has no drift:
//! roles, grants, forced row-level security, the api functions; (4) verify:
//! every table's count and fingerprint, the audit chain and its head against
//! the one recorded at backup time, and smoke calls as each group (an allowed
//! read succeeds, a forbidden write is denied). RTO is the wall time from the
//! start to a verified database; RPO is now minus the backup's snapshot time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::db::provision::{self, Declaration, Mode};
use crate::pipeline::crypto::Identities;
use crate::recovery::logical::{self as restore, RestoreOptions};
use crate::repository::catalog::Manifest;
use crate::repository::storage::WriteStore;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// The drill's report, printed and stored at `drills/<backup id>/<time>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillReport {
    pub backup: String,
    pub snapshot_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub target: String,
    pub phases: Vec<Phase>,
    pub rto_seconds: f64,
    pub rpo_seconds: f64,
    pub max_rto_seconds: Option<f64>,
    pub max_rpo_seconds: Option<f64>,
    pub checks: Vec<DrillCheck>,
    pub ok: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    pub target: Option<(PgConnectOptions, String)>,
    pub max_rto: Option<f64>,
    pub max_rpo: Option<f64>,
    pub keep: bool,
    /// What the stored report must not hold.
    pub redact: Redact,
}

/// What must never reach a stored report or a log line, whatever an error
/// from pg_restore, postgres or the restored server's log says: the
/// identity file's path, any age private key, the S3 secret and session
/// token, PGPASSWORD, passwords in URLs, and the random part of a restore
/// keyring's directory name.
#[derive(Debug, Clone, Default)]
pub struct Redact {
    words: Vec<String>,
}

/// The same placeholder the logs use.
const REDACTED: &str = crate::logging::HIDDEN;

impl Redact {
    /// The secrets of this process's environment, and the identity file's
    /// path (as given and absolute) when there is one.
    pub fn from_env(identity_file: Option<&Path>) -> Self {
        let mut words = Vec::new();
        for key in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD"] {
            if let Ok(v) = std::env::var(key) {
                words.push(v);
            }
        }
        if let Some(p) = identity_file {
            words.push(p.display().to_string());
            if let Ok(abs) = std::path::absolute(p) {
                words.push(abs.display().to_string());
            }
        }
        words.retain(|w| w.len() >= 4);
        // The longest first, so a path is not half-replaced by a shorter one.
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        Self { words }
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for w in &self.words {
            out = out.replace(w.as_str(), REDACTED);
        }
        // This process's own secrets above; what a log line may hold
        // (verifiers, age keys, URL passwords) is the logs' redactor's job.
        let out = after_marker(&out, crate::recovery::physical::KEYRING_PREFIX, |c| {
            c.is_ascii_hexdigit()
        });
        crate::logging::redact(&out).into_owned()
    }

    /// The report with every text field redacted.
    pub fn report(&self, mut r: DrillReport) -> DrillReport {
        r.target = self.text(&r.target);
        for c in &mut r.checks {
            c.name = self.text(&c.name);
            c.detail = self.text(&c.detail);
        }
        r
    }
}

/// Replace the run of `keep`-characters after each `marker` with [`REDACTED`].
fn after_marker(s: &str, marker: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A PostgreSQL cluster of our own on a Unix socket, removed on drop unless kept.
pub struct ScratchCluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
    keep: bool,
}

impl ScratchCluster {
    /// initdb and start, as the postgres OS user when run as root (initdb refuses root).
    pub fn start(major: u32, keep: bool) -> anyhow::Result<Self> {
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
        if !bin.join("initdb").exists() {
            bail!("PostgreSQL {major}'s server binaries are not installed ({}): install postgresql-{major}", bin.display());
        }
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "stockops-drill-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        // Private: it holds the socket, and the data of a copy of production.
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        if as_postgres {
            chown_postgres(&dir)?;
        }
        let port = free_port()?;
        let cluster = Self {
            dir,
            port,
            bin,
            as_postgres,
            keep,
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        )?;
        cluster.authentication(&data)?;
        let opts = format!(
            "-p {} -k {} -c listen_addresses='' -c fsync=off -c max_connections=50",
            port,
            cluster.dir.display()
        );
        let log = cluster.dir.join("log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// Who may log in: the OS user running stockops (and the postgres OS
    /// user the server runs as, when that is root) as postgres, by peer;
    /// every other login by its password. Never `trust`, no TCP.
    fn authentication(&self, data: &Path) -> anyhow::Result<()> {
        let me = if self.as_postgres {
            vec!["root".to_string(), "postgres".to_string()]
        } else {
            let out = Command::new("id").arg("-un").output()?;
            vec![String::from_utf8_lossy(&out.stdout).trim().to_string()]
        };
        let hba = data.join("pg_hba.conf");
        let ident = data.join("pg_ident.conf");
        std::fs::write(
            &hba,
            "# a stockops scratch cluster: the OS user running stockops as postgres, by peer;\n\
             # other logins by password\n\
             local all postgres peer map=stockops\n\
             local all all scram-sha-256\n\
             local replication postgres peer map=stockops\n\
             local replication all scram-sha-256\n",
        )?;
        let map: String = me
            .iter()
            .map(|u| format!("stockops {u} postgres\n"))
            .collect();
        std::fs::write(&ident, map)?;
        if self.as_postgres {
            chown_postgres(&hba)?;
            chown_postgres(&ident)?;
        }
        Ok(())
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = self.bin.join(program);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{program} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    pub fn options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.dir)
            .port(self.port)
            .username("postgres")
            .database(database)
    }
}

impl Drop for ScratchCluster {
    fn drop(&mut self) {
        if self.keep {
            tracing::info!(dir = %self.dir.display(), port = self.port, "kept the scratch cluster");
            return;
        }
        let data = self.dir.join("data");
        let _ = self.run(
            "pg_ctl",
            &["-D", path(&data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    let out = Command::new("chown")
        .args(["postgres:postgres", path(dir)])
        .output()?;
    if !out.status.success() {
        bail!(
            "cannot give {} to the postgres user: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Run a drill of backup `m`.
pub async fn run(
    store: &dyn WriteStore,
    m: &Manifest,
    ids: &Identities,
    opts: DrillOptions,
) -> anyhow::Result<DrillReport> {
    m.validate()
        .and_then(|()| m.require_logical())
        .map_err(|e| crate::exit::Coded::new(crate::exit::FAILURE, e))?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut phases = Vec::new();
    let mut checks = Vec::new();
    let major = m.server_major();
    // 1. The target.
    let t = Instant::now();
    let (cluster, target, url) = match opts.target.clone() {
        Some((o, url)) => (None, o, Some(url)),
        None => {
            let c = ScratchCluster::start(major, opts.keep)?;
            let mut admin =
                PgConnection::connect_with(&c.options("postgres").disable_statement_logging())
                    .await?;
            sqlx::raw_sql("CREATE DATABASE drill")
                .execute(&mut admin)
                .await?;
            let o = c.options("drill");
            (Some(c), o, None)
        }
    };
    phases.push(Phase {
        name: "start the scratch cluster".into(),
        seconds: t.elapsed().as_secs_f64(),
    });
    // 2.-4. Restore, check, verify; a failure anywhere is the drill's finding.
    if let Err(e) = restore_and_verify(
        store,
        m,
        ids,
        &target,
        url.as_deref(),
        &mut phases,
        &mut checks,
    )
    .await
    {
        checks.push(DrillCheck {
            name: "restore".into(),
            ok: false,
            detail: format!("{e:#}"),
        });
    }
    let rto = clock.elapsed().as_secs_f64();
    let rpo = (Utc::now() - m.snapshot_at).num_milliseconds() as f64 / 1000.0;
    if let Some(max) = opts.max_rto {
        checks.push(DrillCheck {
            name: "RTO budget".into(),
            ok: rto <= max,
            detail: format!("{rto:.1}s, budget {max:.0}s"),
        });
    }
    if let Some(max) = opts.max_rpo {
        checks.push(DrillCheck {
            name: "RPO budget".into(),
            ok: rpo <= max,
            detail: format!("{rpo:.0}s, budget {max:.0}s"),
        });
    }
    let target_name = match &cluster {
        Some(c) => format!("scratch cluster {} (port {})", c.dir.display(), c.port),
        None => crate::db::describe(&target),
    };
    drop(cluster);
    let report = opts.redact.report(DrillReport {
        backup: m.id.clone(),
        snapshot_at: m.snapshot_at,
        started_at,
        target: target_name,
        phases,
        rto_seconds: rto,
        rpo_seconds: rpo,
        max_rto_seconds: opts.max_rto,
        max_rpo_seconds: opts.max_rpo,
        ok: checks.iter().all(|c| c.ok),
        checks,
    });
    crate::recovery::drill::store_report(store, &report).await?;
    Ok(report)
}

/// Restore, then check drift, fingerprints, the audit chain and the groups' calls.
async fn restore_and_verify(
    store: &dyn WriteStore,
    m: &Manifest,
    ids: &Identities,
    target: &PgConnectOptions,
    url: Option<&str>,
    phases: &mut Vec<Phase>,
    checks: &mut Vec<DrillCheck>,
) -> anyhow::Result<()> {
    // 2. Restore (roles first).
    let t = Instant::now();
    let opts = RestoreOptions {
        force: false,
        with_globals: true,
        regrant_memberships: false,
        jobs: 1,
    };
    let restored = restore::run(store, m, ids, target, url, opts).await?;
    phases.push(Phase {
        name: "fetch, decrypt, decompress, restore (streamed)".into(),
        seconds: t.elapsed().as_secs_f64(),
    });
    // 3. Drift as restored (only the database's own grants may differ: pg_dump
    //    keeps them outside its archive), then provision for those.
    let t = Instant::now();
    let mut conn = PgConnection::connect_with(&target.clone().disable_statement_logging()).await?;
    let decl = Declaration::embedded()?;
    checks.push(drift_check(&mut conn, &decl, true).await?);
    provision::run(&mut conn, &decl, Mode::Apply)
        .await
        .context("provisioning the restored database")?;
    phases.push(Phase {
        name: "drift check and provision".into(),
        seconds: t.elapsed().as_secs_f64(),
    });
    // 4. Verify.
    let t = Instant::now();
    checks.push(DrillCheck {
        name: "row counts and fingerprints".into(),
        ok: restored.mismatches.is_empty(),
        detail: if restored.mismatches.is_empty() {
            format!(
                "{} tables, {} rows, as in the backup's snapshot",
                restored.tables_checked, restored.rows
            )
        } else {
            restored.mismatches.join("; ")
        },
    });
    checks.push(audit_check(&mut conn, restored.audit_head.as_deref()).await);
    checks.extend(smoke_calls(&mut conn, target, &decl).await?);
    phases.push(Phase {
        name: "verify".into(),
        seconds: t.elapsed().as_secs_f64(),
    });
    Ok(())
}

/// Roles, grants, forced RLS and api functions against the declaration (the
/// provision plan, rolled back). A logical restore lacks the database's own
/// grants (pg_dump keeps them outside its archive): `skip_database` leaves
/// those to the provisioning that follows.
async fn drift_check(
    conn: &mut PgConnection,
    decl: &Declaration,
    skip_database: bool,
) -> anyhow::Result<DrillCheck> {
    let drift: Vec<String> = provision::run(conn, decl, Mode::Plan)
        .await?
        .into_iter()
        .filter(|c| !(skip_database && c.kind == "database"))
        .map(|c| c.description)
        .collect();
    Ok(DrillCheck {
        name: "roles, grants, forced row-level security, api functions".into(),
        ok: drift.is_empty(),
        detail: if drift.is_empty() {
            "as declared".into()
        } else {
            drift.join("; ")
        },
    })
}

/// A point-in-time recovery drill's checks, on the recovered cluster (its
/// socket in `dir`, this OS user as postgres by peer): in every database holding the
/// stockops schemas, drift, the audit chain and each group's calls. A
/// recovered cluster carries its database's own grants, so drift is total.
pub(crate) async fn check_recovered_cluster(dir: &Path, port: u16) -> Vec<DrillCheck> {
    let opts = |db: &str| {
        PgConnectOptions::new()
            .socket(dir)
            .port(port)
            .username("postgres")
            .database(db)
            .disable_statement_logging()
    };
    let failed = |name: &str, e: anyhow::Error| DrillCheck {
        name: name.into(),
        ok: false,
        detail: format!("{e:#}"),
    };
    let decl = match Declaration::embedded() {
        Ok(d) => d,
        Err(e) => return vec![failed("the embedded declaration", e)],
    };
    let all: anyhow::Result<Vec<String>> = async {
        let mut c = PgConnection::connect_with(&opts("postgres")).await?;
        let all = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
        )
        .fetch_all(&mut c)
        .await?;
        c.close().await.ok();
        Ok(all)
    }
    .await;
    let all = match all {
        Ok(all) => all,
        Err(e) => return vec![failed("connect to the recovered cluster", e)],
    };
    let mut ours = Vec::new();
    let mut checks = Vec::new();
    for db in all {
        let target = opts(&db);
        let named = |mut c: DrillCheck| {
            c.name = format!("{}: {}", db, c.name);
            c
        };
        // None: not a stockops database.
        let result: anyhow::Result<Option<Vec<DrillCheck>>> = async {
            let mut conn = PgConnection::connect_with(&target).await?;
            let has: bool = sqlx::query_scalar(
                "SELECT to_regnamespace('api') IS NOT NULL AND to_regnamespace('inventory') IS NOT NULL \
                 AND to_regnamespace('audit') IS NOT NULL",
            )
            .fetch_one(&mut conn)
            .await?;
            if !has {
                conn.close().await.ok();
                return Ok(None);
            }
            let mut found = vec![drift_check(&mut conn, &decl, false).await?];
            found.push(audit_check(&mut conn, None).await);
            found.extend(smoke_calls(&mut conn, &target, &decl).await?);
            conn.close().await.ok();
            Ok(Some(found))
        }
        .await;
        match result {
            Ok(None) => continue,
            Ok(Some(found)) => checks.extend(found.into_iter().map(named)),
            Err(e) => checks.push(named(failed("checks", e))),
        }
        ours.push(db);
    }
    checks.insert(
        0,
        DrillCheck {
            name: "stockops databases in the recovered cluster".into(),
            ok: true,
            detail: if ours.is_empty() {
                "none: only the recovery itself was checked".into()
            } else {
                ours.join(", ")
            },
        },
    );
    checks
}

async fn audit_check(conn: &mut PgConnection, head: Option<&str>) -> DrillCheck {
    let expect = head.and_then(|h| h.parse().ok());
    match crate::business::audit::verify(conn, false, expect).await {
        Ok(v) => DrillCheck {
            name: if head.is_some() {
                "audit chain and its head at backup time".into()
            } else {
                "audit chain".into()
            },
            ok: v.problem.is_none(),
            detail: v
                .problem
                .unwrap_or_else(|| format!("{} records chained, head {}", v.chained, v.head)),
        },
        Err(e) => DrillCheck {
            name: "audit chain".into(),
            ok: false,
            detail: format!("{e:#}"),
        },
    }
}

/// As a temporary login of each group: an allowed read succeeds, a forbidden write is denied.
async fn smoke_calls(
    conn: &mut PgConnection,
    target: &PgConnectOptions,
    decl: &Declaration,
) -> anyhow::Result<Vec<DrillCheck>> {
    let reseller: Option<String> =
        sqlx::query_scalar("SELECT code FROM inventory.resellers ORDER BY code LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let supplier: Option<String> =
        sqlx::query_scalar("SELECT code FROM inventory.suppliers ORDER BY code LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let cases: [(&str, &str, &str); 7] = [
        (
            "dept_stock",
            "SELECT count(*) FROM api.stock_status()",
            "SELECT api.record_sale('x', 'x', 'x', 1)",
        ),
        (
            "dept_sales",
            "SELECT count(*) FROM api.stock_status()",
            "SELECT api.adjust_stock('x', 'x', 1, 'x')",
        ),
        (
            "dept_purchasing",
            "SELECT count(*) FROM api.reorder_needs()",
            "SELECT api.record_sale('x', 'x', 'x', 1)",
        ),
        (
            "dept_reporting",
            "SELECT count(*) FROM api.margins(current_date - 365, current_date + 1)",
            "SELECT api.receive_stock('x', 'x', 1)",
        ),
        (
            "dept_audit",
            "SELECT count(*) FROM api.audit_tail(5)",
            "SELECT count(*) FROM inventory.products",
        ),
        (
            "reseller",
            "SELECT count(*) FROM api.my_orders()",
            "SELECT api.record_sale('x', 'x', 'x', 1)",
        ),
        (
            "supplier",
            "SELECT count(*) FROM api.my_purchase_orders()",
            "SELECT count(*) FROM inventory.sales_orders",
        ),
    ];
    let mut checks = Vec::new();
    for (group, allowed, forbidden) in cases {
        let login = format!("stockops_drill_{}", &group.replace("dept_", ""));
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {login}"))
            .execute(&mut *conn)
            .await
            .ok();
        let user = crate::db::users::NewUser {
            name: &login,
            group,
            reseller: (group == "reseller")
                .then_some(reseller.as_deref())
                .flatten(),
            supplier: (group == "supplier")
                .then_some(supplier.as_deref())
                .flatten(),
        };
        let password = crate::db::scram::Secret::generate();
        let outcome = async {
            crate::db::users::add(conn, decl, &user, &password).await?;
            let mut c = PgConnection::connect_with(&target.clone().username(&login).password(password.expose()).disable_statement_logging()).await?;
            let read = sqlx::query(allowed).execute(&mut c).await;
            let write = sqlx::query(forbidden).execute(&mut c).await;
            let denied = matches!(&write, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501"));
            anyhow::Ok((read.map_err(|e| e.to_string()), denied))
        }
        .await;
        sqlx::query("DELETE FROM inventory.partner_logins WHERE login = $1")
            .bind(&login)
            .execute(&mut *conn)
            .await
            .ok();
        sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {login}"))
            .execute(&mut *conn)
            .await
            .ok();
        checks.push(match outcome {
            Ok((Ok(_), true)) => DrillCheck {
                name: format!("smoke calls as {group}"),
                ok: true,
                detail: "allowed read ran, forbidden write denied".into(),
            },
            Ok((Err(e), _)) => DrillCheck {
                name: format!("smoke calls as {group}"),
                ok: false,
                detail: format!("allowed read failed: {e}"),
            },
            Ok((Ok(_), false)) => DrillCheck {
                name: format!("smoke calls as {group}"),
                ok: false,
                detail: format!("forbidden write was not denied: {forbidden}"),
            },
            Err(e) => DrillCheck {
                name: format!("smoke calls as {group}"),
                ok: false,
                detail: format!("{e:#}"),
            },
        });
    }
    Ok(checks)
}

/// Store a report at `drills/<backup id>/<start time>.json`, where
/// `drills list` and `doctor` find it. The repository is no place for a
/// secret: the report has been through [`Redact::report`].
pub async fn store_report(store: &dyn WriteStore, report: &DrillReport) -> anyhow::Result<()> {
    let key = format!(
        "drills/{}/{}.json",
        report.backup,
        report.started_at.format("%Y%m%dT%H%M%S%.3fZ")
    );
    store
        .put(&key, serde_json::to_vec_pretty(report)?)
        .await
        .context("storing the drill report")?;
    Ok(())
}

/// Stored drill reports, oldest first.
pub async fn list(store: &dyn WriteStore) -> anyhow::Result<Vec<DrillReport>> {
    let mut out = Vec::new();
    for o in store.list("drills/").await? {
        let bytes = store.get(&o.key).await?;
        out.push(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a drill report", o.key))?,
        );
    }
    out.sort_by_key(|r: &DrillReport| r.started_at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_their_paths_are_redacted() {
        let r = Redact {
            words: vec!["/root/keys/identity.txt".into(), "s3cr3tKEY".into()],
        };
        let text = "cannot read /root/keys/identity.txt: syntax error near token \
                    \"AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQ\" (secret s3cr3tKEY) in \
                    /tmp/stockops-restore-keys-00ff12ab34cd56ef/identity.txt, \
                    connecting to postgres://app:hunter2@db:5432/x and http://h/p";
        let out = r.text(text);
        for gone in [
            "/root/keys",
            "QYQSZQGP",
            "s3cr3tKEY",
            "00ff12ab34cd56ef",
            "hunter2",
        ] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert!(out.contains("postgres://app:<redacted>@db:5432/x"), "{out}");
        assert!(out.contains("http://h/p"), "{out}");
        assert_eq!(r.text("nothing secret"), "nothing secret");
    }
}
