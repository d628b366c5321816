//! Hostile tests: whoever can write to the bucket can write manifests. A
//! forged one must not become `latest`, must not push real backups out of
//! retention, and must be refused by id and reported by `doctor`.

use std::path::Path;

use serde_json::Value;

use crate::backup::{backup, job_env, with_identity, Keys};
use crate::common::*;

/// Copy backup `id` to a new directory `forged_id`, with its manifest
/// rewritten by `edit` (keys moved along unless `edit` says otherwise).
fn forge(repo: &Path, id: &str, forged_id: &str, edit: impl Fn(&mut Value)) {
    let from = repo.join(format!("backups/{id}"));
    let to = repo.join(format!("backups/{forged_id}"));
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    let path = to.join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["id"] = forged_id.into();
    for o in m["objects"].as_array_mut().unwrap() {
        let key = o["key"].as_str().unwrap().replace(id, forged_id);
        o["key"] = key.into();
    }
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

fn latest_id(env: &[(String, String)]) -> String {
    let out = stockops_env(&["backups", "show", "latest", "--json"], None, None, env);
    assert_success(&out, "backups show latest");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["manifest"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_forged_manifest_is_never_latest_nor_pruned_into_place_and_doctor_names_it() {
    let db = TestDb::provisioned("adv_repo").await;
    let dir = temp_dir("adv_repo");
    let keys = Keys::new(&dir);
    let repo = dir.join("repo");
    let env = with_identity(job_env(&format!("file://{}", repo.display()), &keys), &keys);
    let older = backup(&db, &env);
    let real = backup(&db, &env);
    assert_eq!(latest_id(&env), real);

    // 1. A copy that claims to come from the future.
    let future = "20991231T235959Z-dead";
    forge(&repo, &real, future, |m| {
        for f in ["started_at", "snapshot_at", "finished_at"] {
            m[f] = "2099-12-31T23:59:59Z".into();
        }
    });
    // 2. A present-day manifest that points at another backup's objects.
    let borrowed = "20000101T000000Z-beef";
    forge(&repo, &real, borrowed, |m| {
        for f in ["started_at", "snapshot_at", "finished_at"] {
            m[f] = "2000-01-01T00:00:00Z".into();
        }
        m["objects"][0]["key"] = format!("backups/{older}/data.dump.zst.age").into();
    });

    assert_eq!(latest_id(&env), real, "a forged future date became latest");
    for forged in [future, borrowed] {
        let out = stockops_env(&["backups", "show", forged], None, None, &env);
        assert_code(&out, 1, "a forged backup named by id");
        assert!(stderr(&out).contains("not trusted"), "{}", stderr(&out));
    }
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert_success(&out, "backups list");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let untrusted: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["untrusted"].is_string())
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(untrusted.len(), 2, "{list}");

    // Retention: the forged backups neither count as the newest nor go.
    let out = stockops_env(
        &[
            "backups",
            "prune",
            "--keep-last",
            "1",
            "--grace-hours",
            "0",
            "--json",
        ],
        None,
        None,
        &env,
    );
    assert_success(&out, "prune --keep-last 1");
    for kept in [&real, future, borrowed] {
        assert!(
            repo.join(format!("backups/{kept}/manifest.json")).exists(),
            "{kept} was pruned"
        );
    }
    assert!(
        !repo.join(format!("backups/{older}")).exists(),
        "the policy still applies to real backups"
    );

    // doctor says so.
    let mut doctor_env = env.clone();
    doctor_env.retain(|(k, _)| k != "STOCKOPS_AGE_IDENTITY");
    let out = stockops_env(&["doctor", "--json"], Some(&db.url), None, &doctor_env);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].to_string();
    assert!(
        findings.contains("cannot be believed")
            && findings.contains(future)
            && findings.contains(borrowed),
        "{report}"
    );
}

#[tokio::test]
async fn doctor_names_role_settings_that_carry_sql() {
    let db = TestDb::provisioned("adv_roletext").await;
    let name = "it_adv_probe";
    let password = db.add_user(name, "dept_reporting", None).await;
    let mut probe = db.login(name, &password).await.unwrap();
    sqlx::raw_sql("ALTER ROLE CURRENT_USER SET application_name = E'a\\nGRANT dept_audit TO it_adv_probe; --'")
        .execute(&mut probe)
        .await
        .unwrap();
    drop(probe);
    let out = stockops(&["doctor", "--json"], Some(&db.url), None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].to_string();
    assert!(
        findings.contains("role_text")
            && findings.contains("application_name of role it_adv_probe"),
        "{report}"
    );
    drop_role(name).await;
}
