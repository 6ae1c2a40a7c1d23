//! Restore tests off the source server (`backup --restore-into`, `restore-test
//! --not-on-source`), against real least-privilege logins: a backup role that may not create
//! databases gets one clear line naming `--restore-into`, and with it the backup passes. The
//! "other server" is the same local server logged into as its superuser.

use std::process::Output;

use crate::support::dbbackup;
use crate::support::{mysql, pg};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A PostgreSQL login without CREATEDB that owns its database (and its table), dropped at the
/// end after the database.
pub(crate) struct PgRole {
    pub name: String,
    db: pg::TestDb,
}

impl PgRole {
    pub fn new(tag: &str) -> Self {
        let db = pg::TestDb::new(tag);
        let name = format!("{}_role", db.name);
        pg::psql(
            "postgres",
            &format!(
                "CREATE ROLE {name} LOGIN NOCREATEDB NOSUPERUSER; \
                 ALTER DATABASE {db} OWNER TO {name}",
                db = db.name
            ),
        );
        pg::psql(
            &db.name,
            &format!(
                "CREATE TABLE t (id int PRIMARY KEY, v text); \
                 INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 50) g; \
                 ALTER TABLE t OWNER TO {name}"
            ),
        );
        Self { name, db }
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.name,
            pg::HOST,
            pg::PORT,
            self.db.name
        )
    }
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let db = std::mem::replace(&mut self.db, pg::TestDb::reserve("gone"));
        drop(db);
        let _ = std::process::Command::new("psql")
            .args(["-h", pg::HOST, "-p", pg::PORT, "-U", "postgres", "-d"])
            .args(["postgres", "-Xqc"])
            .arg(format!("DROP ROLE IF EXISTS {}", self.name))
            .output();
    }
}

pub(crate) fn pg_superuser_server() -> String {
    format!("postgres://postgres@{}:{}", pg::HOST, pg::PORT)
}

#[test]
fn a_postgres_role_without_createdb_is_told_to_restore_into_another_server() {
    if !pg::server_up() {
        return;
    }
    let role = PgRole::new("lp");
    let out = tempfile::tempdir().unwrap();
    let refused = dbbackup()
        .args(["backup", &role.url(), "--restore-test", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!(
            "'{}' may not create databases (it lacks CREATEDB)",
            role.name
        )),
        "{text}"
    );
    assert!(text.contains("--restore-into postgres://"), "{text}");
    assert!(
        !text.contains("permission denied to create database"),
        "{text}"
    );

    let passed = dbbackup()
        .args(["backup", &role.url(), "--json", "--restore-into"])
        .arg(pg_superuser_server())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(passed.status.code(), Some(0), "{}", stderr(&passed));
    let json: serde_json::Value = serde_json::from_slice(&passed.stdout).unwrap();
    assert_eq!(json["restore_test"]["verdict"], "passed", "{json}");
}

/// `restore-test --not-on-source` (what the action's `download-latest` passes) never restores
/// on the manifest's server and login: here that login may not create databases, and the
/// environment's (PGUSER=postgres) may.
#[test]
fn not_on_source_restores_on_the_environments_server_not_the_manifests() {
    if !pg::server_up() {
        return;
    }
    let role = PgRole::new("lpenv");
    let out = tempfile::tempdir().unwrap();
    let made = dbbackup()
        .args(["backup", &role.url(), "--restore-into"])
        .arg(pg_superuser_server())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));

    let on_source = dbbackup()
        .arg("restore-test")
        .arg(out.path())
        .output()
        .unwrap();
    let text = stderr(&on_source);
    assert_eq!(on_source.status.code(), Some(3), "{text}");
    assert!(text.contains("may not create databases"), "{text}");

    let elsewhere = dbbackup()
        .args(["restore-test", "--not-on-source"])
        .arg(out.path())
        .env("PGHOST", pg::HOST)
        .env("PGPORT", pg::PORT)
        .env("PGUSER", "postgres")
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(0), "{}", stderr(&elsewhere));
}

#[test]
fn a_mysql_login_without_create_is_told_to_restore_into_another_server() {
    if !mysql::server_up() {
        return;
    }
    let db = mysql::TestDb::new("lp");
    mysql::sql(
        &db.name,
        "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
    );
    let user = format!("dbb_lp_{}", std::process::id());
    mysql::sql(
        "",
        &format!(
            "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%'; \
             GRANT ALL ON `{db}`.* TO '{user}'@'%'; GRANT RELOAD, PROCESS ON *.* TO '{user}'@'%';",
            db = db.name
        ),
    );
    let url = format!("mysql://{user}@{}:{}/{}", mysql::HOST, mysql::PORT, db.name);
    let out = tempfile::tempdir().unwrap();
    let refused = dbbackup()
        .args(["backup", &url, "--restore-test", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let passed = dbbackup()
        .args(["backup", &url, "--restore-into"])
        .arg(format!("mysql://root@{}:{}", mysql::HOST, mysql::PORT))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    mysql::sql("", &format!("DROP USER IF EXISTS '{user}'@'%'"));
    let text = stderr(&refused);
    assert_eq!(refused.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&format!(
            "'{user}' may not create databases (it lacks the CREATE privilege)"
        )),
        "{text}"
    );
    assert!(text.contains("--restore-into mysql://"), "{text}");
    assert_eq!(passed.status.code(), Some(0), "{}", stderr(&passed));
}
