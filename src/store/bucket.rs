//! Backups in an object store's bucket or container (S3, Azure Blob Storage, Google Cloud
//! Storage), through Apache Arrow's `object_store` crate: the one put/list/fetch/delete protocol
//! every such service shares. Each service's module (`s3`, `azure`, `gcs`) only parses its URL,
//! builds its client from the environment, and names its credentials in error hints.
//!
//! A backup is two objects, `PREFIX/<archive file name>` and
//! `PREFIX/<archive file name>.manifest.json`, the names the local directory gives them.
//!
//! Put protocol (a failure at any point leaves no listed backup):
//! 1. the archive is streamed as a multipart upload (S3 and GCS: a multipart upload; Azure:
//!    blocks committed by one block list), a bounded number of parts in memory; on any failure
//!    the upload is aborted, so no object ever appears under the archive's name (on Ctrl-C and
//!    SIGTERM too, by the cleanup handler; after a SIGKILL the parts wait for the bucket's
//!    lifecycle rule, and Azure's uncommitted blocks are discarded by the service after a week);
//! 2. the stored archive is read back (`HEAD`) and checked against the file: its size always,
//!    and its MD5 where the service reports a whole-object one (see [`verify`]);
//! 3. the manifest is written last. A backup is listed only when its manifest exists, so a
//!    listed backup is always whole; an archive whose manifest never arrived is deleted.
//!
//! Every service's client retries as `object_store` does, bounded by [`default_retry`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, MultipartId, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::{LocalBackup, Store, StoredBackup};
use crate::archive::{manifest, naming};
use crate::cleanup::TempDir;
use crate::engine;
use crate::error::{Error, Result};
use crate::util::file_name;

/// Parts smaller than this are not worth a request; S3 takes 5 MiB at least (but the last).
const MIN_PART: usize = 8 * 1024 * 1024;
/// S3 takes 10,000 parts at most: larger files get larger parts.
const MAX_PARTS: u64 = 9_000;
/// Parts in flight at once. Memory is about `(IN_FLIGHT + 1) * part size`.
const IN_FLIGHT: usize = 2;

/// A client of one bucket: what each service's `object_store` type is.
pub trait Service: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> Service for T {}

/// Which service a store talks to: its name in messages and what to check when it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S3,
    Azure,
    Gcs,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::S3 => "S3",
            Kind::Azure => "Azure",
            Kind::Gcs => "GCS",
        }
    }

    /// What to do about a refused request, by the service's error codes.
    fn hint(self, text: &str, e: &object_store::Error) -> &'static str {
        let refused = matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        );
        let has = |codes: &[&str]| codes.iter().any(|c| text.contains(c));
        match self {
            Kind::S3 if has(&["NoSuchBucket"]) => {
                " (the bucket does not exist: create it, or check the URL and AWS_ENDPOINT_URL)"
            }
            Kind::S3
                if refused
                    || has(&[
                        "InvalidAccessKeyId",
                        "SignatureDoesNotMatch",
                        "AccessDenied",
                    ]) =>
            {
                " (refused: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, \
                 and that they may list, read, write and delete under this prefix)"
            }
            Kind::Azure if has(&["ContainerNotFound"]) => {
                " (the container does not exist: create it, or check the URL, \
                 AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ENDPOINT)"
            }
            Kind::Azure
                if refused
                    || has(&[
                        "AuthenticationFailed",
                        "AuthorizationFailure",
                        "AuthorizationPermissionMismatch",
                    ]) =>
            {
                " (refused: check AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or \
                 AZURE_STORAGE_SAS_TOKEN, and that they may list, read, write and delete here)"
            }
            Kind::Gcs if has(&["NoSuchBucket", "bucket does not exist"]) => {
                " (the bucket does not exist: create it, or check the URL)"
            }
            Kind::Gcs if refused || has(&["AccessDenied", "401 Unauthorized", "403 Forbidden"]) => {
                " (refused: check GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT_KEY, \
                 and that the account may list, read, write and delete in this bucket)"
            }
            _ => "",
        }
    }
}

