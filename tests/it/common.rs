//! Test harness: a fresh database per test, the binary, and logins.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn admin_url() -> String {
    std::env::var("STOCKOPS_TEST_ADMIN_URL").unwrap_or_else(|_| {
        panic!(
            "STOCKOPS_TEST_ADMIN_URL is not set: these tests need the real PostgreSQL of \
             `scripts/testenv.sh up`; run `make test`, or `. $(scripts/testenv.sh env)` first"
        )
    })
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A new, empty database on the test cluster.
    pub async fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("it_{tag}_{}_{n}", std::process::id());
        let mut admin = connect(&admin_url()).await;
        // Databases this test left behind in earlier runs.
        let stale: Vec<String> =
            sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
                .bind(format!("it\\_{tag}\\_%"))
                .fetch_all(&mut admin)
                .await
                .unwrap();
        for old in stale {
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = with_database(&admin_url(), &name);
        Self { name, url }
    }

    /// A provisioned database.
    pub async fn provisioned(tag: &str) -> Self {
        let db = Self::new(tag).await;
        let out = db.run(&["provision"]);
        assert_success(&out, "provision");
        db
    }

    /// Run the binary against this database, with a clean environment.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        stockops(args, Some(&self.url), stdin)
    }

    pub async fn admin(&self) -> PgConnection {
        connect(&self.url).await
    }

    /// Connect over TCP as a login role with its password.
    pub async fn login(&self, user: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
        let opts = self.tcp_options(user, password);
        PgConnection::connect_with(&opts).await
    }

    pub fn tcp_options(&self, user: &str, password: &str) -> PgConnectOptions {
        let host = std::env::var("STOCKOPS_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let port: u16 = std::env::var("STOCKOPS_TEST_PG_PORT")
            .expect("STOCKOPS_TEST_PG_PORT is set by scripts/testenv.sh")
            .parse()
            .unwrap();
        PgConnectOptions::new()
            .host(&host)
            .port(port)
            .username(user)
            .password(password)
            .database(&self.name)
            .disable_statement_logging()
    }

    /// `users add` with a password from stdin; returns the password.
    /// A login of that name left by an earlier run is dropped first.
    pub async fn add_user(&self, name: &str, group: &str, partner: Option<(&str, &str)>) -> String {
        drop_role(name).await;
        let password = format!("pw-{name}-0123456789");
        let mut args = vec!["users", "add", name, "--role", group, "--password-stdin"];
        if let Some((flag, code)) = partner {
            args.push(flag);
            args.push(code);
        }
        let out = self.run_with_stdin(&args, Some(&format!("{password}\n")));
        assert_success(&out, "users add");
        password
    }
}

pub fn stockops(args: &[&str], url: Option<&str>, stdin: Option<&str>) -> Output {
    stockops_env(args, url, stdin, &[])
}

/// The binary with extra environment variables.
pub fn stockops_env(
    args: &[&str],
    url: Option<&str>,
    stdin: Option<&str>,
    env: &[(String, String)],
) -> Output {
    let mut child = command(args, url, env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("spawn stockops");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("wait for stockops")
}

/// A prepared command: clean environment, captured output.
pub fn command(args: &[&str], url: Option<&str>, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stockops"));
    cmd.args(args)
        .env("STOCKOPS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        let ours = key.starts_with("STOCKOPS_") && key != "STOCKOPS_LOG";
        if key.starts_with("PG") || key.starts_with("AWS_") || ours || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    if let Some(url) = url {
        cmd.env("DATABASE_URL", url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

pub fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

pub async fn connect(url: &str) -> PgConnection {
    let opts: PgConnectOptions = url.parse().expect("valid URL");
    PgConnection::connect_with(&opts.disable_statement_logging())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"))
}

/// Replace the database name in a postgres:// URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(h, q)| (h, Some(q)));
    let base = head.rsplit_once('/').map_or(head, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// SQLSTATE of an error, if it came from the server.
pub fn sqlstate(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Drop a login role left by an earlier run (roles are cluster-wide).
pub async fn drop_role(name: &str) {
    let mut admin = connect(&admin_url()).await;
    sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// The S3 server of `scripts/testenv.sh`, as the AWS SDK's environment.
pub fn s3_env() -> Vec<(String, String)> {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: these tests need the S3 server of `scripts/testenv.sh up` (run `make test`)")
        })
    };
    vec![
        ("AWS_ENDPOINT_URL".into(), get("STOCKOPS_TEST_S3_ENDPOINT")),
        ("AWS_REGION".into(), get("STOCKOPS_TEST_S3_REGION")),
        (
            "AWS_ACCESS_KEY_ID".into(),
            get("STOCKOPS_TEST_S3_ACCESS_KEY_ID"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            get("STOCKOPS_TEST_S3_SECRET_ACCESS_KEY"),
        ),
        ("STOCKOPS_S3_PATH_STYLE".into(), "true".into()),
    ]
}

pub fn s3_bucket() -> String {
    std::env::var("STOCKOPS_TEST_S3_BUCKET")
        .expect("STOCKOPS_TEST_S3_BUCKET is set by scripts/testenv.sh")
}

/// Put the S3 environment into this test process (each test is its own process).
pub fn use_s3_env() {
    for (k, v) in s3_env() {
        std::env::set_var(k, v);
    }
}

/// A fresh directory for this test.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("stockops-it-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A repository as the tests open it (path-style addressing for S3; ignored for files).
pub async fn open_store(repo: &str) -> Box<dyn stockops::repository::storage::WriteStore> {
    let opts = stockops::repository::storage::S3Options {
        path_style: true,
        ..Default::default()
    };
    stockops::repository::storage::open(repo, &opts)
        .await
        .unwrap()
}
