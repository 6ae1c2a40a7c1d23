//! `dbbackup backup` driven as a user runs it, on real SQLite databases.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use dbbackup::archive::Manifest;
use dbbackup::archive::compress::hex;
use predicates::str::contains;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::support::sqlite_fixtures::index_disagreeing_with_its_table;
use crate::support::{self, data, data_copy};

/// A private copy of chinook: tests must never write to the sample.
fn chinook_copy(dir: &Path) -> PathBuf {
    data_copy("chinook.sqlite", dir)
}

fn dbbackup() -> Command {
    Command::from_std(support::dbbackup())
}

/// Backup archives (not manifests, not temp dirs) in `dir`, sorted by name.
fn archives(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gz"))
        .collect();
    names.sort();
    names
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = dbbackup().args(args).arg("--json").assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .unwrap()
}

#[test]
fn native_backup_of_chinook_restores_with_standard_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("backups");
    let json = run_json(&[
        "backup",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);

    let path = PathBuf::from(json["path"].as_str().unwrap());
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("chinook-") && name.ends_with(".sqlite.gz"),
        "{name}"
    );
    let archive = fs::read(&path).unwrap();
    assert_eq!(json["sha256"], hex(&Sha256::digest(&archive)));
    assert_eq!(json["bytes"], archive.len() as u64);

    let manifest = Manifest::load(&PathBuf::from(format!("{}.manifest.json", path.display())))
        .expect("manifest sidecar");
    assert_eq!(manifest.sha256, hex(&Sha256::digest(&archive)));
    assert_eq!(manifest.archive, name);
    assert_eq!(manifest.engine.name, "sqlite");
    assert!(!manifest.source.is_empty());

    // gunzip + sqlite3, nothing of ours: the restored file is the source, table by table.
    let restored = tmp.path().join("restored.sqlite");
    let raw = gunzip(&path);
    assert_eq!(manifest.raw_bytes, raw.len() as u64);
    fs::write(&restored, raw).unwrap();
    let check = StdCommand::new("sqlite3")
        .arg(&restored)
        .arg("PRAGMA integrity_check")
        .output()
        .expect("sqlite3 CLI (Debian package sqlite3)");
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    let diff = StdCommand::new("sqldiff")
        .arg(&db)
        .arg(&restored)
        .output()
        .expect("sqldiff (Debian package sqlite3-tools)");
    assert!(diff.status.success());
    assert_eq!(String::from_utf8_lossy(&diff.stdout), "");

    let source = Connection::open(&db).unwrap();
    assert_eq!(manifest.snapshot.tables.len(), 11);
    for table in &manifest.snapshot.tables {
        assert_eq!(
            table.rows as i64,
            count(&source, &table.name),
            "{}",
            table.name
        );
    }
}

#[test]
fn lesson_command_line_works_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("app.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    dbbackup()
        .current_dir(tmp.path())
        .args(["run", "app.db", "backups/db", "--keep", "7"])
        .assert()
        .success()
        .stderr(contains("compressed →"));
    let backups = archives(&tmp.path().join("backups/db"));
    assert_eq!(backups.len(), 1);
    assert!(backups[0].starts_with("app-"));
}

#[test]
fn sqlite_url_sources_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    let url = format!("sqlite://{}", db.display());
    run_json(&["backup", &url, "--out", out.to_str().unwrap()]);
    assert_eq!(archives(&out).len(), 1);
}

