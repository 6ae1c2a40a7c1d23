//! A local stand-in for GitHub: the Actions artifact service (Twirp), Azure blob storage as the
//! artifact service's signed URLs reach it, and the REST endpoints for artifacts. Every status
//! code, JSON field and header it produces is one GitHub documents or the official clients rely
//! on; tests/it/support/FAKE_SERVER.md gives the source of each.
//!
//! It records every request so tests can check what a client sent, and takes injected faults
//! (`fail_next`) to check retries.

#![allow(dead_code)] // each test binary uses a different part of it

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread;

use sha2::{Digest, Sha256};
use tiny_http::{Header, Response, Server};

pub const OWNER: &str = "octo";
pub const REPO: &str = "shop";
pub const TOKEN: &str = "ghs_faketoken0123456789";
pub const RUN_BACKEND_ID: &str = "ce7f54c7-61c7-4aae-887f-30da475f5f1a";
pub const JOB_BACKEND_ID: &str = "ca395085-040a-526b-2ce8-bdc85f692774";
/// The workflow run (database id) that uploads land in.
pub const RUN_ID: u64 = 4242;
/// The repository's id, and a fork's: a pull request from a fork runs with the fork as its
/// head repository.
const REPO_ID: u64 = 1296269;
const FORK_REPO_ID: u64 = 7_654_321;
/// What the signed URLs carry as their signature: a secret that must never be printed.
pub const SIG: &str = "fakeSig%2Bsecret";
const TWIRP: &str = "/twirp/github.actions.results.api.v1.ArtifactService/";
/// Where GitHub Enterprise Server roots its REST API: `https://HOST/api/v3`.
pub const GHES_PREFIX: &str = "/api/v3";

/// Environment variables a real job may have set that must not reach the binary under test.
pub const JOB_VARS: [&str; 14] = [
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_EVENT_PATH",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RESULTS_URL",
    "GITHUB_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "GITHUB_RUN_ID",
    "GITHUB_RETENTION_DAYS",
    "GITHUB_SERVER_URL",
    "DBBACKUP_RETRY_BUDGET_SECS",
    "DBBACKUP_RETRY_BASE_MS",
];

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    Finalize,
    BlobBlock,
    BlobCommit,
    List,
    Delete,
    Zip,
    Download,
    Repo,
}

/// A canned failure answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `status` with a JSON body in the endpoint's error shape.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooMany { retry_after: u64 },
    /// 403 "You have exceeded a secondary rate limit" with `Retry-After: secs`.
    Secondary { retry_after: u64 },
    /// 403 with `x-ratelimit-remaining: 0` and a reset `secs` from now.
    Primary { reset_in: u64 },
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Query parameters, sorted by name.
    pub query: BTreeMap<String, String>,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Clone)]
pub struct FakeArtifact {
    pub id: u64,
    pub name: String,
    pub zip: Vec<u8>,
    pub created_at: String,
    pub expires_at: String,
    pub expired: bool,
    pub run_id: u64,
    /// `workflow_run.head_repository_id`: the repository's own, or a fork's.
    pub head_repository_id: u64,
}

#[derive(Default)]
struct Upload {
    name: String,
    blocks: HashMap<String, Vec<u8>>,
    committed: Option<Vec<u8>>,
    content_type: Option<String>,
    expires_at: Option<String>,
    finalized: bool,
}

#[derive(Default)]
struct State {
    artifacts: Vec<FakeArtifact>,
    uploads: Vec<Upload>,
    next_id: u64,
    faults: VecDeque<(Route, Fault)>,
    requests: Vec<Recorded>,
    /// The REST token lacks `actions: write`: deletes answer 403.
    read_only: bool,
    /// `visibility` of the repository as `GET /repos/{owner}/{repo}` reports it.
    visibility: &'static str,
    runtime_token: String,
    /// The artifact service answers with lowerCamelCase JSON names, as Gitea and Forgejo do.
    camel_case_answers: bool,
    /// Blob storage answers every download whole, as a server that ignores `Range` does.
    ignore_range: bool,
    /// Bytes of artifact zips served by the download URL, ranges included.
    served: u64,
}

