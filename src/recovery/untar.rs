//! Extracting an untrusted tar (a physical backup's base) into a new data
//! directory, as root, with an allow-list.
//!
//! The tar comes from the repository: whoever can write to the bucket
//! chooses every header in it. GNU tar run as root would create device
//! nodes and FIFOs, keep setuid bits and the archive's owners, and follow a
//! symlink written by an earlier member with a later one. Here each entry's
//! header goes through [`admit`], a pure function (fuzzable) that takes
//! only what PostgreSQL's base backups hold:
//!
//! - regular files and directories, at relative paths without `..`, whose
//!   mode is forced (files 0600, directories 0700: no setuid, setgid or
//!   sticky bit, no execute bit) and whose owner is not taken from the
//!   archive (the caller chowns the tree to the cluster's OS user);
//! - a symlink only at `pg_tblspc/<oid>`, and only to a declared tablespace
//!   location. stockops' backups are written by `pg_basebackup -D -`, which
//!   refuses a cluster with tablespaces, so nothing is declared today and
//!   every symlink is refused; an empty `tablespace_map` (which every
//!   pg_basebackup tar holds) is admitted, a non-empty one refused, since
//!   PostgreSQL would create the links it lists at startup;
//! - nothing else: hard links, devices, FIFOs, sparse and unknown members
//!   are refused, and the whole extraction stops.
//!
//! [`extract`] then creates what was admitted: every directory component is
//! checked to be a real directory (never a symlink), files are opened with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, so a duplicate member or a planted name
//! fails instead of being followed or overwritten.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};

/// The type of a tar member, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// A pax global header: metadata for the readers that want it, no file.
    PaxGlobal,
    /// Anything else (sparse, contiguous, vendor types), by its type byte.
    Other(u8),
}

impl Kind {
    fn of(t: tar::EntryType) -> Self {
        use tar::EntryType as T;
        match t {
            T::Regular => Kind::File,
            T::Directory => Kind::Directory,
            T::Symlink => Kind::Symlink,
            T::Link => Kind::HardLink,
            T::Char => Kind::CharDevice,
            T::Block => Kind::BlockDevice,
            T::Fifo => Kind::Fifo,
            T::XGlobalHeader => Kind::PaxGlobal,
            other => Kind::Other(other.as_byte()),
        }
    }
}

/// What [`admit`] judges: a member's header, long names and pax paths
/// already applied.
#[derive(Debug, Clone, Copy)]
pub struct EntryHeaderView<'a> {
    pub path: &'a [u8],
    pub kind: Kind,
    pub mode: u32,
    pub link: Option<&'a [u8]>,
    pub size: u64,
}

/// What a data directory may hold besides files and directories.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Absolute tablespace locations a `pg_tblspc/<oid>` symlink may point
    /// to (none for the backups stockops writes).
    pub tablespaces: Vec<PathBuf>,
}

/// An admitted member: what to create, relative to the target directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    Directory(PathBuf),
    /// A regular file, created mode 0600; `neutralised` when the archive
    /// asked for setuid, setgid or sticky bits, which are dropped.
    File {
        path: PathBuf,
        neutralised: bool,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    /// Nothing to create (the archive's root `./`, a pax global header).
    Skip,
}

/// Why a member was refused. A base backup PostgreSQL wrote never holds
/// one of these: the repository's copy was altered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}: an absolute path")]
    Absolute(String),
    #[error("{0}: a path that climbs out of the target with `..`")]
    Parent(String),
    #[error("{0:?}: a path that is not UTF-8")]
    NotUtf8(String),
    #[error(
        "{path}: a symlink to {target}, outside pg_tblspc or to an undeclared tablespace location"
    )]
    Symlink { path: String, target: String },
    #[error("{path}: a hard link to {target}")]
    HardLink { path: String, target: String },
    #[error("{0}: a device node")]
    Device(String),
    #[error("{0}: a FIFO")]
    Fifo(String),
    #[error("{path}: a member of tar type {kind:?}")]
    Type { path: String, kind: char },
    #[error("tablespace_map lists {0} bytes of tablespaces: stockops' backups hold none (pg_basebackup -D - refuses clusters with tablespaces)")]
    TablespaceMap(u64),
}

