//! Reading the repository: which backups exist, and whether one is intact.
//! Everything here takes a [`ReadStore`]: it cannot delete or change a backup.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::exit;
use crate::pipeline::crypto::Identities;
use crate::pipeline::{self, Digest};
use crate::repository::catalog::{self, Manifest, Metadata};
use crate::repository::storage::{ReadStore, StoreError};

/// One backup directory in the repository.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub id: String,
    /// A manifest exists: the backup is complete.
    pub complete: bool,
    pub objects: usize,
    pub stored_bytes: u64,
    pub manifest: Option<Manifest>,
    /// Why the manifest cannot be believed (it names another backup, points
    /// outside its directory, or claims a time the store contradicts). Such
    /// a backup is never `latest`, never counts for retention, and is
    /// refused by id. `None`: nothing found against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
    /// Declared objects missing from the store or of another size (found
    /// from the listing alone; `verify` checks the bytes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<String>,
}

impl Listing {
    /// Complete and believable: a candidate for `latest` and for retention.
    pub fn trusted(&self) -> Option<&Manifest> {
        self.manifest.as_ref().filter(|_| self.untrusted.is_none())
    }
}

/// What a backup directory holds, from one listing of the store.
#[derive(Default)]
struct Directory {
    sizes: BTreeMap<String, u64>,
    manifest_written: Option<std::time::SystemTime>,
    has_manifest: bool,
}

/// How far ahead of the store's clock a manifest's times may be: clocks of
/// the database, the backup host and the store differ a little.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Whether a manifest can be believed, from facts its writer does not
/// control: the directory it sits in, the store's own time of writing it,
/// and now. `None` when nothing contradicts it.
pub fn distrust(
    m: &Manifest,
    dir_id: &str,
    written: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    if m.id != dir_id {
        return Some(format!("its manifest names backup {:?}", m.id));
    }
    if let Err(e) = m.validate() {
        return Some(e);
    }
    let claimed = m.snapshot_at.max(m.finished_at).max(m.started_at);
    if claimed > now + CLOCK_SKEW {
        return Some(format!(
            "its manifest claims {claimed}, which is in the future"
        ));
    }
    if let Some(w) = written {
        if claimed > w + CLOCK_SKEW {
            return Some(format!(
                "its manifest claims {claimed}, but the store wrote it at {w}"
            ));
        }
    }
    None
}

