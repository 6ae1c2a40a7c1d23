//! A real local S3 server for the object-storage tests: moto's (PyPI `moto[server]`, installed
//! by `scripts/ci/prepare.sh`), started on a free port as a child of the test and killed when
//! the handle drops. It speaks the S3 REST protocol over HTTP, multipart uploads included.
//!
//! Without moto the tests skip with a notice; under `CI=true` they fail instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dbbackup::store::bucket::BucketStore;
use dbbackup::store::s3::{self, default_retry};
use object_store::aws::AmazonS3Builder;

/// The credentials the tests sign with (moto takes any unless it checks them).
pub const KEY_ID: &str = "AKIATESTDBBACKUP";
pub const SECRET: &str = "s3cr3t-never-shown-0123456789abcdef";

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now (the OS's pick).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// A fresh server, or `None` (with a notice) when moto is not installed outside CI.
    pub fn start() -> Option<Moto> {
        Self::start_with(&[])
    }

    /// A fresh server whose environment has `env` too (moto's settings, such as
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, which makes it check credentials after that many
    /// requests).
    pub fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
        let port = free_port();
        let spawned = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let fail = |why: String| {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why} and CI=true: the S3 tests must run (install it with \
                 `python3 -m pip install 'moto[server]'`, as scripts/ci/prepare.sh does)"
            );
            eprintln!("skipping: {why} (python3 -m pip install 'moto[server]')");
            None
        };
        let child = match spawned {
            Ok(child) => child,
            Err(e) => return fail(format!("python3 cannot start: {e}")),
        };
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return fail(format!(
                    "moto's S3 server exited ({status}): is moto[server] installed?"
                ));
            }
            // A connection, not a request: moto counts requests against
            // INITIAL_NO_AUTH_ACTION_COUNT.
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        fail("moto's S3 server did not answer within 30 s".into())
    }

    pub fn port(&self) -> u16 {
        self.endpoint.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// One unsigned HTTP/1.1 request; the status code, or `None` when the server is not there.
    pub fn request(&self, method: &str, path: &str) -> Option<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        response.split(' ').nth(1)?.parse().ok()
    }

    /// Empty objects at `paths` (`/BUCKET/KEY`), unsigned, four requests at a time (moto closes
    /// every connection after one request).
    pub fn put_empty(&self, paths: &[String]) {
        std::thread::scope(|scope| {
            for chunk in paths.chunks(paths.len().div_ceil(4).max(1)) {
                scope.spawn(move || {
                    for path in chunk {
                        assert_eq!(self.request("PUT", path), Some(200), "PUT {path}");
                    }
                });
            }
        });
    }

    /// Creates `bucket`.
    pub fn bucket(&self, bucket: &str) {
        let status = self.request("PUT", &format!("/{bucket}")).unwrap();
        assert_eq!(status, 200, "create bucket {bucket}");
    }

    /// Every key in `bucket` (moto answers an unsigned listing).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.list_xml(&format!("/{bucket}?list-type=2&max-keys=10000"), "Key")
    }

    /// The text of every `<tag>` in the answer to an unsigned GET of `path`.
    fn list_xml(&self, path: &str, tag: &str) -> Vec<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split(&format!("<{tag}>"))
            .skip(1)
            .map(|k| k.split(&format!("</{tag}>")).next().unwrap().to_string())
            .collect()
    }

    /// The keys of the multipart uploads in progress in `bucket`.
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        self.list_xml(&format!("/{bucket}?uploads"), "Key")
    }

    /// The environment `dbbackup` finds this server and its credentials in.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A store at `url` on this server, configured as `open` would be from [`Moto::env`].
    pub fn store(&self, url: &str) -> BucketStore {
        let builder = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .with_region("us-east-1");
        s3::with_builder(url, builder, default_retry()).unwrap()
    }
}

/// A TCP proxy in front of a server that forwards until `budget` bytes have gone to the server,
/// then cuts every connection and answers no more requests: the server dying in the middle of
/// an upload, as the client sees it, while the server itself stays up to be inspected.
pub struct CutProxy {
    pub endpoint: String,
    pub cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CutProxy {
    pub fn start(to_port: u16, budget: usize) -> CutProxy {
        Self::start_with(to_port, budget, 0, false)
    }

    /// The same, answering the first `unavailable` connections with `503 Service Unavailable`
    /// (a storm of them: `usize::MAX`); with `stall`, the connection that crosses the budget
    /// hangs (open, nothing forwarded) instead, and every other one goes on working: an upload
    /// stuck half-way, for a test to interrupt.
    pub fn start_with(to_port: u16, budget: usize, unavailable: usize, stall: bool) -> CutProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let cut = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let flag = cut.clone();
        let refused = AtomicUsize::new(0);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                if flag.load(Ordering::SeqCst) && !stall {
                    continue; // dropped: the connection closes at once
                }
                if refused.fetch_add(1, Ordering::SeqCst) < unavailable {
                    // The request's head, then the refusal; the connection closes.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n")
                        && client.read(&mut byte).is_ok_and(|n| n == 1)
                    {
                        head.push(byte[0]);
                    }
                    let _ = client.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to_port)) else {
                    continue;
                };
                open.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (sent, flag, open) = (sent.clone(), flag.clone(), open.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = c_in.read(&mut buf) {
                        let crossed = flag.load(Ordering::SeqCst);
                        if n == 0 || (crossed && !stall) {
                            break;
                        }
                        if !crossed && sent.fetch_add(n, Ordering::SeqCst) + n > budget {
                            flag.store(true, Ordering::SeqCst);
                            if stall {
                                break; // its sockets stay open in `open`
                            }
                            for s in open.lock().unwrap().iter() {
                                let _ = s.shutdown(std::net::Shutdown::Both);
                            }
                            break;
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                });
            }
        });
        CutProxy { endpoint, cut }
    }
}