/// Judge one member by its header alone.
pub fn admit(entry: &EntryHeaderView, rules: &Rules) -> Result<Admitted, Refusal> {
    let shown = show(entry.path);
    let path = match relative(entry.path)? {
        Some(p) => p,
        None if entry.kind == Kind::Directory => return Ok(Admitted::Skip),
        None => return Err(Refusal::Absolute(shown)),
    };
    let target = || entry.link.map(show).unwrap_or_default();
    match entry.kind {
        Kind::Directory => Ok(Admitted::Directory(path)),
        Kind::File if path == Path::new("tablespace_map") && entry.size > 0 => {
            Err(Refusal::TablespaceMap(entry.size))
        }
        Kind::File => Ok(Admitted::File {
            path,
            neutralised: entry.mode & 0o7000 != 0,
        }),
        Kind::Symlink => match tablespace_link(&path, entry.link, rules) {
            Some(to) => Ok(Admitted::Symlink { path, target: to }),
            None => Err(Refusal::Symlink {
                path: shown,
                target: target(),
            }),
        },
        Kind::HardLink => Err(Refusal::HardLink {
            path: shown,
            target: target(),
        }),
        Kind::CharDevice | Kind::BlockDevice => Err(Refusal::Device(shown)),
        Kind::Fifo => Err(Refusal::Fifo(shown)),
        Kind::PaxGlobal => Ok(Admitted::Skip),
        Kind::Other(b) => Err(Refusal::Type {
            path: shown,
            kind: b as char,
        }),
    }
}

/// A member's path, made relative: `./` components dropped; absolute paths
/// and `..` refused. `None` for the archive's root itself.
fn relative(raw: &[u8]) -> Result<Option<PathBuf>, Refusal> {
    let text = std::str::from_utf8(raw).map_err(|_| Refusal::NotUtf8(show(raw)))?;
    let mut out = PathBuf::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(Refusal::Parent(show(raw))),
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::Absolute(show(raw))),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// `pg_tblspc/<oid>` pointing exactly at a declared location.
fn tablespace_link(path: &Path, link: Option<&[u8]>, rules: &Rules) -> Option<PathBuf> {
    let mut parts = path.components();
    let (Some(Component::Normal(dir)), Some(Component::Normal(oid)), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let oid = oid.to_str()?;
    if dir != "pg_tblspc" || oid.is_empty() || !oid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let target = PathBuf::from(std::str::from_utf8(link?).ok()?);
    let clean = target.is_absolute()
        && target
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    (clean && rules.tablespaces.iter().any(|t| t == &target)).then_some(target)
}

/// A path from the archive, fit for a message: lossy, control characters escaped.
fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).escape_debug().to_string()
}