pub struct FakeGitHub {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: Arc<Server>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeGitHub {
    pub fn start() -> FakeGitHub {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind the fake server"));
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            runtime_token: runtime_token(),
            visibility: "private",
            ..State::default()
        }));
        let (s, st, base) = (server.clone(), state.clone(), url.clone());
        let thread = thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let recorded = record(&mut request);
                let response = {
                    let mut state = st.lock().unwrap();
                    state.requests.push(recorded.clone());
                    // GitHub Enterprise Server serves the REST API under /api/v3.
                    match recorded.path.strip_prefix(GHES_PREFIX) {
                        Some(rest) => {
                            let inner = Recorded {
                                path: rest.to_string(),
                                ..recorded
                            };
                            handle(&mut state, &format!("{base}{GHES_PREFIX}"), &inner)
                        }
                        None => handle(&mut state, &base, &recorded),
                    }
                };
                let _ = request.respond(response);
            }
        });
        FakeGitHub {
            url,
            state,
            server,
            thread: Some(thread),
        }
    }

    /// The environment a GitHub Actions job step would see, pointing at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACTIONS_RUNTIME_TOKEN", runtime_token()),
            ("ACTIONS_RESULTS_URL", format!("{}/", self.url)),
            ("GITHUB_TOKEN", TOKEN.to_string()),
            ("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}")),
            ("GITHUB_API_URL", self.url.clone()),
            ("GITHUB_RUN_ID", RUN_ID.to_string()),
        ]
    }

    /// The next `times` requests to `route` get `fault` instead of their answer.
    pub fn fail_next(&self, route: Route, fault: Fault, times: usize) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..times {
            state.faults.push_back((route, fault.clone()));
        }
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.state.lock().unwrap().read_only = read_only;
    }

    /// `public`, `private` or `internal`, as the repository API will report it.
    pub fn set_visibility(&self, visibility: &'static str) {
        self.state.lock().unwrap().visibility = visibility;
    }

    /// Whether the artifact service answers with the lowerCamelCase JSON names of the fields
    /// (`signedUploadUrl`, `artifactId`), as Gitea's and Forgejo's implementation of it does,
    /// instead of the proto field names GitHub's answers carry.
    pub fn set_camel_case_answers(&self, camel_case: bool) {
        self.state.lock().unwrap().camel_case_answers = camel_case;
    }

    /// Adds a finished artifact, `age` seconds old, as another run would have left it.
    pub fn seed(&self, name: &str, age: u64, expired: bool, run_id: u64, zip: Vec<u8>) -> u64 {
        let mut state = self.state.lock().unwrap();
        state.next_id += 1;
        let id = state.next_id;
        let created = now() - age as i64;
        state.artifacts.push(FakeArtifact {
            id,
            name: name.to_string(),
            zip,
            created_at: rfc3339(created),
            expires_at: rfc3339(if expired {
                created + 1
            } else {
                created + 90 * 86400
            }),
            expired,
            run_id,
            head_repository_id: REPO_ID,
        });
        id
    }

    /// Adds an artifact as a run of a pull request from a fork would have left it.
    pub fn seed_from_fork(&self, name: &str, age: u64, run_id: u64, zip: Vec<u8>) -> u64 {
        let id = self.seed(name, age, false, run_id, zip);
        let mut state = self.state.lock().unwrap();
        if let Some(a) = state.artifacts.iter_mut().find(|a| a.id == id) {
            a.head_repository_id = FORK_REPO_ID;
        }
        id
    }

    /// Blob storage answers `Range` requests with the whole blob (`200`), as a server that
    /// does not support ranges does.
    pub fn set_ignore_range(&self, ignore: bool) {
        self.state.lock().unwrap().ignore_range = ignore;
    }

    /// Bytes of artifact zips the download URL has served so far (a ranged read counts only
    /// its parts).
    pub fn bytes_served(&self) -> u64 {
        self.state.lock().unwrap().served
    }

    pub fn artifacts(&self) -> Vec<FakeArtifact> {
        self.state.lock().unwrap().artifacts.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A runtime token shaped like the runner's: a JWT whose `scp` claim carries the backend ids.
/// (Unsigned: clients only decode it; the service checks it, and so does this fake.)
pub fn runtime_token() -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = format!(
        r#"{{"scp":"Actions.ExampleScope Actions.Results:{RUN_BACKEND_ID}:{JOB_BACKEND_ID}","iss":"fake"}}"#
    );
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"typ":"JWT","alg":"RS256"}"#),
        b64(&claims)
    )
}

