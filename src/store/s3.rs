//! Backups in an S3 bucket (or an S3-compatible service: MinIO, Cloudflare R2, Backblaze B2),
//! through Apache Arrow's `object_store` crate.
//!
//! A destination is `s3://BUCKET/PREFIX`. A backup is two objects, `PREFIX/<archive file name>`
//! and `PREFIX/<archive file name>.manifest.json`, the names the local directory gives them.
//!
//! Put protocol (a failure at any point leaves no listed backup):
//! 1. the archive is streamed as a multipart upload, a bounded number of parts in memory; on
//!    any failure the upload is aborted, so no object ever appears under the archive's name
//!    (on Ctrl-C and SIGTERM too, by the cleanup handler; after a SIGKILL the parts wait for
//!    the bucket's lifecycle rule);
//! 2. the stored archive's size is read back (`HEAD`) and compared with the file's;
//! 3. the manifest is written last. A backup is listed only when its manifest exists, so a
//!    listed backup is always whole; an archive whose manifest never arrived is deleted.
//!
//! Integrity on the way: every request is signed with AWS Signature V4 over the SHA-256 of its
//! body (`x-amz-content-sha256`), which S3 checks on receipt, part by part; after the upload
//! completes the object's size is checked as said above.
//!
//! Credentials and settings come from the environment as AWS's own tools name them
//! (`AmazonS3Builder::from_env`): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`; `us-east-1` when neither),
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for S3-compatible services,
//! `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (GitHub's OIDC login to AWS), and the ECS
//! and EC2 instance credentials. The shared files of the AWS CLI (`~/.aws/credentials`,
//! `AWS_PROFILE`) are not read. Plain HTTP is allowed only when the endpoint itself is an
//! `http://` URL.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, MultipartId, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::{LocalBackup, Store, StoredBackup};
use crate::archive::{manifest, naming};
use crate::cleanup::TempDir;
use crate::engine;
use crate::error::{Error, Result};
use crate::util::file_name;

/// The URL scheme of this store.
pub const SCHEME: &str = "s3";

/// Parts smaller than this are not worth a request; S3 takes 5 MiB at least (but the last).
const MIN_PART: usize = 8 * 1024 * 1024;
/// S3 takes 10,000 parts at most: larger files get larger parts.
const MAX_PARTS: u64 = 9_000;
/// Parts in flight at once. Memory is about `(IN_FLIGHT + 1) * part size`.
const IN_FLIGHT: usize = 2;

pub struct S3Store {
    rt: tokio::runtime::Runtime,
    store: AmazonS3,
    /// `s3://BUCKET/PREFIX` as given (no secret is ever part of it).
    url: String,
    /// The key prefix, without its trailing `/`; empty for the bucket's top level.
    prefix: String,
    /// The secret key, only to blank it out of any message a service sends back.
    secret: Option<String>,
}

