//! Helpers shared by the restore-test, restore and inspect tests: real backups made by the
//! binary, ways to damage them, and a reader for the JUnit reports.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::{data, dbbackup};

/// The Chinook sample, to back up (never to write to).
pub fn chinook() -> PathBuf {
    data("chinook.sqlite")
}

pub fn xsd() -> PathBuf {
    data("junit-10.xsd")
}

/// Backs up `db` into `out` with the real binary and returns the archive's path.
pub fn backup(db: &Path, out: &Path, format: &str) -> PathBuf {
    let output = dbbackup()
        .args(["backup", "--json", "--format", format, "--out"])
        .arg(out)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    PathBuf::from(json["path"].as_str().unwrap())
}

pub fn manifest_path(archive: &Path) -> PathBuf {
    let mut p = archive.as_os_str().to_owned();
    p.push(".manifest.json");
    PathBuf::from(p)
}

pub fn read_manifest(archive: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(manifest_path(archive)).unwrap()).unwrap()
}

pub fn edit_manifest(archive: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut m = read_manifest(archive);
    edit(&mut m);
    std::fs::write(
        manifest_path(archive),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

pub fn gunzip(archive: &Path) -> Vec<u8> {
    let mut raw = Vec::new();
    GzDecoder::new(std::fs::File::open(archive).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    raw
}

/// Replaces the dump inside `archive` with `raw`, re-gzipped, and updates the manifest's sizes
/// and sha256 so that only the checks on the restored data can notice the change.
pub fn replace_dump(archive: &Path, raw: &[u8]) {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(6));
    enc.write_all(raw).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(archive, &gz).unwrap();
    let sha = Sha256::digest(&gz)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    edit_manifest(archive, |m| {
        m["sha256"] = sha.into();
        m["compressed_bytes"] = gz.len().into();
        m["raw_bytes"] = raw.len().into();
    });
}

/// Changes the database inside a native backup with SQL, keeping the manifest consistent with
/// the archive (so the archive check passes and the data checks must catch it).
pub fn modify_native_backup(archive: &Path, sql: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.sqlite");
    std::fs::write(&db, gunzip(archive)).unwrap();
    Connection::open(&db).unwrap().execute_batch(sql).unwrap();
    replace_dump(archive, &std::fs::read(&db).unwrap());
}

/// A small database full of edge cases: odd names, every storage class, a WITHOUT ROWID table,
/// shadowed rowid aliases, an empty table, foreign keys, index, view, trigger, pragmas.
pub fn edge_db(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        r#"
        PRAGMA user_version = 42;
        PRAGMA application_id = 1234567;
        CREATE TABLE "odd ""name"" <&>" (id INTEGER PRIMARY KEY, "select" TEXT, r REAL, b BLOB, n);
        INSERT INTO "odd ""name"" <&>" VALUES
            (1, 'héllo ✓', 1.5, x'00ff', NULL),
            (5, '', -0.0, x'', 9223372036854775807),
            (9, NULL, 1e308, NULL, 'text in an untyped column');
        CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
        INSERT INTO kv VALUES ('b', 2), ('a', x'01'), ('c', NULL);
        CREATE TABLE shadowed (rowid TEXT, _rowid_ TEXT, v TEXT);
        INSERT INTO shadowed VALUES ('x', 'y', 'z'), ('x', 'y', 'z');
        CREATE TABLE empty (x);
        CREATE TABLE "données ✓" (v);
        INSERT INTO "données ✓" VALUES ('ü');
        CREATE TABLE "ctl" (v);
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));
        INSERT INTO parent VALUES (1), (2);
        INSERT INTO child VALUES (10, 1), (11, 2), (12, NULL);
        CREATE INDEX child_p ON child(p);
        CREATE VIEW kv_view AS SELECT k FROM kv;
        CREATE TRIGGER kv_touch AFTER INSERT ON kv BEGIN SELECT 1; END;
        "#,
    )
    .unwrap();
    // A control character in a table name must not break the XML report.
    conn.execute_batch("ALTER TABLE ctl RENAME TO \"ctl\u{1}name\"")
        .unwrap();
}

/// What one restore-test run produced.
pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub json: serde_json::Value,
    pub junit: String,
    pub cases: Vec<Case>,
}

/// A `<testcase>` as read back from the JUnit report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Case {
    pub suite: String,
    pub classname: String,
    pub name: String,
    /// `passed`, `failed` or `skipped`.
    pub result: String,
    /// The failure's or skip's message.
    pub text: String,
}

impl Run {
    pub fn failed(&self) -> Vec<&Case> {
        self.cases.iter().filter(|c| c.result == "failed").collect()
    }

    pub fn case(&self, name: &str) -> &Case {
        self.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no test case {name} in {:#?}", self.cases))
    }
}

/// Runs `restore-test ARGS --json --junit FILE` with a private TMPDIR, then checks what every
/// run must satisfy: the report validates against the JUnit XSD and no scratch copy is left.
pub fn restore_test(args: &[&std::ffi::OsStr]) -> Run {
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let report = work.path().join("report.xml");
    let output = dbbackup()
        .arg("restore-test")
        .args(args)
        .arg("--json")
        .arg("--junit")
        .arg(&report)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let leftovers: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "scratch left behind: {leftovers:?}");
    let junit = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no JUnit report ({e}); stderr: {stderr}"));
    validate_junit(&report);
    Run {
        code: output.status.code().unwrap(),
        json: serde_json::from_slice(&output.stdout).unwrap(),
        cases: read_cases(&junit),
        junit,
        stderr,
    }
}

pub fn validate_junit(report: &Path) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd())
        .arg(report)
        .output()
        .expect("xmllint (libxml2-utils) must be installed");
    assert!(
        out.status.success(),
        "JUnit report does not validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads the test cases back with an XML parser, as a CI consumer would.
pub fn read_cases(xml: &str) -> Vec<Case> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut suite = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| {
                            a.normalized_value(XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                match e.name().as_ref() {
                    "testsuite" => suite = attr("name"),
                    "testcase" => cases.push(Case {
                        suite: suite.clone(),
                        classname: attr("classname"),
                        name: attr("name"),
                        result: "passed".into(),
                        text: String::new(),
                    }),
                    "failure" | "skipped" => {
                        let case = cases.last_mut().unwrap();
                        case.result = if e.name().as_ref() == "failure" {
                            "failed".into()
                        } else {
                            "skipped".into()
                        };
                        case.text = attr("message");
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    cases
}

pub fn os(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}
