//! Names that break naive code: a database file, tables, columns, an index, a view and a
//! trigger named with spaces, quotes, newlines, unicode and emoji (and one that would be a
//! GitHub workflow command if printed at the start of a line); and `--out` given as a symlink.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::support::chaos::{
    Listing, assert_all_restore, assert_code, backup_cmd, output, stderr, temp_db,
};
use crate::support::{dbbackup, restore};
use dbbackup::archive::Manifest;

const DB_FILE: &str = "my 'app' \"db\"\nü.db";
const TABLE: &str = "order 'items' \"x\"\nü 🎉";
const COLUMN: &str = "unit 'price' \"€\"\n";
/// Printed at the start of a line, the runner would take this for an error annotation.
const INJECTION: &str = "t\n::error title=injected::forged";

/// SQL identifier quoting: double quotes, doubled inside.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn hostile_db(dir: &Path) -> PathBuf {
    let path = dir.join(DB_FILE);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (t, c, i) = (ident(TABLE), ident(COLUMN), ident(INJECTION));
    conn.execute_batch(&format!(
        "CREATE TABLE {t}(id INTEGER PRIMARY KEY, {c} REAL, {q} TEXT);
         CREATE INDEX {idx} ON {t}({c});
         CREATE VIEW {view} AS SELECT {c} FROM {t};
         CREATE TRIGGER {trg} AFTER INSERT ON {t} BEGIN SELECT 1; END;
         CREATE TABLE {i}({i});
         INSERT INTO {t} VALUES (1, 2.5, 'it''s \"quoted\"'), (2, NULL, 'line\nbreak');
         INSERT INTO {i} VALUES ('x');",
        q = ident("it's"),
        idx = ident(&format!("idx {TABLE}")),
        view = ident(&format!("view {TABLE}")),
        trg = ident(&format!("trg {TABLE}")),
    ))
    .unwrap();
    path
}

/// Every `testcase` name in a JUnit report, as an XML parser reads it.
fn testcase_names(junit: &Path) -> Vec<String> {
    restore::read_cases(&fs::read_to_string(junit).unwrap())
        .into_iter()
        .map(|c| c.name)
        .collect()
}

#[test]
fn hostile_names_back_up_and_restore_test_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let db = hostile_db(tmp.path());
    let out = tmp.path().join("backups");
    let summary = tmp.path().join("summary.md");
    for format in ["native", "sql"] {
        let junit = tmp.path().join(format!("backup-{format}.xml"));
        let mut cmd = backup_cmd(&db, &out, None);
        cmd.args(["--format", format, "--json", "--junit"])
            .arg(&junit)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary);
        let run = output(cmd);
        assert_code(&run, 0, &format!("backup --format {format}"));
        let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        let m: Manifest = serde_json::from_value(json["manifest"].clone()).unwrap();
        assert_eq!(m.source, db.to_str().unwrap());
        let tables: Vec<&str> = m.snapshot.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tables, [TABLE, INJECTION]);
        let objects: Vec<&str> = m.snapshot.objects.iter().map(|o| o.name.as_str()).collect();
        for name in [
            format!("idx {TABLE}"),
            format!("view {TABLE}"),
            format!("trg {TABLE}"),
        ] {
            assert!(objects.contains(&name.as_str()), "{name:?} in {objects:?}");
        }
        assert_eq!(m.snapshot.total_rows(), 3);
        let on_disk = Manifest::load(Path::new(json["manifest_path"].as_str().unwrap())).unwrap();
        assert_eq!(on_disk, m);

        // The restore test of what was just written, by the binary, with its own report.
        let restore_junit = tmp.path().join(format!("restore-{format}.xml"));
        let restore = output(
            dbbackup()
                .arg("restore-test")
                .arg(json["path"].as_str().unwrap())
                .arg("--junit")
                .arg(&restore_junit),
        );
        assert_code(&restore, 0, &format!("restore-test of the {format} backup"));
        for report in [&junit, &restore_junit] {
            restore::validate_junit(report);
            let names = testcase_names(report);
            for table in [TABLE, INJECTION] {
                assert!(
                    names.contains(&format!("table {table}")),
                    "{table:?} exactly in {names:?}"
                );
            }
        }

        // Logs keep one event per line: no name can forge a line or a workflow command.
        let log = stderr(&run);
        assert!(
            !log.lines().any(|l| l.starts_with("::error title=injected")),
            "{log}"
        );
        assert!(
            log.contains("dumped → ") && log.contains(r#"my 'app' "db"\nü.db"#),
            "{log}"
        );
    }
    // The job summary's tables have one row per table, whatever their names hold: each
    // backup's, and the second backup's drift table (compared with the first).
    let md = fs::read_to_string(&summary).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 6, "{md}");
    assert!(rows.iter().all(|r| r.ends_with(" |")), "{md}");
    let archives = Listing::of(&out).archives;
    assert_eq!(archives.len(), 2);
    assert!(archives.iter().all(|a| a.starts_with("my__app___db__ü-")));
    assert_eq!(assert_all_restore(&out), archives);
}

/// An error about a hostile name is one line too: a missing database named like a workflow
/// command cannot forge one.
#[test]
fn errors_quoting_a_hostile_name_stay_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join(format!("{INJECTION}.db"));
    let run = output(backup_cmd(&missing, &tmp.path().join("b"), None));
    assert_code(&run, 3, "backup of a missing database");
    let text = stderr(&run);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(r"t\n::error title=injected::forged.db"),
        "{text}"
    );
}

/// `--out` a symlink to a directory: backups land in the target, rotation works through the
/// link, and the link stays a link.
#[test]
fn out_symlink_to_a_directory_works() {
    let (tmp, db) = temp_db(100);
    let target = tmp.path().join("real backups");
    fs::create_dir(&target).unwrap();
    let link = tmp.path().join("link");
    symlink(&target, &link).unwrap();
    for _ in 0..3 {
        assert_code(
            &output(backup_cmd(&db, &link, Some(2))),
            0,
            "backup via link",
        );
    }
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let listing = Listing::of(&target);
    assert_eq!(listing.archives.len(), 2, "{listing:?}");
    assert_eq!(listing.manifests.len(), 2, "{listing:?}");
    assert!(
        listing.temp.is_empty() && listing.other.is_empty(),
        "{listing:?}"
    );
    assert_eq!(assert_all_restore(&link), listing.archives);
}

/// `--out` a symlink to nothing: a clear error naming the link and its target, exit 4, and
/// nothing created.
#[test]
fn out_symlink_dangling_is_a_clear_error() {
    let (tmp, db) = temp_db(10);
    let missing = tmp.path().join("gone");
    let link = tmp.path().join("link");
    symlink(&missing, &link).unwrap();
    let run = output(backup_cmd(&db, &link, Some(1)));
    assert_code(&run, 4, "backup to a dangling symlink");
    let text = stderr(&run);
    assert!(
        text.contains("symbolic link") && text.contains(missing.to_str().unwrap()),
        "{text}"
    );
    assert!(!missing.exists());
}
