//! Hostile inputs at the small boundaries (issue 14, finding 8): an order
//! file from a partner who lies about whose it is and what it costs, reject
//! files that will be opened in a spreadsheet, names planted where stockops
//! writes its temporary files, and secrets that must never reach a log or
//! `ps`. Each test is the attack, tried the way an attacker would.

use std::os::unix::fs::symlink;
use std::path::Path;

use sqlx::{Connection, PgConnection};

use crate::common::*;
use crate::etl::{fixture, import};
use crate::procedures::Shop;

const HEADER: &str = "order_ref,order_date,reseller,sku,quantity,unit_price\n";

/// A reseller's login, bound to `reseller` as `users add` binds it, that an
/// operator also made an etl member so the partner can upload its files.
async fn partner_with_etl(shop: &Shop, login: &str, reseller: &str) -> String {
    let password = shop
        .db
        .add_user(login, "reseller", Some(("--reseller", reseller)))
        .await;
    let mut admin = connect(&admin_url()).await;
    sqlx::raw_sql(&format!("GRANT etl TO {login}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let o = shop.db.tcp_options(login, &password);
    format!(
        "postgres://{login}:{password}@{}:{}/{}",
        o.get_host(),
        o.get_port(),
        shop.db.name
    )
}

async fn imported(admin: &mut PgConnection, order_ref: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT r.code, p.sku, l.unit_price::text
           FROM inventory.sales_orders o
           JOIN inventory.resellers r USING (reseller_id)
           JOIN inventory.sales_order_lines l USING (sales_order_id)
           JOIN inventory.products p USING (product_id)
          WHERE o.source = 'import' AND o.external_ref = $1
          ORDER BY p.sku",
    )
    .bind(order_ref)
    .fetch_all(&mut *admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_partner_login_cannot_import_orders_for_another_reseller() {
    let shop = Shop::new("advimpfor").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 2, 2).await;
    let url = partner_with_etl(&shop, "it_advimpfor_partner", &r[0]).await;
    // The partner books an order to its competitor, hidden among its own lines.
    let dir = temp_dir("advimpfor");
    let file = dir.join("orders.csv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}MINE-1,2025-06-02,{0},{2},1,5\nTHEIRS-1,2025-06-02,{1},{3},50,0.01\n",
            r[0], r[1], s[0], s[1]
        ),
    )
    .unwrap();
    let out = import(&url, &file, &[]);
    assert!(!out.status.success(), "imported: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("bound to reseller {}", r[0]))
            && err.contains("line 3")
            && err.contains(&r[1]),
        "the refusal names the login's reseller, the line and the other reseller: {err}"
    );
    assert!(imported(&mut admin, "THEIRS-1").await.is_empty());
    assert!(
        imported(&mut admin, "MINE-1").await.is_empty(),
        "one transaction"
    );
    // A reseller login that is no etl member imports nothing at all.
    let out = import(&shop.url_for("reseller"), &file, &[]);
    assert_code(&out, 5, "import by a plain reseller login");
    let err = stderr(&out);
    assert!(err.contains("etl"), "says who imports order files: {err}");
    assert!(imported(&mut admin, "THEIRS-1").await.is_empty());
    // The function under the api is not a way around the check.
    let mut partner = PgConnection::connect(&url).await.unwrap();
    let direct = sqlx::query(
        "SELECT * FROM inventory.load_order_lines('x', '{1}', '{T}', '{2025-06-02}', $1, $2, '{1}', '{0.01}')",
    )
    .bind(vec![r[1].clone()])
    .bind(vec![s[1].clone()])
    .execute(&mut partner)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&direct).as_deref(), Some("42501"), "{direct}");
}