/// Every backup id in the repository, oldest first, complete or not.
pub async fn list(store: &dyn ReadStore) -> anyhow::Result<Vec<Listing>> {
    let mut dirs: BTreeMap<String, Directory> = BTreeMap::new();
    for o in store.list(catalog::PREFIX).await? {
        let rest = &o.key[catalog::PREFIX.len()..];
        if let Some((id, name)) = rest.split_once('/') {
            let d = dirs.entry(id.to_string()).or_default();
            d.sizes.insert(o.key.clone(), o.size);
            if name == catalog::MANIFEST {
                d.has_manifest = true;
                d.manifest_written = o.modified;
            }
        }
    }
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (id, d) in dirs {
        let manifest = if d.has_manifest {
            let key = catalog::key(&id, catalog::MANIFEST);
            let bytes = store.get(&key).await?;
            Some(parse_manifest(&key, &bytes).map_err(|e| format!("{e:#}")))
        } else {
            None
        };
        let (manifest, untrusted) = match manifest {
            Some(Ok(m)) => {
                let why = distrust(&m, &id, d.manifest_written.map(Into::into), now);
                (Some(m), why)
            }
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let damaged = manifest
            .as_ref()
            .map(|m| {
                m.objects
                    .iter()
                    .filter_map(|o| match d.sizes.get(&o.key) {
                        None => Some(format!("{} is missing", o.key)),
                        Some(&n) if n != o.stored.bytes => Some(format!(
                            "{} holds {n} bytes, the manifest says {}",
                            o.key, o.stored.bytes
                        )),
                        Some(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Listing {
            complete: manifest.is_some(),
            objects: d.sizes.len(),
            stored_bytes: d.sizes.values().sum(),
            manifest,
            untrusted: untrusted.map(|why| format!("backup {id} is not trusted: {why}")),
            damaged,
            id,
        });
    }
    out.sort_by(|a, b| {
        let ta = a.manifest.as_ref().map(|m| m.snapshot_at);
        let tb = b.manifest.as_ref().map(|m| m.snapshot_at);
        ta.cmp(&tb).then(a.id.cmp(&b.id))
    });
    Ok(out)
}

/// A backup's manifest.
pub async fn manifest(store: &dyn ReadStore, id: &str) -> anyhow::Result<Manifest> {
    let key = catalog::key(id, catalog::MANIFEST);
    let bytes = match store.get(&key).await {
        Ok(b) => b,
        Err(StoreError::NotFound(_)) => {
            return Err(exit::Coded::new(
                exit::FAILURE,
                format!(
                    "backup {id} has no manifest in {}: it is incomplete or does not exist",
                    store.describe()
                ),
            )
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    parse_manifest(&key, &bytes)
}

/// Parse a manifest read from the store (untrusted bytes).
fn parse_manifest(key: &str, bytes: &[u8]) -> anyhow::Result<Manifest> {
    let m: Manifest =
        serde_json::from_slice(bytes).with_context(|| format!("{key} is not a valid manifest"))?;
    if m.format != catalog::FORMAT {
        bail!(
            "{key} has format {}, this stockops reads format {}",
            m.format,
            catalog::FORMAT
        );
    }
    Ok(m)
}

/// `ID` or `latest` (the complete backup with the newest snapshot).
pub async fn resolve(store: &dyn ReadStore, id: &str) -> anyhow::Result<Manifest> {
    if id == "latest" {
        let all = list(store).await?;
        return all
            .into_iter()
            .rev()
            .find_map(|l| l.trusted().cloned())
            .ok_or_else(|| {
                exit::Coded::new(
                    exit::FAILURE,
                    format!("no complete backup in {}", store.describe()),
                )
                .into()
            });
    }
    if !catalog::is_id(id) {
        return Err(exit::usage(format!(
            "{id:?} is not a backup id (YYYYMMDDTHHMMSSZ-xxxx) nor `latest`"
        )));
    }
    believed(store, id).await
}

/// A backup's manifest, named by id, refused when the store contradicts it.
async fn believed(store: &dyn ReadStore, id: &str) -> anyhow::Result<Manifest> {
    let m = manifest(store, id).await?;
    let written = store
        .head(&catalog::key(id, catalog::MANIFEST))
        .await?
        .and_then(|o| o.modified)
        .map(Into::into);
    if let Some(why) = distrust(&m, id, written, chrono::Utc::now()) {
        return Err(exit::Coded::new(
            exit::FAILURE,
            format!(
                "backup {id} is not trusted: {why}; nothing was read from it \
                 (someone with write access to {} may have forged it: see runbooks/corrupted-backup.md)",
                store.describe()
            ),
        )
        .into());
    }
    Ok(m)
}

/// `ID` or `latest` of one kind (`logical` or `physical`): `latest` is the
/// newest complete backup of that kind; an id of the other kind is refused,
/// saying what to do.
pub async fn resolve_kind(store: &dyn ReadStore, id: &str, kind: &str) -> anyhow::Result<Manifest> {
    let m = if id == "latest" {
        list(store)
            .await?
            .into_iter()
            .rev()
            .filter_map(|l| l.trusted().cloned())
            .find(|m| m.kind == kind)
            .ok_or_else(|| {
                exit::Coded::new(
                    exit::FAILURE,
                    format!("no complete {kind} backup in {}", store.describe()),
                )
            })?
    } else {
        resolve(store, id).await?
    };
    if m.kind != kind {
        let message = match m.require_logical() {
            Err(physical) => physical,
            Ok(()) => format!(
                "backup {} is a logical backup (pg_dump); this needs a physical one (`stockops backup --physical`)",
                m.id
            ),
        };
        return Err(exit::Coded::new(exit::FAILURE, message).into());
    }
    Ok(m)
}

/// What verification found, object by object.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub id: String,
    /// Decrypted and checked the plaintext too.
    pub deep: bool,
    pub checks: Vec<Check>,
    pub tables: Option<usize>,
    pub toc_entries: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub object: String,
    pub ok: bool,
    pub detail: String,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Check every object's stored size and SHA-256; with identities, also
/// decrypt, decompress, compare the plaintext digests and list the archive.
pub async fn verify(
    store: &dyn ReadStore,
    m: &Manifest,
    identities: Option<&Identities>,
) -> anyhow::Result<Verification> {
    let mut checks = Vec::new();
    for o in &m.objects {
        checks.push(check_stored(store, &o.name, &o.key, &o.stored).await);
    }
    let mut v = Verification {
        id: m.id.clone(),
        deep: identities.is_some(),
        checks,
        tables: None,
        toc_entries: None,
    };
    let Some(ids) = identities else {
        return Ok(v);
    };
    if !v.ok() {
        return Ok(v);
    }
    if m.is_physical() {
        return verify_physical(store, m, ids, v).await;
    }
    let meta = metadata(store, m, ids).await?;
    v.tables = Some(meta.tables.len());
    let globals = m
        .object("globals")
        .context("the manifest lists no globals object")?;
    let (plain, _) = open_object(store, &globals.key, ids, io::sink()).await?;
    v.checks.push(compare(
        "globals (plaintext)",
        &plain.plain,
        &meta.globals.plain,
    ));
    if let (Some(roles), Some(want)) = (m.object("roles"), &meta.roles) {
        let (plain, _) = open_object(store, &roles.key, ids, io::sink()).await?;
        v.checks
            .push(compare("roles (plaintext)", &plain.plain, &want.plain));
    }
    let data = m
        .object("data")
        .context("the manifest lists no data object")?;
    let (listing, digests) = list_archive(store, &data.key, ids, m.server_major()).await?;
    v.checks.push(compare(
        "data (plaintext)",
        &digests.plain,
        &meta.data.plain,
    ));
    v.checks.push(compare(
        "data (compressed)",
        &digests.compressed,
        &meta.data.compressed,
    ));
    match listing {
        Ok(entries) => {
            v.toc_entries = Some(entries);
            v.checks.push(Check {
                object: "data (archive)".into(),
                ok: entries > 0,
                detail: format!("pg_restore lists {entries} entries"),
            });
        }
        Err(e) => v.checks.push(Check {
            object: "data (archive)".into(),
            ok: false,
            detail: e,
        }),
    }
    Ok(v)
}

/// A physical backup, deep: decrypt the base backup through `tar --list`,
/// compare the plaintext and compressed digests with the metadata's.
async fn verify_physical(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    mut v: Verification,
) -> anyhow::Result<Verification> {
    let meta = physical_metadata(store, m, ids).await?;
    let base = m
        .object("base")
        .context("the manifest lists no base object")?;
    let mut child = Command::new("tar")
        .args(["--list", "--file=-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tar (to list the base backup)")?;
    let stdin = child.stdin.take().expect("piped");
    // tar lists as it reads: drain its output meanwhile, or both sides block.
    let mut stdout = child.stdout.take().expect("piped");
    let listed = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = io::Read::read_to_end(&mut stdout, &mut all);
        all
    });
    let (digests, feed) = open_object(store, &base.key, ids, Feed { inner: Some(stdin) })
        .await
        .map_err(|e| no_match(e, m, ids))?;
    drop(feed);
    let mut out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    out.stdout = listed.join().unwrap_or_default();
    v.checks.push(compare(
        "base (plaintext)",
        &digests.plain,
        &meta.base.plain,
    ));
    v.checks.push(compare(
        "base (compressed)",
        &digests.compressed,
        &meta.base.compressed,
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let entries = text.lines().count();
    let has_label = text.lines().any(|l| l == "backup_label");
    v.toc_entries = Some(entries);
    v.checks.push(Check {
        object: "base (archive)".into(),
        ok: out.status.success() && has_label,
        detail: if out.status.success() {
            format!(
                "tar lists {entries} entries{}",
                if has_label {
                    ", backup_label among them"
                } else {
                    ", and no backup_label"
                }
            )
        } else {
            format!(
                "tar --list failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        },
    });
    Ok(v)
}

/// The decrypted metadata of a physical backup.
pub async fn physical_metadata(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
) -> anyhow::Result<catalog::PhysicalMetadata> {
    let o = m
        .object("metadata")
        .context("the manifest lists no metadata object")?;
    let (_, bytes) = open_object(store, &o.key, ids, Vec::new())
        .await
        .map_err(|e| no_match(e, m, ids))?;
    serde_json::from_slice(&bytes).context("the backup's metadata is not valid JSON")
}

fn compare(object: &str, got: &Digest, want: &Digest) -> Check {
    let ok = got == want;
    let detail = if ok {
        format!("{} bytes, sha256 {}", got.bytes, &got.sha256[..16])
    } else {
        format!(
            "{} bytes sha256 {} where the backup recorded {} bytes sha256 {}",
            got.bytes, got.sha256, want.bytes, want.sha256
        )
    };
    Check {
        object: object.into(),
        ok,
        detail,
    }
}

async fn check_stored(store: &dyn ReadStore, name: &str, key: &str, want: &Digest) -> Check {
    let fail = |detail: String| Check {
        object: name.to_string(),
        ok: false,
        detail,
    };
    match store.head(key).await {
        Ok(None) => return fail(format!("{key} is missing")),
        Err(e) => return fail(format!("{key}: {e}")),
        Ok(Some(info)) if info.size != want.bytes => {
            return fail(format!(
                "{key} holds {} bytes, the manifest records {}",
                info.size, want.bytes
            ))
        }
        Ok(Some(_)) => {}
    }
    let reader = match store.open(key).await {
        Ok(r) => r,
        Err(e) => return fail(format!("{key}: {e}")),
    };
    let got =
        tokio::task::spawn_blocking(move || pipeline::digest(SyncIoBridge::new(reader))).await;
    match got {
        Ok(Ok(d)) => compare(name, &d, want),
        Ok(Err(e)) => fail(format!("reading {key}: {e}")),
        Err(e) => fail(format!("reading {key}: {e}")),
    }
}

/// Decrypt an object into `out`; the error names the recipients on no match.
async fn open_object<W: Write + Send + 'static>(
    store: &dyn ReadStore,
    key: &str,
    ids: &Identities,
    out: W,
) -> anyhow::Result<(pipeline::Digests, W)> {
    let reader = store.open(key).await?;
    let ids = ids.clone();
    let key2 = key.to_string();
    tokio::task::spawn_blocking(move || {
        let (w, d) = pipeline::open(SyncIoBridge::new(reader), out, &ids)
            .map_err(|e| anyhow::anyhow!("{key2}: {e}"))?;
        anyhow::Ok((d, w))
    })
    .await?
}

/// The decrypted metadata of a backup.
pub async fn metadata(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
) -> anyhow::Result<Metadata> {
    let o = m
        .object("metadata")
        .context("the manifest lists no metadata object")?;
    let (_, bytes) = open_object(store, &o.key, ids, Vec::new())
        .await
        .map_err(|e| no_match(e, m, ids))?;
    serde_json::from_slice(&bytes).context("the backup's metadata is not valid JSON")
}

/// The decrypted, validated roles of a backup (`None`: taken before roles
/// were stored as data). The stored bytes must match the manifest.
pub async fn roles(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
) -> anyhow::Result<Option<crate::backup::globals::Globals>> {
    let Some(o) = m.object("roles") else {
        return Ok(None);
    };
    let (digests, json) = open_object(store, &o.key, ids, Vec::new())
        .await
        .map_err(|e| no_match(e, m, ids))?;
    if digests.stored != o.stored {
        bail!(
            "backup {}: the roles object does not match its manifest",
            m.id
        );
    }
    crate::backup::globals::Globals::parse(&json)
        .with_context(|| format!("backup {}: the roles object", m.id))
        .map(Some)
}

/// Turn age's "no matching keys" into a message naming both sides.
pub fn no_match(e: anyhow::Error, m: &Manifest, ids: &Identities) -> anyhow::Error {
    if e.to_string().contains("No matching keys") || e.to_string().contains("no matching keys") {
        return exit::Coded::new(
            exit::FAILURE,
            format!(
                "no identity matches the recipients of backup {}: it was encrypted to {}, the identity file holds {}",
                m.id,
                m.recipients.join(", "),
                ids.public().join(", ")
            ),
        )
        .into();
    }
    e
}

/// A writer that feeds a child until it stops reading, then discards.
struct Feed<W> {
    inner: Option<W>,
}

impl<W: Write> Write for Feed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(w) = self.inner.as_mut() {
            match w.write_all(buf) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.inner = None,
                Err(e) => return Err(e),
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypt the data object into `pg_restore -l`; returns its entry count (or
/// its complaint) and the digests of the whole stream.
async fn list_archive(
    store: &dyn ReadStore,
    key: &str,
    ids: &Identities,
    major: u32,
) -> anyhow::Result<(Result<usize, String>, pipeline::Digests)> {
    let mut child = Command::new(crate::backup::logical::tool(major, "pg_restore"))
        .arg("--list")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting pg_restore (is the PostgreSQL client installed?)")?;
    let stdin = child.stdin.take().expect("piped");
    let (digests, feed) = open_object(store, key, ids, Feed { inner: Some(stdin) }).await?;
    drop(feed);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let listing = if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter(|l| !l.trim_start().starts_with(';') && !l.trim().is_empty())
            .count())
    } else {
        Err(format!(
            "pg_restore --list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    };
    Ok((listing, digests))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::catalog::StoredObject;
    use chrono::{DateTime, Utc};

    fn manifest(at: &str) -> Manifest {
        let t: DateTime<Utc> = at.parse().unwrap();
        let id = catalog::new_id(t);
        Manifest {
            format: 1,
            id: id.clone(),
            kind: catalog::LOGICAL.into(),
            database: "inventory".into(),
            server_version: "15.8".into(),
            stockops_version: "0".into(),
            started_at: t,
            snapshot_at: t,
            finished_at: t,
            recipients: vec![],
            compression: "zstd level 3".into(),
            objects: vec![StoredObject {
                name: "data".into(),
                key: catalog::key(&id, catalog::DATA),
                stored: Digest {
                    bytes: 1,
                    sha256: "0".repeat(64),
                },
            }],
            wal: None,
        }
    }

    #[test]
    fn a_manifest_is_believed_only_where_the_store_agrees() {
        let now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().unwrap();
        let m = manifest("2026-06-01T11:00:00Z");
        let written = Some("2026-06-01T11:01:00Z".parse().unwrap());
        assert_eq!(distrust(&m, &m.id, written, now), None);
        // Claims a time after the store wrote it, or after now.
        let future = manifest("2026-06-02T00:00:00Z");
        assert!(distrust(&future, &future.id, written, now).is_some());
        assert!(distrust(&future, &future.id, None, now)
            .unwrap()
            .contains("future"));
        // Sits in another backup's directory.
        assert!(distrust(&m, "20260101T000000Z-0000", written, now).is_some());
        // Points at another backup's objects, or outside the repository.
        for key in [
            "backups/20260101T000000Z-0000/data.dump.zst.age",
            "../../etc/passwd",
            "wal/00000001/x",
        ] {
            let mut bad = m.clone();
            bad.objects[0].key = key.into();
            assert!(distrust(&bad, &bad.id, written, now).is_some(), "{key}");
        }
        let mut twice = m.clone();
        twice.objects.push(twice.objects[0].clone());
        assert!(distrust(&twice, &twice.id, written, now).is_some());
    }
}
