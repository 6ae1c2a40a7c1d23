//! The MariaDB/MySQL server the tests use (127.0.0.1:3306, root, empty password), and a
//! database of a test's own.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::data;

pub const HOST: &str = "127.0.0.1";
pub const PORT: &str = "3306";

/// Whether the server answers; under CI=true it must.
pub fn server_up() -> bool {
    let up = client()
        .args(["-e", "SELECT 1"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "MariaDB at {HOST}:{PORT} is unreachable and CI=true: the MySQL tests must run"
        );
        eprintln!("skipping: no MariaDB/MySQL at {HOST}:{PORT}");
    }
    up
}

/// The MySQL tests (of every area) run one at a time: two backups of one server at once take
/// `FLUSH TABLES WITH READ LOCK` each, and the second's table flush can wait on the first's
/// dump until the first gives up (a limitation the README states).
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The start of most MySQL tests: the server to themselves ([`one_at_a_time`]), and a database
/// of their own made with `schema`; `None` when there is no server (outside CI).
pub fn exclusive_db(
    tag: &str,
    schema: &str,
) -> Option<(std::sync::MutexGuard<'static, ()>, TestDb)> {
    let lock = one_at_a_time();
    if !server_up() {
        return None;
    }
    let db = TestDb::new(tag);
    sql(&db.name, schema);
    Some((lock, db))
}

/// The `mariadb` client as root on the test server, output tab-separated without headers.
pub fn client() -> Command {
    let mut cmd = Command::new("mariadb");
    cmd.args([
        "-h",
        HOST,
        "-P",
        PORT,
        "-u",
        "root",
        "--protocol=TCP",
        "-N",
        "-B",
        // Sent as written: the tests' routines keep their comments, as a user's do.
        "--comments",
    ])
    .env_remove("MYSQL_PWD");
    cmd
}

/// Runs SQL (in `db` when not empty) and returns its output, trimmed.
pub fn sql(db: &str, sql: &str) -> String {
    let mut cmd = client();
    if !db.is_empty() {
        cmd.arg(format!("--database={db}"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mariadb runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mariadb: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// How many scratch databases of process `pid` the server holds.
pub fn scratch_databases(pid: u32) -> String {
    sql(
        "",
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME LIKE 'dbbackup\\_scratch\\_{pid}\\_%'"
        ),
    )
}

/// A database of the test's own, dropped at the end.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(tag: &str) -> Self {
        let db = Self::reserve(tag);
        sql("", &format!("CREATE DATABASE `{}`", db.name));
        db
    }

    /// A name of the test's own for a database a command under test creates; dropped at the
    /// end like the others.
    pub fn reserve(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "dbbackup_test_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        Self { name }
    }

    /// Sakila for MySQL (tests/data), loaded into a database of the test's own: the sample's
    /// `sakila` names are rewritten to it.
    pub fn sakila(tag: &str) -> Self {
        let db = Self::new(tag);
        let rename = |text: String| {
            text.replace("`sakila`", &format!("`{}`", db.name))
                .replace("sakila.", &format!("{}.", db.name))
                .replace("USE sakila;", &format!("USE `{}`;", db.name))
                .replace("DROP SCHEMA IF EXISTS sakila;", "")
                .replace("CREATE SCHEMA sakila;", "")
        };
        for file in ["sakila-mysql-schema.sql", "sakila-mysql-data.sql"] {
            let text = rename(std::fs::read_to_string(data(file)).unwrap());
            assert!(
                !text.contains("sakila;"),
                "{file}: a `sakila` name was left"
            );
            sql("", &text);
        }
        db
    }

    pub fn url(&self) -> String {
        format!("mysql://root@{HOST}:{PORT}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = client()
            .arg("-e")
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .output();
    }
}
