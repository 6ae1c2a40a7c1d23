//! Uploading an artifact through the Actions artifact service (v4), the way `@actions/artifact`
//! does it (`packages/artifact/src/internal/upload/upload-artifact.ts` in actions/toolkit):
//!
//! 1. `POST {ACTIONS_RESULTS_URL origin}/twirp/github.actions.results.api.v1.ArtifactService/CreateArtifact`
//!    with the runtime token as a bearer token, JSON with protobuf field names:
//!    `workflow_run_backend_id`, `workflow_job_run_backend_id`, `name`, `mime_type`
//!    (`application/zip`), `version` (7), and `expires_at` when a retention is asked for. The
//!    two backend ids come from the runtime token itself: its `scp` claim holds
//!    `Actions.Results:<run id>:<job id>` (`internal/shared/util.ts`, `getBackendIdsFromToken`).
//!    The answer is `{ok, signed_upload_url}`.
//! 2. The zip goes to that signed Azure Blob URL as a block blob, as the Azure SDK's
//!    `BlockBlobClient.uploadStream` sends it: `PUT ?comp=block&blockid=<base64>` per 8 MiB
//!    block, then `PUT ?comp=blocklist` with the XML list of blocks and the content type in
//!    `x-ms-blob-content-type`. The signed URL is the credential: no token goes with it.
//! 3. `FinalizeArtifact` with the same ids and name, `size` (int64, so a JSON string) and
//!    `hash` = `sha256:<hex of the zip>`; the answer is `{ok, artifact_id}`.
//!
//! The answers are read as a protobuf JSON reader reads them, not as fixed JSON: GitHub's service
//! writes the proto field names (`signed_upload_url`), but Gitea's and Forgejo's implementation
//! of the same service (`routers/api/actions/artifactsv4.go`) writes them through Go's
//! `protojson.Marshal`, whose default is the lowerCamelCase JSON names (`signedUploadUrl`,
//! `artifactId`). The protobuf JSON mapping has readers accept both, and the official client
//! does (see `read_message`).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Secret;
use super::retry::{Attempt, RetryPolicy, Retryable, retry_for, short_message, with_retries};
use crate::error::{Error, Result};

const SERVICE: &str = "github.actions.results.api.v1.ArtifactService";
/// The artifact version the official client sends today (`@actions/artifact` 2.x to 6.x).
const ARTIFACT_VERSION: u32 = 7;
/// The block size the official client uploads with (`getUploadChunkSize`).
const BLOCK_SIZE: usize = 8 << 20;
/// The Azure Storage REST API version sent with blob requests.
const AZURE_VERSION: &str = "2025-01-05";

/// Where and as whom to upload: what the runner gives a job step.
#[derive(Debug, Clone)]
pub struct Runtime {
    token: Secret,
    /// Scheme and host of `ACTIONS_RESULTS_URL`: the client keeps only the origin.
    results_origin: String,
    run_backend_id: String,
    job_backend_id: String,
}

pub(super) const NOT_IN_ACTIONS: &str = "uploading an artifact needs ACTIONS_RUNTIME_TOKEN and \
ACTIONS_RESULTS_URL, which the GitHub Actions runner gives to actions but not to `run:` steps; \
run dbbackup inside a GitHub Actions job and expose them to the step, for instance with \
`uses: crazy-max/ghaction-github-runtime@v3` before it";

impl Runtime {
    /// Reads the runtime token and results URL from the job's environment.
    pub fn from_env() -> Result<Runtime> {
        let token = std::env::var("ACTIONS_RUNTIME_TOKEN").unwrap_or_default();
        let url = std::env::var("ACTIONS_RESULTS_URL").unwrap_or_default();
        Self::new(token, &url)
    }

    /// From a runtime token and results URL as the runner gives them.
    pub fn new(token: String, results_url: &str) -> Result<Runtime> {
        if token.is_empty() || results_url.is_empty() {
            return Err(Error::Remote(NOT_IN_ACTIONS.into()));
        }
        let (run_backend_id, job_backend_id) = backend_ids(&token)?;
        Ok(Runtime {
            token: Secret(token),
            results_origin: origin(results_url)?,
            run_backend_id,
            job_backend_id,
        })
    }
}