#[test]
fn rotation_keeps_newest_of_this_database_only() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    fs::create_dir_all(&out).unwrap();
    // Older backups of this database, another database's backup (each with its manifest), and
    // strangers' files: one not named as a backup, one named as a backup without a manifest.
    for name in [
        "chinook-20200101-000000.sqlite.gz",
        "chinook-20200102-000000.sqlite.gz",
        "chinook-20200102-000000-2.sql.gz",
        "chinookx-20200101-000000.sqlite.gz",
        "other-20200101-000000.sqlite.gz",
    ] {
        fs::write(out.join(name), b"old").unwrap();
        fs::write(out.join(format!("{name}.manifest.json")), b"{}").unwrap();
    }
    for name in ["chinook-notes.gz", "chinook-20190101-000000.sqlite.gz"] {
        fs::write(out.join(name), b"not a backup").unwrap();
    }

    let json = run_json(&[
        "backup",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--keep",
        "2",
    ]);
    let new = Path::new(json["path"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let pruned: Vec<&str> = json["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        pruned,
        [
            "chinook-20200102-000000.sqlite.gz",
            "chinook-20200101-000000.sqlite.gz"
        ]
    );
    let mut expected = vec![
        new,
        "chinook-20200102-000000-2.sql.gz".to_string(),
        "chinook-notes.gz".to_string(),
        "chinook-20190101-000000.sqlite.gz".to_string(),
        "chinookx-20200101-000000.sqlite.gz".to_string(),
        "other-20200101-000000.sqlite.gz".to_string(),
    ];
    expected.sort();
    assert_eq!(archives(&out), expected);
    assert!(
        !out.join("chinook-20200101-000000.sqlite.gz.manifest.json")
            .exists(),
        "a rotated backup's manifest goes with it"
    );
}

#[test]
fn backups_in_the_same_second_get_distinct_names() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("small.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let out = tmp.path().join("b");
    let paths: Vec<String> = (0..3)
        .map(|_| {
            run_json(&[
                "backup",
                db.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(archives(&out).len(), 3, "{paths:?}");
    for path in &paths {
        let manifest = Manifest::load(Path::new(&format!("{path}.manifest.json"))).unwrap();
        assert_eq!(
            manifest.archive,
            Path::new(path).file_name().unwrap().to_str().unwrap()
        );
    }
}

/// Failures must be loud and lose nothing: the old backup stays, nothing partial is left.
fn assert_fails_keeping(args: &[&str], out: &Path, code: i32, message: &str) {
    let before = archives(out);
    dbbackup()
        .args(args)
        .args(["--out", out.to_str().unwrap(), "--keep", "1"])
        .assert()
        .code(code)
        .stderr(contains(message));
    assert_eq!(archives(out), before, "nothing added or rotated away");
    let leftovers: Vec<_> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".dbbackup-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

fn out_with_one_old_backup(tmp: &Path) -> PathBuf {
    let out = tmp.join("b");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("bad-20200101-000000.sqlite.gz"), b"old").unwrap();
    out
}

#[test]
fn missing_database_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_with_one_old_backup(tmp.path());
    let missing = tmp.path().join("bad.sqlite");
    assert_fails_keeping(
        &["backup", missing.to_str().unwrap()],
        &out,
        3,
        "no such file",
    );
}

#[test]
fn non_database_file_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_with_one_old_backup(tmp.path());
    let bad = tmp.path().join("bad.sqlite");
    fs::write(&bad, "this is not a database, just some text\n".repeat(200)).unwrap();
    assert_fails_keeping(
        &["backup", bad.to_str().unwrap()],
        &out,
        3,
        "not a SQLite database",
    );
}

#[test]
fn corrupt_database_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = out_with_one_old_backup(tmp.path());
    let bad = tmp.path().join("bad.sqlite");
    let mut bytes = fs::read(data("chinook.sqlite")).unwrap();
    // Wreck the middle of the file (b-tree pages), keep the header: SQLite opens it, and only
    // the integrity check can tell.
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8192] {
        *b = 0x5a;
    }
    fs::write(&bad, bytes).unwrap();
    let assert = dbbackup()
        .args(["backup", bad.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--keep", "1"])
        .assert()
        .failure();
    let code = assert.get_output().status.code().unwrap();
    assert!(code == 3 || code == 5, "exit code {code}");
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("corrupt") || stderr.contains("malformed"),
        "{stderr}"
    );
    assert_eq!(archives(&out), ["bad-20200101-000000.sqlite.gz"]);
}

#[test]
fn keep_zero_is_refused_before_anything_happens() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    dbbackup()
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--keep", "0"])
        .assert()
        .code(2)
        .stderr(contains("--keep 0"));
    assert!(!out.exists());
}

#[test]
fn output_that_cannot_be_a_directory_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let file = tmp.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    dbbackup()
        .args(["backup", db.to_str().unwrap(), "--out"])
        .arg(file.join("sub"))
        .assert()
        .code(4)
        .stderr(contains("create output directory"));
}

