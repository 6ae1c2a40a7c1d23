//! `dbbackup restore-test` against real backups made by the binary: good ones pass, and each
//! kind of damage fails with a clear message, a failing JUnit case and the documented exit code.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::support::restore::*;
use crate::support::{data_copy, dbbackup};

const CHECK_FAILED: i32 = 5;
const UNREADABLE: i32 = 6;

/// Tables and total rows of a database, read directly (not through dbbackup).
fn tables_and_rows(db: &Path) -> (usize, u64) {
    let conn = Connection::open(db).unwrap();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rows = names
        .iter()
        .map(|n| {
            let sql = format!("SELECT count(*) FROM \"{}\"", n.replace('"', "\"\""));
            conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
        })
        .sum();
    (names.len(), rows)
}

fn chinook_backup(out: &Path) -> PathBuf {
    backup(&chinook(), out, "native")
}

fn assert_passes(db: &Path, archive: &Path) {
    let run = restore_test(&[os(archive)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (tables, rows) = tables_and_rows(db);
    assert!(
        run.stderr
            .contains(&format!("restore OK: {tables} tables, {rows} rows")),
        "{}",
        run.stderr
    );
    assert!(run.failed().is_empty(), "{:#?}", run.failed());
    // One case per table, besides archive, restore, the integrity check and schema.
    assert_eq!(run.cases.len(), 4 + tables, "{:#?}", run.cases);
    for case in ["archive", "restore", "integrity_check", "schema"] {
        assert_eq!(run.case(case).result, "passed");
    }
    assert!(
        run.junit
            .contains("<property name=\"engine\" value=\"sqlite\"/>")
    );
    assert_eq!(run.json["exit_code"], 0);
    assert_eq!(run.json["backups"][0]["verdict"], "passed");
}

#[test]
fn good_native_backup_of_chinook_passes() {
    let dir = tempfile::tempdir().unwrap();
    assert_passes(&chinook(), &chinook_backup(dir.path()));
}

#[test]
fn good_native_backup_of_edge_db_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("edge.db");
    edge_db(&db);
    let archive = backup(&db, &dir.path().join("out"), "native");
    assert_passes(&db, &archive);
}

#[test]
fn good_sql_backup_of_chinook_passes() {
    let dir = tempfile::tempdir().unwrap();
    assert_passes(&chinook(), &backup(&chinook(), dir.path(), "sql"));
}

#[test]
fn good_sql_backup_of_edge_db_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("edge.db");
    edge_db(&db);
    let archive = backup(&db, &dir.path().join("out"), "sql");
    assert_passes(&db, &archive);
}

#[test]
fn quick_runs_quick_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    let run = restore_test(&[os(&archive), "--quick".as_ref()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.case("quick_check").result, "passed");
    assert!(!run.cases.iter().any(|c| c.name == "integrity_check"));
}