/// The scheme, host and port of a URL, as `new URL(url).origin` gives them.
fn origin(url: &str) -> Result<String> {
    let parsed: reqwest::Url = url
        .parse()
        .map_err(|e| Error::Remote(format!("ACTIONS_RESULTS_URL is not a URL ({e})")))?;
    Ok(parsed.origin().ascii_serialization())
}

/// The workflow run and job backend ids, from the runtime token's `scp` claim. The token is a
/// JWT; only its payload is read, its signature is the service's business.
fn backend_ids(token: &str) -> Result<(String, String)> {
    let invalid = || {
        Error::Remote(
            "ACTIONS_RUNTIME_TOKEN is not a runtime token with an Actions.Results scope; \
             run dbbackup inside a GitHub Actions job"
                .into(),
        )
    };
    let payload = token.split('.').nth(1).ok_or_else(invalid)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let scp = claims
        .get("scp")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    scp.split(' ')
        .map(|scope| scope.split(':').collect::<Vec<_>>())
        .find(|parts| parts[0] == "Actions.Results")
        .and_then(|parts| match parts.as_slice() {
            [_, run, job] => Some((run.to_string(), job.to_string())),
            _ => None,
        })
        .ok_or_else(invalid)
}

/// What the service says about a finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub id: u64,
    pub name: String,
    /// Bytes of the zip.
    pub size: u64,
    /// sha256 of the zip, lowercase hex.
    pub sha256: String,
}

/// Uploads the zip at `zip_path` as the artifact `name`.
pub async fn upload_zip(
    runtime: &Runtime,
    policy: &RetryPolicy,
    zip_path: &Path,
    name: &str,
    retention_days: Option<u32>,
) -> Result<Uploaded> {
    let http = http_client()?;
    let twirp = Twirp {
        http: &http,
        runtime,
        policy,
    };
    let mut create = json!({
        "workflow_run_backend_id": runtime.run_backend_id,
        "workflow_job_run_backend_id": runtime.job_backend_id,
        "name": name,
        "mime_type": "application/zip",
        "version": ARTIFACT_VERSION,
    });
    if let Some(days) = retention_days {
        let expires = OffsetDateTime::now_utc() + time::Duration::days(days.into());
        create["expires_at"] = json!(expires.format(&Rfc3339).expect("UTC time formats"));
    }
    let upload_url = signed_upload_url(&twirp.call("CreateArtifact", &create).await?, name)?;
    let (size, sha256) = upload_blob(&http, policy, &upload_url, zip_path).await?;
    let finalize = json!({
        "workflow_run_backend_id": runtime.run_backend_id,
        "workflow_job_run_backend_id": runtime.job_backend_id,
        "name": name,
        "size": size.to_string(),
        "hash": format!("sha256:{sha256}"),
    });
    let id = finalized_artifact_id(&twirp.call("FinalizeArtifact", &finalize).await?, name)?;
    Ok(Uploaded {
        id,
        name: name.to_string(),
        size,
        sha256,
    })
}

/// Where to upload the zip, from CreateArtifact's answer `{ok, signed_upload_url}`. The answer
/// comes from the network, so an `ok` without a usable http(s) URL is refused here, before any
/// block is sent.
pub fn signed_upload_url(answer: &str, name: &str) -> Result<reqwest::Url> {
    let created: CreateResponse = read_message(answer).map_err(|e| {
        Error::Remote(format!(
            "CreateArtifact for {name}: unexpected answer from the artifact service ({e})"
        ))
    })?;
    if !created.ok {
        return Err(Error::Remote(format!(
            "CreateArtifact for {name}: the artifact service answered not ok"
        )));
    }
    reqwest::Url::parse(&created.signed_upload_url)
        .ok()
        .filter(|url| matches!(url.scheme(), "https" | "http"))
        .ok_or_else(|| {
            Error::Remote(format!(
                "CreateArtifact for {name}: the artifact service answered ok without a usable \
                 upload URL; nothing was uploaded, try again later"
            ))
        })
}

