//! Inputs the fuzz targets (fuzz/, docs/fuzzing.md) found stockops mishandling,
//! replayed the way an attacker would deliver them: through the repository.

use crate::backup::{job_env, s3_repo, Keys};
use crate::common::*;

/// Anyone who can write to the bucket can add a key under `wal/`. A name of
/// 40 bytes ending in `.backup` with a multibyte character across byte 24
/// made every command that lists the archive (`wal verify`, `prune`,
/// `doctor`, recovery's `wal fetch`) panic; it is not a WAL file, so the
/// listing skips it.
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
