//! Command-line contract: configuration file, exit codes, help.

use crate::common::*;

#[test]
fn unknown_config_key_is_named() {
    let dir = std::env::temp_dir().join(format!("stockops-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "repo = \"file:///tmp/x\"\nrecipient_file = \"/etc/r.txt\"\n",
    )
    .unwrap();
    let out = stockops(
        &["--config", file.to_str().unwrap(), "provision", "--check"],
        None,
        None,
    );
    assert_code(&out, 2, "unknown key");
    let err = stderr(&out);
    assert!(
        err.contains("recipient_file") && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn config_file_supplies_the_database_after_flags_and_env() {
    let dir = std::env::temp_dir().join(format!("stockops-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cfg.toml");
    // Port 1 is closed: the error names the target the file gave, and it is exit 4.
    std::fs::write(
        &file,
        "database_url = \"postgres://cfguser@127.0.0.1:1/cfgdb\"\n",
    )
    .unwrap();
    let out = stockops(
        &["--config", file.to_str().unwrap(), "provision", "--check"],
        None,
        None,
    );
    assert_code(&out, 4, "unreachable database");
    assert!(
        stderr(&out).contains("cfguser@127.0.0.1:1/cfgdb"),
        "{}",
        stderr(&out)
    );
    // A flag wins over the file.
    let out = stockops(
        &[
            "--config",
            file.to_str().unwrap(),
            "--database-url",
            "postgres://flaguser@127.0.0.1:1/flagdb",
            "provision",
            "--check",
        ],
        None,
        None,
    );
    assert!(
        stderr(&out).contains("flaguser@127.0.0.1:1/flagdb"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_documents_exit_codes() {
    let out = stockops(&["--help"], None, None);
    assert_success(&out, "--help");
    let text = stdout(&out);
    for line in [
        "Exit codes:",
        "3  provision --check",
        "4  the database is unreachable",
    ] {
        assert!(text.contains(line), "{text}");
    }
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let out = stockops(&["completions", "bash"], None, None);
    assert_success(&out, "completions bash");
    let script = stdout(&out);
    assert!(script.contains("_stockops()"), "{script}");
    for sub in ["doctor", "schedule", "restore", "rotate-password"] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    let out = stockops(&["completions", "zsh"], None, None);
    assert_success(&out, "completions zsh");
    assert!(stdout(&out).starts_with("#compdef stockops"));

    let out = stockops(&["man"], None, None);
    assert_success(&out, "man");
    let page = stdout(&out);
    assert!(page.contains(".TH stockops 1"), "{page}");
    assert!(
        page.contains("Exit codes"),
        "the man page carries the exit codes"
    );

    let dir = temp_dir("man");
    let out = stockops(&["man", "--dir", dir.to_str().unwrap()], None, None);
    assert_success(&out, "man --dir");
    for page in [
        "stockops.1",
        "stockops-doctor.1",
        "stockops-backups-prune.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie \\n(.g .ds Aq"),
            "{page} is a roff page: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
