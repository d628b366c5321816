//! Temporary files nobody else can name in advance.
//!
//! A file stockops writes and then renames or removes (a reject file's
//! `.partial`, `wal fetch`'s temporary segment, a restore's spool) must never
//! be reachable through a name another local user can predict: a symlink
//! planted at `/tmp/stockops-1234.tmp` would otherwise turn a write by root
//! into a write to the file it points at. So every such file is created
//! with `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600, under a random name, and,
//! where the directory is shared, inside a fresh directory of our own (mode
//! 0700, also under a random name): nobody else can add, swap or rename
//! anything in it.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Create `path` for writing: it must not exist, even as a symlink (a
/// dangling one included), and is readable by its owner only.
pub fn create_new(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// `dir/.NAME.TAG-XXXXXXXXXXXXXXXX`: a random name beside `dest`, for a
/// file renamed onto `dest` once complete (the rename must not cross
/// file systems, so it lives in `dest`'s own directory).
pub fn random_beside(dest: &Path, tag: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{tag}-{:016x}", rand::random::<u64>()))
}

/// A directory of our own, mode 0700, removed with everything in it when
/// dropped.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// A new directory `parent/.PREFIX-XXXXXXXXXXXXXXXX`. `mkdir` never
    /// follows a symlink at the new name, and fails when anything is there.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<Self> {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let path = parent.join(format!(".{prefix}-{:016x}", rand::random::<u64>()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self { path })
    }

    /// A private directory beside `dest`, on its file system.
    pub fn beside(dest: &Path, prefix: &str) -> io::Result<Self> {
        Self::new_in(dest.parent().unwrap_or(Path::new(".")), prefix)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create `name` in the directory (see [`create_new`]).
    pub fn create(&self, name: &str) -> io::Result<(PathBuf, File)> {
        let path = self.path.join(name);
        let file = create_new(&path)?;
        Ok((path, file))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stockops-private-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn create_new_refuses_a_planted_symlink_and_leaves_its_target_alone() {
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = dir.join("out.tmp");
        symlink(&victim, &planted).unwrap();
        assert!(create_new(&planted).is_err());
        let dangling = dir.join("dangling.tmp");
        symlink(dir.join("not-there"), &dangling).unwrap();
        assert!(create_new(&dangling).is_err());
        assert!(!dir.join("not-there").exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn private_dirs_are_0700_unpredictable_and_removed_when_dropped() {
        let parent = scratch("dirs");
        let a = PrivateDir::new_in(&parent, "t").unwrap();
        let b = PrivateDir::new_in(&parent, "t").unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let (file, _) = a.create("spool").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[test]
    fn names_beside_a_file_differ_every_time() {
        let dest = Path::new("/data/pg_wal/RECOVERYXLOG");
        let one = random_beside(dest, "stockops");
        assert_eq!(one.parent(), dest.parent());
        assert_ne!(one, random_beside(dest, "stockops"));
    }
}
