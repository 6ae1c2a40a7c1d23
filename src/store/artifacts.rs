//! Backups kept as GitHub Actions artifacts.
//!
//! Uploading goes through the Actions artifact service (see `upload`), the way
//! `actions/upload-artifact` v4+ does; listing, downloading and deleting go through GitHub's
//! REST API ("Artifacts" in the REST docs) with `octocrab`, using the repository token.
//!
//! An artifact holds one backup: a zip of the archive and its manifest, named
//! `<stem>-<stamp>[-N]` after the archive, so names are unique per run and the backups of one
//! database are those named `<stem>` or `<stem>-<stamp>...`; nothing else is ever pruned.
//!
//! The REST calls use octocrab's raw request methods (`_get`, `_delete`) rather than its typed
//! builders because retrying needs the status and headers (`retry-after`, `x-ratelimit-*`) of
//! each failed response, and because the zip download answers with a redirect to a signed
//! storage URL that must be fetched without the GitHub token (reqwest does that part).
//! Listing still parses pages with octocrab's `Page` and `WorkflowListArtifact` models.

pub mod bundle;
pub mod expiry;
pub mod guard;
pub mod ranged;
pub mod retry;
pub mod upload;

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use http::{HeaderMap, StatusCode};
use octocrab::models::workflows::WorkflowListArtifact;
use octocrab::{FromResponse, Octocrab, Page};
use serde::Serialize;

pub use bundle::DEFAULT_MAX_UNPACKED;
use retry::{Attempt, RetryPolicy, retry_for, short_message, with_retries};
pub use upload::{Runtime, Uploaded};

use super::{LocalBackup, Store, StoredBackup};
use crate::archive::{manifest, naming};
use crate::error::{Error, Result};
use crate::util::file_name;

/// A token that never shows in `Debug` output, so it cannot leak through a log or an error.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The permissions a workflow needs, shown whenever GitHub refuses or no token is given. One
/// line: errors are printed one per line, with any line break shown as a literal `\n`.
pub const PERMISSIONS_HINT: &str = "the workflow's GITHUB_TOKEN needs `actions: write` (list, \
download and delete artifacts) and `contents: read`: grant them in the workflow or job YAML \
with `permissions: { actions: write, contents: read }`, and pass the token to dbbackup with \
`env: { GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }} }`";

/// How to reach GitHub's REST API for one repository.
#[derive(Debug, Clone)]
pub struct GitHub {
    /// `https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server.
    pub api_url: String,
    pub owner: String,
    pub repo: String,
    pub token: Secret,
    pub retry: RetryPolicy,
}

impl GitHub {
    /// For `repository` (OWNER/REPO: `--repo`, or `GITHUB_REPOSITORY`), with the API root from
    /// `GITHUB_API_URL` and a token from `--github-token` or `GITHUB_TOKEN`.
    pub fn for_repository(token: Option<String>, repository: &str) -> Result<GitHub> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::Remote(format!(
                "no GitHub token: set GITHUB_TOKEN or pass --github-token; {PERMISSIONS_HINT}"
            ))
        })?;
        let Some((owner, repo)) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
        else {
            return Err(Error::Usage(match repository.is_empty() {
                true => "no repository: pass --repo OWNER/REPO (GitHub Actions sets \
                         GITHUB_REPOSITORY in every job)"
                    .to_string(),
                false => format!(
                    "the repository must be named as OWNER/REPO in --repo or GITHUB_REPOSITORY \
                     (got {repository:?})"
                ),
            }));
        };
        let api_url = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "https://api.github.com".to_string());
        Ok(GitHub {
            api_url: api_url.trim_end_matches('/').to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            token: Secret(token),
            retry: RetryPolicy::from_env(),
        })
    }
}

/// One artifact as `artifact list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub id: u64,
    pub name: String,
    pub size_in_bytes: u64,
    /// RFC 3339.
    pub created_at: String,
    pub expired: bool,
    /// The workflow run that uploaded it.
    pub run_id: Option<u64>,
    /// Uploaded by a run of a pull request from a fork: GitHub lists those artifacts with the
    /// repository's own, and anyone can open such a pull request.
    #[serde(skip)]
    pub from_fork: bool,
}

