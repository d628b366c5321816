//! Object stores: where backups live. A small interface split into reading
//! and writing, so restore, verify and drill take a [`ReadStore`] and cannot
//! delete a backup even by mistake.
//!
//! Two implementations: local files ([`file::FileStore`], `file:///PATH`) and
//! S3-compatible storage ([`s3::S3Store`], `s3://BUCKET/PREFIX`). Keys are
//! relative to the repository's root and use `/` as separator. This module
//! knows nothing of backups or manifests.

pub mod file;
pub mod s3;

use std::time::SystemTime;

use async_trait::async_trait;
use tokio::io::AsyncRead;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// Retention an object carries (S3 Object Lock), as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub mode: String,
    pub until: SystemTime,
}

/// Retention to put on every object written (S3 Object Lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    /// COMPLIANCE: nobody can shorten it, the account's root included;
    /// GOVERNANCE: users with a special permission can.
    pub compliance: bool,
    pub days: u32,
}

/// An upload that was started and never completed (a crashed backup).
#[derive(Debug, Clone)]
pub struct Incomplete {
    pub key: String,
    /// The store's handle for it (S3 upload id, or the partial file's key).
    pub id: String,
    pub started: Option<SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{store}: {message}")]
    Failed { store: String, message: String },
}

impl StoreError {
    pub fn failed(store: &str, message: impl std::fmt::Display) -> Self {
        StoreError::Failed {
            store: store.to_string(),
            message: message.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

#[async_trait]
pub trait ReadStore: Send + Sync {
    /// `file:///PATH` or `s3://BUCKET/PREFIX`, for messages.
    fn describe(&self) -> String;
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;
    /// Every object under `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// A whole (small) object.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// A streaming reader over an object.
    async fn open(&self, key: &str) -> Result<Reader>;
    /// The retention the server applied to an object, read back with HEAD
    /// (never assumed from a successful write).
    async fn retention(&self, _key: &str) -> Result<Option<Retention>> {
        Ok(None)
    }
}

#[async_trait]
pub trait WriteStore: ReadStore {
    /// Store a whole (small) object, atomically.
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<ObjectInfo>;
    /// Start a streamed upload; nothing is visible under `key` until it completes.
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Uploads started and never completed.
    async fn incomplete_uploads(&self) -> Result<Vec<Incomplete>>;
    async fn abort_incomplete(&self, upload: &Incomplete) -> Result<()>;
}

/// A streamed upload: parts in order, then `complete` or `abort`.
#[async_trait]
pub trait Upload: Send {
    /// Add the next part (every part but the last at least 5 MiB on S3).
    async fn part(&mut self, data: Vec<u8>) -> Result<()>;
    /// Make the object visible; returns what the store now holds.
    async fn complete(self: Box<Self>) -> Result<ObjectInfo>;
    /// Discard everything uploaded so far.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// Options of S3 repositories.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub path_style: bool,
    /// Parts uploaded at once.
    pub concurrency: usize,
    /// How long to wait for an answer before the attempt counts as failed
    /// (and is retried): a server that vanished must not hang a backup.
    pub timeout: std::time::Duration,
    /// Lock every object written, once the bucket proved it supports it.
    pub object_lock: Option<ObjectLock>,
}

impl Default for S3Options {
    fn default() -> Self {
        Self {
            path_style: false,
            concurrency: 2,
            timeout: std::time::Duration::from_secs(60),
            object_lock: None,
        }
    }
}

/// Open the repository a URL names.
pub async fn open(url: &str, s3: &S3Options) -> anyhow::Result<Box<dyn WriteStore>> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            anyhow::bail!("file repository {url:?} must be absolute: file:///PATH");
        }
        if s3.object_lock.is_some() {
            anyhow::bail!(
                "object lock needs an S3 repository with S3 Object Lock; {url} is a directory"
            );
        }
        return Ok(Box::new(file::FileStore::new(path)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            anyhow::bail!("S3 repository {url:?} has no bucket: s3://BUCKET/PREFIX");
        }
        return Ok(Box::new(s3::S3Store::new(bucket, prefix, s3).await?));
    }
    anyhow::bail!("unsupported repository {url:?}: use s3://BUCKET/PREFIX or file:///PATH")
}

/// Keys are plain relative paths: no `..`, no leading `/`, no empty segment.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || key.contains('\0');
    if bad {
        return Err(StoreError::failed(
            "repository",
            format!("invalid object key {key:?}"),
        ));
    }
    Ok(())
}
