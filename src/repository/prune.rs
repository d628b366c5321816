//! `stockops backups prune`: a retention policy applied to the complete
//! backups, ordered by their manifests' snapshot times, plus the cleanup of
//! what crashed runs left behind.
//!
//! The policy reads like restic's `forget`: keep the newest N backups, and
//! the newest backup of each of the last N days, ISO weeks and months that
//! have one, applied to logical and to physical backups separately. Every
//! backup in the plan carries the reasons it is kept. The newest complete
//! backup of each kind is always kept, whatever the policy says.
//!
//! The WAL archive follows the physical backups: once the plan is made, the
//! archived WAL files numbered below the start of the oldest physical backup
//! kept go (timeline history files stay), so the recovery window the plan
//! reports — from that backup's consistent point to the newest archived
//! segment — is exactly what remains restorable. With no physical backup
//! kept, the archive is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::repository::backups::Listing;
use crate::repository::catalog;
use crate::repository::storage::{Incomplete, WriteStore};

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Policy {
    pub keep_last: usize,
    pub keep_daily: usize,
    pub keep_weekly: usize,
    pub keep_monthly: usize,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.keep_last + self.keep_daily + self.keep_weekly + self.keep_monthly == 0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub id: String,
    pub snapshot_at: Option<DateTime<Utc>>,
    pub keep: bool,
    /// Why it is kept, or why it goes.
    pub reasons: Vec<String>,
}

/// What prune does to the WAL archive.
#[derive(Debug, Serialize)]
pub struct WalPlan {
    /// The oldest physical backup kept: the archive is kept from its start.
    pub from_backup: String,
    pub from_segment: String,
    /// Point-in-time recovery stays possible from here on (that backup's
    /// consistent point) to the newest archived segment.
    pub window_from: DateTime<Utc>,
    pub expired: usize,
    pub expired_bytes: u64,
    #[serde(skip)]
    keys: Vec<String>,
}

/// What prune will do.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub backups: Vec<Decision>,
    /// None: no physical backup is kept, the WAL archive is left as it is.
    pub wal: Option<WalPlan>,
    /// Upload leftovers (multipart uploads, partial files) old enough to abort.
    pub stale_uploads: Vec<String>,
    #[serde(skip)]
    stale: Vec<Incomplete>,
}

/// Names the period a snapshot time falls in.
type Bucket = fn(&DateTime<Utc>) -> String;

/// Decide, for complete backups, which the policy keeps; incomplete ones
/// (no manifest) go once older than `grace`.
pub fn plan(
    listings: &[Listing],
    policy: Policy,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Vec<Decision> {
    let mut complete: Vec<(&Listing, DateTime<Utc>)> = listings
        .iter()
        .filter_map(|l| l.trusted().map(|m| (l, m.snapshot_at)))
        .collect();
    complete.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.id.cmp(&a.0.id)));
    let mut reasons: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    // Logical and physical backups serve different recoveries: the policy
    // applies to each kind on its own, so frequent logical backups never
    // push the physical ones (and the WAL window they hold) out.
    let kinds: BTreeSet<&str> = complete.iter().map(|(l, _)| kind_of(l)).collect();
    for kind in kinds {
        let mine: Vec<(&Listing, DateTime<Utc>)> = complete
            .iter()
            .filter(|(l, _)| kind_of(l) == kind)
            .copied()
            .collect();
        keep_by_policy(&mine, policy, kind, &mut reasons);
    }
    let mut out: Vec<Decision> = complete
        .iter()
        .map(|(l, at)| {
            let why = reasons.remove(l.id.as_str());
            Decision {
                id: l.id.clone(),
                snapshot_at: Some(*at),
                keep: why.is_some(),
                reasons: why.unwrap_or_else(|| vec!["not kept by the policy".into()]),
            }
        })
        .collect();
    // A manifest the store contradicts is neither counted nor removed: it
    // is evidence, for a person to look at.
    for l in listings.iter().filter(|l| l.untrusted.is_some()) {
        out.push(Decision {
            id: l.id.clone(),
            snapshot_at: None,
            keep: true,
            reasons: vec![format!(
                "{} (kept for inspection, not counted by the policy)",
                l.untrusted.as_deref().unwrap_or_default()
            )],
        });
    }
    for l in listings
        .iter()
        .filter(|l| l.manifest.is_none() && l.untrusted.is_none())
    {
        let started = id_time(&l.id);
        let old = started.is_none_or(|t| now - t > grace);
        out.push(Decision {
            id: l.id.clone(),
            snapshot_at: None,
            keep: !old,
            reasons: vec![if old {
                "incomplete (no manifest): a crashed or failed run".into()
            } else {
                "incomplete and recent: may still be running".into()
            }],
        });
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    out
}