/// The artifact name for a backup archive and the prefix of its series (see
/// [`naming::artifact_name`]), refused here when GitHub would refuse it.
pub fn artifact_name(archive_file_name: &str, base: Option<&str>) -> Result<(String, String)> {
    let (name, prefix) = naming::artifact_name(archive_file_name, base);
    validate_name(&name)?;
    Ok((name, prefix))
}

/// GitHub refuses these characters in artifact names (`validateArtifactName` in
/// `@actions/artifact`, `path-and-artifact-name-validation.ts`).
const FORBIDDEN_IN_NAMES: [char; 11] = ['"', ':', '<', '>', '|', '*', '?', '\r', '\n', '\\', '/'];

pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Usage("the artifact name is empty".into()));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN_IN_NAMES.contains(c)) {
        return Err(Error::Usage(format!(
            "artifact name {name:?} contains {c:?}, which GitHub refuses (no \" : < > | * ? \\ / or line breaks)"
        )));
    }
    Ok(())
}

/// The repository's artifacts: uploaded through the artifact service with the job's runtime
/// token, listed, downloaded and deleted through the REST API with a repository token. Either
/// may be missing (a `run:` step has no runtime token; uploading needs no REST token); what
/// needs it then says how to provide it. Calls block: each runs on a private single-threaded
/// runtime, so the CLI stays synchronous.
pub struct ArtifactStore {
    rt: tokio::runtime::Runtime,
    rest: Option<(Octocrab, GitHub)>,
    runtime: Option<Runtime>,
    /// `--artifact-name`: the series' name in place of the database's stem.
    base: Option<String>,
    /// `--retention-days`, already within GitHub's limits.
    retention_days: Option<u32>,
    /// The bound on what one download may unpack to.
    pub max_unpacked: u64,
}

/// rustls needs one process-wide crypto provider; `ring` is the one compiled in.
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A private single-threaded runtime for one store's blocking calls (crypto installed).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    install_crypto();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::output(
                "start the network runtime (threads, timers)",
                std::env::temp_dir(),
                e,
            )
        })
}

impl ArtifactStore {
    /// Listing, downloading and deleting through the REST API.
    pub fn connect(gh: GitHub) -> Result<ArtifactStore> {
        Self::new(Some(gh), None)
    }

    /// A store that uploads with the job's runtime token, and (with `gh`) lists, downloads and
    /// prunes too. `base` names the series in place of the database's stem (`--artifact-name`);
    /// `retention_days` is how long GitHub keeps each upload.
    pub fn for_upload(
        runtime: Runtime,
        gh: Option<GitHub>,
        base: Option<String>,
        retention_days: Option<u32>,
    ) -> Result<ArtifactStore> {
        // A name GitHub would refuse is refused now, not after a backup made for nothing.
        if let Some(base) = &base {
            validate_name(base)?;
        }
        let mut store = Self::new(gh, Some(runtime))?;
        store.base = base;
        store.retention_days = retention_days.map(retention_within_limits).transpose()?;
        Ok(store)
    }

    fn new(gh: Option<GitHub>, runtime: Option<Runtime>) -> Result<ArtifactStore> {
        let rt = self::runtime()?;
        let rest = match gh {
            Some(gh) => Some((Self::client(&rt, &gh)?, gh)),
            None => None,
        };
        Ok(ArtifactStore {
            rt,
            rest,
            runtime,
            base: None,
            retention_days: None,
            max_unpacked: DEFAULT_MAX_UNPACKED,
        })
    }

    /// How many days GitHub keeps what this store uploads (see [`expiry::kept_days`]).
    pub fn kept_days(&self) -> u32 {
        expiry::kept_days(self.retention_days)
    }

