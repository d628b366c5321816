//! Continuous WAL archiving: what `archive_command = 'stockops wal push %p'`
//! and `restore_command = 'stockops wal fetch %f %p'` do, and the check that
//! the archive has no hole (`wal verify`).
//!
//! One WAL file (segment, `.history`, `.backup`, `.partial`) is one object:
//!
//! ```text
//! wal/<TIMELINE>/<FILE>.<SHA256>.zst.age
//! ```
//!
//! `SHA256` is the hex SHA-256 of the plaintext file. It sits in the key so
//! that a push can tell, without the private key (the archiving host holds
//! only recipients), whether what the archive holds under that name is the
//! very same file: PostgreSQL may re-run `archive_command` for a file it
//! already archived (a crash between the upload and its bookkeeping), which
//! must succeed, while a different file under the same name (two clusters on
//! one repository, a restored cluster archiving over its ancestor's timeline)
//! must be refused. Putting it in the key rather than in a second object
//! keeps one object the unit of atomicity: there is no moment where the data
//! and its digest disagree, nothing to leave behind half-written, and no
//! plaintext object for `doctor` to excuse. Whatever else could be learnt
//! from it — whether a guessed plaintext is the archived one — is moot for
//! 16 MiB of database pages; `.history` files hold only timeline switch
//! positions.
//!
//! Objects are written whole with the store's `put` (one PUT on S3, a
//! rename on files): a push that dies midway leaves no object.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::exit;
use crate::pipeline::crypto::{Identities, Recipients};
use crate::pipeline::{self, Compression};
use crate::private_file;
use crate::repository::storage::{ReadStore, StoreError, WriteStore};

pub const PREFIX: &str = "wal/";
const SUFFIX: &str = ".zst.age";
/// PostgreSQL's default WAL segment size (initdb --wal-segsize).
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// What kind of file PostgreSQL archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Segment,
    Partial,
    History,
    Backup,
}

/// A WAL file name PostgreSQL hands to archive and restore commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalName {
    pub name: String,
    pub timeline: u32,
    pub kind: Kind,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

impl WalName {
    /// `000000010000000000000003`, `00000002.history`,
    /// `000000010000000000000003.00000028.backup`, `...03.partial`; nothing else.
    pub fn parse(name: &str) -> Option<Self> {
        // Every shape is ASCII; checking first keeps the slices below on
        // character boundaries whatever a repository key holds.
        if !name.is_ascii() {
            return None;
        }
        let kind = if is_hex(name, 24) {
            Kind::Segment
        } else if name.len() == 32 && name.ends_with(".partial") && is_hex(&name[..24], 24) {
            Kind::Partial
        } else if name.len() == 16 && name.ends_with(".history") && is_hex(&name[..8], 8) {
            Kind::History
        } else if name.len() == 40
            && name.ends_with(".backup")
            && is_hex(&name[..24], 24)
            && name.as_bytes()[24] == b'.'
            && is_hex(&name[25..33], 8)
        {
            Kind::Backup
        } else {
            return None;
        };
        let timeline = u32::from_str_radix(&name[..8], 16).ok()?;
        Some(Self {
            name: name.to_string(),
            timeline,
            kind,
        })
    }

    /// Every object of this name starts with this key prefix.
    fn prefix(&self) -> String {
        format!("{PREFIX}{:08X}/{}.", self.timeline, self.name)
    }

    pub fn key(&self, sha256: &str) -> String {
        format!("{}{sha256}{SUFFIX}", self.prefix())
    }
}

/// One archived object, as its key describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archived {
    pub name: String,
    pub timeline: u32,
    pub kind: Kind,
    /// SHA-256 of the plaintext WAL file.
    pub sha256: String,
    pub key: String,
    pub stored_bytes: u64,
}

