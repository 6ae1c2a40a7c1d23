//! The PostgreSQL server the tests use (127.0.0.1:5432, user postgres, trust auth), and a
//! database of a test's own.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const HOST: &str = "127.0.0.1";
pub const PORT: &str = "5432";

/// Whether the server answers; under CI=true it must.
pub fn server_up() -> bool {
    let up = Command::new("psql")
        .args([
            "-h", HOST, "-p", PORT, "-U", "postgres", "-d", "postgres", "-Atc", "SELECT 1",
        ])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL at {HOST}:{PORT} is unreachable and CI=true: the Postgres tests must run"
        );
        eprintln!("skipping: no PostgreSQL at {HOST}:{PORT}");
    }
    up
}

pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", HOST, "-p", PORT, "-U", "postgres", "-d", db])
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql -c {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A database of the test's own, dropped at the end.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(tag: &str) -> Self {
        let db = Self::reserve(tag);
        psql("postgres", &format!("CREATE DATABASE {}", db.name));
        db
    }

    /// A name of the test's own for a database that a command under test creates; dropped at
    /// the end like the others.
    pub fn reserve(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "dbbackup_test_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@{HOST}:{PORT}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h", HOST, "-p", PORT, "-U", "postgres", "-d", "postgres", "-Xqc",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// `pgbench` against the test server; `args` after the connection options.
pub fn pgbench(args: &[&str]) -> Command {
    let mut cmd = Command::new("pgbench");
    cmd.args(["-h", HOST, "-p", PORT, "-U", "postgres"])
        .args(args);
    cmd
}

impl TestDb {
    /// A database initialised by `pgbench -i` at `scale` (100,000 accounts per unit).
    pub fn pgbench(tag: &str, scale: u32) -> Self {
        let db = Self::new(tag);
        let init = pgbench(&["-i", "-s", &scale.to_string(), "-q", &db.name])
            .output()
            .expect("pgbench runs (Debian package postgresql-15 or postgresql-contrib)");
        assert!(
            init.status.success(),
            "pgbench -i: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        db
    }
}