/// What [`extract`] created.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub files: u64,
    pub directories: u64,
    pub bytes: u64,
    /// Files whose setuid, setgid or sticky bits were dropped.
    pub neutralised: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(
        "the base backup's tar holds {0}; refused, nothing more is extracted. pg_basebackup never \
         writes such a member: the backup in the repository was altered. Restore another backup, \
         and find out who can write to the repository"
    )]
    Refused(#[from] Refusal),
    #[error("extracting {path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Extract `input` into `dir` (which must exist, be empty and private to the
/// caller), admitting each member with [`admit`]. The input is read to its
/// end, past the tar's end-of-archive blocks.
pub fn extract<R: Read>(input: R, dir: &Path, rules: &Rules) -> Result<Extracted, ExtractError> {
    let mut archive = tar::Archive::new(input);
    let mut done = Extracted::default();
    for entry in archive.entries().map_err(io_at(dir))? {
        let mut entry = entry.map_err(io_at(dir))?;
        let path = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let header = entry.header();
        let view = EntryHeaderView {
            path: &path,
            kind: Kind::of(header.entry_type()),
            mode: header.mode().unwrap_or(0),
            link: link.as_deref(),
            size: entry.size(),
        };
        match admit(&view, rules)? {
            Admitted::Skip => {}
            Admitted::Directory(rel) => {
                make_dirs(dir, &rel)?;
                done.directories += 1;
            }
            Admitted::File { path, neutralised } => {
                let at = dir.join(&path);
                make_dirs(dir, path.parent().unwrap_or(Path::new("")))?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&at)
                    .map_err(io_at(&at))?;
                done.bytes += io::copy(&mut entry, &mut file).map_err(io_at(&at))?;
                done.files += 1;
                done.neutralised += u64::from(neutralised);
            }
            Admitted::Symlink { path, target } => {
                let at = dir.join(&path);
                make_dirs(dir, path.parent().unwrap_or(Path::new("")))?;
                std::os::unix::fs::symlink(&target, &at).map_err(io_at(&at))?;
            }
        }
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(io_at(dir))?;
    Ok(done)
}

/// Create `rel` under `root` one component at a time, each a real directory
/// (a symlink or a file in the way is an error), new ones mode 0700.
fn make_dirs(root: &Path, rel: &Path) -> Result<(), ExtractError> {
    let mut at = root.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(io_at(&at)(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a member already stands where a directory belongs",
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .mode(0o700)
                .create(&at)
                .map_err(io_at(&at))?,
            Err(e) => return Err(io_at(&at)(e)),
        }
    }
    Ok(())
}

/// A bounded pipe between two threads: the decrypting stage writes, the
/// extraction reads. Either side going away ends the other (EOF, or
/// `BrokenPipe` on write).
pub fn channel(bound: usize) -> (ChannelWriter, ChannelReader) {
    let (tx, rx) = std::sync::mpsc::sync_channel(bound);
    (
        ChannelWriter(tx),
        ChannelReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        },
    )
}

