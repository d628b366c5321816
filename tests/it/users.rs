//! users: add, list, rotate-password, disable, through real logins.

use crate::common::*;

#[tokio::test]
async fn user_lifecycle() {
    let db = TestDb::provisioned("users").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );

    drop_role("it_u_clerk").await;
    // Generated password: printed once, and it works.
    let out = db.run(&[
        "users",
        "add",
        "it_u_clerk",
        "--role",
        "dept_stock",
        "--json",
    ]);
    assert_success(&out, "users add");
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let generated = created["password"].as_str().unwrap().to_string();
    assert_eq!(generated.len(), 32);
    db.login("it_u_clerk", &generated)
        .await
        .expect("generated password logs in");

    // The server stored a SCRAM verifier, never the plaintext.
    let mut admin = db.admin().await;
    let stored: String =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'it_u_clerk'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:") && !stored.contains(&generated));

    // Rotate from stdin: the old password stops working, the new one works.
    let new = "rotated-password-0123";
    let out = db.run_with_stdin(
        &["users", "rotate-password", "it_u_clerk", "--password-stdin"],
        Some(&format!("{new}\n")),
    );
    assert_success(&out, "rotate-password");
    assert!(!stdout(&out).contains(new));
    assert!(db.login("it_u_clerk", &generated).await.is_err());
    let session = db
        .login("it_u_clerk", new)
        .await
        .expect("new password logs in");

    // Listed with its group.
    let out = db.run(&["users", "list", "--json"]);
    assert_success(&out, "users list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let me = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "it_u_clerk")
        .expect("listed");
    assert_eq!(me["group"], "dept_stock");

    // Disable: the open session is ended and no new one starts.
    let out = db.run(&["users", "disable", "it_u_clerk"]);
    assert_success(&out, "disable");
    assert!(
        stdout(&out).contains("1 open session(s) ended"),
        "{}",
        stdout(&out)
    );
    drop(session);
    assert!(db.login("it_u_clerk", new).await.is_err());

    // Enable: the same password works again.
    assert_success(&db.run(&["users", "enable", "it_u_clerk"]), "enable");
    db.login("it_u_clerk", new)
        .await
        .expect("enabled login connects");
}

#[tokio::test]
async fn bad_user_requests_are_refused_and_change_nothing() {
    let db = TestDb::provisioned("badusers").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.02", "--as-of", "2026-01-01"]),
        "seed",
    );
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "users",
                "add",
                "it_refused1",
                "--role",
                "dept_stock",
                "--password",
                "hunter2hunter2",
            ],
            "command line",
        ),
        (
            &["users", "add", "it_refused2", "--role", "reseller"],
            "--reseller CODE",
        ),
        (
            &[
                "users",
                "add",
                "it_refused3",
                "--role",
                "dept_sales",
                "--supplier",
                "SUP-001",
            ],
            "apply only to",
        ),
        (
            &[
                "users",
                "add",
                "it_refused4",
                "--role",
                "reseller",
                "--reseller",
                "RES-9999",
            ],
            "unknown reseller",
        ),
        (
            &["users", "add", "it_refused5", "--role", "inventory_owner"],
            "unknown group",
        ),
        (
            &["users", "add", "Robert'); DROP", "--role", "dept_stock"],
            "invalid login name",
        ),
        (&["users", "disable", "postgres"], "not a stockops user"),
    ];
    for (args, expected) in cases {
        let out = db.run(args);
        assert_code(&out, 2, &args.join(" "));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("hunter2"), "the password was echoed");
    }
    let mut admin = db.admin().await;
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'it\\_refused%'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(created, 0);
    let postgres_login: bool =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'postgres'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(postgres_login);
}