/// `s3://BUCKET/PREFIX` split into the bucket and the prefix (no leading or trailing `/`).
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let usage = |why: &str| Error::Usage(format!("{url}: {why} (expected s3://BUCKET/PREFIX)"));
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| usage("not an s3:// URL"))?;
    if rest.contains(['?', '#', '@']) {
        return Err(usage("query, fragment and user parts are not taken"));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    if !bucket_ok {
        return Err(usage(
            "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens",
        ));
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() && ObjectPath::parse(prefix).is_err() {
        return Err(usage("the prefix has an empty, `.` or `..` segment"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

impl S3Store {
    /// The store at `url`, configured from the environment (see the module docs), after
    /// checking that the bucket can be listed with those credentials.
    pub fn open(url: &str) -> Result<S3Store> {
        let store = Self::with_builder(url, AmazonS3Builder::from_env(), default_retry())?;
        store.check()?;
        Ok(store)
    }

    /// The store at `url` with settings given by the caller (tests, other configuration
    /// sources); the bucket and HTTP rule are set here. Nothing is contacted yet.
    pub fn with_builder(
        url: &str,
        builder: AmazonS3Builder,
        retry: RetryConfig,
    ) -> Result<S3Store> {
        let (bucket, prefix) = parse_url(url)?;
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        let secret = builder.get_config_value(&AmazonS3ConfigKey::SecretAccessKey);
        let http = endpoint
            .as_deref()
            .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
        // reqwest's TLS needs the process's crypto provider before its client is built.
        super::artifacts::install_crypto();
        let store = builder
            .with_bucket_name(&bucket)
            .with_allow_http(http)
            .with_retry(retry)
            .build()
            .map_err(|e| Error::Usage(format!("{url}: {}", redact(&e.to_string(), &secret))))?;
        let rt = super::artifacts::runtime()?;
        Ok(S3Store {
            rt,
            store,
            url: url.trim_end_matches('/').to_string(),
            prefix,
            secret,
        })
    }

    /// Lists one page under the prefix: wrong credentials, a missing bucket or an unreachable
    /// endpoint fail here, before a backup is made.
    pub fn check(&self) -> Result<()> {
        let prefix = self.prefix_path();
        self.rt
            .block_on(async {
                match self.store.list(prefix.as_ref()).next().await {
                    Some(Err(e)) => Err(e),
                    _ => Ok(()),
                }
            })
            .map_err(|e| self.remote("list", e))
    }

    fn prefix_path(&self) -> Option<ObjectPath> {
        (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()))
    }

    fn key(&self, name: &str) -> ObjectPath {
        match self.prefix.is_empty() {
            true => ObjectPath::from(name),
            false => ObjectPath::from(format!("{}/{name}", self.prefix)),
        }
    }

    /// The error for a failed request, with what to do, never with a secret.
    fn remote(&self, doing: &str, e: object_store::Error) -> Error {
        let text = condense(&redact(&e.to_string(), &self.secret));
        let hint = if text.contains("NoSuchBucket") {
            " (the bucket does not exist: create it, or check the URL and AWS_ENDPOINT_URL)"
        } else if matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ]
        .iter()
        .any(|code| text.contains(code))
        {
            " (refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, \
             and that they may list, read, write and delete under this prefix)"
        } else {
            ""
        };
        Error::Remote(format!("S3 {doing} in {}: {text}{hint}", self.url))
    }

    /// Streams `file` to `key` as a multipart upload, `IN_FLIGHT` parts at a time; aborted on
    /// any failure, and on Ctrl-C or SIGTERM by the cleanup handler.
    async fn upload(&self, file: &Path, key: &ObjectPath, len: u64) -> Result<()> {
        let id = self
            .store
            .create_multipart(key)
            .await
            .map_err(|e| self.remote("start the upload", e))?;
        let on_interrupt = {
            let (store, key, id) = (self.store.clone(), key.clone(), id.clone());
            crate::cleanup::register(move || abort_from_signal_handler(&store, &key, &id))
        };
        let sent = self.send_parts(file, key, &id, len).await;
        let done = match sent {
            Ok(parts) => self
                .store
                .complete_multipart(key, &id, parts)
                .await
                .map(drop)
                .map_err(|e| self.remote("upload", e)),
            Err(e) => Err(e),
        };
        if done.is_err() {
            let _ = self.store.abort_multipart(key, &id).await;
        }
        on_interrupt.disarm();
        done
    }

    async fn send_parts(
        &self,
        file: &Path,
        key: &ObjectPath,
        id: &MultipartId,
        len: u64,
    ) -> Result<Vec<PartId>> {
        let part = MIN_PART.max(len.div_ceil(MAX_PARTS) as usize);
        let unreadable = |e: std::io::Error| Error::unreadable(file, e.to_string());
        let mut reader = std::fs::File::open(file).map_err(unreadable)?;
        let mut in_flight = FuturesOrdered::new();
        let mut parts = Vec::new();
        for idx in 0.. {
            let mut buf = Vec::with_capacity(part);
            (&mut reader)
                .take(part as u64)
                .read_to_end(&mut buf)
                .map_err(unreadable)?;
            let last = buf.len() < part;
            if buf.is_empty() && idx > 0 {
                break;
            }
            in_flight.push_back(self.store.put_part(key, id, idx, PutPayload::from(buf)));
            if in_flight.len() >= IN_FLIGHT || last {
                while let Some(sent) = in_flight.next().await {
                    parts.push(sent.map_err(|e| self.remote("upload", e))?);
                    if !last {
                        break;
                    }
                }
            }
            if last {
                break;
            }
        }
        while let Some(sent) = in_flight.next().await {
            parts.push(sent.map_err(|e| self.remote("upload", e))?);
        }
        Ok(parts)
    }

    /// Downloads `key` into `to` through a temporary name in `work`, synced before it is named.
    async fn download(&self, key: &ObjectPath, to: &Path, work: &Path) -> Result<()> {
        let got = self
            .store
            .get(key)
            .await
            .map_err(|e| self.remote("download", e))?;
        let tmp = work.join(file_name(to));
        let mut out = std::fs::File::create(&tmp).map_err(|e| Error::output("write", &tmp, e))?;
        let mut body = got.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.remote("download", e))?;
            out.write_all(&chunk)
                .map_err(|e| Error::output("write", &tmp, e))?;
        }
        out.sync_all().map_err(|e| Error::output("sync", &tmp, e))?;
        std::fs::rename(&tmp, to).map_err(|e| Error::output("move a backup into place", to, e))
    }

    /// Deletes `key`; one already gone is fine.
    async fn remove(&self, key: &ObjectPath) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.remote("delete", e)),
        }
    }
}