    /// The REST client and repository; without a token, the error says how to give one.
    pub(super) fn rest(&self) -> Result<(&Octocrab, &GitHub)> {
        self.rest.as_ref().map(|(c, gh)| (c, gh)).ok_or_else(|| {
            Error::Remote(format!(
                "listing, downloading and deleting artifacts needs a GitHub token: set \
                 GITHUB_TOKEN or pass --github-token; {PERMISSIONS_HINT}"
            ))
        })
    }

    fn client(rt: &tokio::runtime::Runtime, gh: &GitHub) -> Result<Octocrab> {
        rt.block_on(async {
            Octocrab::builder()
                .base_uri(gh.api_url.as_str())
                .map_err(|e| {
                    Error::Usage(format!("GITHUB_API_URL {:?} is not a URL: {e}", gh.api_url))
                })?
                .personal_token(gh.token.0.clone())
                .add_header(http::header::ACCEPT, "application/vnd.github+json".into())
                .set_connect_timeout(Some(std::time::Duration::from_secs(30)))
                .set_read_timeout(Some(std::time::Duration::from_secs(120)))
                .build()
                .map_err(|e| Error::Remote(format!("cannot set up the GitHub client: {e}")))
        })
    }

    pub(super) fn repo_path(&self) -> Result<String> {
        let (_, gh) = self.rest()?;
        Ok(format!("/repos/{}/{}", gh.owner, gh.repo))
    }

