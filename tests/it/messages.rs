//! Messages that said the wrong thing, or nothing: each mistake a new user makes gets an error
//! that names it (exit 2 or 3), and nothing is created or deleted on the way.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::{data_copy, dbbackup};

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out: Output = dbbackup().current_dir(dir).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A sample database as `DIR/app.db`.
fn app_db(dir: &Path) {
    data_copy("chinook.sqlite", dir);
    fs::rename(dir.join("chinook.sqlite"), dir.join("app.db")).unwrap();
}

/// `backup b app.db`: DIR and SOURCE swapped. It said "create output directory app.db: File
/// exists"; a missing source created `--out` before failing.
#[test]
fn swapped_or_missing_sources_are_named_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    app_db(dir);
    let (code, text) = run(dir, &["backup", "app.db", "b"]);
    assert_eq!(code, Some(0), "{text}");

    let (code, text) = run(dir, &["backup", "b", "app.db"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("DIR app.db is a file"), "{text}");
    assert!(text.contains("SOURCE comes first"), "{text}");

    let (code, text) = run(dir, &["backup", "b", "--out", "other"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("is a directory, not a database file"),
        "{text}"
    );
    assert!(
        !dir.join("other").exists(),
        "a directory as SOURCE created --out"
    );

    let (code, text) = run(dir, &["backup", "missing.db", "--out", "new"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("no such file"), "{text}");
    assert!(!dir.join("new").exists(), "a missing SOURCE created --out");
}

/// A URL of a scheme no engine takes is named with the engines there are (exit 2), its
/// password is not shown, and nothing is created; `mysql://` is an engine of its own.
#[test]
fn an_unknown_url_scheme_is_named_with_the_engines_there_are() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (code, text) = run(
        dir,
        &["backup", "redis://app:s3cretPw@cache:6379/0", "--out", "b"],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no engine takes redis:// URLs"), "{text}");
    for engine in ["SQLite path", "postgres://", "mysql://"] {
        assert!(text.contains(engine), "{engine} not named: {text}");
    }
    assert!(!text.contains("s3cretPw"), "{text}");
    assert!(!dir.join("b").exists(), "an unknown scheme created --out");
    let (code, text) = run(dir, &["backup", "mysql://root@127.0.0.1:1/x", "--out", "b"]);
    assert!(!text.contains("no engine takes"), "{text}");
    assert_ne!(code, Some(2), "{text}");
}

/// `restore b/ some-dir` said "pass --force", then with it "Is a directory".
#[test]
fn restore_into_a_directory_says_it_is_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = data_copy("chinook.sqlite", dir);
    let (code, text) = run(dir, &["backup", db.to_str().unwrap(), "b"]);
    assert_eq!(code, Some(0), "{text}");
    fs::create_dir(dir.join("some-dir")).unwrap();
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["restore", "b", "some-dir"];
        args.extend(force);
        let (code, text) = run(dir, &args);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains("some-dir is a directory"), "{text}");
        assert!(!text.contains("--force"), "{text}");
    }
    assert_eq!(fs::read_dir(dir.join("some-dir")).unwrap().count(), 0);
}

/// `prune` of a missing directory created it and exited 0 silently; a name with no backups
/// exited 0 silently.
#[test]
fn prune_says_what_it_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = data_copy("chinook.sqlite", dir);
    let (code, text) = run(dir, &["backup", db.to_str().unwrap(), "b"]);
    assert_eq!(code, Some(0), "{text}");

    let (code, text) = run(
        dir,
        &["prune", "nothere", "--name", "chinook", "--keep", "1"],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("nothere does not exist"), "{text}");
    assert!(!dir.join("nothere").exists());

    let (code, text) = run(dir, &["prune", "b", "--name", "app", "--keep", "1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no backups named app in b"), "{text}");
    assert!(text.contains("holds backups named chinook"), "{text}");

    let (code, text) = run(dir, &["prune", "b", "--name", "chinook", "--keep", "1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("found 1 backup(s) named chinook: keeping 1"),
        "{text}"
    );
}