pub struct ChannelWriter(SyncSender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .send(buf.to_vec())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.chunk = next;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(path: &str, kind: Kind) -> EntryHeaderView<'_> {
        EntryHeaderView {
            path: path.as_bytes(),
            kind,
            mode: 0o600,
            link: None,
            size: 0,
        }
    }

    #[test]
    fn a_base_backups_members_are_admitted() {
        let r = Rules::default();
        assert_eq!(
            admit(&view("./pg_wal/archive_status/", Kind::Directory), &r),
            Ok(Admitted::Directory("pg_wal/archive_status".into()))
        );
        assert_eq!(
            admit(&view("base/1/1259", Kind::File), &r),
            Ok(Admitted::File {
                path: "base/1/1259".into(),
                neutralised: false
            })
        );
        assert_eq!(admit(&view("./", Kind::Directory), &r), Ok(Admitted::Skip));
        // Every pg_basebackup tar holds an empty one.
        assert!(admit(&view("tablespace_map", Kind::File), &r).is_ok());
    }

    #[test]
    fn hostile_members_are_refused_or_neutralised() {
        let r = Rules::default();
        let refused = |v: EntryHeaderView| admit(&v, &r).unwrap_err();
        assert!(matches!(
            refused(view("/etc/passwd", Kind::File)),
            Refusal::Absolute(_)
        ));
        assert!(matches!(
            refused(view("../escape", Kind::File)),
            Refusal::Parent(_)
        ));
        assert!(matches!(
            refused(view("base/../../x", Kind::Directory)),
            Refusal::Parent(_)
        ));
        assert!(matches!(
            refused(view("/", Kind::Directory)),
            Refusal::Absolute(_)
        ));
        let mut link = view("etc", Kind::Symlink);
        link.link = Some(b"/etc");
        assert!(matches!(refused(link), Refusal::Symlink { .. }));
        let mut hard = view("passwd", Kind::HardLink);
        hard.link = Some(b"/etc/passwd");
        assert!(matches!(refused(hard), Refusal::HardLink { .. }));
        assert!(matches!(
            refused(view("null", Kind::CharDevice)),
            Refusal::Device(_)
        ));
        assert!(matches!(
            refused(view("sda", Kind::BlockDevice)),
            Refusal::Device(_)
        ));
        assert!(matches!(
            refused(view("fifo", Kind::Fifo)),
            Refusal::Fifo(_)
        ));
        assert!(matches!(
            refused(view("sparse", Kind::Other(b'S'))),
            Refusal::Type { .. }
        ));
        let mut map = view("./tablespace_map", Kind::File);
        map.size = 20;
        assert!(matches!(refused(map), Refusal::TablespaceMap(20)));
        let mut suid = view("bin/sh", Kind::File);
        suid.mode = 0o4755;
        assert_eq!(
            admit(&suid, &r),
            Ok(Admitted::File {
                path: "bin/sh".into(),
                neutralised: true
            })
        );
        assert!(matches!(
            admit(&view("a\u{1b}[31m", Kind::Fifo), &r).unwrap_err().to_string(),
            s if s.contains("\\u{1b}")
        ));
    }

    #[test]
    fn tablespace_links_only_to_declared_locations() {
        let r = Rules {
            tablespaces: vec!["/srv/ts1".into()],
        };
        let link = |path: &'static str, to: &'static [u8]| EntryHeaderView {
            path: path.as_bytes(),
            kind: Kind::Symlink,
            mode: 0o777,
            link: Some(to),
            size: 0,
        };
        assert_eq!(
            admit(&link("pg_tblspc/16384", b"/srv/ts1"), &r),
            Ok(Admitted::Symlink {
                path: "pg_tblspc/16384".into(),
                target: "/srv/ts1".into()
            })
        );
        for (path, to) in [
            ("pg_tblspc/16384", &b"/etc"[..]),
            ("pg_tblspc/16384", b"/srv/ts1/../../etc"),
            ("pg_tblspc/16384", b"srv/ts1"),
            ("pg_tblspc/x", b"/srv/ts1"),
            ("pg_tblspc/1/2", b"/srv/ts1"),
            ("base/16384", b"/srv/ts1"),
        ] {
            assert!(admit(&link(path, to), &r).is_err(), "{path} -> {to:?}");
        }
    }

    /// A tar as an attacker writes it, header by header.
    type Member<'a> = (&'a str, tar::EntryType, u32, Option<&'a str>, &'a [u8]);

    fn hostile_tar(members: &[Member]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, mode, link, data) in members {
            let mut h = tar::Header::new_gnu();
            h.as_mut_bytes()[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extraction_stops_at_the_first_refusal_and_writes_nothing_outside() {
        let root = std::env::temp_dir().join(format!("stockops-untar-{}", rand::random::<u32>()));
        let dir = root.join("target");
        std::fs::create_dir_all(&dir).unwrap();
        let tar = hostile_tar(&[
            ("PG_VERSION", tar::EntryType::Regular, 0o4755, None, b"15\n"),
            ("../outside", tar::EntryType::Regular, 0o644, None, b"x"),
        ]);
        let err = extract(&tar[..], &dir, &Rules::default()).unwrap_err();
        assert!(
            matches!(err, ExtractError::Refused(Refusal::Parent(_))),
            "{err}"
        );
        assert!(!root.join("outside").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("PG_VERSION"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o600, "setuid dropped");
        // A duplicate member fails instead of overwriting.
        let dir2 = root.join("dup");
        std::fs::create_dir_all(&dir2).unwrap();
        let tar = hostile_tar(&[
            ("a", tar::EntryType::Regular, 0o600, None, b"1"),
            ("a", tar::EntryType::Regular, 0o600, None, b"2"),
        ]);
        assert!(matches!(
            extract(&tar[..], &dir2, &Rules::default()),
            Err(ExtractError::Io { .. })
        ));
        assert_eq!(std::fs::read(dir2.join("a")).unwrap(), b"1");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