/// Read a key back; `None` for anything that is not an archived WAL file.
pub fn parse_key(key: &str, stored_bytes: u64) -> Option<Archived> {
    let rest = key.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (dir, file) = rest.split_once('/')?;
    let (name, sha) = file.rsplit_once('.')?;
    let wal = WalName::parse(name)?;
    let sha_ok = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !sha_ok || dir != format!("{:08X}", wal.timeline) {
        return None;
    }
    Some(Archived {
        name: wal.name,
        timeline: wal.timeline,
        kind: wal.kind,
        sha256: sha.to_string(),
        key: key.to_string(),
        stored_bytes,
    })
}

/// The objects archived under exactly this name (a prefix listing also
/// matches `<segment>.<offset>.backup`: those are filtered out).
async fn archived(store: &dyn ReadStore, wal: &WalName) -> anyhow::Result<Vec<Archived>> {
    Ok(store
        .list(&wal.prefix())
        .await?
        .into_iter()
        .filter_map(|o| parse_key(&o.key, o.size))
        .filter(|a| a.name == wal.name)
        .collect())
}

/// Segments per "xlogid" (the middle 8 hex digits of a segment name).
fn segments_per_id(segment_size: u64) -> u64 {
    0x1_0000_0000 / segment_size
}

/// A segment name's timeline and number.
pub fn segment_number(name: &str, segment_size: u64) -> Option<(u32, u64)> {
    if !is_hex(name, 24) {
        return None;
    }
    let tl = u32::from_str_radix(&name[..8], 16).ok()?;
    let id = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
    Some((tl, id * segments_per_id(segment_size) + seg))
}

pub fn segment_name(timeline: u32, number: u64, segment_size: u64) -> String {
    let per = segments_per_id(segment_size);
    format!("{timeline:08X}{:08X}{:08X}", number / per, number % per)
}

/// `16/B374D848` as a number: PostgreSQL's `pg_lsn` grammar, 1 to 8 hex
/// digits each side of the `/` and nothing else (`from_str_radix` alone
/// would take a sign, and more digits that shift into the other half).
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (hi, lo) = lsn.trim().split_once('/')?;
    let half = |x: &str| {
        let ok = (1..=8).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| u64::from_str_radix(x, 16).ok()).flatten()
    };
    Some((half(hi)? << 32) | half(lo)?)
}

/// The segment holding the byte at `lsn`.
pub fn lsn_segment(lsn: u64, timeline: u32, segment_size: u64) -> String {
    segment_name(timeline, lsn / segment_size, segment_size)
}

/// What a push did.
#[derive(Debug, Serialize)]
pub struct Pushed {
    pub name: String,
    pub key: String,
    /// The same file was archived before: nothing was written.
    pub already_archived: bool,
    pub plain_bytes: u64,
    pub stored_bytes: u64,
}

/// Archive one WAL file; with `ahead` above 0, and when the file asked for
/// is not archived yet, also up to that many of the files PostgreSQL has
/// marked ready beside it (`archive_status/*.ready`), at the same time. The
/// later calls for those find them archived and return at once, so on N+1
/// cores N+1 files go in the time of one. Only the file asked for decides the
/// outcome: a file pushed ahead that fails is pushed again when PostgreSQL
/// asks for it (its digest is compared, nothing is trusted but the repository).
pub async fn push(
    store: &dyn WriteStore,
    path: &Path,
    recipients: &Recipients,
    compression: Compression,
    ahead: usize,
) -> anyhow::Result<Pushed> {
    let needed = match check(store, path).await? {
        Checked::Archived(pushed) => return Ok(pushed),
        Checked::Needed(n) => n,
    };
    let others = if ahead > 0 {
        ready_beside(path, ahead)
    } else {
        vec![]
    };
    let rest = futures_util::future::join_all(
        others
            .iter()
            .map(|p| push_one(store, p, recipients, compression)),
    );
    let (first, rest) = tokio::join!(upload(store, needed, recipients, compression), rest);
    for (p, r) in others.iter().zip(rest) {
        match r {
            Ok(pushed) => tracing::debug!(name = %pushed.name, "pushed ahead"),
            Err(e) => tracing::warn!(file = %p.display(), error = %crate::exit::one_line(&e),
                                     "pushing ahead failed; it is pushed again when PostgreSQL asks for it"),
        }
    }
    first
}