/// A response message of the artifact service, as `read_message` reads it.
trait Message: serde::de::DeserializeOwned {
    /// Each field dbbackup reads, by its proto name and its JSON name (the proto name in
    /// lowerCamelCase, as protoc derives it when no `json_name` option is given, and the
    /// service's `artifact.proto` gives none).
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// A Twirp answer, read the way the official client reads it: `JSON.parse`, then protobuf-ts's
/// `fromJson` with `ignoreUnknownFields: true` (`generated/results/api/v1/
/// artifact.twirp-client.ts`), whose reader (`ReflectionJsonReader.read` in
/// `@protobuf-ts/runtime` 2.11, which `@actions/artifact` 6.2.1 ships) maps the proto name and
/// the JSON name of a field to the same field and assigns the members in turn. So:
/// - either spelling of a field is accepted, because the protobuf JSON mapping has readers
///   accept both, and Gitea and Forgejo answer with the JSON names where GitHub answers with
///   the proto names;
/// - a field given in both spellings is not an error: the one standing last in the object
///   wins. Go's `protojson` refuses such an object ("duplicate field") and the protobuf
///   conformance suite allows either; doing as the official client does means dbbackup
///   refuses no answer that client takes. A key repeated as it is keeps its first place and
///   its last value, as `JSON.parse` makes it;
/// - a field the reader does not know is skipped, so that the service may add fields;
/// - a `null` member is skipped too: the field keeps what an earlier spelling gave, or its
///   default value, which is what the mapping makes of `null`.
///
/// The answer must be a JSON object: serde would otherwise also take an array of the fields
/// in order (`[true, 108]`), which no service sends and the official client refuses.
fn read_message<M: Message>(answer: &str) -> serde_json::Result<M> {
    let Members(members) = serde_json::from_str(answer)?;
    // The members that name a field, each key once, as `JSON.parse` leaves them.
    let mut known: Vec<(String, &str, Value)> = Vec::new();
    for (key, value) in members {
        let Some((proto_name, _)) = M::FIELDS
            .iter()
            .find(|(proto_name, json_name)| key == *proto_name || key == *json_name)
        else {
            continue;
        };
        match known.iter_mut().find(|(seen, _, _)| *seen == key) {
            Some(member) => member.2 = value,
            None => known.push((key, proto_name, value)),
        }
    }
    let mut fields = serde_json::Map::new();
    for (_, proto_name, value) in known {
        if !value.is_null() {
            fields.insert(proto_name.to_string(), value);
        }
    }
    serde_json::from_value(Value::Object(fields))
}

/// The members of a JSON object in the order they stand in, which `serde_json::Map` (sorted by
/// name) does not keep, and which decides between two spellings of one field.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Members, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

/// The artifact id from FinalizeArtifact's answer `{ok, artifact_id}`.
pub fn finalized_artifact_id(answer: &str, name: &str) -> Result<u64> {
    let not_saved = |why: String| {
        Error::Remote(format!(
            "FinalizeArtifact for {name}: {why}; the artifact was not saved"
        ))
    };
    let finalized: FinalizeResponse = read_message(answer)
        .map_err(|e| not_saved(format!("unexpected answer from the artifact service ({e})")))?;
    match (finalized.ok, finalized.artifact_id.as_u64()) {
        (true, Some(id)) => Ok(id),
        _ => Err(not_saved("the artifact service answered not ok".into())),
    }
}

pub(super) fn http_client() -> Result<reqwest::Client> {
    super::install_crypto();
    reqwest::Client::builder()
        .user_agent(concat!("dbbackup/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(300))
        .build()
        .map_err(|e| Error::Remote(format!("cannot set up the HTTP client: {e}")))
}

/// `CreateArtifactResponse`. A field left out is its default value: protobuf JSON writers
/// leave out fields that hold it (`protojson.Marshal` does).
#[derive(Deserialize)]
struct CreateResponse {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    signed_upload_url: String,
}

impl Message for CreateResponse {
    const FIELDS: &'static [(&'static str, &'static str)] =
        &[("ok", "ok"), ("signed_upload_url", "signedUploadUrl")];
}

/// `FinalizeArtifactResponse`.
#[derive(Deserialize)]
struct FinalizeResponse {
    #[serde(default)]
    ok: bool,
    /// int64 in protobuf JSON is a string; accept a number as well, as the official client does.
    #[serde(default)]
    artifact_id: Int64,
}

impl Message for FinalizeResponse {
    const FIELDS: &'static [(&'static str, &'static str)] =
        &[("ok", "ok"), ("artifact_id", "artifactId")];
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Int64 {
    Text(String),
    Number(u64),
    #[default]
    Missing,
}

impl Int64 {
    fn as_u64(&self) -> Option<u64> {
        match self {
            Int64::Text(t) => t.parse().ok(),
            Int64::Number(n) => Some(*n),
            Int64::Missing => None,
        }
    }
}

struct Twirp<'a> {
    http: &'a reqwest::Client,
    runtime: &'a Runtime,
    policy: &'a RetryPolicy,
}

impl Twirp<'_> {
    /// Calls `method` and returns the text of its successful answer.
    async fn call(&self, method: &str, body: &Value) -> Result<String> {
        let url = format!("{}/twirp/{SERVICE}/{method}", self.runtime.results_origin);
        let body = body.to_string();
        let what = format!("artifact service {method}");
        with_retries(self.policy, &what, || async {
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&self.runtime.token.0)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => return transport_retry(e),
            };
            let status = response.status();
            let headers = response.headers().clone();
            let text = answer_text(response).await;
            if status.is_success() {
                return match text {
                    Ok(text) => Attempt::Done(text),
                    Err(e) => Attempt::Fail(Error::Remote(format!("{what}: {e}"))),
                };
            }
            let text = text.unwrap_or_default();
            if let Some(retry) = twirp_retry(status, &headers, &text) {
                return retry.into();
            }
            Attempt::Fail(Error::Remote(format!(
                "{what} refused: HTTP {status}{}{}",
                short_message(&text),
                twirp_hint(status)
            )))
        })
        .await
    }
}

