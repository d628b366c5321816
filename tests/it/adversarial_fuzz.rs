//! Inputs the fuzz targets (fuzz/, docs/fuzzing.md) found stockops mishandling,
//! replayed the way an attacker would deliver them: through the repository.

use crate::backup::{job_env, s3_repo, Keys};
use crate::common::*;

/// Anyone who can write to the bucket can add a key under `wal/`. A name of
/// 40 bytes ending in `.backup` with a multibyte character across byte 24
/// made every command that lists the whole archive (`wal verify`, `backups
/// prune`, the archive check of `restore --physical` and `drill --physical`)
/// panic; it is not a WAL file, so the listing skips it.
#[tokio::test]
async fn a_wal_key_with_a_multibyte_name_is_skipped_not_a_panic() {
    let dir = temp_dir("adv_fuzz_wal_key");
    let keys = Keys::new(&dir.join("keys"));
    let repo = s3_repo("adv-fuzz-wal-key");
    let env = job_env(&repo, &keys);
    use_s3_env();
    let store = open_store(&repo).await;
    let sha = "ab".repeat(32);
    let good = format!("wal/00000001/000000010000000000000003.{sha}.zst.age");
    let hostile =
        format!("wal/00000001/00000001000000000000000\u{c4}00000028.backup.{sha}.zst.age");
    store
        .put(&good, b"not read by verify".to_vec())
        .await
        .unwrap();
    store.put(&hostile, b"planted".to_vec()).await.unwrap();

    let out = stockops_env(&["wal", "verify", "--json"], None, None, &env);
    assert_success(&out, "wal verify of an archive holding a planted key");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains('\u{c4}'),
        "{v}"
    );
}

/// A forged physical manifest whose WAL segment size is 0 made `backups
/// prune` divide by zero (and `restore --physical` after recovery): now the
/// manifest is refused when read, with the reason, as any corrupt one is.
#[tokio::test]
async fn a_forged_manifest_with_segment_size_zero_is_refused_not_a_panic() {
    let dir = temp_dir("adv_fuzz_seg0");
    let keys = Keys::new(&dir.join("keys"));
    let repo = s3_repo("adv-fuzz-seg0");
    let env = job_env(&repo, &keys);
    use_s3_env();
    let store = open_store(&repo).await;
    let id = "20260102T030405Z-beef";
    let forged = format!(
        r#"{{"format":1,"id":"{id}","kind":"physical","database":"inventory","server_version":"15.8",
        "stockops_version":"0.1.0","started_at":"2026-01-02T03:04:05Z","snapshot_at":"2026-01-02T03:04:06Z",
        "finished_at":"2026-01-02T03:04:07Z","recipients":[],"compression":"zstd level 3","objects":[],
        "wal":{{"timeline":1,"start_lsn":"2/19000028","stop_lsn":"2/19434C18",
        "start_segment":"000000010000000200000019","stop_segment":"000000010000000200000019",
        "segment_size":0,"includes_wal":true}}}}"#
    );
    store
        .put(&format!("backups/{id}/manifest.json"), forged.into_bytes())
        .await
        .unwrap();

    let out = stockops_env(
        &[
            "backups",
            "prune",
            "--keep-last",
            "3",
            "--dry-run",
            "--json",
        ],
        None,
        None,
        &env,
    );
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(101), "prune panicked: {err}");
    assert!(!err.contains("panicked"), "{err}");
    // An unreadable manifest is untrusted: kept for a person to look at,
    // never counted by the policy, with the reason in the plan.
    assert_success(&out, "prune --dry-run beside a forged manifest");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let forged = plan["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(forged["keep"], true, "{plan}");
    assert!(
        forged["reasons"]
            .to_string()
            .contains("not a WAL segment size"),
        "{plan}"
    );
}