/// The files PostgreSQL marked ready for archiving beside `path` that come
/// after it, oldest first (the archiver takes them in that order).
fn ready_beside(path: &Path, limit: usize) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else {
        return vec![];
    };
    let Ok(entries) = std::fs::read_dir(dir.join("archive_status")) else {
        return vec![];
    };
    let this = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_suffix(".ready")?.to_string();
            (n.as_str() > this && WalName::parse(&n).is_some()).then_some(n)
        })
        .collect();
    names.sort();
    names.truncate(limit);
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// A file the archive lacks, read and hashed.
struct Needed {
    wal: WalName,
    path: PathBuf,
    data: Vec<u8>,
    plain: pipeline::Digest,
}

enum Checked {
    Archived(Pushed),
    Needed(Needed),
}

/// One WAL file: its digest and the listing of what the archive holds under
/// its name, at once. Identical: done; different: refused; absent: to upload.
async fn check(store: &dyn WriteStore, path: &Path) -> anyhow::Result<Checked> {
    let wal = name_of(path)?;
    let data = tokio::fs::read(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let hashing = tokio::task::spawn_blocking(move || {
        let d = pipeline::digest(&data[..]);
        (data, d)
    });
    let (hashed, existing) = tokio::join!(hashing, archived(store, &wal));
    let (data, plain) = hashed.context("the hashing thread panicked")?;
    let plain = plain?;
    let existing = existing?;
    let sha = &plain.sha256;
    if let Some(same) = existing.iter().find(|a| &a.sha256 == sha) {
        tracing::debug!(name = %wal.name, key = %same.key, "already archived, identical: nothing to do");
        return Ok(Checked::Archived(Pushed {
            name: wal.name,
            key: same.key.clone(),
            already_archived: true,
            plain_bytes: plain.bytes,
            stored_bytes: same.stored_bytes,
        }));
    }
    if let Some(other) = existing.first() {
        bail!(exit::Coded::new(
            exit::FAILURE,
            format!(
                "{} is already archived in {} with different contents (sha256 {} there, {} here): \
                 two clusters, or a restored cluster, are archiving into one repository; nothing was written. \
                 Give each cluster its own repository (or prefix), or promote the restored one to a new timeline",
                wal.name,
                store.describe(),
                other.sha256,
                sha
            )
        ));
    }
    Ok(Checked::Needed(Needed {
        wal,
        path: path.to_path_buf(),
        data,
        plain,
    }))
}

/// Compress, encrypt and store a file the archive lacks, in one PUT.
async fn upload(
    store: &dyn WriteStore,
    n: Needed,
    recipients: &Recipients,
    compression: Compression,
) -> anyhow::Result<Pushed> {
    let Needed {
        wal,
        path,
        data,
        plain,
    } = n;
    let recipients = recipients.clone();
    let (bytes, digests) = tokio::task::spawn_blocking(move || {
        let out = Vec::with_capacity(data.len() / 2 + 1024);
        pipeline::seal(&data[..], out, &recipients, compression, |_| {})
    })
    .await
    .context("the compression thread panicked")?
    .with_context(|| format!("compressing and encrypting {}", wal.name))?;
    if digests.plain != plain {
        bail!("{} changed while it was being archived", path.display());
    }
    let key = wal.key(&plain.sha256);
    let stored = bytes.len() as u64;
    let info = store.put(&key, bytes).await?;
    if info.size != stored {
        bail!(
            "the repository holds {} bytes for {key}, {stored} were sent",
            info.size
        );
    }
    tracing::debug!(name = %wal.name, %key, plain = plain.bytes, stored, "archived");
    Ok(Pushed {
        name: wal.name,
        key,
        already_archived: false,
        plain_bytes: plain.bytes,
        stored_bytes: stored,
    })
}

/// Check, then upload if needed: one file, nothing ahead.
async fn push_one(
    store: &dyn WriteStore,
    path: &Path,
    recipients: &Recipients,
    compression: Compression,
) -> anyhow::Result<Pushed> {
    match check(store, path).await? {
        Checked::Archived(pushed) => Ok(pushed),
        Checked::Needed(n) => upload(store, n, recipients, compression).await,
    }
}

fn name_of(path: &Path) -> anyhow::Result<WalName> {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    WalName::parse(file).ok_or_else(|| {
        exit::usage(format!(
            "{} is not a WAL file name (24 hex digits, or .history, .backup, .partial): \
             archive_command must be 'stockops wal push %p'",
            path.display()
        ))
    })
}

/// What a fetch did.
#[derive(Debug, Serialize)]
pub struct Fetched {
    pub name: String,
    pub key: String,
    pub plain_bytes: u64,
}

/// The error of a WAL file the archive does not hold (exit code
/// [`exit::NOT_FOUND`]): PostgreSQL asks for files past the end of the
/// archive at the end of every recovery, so this is routine.
pub fn not_found(name: &str, store: &dyn ReadStore) -> anyhow::Error {
    exit::Coded::new(
        exit::NOT_FOUND,
        format!("{name} is not in the WAL archive {}", store.describe()),
    )
    .into()
}

/// Restore one WAL file to `dest`: decrypt, decompress, check the plaintext
/// against the digest in the key, write to a temporary file beside `dest`,
/// then rename, so PostgreSQL never sees a partial file. The temporary file
/// has a random name and is created `O_EXCL|O_NOFOLLOW` ([`private_file`]),
/// in `pg_wal`, the cluster's own 0700 directory: nobody can plant a name
/// there that redirects or blocks it.
pub async fn fetch(
    store: &dyn ReadStore,
    name: &str,
    dest: &Path,
    identities: &Identities,
) -> anyhow::Result<Fetched> {
    let wal = WalName::parse(name).ok_or_else(|| {
        exit::usage(format!(
            "{name:?} is not a WAL file name: restore_command must be 'stockops wal fetch %f %p'"
        ))
    })?;
    let found = archived(store, &wal).await?;
    let Some(first) = found.first() else {
        return Err(not_found(name, store));
    };
    if found.iter().any(|a| a.sha256 != first.sha256) {
        bail!(
            "{name} is archived {} times with different contents in {}: the archive mixes two clusters; \
             restore from a repository that holds one cluster's WAL (keys {})",
            found.len(),
            store.describe(),
            found.iter().map(|a| a.key.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let reader = match store.open(&first.key).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => return Err(not_found(name, store)),
        Err(e) => return Err(e.into()),
    };
    let temp = private_file::random_beside(dest, "stockops-fetch");
    let (ids, want, temp2, dest2) = (
        identities.clone(),
        first.sha256.clone(),
        temp.clone(),
        dest.to_path_buf(),
    );
    let written = tokio::task::spawn_blocking(move || {
        write_verified(SyncIoBridge::new(reader), &temp2, &dest2, &ids, &want)
    })
    .await
    .context("the decryption thread panicked")?;
    match written {
        Ok(plain_bytes) => Ok(Fetched {
            name: wal.name,
            key: first.key.clone(),
            plain_bytes,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e.context(format!("restoring {name} from {}", first.key)))
        }
    }
}

fn write_verified(
    input: impl std::io::Read,
    temp: &Path,
    dest: &Path,
    ids: &Identities,
    want_sha256: &str,
) -> anyhow::Result<u64> {
    let file =
        private_file::create_new(temp).with_context(|| format!("creating {}", temp.display()))?;
    let out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (mut out, digests) = pipeline::open(input, out, ids).map_err(|e| {
        if e.to_string().to_lowercase().contains("no matching keys") {
            anyhow::anyhow!(
                "no identity matches its recipients: the identity file holds {}",
                ids.public().join(", ")
            )
        } else {
            anyhow::anyhow!("{e} (the object is corrupt or truncated)")
        }
    })?;
    if digests.plain.sha256 != want_sha256 {
        bail!(
            "the plaintext's sha256 is {}, the archive recorded {want_sha256}",
            digests.plain.sha256
        );
    }
    out.flush()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(temp, dest)
        .with_context(|| format!("renaming {} to {}", temp.display(), dest.display()))?;
    Ok(digests.plain.bytes)
}

/// The archived WAL files that none of the physical backups starting at
/// `starts` (timeline, first segment) can ever need: a physical backup (and
/// every later one) never needs segments, partial segments and backup history
/// files numbered below its start, on its timeline or an earlier one. With
/// backups on several timelines the oldest by time need not start lowest, so
/// each must agree. Timeline history files are always kept (they are tiny and
/// recovery reads them to follow timelines).
pub fn before<'a>(
    archived: &'a [Archived],
    starts: &[(u32, &str)],
    segment_size: u64,
) -> Vec<&'a Archived> {
    let Some(starts) = starts
        .iter()
        .map(|&(tl, s)| segment_number(s, segment_size).map(|(_, n)| (tl, n)))
        .collect::<Option<Vec<_>>>()
    else {
        return vec![];
    };
    archived
        .iter()
        .filter(|a| a.kind != Kind::History && !starts.is_empty())
        .filter(|a| {
            segment_number(&a.name[..24], segment_size).is_some_and(|(_, n)| {
                starts
                    .iter()
                    .all(|&(timeline, start)| a.timeline <= timeline && n < start)
            })
        })
        .collect()
}

/// A run of missing segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from: String,
    pub to: String,
    pub missing: u64,
}