/// The official client retries 429 and 500/502/503/504 on the artifact service, never a 403.
fn twirp_retry(
    status: reqwest::StatusCode,
    headers: &http::HeaderMap,
    body: &str,
) -> Option<Retryable> {
    if status == reqwest::StatusCode::FORBIDDEN {
        return None;
    }
    retry_for(status, headers, body)
}

fn twirp_hint(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        401 | 403 => {
            " (the runtime token was refused: it is valid only inside the job that received it)"
        }
        409 => {
            " (an artifact of that name already exists in this run: give another --artifact-name)"
        }
        _ => "",
    }
}

/// The artifact service and blob storage answer with small JSON or XML documents; a body larger
/// than this is not one of them, and reading it whole could fill memory.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The text of an answer, read up to `MAX_ANSWER_BYTES`. A transport error or a larger body is an
/// error saying so; callers reporting a failed status use the empty text instead.
pub(super) async fn answer_text(
    mut response: reqwest::Response,
) -> std::result::Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes, which no answer of this service is"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Connection errors and timeouts are retried; the error text leaves out the URL, which may be
/// a signed one.
pub(super) fn transport_retry<T>(err: reqwest::Error) -> Attempt<T> {
    Attempt::Retry {
        wait: None,
        why: format!("network error: {}", err.without_url()),
    }
}

