//! How much the binary says: `--quiet` (errors only, for cron) still writes every report and
//! step output; `-v` adds the steps' details.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{data_copy, dbbackup};

/// A restore-tested backup of the sample database, under a fake GitHub runner, with `flags`.
fn backup(dir: &Path, flags: &[&str]) -> Output {
    command(dir, flags).output().unwrap()
}

fn command(dir: &Path, flags: &[&str]) -> Command {
    let db = data_copy("chinook.sqlite", dir);
    let mut command = dbbackup();
    command
        .arg("backup")
        .arg(&db)
        .args(["--restore-test", "--json", "--junit"])
        .arg(dir.join("junit.xml"))
        .arg("--out")
        .arg(dir.join("b"))
        .args(flags)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"));
    command
}

#[test]
fn quiet_prints_nothing_but_still_writes_reports_outputs_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let loud = backup(tmp.path(), &[]);
    assert!(loud.status.success());
    assert!(!loud.stderr.is_empty(), "the default says what it did");
    let tmp = tempfile::tempdir().unwrap();
    let quiet = backup(tmp.path(), &["--quiet"]);
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(quiet.status.success(), "{stderr}");
    assert_eq!(stderr, "", "--quiet printed more than errors");
    let json: serde_json::Value = serde_json::from_slice(&quiet.stdout).unwrap();
    assert_eq!(json["restore_test"]["verdict"], "passed", "{json}");
    assert!(tmp.path().join("junit.xml").is_file());
    let outputs = std::fs::read_to_string(tmp.path().join("output")).unwrap();
    assert!(outputs.contains("passed<<"), "{outputs}");
    assert!(outputs.contains("backup-path<<"), "{outputs}");
    let summary = std::fs::read_to_string(tmp.path().join("summary")).unwrap();
    assert!(summary.contains("restore test"), "{summary}");
}

#[test]
fn quiet_still_prints_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dbbackup()
        .args(["-q", "backup", "missing.db", "--out"])
        .arg(tmp.path().join("b"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("missing.db"), "{stderr}");
}

#[test]
fn verbose_adds_the_steps_details() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = backup(tmp.path(), &[]);
    let plain = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.contains("took"), "{plain}");
    let tmp = tempfile::tempdir().unwrap();
    let verbose = backup(tmp.path(), &["-v"]);
    let text = String::from_utf8_lossy(&verbose.stderr);
    assert!(verbose.status.success(), "{text}");
    assert!(text.contains("compression took"), "{text}");
    assert!(text.lines().count() > plain.lines().count(), "{text}");
}

#[test]
fn quiet_and_verbose_together_are_refused() {
    let out = dbbackup()
        .args(["-q", "-v", "inspect", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

/// Not on a terminal (a pipe, a CI log): plain lines, no bar, so no carriage returns or escape
/// sequences; sizes in the one unit system the bar uses (binary, labelled KiB/MiB). Progress
/// comes as plain lines with a percentage, for the dump (compressed as it is written) and the
/// restore, ending at 100%: at most one every 10 s, so the test knob
/// DBBACKUP_PROGRESS_INTERVAL_MS=0 (one line per new percent) makes a fast backup show them.
#[test]
fn a_pipe_gets_plain_lines_in_binary_units() {
    let tmp = tempfile::tempdir().unwrap();
    let out = command(tmp.path(), &[])
        .env("DBBACKUP_PROGRESS_INTERVAL_MS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    let compressed = stderr
        .lines()
        .find(|l| l.starts_with("compressed"))
        .unwrap();
    assert!(
        compressed.contains(" KiB, ") || compressed.contains(" MiB, "),
        "{compressed}"
    );
    for step in ["dumping and compressing: ", "restoring: "] {
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(step)).collect();
        assert!(lines.len() > 2, "{step}: {stderr}");
        // The SQLite file's size is exact: no `~`; binary units, labelled.
        assert!(
            lines
                .iter()
                .any(|l| l.contains("% (") && l.contains(" KiB of 984 KiB")),
            "{lines:#?}"
        );
        let last = lines.last().unwrap();
        assert!(
            last.starts_with(&format!("{step}100%, 984 KiB in ")),
            "{last}"
        );
        assert!(!stderr.contains("101%"), "{stderr}");
    }
    // The default interval keeps a fast backup's log as it was: no progress lines.
    let tmp = tempfile::tempdir().unwrap();
    let quiet = backup(tmp.path(), &[]);
    let text = String::from_utf8_lossy(&quiet.stderr);
    assert!(!text.contains("dumping and compressing:"), "{text}");
}

/// On a terminal (a pseudo-terminal made by `script`): a bar with a percentage, the bytes in
/// binary units and an ETA, for the dump and the restore test, each ending at 100%.
#[test]
fn a_terminal_gets_a_bar_with_percent_and_eta() {
    let tmp = tempfile::tempdir().unwrap();
    let db = data_copy("chinook.sqlite", tmp.path());
    let line = format!(
        "{} backup {} --restore-test --out {}",
        env!("CARGO_BIN_EXE_dbbackup"),
        db.display(),
        tmp.path().join("b").display()
    );
    // `script -qec CMD /dev/null` runs CMD on a new pseudo-terminal and copies what it shows.
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("CI")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script (util-linux)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    for step in ["dumping and compressing [", "restoring ["] {
        let frames: Vec<&str> = shown
            .split(['\r', '\n'])
            .filter_map(|f| f.find(step).map(|at| &f[at..]))
            .collect();
        assert!(
            frames
                .iter()
                .any(|f| f.contains(" KiB/984.00 KiB (") && f.contains("ETA ")),
            "{frames:#?}"
        );
        let last = frames.last().unwrap();
        assert!(last.contains("] 100% 984.00 KiB/984.00 KiB"), "{last}");
    }
    assert!(shown.contains("restore OK"), "{shown}");
}
