//! The drill and disaster-recovery runbooks, run command by command: every
//! `sh` block of the file, in order, in one shell, so the runbooks cannot rot.

use std::path::Path;
use std::process::Command;

use crate::backup::{backup, Keys};
use crate::common::*;

/// The `sh` code blocks of a markdown file, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

pub(crate) fn run_runbook(file: &str, env: &[(String, String)]) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let blocks = sh_blocks(&text);
    assert!(!blocks.is_empty(), "{file} has no sh block");
    let script = format!("set -euo pipefail\n{}", blocks.join("\n"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_stockops"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).env(
        "PATH",
        format!("{bin_dir}:{}", std::env::var("PATH").unwrap()),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{file} failed\nscript:\n{script}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_restore_and_drill_runbooks_run_as_written() {
    let db = TestDb::provisioned("rb_source").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let dir = temp_dir("rb");
    let keys = Keys::new(&dir);
    let repo = format!("file://{}", dir.join("repo").display());
    let mut env = vec![
        ("STOCKOPS_REPO".to_string(), repo),
        (
            "STOCKOPS_AGE_RECIPIENTS".to_string(),
            keys.recipients.display().to_string(),
        ),
        (
            "STOCKOPS_AGE_IDENTITY".to_string(),
            keys.identity.display().to_string(),
        ),
        ("STOCKOPS_LOG".to_string(), "warn".to_string()),
    ];
    backup(&db, &env);
    // The "new server" is the test cluster; its administrator through libpq's variables.
    let admin = admin_url();
    let socket = admin.split("host=").nth(1).unwrap().to_string();
    let port = std::env::var("STOCKOPS_TEST_PG_PORT").unwrap();
    let mut c = connect(&admin).await;
    sqlx::raw_sql("DROP DATABASE IF EXISTS inventory_restored WITH (FORCE)")
        .execute(&mut c)
        .await
        .unwrap();
    env.extend([
        ("PGHOST".to_string(), socket.clone()),
        ("PGPORT".to_string(), port.clone()),
        ("PGUSER".to_string(), "postgres".to_string()),
        (
            "TARGET_URL".to_string(),
            format!("postgres://postgres@localhost:{port}/inventory_restored?host={socket}"),
        ),
    ]);
    run_runbook("runbooks/restore.md", &env);
    run_runbook("runbooks/drill.md", &env);
    sqlx::raw_sql("DROP DATABASE IF EXISTS inventory_restored WITH (FORCE)")
        .execute(&mut c)
        .await
        .unwrap();
}