/// `sqlite:` parameters were dropped unread (`?immutable=1` did nothing); SQLite's own `file:`
/// URIs were "no such file". Parameters not taken are refused.
#[test]
fn sqlite_parameters_are_refused_and_file_uris_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = data_copy("chinook.sqlite", dir);
    fs::rename(&db, dir.join("app db.sqlite")).unwrap();
    for source in [
        "sqlite:app db.sqlite?nolock=1",
        "file:app%20db.sqlite?cache=shared",
    ] {
        let (code, text) = run(dir, &["backup", source, "--out", "b"]);
        assert_eq!(code, Some(2), "{source}: {text}");
        assert!(text.contains("unknown or unsupported parameter"), "{text}");
        assert!(!dir.join("b").exists(), "{source}");
    }
    let absolute = format!("file://{}/app%20db.sqlite", dir.display());
    for source in [
        "file:app%20db.sqlite?mode=ro",
        "sqlite:app db.sqlite?mode=ro",
        absolute.as_str(),
    ] {
        let (code, text) = run(dir, &["backup", source, "--out", "b"]);
        assert_eq!(code, Some(0), "{source}: {text}");
    }
    let names: Vec<String> = fs::read_dir(dir.join("b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sqlite.gz"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("app_db-")), "{names:?}");
}

/// `app-20200101-000000.sqlite.gz` without a manifest is not a dbbackup backup (restore-test
/// says so); rotation and `prune` deleted it as the oldest backup of `app`, although the README
/// promises that nothing but dbbackup's own backups is ever deleted.
#[test]
fn rotation_and_prune_leave_a_file_without_a_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    app_db(dir);
    fs::create_dir(dir.join("b")).unwrap();
    let stranger = dir.join("b/app-20200101-000000.sqlite.gz");
    fs::write(&stranger, b"someone else's file").unwrap();
    for _ in 0..2 {
        let (code, text) = run(dir, &["backup", "app.db", "b", "--keep", "1"]);
        assert_eq!(code, Some(0), "{text}");
        assert!(stranger.exists(), "rotation deleted it: {text}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let (code, text) = run(dir, &["prune", "b", "--name", "app", "--keep", "1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(stranger.exists(), "prune deleted it: {text}");
    assert!(text.contains("found 1 backup(s) named app"), "{text}");
    // The newest of the directory is still the newest backup, not the stranger.
    let (code, text) = run(dir, &["restore-test", "b"]);
    assert_eq!(code, Some(0), "{text}");
}

/// `restore BACKUP postgres://…/existing` restored the whole backup into a scratch database
/// before refusing the existing target: the target is checked first (PostgreSQL and MySQL).
#[test]
fn restore_to_an_existing_database_is_refused_before_restoring() {
    use crate::support::{mysql, pg};
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let (_pg_src, _pg_target, _my_src, _my_target);
    if pg::server_up() {
        let (src, target) = (pg::TestDb::new("exists_src"), pg::TestDb::new("exists_dst"));
        pg::psql(
            &src.name,
            "CREATE TABLE t(id int); INSERT INTO t VALUES (1);",
        );
        cases.push((src.url(), target.url()));
        (_pg_src, _pg_target) = (src, target);
    }
    if mysql::server_up() {
        let (src, target) = (
            mysql::TestDb::new("exists_src"),
            mysql::TestDb::new("exists_dst"),
        );
        mysql::sql(
            &src.name,
            "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1);",
        );
        cases.push((src.url(), target.url()));
        (_my_src, _my_target) = (src, target);
    }
    for (i, (source, target)) in cases.iter().enumerate() {
        let out = format!("b{i}");
        let (code, text) = run(tmp.path(), &["backup", source, "--out", &out]);
        assert_eq!(code, Some(0), "{text}");
        let (code, text) = run(tmp.path(), &["restore", &out, target]);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains("already exists"), "{text}");
        assert!(
            !text.contains("scratch database"),
            "restored before refusing: {text}"
        );
    }
}