/// A few MB of tmpfs: the backup does not fit. Mounting needs root; CI runs as root, a laptop
/// may not, and there the test says so instead of pretending.
#[test]
fn full_disk_fails_cleanly_and_keeps_old_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("big.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(x BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
         INSERT INTO t SELECT randomblob(8192) FROM n;",
    )
    .unwrap();
    drop(conn);
    let out = tmp.path().join("tiny");
    fs::create_dir(&out).unwrap();
    let mounted = StdCommand::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (run as root)"
        );
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = StdCommand::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&out);
    fs::write(out.join("big-20200101-000000.sqlite.gz"), b"old").unwrap();
    assert_fails_keeping(&["backup", db.to_str().unwrap()], &out, 4, "disk is full");
}

#[test]
fn json_output_carries_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    let json = run_json(&[
        "backup",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--level",
        "1",
    ]);
    let manifest: Manifest = serde_json::from_value(json["manifest"].clone()).unwrap();
    assert_eq!(manifest.snapshot.total_rows(), 15607);
    assert_eq!(manifest.compressed_bytes, json["bytes"].as_u64().unwrap());
    let on_disk = Manifest::load(Path::new(&format!(
        "{}.manifest.json",
        json["path"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(manifest, on_disk);
}

#[test]
fn restore_test_of_the_new_backup_writes_a_valid_junit_report() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    let junit = tmp.path().join("junit.xml");
    let json = run_json(&[
        "backup",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(json["restore_test"]["verdict"], "passed");
    let xsd = data("junit-10.xsd");
    let lint = StdCommand::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(&junit)
        .output()
        .expect("xmllint (Debian package libxml2-utils)");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(fs::read_to_string(&junit).unwrap().contains("table Track"));
}

/// A database whose index disagrees with its table passes the snapshot's quick check, but its
/// restore test's full check fails: the new backup is set aside, nothing old is rotated away,
/// exit 5.
#[test]
fn failed_restore_test_sets_the_new_backup_aside_and_rotates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("shop.db");
    fs::rename(index_disagreeing_with_its_table(tmp.path()), &db).unwrap();
    let out = tmp.path().join("b");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("shop-20200101-000000.sqlite.gz"), b"old").unwrap();
    let junit = tmp.path().join("junit.xml");
    dbbackup()
        .args([
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--keep", "1", "--junit", junit.to_str().unwrap()])
        .assert()
        .code(5)
        .stderr(contains("the restore test of"))
        .stderr(contains("was set aside as"))
        .stderr(contains("integrity_check"));
    assert_eq!(archives(&out), ["shop-20200101-000000.sqlite.gz"]);
    let set_aside: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gz.failed"))
        .collect();
    assert_eq!(
        set_aside.len(),
        1,
        "the failed backup is kept for inspection"
    );
    assert!(fs::read_to_string(&junit).unwrap().contains("<failure"));
}

/// In GitHub Actions a password that reaches dbbackup in a URL is masked before anything else
/// is printed, and no other line shows it.
#[test]
fn secrets_are_masked_first_in_github_actions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dbbackup()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", "ghs_token_value")
        .args([
            "backup",
            "postgres://app:s3cret-pw@127.0.0.1:1/app",
            "--out",
        ])
        .arg(tmp.path().join("b"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    let masks = lines
        .iter()
        .take_while(|l| l.starts_with("::add-mask::"))
        .count();
    assert!(
        lines[..masks].contains(&"::add-mask::s3cret-pw"),
        "{stderr}"
    );
    assert!(
        lines[..masks].contains(&"::add-mask::ghs_token_value"),
        "{stderr}"
    );
    for line in &lines[masks..] {
        assert!(
            !line.contains("s3cret-pw") && !line.contains("ghs_token_value"),
            "{line}"
        );
    }
    assert!(
        stderr.contains("::error title=dbbackup failed::"),
        "{stderr}"
    );
}

#[test]
fn the_snapshot_check_is_full_unless_a_full_check_follows_or_quick_is_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let db = index_disagreeing_with_its_table(tmp.path());
    let backup = |out: &str, extra: &[&str]| {
        dbbackup()
            .args(["backup", db.to_str().unwrap(), "--out"])
            .arg(tmp.path().join(out))
            .args(extra)
            .output()
            .unwrap()
    };
    // Plain backup: the full check refuses the snapshot, nothing is written.
    let plain = backup("plain", &[]);
    assert_eq!(plain.status.code(), Some(5), "{plain:?}");
    assert!(
        String::from_utf8_lossy(&plain.stderr)
            .contains("index t_i does not hold exactly the entries")
    );
    assert!(archives(&tmp.path().join("plain")).is_empty());
    // --restore-test: the quick check passes the snapshot, the restore test's full check on
    // the restored copy fails it before anything could be rotated.
    let tested = backup("tested", &["--restore-test"]);
    assert_eq!(tested.status.code(), Some(5), "{tested:?}");
    let said = String::from_utf8_lossy(&tested.stderr);
    assert!(!said.contains("the source is corrupt"), "{said}");
    assert!(said.contains("integrity_check"), "{said}");
    assert!(archives(&tmp.path().join("tested")).is_empty());
    // --quick: the user's choice, the backup is kept.
    let quick = backup("quick", &["--quick"]);
    assert_eq!(quick.status.code(), Some(0), "{quick:?}");
    assert_eq!(archives(&tmp.path().join("quick")).len(), 1);
}

/// Backs `db` up into `out` `times` times; the newest archive's file name.
fn back_up_times(db: &Path, out: &Path, times: usize) -> String {
    let mut newest = String::new();
    for _ in 0..times {
        let made = run_json(&[
            "backup",
            db.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        newest = made["manifest"]["archive"].as_str().unwrap().to_string();
    }
    newest
}

/// `prune DIR` keeps the newest N of that name, and removes what a crashed backup left (a
/// manifest without its archive), never anything else.
#[test]
fn prune_keeps_the_newest_and_removes_orphan_manifests_only() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    let newest = back_up_times(&db, &out, 3);
    let orphan = out.join("chinook-20200101-000000.sqlite.gz.manifest.json");
    let unrelated = out.join("chinookish-20200101-000000.sqlite.gz.manifest.json");
    for file in [&orphan, &unrelated] {
        std::fs::write(file, b"{}").unwrap();
    }
    let run = dbbackup()
        .args(["prune", "--name", "chinook", "--keep", "1"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert_eq!(archives(&out), [newest]);
    assert!(!orphan.exists(), "the orphan manifest was left");
    assert!(unrelated.exists(), "another database's file was deleted");
}

/// `prune DIR` may leave out --name when DIR holds backups of one database only (as the Action's
/// own directory does); with several it names them and deletes nothing; a bucket needs it.
#[test]
fn prune_of_a_directory_of_one_database_needs_no_name() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("b");
    let newest = back_up_times(&db, &out, 2);
    let prune = |extra: &[&str]| {
        dbbackup()
            .args(["prune", "--keep", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let done = prune(&[out.to_str().unwrap()]);
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    assert_eq!(archives(&out), [newest]);

    let other = tmp.path().join("other.db");
    fs::copy(&db, &other).unwrap();
    run_json(&[
        "backup",
        other.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let refused = prune(&[out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("chinook, other") && stderr.contains("--name"),
        "{stderr}"
    );
    assert_eq!(archives(&out).len(), 2, "nothing deleted");

    let bucket = prune(&["s3://bucket/prefix"]);
    assert_eq!(bucket.status.code(), Some(2), "{bucket:?}");
    assert!(String::from_utf8_lossy(&bucket.stderr).contains("needs --name"));
}

/// Everything in `dir`, sorted: what a refused backup must leave exactly as it was.
fn everything(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A source that holds no tables (a zero-byte file, a database with only settings and a view
/// in it) is not a good backup: refused with exit 5, nothing written, and with `--keep 1` the
/// last good backup stays.
#[test]
fn a_source_without_tables_is_refused_and_rotates_nothing_away() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let chinook = chinook_copy(tmp.path());
    let good = chinook.with_file_name("app.sqlite");
    fs::rename(&chinook, &good).unwrap();
    dbbackup()
        .args([
            "backup",
            good.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    let before = everything(&out);

    let zero_bytes = tmp.path().join("zero/app.sqlite");
    fs::create_dir(zero_bytes.parent().unwrap()).unwrap();
    fs::write(&zero_bytes, b"").unwrap();
    let settings_only = tmp.path().join("settings/app.sqlite");
    fs::create_dir(settings_only.parent().unwrap()).unwrap();
    Connection::open(&settings_only)
        .unwrap()
        .execute_batch("PRAGMA user_version = 7; CREATE VIEW v AS SELECT 1 AS one;")
        .unwrap();
    for empty in [&zero_bytes, &settings_only] {
        for restore_test in [false, true] {
            let mut cmd = dbbackup();
            cmd.args(["backup", empty.to_str().unwrap(), "--out"])
                .arg(&out)
                .args(["--keep", "1"]);
            if restore_test {
                cmd.arg("--restore-test");
            }
            cmd.assert()
                .code(5)
                .stderr(contains("holds no tables"))
                .stderr(contains("--allow-empty"));
            assert_eq!(everything(&out), before, "{}", empty.display());
        }
    }

    // Asked for, the empty backup is kept, restore-tests, and still pushes nothing out.
    let kept = run_json(&[
        "backup",
        settings_only.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--keep",
        "1",
        "--allow-empty",
        "--allow-shrink",
        "--restore-test",
    ]);
    assert_eq!(
        kept["manifest"]["snapshot"]["tables"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(kept["pruned"].as_array().unwrap().len(), 0);
    let archives_now = archives(&out);
    assert_eq!(archives_now.len(), 2, "{archives_now:?}");
    assert!(before.iter().all(|f| out.join(f).exists()));
}

/// A writer that crashed mid-transaction leaves a hot journal: the file holds some of its
/// uncommitted pages. As `sqlite3` and every application do on their next open, the backup
/// rolls it back (and says so), and backs up the last committed state.
#[test]
fn a_hot_journal_left_by_a_crashed_writer_is_rolled_back_as_sqlite_does() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("hot.sqlite");
    // The writer spills uncommitted pages into the file (a one-page cache), then dies without
    // committing or rolling back.
    let crashed = StdCommand::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, os, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('PRAGMA journal_mode=DELETE')\n\
             c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')\n\
             c.execute('BEGIN')\n\
             for i in range(20000): c.execute('INSERT INTO t(v) VALUES (?)', ('committed',))\n\
             c.execute('COMMIT')\n\
             c.execute('PRAGMA cache_size=1')\n\
             c.execute('BEGIN')\n\
             c.execute(\"UPDATE t SET v = 'uncommitted'\")\n\
             os._exit(0)\n",
        )
        .arg(&db)
        .status()
        .expect("python3 runs");
    assert!(crashed.success());
    let journal = tmp.path().join("hot.sqlite-journal");
    assert!(journal.exists(), "no hot journal was left");
    let out = tmp.path().join("out");
    let made = run_json(&[
        "backup",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--restore-test",
    ]);
    let restored = tmp.path().join("copy.sqlite");
    fs::write(&restored, gunzip(Path::new(made["path"].as_str().unwrap()))).unwrap();
    let conn = Connection::open(&restored).unwrap();
    let committed: i64 = conn
        .query_row("SELECT count(*) FROM t WHERE v = 'committed'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(committed, 20000, "the backup holds uncommitted pages");
}

/// SQLite allows 2,000 columns, and a table that wide (with its rowid, one more than a
/// statement may return) backs up, checks and restore-tests in both formats.
#[test]
fn tables_as_wide_as_sqlite_allows_back_up_and_restore_test() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("wide.sqlite");
    let conn = Connection::open(&db).unwrap();
    let cols = |n: usize| {
        (0..n)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    conn.execute_batch(&format!(
        "CREATE TABLE full_width ({});
         CREATE TABLE keyed (id INTEGER PRIMARY KEY, {});
         CREATE INDEX fw ON full_width (c5, c1999);
         INSERT INTO full_width (c0, c5, c1999) VALUES (1, 'a', x'00'), (2, 'b', 2.5);
         DELETE FROM full_width WHERE c0 = 1;
         INSERT INTO full_width (c0, c1998) VALUES (3, 'last but one');
         INSERT INTO keyed (id, c0, c1998) VALUES (7, 'x', 'y');",
        cols(2000),
        cols(1999)
    ))
    .unwrap();
    drop(conn);
    for format in ["native", "sql"] {
        for extra in [&[][..], &["--restore-test"][..]] {
            dbbackup()
                .args(["backup", db.to_str().unwrap(), "--format", format, "--out"])
                .arg(tmp.path().join(format))
                .args(extra)
                .assert()
                .success();
        }
    }
}

/// A valid NOCASE index over text holding NULs: SQLite's NOCASE stops comparing at a NUL, and
/// so must the full check, or it calls the index out of order and refuses a sound database.
#[test]
fn a_nocase_index_over_text_with_nuls_passes_the_full_check() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("nul.sqlite");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(a TEXT COLLATE NOCASE, b);
         CREATE INDEX ta ON t(a);
         CREATE INDEX tab ON t(a COLLATE NOCASE, b);
         INSERT INTO t VALUES (CAST(X'61006A' AS TEXT), 1), (CAST(X'610062' AS TEXT), 2),
           ('A', 3), ('a', 4), (CAST(X'41007A' AS TEXT), 5), ('b', 6), (CAST(X'00' AS TEXT), 7);",
    )
    .unwrap();
    let sqlite_says: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sqlite_says, "ok");
    drop(conn);
    dbbackup()
        .args(["backup", db.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("out"))
        .assert()
        .success();
}

/// Entries a partial index's WHERE rejects, left from another declaration (a plain index
/// re-declared partial, a WHERE changed in place), are damage: the full check counts the
/// index's own entries against the rows its WHERE accepts, and refuses the snapshot.
#[test]
fn a_partial_index_holding_entries_its_where_rejects_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, declared, redeclared) in [
        (
            "replain",
            "CREATE INDEX ti ON t(a)",
            "CREATE INDEX ti ON t(a) WHERE a IS NOT NULL",
        ),
        (
            "rewhere",
            "CREATE INDEX ti ON t(a) WHERE b > 2",
            "CREATE INDEX ti ON t(a) WHERE b > 4",
        ),
    ] {
        let db = tmp.path().join(format!("{name}.sqlite"));
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, NULL), (2, 5), (NULL, 3), (4, 3);
             {declared};
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = '{redeclared}' WHERE name = 'ti';
             PRAGMA writable_schema = OFF;"
        ))
        .unwrap();
        drop(conn);
        dbbackup()
            .args(["backup", db.to_str().unwrap(), "--out"])
            .arg(tmp.path().join("out"))
            .assert()
            .code(5)
            .stderr(contains("wrong # of entries in index ti"));
    }
}

/// The drift guard: a backup that lost data against the previous one (a table emptied or
/// dropped, most rows gone) fails with exit 5, is set aside, and rotates nothing away, even
/// with `--keep 1`; `--allow-shrink` accepts the change for one run; growth never fails.
#[test]
fn a_backup_that_lost_data_against_the_previous_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = chinook_copy(tmp.path());
    let out = tmp.path().join("out");
    let backup = |extra: &[&str]| {
        dbbackup()
            .args(["backup", db.to_str().unwrap(), "--keep", "1", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(backup(&[]).status.success());
    let good = archives(&out);
    let sql = |s: &str| Connection::open(&db).unwrap().execute_batch(s).unwrap();
    sql(
        "INSERT INTO Genre (Name) VALUES ('new'); CREATE TABLE extra (v); INSERT INTO extra VALUES (1);",
    );
    assert!(backup(&[]).status.success(), "growth never fails");
    let good = {
        let now = archives(&out);
        assert_ne!(now, good);
        now
    };
    for (damage, said) in [
        (
            "PRAGMA foreign_keys = OFF; DELETE FROM InvoiceLine",
            "table InvoiceLine is empty",
        ),
        ("DROP TABLE extra", "table extra vanished"),
    ] {
        sql(damage);
        let refused = backup(&[]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(5), "{stderr}");
        assert!(
            stderr.contains(said) && stderr.contains("--allow-shrink"),
            "{stderr}"
        );
        assert_eq!(archives(&out), good, "a good backup was rotated away");
    }
    let accepted = backup(&["--allow-shrink"]);
    assert!(accepted.status.success(), "{accepted:?}");
    assert_ne!(archives(&out), good);
    assert!(
        backup(&[]).status.success(),
        "compared with the accepted one now"
    );
}