    /// Uploads a backup (the archive and its manifest sidecar, zipped) as the artifact `name`.
    pub fn upload(&self, archive: &Path, name: &str) -> Result<Uploaded> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Remote(upload::NOT_IN_ACTIONS.into()))?;
        validate_name(name)?;
        let manifest_path = manifest::path_for(archive);
        for file in [archive, manifest_path.as_path()] {
            if !file.is_file() {
                return Err(Error::unreadable(
                    file,
                    "missing: an artifact holds a backup and its .manifest.json side by side",
                ));
            }
        }
        let work = tempfile::tempdir().map_err(|e| {
            Error::output("create a temporary directory in", std::env::temp_dir(), e)
        })?;
        let zip_path = work.path().join(format!("{name}.zip"));
        bundle::pack(&[archive.to_path_buf(), manifest_path], &zip_path)?;
        self.rt.block_on(upload::upload_zip(
            runtime,
            &RetryPolicy::from_env(),
            &zip_path,
            name,
            self.retention_days,
        ))
    }

    /// Every artifact of the repository, all pages, as GitHub lists them (newest first).
    pub fn list_all(&self) -> Result<Vec<Artifact>> {
        let (_, gh) = self.rest()?;
        let first = format!(
            "{}/actions/artifacts?per_page=100&page=1",
            self.repo_path()?
        );
        self.rt.block_on(async {
            let mut next = first;
            let mut all = Vec::new();
            for _ in 0..10_000 {
                let page = self.get_page(&next).await?;
                all.extend(page.items.into_iter().map(Artifact::from));
                match page.next {
                    Some(uri) => next = uri.to_string(),
                    None => return Ok(all),
                }
            }
            Err(Error::Remote(format!(
                "listing artifacts of {}/{}: more than 10000 pages; giving up",
                gh.owner, gh.repo
            )))
        })
    }

    async fn get_page(&self, uri: &str) -> Result<Page<WorkflowListArtifact>> {
        let (client, gh) = self.rest()?;
        let what = format!("list artifacts of {}/{}", gh.owner, gh.repo);
        with_retries(&gh.retry, &what, || async {
            let response = match client._get(uri).await {
                Ok(r) => r,
                Err(e) => return octocrab_retry(e),
            };
            if response.status().is_success() {
                return match Page::<WorkflowListArtifact>::from_response(response).await {
                    Ok(page) => Attempt::Done(page),
                    Err(e) => Attempt::Fail(Error::Remote(format!(
                        "{what}: unexpected answer from GitHub ({e})"
                    ))),
                };
            }
            let (status, headers) = (response.status(), response.headers().clone());
            let body = client.body_to_string(response).await.unwrap_or_default();
            self.failed(&what, status, &headers, &body)
        })
        .await
    }

    /// The backups of `prefix`, newest first by creation time; expired ones only when asked.
    ///
    /// Artifacts uploaded by pull requests from forks are never backups: anyone could upload
    /// one under a backup's name, to be downloaded as the latest backup and restored (on the
    /// server its manifest names, with this job's password), or to push real backups out of
    /// the kept N. They are skipped with a warning.
    pub fn backups(&self, prefix: &str, include_expired: bool) -> Result<Vec<Artifact>> {
        let (forked, mut found): (Vec<Artifact>, Vec<Artifact>) = self
            .list_all()?
            .into_iter()
            .filter(|a| naming::is_artifact_of(&a.name, prefix) && (include_expired || !a.expired))
            .partition(|a| a.from_fork);
        if !forked.is_empty() {
            let names: Vec<&str> = forked.iter().map(|a| a.name.as_str()).collect();
            tracing::warn!(
                "ignored {} artifact(s) named like backups of {prefix} that pull requests from \
                 forks uploaded: {}",
                forked.len(),
                names.join(", ")
            );
        }
        found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(found)
    }

    /// Downloads the artifact `id` (called `name`) and unpacks it into `out`; returns the
    /// files written.
    pub fn download(&self, id: &str, name: &str, out: &Path) -> Result<Vec<PathBuf>> {
        let path = format!("{}/actions/artifacts/{id}/zip", self.repo_path()?);
        let what = format!("download artifact {name} ({id})");
        let location = self.rt.block_on(self.redirect_location(&path, &what))?;
        let mut zip = self.rt.block_on(self.fetch_blob(&location, &what))?;
        zip.rewind()
            .map_err(|e| Error::output("read back", std::env::temp_dir(), e))?;
        bundle::unpack(zip, name, out, self.max_unpacked)
    }

    /// The manifest (or envelope) inside artifact `id`'s zip, read by ranged requests (see
    /// [`ranged`]): the central directory and the entry, not the backup beside it.
    pub fn read_manifest(&self, id: &str, name: &str, size: Option<u64>) -> Result<Vec<u8>> {
        let path = format!("{}/actions/artifacts/{id}/zip", self.repo_path()?);
        let what = format!("read the manifest of artifact {name} ({id})");
        let location = self.rt.block_on(self.redirect_location(&path, &what))?;
        let (_, gh) = self.rest()?;
        let blob = ranged::RangedBlob::open(&self.rt, location, size, gh.retry, what.clone())?;
        let unreadable = |reason: String| Error::unreadable(name, reason);
        let mut zip = zip::ZipArchive::new(blob)
            .map_err(|e| unreadable(format!("not a zip archive: {e}")))?;
        let index = (0..zip.len())
            .find(|&i| {
                zip.name_for_index(i).is_some_and(|n| {
                    n.is_ok_and(|n| n.ends_with(manifest::SUFFIX) && !n.contains(['/', '\\']))
                })
            })
            .ok_or_else(|| unreadable("it holds no .manifest.json".into()))?;
        let mut entry = zip
            .by_index(index)
            .map_err(|e| unreadable(format!("broken zip entry {index}: {e}")))?;
        if entry.size() > manifest::MAX_BYTES {
            return Err(unreadable(format!(
                "its manifest declares {} bytes, more than any manifest",
                entry.size()
            )));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut entry, manifest::MAX_BYTES + 1),
            &mut bytes,
        )
        .map_err(|e| unreadable(format!("cannot read its manifest: {e}")))?;
        drop(entry);
        let blob = zip.into_inner();
        tracing::info!(
            "read the manifest of artifact {name}: {} of its {} bytes, by ranged requests",
            blob.fetched,
            blob.size()
        );
        Ok(bytes)
    }

    /// GitHub answers the zip endpoint with `302 Found` and a short-lived signed URL.
    async fn redirect_location(&self, path: &str, what: &str) -> Result<String> {
        let (client, gh) = self.rest()?;
        with_retries(&gh.retry, what, || async {
            let response = match client._get(path).await {
                Ok(r) => r,
                Err(e) => return octocrab_retry(e),
            };
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            match (response.status().is_redirection(), location) {
                (true, Some(location)) => Attempt::Done(location),
                (true, None) => Attempt::Fail(Error::Remote(format!(
                    "{what}: GitHub redirected without a Location"
                ))),
                (false, _) if response.status().is_success() => {
                    Attempt::Fail(Error::Remote(format!(
                        "{what}: expected a redirect to the zip, got {}",
                        response.status()
                    )))
                }
                _ => {
                    let (status, headers) = (response.status(), response.headers().clone());
                    let body = client.body_to_string(response).await.unwrap_or_default();
                    self.failed(what, status, &headers, &body)
                }
            }
        })
        .await
    }

    /// Fetches the signed storage URL into a temporary file, without GitHub credentials,
    /// bounded in size.
    async fn fetch_blob(&self, url: &str, what: &str) -> Result<std::fs::File> {
        let http = upload::http_client()?;
        let limit = self.max_unpacked;
        let (_, gh) = self.rest()?;
        with_retries(&gh.retry, what, || async {
            let mut response = match http.get(url).send().await {
                Ok(r) => r,
                Err(e) => return upload::transport_retry(e),
            };
            if !response.status().is_success() {
                return blob_failed(response, what).await;
            }
            let temp_dir = std::env::temp_dir();
            let mut out = match tempfile::tempfile() {
                Ok(f) => f,
                Err(e) => return Attempt::Fail(Error::output("create a file in", temp_dir, e)),
            };
            let mut written = 0u64;
            loop {
                let chunk = match response.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => return Attempt::Done(out),
                    Err(e) => return upload::transport_retry(e),
                };
                written += chunk.len() as u64;
                if written > limit {
                    return Attempt::Fail(Error::Remote(format!(
                        "{what}: the zip is larger than {limit} bytes; refusing it"
                    )));
                }
                if let Err(e) = out.write_all(&chunk) {
                    return Attempt::Fail(Error::output("write", temp_dir, e));
                }
            }
        })
        .await
    }

    /// A failed REST response: a retry when GitHub says to wait, else a final error that says
    /// what to do.
    fn failed<T>(
        &self,
        what: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> Attempt<T> {
        if let Some(retry) = retry_for(status, headers, body) {
            return retry.into();
        }
        let Ok((_, gh)) = self.rest() else {
            return Attempt::Fail(Error::Internal(
                "a REST answer without a REST client".into(),
            ));
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED => {
                format!(
                    " (the token was refused: it is missing, expired or wrong; {PERMISSIONS_HINT})"
                )
            }
            StatusCode::FORBIDDEN => format!(" ({PERMISSIONS_HINT})"),
            StatusCode::NOT_FOUND => format!(
                " (check GITHUB_REPOSITORY={}/{} and GITHUB_API_URL, and that the token can read it; {PERMISSIONS_HINT})",
                gh.owner, gh.repo
            ),
            _ => String::new(),
        };
        Attempt::Fail(Error::Remote(format!(
            "{what}: GitHub answered HTTP {status}{}{hint}",
            short_message(body)
        )))
    }
}

