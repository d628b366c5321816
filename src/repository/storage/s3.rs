//! A repository in S3-compatible object storage (`s3://BUCKET/PREFIX`).
//!
//! Endpoint, region and credentials come from the AWS SDK's standard sources
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//! profiles). Requests are retried by the SDK's standard retry strategy, with
//! backoff, on transient and throttling errors only; part bodies are held in
//! memory, so a retried part is replayed byte for byte. Checksums are sent
//! only where S3 requires them: several S3-compatible servers (Garage among
//! them) reject the SDK's default CRC32 trailers and streaming signatures.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ObjectLockEnabled, ObjectLockMode,
};
use aws_sdk_s3::Client;
use tokio::task::JoinSet;

use super::{
    check_key, Incomplete, ObjectInfo, ObjectLock, ReadStore, Reader, Result, Retention, S3Options,
    StoreError, Upload, WriteStore,
};

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    concurrency: usize,
    lock: Option<ObjectLock>,
}

/// Content-MD5 of a body, sent with every write: the server refuses a body
/// that arrives different from what was sent (a WAL segment is deleted from
/// pg_wal once its push succeeds, so it must be right the first time). S3
/// also requires it on writes that carry Object Lock.
fn content_md5(data: &[u8]) -> String {
    use base64::Engine;
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

fn time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

impl S3Store {
    pub async fn new(bucket: &str, prefix: &str, opts: &S3Options) -> anyhow::Result<Self> {
        let t = opts.timeout;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(t.min(Duration::from_secs(10)))
            .read_timeout(t)
            .operation_attempt_timeout(t * 10)
            .build();
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .timeout_config(timeouts)
            .load()
            .await;
        if shared.region().is_none() {
            anyhow::bail!("no AWS region is configured for the S3 repository: set AWS_REGION (Garage: its s3_region)");
        }
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(opts.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        let store = Self {
            client: Client::from_conf(conf),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            concurrency: opts.concurrency.max(1),
            lock: opts.object_lock,
        };
        if store.lock.is_some() {
            store.check_object_lock().await?;
        }
        Ok(store)
    }

    /// The bucket must say Object Lock is enabled: several S3-compatible
    /// servers accept the lock headers on writes and silently ignore them.
    async fn check_object_lock(&self) -> anyhow::Result<()> {
        let cfg = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "bucket {} does not support S3 Object Lock (GetObjectLockConfiguration: {}); \
                     --object-lock-days needs a bucket created with Object Lock enabled",
                    self.bucket,
                    DisplayErrorContext(e)
                )
            })?;
        let enabled = cfg
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| *e == ObjectLockEnabled::Enabled);
        if !enabled {
            anyhow::bail!(
                "bucket {} does not have S3 Object Lock enabled; --object-lock-days needs it",
                self.bucket
            );
        }
        Ok(())
    }

    /// Mode and retain-until date for a write made now.
    fn lock_fields(&self) -> Option<(ObjectLockMode, aws_sdk_s3::primitives::DateTime)> {
        self.lock.map(|l| {
            let until = SystemTime::now() + Duration::from_secs(u64::from(l.days) * 86_400);
            let mode = if l.compliance {
                ObjectLockMode::Compliance
            } else {
                ObjectLockMode::Governance
            };
            (mode, aws_sdk_s3::primitives::DateTime::from(until))
        })
    }

    fn full(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(self.join(key))
    }

    fn join(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn relative(&self, full: &str) -> String {
        if self.prefix.is_empty() {
            full.to_string()
        } else {
            full.strip_prefix(&format!("{}/", self.prefix))
                .unwrap_or(full)
                .to_string()
        }
    }

    /// GET an object: its full key and body, or NotFound.
    async fn body(&self, key: &str) -> Result<(String, ByteStream)> {
        let full = self.full(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(o) => Ok((full, o.body)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Err(StoreError::NotFound(key.to_string()))
            }
            Err(e) => Err(self.err(&format!("GET {full}"), e)),
        }
    }

    fn err<E: std::error::Error>(&self, what: &str, e: E) -> StoreError {
        StoreError::failed(
            &self.describe(),
            format!("{what}: {}", DisplayErrorContext(e)),
        )
    }
}