#[test]
fn a_directory_means_its_newest_backup_and_all_means_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let older = chinook_backup(dir.path());
    let newer = chinook_backup(dir.path());
    std::fs::write(dir.path().join("notes.txt"), "not a backup").unwrap();
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();

    let run = restore_test(&[os(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let suites: Vec<&str> = run.cases.iter().map(|c| c.suite.as_str()).collect();
    assert!(suites.iter().all(|s| *s == name(&newer)), "{suites:?}");

    let run = restore_test(&[os(dir.path()), "--all".as_ref()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let backups = run.json["backups"].as_array().unwrap();
    let names: Vec<String> = backups
        .iter()
        .map(|b| name(Path::new(b["backup"].as_str().unwrap())))
        .collect();
    assert_eq!(names, [name(&older), name(&newer)]);
}

#[test]
fn truncated_archive_fails_the_archive_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let failed: Vec<&str> = run.failed().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["archive"], "{:#?}", run.cases);
    let archive_case = run.case("archive");
    assert!(archive_case.text.contains("gzip stream: expected complete"));
    assert!(archive_case.text.contains("archive size: expected"));
    // Nothing could be restored, so the rest did not run; one case per table still shows.
    assert_eq!(run.case("table Track").result, "skipped");
    assert!(run.stderr.contains("restore FAILED"), "{}", run.stderr);
}

#[test]
fn flipped_byte_in_the_compressed_data_fails_the_archive_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let case = run.case("archive");
    assert_eq!(case.result, "failed");
    assert!(case.text.contains("sha256: expected"), "{}", case.text);
    assert!(
        run.stderr.contains("  archive:\n") && run.stderr.contains("sha256: expected"),
        "{}",
        run.stderr
    );
}

/// Offset of a byte inside the row data of `table`: a letter of a text value that lives in
/// one of the table's leaf pages (found with the dbstat virtual table) and in no index.
fn byte_in_table_leaf(db: &Path, table: &str, value: &str) -> usize {
    let conn = Connection::open(db).unwrap();
    let page_size: usize = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let leaves: Vec<usize> = conn
        .prepare("SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf'")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let bytes = std::fs::read(db).unwrap();
    let at = bytes
        .windows(value.len())
        .enumerate()
        .filter(|(_, w)| *w == value.as_bytes())
        .map(|(i, _)| i)
        .find(|i| leaves.contains(&(i / page_size + 1)))
        .expect("the value is stored in one of the table's leaf pages");
    at + 4 // inside the value, not its first byte
}

#[test]
fn flipped_byte_in_a_data_page_fails_only_that_tables_data_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    let db = dir.path().join("x.sqlite");
    std::fs::write(&db, gunzip(&archive)).unwrap();
    // Track.Name is in no index, so integrity_check cannot see a changed letter in it.
    let name: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT Name FROM Track WHERE TrackId = 1", [], |r| r.get(0))
        .unwrap();
    let at = byte_in_table_leaf(&db, "Track", &name);
    let mut raw = std::fs::read(&db).unwrap();
    assert!(raw[at].is_ascii_alphabetic());
    raw[at] ^= 0x20; // flip the letter's case: still valid text
    replace_dump(&archive, &raw);

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let failed: Vec<&str> = run.failed().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["table Track"], "{:#?}", run.cases);
    let text = &run.case("table Track").text;
    assert!(text.starts_with("checksum: expected "), "{text}");
    assert!(!text.contains("rows"), "{text}");
    assert!(run.stderr.contains("data: table Track:"), "{}", run.stderr);
}

#[test]
fn dropped_table_fails_schema_and_its_data_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    modify_native_backup(
        &archive,
        "PRAGMA foreign_keys = OFF; DROP TABLE PlaylistTrack;",
    );

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let failed: Vec<&str> = run.failed().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        failed,
        ["schema", "table PlaylistTrack"],
        "{:#?}",
        run.cases
    );
    let schema = &run.case("schema").text;
    assert!(
        schema.contains("schema object: expected table PlaylistTrack, actual missing"),
        "{schema}"
    );
    assert!(schema.contains("schema checksum: expected"), "{schema}");
    assert_eq!(
        run.case("table PlaylistTrack").text,
        "table: expected 8715 rows, actual missing"
    );
}

#[test]
fn deleted_row_fails_that_tables_data_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    let artists: i64 = Connection::open(chinook())
        .unwrap()
        .query_row("SELECT count(*) FROM Artist", [], |r| r.get(0))
        .unwrap();
    // An artist without albums, so no foreign key check notices the loss.
    modify_native_backup(
        &archive,
        "DELETE FROM Artist WHERE ArtistId = \
         (SELECT max(ArtistId) FROM Artist WHERE ArtistId NOT IN (SELECT ArtistId FROM Album));",
    );

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let failed: Vec<&str> = run.failed().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["table Artist"], "{:#?}", run.cases);
    let text = &run.case("table Artist").text;
    assert!(
        text.starts_with(&format!(
            "rows: expected {artists}, actual {}; checksum: expected",
            artists - 1
        )),
        "{text}"
    );
    assert!(
        run.stderr
            .contains(&format!("rows: expected {artists}, actual {}", artists - 1)),
        "{}",
        run.stderr
    );
}

#[test]
fn manifest_that_does_not_match_fails_the_data_check() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    edit_manifest(&archive, |m| {
        let table = m["snapshot"]["tables"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["name"] == "Genre")
            .unwrap();
        table["rows"] = 26.into();
    });

    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    let failed: Vec<&str> = run.failed().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["table Genre"]);
    assert_eq!(run.case("table Genre").text, "rows: expected 26, actual 25");
}

