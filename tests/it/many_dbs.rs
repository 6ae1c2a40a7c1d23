//! Many databases in one run: `backup SRC1 SRC2 ... --out DIR` (each its own backup, restore
//! test and rotation; one failing stops none of the others; the exit code is the highest) and
//! `summary`, which turns the JUnit reports and `--json` outputs of many backups into one table
//! and one exit status.

use std::path::Path;
use std::process::Output;

use crate::support::restore::validate_junit;
use crate::support::{data, dbbackup};

fn two_databases(dir: &Path) -> (String, String) {
    let (a, b) = (dir.join("a.db"), dir.join("b.db"));
    std::fs::copy(data("chinook.sqlite"), &a).unwrap();
    std::fs::copy(data("chinook.sqlite"), &b).unwrap();
    (a.display().to_string(), b.display().to_string())
}

fn backups_of(out: &Path, stem: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{stem}-")) && n.ends_with(".sqlite.gz"))
        .collect();
    names.sort();
    names
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Two runs over the same directory: the second has a source that does not exist between two
/// that do, backs up both of those all the same (two at once), rotates each to `--keep 1`,
/// and ends with the missing one's exit code (3). Its JUnit report (valid against the XSD),
/// its JSON, its job summary and `summary` of both reports agree.
#[test]
fn several_sources_one_failing_the_others_complete_and_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_databases(tmp.path());
    let out = tmp.path().join("out");
    let first = dbbackup()
        .args(["backup", &a, &b, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(backups_of(&out, "a").len(), 1);
    assert_eq!(backups_of(&out, "b").len(), 1);

    let missing = tmp.path().join("missing.db").display().to_string();
    let junit = tmp.path().join("report.xml");
    let summary_file = tmp.path().join("summary.md");
    let second = dbbackup()
        .args(["backup", &a, &missing, &b, "--parallel", "2", "--keep", "1"])
        .args(["--restore-test", "--json", "--out"])
        .arg(&out)
        .arg("--junit")
        .arg(&junit)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_OUTPUT", tmp.path().join("outputs"))
        .output()
        .unwrap();
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(3), "{err}");
    assert!(
        err.contains("1 of 3 backups failed") && err.contains("missing.db (exit 3)"),
        "{err}"
    );
    // Each log line names its database.
    assert!(err.contains("db=") && err.contains("a.db"), "{err}");
    // The others were made, restore-tested and rotated to one.
    let (now_a, now_b) = (backups_of(&out, "a"), backups_of(&out, "b"));
    assert_eq!(now_a.len(), 1, "{now_a:?}");
    assert_eq!(now_b.len(), 1, "{now_b:?}");

    let json: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(json["exit_code"], 3, "{json}");
    let each = json["backups"].as_array().unwrap();
    assert_eq!(each.len(), 3);
    assert_eq!(each[0]["restore_test"]["verdict"], "passed", "{json}");
    assert_eq!(each[0]["drift"]["checked"], true, "{json}");
    assert_eq!(each[0]["pruned"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(each[1]["exit_code"], 3, "{json}");
    assert!(each[1]["error"].as_str().unwrap().contains("no such file"));
    assert_eq!(each[2]["passed"], true, "{json}");

    validate_junit(&junit);
    let outputs = std::fs::read_to_string(tmp.path().join("outputs")).unwrap();
    assert!(outputs.contains("passed<<") && outputs.contains("\nfalse\n"));
    assert!(!outputs.contains("backup-path"), "{outputs}");
    let table = std::fs::read_to_string(&summary_file).unwrap();
    assert!(table.contains("3 backup(s), 1 failed"), "{table}");

    // `summary` of the JUnit report, and of the JSON: the same rows, the same exit code.
    let json_file = tmp.path().join("report.json");
    std::fs::write(&json_file, &second.stdout).unwrap();
    for report in [&junit, &json_file] {
        let merged = dbbackup()
            .args(["summary", "--json"])
            .arg(report)
            .output()
            .unwrap();
        assert_eq!(merged.status.code(), Some(3), "{}", stderr(&merged));
        let rows: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
        let rows = rows["backups"].as_array().unwrap().clone();
        let shown: Vec<(&str, u64)> = rows
            .iter()
            .map(|r| {
                (
                    r["database"].as_str().unwrap(),
                    r["exit_code"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [(a.as_str(), 0), (missing.as_str(), 3), (b.as_str(), 0)]
        );
        assert_eq!(rows[0]["restore_test"], "passed", "{rows:?}");
        assert_eq!(rows[0]["drift"], "passed", "{rows:?}");
        assert_eq!(rows[0]["rows"], 15607, "{rows:?}");
        assert_eq!(rows[0]["engine"], "sqlite", "{rows:?}");
    }
    // A directory holding both reports (and a file that is neither): one row per backup.
    std::fs::write(tmp.path().join("notes.json"), "[1, 2]").unwrap();
    let merged = dbbackup().arg("summary").arg(tmp.path()).output().unwrap();
    assert_eq!(merged.status.code(), Some(3), "{}", stderr(&merged));
    let table = String::from_utf8_lossy(&merged.stdout);
    assert_eq!(table.matches("| passed |\n").count(), 2, "{table}");
    assert!(table.contains("**failed** (exit 3)"), "{table}");
}

/// What names one backup is refused with several sources, and several sources need --out;
/// nothing is backed up then. A file given to `summary` that is no report is a usage error.
#[test]
fn several_sources_refuse_what_names_one_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_databases(tmp.path());
    let out = tmp.path().join("out");
    for (extra, says) in [
        (
            vec!["--compare-to", "x.manifest.json"],
            "--compare-to names one backup",
        ),
        (vec!["--upload", "--artifact-name", "n"], "--artifact-name"),
    ] {
        let run = dbbackup()
            .args(["backup", &a, &b, "--out"])
            .arg(&out)
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
        assert!(stderr(&run).contains(says), "{}", stderr(&run));
    }
    // A URL second, without --out, is a database left out, not a directory to make.
    let run = dbbackup()
        .current_dir(tmp.path())
        .args(["backup", &a, "postgres://app:Pw9secret@db.invalid/shop"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("is a database, not a directory"),
        "{}",
        stderr(&run)
    );
    assert!(!stderr(&run).contains("Pw9secret"), "{}", stderr(&run));
    assert!(!tmp.path().join("postgres:").exists());
    let run = dbbackup().args(["backup", &a, &b, &a]).output().unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("--out DIR"), "{}", stderr(&run));
    assert!(!out.exists());

    let run = dbbackup().arg("summary").arg(&a).output().unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("neither a JUnit report nor JSON"),
        "{}",
        stderr(&run)
    );
}

/// Two sources backed up under one name (`app` from two directories): in one DIR they would be
/// one series, and the second's `--keep 1` would delete the first's new backup. The second is
/// refused (exit 2) before it writes anything; the first is backed up and kept.
#[test]
fn two_sources_of_one_name_are_refused_rather_than_rotating_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    for dir in [&one, &two] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(data("chinook.sqlite"), dir.join("app.db")).unwrap();
    }
    let out = tmp.path().join("out");
    let run = dbbackup()
        .arg("backup")
        .arg(one.join("app.db"))
        .arg(two.join("app.db"))
        .args(["--keep", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("another source of this run is also backed up as app"),
        "{}",
        stderr(&run)
    );
    assert_eq!(backups_of(&out, "app").len(), 1, "{}", stderr(&run));
}

/// `summary` reads `restore-test --json` too: a row per restore test, its verdict settling the
/// exit code as `restore-test` itself did.
#[test]
fn summary_reads_restore_test_json_and_keeps_its_verdicts() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_databases(tmp.path());
    let out = tmp.path().join("out");
    let made = dbbackup()
        .args(["backup", &a, &b, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    // b's manifest now expects one row more in a table than its backup holds.
    let manifest = out.join(format!("{}.manifest.json", backups_of(&out, "b")[0]));
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let rows = &mut m["snapshot"]["tables"][0]["rows"];
    *rows = serde_json::json!(rows.as_u64().unwrap() + 1);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();

    let tested = dbbackup()
        .args(["restore-test", "--json"])
        .arg(out.join(&backups_of(&out, "a")[0]))
        .arg(out.join(&backups_of(&out, "b")[0]))
        .output()
        .unwrap();
    let code = tested.status.code();
    assert!(code.is_some_and(|c| c != 0), "{}", stderr(&tested));
    let report = tmp.path().join("restore-test.json");
    std::fs::write(&report, &tested.stdout).unwrap();
    let merged = dbbackup()
        .args(["summary", "--json"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), code, "{}", stderr(&merged));
    let rows: serde_json::Value = serde_json::from_slice(&merged.stdout).unwrap();
    let shown: Vec<(&str, &str, u64)> = (rows["backups"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["database"].as_str().unwrap(),
                r["restore_test"].as_str().unwrap(),
                r["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [(a.as_str(), "passed", 15607), (b.as_str(), "failed", 15608)],
        "{rows}"
    );
}