/// Uploads the file as a block blob in 8 MiB blocks; returns its size and sha256.
async fn upload_blob(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    signed_url: &reqwest::Url,
    path: &Path,
) -> Result<(u64, String)> {
    let mut file =
        File::open(path).map_err(|e| Error::unreadable(path, format!("cannot read: {e}")))?;
    let mut hasher = Sha256::new();
    let mut block_ids = Vec::new();
    let mut size = 0u64;
    let prefix = format!("{:016x}", fastrand::u64(..));
    loop {
        let block = read_block(&mut file, path)?;
        if block.is_empty() && !block_ids.is_empty() {
            break;
        }
        hasher.update(&block);
        size += block.len() as u64;
        let id = STANDARD.encode(format!("{prefix}-{:06}", block_ids.len()));
        let url = with_query(signed_url, &[("comp", "block"), ("blockid", &id)]);
        let headers = [("content-type", "application/octet-stream")];
        blob_put(
            http,
            policy,
            &url,
            "upload a block",
            block.clone(),
            &headers,
        )
        .await?;
        block_ids.push(id);
        if block.len() < BLOCK_SIZE {
            break;
        }
    }
    let list: String = block_ids
        .iter()
        .map(|id| format!("<Latest>{id}</Latest>"))
        .collect();
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><BlockList>{list}</BlockList>");
    let url = with_query(signed_url, &[("comp", "blocklist")]);
    let headers = [
        ("content-type", "application/xml"),
        ("x-ms-blob-content-type", "application/zip"),
    ];
    blob_put(
        http,
        policy,
        &url,
        "commit the block list",
        xml.into_bytes(),
        &headers,
    )
    .await?;
    Ok((size, format!("{:x}", hasher.finalize())))
}

fn read_block(file: &mut File, path: &Path) -> Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    file.take(BLOCK_SIZE as u64)
        .read_to_end(&mut block)
        .map_err(|e| Error::unreadable(path, format!("cannot read: {e}")))?;
    Ok(block)
}