/// One timeline's segments.
#[derive(Debug, Serialize)]
pub struct TimelineReport {
    pub timeline: String,
    /// Where the check starts: the backup's segment; on a later timeline than
    /// the backup's (or without a backup), the segment after the newest of the
    /// timeline below it when that comes before its oldest; else its oldest.
    pub from: String,
    /// The timeline below it whose end it must carry on from, if any.
    pub follows: Option<String>,
    pub newest: String,
    pub segments: usize,
    pub history: bool,
    pub gaps: Vec<Gap>,
}

/// What `wal verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub repository: String,
    pub segment_size: u64,
    pub from_backup: Option<String>,
    pub objects: usize,
    pub stored_bytes: u64,
    pub timelines: Vec<TimelineReport>,
    /// Names archived more than once with different contents.
    pub conflicts: Vec<String>,
    /// When the newest WAL object was stored, and how long ago (the store's
    /// modification times: a stopped archiver shows here, not as a gap).
    pub newest_archived_at: Option<chrono::DateTime<chrono::Utc>>,
    pub newest_age_seconds: Option<f64>,
    pub ok: bool,
}

/// Where a check starts: a physical backup's timeline and first needed segment.
#[derive(Debug, Clone)]
pub struct Start {
    pub backup: String,
    pub timeline: u32,
    pub segment: String,
}