#[tokio::test]
async fn a_partner_login_pays_the_catalogue_price_not_the_files() {
    let shop = Shop::new("advimpprice").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 1, 2).await;
    let url = partner_with_etl(&shop, "it_advimpprice_partner", &r[0]).await;
    let list: Vec<String> = sqlx::query_scalar(
        "SELECT list_price::text FROM inventory.products WHERE sku = ANY ($1) ORDER BY sku",
    )
    .bind(&s)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let dir = temp_dir("advimpprice");
    let file = dir.join("orders.csv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}CHEAP-1,2025-06-02,{0},{1},3,0.01\nCHEAP-1,2025-06-02,{0},{2},2,{3}\n",
            r[0], s[0], s[1], list[1]
        ),
    )
    .unwrap();
    let out = import(&url, &file, &[]);
    assert_success(&out, "a partner's import of its own orders");
    let want: Vec<(String, String, String)> = s
        .iter()
        .zip(&list)
        .map(|(sku, price)| (r[0].clone(), sku.clone(), price.clone()))
        .collect();
    assert_eq!(imported(&mut admin, "CHEAP-1").await, want);
    // Imported again: the same lines, duplicates, nothing new.
    let out = import(&url, &file, &["--json"]);
    assert_success(&out, "the same file again");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["loaded"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );

    // An etl login bound to no partner still loads the file's prices.
    let other = dir.join("distributech.csv");
    std::fs::write(
        &other,
        format!("{HEADER}NEGOTIATED-1,2025-06-02,{},{},1,0.50\n", r[0], s[0]),
    )
    .unwrap();
    assert_success(&import(&shop.url_for("etl"), &other, &[]), "etl import");
    assert_eq!(
        imported(&mut admin, "NEGOTIATED-1").await,
        vec![(r[0].clone(), s[0].clone(), "0.50".to_string())]
    );
}

#[tokio::test]
async fn a_partners_rejected_line_names_no_stock_figure() {
    let shop = Shop::new("advimpshort").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 1, 1).await;
    let url = partner_with_etl(&shop, "it_advimpshort_partner", &r[0]).await;
    let dir = temp_dir("advimpshort");
    let file = dir.join("orders.csv");
    std::fs::write(
        &file,
        format!("{HEADER}SHORT-1,2025-06-02,{},{},900000,1\n", r[0], s[0]),
    )
    .unwrap();
    let detail = |url: &str| {
        assert_success(
            &import(url, &file, &[]),
            "import of a line stock cannot serve",
        );
        let mut rdr = csv::Reader::from_path(dir.join("orders.csv.rejects.csv")).unwrap();
        let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][1], "insufficient_stock");
        rows[0][2].to_string()
    };
    let partner = detail(&url);
    assert!(
        !partner.contains("available") && !partner.chars().any(|c| c.is_ascii_digit()),
        "a partner sees the warehouse's figures: {partner}"
    );
    // The etl login of the business still sees them.
    let etl = detail(&shop.url_for("etl"));
    assert!(etl.contains("available in the warehouse"), "{etl}");
}

/// An order file whose bad lines carry spreadsheet formulas, as OWASP's
/// CSV injection examples do.
/// (A carriage return would end the line for the reader, and a field
/// holding a double quote is written back quoted, so it starts with `"`:
/// the unit tests of `spreadsheet_safe` cover both.)
const FORMULAS: [&str; 5] = [
    "=HYPERLINK(CONCAT(C1;A2);B2)",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
];

