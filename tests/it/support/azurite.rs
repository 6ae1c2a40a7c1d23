//! A real local Azure Blob Storage server for the object-storage tests: Azurite, Microsoft's own
//! emulator (npm `azurite`, pinned by tests/azurite/package-lock.json and installed once per
//! machine by `scripts/ci/prepare.sh` beside the PostgreSQL servers), started on a free port as a child of the test, in memory, and killed when the
//! handle drops.
//!
//! Without it the tests skip with a notice; under `CI=true` they fail instead.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use dbbackup::store::azure;
use dbbackup::store::bucket::{BucketStore, default_retry};
use object_store::azure::MicrosoftAzureBuilder;
use sha2::{Digest, Sha256};

use super::s3::free_port;

/// Azurite's well-known development account and key (public: every Azurite has them; from
/// Azurite's README, "Default Storage Account").
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Azurite {
    /// A fresh server, or `None` (with a notice) when Azurite is not installed outside CI.
    pub fn start() -> Option<Azurite> {
        // Where scripts/ci/prepare.sh installs it: beside the PostgreSQL servers of
        // pg_clusters.rs (`.../dbbackup-test/azurite`). Keep in step with the script.
        let bin = super::pg_clusters::cache()
            .parent()
            .unwrap()
            .join("azurite/node_modules/.bin/azurite-blob");
        let fail = |why: String| {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why} and CI=true: the Azure tests must run (install it with \
                 scripts/ci/prepare.sh)"
            );
            eprintln!("skipping: {why} (install it with scripts/ci/prepare.sh)");
            None
        };
        if !bin.exists() {
            return fail(format!("{} is missing", bin.display()));
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let spawned = Command::new(&bin)
            .args(["--inMemoryPersistence", "--silent", "--disableTelemetry"])
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            // Its working directory: Azurite may write a debug or extent file there (it
            // refuses --location with --inMemoryPersistence).
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => return fail(format!("azurite-blob cannot start: {e}")),
        };
        let mut azurite = Azurite {
            child,
            _dir: dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = azurite.child.try_wait() {
                return fail(format!("azurite-blob exited ({status})"));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(azurite);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        fail("azurite-blob did not answer within 30 s".into())
    }

    /// The account's endpoint, path style: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// The environment `dbbackup` finds this server and its credentials in.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("AZURE_STORAGE_ENDPOINT", self.endpoint()),
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY", KEY.into()),
        ]
    }

    /// A store at `url` on this server, configured as `open` would be from [`Azurite::env`].
    pub fn store(&self, url: &str) -> BucketStore {
        let builder = MicrosoftAzureBuilder::new()
            .with_endpoint(self.endpoint())
            .with_account(ACCOUNT)
            .with_access_key(KEY);
        azure::with_builder(url, builder, default_retry()).unwrap()
    }

    /// Creates `container`.
    pub fn container(&self, container: &str) {
        let (status, body) = self.signed("PUT", container, &[("restype", "container")]);
        assert_eq!(status, 201, "create container {container}: {body}");
    }

    /// Every blob name in `container`.
    pub fn blobs(&self, container: &str) -> Vec<String> {
        let query = [("comp", "list"), ("restype", "container")];
        let (status, body) = self.signed("GET", container, &query);
        assert_eq!(status, 200, "{body}");
        body.split("<Name>")
            .skip(1)
            .map(|k| k.split("</Name>").next().unwrap().to_string())
            .collect()
    }

    /// One request on `path` (below the account) signed with the account's key (Shared Key:
    /// HMAC-SHA256 over the string-to-sign of "Authorize with Shared Key", learn.microsoft.com;
    /// for a path-style URL the canonical resource names the account twice, as object_store's
    /// `canonicalize_resource` does). `query` in lexical order of names.
    fn signed(&self, method: &str, path: &str, query: &[(&str, &str)]) -> (u16, String) {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap();
        let version = "2021-08-06";
        let mut resource = format!("/{ACCOUNT}/{ACCOUNT}/{path}");
        for (k, v) in query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let signature = B64.encode(hmac_sha256(&B64.decode(KEY).unwrap(), to_sign.as_bytes()));
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} /{ACCOUNT}/{path}?{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\n\
             x-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            query.join("&"),
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        (status, response)
    }
}

/// HMAC-SHA256 (RFC 2104) over the `sha2` the crate already has.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}