/// List the archive per timeline and find the holes between the start (a
/// backup's first needed segment, else each timeline's oldest) and the newest.
pub async fn verify(
    store: &dyn ReadStore,
    start: Option<&Start>,
    segment_size: u64,
) -> anyhow::Result<Verification> {
    let mut newest_at = None;
    let all: Vec<Archived> = store
        .list(PREFIX)
        .await?
        .into_iter()
        .filter_map(|o| {
            let a = parse_key(&o.key, o.size)?;
            newest_at = newest_at.max(o.modified);
            Some(a)
        })
        .collect();
    let mut by_name: BTreeMap<&str, Vec<&Archived>> = BTreeMap::new();
    for a in &all {
        by_name.entry(&a.name).or_default().push(a);
    }
    let conflicts: Vec<String> = by_name
        .iter()
        .filter(|(_, v)| v.iter().any(|a| a.sha256 != v[0].sha256))
        .map(|(n, _)| n.to_string())
        .collect();
    let mut segments: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for a in all.iter().filter(|a| a.kind == Kind::Segment) {
        if let Some((tl, n)) = segment_number(&a.name, segment_size) {
            segments.entry(tl).or_default().push(n);
        }
    }
    let histories: Vec<u32> = all
        .iter()
        .filter(|a| a.kind == Kind::History)
        .map(|a| a.timeline)
        .collect();
    let from =
        start.and_then(|s| segment_number(&s.segment, segment_size).map(|(_, n)| (s.timeline, n)));
    let timelines = timeline_reports(segments, &histories, from, segment_size);
    let ok = conflicts.is_empty() && timelines.iter().all(|t| t.gaps.is_empty());
    Ok(Verification {
        repository: store.describe(),
        segment_size,
        from_backup: start.map(|s| s.backup.clone()),
        objects: all.len(),
        stored_bytes: all.iter().map(|a| a.stored_bytes).sum(),
        timelines,
        conflicts,
        newest_archived_at: newest_at.map(chrono::DateTime::<chrono::Utc>::from),
        newest_age_seconds: newest_at.map(|t| {
            std::time::SystemTime::now()
                .duration_since(t)
                .unwrap_or_default()
                .as_secs_f64()
        }),
        ok,
    })
}