#[async_trait]
impl ReadStore for S3Store {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let full = self.full(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(o) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: o.content_length().unwrap_or(0).max(0) as u64,
                modified: time(o.last_modified()),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.err(&format!("HEAD {full}"), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.join(prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("LIST", e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectInfo {
                        key: self.relative(k),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        modified: time(o.last_modified()),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let (full, body) = self.body(key).await?;
        let bytes = body
            .collect()
            .await
            .map_err(|e| self.err(&format!("GET {full}"), e))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn open(&self, key: &str) -> Result<Reader> {
        Ok(Box::new(self.body(key).await?.1.into_async_read()))
    }

    async fn retention(&self, key: &str) -> Result<Option<Retention>> {
        let full = self.full(key)?;
        let o = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.err(&format!("HEAD {full}"), e))?;
        Ok(
            match (
                o.object_lock_mode(),
                time(o.object_lock_retain_until_date()),
            ) {
                (Some(mode), Some(until)) => Some(Retention {
                    mode: mode.as_str().to_string(),
                    until,
                }),
                _ => None,
            },
        )
    }
}

#[async_trait]
impl WriteStore for S3Store {
    async fn put(&self, key: &str, data: Vec<u8>) -> Result<ObjectInfo> {
        let full = self.full(key)?;
        let size = data.len() as u64;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .content_md5(content_md5(&data));
        if let Some((mode, until)) = self.lock_fields() {
            request = request
                .object_lock_mode(mode)
                .object_lock_retain_until_date(until);
        }
        request
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.err(&format!("PUT {full}"), e))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size,
            modified: None,
        })
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
        let full = self.full(key)?;
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full);
        if let Some((mode, until)) = self.lock_fields() {
            request = request
                .object_lock_mode(mode)
                .object_lock_retain_until_date(until);
        }
        let created = request
            .send()
            .await
            .map_err(|e| self.err(&format!("CreateMultipartUpload {full}"), e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| {
                StoreError::failed(
                    &self.describe(),
                    "CreateMultipartUpload returned no upload id",
                )
            })?
            .to_string();
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            store: self.describe(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            full,
            upload_id,
            next: 1,
            inflight: JoinSet::new(),
            done: Vec::new(),
            concurrency: self.concurrency,
            size: 0,
            retention: self.lock_fields(),
        }))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.err(&format!("DELETE {full}"), e))?;
        Ok(())
    }

    async fn incomplete_uploads(&self) -> Result<Vec<Incomplete>> {
        let mut out = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(self.join(""))
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.err("ListMultipartUploads", e))?;
            for u in page.uploads() {
                if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                    out.push(Incomplete {
                        key: self.relative(k),
                        id: id.to_string(),
                        started: time(u.initiated()),
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
        }
        Ok(out)
    }

    async fn abort_incomplete(&self, upload: &Incomplete) -> Result<()> {
        let full = self.full(&upload.key)?;
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .upload_id(&upload.id)
            .send()
            .await
            .map_err(|e| self.err(&format!("AbortMultipartUpload {full}"), e))?;
        Ok(())
    }
}

struct S3Upload {
    client: Client,
    store: String,
    bucket: String,
    key: String,
    full: String,
    upload_id: String,
    next: i32,
    inflight: JoinSet<std::result::Result<CompletedPart, String>>,
    done: Vec<CompletedPart>,
    concurrency: usize,
    size: u64,
    /// Retention asked at creation, applied again once complete: some
    /// servers do not carry it from CreateMultipartUpload to the object.
    retention: Option<(ObjectLockMode, aws_sdk_s3::primitives::DateTime)>,
}

impl S3Upload {
    fn err(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::failed(&self.store, format!("upload of {}: {message}", self.full))
    }

    async fn join_one(&mut self) -> Result<()> {
        if let Some(joined) = self.inflight.join_next().await {
            let part = joined.map_err(|e| self.err(e))?.map_err(|e| self.err(e))?;
            self.done.push(part);
        }
        Ok(())
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn part(&mut self, data: Vec<u8>) -> Result<()> {
        while self.inflight.len() >= self.concurrency {
            self.join_one().await?;
        }
        let number = self.next;
        self.next += 1;
        self.size += data.len() as u64;
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.full)
            .upload_id(&self.upload_id)
            .part_number(number)
            .content_md5(content_md5(&data))
            .body(ByteStream::from(data));
        self.inflight.spawn(async move {
            let out = request
                .send()
                .await
                .map_err(|e| format!("part {number}: {}", DisplayErrorContext(e)))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build())
        });
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<ObjectInfo> {
        if self.next == 1 {
            // No part at all: several servers refuse an empty part, so the
            // multipart upload is dropped for a plain empty object.
            let (client, bucket, full, id) = (
                self.client.clone(),
                self.bucket.clone(),
                self.full.clone(),
                self.upload_id.clone(),
            );
            client
                .abort_multipart_upload()
                .bucket(&bucket)
                .key(&full)
                .upload_id(&id)
                .send()
                .await
                .map_err(|e| self.err(DisplayErrorContext(e)))?;
            client
                .put_object()
                .bucket(&bucket)
                .key(&full)
                .body(ByteStream::from(Vec::new()))
                .send()
                .await
                .map_err(|e| self.err(DisplayErrorContext(e)))?;
            return Ok(ObjectInfo {
                key: self.key.clone(),
                size: 0,
                modified: None,
            });
        }
        while !self.inflight.is_empty() {
            self.join_one().await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.full)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.err(DisplayErrorContext(e)))?;
        if let Some((mode, until)) = self.retention.clone() {
            let mode = aws_sdk_s3::types::ObjectLockRetentionMode::from(mode.as_str());
            let retention = aws_sdk_s3::types::ObjectLockRetention::builder()
                .mode(mode)
                .retain_until_date(until)
                .build();
            self.client
                .put_object_retention()
                .bucket(&self.bucket)
                .key(&self.full)
                .retention(retention)
                .send()
                .await
                .map_err(|e| self.err(format!("PutObjectRetention: {}", DisplayErrorContext(e))))?;
        }
        Ok(ObjectInfo {
            key: self.key.clone(),
            size: self.size,
            modified: None,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.inflight.abort_all();
        while self.inflight.join_next().await.is_some() {}
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.full)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| self.err(DisplayErrorContext(e)))?;
        Ok(())
    }
}
