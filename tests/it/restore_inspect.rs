//! `dbbackup restore` and `dbbackup inspect` against real backups made by the binary.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::dbbackup;
use crate::support::restore::*;

fn run(args: &[&std::ffi::OsStr]) -> Output {
    dbbackup().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The sqlite3 CLI's `.dump` of both databases is the same text: same schema, same rows.
fn assert_same_content(a: &Path, b: &Path) {
    let dump = |db: &Path| {
        let out = Command::new("sqlite3")
            .arg(db)
            .arg(".dump")
            .output()
            .expect("the sqlite3 CLI must be installed");
        assert!(out.status.success(), "{}", stderr(&out));
        out.stdout
    };
    let (da, db) = (dump(a), dump(b));
    assert!(da.len() > 100, "suspiciously short dump");
    assert!(da == db, "{} and {} differ", a.display(), b.display());
}

/// Nothing but `expected` in `dir`: no scratch directory left beside the target.
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected);
}

#[test]
fn restore_writes_the_verified_copy() {
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&chinook(), &dir.path().join("bk"), "native");
    let target_dir = dir.path().join("restored");
    std::fs::create_dir(&target_dir).unwrap();
    let target = target_dir.join("app.db");

    let out = run(&[os("restore".as_ref()), os(&archive), os(&target)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("restore OK: 11 tables, 15607 rows"));
    assert!(stderr(&out).contains("restored → "));
    assert_same_content(&chinook(), &target);
    assert_only(&target_dir, &["app.db"]);
}

#[test]
fn restore_of_the_edge_db_keeps_its_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("edge.db");
    edge_db(&db);
    let archive = backup(&db, &dir.path().join("bk"), "native");
    let target = dir.path().join("back.db");
    let out = run(&[
        os("restore".as_ref()),
        os(dir.path().join("bk").as_path()),
        os(&target),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_content(&db, &target);
    let conn = rusqlite::Connection::open(&target).unwrap();
    let pragma = |p: &str| conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
    assert_eq!(pragma("user_version").unwrap(), 42);
    assert_eq!(pragma("application_id").unwrap(), 1234567);
    drop(archive);
}

#[test]
fn restore_refuses_an_existing_target_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&chinook(), &dir.path().join("bk"), "native");
    let target = dir.path().join("app.db");
    std::fs::write(&target, b"precious").unwrap();

    let out = run(&[os("restore".as_ref()), os(&archive), os(&target)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already exists: pass --force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");

    let out = run(&[
        os("restore".as_ref()),
        os(&archive),
        os(&target),
        os("--force".as_ref()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_content(&chinook(), &target);
}

#[test]
fn restore_refuses_to_replace_a_database_with_a_wal_file_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&chinook(), &dir.path().join("bk"), "native");
    let target = dir.path().join("app.db");
    std::fs::write(&target, b"old").unwrap();
    std::fs::write(dir.path().join("app.db-wal"), b"old wal").unwrap();

    let out = run(&[
        os("restore".as_ref()),
        os(&archive),
        os(&target),
        os("--force".as_ref()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("app.db-wal exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    assert_only(dir.path(), &["app.db", "app.db-wal", "bk"]);
}

#[test]
fn restore_of_a_damaged_backup_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&chinook(), &dir.path().join("bk"), "native");
    modify_native_backup(&archive, "DELETE FROM InvoiceLine WHERE InvoiceLineId = 1;");
    let target_dir = dir.path().join("restored");
    std::fs::create_dir(&target_dir).unwrap();

    let out = run(&[
        os("restore".as_ref()),
        os(&archive),
        os(&target_dir.join("app.db")),
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("table InvoiceLine:"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("was not written"), "{}", stderr(&out));
    assert_only(&target_dir, &[]);
}

#[test]
fn restore_of_something_that_is_not_a_backup_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        os("restore".as_ref()),
        os(&chinook()),
        os(&dir.path().join("x.db")),
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a dbbackup backup"),
        "{}",
        stderr(&out)
    );
    assert_only(dir.path(), &[]);
}

#[test]
fn inspect_shows_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let archive = backup(&chinook(), dir.path(), "native");
    let manifest = read_manifest(&archive);

    let out = run(&[os("inspect".as_ref()), os(&archive)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let engine_line = format!(
        "engine    sqlite {}",
        manifest["engine"]["version"].as_str().unwrap()
    );
    assert!(text.contains(&engine_line), "{text}");
    assert!(text.contains("format    native"), "{text}");
    assert!(
        text.contains(manifest["created_at"].as_str().unwrap()),
        "{text}"
    );
    assert!(
        text.contains(manifest["sha256"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("tables    11 tables, 15607 rows"), "{text}");
    for table in manifest["snapshot"]["tables"].as_array().unwrap() {
        let row = format!("{}", table["rows"]);
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == table["name"].as_str())
            .unwrap_or_else(|| panic!("no line for {table}: {text}"));
        assert!(line.ends_with(&row), "{line}");
    }

    // The directory form and --json show the same manifest as the sidecar file.
    let out = run(&[
        os("inspect".as_ref()),
        os(dir.path()),
        os("--json".as_ref()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["manifest"], manifest);
    assert_eq!(json["path"], archive.to_str().unwrap());
}

#[test]
fn inspect_of_something_that_is_not_a_backup_is_unreadable() {
    let out = run(&[os("inspect".as_ref()), os(&chinook())]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("manifest missing"),
        "{}",
        stderr(&out)
    );
}