fn record(request: &mut tiny_http::Request) -> Recorded {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect();
    let headers = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    Recorded {
        method: request.method().as_str().to_string(),
        path: path.to_string(),
        query,
        headers,
        body,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Answer = Response<std::io::Cursor<Vec<u8>>>;

fn json(status: u16, value: serde_json::Value) -> Answer {
    Response::from_data(value.to_string())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json; charset=utf-8"))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

fn empty(status: u16) -> Answer {
    Response::from_data(Vec::new()).with_status_code(status)
}

fn route_of(req: &Recorded) -> Option<Route> {
    let p = req.path.as_str();
    let rest = format!("/repos/{OWNER}/{REPO}/actions/artifacts");
    Some(match req.method.as_str() {
        "POST" if p == format!("{TWIRP}CreateArtifact") => Route::Create,
        "POST" if p == format!("{TWIRP}FinalizeArtifact") => Route::Finalize,
        "PUT" if p.starts_with("/blob/") => match req.query.get("comp").map(String::as_str) {
            Some("blocklist") => Route::BlobCommit,
            _ => Route::BlobBlock,
        },
        "GET" if p == rest => Route::List,
        "GET" if p.starts_with(&rest) && p.ends_with("/zip") => Route::Zip,
        "DELETE" if p.starts_with(&rest) => Route::Delete,
        "GET" if p.starts_with("/download/") => Route::Download,
        "GET" if p == format!("/repos/{OWNER}/{REPO}") => Route::Repo,
        _ => return None,
    })
}

fn handle(state: &mut State, base: &str, req: &Recorded) -> Answer {
    let route = route_of(req);
    if let Some(route) = route
        && let Some(pos) = state.faults.iter().position(|(r, _)| *r == route)
    {
        let (_, fault) = state.faults.remove(pos).unwrap();
        return fault_answer(route, &fault);
    }
    match route {
        Some(Route::Create) => twirp_auth(state, req).unwrap_or_else(|| create(state, base, req)),
        Some(Route::Finalize) => twirp_auth(state, req).unwrap_or_else(|| finalize(state, req)),
        Some(Route::BlobBlock) => blob_put(state, req),
        Some(Route::BlobCommit) => blob_commit(state, req),
        Some(Route::List) => rest_auth(req).unwrap_or_else(|| list(state, base, req)),
        Some(Route::Zip) => rest_auth(req).unwrap_or_else(|| zip(state, base, req)),
        Some(Route::Delete) => rest_auth(req).unwrap_or_else(|| delete(state, req)),
        Some(Route::Download) => download(state, req),
        Some(Route::Repo) => rest_auth(req).unwrap_or_else(|| {
            json(
                200,
                serde_json::json!({
                    "id": REPO_ID,
                    "name": REPO,
                    "full_name": format!("{OWNER}/{REPO}"),
                    "owner": {"login": OWNER},
                    "private": state.visibility != "public",
                    "visibility": state.visibility,
                }),
            )
        }),
        None if req.path.starts_with(TWIRP) => {
            twirp_auth(state, req).unwrap_or_else(|| twirp_other(state, base, req))
        }
        None => json(
            404,
            serde_json::json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

fn fault_answer(route: Route, fault: &Fault) -> Answer {
    let twirp = matches!(route, Route::Create | Route::Finalize);
    match fault {
        Fault::Status(status) if twirp => json(
            *status,
            serde_json::json!({"code": "internal", "msg": "injected failure"}),
        ),
        Fault::Status(status) if matches!(route, Route::BlobBlock | Route::BlobCommit | Route::Download) => {
            Response::from_data(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InternalError</Code><Message>injected</Message></Error>",
            )
            .with_status_code(*status)
            .with_header(header("Content-Type", "application/xml"))
        }
        Fault::Status(status) => json(
            *status,
            serde_json::json!({"message": "Server Error", "documentation_url": "https://docs.github.com/rest"}),
        ),
        Fault::TooMany { retry_after } => json(
            429,
            serde_json::json!({"message": "Too Many Requests", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        )
        .with_header(header("Retry-After", &retry_after.to_string())),
        Fault::Secondary { retry_after } => json(
            403,
            serde_json::json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
            }),
        )
        .with_header(header("Retry-After", &retry_after.to_string())),
        Fault::Primary { reset_in } => json(
            403,
            serde_json::json!({"message": "API rate limit exceeded for installation ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        )
        .with_header(header("x-ratelimit-limit", "1000"))
        .with_header(header("x-ratelimit-remaining", "0"))
        .with_header(header("x-ratelimit-used", "1000"))
        .with_header(header(
            "x-ratelimit-reset",
            &(now() as u64 + reset_in).to_string(),
        )),
    }
}

// --- the artifact service (Twirp JSON) ---

fn twirp_error(status: u16, code: &str, msg: &str) -> Answer {
    json(status, serde_json::json!({"code": code, "msg": msg}))
}

/// A successful Twirp answer: the message in protobuf JSON, under the proto field names as
/// GitHub's service writes them, or under their lowerCamelCase JSON names as Gitea's writes
/// them (`protojson.Marshal` without `UseProtoNames`).
fn twirp_ok(state: &State, message: serde_json::Value) -> Answer {
    if state.camel_case_answers {
        json(200, camel_case_keys(message))
    } else {
        json(200, message)
    }
}

/// The message with every field named by its JSON name, nested messages included.
fn camel_case_keys(message: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match message {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| (json_name(&name), camel_case_keys(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

/// The JSON name protoc gives a field without a `json_name` option: each underscore dropped
/// and the letter after it capitalised (`signed_upload_url` → `signedUploadUrl`).
fn json_name(proto_name: &str) -> String {
    let mut name = String::with_capacity(proto_name.len());
    let mut capitalise = false;
    for c in proto_name.chars() {
        if c == '_' {
            capitalise = true;
        } else if capitalise {
            name.push(c.to_ascii_uppercase());
            capitalise = false;
        } else {
            name.push(c);
        }
    }
    name
}

fn twirp_auth(state: &State, req: &Recorded) -> Option<Answer> {
    let expected = format!("Bearer {}", state.runtime_token);
    if req.headers.get("authorization") != Some(&expected) {
        return Some(twirp_error(
            401,
            "unauthenticated",
            "invalid or missing token",
        ));
    }
    if !req
        .headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Some(twirp_error(
            400,
            "malformed",
            "Content-Type must be application/json",
        ));
    }
    None
}

fn ids_ok(body: &serde_json::Value) -> bool {
    body["workflow_run_backend_id"] == RUN_BACKEND_ID
        && body["workflow_job_run_backend_id"] == JOB_BACKEND_ID
}

fn create(state: &mut State, base: &str, req: &Recorded) -> Answer {
    let body = req.json();
    let name = body["name"].as_str().unwrap_or_default().to_string();
    if !ids_ok(&body) || name.is_empty() || body["version"].as_i64().is_none() {
        return twirp_error(
            400,
            "invalid_argument",
            "backend ids, name and version are required",
        );
    }
    let taken = state.uploads.iter().any(|u| u.name == name && u.finalized)
        || state
            .artifacts
            .iter()
            .any(|a| a.name == name && a.run_id == RUN_ID);
    if taken {
        return twirp_error(
            409,
            "already_exists",
            "an artifact with this name already exists on the workflow run",
        );
    }
    state.uploads.push(Upload {
        name: name.clone(),
        expires_at: body["expires_at"].as_str().map(str::to_string),
        ..Upload::default()
    });
    let key = state.uploads.len() - 1;
    twirp_ok(
        state,
        serde_json::json!({
            "ok": true,
            "signed_upload_url": format!("{base}/blob/actions-results/{key}/{name}.zip?sv=2025-01-05&se=2099-01-01T00%3A00%3A00Z&sr=b&sp=cw&sig={SIG}")
        }),
    )
}

fn upload_for<'a>(state: &'a mut State, req: &Recorded) -> Result<&'a mut Upload, Answer> {
    let sig_ok = req.query.get("sig").map(String::as_str) == Some(&percent_decode(SIG)[..]);
    let key: Option<usize> = req.path.split('/').nth(3).and_then(|k| k.parse().ok());
    match key.and_then(|k| state.uploads.get_mut(k)) {
        Some(upload) if sig_ok && !upload.finalized => Ok(upload),
        _ => Err(Response::from_data(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code></Error>",
        )
        .with_status_code(403)),
    }
}

fn blob_put(state: &mut State, req: &Recorded) -> Answer {
    let upload = match upload_for(state, req) {
        Ok(u) => u,
        Err(answer) => return answer,
    };
    let is_block = req.query.get("comp").map(String::as_str) == Some("block");
    match (is_block, req.query.get("blockid")) {
        (true, Some(id)) => {
            upload.blocks.insert(id.clone(), req.body.clone());
            empty(201)
        }
        // Put Blob: the whole content in one request, as `x-ms-blob-type: BlockBlob`.
        (false, None)
            if req.headers.get("x-ms-blob-type").map(String::as_str) == Some("BlockBlob") =>
        {
            upload.committed = Some(req.body.clone());
            upload.content_type = req.headers.get("content-type").cloned();
            empty(201)
        }
        _ => empty(400),
    }
}

fn blob_commit(state: &mut State, req: &Recorded) -> Answer {
    let upload = match upload_for(state, req) {
        Ok(u) => u,
        Err(answer) => return answer,
    };
    let xml = String::from_utf8_lossy(&req.body).into_owned();
    let mut content = Vec::new();
    for part in xml.split("<Latest>").skip(1) {
        let Some((id, _)) = part.split_once("</Latest>") else {
            return empty(400);
        };
        match upload.blocks.get(id) {
            Some(block) => content.extend_from_slice(block),
            None => return empty(400),
        }
    }
    upload.committed = Some(content);
    upload.content_type = req.headers.get("x-ms-blob-content-type").cloned();
    empty(201)
}

fn finalize(state: &mut State, req: &Recorded) -> Answer {
    let body = req.json();
    let name = body["name"].as_str().unwrap_or_default();
    let Some(key) = state
        .uploads
        .iter()
        .position(|u| u.name == name && !u.finalized)
    else {
        return twirp_error(
            404,
            "not_found",
            "no artifact of that name is being uploaded",
        );
    };
    let size: Option<u64> = match &body["size"] {
        serde_json::Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    };
    let upload = &state.uploads[key];
    let Some(content) = upload.committed.clone() else {
        return twirp_error(400, "failed_precondition", "the blob was never committed");
    };
    let hash = format!("sha256:{:x}", Sha256::digest(&content));
    if !ids_ok(&body) || size != Some(content.len() as u64) || body["hash"] != hash.as_str() {
        return twirp_error(
            400,
            "invalid_argument",
            "size or hash do not match the uploaded blob",
        );
    }
    let expires_at = upload.expires_at.clone();
    state.uploads[key].finalized = true;
    state.next_id += 1;
    let id = state.next_id;
    let created = now();
    state.artifacts.push(FakeArtifact {
        id,
        name: name.to_string(),
        zip: content,
        created_at: rfc3339(created),
        expires_at: expires_at.unwrap_or_else(|| rfc3339(created + 90 * 86400)),
        expired: false,
        run_id: RUN_ID,
        head_repository_id: REPO_ID,
    });
    twirp_ok(
        state,
        serde_json::json!({"ok": true, "artifact_id": id.to_string()}),
    )
}

/// ListArtifacts and GetSignedArtifactURL, which the official client uses within a run.
fn twirp_other(state: &mut State, base: &str, req: &Recorded) -> Answer {
    let body = req.json();
    match req.path.trim_start_matches(TWIRP) {
        "ListArtifacts" => {
            let filter = body["name_filter"].as_str();
            let found: Vec<_> = state
                .artifacts
                .iter()
                .filter(|a| a.run_id == RUN_ID && filter.is_none_or(|f| f == a.name))
                .map(|a| {
                    serde_json::json!({
                        "workflow_run_backend_id": RUN_BACKEND_ID,
                        "workflow_job_run_backend_id": JOB_BACKEND_ID,
                        "database_id": a.id.to_string(),
                        "name": a.name,
                        "size": a.zip.len().to_string(),
                        "created_at": a.created_at,
                        "digest": format!("sha256:{:x}", Sha256::digest(&a.zip)),
                    })
                })
                .collect();
            twirp_ok(state, serde_json::json!({"artifacts": found}))
        }
        "GetSignedArtifactURL" => match state.artifacts.iter().find(|a| a.name == body["name"]) {
            Some(a) => twirp_ok(
                state,
                serde_json::json!({"signed_url": format!("{base}/download/{}.zip?sig={SIG}", a.id)}),
            ),
            None => twirp_error(404, "not_found", "artifact not found"),
        },
        _ => twirp_error(404, "bad_route", "no such method"),
    }
}

// --- the REST API ---

/// GitHub takes `Authorization: Bearer TOKEN` or `token TOKEN`; no or a wrong token is a 401.
fn rest_auth(req: &Recorded) -> Option<Answer> {
    let ok = req
        .headers
        .get("authorization")
        .is_some_and(|a| a == &format!("Bearer {TOKEN}") || a == &format!("token {TOKEN}"));
    (!ok).then(|| {
        json(
            401,
            serde_json::json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        )
    })
}

fn artifact_json(base: &str, a: &FakeArtifact) -> serde_json::Value {
    let url = format!("{base}/repos/{OWNER}/{REPO}/actions/artifacts/{}", a.id);
    serde_json::json!({
        "id": a.id,
        "node_id": format!("MDg6QXJ0aWZhY3Qx{}", a.id),
        "name": a.name,
        "size_in_bytes": a.zip.len(),
        "url": url,
        "archive_download_url": format!("{url}/zip"),
        "expired": a.expired,
        "digest": format!("sha256:{:x}", Sha256::digest(&a.zip)),
        "created_at": a.created_at,
        "updated_at": a.created_at,
        "expires_at": a.expires_at,
        "workflow_run": {
            "id": a.run_id,
            "repository_id": REPO_ID,
            "head_repository_id": a.head_repository_id,
            "head_branch": "main",
            "head_sha": "86a1c6c5d3c2e1b0a9f8e7d6c5b4a39281706f5e"
        }
    })
}

fn list(state: &State, base: &str, req: &Recorded) -> Answer {
    let per_page: usize = req
        .query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = req
        .query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut matching: Vec<&FakeArtifact> = state
        .artifacts
        .iter()
        .filter(|a| req.query.get("name").is_none_or(|n| *n == a.name))
        .collect();
    matching.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let total = matching.len();
    let pages = total.div_ceil(per_page).max(1);
    let items: Vec<_> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|a| artifact_json(base, a))
        .collect();
    let link_to = |p: usize, rel: &str| {
        let mut q: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("page={p}"));
        format!(
            "<{base}/repos/{OWNER}/{REPO}/actions/artifacts?{}>; rel=\"{rel}\"",
            q.join("&")
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(link_to(page - 1, "prev"));
    }
    if page < pages {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(pages, "last"));
    }
    if page > 1 {
        links.push(link_to(1, "first"));
    }
    let mut answer = json(
        200,
        serde_json::json!({"total_count": total, "artifacts": items}),
    )
    .with_header(header("x-ratelimit-limit", "1000"))
    .with_header(header("x-ratelimit-remaining", "999"))
    .with_header(header("x-ratelimit-reset", &(now() + 3600).to_string()));
    if !links.is_empty() {
        answer = answer.with_header(header("Link", &links.join(", ")));
    }
    answer
}

fn artifact_id(path: &str) -> Option<u64> {
    path.trim_start_matches(&format!("/repos/{OWNER}/{REPO}/actions/artifacts/"))
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn zip(state: &State, base: &str, req: &Recorded) -> Answer {
    let Some(a) = artifact_id(&req.path).and_then(|id| state.artifacts.iter().find(|a| a.id == id))
    else {
        return json(404, serde_json::json!({"message": "Not Found"}));
    };
    if a.expired {
        return json(410, serde_json::json!({"message": "Artifact has expired"}));
    }
    empty(302).with_header(header(
        "Location",
        &format!("{base}/download/{}.zip?sig={SIG}", a.id),
    ))
}

fn delete(state: &mut State, req: &Recorded) -> Answer {
    if state.read_only {
        return json(
            403,
            serde_json::json!({"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/actions/artifacts#delete-an-artifact", "status": "403"}),
        );
    }
    let id = artifact_id(&req.path);
    match state.artifacts.iter().position(|a| Some(a.id) == id) {
        Some(pos) => {
            state.artifacts.remove(pos);
            empty(204)
        }
        None => json(404, serde_json::json!({"message": "Not Found"})),
    }
}

/// The signed storage URL: it is the credential, and a request that also carries the GitHub
/// token is refused, which proves clients do not forward it across the redirect.
///
/// `Range: bytes=start-end` and `bytes=start-` are honoured as Azure Blob Storage honours them
/// (FAKE_SERVER.md): `206` with `Content-Range: bytes start-end/total`, the end clamped to the
/// blob's; a start past the end is `416`. A suffix range (`bytes=-N`), which Azure does not
/// document, is answered whole, like any range the fake does not read.
fn download(state: &mut State, req: &Recorded) -> Answer {
    if req.headers.contains_key("authorization") {
        return empty(400);
    }
    let id: Option<u64> = req
        .path
        .trim_start_matches("/download/")
        .trim_end_matches(".zip")
        .parse()
        .ok();
    let sig_ok = req.query.get("sig").map(String::as_str) == Some(&percent_decode(SIG)[..]);
    let Some(zip) = state
        .artifacts
        .iter()
        .find(|a| Some(a.id) == id)
        .filter(|_| sig_ok)
        .map(|a| a.zip.clone())
    else {
        return empty(403);
    };
    let total = zip.len() as u64;
    let range = req
        .headers
        .get("range")
        .filter(|_| !state.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            let start = a.parse::<u64>().ok()?;
            let end = match b {
                "" => u64::MAX,
                b => b.parse::<u64>().ok()?,
            };
            (start <= end).then_some((start, end))
        });
    match range {
        Some((start, _)) if start >= total => {
            empty(416).with_header(header("Content-Range", &format!("bytes */{total}")))
        }
        Some((start, end)) => {
            let end = end.min(total - 1);
            let part = zip[start as usize..=end as usize].to_vec();
            state.served += part.len() as u64;
            Response::from_data(part)
                .with_status_code(206)
                .with_header(header("Content-Type", "application/zip"))
                .with_header(header(
                    "Content-Range",
                    &format!("bytes {start}-{end}/{total}"),
                ))
        }
        None => {
            state.served += total;
            Response::from_data(zip)
                .with_status_code(200)
                .with_header(header("Content-Type", "application/zip"))
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}