fn assert_unreadable(run: &Run, reason: &str) {
    assert_eq!(run.code, UNREADABLE, "{}", run.stderr);
    assert_eq!(run.cases.len(), 1, "{:#?}", run.cases);
    assert_eq!(run.cases[0].result, "failed");
    assert!(run.cases[0].text.contains(reason), "{}", run.cases[0].text);
    assert!(
        run.stderr.contains("restore UNREADABLE") && run.stderr.contains(reason),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["backups"][0]["verdict"], "unreadable");
}

#[test]
fn empty_archive_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    std::fs::write(&archive, b"").unwrap();
    assert_unreadable(
        &restore_test(&[os(&archive)]),
        "the archive is an empty file",
    );
}

#[test]
fn a_file_that_is_not_a_backup_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    assert_unreadable(&restore_test(&[os(&db)]), "not a dbbackup backup");
}

#[test]
fn an_unparsable_manifest_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let archive = chinook_backup(dir.path());
    std::fs::write(manifest_path(&archive), b"{\"manifest_version\": 1,").unwrap();
    assert_unreadable(&restore_test(&[os(&archive)]), "not a dbbackup manifest");
}

#[test]
fn a_directory_without_backups_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    assert_unreadable(&restore_test(&[os(dir.path())]), "holds no dbbackup backup");
}

#[test]
fn several_backups_get_a_suite_each_and_the_worst_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let good = chinook_backup(&dir.path().join("a"));
    let bad = chinook_backup(&dir.path().join("b"));
    edit_manifest(&bad, |m| m["sha256"] = "00".into());
    let missing = dir.path().join("missing.sqlite.gz");

    let run = restore_test(&[os(&good), os(&bad)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    assert!(run.stderr.contains("restore OK") && run.stderr.contains("restore FAILED"));

    let run = restore_test(&[os(&good), os(&bad), os(&missing)]);
    assert_eq!(run.code, UNREADABLE, "{}", run.stderr);
    let verdicts: Vec<&str> = run.json["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["passed", "failed", "unreadable"]);
    assert_eq!(run.junit.matches("<testsuite ").count(), 3);
}

/// What a common consumer (Python's junitparser, used by many CI reporting tools) reads from
/// the report must be what dbbackup meant. Skips only that part, loudly, outside CI.
#[test]
fn junitparser_reads_the_report_as_written() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import junitparser"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide python3 with junitparser (pip install junitparser)"
        );
        eprintln!("NOTICE: python3 with junitparser not found; skipping the junitparser check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = chinook_backup(&dir.path().join("a"));
    let bad = chinook_backup(&dir.path().join("b"));
    modify_native_backup(
        &bad,
        "DELETE FROM PlaylistTrack WHERE PlaylistId = 1 AND TrackId = 3402;",
    );
    let report = dir.path().join("report.xml");
    let out = dbbackup()
        .arg("restore-test")
        .args([&good, &bad])
        .arg("--junit")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(CHECK_FAILED));
    validate_junit(&report);

    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
cases = []
for suite in xml:
    for case in suite:
        result = "passed"
        text = ""
        for r in case.result:
            result = "failed" if isinstance(r, Failure) else "skipped" if isinstance(r, Skipped) else "other"
            text = r.message or ""
        cases.append({"suite": suite.name, "classname": case.classname, "name": case.name,
                      "result": result, "text": text})
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "cases": cases}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: Vec<Case> = serde_json::from_value(parsed["cases"].clone()).unwrap();
    let ours = read_cases(&std::fs::read_to_string(&report).unwrap());
    assert_eq!(theirs, ours);
    assert_eq!(parsed["tests"], ours.len());
    assert_eq!(parsed["failures"], 1);
    let failed: Vec<&Case> = theirs.iter().filter(|c| c.result == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "table PlaylistTrack");
    assert!(
        failed[0]
            .text
            .starts_with("rows: expected 8715, actual 8714")
    );
}