#[tokio::test]
async fn reject_files_never_hold_a_live_spreadsheet_formula() {
    let shop = Shop::new("advimpcsv").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 1, 1).await;
    let dir = temp_dir("advimpcsv");
    let file = dir.join("orders.csv");
    let mut text = format!("{HEADER}OK-1,2025-06-02,{},{},1,5\n", r[0], s[0]);
    for (i, f) in FORMULAS.iter().enumerate() {
        // Unknown reseller: rejected by the database, the line kept as read.
        text.push_str(&format!("{f},2025-06-02,RES-9999,{},{},5\n", s[0], i + 1));
    }
    std::fs::write(&file, &text).unwrap();
    let out = import(&shop.url_for("etl"), &file, &[]);
    assert_success(&out, "import with formula lines");

    let mut rdr = csv::Reader::from_path(dir.join("orders.csv.rejects.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), FORMULAS.len());
    let mut quarantined: Vec<String> =
        sqlx::query_scalar("SELECT raw_line FROM inventory.import_rejects ORDER BY line_number")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    for row in &rows {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula in the reject file: {cell:?}"
            );
        }
        // Made inert by one leading quote; the line is otherwise as read.
        let raw = &row[3];
        assert!(raw.starts_with('\''), "{raw:?}");
        assert!(FORMULAS.iter().any(|f| raw[1..].starts_with(f)), "{raw:?}");
    }
    // The quarantine table keeps each line exactly as read.
    quarantined.retain(|q| FORMULAS.iter().any(|f| q.starts_with(f)));
    assert_eq!(quarantined.len(), FORMULAS.len(), "{quarantined:?}");
}

#[tokio::test]
async fn a_symlink_planted_at_the_reject_files_partial_name_is_not_followed() {
    let shop = Shop::new("advimplink").await;
    let mut admin = shop.db.admin().await;
    let (r, s) = fixture(&mut admin, 1, 1).await;
    // A shared drop directory: another local user plants the names an import
    // of orders.csv would write to, pointing at a file of the victim's.
    let dir = temp_dir("advimplink");
    let victim = dir.join("victim.conf");
    std::fs::write(&victim, "precious\n").unwrap();
    for name in [
        "orders.csv.rejects.csv.partial",
        "orders.csv.rejects.csv.tmp",
    ] {
        symlink(&victim, dir.join(name)).unwrap();
    }
    let file = dir.join("orders.csv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}OK-1,2025-06-02,{0},{1},1,5\nBAD-1,2025-06-02,RES-9999,{1},1,5\n",
            r[0], s[0]
        ),
    )
    .unwrap();
    let out = import(&shop.url_for("etl"), &file, &[]);
    assert_success(&out, "import beside planted symlinks");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let rejects = dir.join("orders.csv.rejects.csv");
    let meta = std::fs::symlink_metadata(&rejects).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the reject file is a file of its own"
    );
    assert!(std::fs::read_to_string(&rejects).unwrap().contains("BAD-1"));
    assert_no_private_dirs_left(&dir);
}

