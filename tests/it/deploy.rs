//! The deployment files of `deploy/`: the systemd units pass `systemd-analyze
//! verify` (and its offline security review) with every hardening option the
//! jobs rely on; the compose file, the Kubernetes CronJobs and the Prometheus
//! rules parse and have the expected shape; and the production simulation
//! (`scripts/prod-sim.sh`) runs end to end, its doctor reporting no high
//! finding, while the alert rules name only metrics its real backup and drill
//! wrote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::common::*;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"))
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// The unit files of deploy/systemd, sorted.
fn unit_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("deploy/systemd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `Key=value` lines of a unit file (comments skipped), in order.
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn values<'a>(d: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    d.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify_and_are_hardened() {
    let files = unit_files();
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for job in ["backup", "prune", "verify", "drill"] {
        for kind in ["service", "timer"] {
            assert!(
                names.contains(&format!("stockops-{job}.{kind}")),
                "deploy/systemd lacks stockops-{job}.{kind}: {names:?}"
            );
        }
    }
    // systemd-analyze checks that ExecStart's program exists: the copies point
    // at the binary under test instead of /usr/local/bin/stockops.
    let dir = temp_dir("systemd");
    let bin = env!("CARGO_BIN_EXE_stockops");
    for f in &files {
        let unit = std::fs::read_to_string(f).unwrap();
        std::fs::write(
            dir.join(f.file_name().unwrap()),
            unit.replace("/usr/local/bin/stockops", bin),
        )
        .unwrap();
    }
    let copies: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&copies)
        .output()
        .expect("systemd-analyze is required by this test (Debian: apt-get install systemd)");
    // Warnings (an unknown or misspelt key) fail too: systemd would ignore the line.
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify:\n{}",
        text(&out)
    );
    for name in names.iter().filter(|n| n.ends_with(".service")) {
        // The offline security review, out of 10 (lower is safer): 2.5 at most.
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=25"])
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: exposure above 2.5\n{}",
            text(&out)
        );
        let unit = read(&format!("deploy/systemd/{name}"));
        let d = directives(&unit);
        for (key, want) in [
            ("Type", "oneshot"),
            ("User", "stockops"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("CapabilityBoundingSet", ""),
            ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
            ("SystemCallFilter", "@system-service"),
        ] {
            assert_eq!(values(&d, key), vec![want], "{name}: {key}");
        }
        assert!(
            values(&d, "EnvironmentFile").is_empty(),
            "{name}: secrets come as credentials, not an EnvironmentFile"
        );
        let exec = values(&d, "ExecStart").join(" ");
        assert!(
            exec.contains("--log-format json"),
            "{name}: JSON logs: {exec}"
        );
        let creds = values(&d, "LoadCredential");
        assert!(!creds.is_empty(), "{name}: no LoadCredential=");
        // Every credential-held file is read from the credentials directory.
        for env in values(&d, "Environment") {
            let (k, v) = env.split_once('=').unwrap();
            assert!(
                !k.contains("SECRET") && !k.contains("PASSWORD"),
                "{name}: a secret in Environment=: {k}"
            );
            if let Some(file) = v.strip_prefix("%d/") {
                assert!(
                    creds.iter().any(|c| c.starts_with(&format!("{file}:"))),
                    "{name}: {k} reads %d/{file}, which no LoadCredential= provides"
                );
            }
        }
        let writable = values(&d, "ReadWritePaths");
        assert_eq!(
            writable,
            vec!["/var/lib/node_exporter/textfile"],
            "{name}: writes only its metrics (and its StateDirectory)"
        );
        let metrics = format!(
            "/var/lib/node_exporter/textfile/stockops_{}.prom",
            name.trim_start_matches("stockops-")
                .trim_end_matches(".service")
        );
        assert!(
            exec.contains(&format!("--metrics-file {metrics}")),
            "{name}: {exec}"
        );
    }
    for name in names.iter().filter(|n| n.ends_with(".timer")) {
        let d = directives(&read(&format!("deploy/systemd/{name}")));
        assert_eq!(values(&d, "Persistent"), vec!["true"], "{name}");
        assert_eq!(values(&d, "RandomizedDelaySec").len(), 1, "{name}");
        assert_eq!(values(&d, "OnCalendar").len(), 1, "{name}");
        assert_eq!(values(&d, "WantedBy"), vec!["timers.target"], "{name}");
    }
    let drill = directives(&read("deploy/systemd/stockops-drill.timer"));
    assert!(
        values(&drill, "OnCalendar")[0].starts_with("Sun "),
        "the drill is weekly"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn hash_keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_file_parses_with_postgres_s3_and_a_scheduled_stockops() {
    let doc = &yaml_docs("deploy/compose.yaml")[0];
    let services = &doc["services"];
    let names = hash_keys(services);
    for s in ["postgres", "s3", "stockops"] {
        assert!(
            names.contains(s),
            "compose.yaml lacks service {s}: {names:?}"
        );
    }
    let declared = hash_keys(&doc["secrets"]);
    for s in &names {
        for secret in strings(&services[s.as_str()]["secrets"]) {
            assert!(
                declared.contains(&secret),
                "{s}: undeclared secret {secret}"
            );
        }
    }
    // PostgreSQL 15 with pgaudit and the hardened files of deploy/.
    let pg = &services["postgres"];
    let dockerfile = pg["build"]["dockerfile"].as_str().unwrap();
    let dockerfile = read(&format!("deploy/{dockerfile}"));
    assert!(dockerfile.contains("FROM postgres:15"), "{dockerfile}");
    assert!(dockerfile.contains("postgresql-15-pgaudit"), "{dockerfile}");
    assert!(dockerfile.contains("postgresql.conf") && dockerfile.contains("pg_hba.conf"));
    // stockops: the scheduler, secrets as files, a non-root user, read-only.
    let st = &services["stockops"];
    assert!(
        strings(&st["command"]).contains(&"schedule".to_string()),
        "stockops runs `stockops schedule`"
    );
    for secret in ["pgpass", "aws_credentials", "age_recipients"] {
        assert!(strings(&st["secrets"]).contains(&secret.to_string()));
    }
    for (k, _) in st["environment"].as_hash().unwrap() {
        let k = k.as_str().unwrap();
        assert!(
            !k.contains("SECRET") && !k.contains("PASSWORD"),
            "stockops: secret {k} in the environment"
        );
    }
    assert_eq!(st["read_only"].as_bool(), Some(true));
    assert!(st["user"].as_str().is_some_and(|u| !u.starts_with("0")));
    assert_eq!(strings(&st["cap_drop"]), vec!["ALL"]);
    // Its configuration file has the four schedules and the retention.
    let config_file = doc["configs"]["stockops_toml"]["file"].as_str().unwrap();
    let config: toml::Table = read(&format!("deploy/{config_file}")).parse().unwrap();
    let schedule = config["schedule"].as_table().unwrap();
    for job in ["backup", "verify", "prune", "drill"] {
        let expr = schedule[job].as_str().unwrap_or_default();
        stockops::ops::schedule::parse_cron(expr)
            .unwrap_or_else(|e| panic!("[schedule] {job} = {expr:?}: {e}"));
    }
    assert!(schedule["keep"].as_table().unwrap().contains_key("daily"));
    let build = &st["build"];
    let dockerfile = read(&format!(
        "{}/{}",
        build["context"].as_str().unwrap().replace("..", "."),
        build["dockerfile"].as_str().unwrap()
    ));
    assert!(dockerfile.contains("postgresql-client-15"), "{dockerfile}");
    assert!(
        dockerfile.contains("\nUSER "),
        "a non-root user: {dockerfile}"
    );
}

#[test]
fn compose_config_is_read_by_stockops() {
    // Any command resolves the configuration first: an unknown key, a
    // malformed schedule section or a bad value fails here.
    let out = stockops(
        &[
            "--config",
            repo_path("deploy/stockops.compose.toml").to_str().unwrap(),
            "completions",
            "bash",
        ],
        None,
        None,
    );
    assert_success(&out, "stockops --config deploy/stockops.compose.toml");
}

#[test]
fn kubernetes_cronjobs_are_locked_down() {
    let docs = yaml_docs("deploy/k8s/cronjob.yaml");
    let cronjobs: Vec<&Yaml> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("CronJob"))
        .collect();
    let names: Vec<&str> = cronjobs
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"stockops-backup"), "{names:?}");
    for cj in cronjobs {
        let name = cj["metadata"]["name"].as_str().unwrap();
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"].as_str(), Some("Forbid"), "{name}");
        assert!(spec["schedule"].as_str().is_some(), "{name}");
        let job = &spec["jobTemplate"]["spec"];
        assert!(
            job["activeDeadlineSeconds"].as_i64().is_some_and(|s| s > 0),
            "{name}: activeDeadlineSeconds"
        );
        let pod = &job["template"]["spec"];
        assert!(
            pod["terminationGracePeriodSeconds"]
                .as_i64()
                .is_some_and(|s| s >= 60),
            "{name}: a grace period long enough to abort an upload"
        );
        assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true), "{name}");
        assert_eq!(
            psc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{name}"
        );
        let mut containers: Vec<&Yaml> = pod["containers"].as_vec().unwrap().iter().collect();
        if let Some(init) = pod["initContainers"].as_vec() {
            containers.extend(init.iter());
        }
        for c in containers {
            let cname = c["name"].as_str().unwrap();
            let sc = &c["securityContext"];
            assert_eq!(
                sc["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{name}/{cname}"
            );
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}/{cname}"
            );
            assert_eq!(
                strings(&sc["capabilities"]["drop"]),
                vec!["ALL"],
                "{name}/{cname}"
            );
            // Secrets as mounted files, never as environment values.
            for env in c["env"].as_vec().map(|v| v.as_slice()).unwrap_or(&[]) {
                assert!(
                    env["valueFrom"]["secretKeyRef"].is_badvalue(),
                    "{name}/{cname}: secret in the environment"
                );
            }
        }
        let secret_volumes = pod["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .filter(|v| !v["secret"].is_badvalue())
            .count();
        assert!(secret_volumes > 0, "{name}: secrets mounted as files");
    }
}