/// A failed answer from the signed storage URL: a retry when it says so, else a final error
/// (that never shows the URL, which is signed).
pub(super) async fn blob_failed<T>(response: reqwest::Response, what: &str) -> Attempt<T> {
    let (status, headers) = (response.status(), response.headers().clone());
    let text = upload::answer_text(response).await.unwrap_or_default();
    match retry_for(status, &headers, &text) {
        Some(retry) => retry.into(),
        None => Attempt::Fail(Error::Remote(format!(
            "{what}: the storage URL answered HTTP {status}"
        ))),
    }
}

/// Errors before any response (connect, timeout) are worth retrying.
fn octocrab_retry<T>(err: octocrab::Error) -> Attempt<T> {
    Attempt::Retry {
        wait: None,
        why: format!("network error: {err}"),
    }
}

impl From<WorkflowListArtifact> for Artifact {
    fn from(a: WorkflowListArtifact) -> Self {
        Artifact {
            id: a.id.into_inner(),
            name: a.name,
            size_in_bytes: a.size_in_bytes as u64,
            created_at: a.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            expired: a.expired,
            from_fork: a
                .workflow_run
                .as_ref()
                .is_some_and(|r| r.head_repository_id != r.repository_id),
            run_id: a.workflow_run.map(|r| r.id.into_inner()),
        }
    }
}

