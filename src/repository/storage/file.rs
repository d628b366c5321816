//! A repository in a local directory (`file:///PATH`).
//!
//! Objects are files under the root. Writes go to a `.partial-*` file beside
//! the target, are synced, then renamed into place: an object is either
//! complete or absent. Partial files left by a crash are the store's
//! "incomplete uploads".
//!
//! Whoever can write in the repository must not turn a write by stockops
//! (often root) into a write elsewhere: a partial file is created
//! `O_EXCL|O_NOFOLLOW` under a random name, and a write refuses any
//! directory under the root that is a symlink.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{
    check_key, Incomplete, ObjectInfo, ReadStore, Reader, Result, StoreError, Upload, WriteStore,
};

const PARTIAL: &str = ".partial-";

pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::failed(&self.describe(), e)
    }

    fn partial_path(&self, key: &str) -> Result<PathBuf> {
        let path = self.path(key)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object");
        let tag: u64 = rand::random();
        Ok(path.with_file_name(format!("{name}{PARTIAL}{tag:016x}")))
    }

    /// Refuse a symlink standing for a directory between the root and
    /// `target`: `create_dir_all` and the rename would follow it out of
    /// the repository.
    async fn check_no_symlink(&self, target: &Path) -> Result<()> {
        for dir in target.ancestors().skip(1) {
            if dir == self.root || !dir.starts_with(&self.root) {
                break;
            }
            match tokio::fs::symlink_metadata(dir).await {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.err(format!(
                        "{} is a symlink inside the repository; refusing to write through it: \
                         replace it with a directory, or point the repository at the real path",
                        dir.display()
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(format!("{}: {e}", dir.display()))),
            }
        }
        Ok(())
    }

    async fn info(&self, key: &str, path: &Path) -> Result<Option<ObjectInfo>> {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: m.len(),
                modified: m.modified().ok(),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(format!("{}: {e}", path.display()))),
        }
    }

    /// Every file under the root, as (key, path), partial files included.
    async fn walk(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err(format!("{}: {e}", dir.display()))),
            };
            while let Some(entry) = entries.next_entry().await.map_err(|e| self.err(e))? {
                let path = entry.path();
                let kind = entry.file_type().await.map_err(|e| self.err(e))?;
                if kind.is_dir() {
                    dirs.push(path);
                } else if kind.is_file() {
                    if let Ok(rel) = path.strip_prefix(&self.root) {
                        out.push((rel.to_string_lossy().replace('\\', "/"), path));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Make a rename into `path` durable: fsync its directory and every one above
/// it up to the root (a directory the upload created is itself an entry of
/// its parent).
async fn sync_dirs(path: &Path, root: &Path) -> std::io::Result<()> {
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(root)) {
        tokio::fs::File::open(d).await?.sync_all().await?;
        dir = d.parent();
    }
    Ok(())
}

#[async_trait]
impl ReadStore for FileStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = self.path(key)?;
        self.info(key, &path).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        for (key, path) in self.walk().await? {
            if key.starts_with(prefix) && !key.contains(PARTIAL) {
                if let Some(info) = self.info(&key, &path).await? {
                    out.push(info);
                }
            }
        }
        Ok(out)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.to_string()))
            }
            Err(e) => Err(self.err(format!("{}: {e}", path.display()))),
        }
    }

    async fn open(&self, key: &str) -> Result<Reader> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::new(tokio::io::BufReader::with_capacity(1 << 20, f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.to_string()))
            }
            Err(e) => Err(self.err(format!("{}: {e}", path.display()))),
        }
    }
}

#[async_trait]
impl WriteStore for FileStore {
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<ObjectInfo> {
        let mut upload = self.start_upload(key).await?;
        upload.part(data).await?;
        upload.complete().await
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
        let target = self.path(key)?;
        let partial = self.partial_path(key)?;
        self.check_no_symlink(&target).await?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| self.err(format!("{}: {e}", parent.display())))?;
        }
        self.check_no_symlink(&target).await?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&partial)
            .await
            .map_err(|e| self.err(format!("{}: {e}", partial.display())))?;
        Ok(Box::new(FileUpload {
            store: self.describe(),
            root: self.root.clone(),
            key: key.to_string(),
            target,
            partial,
            file: Some(file),
            size: 0,
        }))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err(format!("{}: {e}", path.display()))),
        }
        // Remove directories the deletion emptied, up to the root.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root && d.starts_with(&self.root)) {
            if tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    async fn incomplete_uploads(&self) -> Result<Vec<Incomplete>> {
        let mut out = Vec::new();
        for (key, path) in self.walk().await? {
            if let Some((object, _)) = key.split_once(PARTIAL) {
                let started = tokio::fs::metadata(&path)
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok());
                out.push(Incomplete {
                    key: object.to_string(),
                    id: key.clone(),
                    started,
                });
            }
        }
        Ok(out)
    }

    async fn abort_incomplete(&self, upload: &Incomplete) -> Result<()> {
        if !upload.id.contains(PARTIAL) {
            return Err(self.err(format!("{} is not a partial upload", upload.id)));
        }
        self.delete(&upload.id).await
    }
}

struct FileUpload {
    store: String,
    root: PathBuf,
    key: String,
    target: PathBuf,
    partial: PathBuf,
    file: Option<tokio::fs::File>,
    size: u64,
}

impl FileUpload {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::failed(&self.store, format!("{}: {e}", self.partial.display()))
    }
}

#[async_trait]
impl Upload for FileUpload {
    async fn part(&mut self, data: Vec<u8>) -> Result<()> {
        let file = self.file.as_mut().expect("upload still open");
        if let Err(e) = file.write_all(&data).await {
            return Err(StoreError::failed(
                &self.store,
                format!("{}: {e}", self.partial.display()),
            ));
        }
        self.size += data.len() as u64;
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<ObjectInfo> {
        let mut file = self.file.take().expect("upload still open");
        file.flush().await.map_err(|e| self.err(e))?;
        file.sync_all().await.map_err(|e| self.err(e))?;
        drop(file);
        tokio::fs::rename(&self.partial, &self.target)
            .await
            .map_err(|e| self.err(e))?;
        sync_dirs(&self.target, &self.root).await.map_err(|e| {
            self.err(format!(
                "syncing the directories of {}: {e}",
                self.target.display()
            ))
        })?;
        let size = tokio::fs::metadata(&self.target)
            .await
            .map_err(|e| self.err(e))?
            .len();
        Ok(ObjectInfo {
            key: self.key.clone(),
            size,
            modified: None,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        drop(self.file.take());
        match tokio::fs::remove_file(&self.partial).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
}