/// Each timeline's check. A timeline's history file (encrypted, so not read
/// here) names where it left its parent; recovery to the latest timeline
/// follows them all. Without it, a timeline is taken to carry on from the
/// nearest one below it holding segments: when its oldest archived segment
/// comes after that one's newest plus one, the segments in between (on the
/// new timeline) are a gap recovery could not cross. The backup's own
/// timeline is checked from the backup's segment, and timelines below it as
/// they are.
fn timeline_reports(
    segments: BTreeMap<u32, Vec<u64>>,
    histories: &[u32],
    start: Option<(u32, u64)>,
    segment_size: u64,
) -> Vec<TimelineReport> {
    let mut out = Vec::new();
    // The newest segment of the nearest timeline below holding any.
    let mut below: Option<(u32, u64)> = None;
    for (tl, mut numbers) in segments {
        numbers.sort_unstable();
        numbers.dedup();
        let Some(&oldest) = numbers.first() else {
            continue;
        };
        let last = *numbers.last().unwrap_or(&oldest);
        let parent = below.replace((tl, last));
        let (first, follows) = match start {
            Some((stl, n)) if stl == tl => (Some(n), None),
            Some((stl, _)) if tl < stl => (None, None),
            _ => match parent {
                Some((ptl, pn)) if pn + 1 < oldest => (Some(pn + 1), Some(ptl)),
                Some((ptl, _)) => (None, Some(ptl)),
                None => (None, None),
            },
        };
        if let Some(f) = first {
            numbers.retain(|&n| n >= f);
        }
        let Some(&newest) = numbers.last() else {
            continue;
        };
        let first = first.unwrap_or(numbers[0]);
        out.push(TimelineReport {
            timeline: format!("{tl:08X}"),
            from: segment_name(tl, first, segment_size),
            follows: follows.map(|p| format!("{p:08X}")),
            newest: segment_name(tl, newest, segment_size),
            segments: numbers.len(),
            history: histories.contains(&tl),
            gaps: gaps(tl, first, &numbers, segment_size),
        });
    }
    out
}

/// The newest archived segment recovery can reach from `start`, on its
/// timeline or the latest one after it (none when nothing was archived after
/// it); an error naming the first hole, which recovery to the end of the
/// archive would silently stop at.
pub async fn continuous_after(
    store: &dyn ReadStore,
    start: &Start,
    segment_size: u64,
) -> anyhow::Result<Option<String>> {
    let v = verify(store, Some(start), segment_size).await?;
    let ahead: Vec<&TimelineReport> = v
        .timelines
        .iter()
        .filter(|t| u32::from_str_radix(&t.timeline, 16).is_ok_and(|tl| tl >= start.timeline))
        .collect();
    if let Some(g) = ahead.iter().find_map(|t| t.gaps.first()) {
        return Err(crate::exit::Coded::new(
            crate::exit::FAILURE,
            format!(
                "the WAL archive misses {} segment(s) from {} on after backup {}: recovery to its end would stop \
                 there; recover to a time or LSN before it (--to-time, --to-lsn), or from a newer backup",
                g.missing, g.from, start.backup
            ),
        )
        .into());
    }
    Ok(ahead.last().map(|t| t.newest.clone()))
}