impl Store for ArtifactStore {
    fn describe(&self) -> String {
        match &self.rest {
            Some((_, gh)) => format!("GitHub artifacts of {}/{}", gh.owner, gh.repo),
            None => "GitHub artifacts of this repository".into(),
        }
    }

    fn series(&self, stem: &str) -> String {
        self.base.clone().unwrap_or_else(|| stem.to_string())
    }

    /// The artifact is named after the archive, with the series' name in place of its stem.
    fn put(&self, backup: LocalBackup<'_>, series: &str) -> Result<StoredBackup> {
        let (name, _) = artifact_name(&file_name(backup.archive), Some(series))?;
        let uploaded = self.upload(backup.archive, &name)?;
        Ok(StoredBackup {
            id: uploaded.id.to_string(),
            name: uploaded.name,
            bytes: Some(uploaded.size),
        })
    }

    /// Non-expired backups only: an expired artifact holds nothing and must not use up one of
    /// the kept places.
    fn list(&self, series: &str) -> Result<Vec<StoredBackup>> {
        Ok(self
            .backups(series, false)?
            .into_iter()
            .map(|a| StoredBackup {
                id: a.id.to_string(),
                name: a.name,
                bytes: Some(a.size_in_bytes),
            })
            .collect())
    }

    fn fetch(&self, backup: &StoredBackup, into: &Path) -> Result<PathBuf> {
        let files = self.download(&backup.id, &backup.name, into)?;
        files
            .into_iter()
            .find(|f| !f.to_string_lossy().ends_with(manifest::SUFFIX))
            .ok_or_else(|| {
                Error::unreadable(
                    into,
                    format!("artifact {} holds no backup archive", backup.name),
                )
            })
    }

    fn manifest_bytes(&self, backup: &StoredBackup) -> Result<Option<Vec<u8>>> {
        self.read_manifest(&backup.id, &backup.name, backup.bytes)
            .map(Some)
    }

    fn delete(&self, backup: &StoredBackup) -> Result<()> {
        let (client, gh) = self.rest()?;
        let path = format!("{}/actions/artifacts/{}", self.repo_path()?, backup.id);
        let what = format!("delete artifact {} ({})", backup.name, backup.id);
        self.rt.block_on(with_retries(&gh.retry, &what, || async {
            let response = match client._delete(path.as_str(), None::<&()>).await {
                Ok(r) => r,
                Err(e) => return octocrab_retry(e),
            };
            match response.status() {
                // Already gone (deleted by another job, or expired and removed): the goal holds.
                s if s.is_success() || s == StatusCode::NOT_FOUND => Attempt::Done(()),
                status => {
                    let headers = response.headers().clone();
                    let body = client.body_to_string(response).await.unwrap_or_default();
                    self.failed(&what, status, &headers, &body)
                }
            }
        }))
    }
}

/// GitHub keeps artifacts 1 to 90 days (up to 400 on private repositories), capped by the
/// repository's setting, which the runner passes as `GITHUB_RETENTION_DAYS`; like the official
/// client (`getExpiration`), a longer request is lowered to that cap with a warning.
fn retention_within_limits(days: u32) -> Result<u32> {
    if !(1..=400).contains(&days) {
        return Err(Error::Usage(format!(
            "--retention-days {days}: GitHub keeps artifacts 1 to 90 days (400 on private repositories)"
        )));
    }
    let cap = std::env::var("GITHUB_RETENTION_DAYS")
        .ok()
        .and_then(|d| d.parse::<u32>().ok());
    match cap {
        Some(cap) if cap < days => {
            tracing::warn!(
                "--retention-days {days} is more than this repository allows; using {cap}"
            );
            Ok(cap)
        }
        _ => Ok(days),
    }
}