/// A server that accepts the connection and never answers held the backup forever, past
/// `--timeout`, `?connect_timeout=` and `PGCONNECT_TIMEOUT` (MySQL: `--timeout`): each bounds
/// the whole connection.
#[test]
fn a_server_that_never_answers_is_given_up_on_in_time() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Accepted and held open, never read nor answered.
        let held: Vec<_> = listener.incoming().take(16).collect();
        std::thread::sleep(std::time::Duration::from_secs(120));
        drop(held);
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x");
    let with_param = format!("{url}?connect_timeout=2");
    let mysql = format!("mysql://root@127.0.0.1:{port}/x");
    for (args, env) in [
        (vec!["backup", url.as_str(), "--timeout", "2s"], None),
        (vec!["backup", mysql.as_str(), "--timeout", "2s"], None),
        (vec!["backup", with_param.as_str()], None),
        (
            vec!["backup", url.as_str()],
            Some(("PGCONNECT_TIMEOUT", "2")),
        ),
    ] {
        let mut cmd = dbbackup();
        cmd.current_dir(tmp.path())
            .args(&args)
            .args(["--out", "b"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let started = std::time::Instant::now();
        let mut child = cmd.spawn().unwrap();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > std::time::Duration::from_secs(20) {
                child.kill().unwrap();
                panic!("{args:?} {env:?}: still waiting after 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?} {env:?}: {text}");
        assert!(text.contains("did not answer within 2s"), "{text}");
    }
}

/// A WAL database on a read-only filesystem said only "cannot open … check the path and
/// permissions": it needs its `-shm` file, which cannot be made there; the message says so and
/// offers `?immutable=1`, which reads it.
#[test]
fn a_wal_database_on_a_read_only_mount_is_explained_and_read_immutable() {
    let tmp = tempfile::tempdir().unwrap();
    let ro = tmp.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let Some(mount) = crate::support::chaos::mount_tmpfs(&ro, "size=8m") else {
        return;
    };
    let db = data_copy("chinook.sqlite", &ro);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; CREATE TABLE added(x); INSERT INTO added VALUES (1);",
    )
    .unwrap();
    drop(conn);
    assert!(!ro.join("chinook.sqlite-shm").exists());
    mount.remount_read_only();
    let path = db.to_str().unwrap();
    let (code, text) = run(tmp.path(), &["backup", path, "--out", "b"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("-shm file"), "{text}");
    let offered = format!("sqlite:{path}?immutable=1");
    assert!(text.contains(&offered), "{text}");
    let args = ["backup", &offered, "--out", "b", "--restore-test"];
    let (code, text) = run(tmp.path(), &args);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("restore OK: 12 tables"), "{text}");
}

/// A collation the application that made the database defines failed the backup with "no such
/// collation sequence: mycoll", naming no table: the tables that use it are named.
#[test]
fn an_unknown_collation_names_the_tables_that_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("people.db");
    // What an application with its own collation writes (made here by editing the schema, as
    // the collation itself is not registered in this process).
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE people(name TEXT);
             CREATE INDEX people_name ON people(name);
             INSERT INTO people VALUES ('b'), ('a');
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE TABLE people(name TEXT COLLATE MyColl)'
              WHERE name = 'people';
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
    let (code, text) = run(tmp.path(), &["backup", "people.db", "--out", "b"]);
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("no such collation sequence"), "{text}");
    assert!(text.contains("used by table \"people\""), "{text}");
}

/// A table whose name is not UTF-8 (an SQL_ASCII database takes any bytes) failed with
/// "invalid byte sequence for encoding UTF8: 0xe9", naming nothing: the table is named.
#[test]
fn a_name_that_is_not_utf8_is_named() {
    use crate::support::pg;
    if !pg::server_up() {
        return;
    }
    let db = pg::TestDb::reserve("sql_ascii");
    pg::psql(
        "postgres",
        &format!(
            "CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' \
             LC_CTYPE 'C'",
            db.name
        ),
    );
    pg::psql(
        &db.name,
        "DO $$ BEGIN EXECUTE 'CREATE TABLE ' \
           || quote_ident('caf' || convert_from('\\xe9'::bytea, 'SQL_ASCII')) || ' (id int)'; \
         END $$; CREATE TABLE fine(id int);",
    );
    let tmp = tempfile::tempdir().unwrap();
    let (code, text) = run(tmp.path(), &["backup", &db.url(), "--out", "b"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains(r#"table "public"."caf\xe9""#), "{text}");
    assert!(!text.contains("fine"), "{text}");
}
