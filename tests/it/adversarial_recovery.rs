//! The physical restore and the scratch clusters, tried as an attacker
//! would: a backup whose tar was written by whoever can write to the
//! repository, another local OS user knocking on a drill's cluster, a
//! restored server looking for the credentials of the run that started it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use stockops::pipeline::crypto::Recipients;
use stockops::pipeline::{self, Compression};
use stockops::repository::catalog::{self, Manifest, StoredObject, WalRange};

use crate::backup::{job_env, s3_repo, with_identity, Keys};
use crate::common::*;
use crate::wal::{Archiving, Restored};

/// One tar member, header bytes as the attacker writes them (no checks of
/// the `tar` crate's builder in the way).
struct Member<'a> {
    path: &'a str,
    kind: tar::EntryType,
    mode: u32,
    link: Option<&'a str>,
    data: &'a [u8],
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        path,
        kind: tar::EntryType::Regular,
        mode: 0o600,
        link: None,
        data,
    }
}

fn tar_of(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.as_mut_bytes()[..m.path.len()].copy_from_slice(m.path.as_bytes());
        h.set_entry_type(m.kind);
        h.set_mode(m.mode);
        h.set_size(m.data.len() as u64);
        if let Some(l) = m.link {
            h.as_mut_bytes()[157..157 + l.len()].copy_from_slice(l.as_bytes());
        }
        if matches!(m.kind, tar::EntryType::Char) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.append(&h, m.data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A physical backup made by hand: the tar sealed with the repository's
/// recipients (zstd + age, as stockops does), and a manifest that passes
/// every check a real one does. Returns its id.
async fn forge_physical(repo: &str, keys: &Keys, tar: Vec<u8>, n: u16) -> String {
    let store = open_store(repo).await;
    let recipients = Recipients::load(Some(&keys.recipients)).unwrap();
    let now = chrono::Utc::now() - chrono::Duration::seconds(i64::from(n) + 10);
    let id = format!("{}-{n:04x}", now.format("%Y%m%dT%H%M%SZ"));
    let (sealed, digests) = pipeline::seal(
        &tar[..],
        Vec::new(),
        &recipients,
        Compression {
            level: 3,
            workers: 0,
        },
        |_| {},
    )
    .unwrap();
    let key = catalog::key(&id, catalog::BASE);
    store.put(&key, sealed).await.unwrap();
    let manifest = Manifest {
        format: catalog::FORMAT,
        id: id.clone(),
        kind: catalog::PHYSICAL.into(),
        database: "postgres".into(),
        server_version: "15.8".into(),
        stockops_version: "0.1.0".into(),
        started_at: now,
        snapshot_at: now,
        finished_at: now,
        recipients: recipients.public(),
        compression: "zstd level 3".into(),
        objects: vec![StoredObject {
            name: "base".into(),
            key,
            stored: digests.stored,
        }],
        wal: Some(WalRange {
            timeline: 1,
            start_lsn: "0/2000028".into(),
            stop_lsn: "0/2000100".into(),
            start_segment: "000000010000000000000002".into(),
            stop_segment: "000000010000000000000002".into(),
            segment_size: 16 << 20,
            includes_wal: true,
        }),
    };
    store
        .put(
            &catalog::key(&id, catalog::MANIFEST),
            serde_json::to_vec_pretty(&manifest).unwrap(),
        )
        .await
        .unwrap();
    id
}

/// Names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every entry below `dir`, with its type and mode.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            walk(&p, out);
        }
        out.push((p, m));
    }
}