fn kind_of(l: &Listing) -> &str {
    match l.trusted() {
        Some(m) if m.is_physical() => "physical",
        _ => "logical",
    }
}

/// The reasons `policy` keeps backups of one kind (`complete`, newest first).
fn keep_by_policy<'a>(
    complete: &[(&'a Listing, DateTime<Utc>)],
    policy: Policy,
    kind: &str,
    reasons: &mut BTreeMap<&'a str, Vec<String>>,
) {
    for (i, (l, _)) in complete.iter().enumerate() {
        if i < policy.keep_last {
            reasons
                .entry(&l.id)
                .or_default()
                .push(format!("last {} {kind}", policy.keep_last));
        }
    }
    let buckets: [(usize, &str, Bucket); 3] = [
        (policy.keep_daily, "daily", |t| {
            t.format("%Y-%m-%d").to_string()
        }),
        (policy.keep_weekly, "weekly", |t| {
            format!("{}-W{:02}", t.iso_week().year(), t.iso_week().week())
        }),
        (policy.keep_monthly, "monthly", |t| {
            t.format("%Y-%m").to_string()
        }),
    ];
    for (n, name, bucket) in buckets {
        let mut seen = BTreeSet::new();
        for (l, at) in complete {
            if seen.len() >= n {
                break;
            }
            let b = bucket(at);
            if seen.insert(b.clone()) {
                reasons
                    .entry(&l.id)
                    .or_default()
                    .push(format!("{name} {kind} {b}"));
            }
        }
    }
    if let Some((newest, _)) = complete.first() {
        reasons
            .entry(&newest.id)
            .or_default()
            .push(format!("newest complete {kind} backup (always kept)"));
    }
}

/// The start time an id encodes.
fn id_time(id: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(id.get(..16)?, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Build the full plan against the repository.
pub async fn make_plan(
    store: &dyn WriteStore,
    policy: Policy,
    grace: Duration,
) -> anyhow::Result<Plan> {
    if policy.is_empty() {
        return Err(exit::usage(
            "give a retention policy (--keep-last, --keep-daily, --keep-weekly, --keep-monthly); prune never guesses one",
        ));
    }
    let listings = crate::repository::backups::list(store).await?;
    let grace_c = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::hours(24));
    let backups = plan(&listings, policy, Utc::now(), grace_c);
    let cutoff = SystemTime::now() - grace;
    let stale: Vec<Incomplete> = store
        .incomplete_uploads()
        .await?
        .into_iter()
        .filter(|u| u.started.is_none_or(|t| t < cutoff))
        .collect();
    let wal = wal_plan(store, &listings, &backups).await?;
    Ok(Plan {
        backups,
        wal,
        stale_uploads: stale.iter().map(|u| u.key.clone()).collect(),
        stale,
    })
}

/// The WAL the oldest physical backup the plan keeps does not need.
async fn wal_plan(
    store: &dyn WriteStore,
    listings: &[Listing],
    decisions: &[Decision],
) -> anyhow::Result<Option<WalPlan>> {
    let kept: BTreeSet<&str> = decisions
        .iter()
        .filter(|d| d.keep)
        .map(|d| d.id.as_str())
        .collect();
    // Only believed manifests say which WAL is needed: an untrusted one is
    // kept, but it must not move the WAL window (nor feed its arithmetic).
    let physical: Vec<_> = listings
        .iter()
        .filter_map(|l| l.trusted())
        .filter(|m| m.is_physical() && kept.contains(m.id.as_str()))
        .filter_map(|m| m.wal.as_ref().map(|w| (m, w)))
        .collect();
    let Some(&(m, w)) = physical.iter().min_by_key(|(m, _)| m.snapshot_at) else {
        return Ok(None);
    };
    let archived: Vec<crate::backup::wal::Archived> = store
        .list(crate::backup::wal::PREFIX)
        .await?
        .into_iter()
        .filter_map(|o| crate::backup::wal::parse_key(&o.key, o.size))
        .collect();
    // A file goes only when no kept physical backup needs it.
    let starts: Vec<(u32, &str)> = physical
        .iter()
        .map(|(_, w)| (w.timeline, w.start_segment.as_str()))
        .collect();
    let expired = crate::backup::wal::before(&archived, &starts, w.segment_size);
    Ok(Some(WalPlan {
        from_backup: m.id.clone(),
        from_segment: w.start_segment.clone(),
        window_from: m.snapshot_at,
        expired: expired.len(),
        expired_bytes: expired.iter().map(|a| a.stored_bytes).sum(),
        keys: expired.iter().map(|a| a.key.clone()).collect(),
    }))
}

/// Carry the plan out. A backup loses its manifest first, so that an
/// interrupted prune leaves an incomplete backup, never a broken complete one.
/// Delete what the plan says, one whole backup at a time, manifest first.
/// Once `stop` is cancelled (SIGTERM), the backup being deleted is finished
/// and the rest left for the next run.
pub async fn apply(
    store: &dyn WriteStore,
    plan: &Plan,
    stop: &CancellationToken,
) -> anyhow::Result<(usize, usize)> {
    let mut deleted = 0;
    for d in plan.backups.iter().filter(|d| !d.keep) {
        if stop.is_cancelled() {
            return Err(exit::interrupted(format!(
                "prune stopped by signal after {deleted} backup(s); the rest is left for the next run"
            )));
        }
        let prefix = format!("{}{}/", catalog::PREFIX, d.id);
        let mut objects: Vec<String> = store
            .list(&prefix)
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        objects.sort_by_key(|k| !k.ends_with(catalog::MANIFEST));
        for key in objects {
            store.delete(&key).await?;
        }
        deleted += 1;
        tracing::info!(id = %d.id, "pruned");
    }
    if let Some(wal) = &plan.wal {
        for key in &wal.keys {
            if stop.is_cancelled() {
                return Err(exit::interrupted(format!(
                    "prune stopped by signal after {deleted} backup(s), in the WAL archive; the rest is left for the next run"
                )));
            }
            store.delete(key).await?;
        }
        if !wal.keys.is_empty() {
            tracing::info!(files = wal.keys.len(), before = %wal.from_segment, "pruned WAL");
        }
    }
    for u in &plan.stale {
        if stop.is_cancelled() {
            return Err(exit::interrupted(format!(
                "prune stopped by signal after {deleted} backup(s); stale uploads are left for the next run"
            )));
        }
        store.abort_incomplete(u).await?;
    }
    Ok((deleted, plan.stale.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::catalog::Manifest;

    fn listing(at: &str, complete: bool) -> Listing {
        let t: DateTime<Utc> = at.parse().unwrap();
        let id = crate::repository::catalog::new_id(t);
        let manifest = complete.then(|| Manifest {
            format: 1,
            id: id.clone(),
            kind: "logical".into(),
            database: "db".into(),
            server_version: "15".into(),
            stockops_version: "0".into(),
            started_at: t,
            snapshot_at: t,
            finished_at: t,
            recipients: vec![],
            compression: String::new(),
            objects: vec![],
            wal: None,
        });
        Listing {
            id,
            complete,
            objects: 1,
            stored_bytes: 1,
            manifest,
            untrusted: None,
            damaged: Vec::new(),
        }
    }

    fn physical(at: &str) -> Listing {
        let mut l = listing(at, true);
        l.manifest.as_mut().unwrap().kind = crate::repository::catalog::PHYSICAL.into();
        l
    }

    fn on_timeline(at: &str, timeline: u32, start: u64) -> Listing {
        let mut l = physical(at);
        let segment = crate::backup::wal::segment_name(
            timeline,
            start,
            crate::backup::wal::DEFAULT_SEGMENT_SIZE,
        );
        l.manifest.as_mut().unwrap().wal = Some(crate::repository::catalog::WalRange {
            timeline,
            start_lsn: String::new(),
            stop_lsn: String::new(),
            start_segment: segment.clone(),
            stop_segment: segment,
            segment_size: crate::backup::wal::DEFAULT_SEGMENT_SIZE,
            includes_wal: true,
        });
        l
    }

    #[tokio::test]
    async fn a_wal_file_goes_only_when_no_kept_backup_needs_it() {
        let scratch =
            crate::private_file::PrivateDir::new_in(&std::env::temp_dir(), "stockops-prune-wal")
                .unwrap();
        let store = crate::repository::storage::file::FileStore::new(scratch.path().join("repo"));
        let seg = crate::backup::wal::DEFAULT_SEGMENT_SIZE;
        let sha = "ab".repeat(32);
        for (tl, n) in [
            (1, 5),
            (1, 6),
            (1, 7),
            (1, 8),
            (1, 12),
            (2, 14),
            (2, 16),
            (2, 17),
        ] {
            let name = crate::backup::wal::segment_name(tl, n, seg);
            store
                .put(&format!("wal/{tl:08X}/{name}.{sha}.zst.age"), vec![0])
                .await
                .unwrap();
        }
        // The older backup (by time) starts on timeline 2 at 0x10; a newer
        // one, on timeline 1, at 0x08: timeline 1's files from 0x08 stay.
        let listings = vec![
            on_timeline("2026-03-30T01:00:00Z", 2, 0x10),
            on_timeline("2026-03-31T01:00:00Z", 1, 0x08),
        ];
        let decisions: Vec<Decision> = listings
            .iter()
            .map(|l| Decision {
                id: l.id.clone(),
                snapshot_at: None,
                keep: true,
                reasons: vec![],
            })
            .collect();
        let plan = wal_plan(&store, &listings, &decisions)
            .await
            .unwrap()
            .unwrap();
        let mut gone: Vec<&str> = plan
            .keys
            .iter()
            .map(|k| &k["wal/00000001/".len()..][..24])
            .collect();
        gone.sort();
        assert_eq!(
            gone,
            [
                "000000010000000000000005",
                "000000010000000000000006",
                "000000010000000000000007"
            ]
        );
    }

    #[test]
    fn each_kind_has_the_policy_to_itself() {
        // Logical backups every hour, physical ones once a day: "last 2"
        // keeps two of each, never the physical ones out of the window.
        let mut listings = vec![
            physical("2026-03-30T01:00:00Z"),
            physical("2026-03-31T01:00:00Z"),
        ];
        for h in 2..10 {
            listings.push(listing(&format!("2026-03-31T{h:02}:00:00Z"), true));
        }
        let policy = Policy {
            keep_last: 2,
            ..Policy::default()
        };
        let d = plan(
            &listings,
            policy,
            "2026-04-01T00:00:00Z".parse().unwrap(),
            chrono::Duration::hours(1),
        );
        let k = kept(&d);
        assert_eq!(
            k,
            vec![
                "2026-03-30 01",
                "2026-03-31 01",
                "2026-03-31 08",
                "2026-03-31 09"
            ]
        );
        let newest_physical = d
            .iter()
            .find(|x| x.snapshot_at == Some("2026-03-31T01:00:00Z".parse().unwrap()))
            .unwrap();
        assert!(
            newest_physical
                .reasons
                .contains(&"newest complete physical backup (always kept)".to_string()),
            "{:?}",
            newest_physical.reasons
        );
    }

    fn kept(d: &[Decision]) -> Vec<String> {
        let mut v: Vec<String> = d
            .iter()
            .filter(|d| d.keep)
            .filter_map(|d| d.snapshot_at)
            .map(|t| t.format("%Y-%m-%d %H").to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_exactly_what_the_policy_says() {
        // Two backups a day, 02:00 and 14:00, from 2026-01-01 to 2026-03-31.
        let mut all = Vec::new();
        let mut day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        while day <= chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap() {
            for h in [2, 14] {
                all.push(listing(&format!("{day}T{h:02}:00:00Z"), true));
            }
            day = day.succ_opt().unwrap();
        }
        let now: DateTime<Utc> = "2026-04-01T00:00:00Z".parse().unwrap();
        let policy = Policy {
            keep_last: 3,
            keep_daily: 4,
            keep_weekly: 3,
            keep_monthly: 3,
        };
        let d = plan(&all, policy, now, chrono::Duration::hours(24));
        assert_eq!(
            kept(&d),
            vec![
                "2026-01-31 14", // monthly 2026-01
                "2026-02-28 14", // monthly 2026-02
                "2026-03-22 14", // weekly 2026-W12
                "2026-03-28 14", // daily
                "2026-03-29 14", // daily, weekly 2026-W13
                "2026-03-30 14", // daily
                "2026-03-31 02", // last 3
                "2026-03-31 14", // last 3, daily, weekly 2026-W14, monthly 2026-03, newest
            ]
        );
        let newest = d
            .iter()
            .find(|x| {
                x.snapshot_at.map(|t| t.to_rfc3339()) == Some("2026-03-31T14:00:00+00:00".into())
            })
            .unwrap();
        assert!(newest.reasons.iter().any(|r| r.contains("newest")));
        assert!(newest
            .reasons
            .iter()
            .any(|r| r == "monthly logical 2026-03"));
    }

    #[test]
    fn the_newest_complete_backup_survives_any_policy_and_incomplete_ones_wait() {
        let all = vec![
            listing("2026-01-01T00:00:00Z", true),
            listing("2026-01-02T00:00:00Z", true),
            listing("2026-01-02T06:00:00Z", false),
            listing("2026-01-03T23:30:00Z", false),
        ];
        let now: DateTime<Utc> = "2026-01-04T00:00:00Z".parse().unwrap();
        let d = plan(
            &all,
            Policy {
                keep_monthly: 0,
                keep_daily: 0,
                keep_weekly: 0,
                keep_last: 0,
            },
            now,
            chrono::Duration::hours(24),
        );
        let keep: Vec<bool> = d.iter().map(|x| x.keep).collect();
        // Sorted newest id first: recent incomplete (kept), old incomplete (deleted), newest complete (kept), oldest.
        assert_eq!(keep, vec![true, false, true, false]);
    }

    #[test]
    fn a_forged_manifest_neither_takes_the_newest_place_nor_goes() {
        let mut forged = listing("2099-01-01T00:00:00Z", true);
        forged.untrusted = Some("backup X is not trusted: in the future".into());
        let all = vec![
            listing("2026-01-01T00:00:00Z", true),
            listing("2026-01-02T00:00:00Z", true),
            forged,
        ];
        let now: DateTime<Utc> = "2026-01-04T00:00:00Z".parse().unwrap();
        let policy = Policy {
            keep_monthly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_last: 1,
        };
        let d = plan(&all, policy, now, chrono::Duration::hours(24));
        let by_id = |id: &str| d.iter().find(|x| x.id == id).unwrap();
        assert!(by_id(&all[1].id).keep, "the real newest is kept: {d:?}");
        assert!(!by_id(&all[0].id).keep, "{d:?}");
        let f = by_id(&all[2].id);
        assert!(f.keep && f.reasons[0].contains("not trusted"), "{d:?}");
    }
}