/// The private directories stockops writes in are gone once it is done.
fn assert_no_private_dirs_left(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".stockops") || n.contains(".stockops-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn a_password_in_the_database_url_flag_is_warned_about_never_printed() {
    let db = TestDb::provisioned("advurlpw").await;
    let password = "Flag-Pw-7f3a9c";
    let mut admin = db.admin().await;
    drop_role("it_advurlpw_clerk").await;
    sqlx::raw_sql(&format!(
        "CREATE ROLE it_advurlpw_clerk LOGIN PASSWORD '{password}' IN ROLE dept_stock"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let o = db.tcp_options("it_advurlpw_clerk", password);
    let url = format!(
        "postgres://it_advurlpw_clerk:{password}@{}:{}/{}",
        o.get_host(),
        o.get_port(),
        db.name
    );
    // On the command line, where `ps` shows it to every local user.
    let out = stockops(&["--database-url", &url, "report", "stock"], None, None);
    assert_success(&out, "report with a password in --database-url");
    let err = stderr(&out);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("--database-url"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning line: {err}");
    for safer in ["`ps`", "PGPASSWORD", ".pgpass", "DATABASE_URL"] {
        assert!(warnings[0].contains(safer), "names {safer}: {err}");
    }
    assert!(!err.contains(password) && !stdout(&out).contains(password));
    // In the environment: nothing to warn about.
    let out = stockops(&["report", "stock"], Some(&url), None);
    assert_success(&out, "report with DATABASE_URL");
    assert!(!stderr(&out).contains("--database-url"), "{}", stderr(&out));
}

async fn verifier(admin: &mut PgConnection, login: &str) -> String {
    sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(login)
        .fetch_one(admin)
        .await
        .unwrap()
}

/// Run with every library's trace logging on, as an operator chasing a bug would.
fn traced(
    args: &[&str],
    url: Option<&str>,
    stdin: Option<&str>,
    env: &[(String, String)],
) -> std::process::Output {
    let mut env = env.to_vec();
    env.push(("STOCKOPS_LOG".into(), "trace".into()));
    stockops_env(args, url, stdin, &env)
}

#[tokio::test]
async fn trace_logs_never_print_verifiers_keys_or_url_passwords() {
    let db = TestDb::provisioned("advtrace").await;
    let mut admin = db.admin().await;
    let login = "it_advtrace_clerk";
    drop_role(login).await;
    let mut outputs = Vec::new();
    let mut secrets: Vec<String> = Vec::new();

    // users add and rotate-password: the statements carry the verifier.
    let first = "First-Trace-Pw-1a2b";
    let out = traced(
        &[
            "users",
            "add",
            login,
            "--role",
            "dept_stock",
            "--password-stdin",
        ],
        Some(&db.url),
        Some(&format!("{first}\n")),
        &[],
    );
    assert_success(&out, "users add");
    secrets.push(first.into());
    secrets.push(verifier(&mut admin, login).await);
    outputs.push(out);
    let second = "Second-Trace-Pw-3c4d";
    let out = traced(
        &["users", "rotate-password", login, "--password-stdin"],
        Some(&db.url),
        Some(&format!("{second}\n")),
        &[],
    );
    assert_success(&out, "users rotate-password");
    secrets.push(second.into());
    secrets.push(verifier(&mut admin, login).await);
    outputs.push(out);

    // A connection whose URL holds the password.
    let o = db.tcp_options(login, second);
    let url = format!(
        "postgres://{login}:{second}@{}:{}/{}",
        o.get_host(),
        o.get_port(),
        db.name
    );
    let out = traced(&["report", "stock"], Some(&url), None, &[]);
    assert_success(&out, "a report over a URL with a password");
    outputs.push(out);

    // A backup to S3 with the credentials in the environment, and a
    // verify that reads the age identity.
    let dir = temp_dir("advtrace");
    let keys = crate::backup::Keys::new(&dir.join("keys"));
    let env = crate::backup::with_identity(
        crate::backup::job_env(&crate::backup::s3_repo("advtrace"), &keys),
        &keys,
    );
    let out = traced(&["backup"], Some(&db.url), None, &env);
    assert_success(&out, "backup");
    outputs.push(out);
    let out = traced(&["backups", "verify", "latest"], Some(&db.url), None, &env);
    assert_success(&out, "backups verify");
    outputs.push(out);
    let identity = std::fs::read_to_string(&keys.identity).unwrap();
    secrets.push(identity.trim().to_string());
    secrets.push(std::env::var("STOCKOPS_TEST_S3_SECRET_ACCESS_KEY").unwrap());

    for out in &outputs {
        let text = format!("{}{}", stdout(out), stderr(out));
        assert!(text.contains("TRACE"), "trace logging is on: {text}");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in the logs: {secret}"
            );
        }
        // Nor any piece of a verifier.
        for line in text.lines().filter(|l| l.contains("SCRAM-SHA-256$")) {
            assert!(line.contains("SCRAM-SHA-256$<redacted>"), "{line}");
        }
    }
}

#[tokio::test]
async fn wal_fetch_is_neither_redirected_nor_blocked_by_a_planted_temporary_name() {
    use crate::backup::{job_env, with_identity, Keys};
    let dir = temp_dir("advwalfetch");
    let keys = Keys::new(&dir.join("keys"));
    let repo = format!("file://{}", dir.join("repo").display());
    let env = with_identity(job_env(&repo, &keys), &keys);
    let name = "000000010000000000000001";
    let segment = dir.join(name);
    let bytes: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&segment, &bytes).unwrap();
    let out = stockops_env(
        &["wal", "push", segment.to_str().unwrap()],
        None,
        None,
        &env,
    );
    assert_success(&out, "wal push");

    // restore_command runs `wal fetch NAME pg_wal/RECOVERYXLOG`. A local
    // attacker watching for new processes plants, at the temporary name the
    // new pid gives, a symlink to a file of their choice.
    let pg_wal = dir.join("pg_wal");
    std::fs::create_dir_all(&pg_wal).unwrap();
    let victim = dir.join("victim.conf");
    std::fs::write(&victim, "precious\n").unwrap();
    let dest = pg_wal.join("RECOVERYXLOG");
    let child = command(&["wal", "fetch", name, dest.to_str().unwrap()], None, &env)
        .spawn()
        .unwrap();
    symlink(
        &victim,
        pg_wal.join(format!(".RECOVERYXLOG.stockops-{}.tmp", child.id())),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "wal fetch beside a planted symlink");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::read(&dest).unwrap() == bytes,
        "the segment, byte for byte"
    );
}