/// Aborts a multipart upload from the Ctrl-C/SIGTERM handler's thread (outside any runtime),
/// for a few seconds at most: the process is about to exit.
fn abort_from_signal_handler(store: &AmazonS3, key: &ObjectPath, id: &MultipartId) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    // The timer is made inside the runtime: outside it, tokio panics.
    let _ = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), store.abort_multipart(key, id)).await
    });
}

/// Retries as `object_store` does (exponential backoff with jitter), bounded to two minutes.
pub fn default_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 8,
        retry_timeout: Duration::from_secs(120),
    }
}

/// A service's XML error body as its code and message: `NoSuchBucket: The specified bucket
/// does not exist` rather than the document with request ids.
fn condense(text: &str) -> String {
    let Some((head, body)) = text.split_once("<?xml") else {
        return text.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find("</")?;
        Some(body[start..start + end].to_string())
    };
    let head = head.trim_end().trim_end_matches(':');
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{head}: {code}: {message}"),
        (Some(code), None) => format!("{head}: {code}"),
        _ => head.to_string(),
    }
}

fn redact(text: &str, secret: &Option<String>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s.as_str(), "***"),
        _ => text.to_string(),
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn put(&self, backup: LocalBackup<'_>, series: &str) -> Result<StoredBackup> {
        let name = file_name(backup.archive);
        if naming::parse(&name, series).is_none() {
            return Err(Error::Usage(format!(
                "{name} is not named as a backup of {series} (<{series}>-<yyyymmdd-HHMMSS>.<ext>.gz or .zst)"
            )));
        }
        let manifest_file = manifest::path_for(backup.archive);
        let manifest_bytes = std::fs::read(&manifest_file)
            .map_err(|e| Error::unreadable(&manifest_file, e.to_string()))?;
        let len = std::fs::metadata(backup.archive)
            .map_err(|e| Error::unreadable(backup.archive, e.to_string()))?
            .len();
        let key = self.key(&name);
        let manifest_key = self.key(&format!("{name}{}", manifest::SUFFIX));
        self.rt.block_on(async {
            match self.store.head(&manifest_key).await {
                Ok(_) => {
                    return Err(Error::Usage(format!(
                        "{} already holds a backup named {name}",
                        self.url
                    )));
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.remote("check", e)),
            }
            self.upload(backup.archive, &key, len).await?;
            let checked = async {
                let stored = self
                    .store
                    .head(&key)
                    .await
                    .map_err(|e| self.remote("check the upload", e))?;
                if stored.size != len {
                    return Err(Error::Remote(format!(
                        "S3 upload to {}: {name} is {} bytes in the bucket, {len} on disk",
                        self.url, stored.size
                    )));
                }
                self.store
                    .put(&manifest_key, PutPayload::from(manifest_bytes))
                    .await
                    .map_err(|e| self.remote("upload the manifest", e))?;
                Ok(stored.size)
            }
            .await;
            if checked.is_err() {
                // Not listed without its manifest, but not left behind either.
                let _ = self.remove(&key).await;
            }
            let bytes = checked?;
            Ok(StoredBackup {
                id: name.clone(),
                name,
                bytes: Some(bytes),
            })
        })
    }

    /// The archives under the prefix named as backups of `series` whose manifest exists.
    fn list(&self, series: &str) -> Result<Vec<StoredBackup>> {
        let prefix = self.prefix_path();
        let listed = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(|e| self.remote("list", e))?;
        let names: std::collections::HashSet<&str> = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename())
            .collect();
        let mut found: Vec<(naming::BackupName, String, u64)> = listed
            .objects
            .iter()
            .filter_map(|o| {
                let name = o.location.filename()?;
                let parsed = naming::parse(name, series)?;
                let whole = engine::is_archive_extension(&parsed.ext)
                    && names.contains(format!("{name}{}", manifest::SUFFIX).as_str());
                whole.then(|| (parsed, name.to_string(), o.size))
            })
            .collect();
        found.sort();
        Ok(found
            .into_iter()
            .rev()
            .map(|(_, name, size)| StoredBackup {
                id: name.clone(),
                name,
                bytes: Some(size),
            })
            .collect())
    }

    fn fetch(&self, backup: &StoredBackup, into: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(into).map_err(|e| Error::output("create directory", into, e))?;
        let work = TempDir::new_in(into, ".dbbackup-tmp-")?;
        let target = into.join(&backup.id);
        self.rt.block_on(async {
            let manifest_key = self.key(&format!("{}{}", backup.id, manifest::SUFFIX));
            self.download(&manifest_key, &manifest::path_for(&target), work.path())
                .await?;
            self.download(&self.key(&backup.id), &target, work.path())
                .await
        })?;
        Ok(target)
    }

    /// The manifest is an object of its own: one GET, bounded like any manifest.
    fn manifest_bytes(&self, backup: &StoredBackup) -> Result<Option<Vec<u8>>> {
        let key = self.key(&format!("{}{}", backup.id, manifest::SUFFIX));
        self.rt.block_on(async {
            let got = self
                .store
                .get(&key)
                .await
                .map_err(|e| self.remote("read the manifest", e))?;
            if got.meta.size > manifest::MAX_BYTES {
                return Err(Error::unreadable(
                    key.as_ref(),
                    format!(
                        "larger than {} bytes, which no manifest is",
                        manifest::MAX_BYTES
                    ),
                ));
            }
            let bytes = got
                .bytes()
                .await
                .map_err(|e| self.remote("read the manifest", e))?;
            Ok(Some(bytes.to_vec()))
        })
    }

    /// The archive first, then its manifest: a half-deleted backup is never listed.
    fn delete(&self, backup: &StoredBackup) -> Result<()> {
        self.rt.block_on(async {
            self.remove(&self.key(&backup.id)).await?;
            self.remove(&self.key(&format!("{}{}", backup.id, manifest::SUFFIX)))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://my-bucket/a/b/").unwrap(),
            ("my-bucket".into(), "a/b".into())
        );
        assert_eq!(
            parse_url("s3://my-bucket").unwrap(),
            ("my-bucket".into(), String::new())
        );
        for bad in [
            "s3://",
            "s3://B/x",
            "s3://ab",
            "gs://bucket/x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://key:secret@bucket/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