fn with_query(url: &reqwest::Url, pairs: &[(&str, &str)]) -> String {
    let mut url = url.clone();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

async fn blob_put(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    url: &str,
    what: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Result<()> {
    let what = format!("blob storage: {what}");
    with_retries(policy, &what, || async {
        let mut request = http
            .put(url)
            .header("x-ms-version", AZURE_VERSION)
            .body(body.clone());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_retry(e),
        };
        let status = response.status();
        let response_headers = response.headers().clone();
        let text = answer_text(response).await.unwrap_or_default();
        if status.is_success() {
            return Attempt::Done(());
        }
        match retry_for(status, &response_headers, &text) {
            Some(retry) => retry.into(),
            None => Attempt::Fail(Error::Remote(format!(
                "{what} refused: HTTP {status} (the signed upload URL may have expired)"
            ))),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!("x.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn reads_backend_ids_from_the_scp_claim() {
        let token = jwt(r#"{"scp":"Actions.ExampleScope Actions.Results:run-1:job-2"}"#);
        assert_eq!(
            backend_ids(&token).unwrap(),
            ("run-1".to_string(), "job-2".to_string())
        );
        for bad in [
            jwt(r#"{"scp":"Actions.ExampleScope"}"#),
            jwt(r#"{"scp":"Actions.Results:only-one"}"#),
            jwt(r#"{"sub":"x"}"#),
            "not-a-jwt".to_string(),
        ] {
            assert!(backend_ids(&bad).is_err(), "{bad}");
        }
    }

    const URL: &str = "https://blob.example/c/a.zip?sig=x";

    fn created(answer: &str) -> Option<String> {
        signed_upload_url(answer, "a").ok().map(String::from)
    }

    fn finalized(answer: &str) -> Option<u64> {
        finalized_artifact_id(answer, "a").ok()
    }

    #[test]
    fn reads_answers_under_proto_and_json_names() {
        // GitHub's spelling, and Gitea's and Forgejo's (`protojson.Marshal`).
        for answer in [
            format!(r#"{{"ok":true,"signed_upload_url":"{URL}"}}"#),
            format!(r#"{{"ok":true,"signedUploadUrl":"{URL}"}}"#),
        ] {
            assert_eq!(created(&answer).as_deref(), Some(URL), "{answer}");
        }
        for answer in [
            r#"{"ok":true,"artifact_id":"108"}"#,
            r#"{"ok":true,"artifactId":"108"}"#,
            // int64 is a JSON string in protobuf JSON, and readers take a number too.
            r#"{"ok":true,"artifact_id":108}"#,
            r#"{"ok":true,"artifactId":108}"#,
        ] {
            assert_eq!(finalized(answer), Some(108), "{answer}");
        }
        // An int64 beyond 2^53, which only the string form carries exactly.
        assert_eq!(
            finalized(r#"{"ok":true,"artifactId":"9007199254740993"}"#),
            Some(9_007_199_254_740_993)
        );
    }

    #[test]
    fn skips_fields_it_does_not_know() {
        let answer = format!(
            r#"{{"ok":true,"signedUploadUrl":"{URL}","expiresAt":"2099-01-01T00:00:00Z","meta":{{"a":[1]}}}}"#
        );
        assert_eq!(created(&answer).as_deref(), Some(URL));
        let answer = r#"{"artifactId":"7","databaseId":"8","ok":true,"size":"10"}"#;
        assert_eq!(finalized(answer), Some(7));
        // Other spellings are other, unknown, fields.
        assert_eq!(
            created(&format!(r#"{{"ok":true,"SignedUploadUrl":"{URL}"}}"#)),
            None
        );
        assert_eq!(finalized(r#"{"ok":true,"artifactID":"7"}"#), None);
    }

    #[test]
    fn the_last_spelling_of_a_field_wins() {
        let other = "https://blob.example/other.zip";
        let both =
            format!(r#"{{"signed_upload_url":"{other}","ok":true,"signedUploadUrl":"{URL}"}}"#);
        assert_eq!(created(&both).as_deref(), Some(URL));
        let both =
            format!(r#"{{"signedUploadUrl":"{URL}","ok":true,"signed_upload_url":"{other}"}}"#);
        assert_eq!(created(&both).as_deref(), Some(other));
        assert_eq!(
            finalized(r#"{"artifactId":"1","ok":true,"artifact_id":2}"#),
            Some(2)
        );
        // A null member is skipped: the other spelling, before or after it, stands.
        assert_eq!(
            finalized(r#"{"ok":true,"artifact_id":"1","artifactId":null}"#),
            Some(1)
        );
        assert_eq!(
            finalized(r#"{"ok":true,"artifact_id":null,"artifactId":"3"}"#),
            Some(3)
        );
        assert_eq!(finalized(r#"{"ok":null,"artifactId":"3"}"#), None);
        // A key repeated as it is keeps its last value but its first place (`JSON.parse`).
        assert_eq!(finalized(r#"{"ok":true,"ok":null,"artifactId":"3"}"#), None);
        assert_eq!(
            finalized(r#"{"artifactId":"1","ok":true,"artifact_id":"2","artifactId":"3"}"#),
            Some(2)
        );
    }

    #[test]
    fn refuses_answers_that_are_not_objects_or_not_ok() {
        for answer in [
            "[true, 108]".to_string(),
            format!(r#"[true, "{URL}"]"#),
            "null".to_string(),
            "".to_string(),
            format!(r#"{{"signedUploadUrl":"{URL}"}}"#),
            format!(r#"{{"ok":"true","signedUploadUrl":"{URL}"}}"#),
            r#"{"ok":true,"signedUploadUrl":"file:///etc/passwd"}"#.to_string(),
            r#"{"ok":true,"signedUploadUrl":42}"#.to_string(),
        ] {
            assert_eq!(created(&answer), None, "{answer}");
        }
        for answer in [
            "[true, 108]",
            r#"{"artifactId":"108"}"#,
            r#"{"ok":false,"artifactId":"108"}"#,
            r#"{"ok":true}"#,
            r#"{"ok":true,"artifactId":"abc"}"#,
            r#"{"ok":true,"artifactId":-1}"#,
        ] {
            assert_eq!(finalized(answer), None, "{answer}");
        }
    }

    #[test]
    fn keeps_only_the_origin_of_the_results_url() {
        assert_eq!(
            origin("https://results.example:8443/some/path?x=1").unwrap(),
            "https://results.example:8443"
        );
    }
}