/// Backups under `PREFIX` in one bucket of one service.
pub struct BucketStore {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Service>,
    kind: Kind,
    /// `SCHEME://BUCKET/PREFIX` as given, without a trailing `/` (no secret is ever part of it).
    url: String,
    /// The key prefix, without its trailing `/`; empty for the bucket's top level.
    prefix: String,
    /// Secrets of the configuration, only to blank them out of any message a service sends.
    secrets: Vec<String>,
}

impl BucketStore {
    /// The store of backups under `prefix` in the bucket `store` is a client of. Nothing is
    /// contacted yet.
    pub fn new(
        kind: Kind,
        url: &str,
        store: Arc<dyn Service>,
        prefix: String,
        secrets: Vec<String>,
    ) -> Result<BucketStore> {
        Ok(BucketStore {
            rt: super::artifacts::runtime()?,
            store,
            kind,
            url: url.trim_end_matches('/').to_string(),
            prefix,
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
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
        let text = condense(&redact(&e.to_string(), &self.secrets));
        let hint = self.kind.hint(&text, &e);
        Error::Remote(format!(
            "{} {doing} in {}: {text}{hint}",
            self.kind.label(),
            self.url
        ))
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
            crate::cleanup::register(move || abort_from_signal_handler(&*store, &key, &id))
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
fn abort_from_signal_handler(store: &dyn Service, key: &ObjectPath, id: &MultipartId) {
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
    let condensed = match text.split_once("<?xml") {
        None => text.to_string(),
        Some((head, body)) => {
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
    };
    // Azure's message goes on with request ids on the lines after it.
    match condensed.split_once("\nRequestId:") {
        Some((message, _ids)) => message.to_string(),
        None => condensed,
    }
}

pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |text, s| text.replace(s.as_str(), "***"))
}

/// Checks what the service says it stored under `name` against the local file: the size,
/// which every service reports on `HEAD`. (A whole-object checksum is not reported after a
/// multipart upload by any of them: S3's and GCS's ETag is then a digest of the parts' digests,
/// or not an MD5 at all under KMS encryption, and Azure's is opaque; each part's body is
/// checked by the service on receipt instead, see the README's "Integrity" table.)
pub fn verify(stored: &ObjectMeta, name: &str, len: u64) -> std::result::Result<(), String> {
    if stored.size != len {
        return Err(format!(
            "{name} is {} bytes in the bucket, {len} on disk",
            stored.size
        ));
    }
    Ok(())
}

impl Store for BucketStore {
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
                verify(&stored, &name, len).map_err(|why| {
                    Error::Remote(format!(
                        "{} upload to {}: {why}; the backup was not kept there",
                        self.kind.label(),
                        self.url
                    ))
                })?;
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

/// `SCHEME://NAME/PREFIX` split into the bucket's (or container's) name and the prefix (no
/// leading or trailing `/`), for one of `schemes`, the name checked by `name_ok`. `what` names
/// the bucket in the usage line (`BUCKET`, `CONTAINER`).
pub fn split_url(
    url: &str,
    schemes: &[&str],
    what: &str,
    name_ok: impl Fn(&str) -> bool,
) -> Result<(String, String)> {
    let usage = |why: &str| {
        Error::Usage(format!(
            "{url}: {why} (expected {}://{what}/PREFIX)",
            schemes[0]
        ))
    };
    let rest = schemes
        .iter()
        .find_map(|s| url.strip_prefix(s)?.strip_prefix("://"))
        .ok_or_else(|| usage(&format!("not a {}:// URL", schemes.join("://, "))))?;
    if rest.contains(['?', '#', '@']) {
        return Err(usage("query, fragment and user parts are not taken"));
    }
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if !name_ok(name) {
        return Err(usage(&format!(
            "`{name}` is not a valid {} name",
            what.to_ascii_lowercase()
        )));
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() && ObjectPath::parse(prefix).is_err() {
        return Err(usage("the prefix has an empty, `.` or `..` segment"));
    }
    Ok((name.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures_util::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, PutMultipartOptions,
        PutOptions, PutResult,
    };

    use super::*;

    /// An in-memory bucket whose `HEAD` says an object is one byte shorter than it is while
    /// `lie` is set: what the check after an upload must catch (a truncated or replaced object).
    #[derive(Debug, Default)]
    struct Misreporting {
        inner: InMemory,
        lie: AtomicBool,
    }

    impl fmt::Display for Misreporting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Misreporting({})", self.inner)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Misreporting {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &ObjectPath,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            let head = options.head;
            let mut got = self.inner.get_opts(location, options).await?;
            if head && self.lie.load(Ordering::SeqCst) {
                got.meta.size -= 1;
            }
            Ok(got)
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<ObjectPath>>,
        ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&ObjectPath>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[async_trait::async_trait]
    impl MultipartStore for Misreporting {
        async fn create_multipart(&self, path: &ObjectPath) -> object_store::Result<MultipartId> {
            self.inner.create_multipart(path).await
        }
        async fn put_part(
            &self,
            path: &ObjectPath,
            id: &MultipartId,
            part_idx: usize,
            data: PutPayload,
        ) -> object_store::Result<PartId> {
            self.inner.put_part(path, id, part_idx, data).await
        }
        async fn complete_multipart(
            &self,
            path: &ObjectPath,
            id: &MultipartId,
            parts: Vec<PartId>,
        ) -> object_store::Result<PutResult> {
            self.inner.complete_multipart(path, id, parts).await
        }
        async fn abort_multipart(
            &self,
            path: &ObjectPath,
            id: &MultipartId,
        ) -> object_store::Result<()> {
            self.inner.abort_multipart(path, id).await
        }
    }

    /// Azure's error text loses its request ids; S3's XML body becomes its code and message.
    #[test]
    fn service_errors_are_condensed() {
        let azure = "Error performing list request: 404 Not Found: ContainerNotFound: The \
            specified container does not exist.\nRequestId:c486\nTime:2026-11-30T02:32:44Z";
        assert_eq!(
            condense(azure),
            "Error performing list request: 404 Not Found: ContainerNotFound: The specified \
             container does not exist."
        );
        let s3 = "Error: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
            <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            condense(s3),
            "Error: NoSuchBucket: The specified bucket does not exist"
        );
        // Azure's XML body, with the request ids inside its message.
        let azure_xml = "404 Not Found: <?xml version=\"1.0\"?>\n<Error>\n  \
            <Code>ContainerNotFound</Code>\n  <Message>The specified container does not \
            exist.\nRequestId:c486\nTime:2026-11-30T02:32:44Z</Message>\n</Error>";
        assert_eq!(
            condense(azure_xml),
            "404 Not Found: ContainerNotFound: The specified container does not exist."
        );
    }

    /// A stored size that differs from the file's fails the put, and leaves nothing in the
    /// bucket (neither the archive nor its manifest); the same put against an honest bucket
    /// succeeds, so it is the check that failed it.
    #[test]
    fn a_stored_size_that_differs_fails_the_put_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("app-20260101-000000.sqlite.gz");
        std::fs::write(&archive, vec![7u8; 3000]).unwrap();
        std::fs::write(manifest::path_for(&archive), b"{}").unwrap();
        let bucket = Arc::new(Misreporting::default());
        let store = BucketStore::new(
            Kind::S3,
            "s3://bucket/db",
            bucket.clone(),
            "db".into(),
            Vec::new(),
        )
        .unwrap();
        let everything = |store: &BucketStore| {
            store
                .rt
                .block_on(bucket.list(None).collect::<Vec<_>>())
                .len()
        };

        bucket.lie.store(true, Ordering::SeqCst);
        let err = store
            .put(LocalBackup { archive: &archive }, "app")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2999 bytes in the bucket, 3000 on disk"),
            "{err}"
        );
        assert!(store.list("app").unwrap().is_empty());
        assert_eq!(everything(&store), 0, "an object was left behind");

        bucket.lie.store(false, Ordering::SeqCst);
        let stored = store.put(LocalBackup { archive: &archive }, "app").unwrap();
        assert_eq!(stored.bytes, Some(3000));
        assert_eq!(everything(&store), 2);
    }
}