#[tokio::test]
async fn a_symlinked_directory_in_a_file_repository_is_not_written_through() {
    // Someone with write access to the repository (not to the rest of the
    // host) swaps a directory for a symlink to one stockops, as root, should
    // never write in.
    let dir = temp_dir("advfilerepo");
    let root = dir.join("repo");
    let victim = dir.join("etc-cron.d");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&victim).unwrap();
    symlink(&victim, root.join("backups")).unwrap();
    let store = open_store(&format!("file://{}", root.display())).await;
    let err = store
        .put(
            "backups/20260101T000000Z/manifest.json",
            b"* * * * * root sh".to_vec(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "nothing written outside the repository"
    );
    // An ordinary key still works.
    store.put("wal/ok", b"x".to_vec()).await.unwrap();
}

#[tokio::test]
async fn a_symlink_planted_at_the_metrics_files_temporary_name_is_not_followed() {
    // node_exporter's textfile directory, writable by its group.
    let dir = temp_dir("advmetrics");
    let victim = dir.join("victim.conf");
    std::fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, dir.join("stockops_verify.prom.tmp")).unwrap();
    let metrics = dir.join("stockops_verify.prom");
    let repo = format!("file://{}", dir.join("repo").display());
    let out = stockops_env(
        &[
            "backups",
            "verify",
            "latest",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        None,
        None,
        &[("STOCKOPS_REPO".into(), repo)],
    );
    assert!(!out.status.success(), "no backup to verify");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("stockops_verify_last_run_success 0"),
        "{text}"
    );
    assert!(std::fs::symlink_metadata(&metrics)
        .unwrap()
        .file_type()
        .is_file());
}

#[tokio::test]
async fn the_stock_export_follows_no_planted_name_and_holds_no_live_formula() {
    let shop = Shop::new("advexport").await;
    let mut admin = shop.db.admin().await;
    // A product named by someone who hopes the export lands in a spreadsheet.
    let sku: String = sqlx::query_scalar("SELECT sku FROM inventory.products ORDER BY sku LIMIT 1")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE inventory.products SET name = '=HYPERLINK(CONCAT(C1;A2);B2)' WHERE sku = $1",
    )
    .bind(&sku)
    .execute(&mut admin)
    .await
    .unwrap();
    let dir = temp_dir("advexport");
    let victim = dir.join("victim.conf");
    std::fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, dir.join("stock.csv.partial")).unwrap();
    let csv_path = dir.join("stock.csv");
    let out = stockops(
        &["export", "stock", "--csv", csv_path.to_str().unwrap()],
        Some(&shop.url_for("etl")),
        None,
    );
    assert_success(&out, "export stock beside a planted symlink");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let row = rdr
        .records()
        .map(Result::unwrap)
        .find(|r| r[0] == sku)
        .unwrap();
    assert_eq!(&row[1], "'=HYPERLINK(CONCAT(C1;A2);B2)");
    assert_no_private_dirs_left(&dir);
}