#[tokio::test]
async fn a_hostile_base_backup_is_refused_and_nothing_lands_outside_the_target() {
    let dir = temp_dir("adv_tar");
    let keys = Keys::new(&dir.join("keys"));
    let repo = format!("file://{}", dir.join("repo").display());
    let env = with_identity(job_env(&repo, &keys), &keys);
    let pid = std::process::id();
    // What the attacker aims at outside the target: /etc, and a canary
    // beside the target directory.
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let canary = outside.join("canary");
    std::fs::write(&canary, "untouched\n").unwrap();
    let etc_before = names(Path::new("/etc"));
    let passwd_before = std::fs::read("/etc/passwd").unwrap();
    let pwned = format!("stockops-pwned-{pid}");
    let through_etc = format!("etc/{pwned}");
    let abs = format!("/tmp/stockops-abs-{pid}");
    let climb = format!("../outside/climbed-{pid}");
    let canary_s = canary.display().to_string();
    let signal_target = outside.join("signal").display().to_string();

    type Case<'a> = (&'a str, Vec<Member<'a>>);
    let cases: Vec<Case> = vec![
        (
            "the settings stockops writes, as symlinks out of the target",
            vec![
                Member {
                    path: "postgresql.auto.conf",
                    kind: tar::EntryType::Symlink,
                    mode: 0o777,
                    link: Some(&canary_s),
                    data: b"",
                },
                Member {
                    path: "recovery.signal",
                    kind: tar::EntryType::Symlink,
                    mode: 0o777,
                    link: Some(&signal_target),
                    data: b"",
                },
            ],
        ),
        (
            "a symlink to /etc and a file written through it",
            vec![
                Member {
                    path: "etc",
                    kind: tar::EntryType::Symlink,
                    mode: 0o777,
                    link: Some("/etc"),
                    data: b"",
                },
                file(&through_etc, b"pwned\n"),
            ],
        ),
        ("a ../ path", vec![file(&climb, b"climbed\n")]),
        ("an absolute path", vec![file(&abs, b"absolute\n")]),
        (
            "a hard link to /etc/passwd",
            vec![Member {
                path: "postgresql.auto.conf",
                kind: tar::EntryType::Link,
                mode: 0o600,
                link: Some("/etc/passwd"),
                data: b"",
            }],
        ),
        (
            "a hard link to a file outside",
            vec![Member {
                path: "postgresql.auto.conf",
                kind: tar::EntryType::Link,
                mode: 0o600,
                link: Some(&canary_s),
                data: b"",
            }],
        ),
        (
            "a device node",
            vec![Member {
                path: "mem",
                kind: tar::EntryType::Char,
                mode: 0o666,
                link: None,
                data: b"",
            }],
        ),
        (
            "a FIFO",
            vec![Member {
                path: "pipe",
                kind: tar::EntryType::Fifo,
                mode: 0o666,
                link: None,
                data: b"",
            }],
        ),
    ];
    for (n, (what, members)) in cases.into_iter().enumerate() {
        let mut all = vec![file("PG_VERSION", b"15\n")];
        all.extend(members);
        let id = forge_physical(&repo, &keys, tar_of(&all), n as u16).await;
        let target = dir.join(format!("restored-{n}"));
        let _guard = Restored(target.clone());
        let out = stockops_env(
            &[
                "restore",
                "--physical",
                &id,
                "--target-dir",
                target.to_str().unwrap(),
                "--latest",
                "--recovery-timeout",
                "30",
            ],
            None,
            None,
            &env,
        );
        assert!(!out.status.success(), "{what}: restore accepted it");
        // Nothing outside the target.
        assert_eq!(
            std::fs::read_to_string(&canary).unwrap(),
            "untouched\n",
            "{what}"
        );
        assert_eq!(names(&outside), vec!["canary".to_string()], "{what}");
        assert_eq!(names(Path::new("/etc")), etc_before, "{what}: /etc");
        assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);
        assert!(!Path::new(&abs).exists(), "{what}");
        let err = stderr(&out);
        assert!(
            err.contains("refused") && err.contains("altered"),
            "{what}: the error says what and why: {err}"
        );
        let mut inside = Vec::new();
        walk(&target, &mut inside);
        for (p, m) in &inside {
            let t = m.file_type();
            assert!(
                t.is_file() || t.is_dir(),
                "{what}: {} is neither",
                p.display()
            );
        }
    }

    // A setuid file is neutralised: restore goes on (and fails later, as a
    // data directory this is not), the file is plain and private.
    let id = forge_physical(
        &repo,
        &keys,
        tar_of(&[
            file("PG_VERSION", b"15\n"),
            Member {
                path: "global/suid-sh",
                kind: tar::EntryType::Regular,
                mode: 0o6755,
                link: None,
                data: b"#!/bin/sh\nid\n",
            },
        ]),
        40,
    )
    .await;
    let target = dir.join("restored-suid");
    let _guard = Restored(target.clone());
    let out = stockops_env(
        &[
            "restore",
            "--physical",
            &id,
            "--target-dir",
            target.to_str().unwrap(),
            "--latest",
            "--recovery-timeout",
            "30",
        ],
        None,
        None,
        &env,
    );
    assert!(!out.status.success(), "not a data directory");
    let m = std::fs::metadata(target.join("global/suid-sh")).unwrap();
    assert_eq!(
        m.permissions().mode() & 0o7777,
        0o600,
        "setuid and setgid dropped"
    );
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&m),
        uid_of("postgres"),
        "owned by the cluster's OS user, not the archive's"
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the new data directory is private");

    // A target directory that is a symlink (planted by someone who guessed
    // the path) is refused before anything is written.
    let elsewhere = outside.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let planted = dir.join("planted");
    std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
    let out = stockops_env(
        &[
            "restore",
            "--physical",
            &id,
            "--target-dir",
            planted.to_str().unwrap(),
            "--latest",
        ],
        None,
        None,
        &env,
    );
    assert_code(&out, 2, "restore into a symlink");
    assert!(names(&elsewhere).is_empty(), "nothing written through it");
    let _ = std::fs::remove_dir_all(&dir);
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test]
async fn another_os_user_cannot_reach_a_scratch_cluster() {
    // As the drill starts (and with --keep, holds) its scratch cluster.
    let cluster = stockops::recovery::drill::ScratchCluster::start(15, false).unwrap();
    let mode = std::fs::metadata(&cluster.dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the socket's directory is private");
    let hba = std::fs::read_to_string(cluster.dir.join("data/pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(
        rules.iter().all(|l| !l.contains("trust")),
        "no trust: {rules:?}"
    );
    let port = cluster.port.to_string();
    let psql = "/usr/lib/postgresql/15/bin/psql";
    let as_nobody = |host: &str| {
        Command::new("runuser")
            .args(["-u", "nobody", "--", psql, "-X", "-w", "-h", host])
            .args([
                "-p", &port, "-U", "postgres", "-d", "postgres", "-Atc", "SELECT 1",
            ])
            .output()
            .unwrap()
    };
    // Over the socket, and over TCP in case it listens.
    for host in [cluster.dir.to_str().unwrap(), "127.0.0.1", "localhost"] {
        let out = as_nobody(host);
        assert!(
            !out.status.success(),
            "nobody got in as postgres through {host}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Even with the directory opened up, peer authentication holds.
    std::fs::set_permissions(&cluster.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(cluster.dir.to_str().unwrap());
    assert!(!out.status.success(), "nobody got in by the socket");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its own OS user still gets in (what the drill needs).
    let mut conn = sqlx::Connection::connect_with(&cluster.options("postgres"))
        .await
        .map(|c: sqlx::PgConnection| c)
        .unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

/// A backup whose configuration `include`s the identity copy stockops
/// wrote into the data directory: the server's syntax error quotes the
/// key, and the drill's report stored in the repository would carry it.
#[tokio::test]
async fn a_drill_report_never_holds_the_identity_nor_aws_secrets() {
    use_s3_env();
    let dir = temp_dir("adv_report");
    let keys = Keys::new(&dir.join("keys"));
    let repo = s3_repo("adv-report");
    let env = with_identity(job_env(&repo, &keys), &keys);
    let secret = std::fs::read_to_string(&keys.identity).unwrap();
    let secret = secret.trim();
    let aws_secret = std::env::var("STOCKOPS_TEST_S3_SECRET_ACCESS_KEY").unwrap();
    let conf = b"# what the attacker wrote into the backed-up cluster's configuration\n\
                 include_if_exists 'stockops-restore-identity.txt'\n\
                 include_if_exists '/proc/self/environ'\n";
    let id = forge_physical(
        &repo,
        &keys,
        tar_of(&[file("PG_VERSION", b"15\n"), file("postgresql.conf", conf)]),
        1,
    )
    .await;
    let out = stockops_env(&["drill", "--physical", &id, "--json"], None, None, &env);
    assert!(!out.status.success(), "the drill fails: {}", stderr(&out));
    let out = stockops_env(&["drills", "list", "--json"], None, None, &env);
    assert_success(&out, "drills list");
    let stored = stdout(&out);
    assert!(stored.contains(&id), "the report is stored: {stored}");
    assert!(
        stored.contains("stockops-restore-identity.txt"),
        "the server read the hostile configuration: {stored}"
    );
    let identity_path = keys.identity.display().to_string();
    for (what, leak) in [
        ("the private key", secret),
        ("its bech32 body", &secret[16..]),
        ("the identity's path", identity_path.as_str()),
        ("the S3 secret", aws_secret.as_str()),
        ("the keyring's name", "stockops-restore-keys-0"),
    ] {
        assert!(
            !stored.contains(leak),
            "{what} in the stored report: {stored}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The restored server runs `wal fetch` with what it needs, and holds
/// nothing else: no AWS secret in its environment, the identity copy gone
/// as soon as recovery is over, the settings file private.
#[tokio::test]
async fn the_restored_server_inherits_no_secret_and_the_identity_copy_goes() {
    let Archiving {
        dir,
        keys: _,
        repo: _,
        cluster,
        env,
    } = Archiving::start("adv_env").await;
    let mut conn = crate::wal::connect_to(&cluster).await;
    let url = crate::wal::url_of(&cluster, "postgres");
    let out = stockops_env(&["backup", "--physical", "--json"], Some(&url), None, &env);
    assert_success(&out, "backup --physical");
    // WAL after the backup, so recovery must fetch from S3.
    crate::wal::activity(&mut conn, 2).await;
    let last = crate::wal::current_segment(&mut conn).await;
    sqlx::raw_sql("SELECT pg_switch_wal()")
        .execute(&mut conn)
        .await
        .unwrap();
    crate::wal::wait_archived(&mut conn, &last).await;

    let target = dir.join("restored");
    let _guard = Restored(target.clone());
    let out = stockops_env(
        &[
            "restore",
            "--physical",
            "latest",
            "--target-dir",
            target.to_str().unwrap(),
            "--latest",
            "--recovery-timeout",
            "120",
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "restore --physical --latest");
    let pid = std::fs::read_to_string(target.join("postmaster.pid")).unwrap();
    let pid = pid.lines().next().unwrap().trim();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    let aws_secret = std::env::var("STOCKOPS_TEST_S3_SECRET_ACCESS_KEY").unwrap();
    for leak in [
        "AWS_SECRET_ACCESS_KEY",
        "STOCKOPS_AGE_IDENTITY",
        aws_secret.as_str(),
    ] {
        assert!(
            !environ.contains(leak),
            "{leak} in the postmaster's environment"
        );
    }
    // The identity copy restore_command read is gone.
    let config = target.join("stockops-restore.toml");
    let m = std::fs::metadata(&config).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&config).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let copy = PathBuf::from(table["identity_file"].as_str().unwrap());
    assert!(!copy.exists(), "{} outlived the recovery", copy.display());
    assert!(
        !copy.starts_with(&target),
        "the copy is outside the data directory"
    );
    assert!(
        !target.join("stockops-restore-identity.txt").exists(),
        "no copy in the data directory"
    );
    // And recovery did fetch from the archive (with the keyring's AWS file).
    let log = std::fs::read_to_string(target.join("stockops-restore.log")).unwrap();
    assert!(
        log.contains("restored log file"),
        "recovery fetched WAL from the archive: {log}"
    );
}
