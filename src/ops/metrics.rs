//! Prometheus textfile metrics (node_exporter's textfile collector): one file
//! per job, replaced atomically, so a scrape never sees half a file.
//!
//! Names written (the alert rules in `deploy/prometheus/` use them):
//!
//! | metric | when |
//! | --- | --- |
//! | `stockops_<job>_last_run_timestamp_seconds` | every run |
//! | `stockops_<job>_last_run_success` | every run: 1 or 0 |
//! | `stockops_<job>_last_success_timestamp_seconds` | success; kept across failures |
//! | `stockops_<job>_last_failure_timestamp_seconds` | failure; kept across successes |
//! | `stockops_<job>_duration_seconds` | success |
//!
//! plus job-specific figures (`stockops_backup_bytes{kind=...}`,
//! `stockops_drill_rto_seconds`, `stockops_drill_rpo_seconds`,
//! `stockops_prune_pruned_backups`, `stockops_prune_aborted_uploads`). Jobs:
//! `backup`, `verify`, `prune`, `drill` (`stockops schedule` names the files
//! `stockops_<job>.prom`).

use std::collections::BTreeMap;
use std::path::Path;

/// Record one run of `job` in `path`. A failure keeps the last success's
/// figures (so "time since the last success" stays right) and moves only the
/// failure time.
pub fn record(
    path: &Path,
    job: &str,
    success: bool,
    seconds: f64,
    figures: &[(&str, f64)],
) -> std::io::Result<()> {
    let now = chrono::Utc::now().timestamp() as f64;
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    if let Ok(old) = std::fs::read_to_string(path) {
        for line in old.lines().filter(|l| !l.starts_with('#')) {
            if let Some((k, v)) = line.rsplit_once(' ') {
                if let Ok(v) = v.parse() {
                    values.insert(k.to_string(), v);
                }
            }
        }
    }
    let mut set = |name: &str, v: f64| values.insert(format!("stockops_{job}_{name}"), v);
    set("last_run_timestamp_seconds", now);
    set("last_run_success", if success { 1.0 } else { 0.0 });
    if success {
        set("last_success_timestamp_seconds", now);
        set("duration_seconds", seconds);
        for (name, v) in figures {
            set(name, *v);
        }
    } else {
        set("last_failure_timestamp_seconds", now);
    }
    let mut text = format!("# stockops {job} metrics (node_exporter textfile format)\n");
    for (k, v) in values {
        text.push_str(&format!("{k} {v}\n"));
    }
    // A random name, never followed through a symlink (the textfile
    // directory may be shared); readable by the collector once renamed.
    let tmp = crate::private_file::random_beside(path, "stockops");
    let written = (|| {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let mut file = crate::private_file::create_new(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// [`record`], with a failure to write logged rather than returned: metrics
/// must never turn a good backup into a failed one.
pub fn record_or_warn(
    path: Option<&Path>,
    job: &str,
    success: bool,
    seconds: f64,
    figures: &[(&str, f64)],
) {
    if let Some(path) = path {
        if let Err(e) = record(path, job, success, seconds, figures) {
            tracing::warn!(file = %path.display(), error = %e, "could not write the metrics file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_keeps_the_last_success() {
        let dir = std::env::temp_dir().join(format!("stockops-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stockops_backup.prom");
        record(
            &path,
            "backup",
            true,
            2.5,
            &[("bytes{kind=\"stored\"}", 10.0)],
        )
        .unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        let success_line = first
            .lines()
            .find(|l| l.starts_with("stockops_backup_last_success_timestamp_seconds "))
            .unwrap()
            .to_string();
        record(&path, "backup", false, 1.0, &[]).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(second.contains(&success_line), "{second}");
        assert!(
            second.contains("stockops_backup_last_run_success 0\n"),
            "{second}"
        );
        assert!(
            second.contains("stockops_backup_duration_seconds 2.5\n"),
            "{second}"
        );
        assert!(
            second.contains("stockops_backup_bytes{kind=\"stored\"} 10\n"),
            "{second}"
        );
        assert!(second.contains("stockops_backup_last_failure_timestamp_seconds "));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