/// Ctrl-C (or CI cancelling the job) in the middle of a restore test removes the scratch copy:
/// a signal ends the process without running destructors, so this needs the handler.
#[cfg(unix)]
#[test]
fn interrupt_removes_the_scratch_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    // Large enough that checking the restored copy takes a while even in a debug build.
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000)
             INSERT INTO t SELECT x, printf('%0120d', x) FROM c;",
        )
        .unwrap();
    let archive = backup(&db, &dir.path().join("bk"), "native");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = dbbackup()
        .arg("restore-test")
        .arg(&archive)
        .env("TMPDIR", &tmp)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let restored = |tmp: &Path| {
        std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .any(|d| d.path().join("restored.sqlite").exists())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !restored(&tmp) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "restore-test finished before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no scratch copy appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}

/// Rows that violate a foreign key are a state SQLite sources are often in (it enforces foreign
/// keys only when asked), not damage: the manifest records exactly which, a faithful backup of
/// such a source passes its restore test and restores, and the copy must show the same state.
#[test]
fn foreign_key_violations_in_the_source_are_recorded_and_pass_when_the_copy_has_them_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         DELETE FROM Artist WHERE ArtistId IN (1, 2);
         CREATE TABLE note (id INTEGER PRIMARY KEY, track INTEGER REFERENCES Track(TrackId));
         INSERT INTO note VALUES (1, 999999), (2, 1);",
    )
    .unwrap();
    drop(conn);
    for format in ["native", "sql"] {
        let archive = backup(&db, &dir.path().join(format), format);
        let state = read_manifest(&archive)["snapshot"]["properties"]["foreign_key_check"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            state.starts_with("5 row(s) violate foreign keys (Album → Artist: 4, note → Track: 1)"),
            "{state}"
        );
        let run = restore_test(&[os(&archive)]);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        let target = dir.path().join(format!("restored-{format}.sqlite"));
        let restored = dbbackup()
            .arg("restore")
            .arg(&archive)
            .arg(&target)
            .output()
            .unwrap();
        assert!(restored.status.success(), "{restored:?}");
    }
    // A manifest that says the source had no violations fails the copy that has them.
    let archive = backup(&db, &dir.path().join("edited"), "native");
    edit_manifest(&archive, |m| {
        m["snapshot"]["properties"]["foreign_key_check"] = "none".into();
    });
    let run = restore_test(&[os(&archive)]);
    assert_eq!(run.code, CHECK_FAILED, "{}", run.stderr);
    assert!(
        run.case("schema")
            .text
            .contains("property foreign_key_check: expected none, actual 5 row(s)"),
        "{}",
        run.case("schema").text
    );
}

/// Virtual tables keep their data in shadow tables (an R*Tree's nodes, an FTS5 index and its
/// documents): that is data, and a changed coordinate or document fails the restore test.
/// A database of virtual tables alone is not empty either.
#[test]
fn the_data_of_virtual_tables_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("geo.sqlite");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE VIRTUAL TABLE box USING rtree(id, x0, x1);
             INSERT INTO box VALUES (1, 0, 5), (2, 3, 9);
             CREATE VIRTUAL TABLE doc USING fts5(body);
             INSERT INTO doc VALUES ('hello world'), ('goodbye');",
        )
        .unwrap();
    let archive = backup(&db, &dir.path().join("out"), "native");
    let names: Vec<String> = read_manifest(&archive)["snapshot"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"box_node".to_string()), "{names:?}");
    assert!(names.contains(&"doc_content".to_string()), "{names:?}");
    assert_eq!(restore_test(&[os(&archive)]).code, 0);
    for edit in [
        "UPDATE box SET x1 = 6 WHERE id = 1",
        "UPDATE doc SET body = 'hello there' WHERE rowid = 1",
    ] {
        let copy = dir.path().join(format!("edited-{}", edit.len()));
        std::fs::create_dir(&copy).unwrap();
        let edited = copy.join(archive.file_name().unwrap());
        std::fs::copy(&archive, &edited).unwrap();
        std::fs::copy(manifest_path(&archive), manifest_path(&edited)).unwrap();
        modify_native_backup(&edited, edit);
        let run = restore_test(&[os(&edited)]);
        assert_eq!(run.code, CHECK_FAILED, "{edit}: {}", run.stderr);
    }
}