/// Every `stockops_*` metric name in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("stockops_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The alert rules, as (name, expression) pairs, after checking each rule's shape.
fn alert_rules() -> Vec<(String, String)> {
    let doc = &yaml_docs("deploy/prometheus/stockops-alerts.yaml")[0];
    let mut rules = Vec::new();
    for group in doc["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let name = rule["alert"].as_str().unwrap().to_string();
            let expr = rule["expr"].as_str().unwrap().to_string();
            assert!(rule["for"].as_str().is_some(), "{name}: for:");
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            assert!(
                ["critical", "warning"].contains(&severity),
                "{name}: severity {severity:?}"
            );
            let notes = &rule["annotations"];
            assert!(notes["summary"].as_str().is_some(), "{name}: summary");
            assert!(notes["description"].as_str().is_some(), "{name}");
            let url = notes["runbook_url"].as_str().unwrap();
            let runbook = url.split("/main/").nth(1).unwrap_or_default();
            assert!(
                runbook.starts_with("runbooks/") && repo_path(runbook).is_file(),
                "{name}: runbook_url {url} names no file of runbooks/"
            );
            rules.push((name, expr));
        }
    }
    rules
}

#[test]
fn prometheus_rules_cover_stale_backups_and_failed_or_stale_drills() {
    let rules = alert_rules();
    let exprs: Vec<String> = rules
        .iter()
        .map(|(_, e)| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for want in [
        "time() - stockops_backup_last_success_timestamp_seconds > 26 * 3600",
        "absent(stockops_backup_last_success_timestamp_seconds)",
        "stockops_drill_last_run_success == 0",
        "time() - stockops_drill_last_success_timestamp_seconds > 8 * 86400",
        "absent(stockops_drill_last_success_timestamp_seconds)",
    ] {
        assert!(
            exprs.iter().any(|e| e == want),
            "no alert on `{want}`: {exprs:#?}"
        );
    }
    // Each alert has a promtool unit test (`promtool test rules`).
    let tests = &yaml_docs("deploy/prometheus/stockops-alerts.test.yaml")[0];
    assert_eq!(strings(&tests["rule_files"]), vec!["stockops-alerts.yaml"]);
    let tested: BTreeSet<&str> = tests["tests"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_vec().unwrap().iter())
        .filter_map(|a| a["alertname"].as_str())
        .collect();
    for (name, _) in &rules {
        assert!(tested.contains(name.as_str()), "no promtool test of {name}");
    }
    // Names follow src/ops/metrics.rs: stockops_<job>_<figure>.
    let known = read("src/ops/metrics.rs");
    for (name, expr) in &rules {
        for metric in metric_names(expr) {
            let figure = metric
                .trim_start_matches("stockops_")
                .split_once('_')
                .map(|(_, f)| f)
                .unwrap_or_default();
            assert!(
                known.contains(&format!("stockops_<job>_{figure}`")),
                "{name}: {metric} is not a name src/ops/metrics.rs writes"
            );
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_production_simulation_runs_end_to_end_with_a_clean_doctor() {
    for k in [
        "STOCKOPS_TEST_S3_ENDPOINT",
        "STOCKOPS_TEST_S3_BUCKET",
        "STOCKOPS_TEST_S3_ACCESS_KEY_ID",
    ] {
        assert!(
            std::env::var(k).is_ok(),
            "{k} is not set: this test needs the S3 server of `scripts/testenv.sh up`"
        );
    }
    let dir = temp_dir("prodsim").join("sim");
    let port = free_port().to_string();
    let prefix = format!("it-prodsim-{}", std::process::id());
    let mut cmd = Command::new("bash");
    cmd.arg(repo_path("scripts/prod-sim.sh"))
        .arg(&dir)
        .env("STOCKOPS_BIN", env!("CARGO_BIN_EXE_stockops"))
        .env("STOCKOPS_PRODSIM_PORT", &port)
        .env("STOCKOPS_PRODSIM_PREFIX", &prefix)
        .env_remove("KEEP");
    for (key, _) in std::env::vars() {
        let ours = key.starts_with("STOCKOPS_") && !key.starts_with("STOCKOPS_TEST_");
        if (key.starts_with("PG") || key.starts_with("AWS_") || key == "DATABASE_URL" || ours)
            && !key.starts_with("STOCKOPS_PRODSIM")
        {
            cmd.env_remove(&key);
        }
    }
    let started = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let log = text(&out);
    assert!(
        out.status.success(),
        "scripts/prod-sim.sh failed ({:?}) after {:.0}s:\n{log}",
        out.status.code(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("prod-sim took {:.1}s", started.elapsed().as_secs_f64());
    // The doctor's summary line, from the hardened server, and the script's verdict.
    assert!(
        log.lines()
            .any(|l| l.trim_start().starts_with("0 high, ") && l.contains("finding(s) in")),
        "doctor's summary shows a high finding:\n{log}"
    );
    assert!(log.contains("doctor: no high finding"), "{log}");
    for refused in [
        "refused: sim_sales over TCP without TLS (sslmode=disable)",
        "refused: sim_sales with TLS 1.2 at most",
        "refused: sim_sales over the Unix socket",
        "refused: the postgres superuser over TCP",
    ] {
        assert!(log.contains(refused), "missing `{refused}`:\n{log}");
    }
    assert!(
        log.contains(", TLSv1.3, "),
        "the department session is TLS 1.3:\n{log}"
    );
    // The alert rules name only metrics the real backup and drill wrote.
    let mut written = String::new();
    for job in ["backup", "drill"] {
        let file = dir.join(format!("metrics/stockops_{job}.prom"));
        written +=
            &std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    let series: BTreeSet<&str> = written
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split([' ', '{']).next())
        .collect();
    assert!(
        written.contains("stockops_backup_last_run_success 1"),
        "{written}"
    );
    assert!(
        written.contains("stockops_drill_last_run_success 1"),
        "{written}"
    );
    for (name, expr) in alert_rules() {
        for metric in metric_names(&expr) {
            assert!(
                series.contains(metric.as_str()),
                "alert {name} uses {metric}, which no metrics file holds:\n{written}"
            );
        }
    }
    // The cluster was stopped on exit.
    assert!(
        !dir.join("data/postmaster.pid").exists(),
        "the simulation's cluster is still running"
    );
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