/// The runs missing from `first` to the last of the sorted `numbers`.
fn gaps(tl: u32, first: u64, numbers: &[u64], segment_size: u64) -> Vec<Gap> {
    let mut out = Vec::new();
    let mut expected = first;
    for &n in numbers {
        if n > expected {
            out.push(Gap {
                from: segment_name(tl, expected, segment_size),
                to: segment_name(tl, n - 1, segment_size),
                missing: n - expected,
            });
        }
        expected = expected.max(n + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = DEFAULT_SEGMENT_SIZE;

    #[test]
    fn names_parse_and_nothing_else_does() {
        let s = WalName::parse("0000000100000000000000A3").unwrap();
        assert_eq!((s.timeline, s.kind), (1, Kind::Segment));
        assert_eq!(
            WalName::parse("00000002.history").unwrap().kind,
            Kind::History
        );
        let b = WalName::parse("000000010000000000000002.00000028.backup").unwrap();
        assert_eq!(b.kind, Kind::Backup);
        assert_eq!(
            WalName::parse("000000030000000000000002.partial")
                .unwrap()
                .timeline,
            3
        );
        for bad in [
            "",
            "RECOVERYXLOG",
            "0000000100000000000000a3",
            "0000000100000000000000A",
            "../00000001000000000000000A",
            "00000001.history.x",
            "000000010000000000000002.0000002.backup",
        ] {
            assert!(WalName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn keys_round_trip_and_the_prefix_does_not_confuse_backup_files() {
        let sha = "ab".repeat(32);
        let seg = WalName::parse("000000010000000000000002").unwrap();
        let key = seg.key(&sha);
        assert_eq!(
            key,
            format!("wal/00000001/000000010000000000000002.{sha}.zst.age")
        );
        let a = parse_key(&key, 10).unwrap();
        assert_eq!(
            (a.name.as_str(), a.sha256.as_str()),
            (seg.name.as_str(), sha.as_str())
        );
        let backup = WalName::parse("000000010000000000000002.00000028.backup").unwrap();
        let bkey = backup.key(&sha);
        assert!(
            bkey.starts_with(&seg.prefix()),
            "a prefix listing sees both"
        );
        assert_eq!(parse_key(&bkey, 1).unwrap().name, backup.name);
        assert!(parse_key("wal/00000002/000000010000000000000002.x.zst.age", 1).is_none());
        assert!(parse_key(
            &format!("wal/00000002/000000010000000000000002.{sha}.zst.age"),
            1
        )
        .is_none());
        assert!(parse_key("backups/x/manifest.json", 1).is_none());
    }

    #[test]
    fn segment_arithmetic_matches_postgres() {
        assert_eq!(
            segment_number("0000000100000001000000FF", SEG),
            Some((1, 511))
        );
        assert_eq!(segment_name(1, 512, SEG), "000000010000000200000000");
        let lsn = parse_lsn("0/3000028").unwrap();
        assert_eq!(lsn_segment(lsn, 1, SEG), "000000010000000000000003");
        assert_eq!(
            lsn_segment(parse_lsn("16/B374D848").unwrap(), 2, SEG),
            "0000000200000016000000B3"
        );
        // 1 GiB segments: 4 per xlogid.
        assert_eq!(segment_name(1, 5, 1 << 30), "000000010000000100000001");
    }

    #[test]
    fn a_name_with_a_multibyte_character_is_refused_not_a_panic() {
        // Found by fuzz/fuzz_targets/wal_name.rs: 40 bytes ending in
        // `.backup` with a character across byte 24 was sliced there.
        let name = "00000001000000000000000\u{c4}00000028.backup";
        assert_eq!(name.len(), 40);
        assert_eq!(WalName::parse(name), None);
        let key = format!("wal/00000001/{name}.{}.zst.age", "ab".repeat(32));
        assert_eq!(parse_key(&key, 1), None);
    }

    #[test]
    fn an_lsn_is_postgres_grammar_only() {
        assert_eq!(parse_lsn("FFFFFFFF/ffffffff"), Some(u64::MAX));
        assert_eq!(parse_lsn(" 0/0\n"), Some(0));
        // Found by fuzz/fuzz_targets/wal_name.rs: a low half of 14 digits
        // spilled into the high half, and signs were taken.
        for bad in [
            "16/B374D3c4d5a8",
            "100000000/0",
            "0/100000000",
            "+1/2",
            "1/-2",
            "/1",
            "1/",
            "1/2/3",
            "1 /2",
        ] {
            assert_eq!(parse_lsn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_comes_before_a_backup_can_go_and_history_stays() {
        let sha = "cd".repeat(32);
        let mk = |name: &str| parse_key(&WalName::parse(name).unwrap().key(&sha), 1).unwrap();
        let all = vec![
            mk("000000010000000000000003"),
            mk("000000010000000000000004.00000028.backup"),
            mk("000000010000000000000005"),
            mk("000000010000000000000006.partial"),
            mk("00000002.history"),
            mk("000000020000000000000004"),
            mk("000000020000000000000007"),
            mk("000000030000000000000001"),
        ];
        let gone: Vec<&str> = before(&all, &[(2, "000000020000000000000006")], SEG)
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            gone,
            vec![
                "000000010000000000000003",
                "000000010000000000000004.00000028.backup",
                "000000010000000000000005",
                "000000020000000000000004"
            ]
        );
    }

    #[test]
    fn gaps_are_runs() {
        assert!(gaps(1, 2, &[2, 3, 4], SEG).is_empty());
        let g = gaps(1, 1, &[2, 3, 6, 7, 10], SEG);
        assert_eq!(
            g.iter().map(|g| g.missing).collect::<Vec<_>>(),
            vec![1, 2, 2]
        );
        assert_eq!(g[1].from, "000000010000000000000004");
        assert_eq!(g[1].to, "000000010000000000000005");
    }

    fn reports(
        segments: &[(u32, &[u64])],
        start: Option<(u32, u64)>,
    ) -> Vec<(String, String, Option<String>, Vec<u64>)> {
        let map = segments
            .iter()
            .map(|(tl, ns)| (*tl, ns.to_vec()))
            .collect::<BTreeMap<_, _>>();
        timeline_reports(map, &[2], start, SEG)
            .into_iter()
            .map(|t| {
                let missing = t.gaps.iter().map(|g| g.missing).collect();
                (t.timeline, t.from, t.follows, missing)
            })
            .collect()
    }

    #[test]
    fn a_later_timeline_must_carry_on_from_the_one_below() {
        // Promoted in segment 5: timeline 2 starts there (timeline 1's own
        // segment 5 is archived as .partial, not counted).
        let joined = reports(&[(1, &[3, 4]), (2, &[5, 6, 7])], Some((1, 3)));
        assert_eq!(
            joined[1],
            (
                "00000002".into(),
                "000000020000000000000005".into(),
                Some("00000001".into()),
                vec![]
            )
        );
        // Timeline 2's first two segments never reached the archive.
        let holed = reports(&[(1, &[3, 4]), (2, &[7, 8])], Some((1, 3)));
        assert_eq!(holed[1].1, "000000020000000000000005");
        assert_eq!(holed[1].3, vec![2]);
        // A branch from an earlier point than timeline 1's end is no hole.
        let earlier = reports(&[(1, &[3, 4, 5, 6, 7, 8]), (2, &[5, 6])], None);
        assert!(earlier.iter().all(|t| t.3.is_empty()), "{earlier:?}");
        // Timelines below the backup's are checked as they are; its own from the backup on.
        let below = reports(&[(1, &[1, 4]), (2, &[6, 7, 9])], Some((2, 7)));
        assert_eq!(below[0].3, vec![2]);
        assert_eq!(below[1].1, "000000020000000000000007");
        assert_eq!(below[1].2, None);
        assert_eq!(below[1].3, vec![1]);
    }
}
